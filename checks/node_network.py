"""Node preprocessing, network: hostname, /etc/hosts, DNS, node address, default
route, free ports and the container-runtime bridge range (node preprocessing N1-N9).

Node state that makes each check FAIL (for the lab):

- ACP-NODE-013: hostname longer than 36 characters, with a capital or "_", starting or
  ending with "-" or ".", or containing ".-", ".." or "-." (e.g. ``Node_1``).
- ACP-NODE-014: /etc/hosts without ``127.0.0.1 localhost``, or whose first IPv4 line
  for localhost names another address (e.g. ``127.0.1.1 localhost``).
- ACP-NODE-015: /etc/resolv.conf missing, without a nameserver line, with a nameserver
  in 172.0.0.0/8, or systemd-resolved active.
- ACP-NODE-016: a ``search`` line with more than 28 domains, a domain over 253 characters
  or more than 2048 characters in all (any search line at all is a WARN).
- ACP-NODE-017: the plan's node IP is on no interface of the node, or is the subnet's
  broadcast address there (or the plan gives a loopback/multicast/link-local/0.0.0.0/
  255.255.255.255 address).
- ACP-NODE-018: no default route (for IPv6 plans: no IPv6 default route).
- ACP-NODE-019: something listening on TCP 2379, 2380, 6443 or 10249-10256 on a
  control-plane node, or 10249-10256 on a worker (e.g. ``nc -lk 6443``).
- ACP-NODE-020: something listening on TCP 6641/6642 (Kube-OVN plan) or 179 (Calico plan).
- ACP-NODE-021: an interface address or a route in 172.17.0.0-172.18.255.255 (ACP 4.2+)
  or 172.16.0.0-172.32.255.255 (ACP 4.0/4.1), e.g. a docker0 bridge at 172.17.0.1/16.
"""

from __future__ import annotations

import re

from netaddr import AddrFormatError, IPAddress, IPNetwork

from acpcheck import NodeContext, Scope, Severity, check, fail, fail_if, manual, warn
from acpcheck.addressing import Labelled, find_overlaps, host
from acpcheck.checks.support import (
    PREPROCESSING_PAGES,
    address_carrying,
    address_text,
    before_install,
    conclude,
    ip_or_none,
    listed,
    plan_page,
    port_ranges,
    preprocessed,
    require,
    runtime_bridge_range,
)
from acpcheck.constants import PREPROCESSING
from acpcheck.remediation import Changes, NodeView, changes_of, edit, ensure_localhost, step

# ---------------------------------------------------------------------------
# Rules, as the node preprocessing page states them

MAX_HOSTNAME_LENGTH = 36
HOSTNAME_CHARACTERS = re.compile(r"^[a-z0-9.-]*$")
HOSTNAME_FORBIDDEN = (".-", "..", "-.")

#: Search-line limits (the kubelet's): fewer than domainCountLimit - 3 domains, where
#: domainCountLimit defaults to 32, so at most 28; each domain at most 253 characters;
#: the whole list (domains and the spaces between them) at most MaxDNSSearchListChar, 2048.
MAX_SEARCH_DOMAINS = 32 - 3 - 1
MAX_SEARCH_DOMAIN_LENGTH = 253
MAX_SEARCH_LIST_CHARS = 2048

KUBERNETES_NODE_PORTS = list(range(10249, 10257))
PORTS_BY_ROLE = {
    "control-plane": [2379, 2380, 6443, *KUBERNETES_NODE_PORTS],
    "worker": KUBERNETES_NODE_PORTS,
}
CNI_PORTS = {"kube-ovn": [6641, 6642], "calico": [179]}

#: `ip route` prints a route type before the destination for anything but unicast.
ROUTE_TYPES = frozenset(
    {"unicast", "local", "broadcast", "multicast", "throw", "unreachable", "prohibit", "blackhole", "nat", "anycast"}
)
DEFAULT_DESTINATIONS = {"default": None, "0.0.0.0/0": 4, "::/0": 6}

#: Address families each ``spec.cluster.ipFamily`` uses.
FAMILIES = {"ipv4": (4,), "ipv6": (6,), "dual-stack": (4, 6)}

# ---------------------------------------------------------------------------
# Parsing the node's files


def config_lines(text: str, comment: str = "#") -> list[list[str]]:
    """The fields of every non-empty line, comments removed."""
    lines = []
    for line in text.splitlines():
        for marker in comment:
            line = line.split(marker, 1)[0]
        if line.split():
            lines.append(line.split())
    return lines


def resolv_conf_lines(text: str) -> list[list[str]]:
    # resolv.conf comments start with '#' or ';' (resolv.conf(5)).
    return config_lines(text, comment="#;")


def search_domains(resolv_conf: str) -> list[str] | None:
    """The domains of the last ``search`` line (the resolver uses the last), or None without one."""
    lines = [fields[1:] for fields in resolv_conf_lines(resolv_conf) if fields[0] == "search"]
    return lines[-1] if lines else None


def route_fields(line: str) -> list[str]:
    """A route line's fields with a leading route type (blackhole, unreachable ...) removed;
    empty for routes that do not forward (every type but unicast)."""
    fields = line.split()
    if fields and fields[0] in ROUTE_TYPES:
        return fields[1:] if fields[0] == "unicast" else []
    return fields


def route_destination(fields: list[str]) -> IPNetwork | None:
    """The destination prefix of a route, None for "default" and anything unparsable."""
    if not fields or fields[0] in DEFAULT_DESTINATIONS:
        return None
    try:
        return IPNetwork(fields[0])
    except (ValueError, AddrFormatError):
        return None


def is_kernel_route(fields: list[str]) -> bool:
    """Whether the kernel added the route for an interface address ("proto kernel")."""
    return "proto" in fields and fields[fields.index("proto") + 1 :][:1] == ["kernel"]


def default_route_families(routes: tuple[str, ...]) -> set[int]:
    """Address families that have a default route.

    `ip route` and `ip -6 route` both print "default"; the family is the gateway's
    ("via ..."). A default route without a gateway ("default dev ppp0") has no family
    to read and counts for both.
    """
    families: set[int] = set()
    for line in routes:
        fields = route_fields(line)
        if not fields or fields[0] not in DEFAULT_DESTINATIONS:
            continue
        family = DEFAULT_DESTINATIONS[fields[0]]
        if family is None and "via" in fields[:-1]:
            gateway = ip_or_none(fields[fields.index("via") + 1])
            family = gateway.version if gateway is not None else None
        families |= {family} if family else {4, 6}
    return families


def require_ports_free(node: NodeContext, ports: list[int], needed_by: str) -> None:
    """FAIL naming every TCP listener on one of ``ports``."""
    require(node, "listeners")
    wanted = set(ports)
    findings = [
        f"{node.name}: TCP port {listener.port} is already in use ({listener.process or 'unknown process'} "
        f"on {listener.address}); "
        f"{needed_by} needs {port_ranges(ports)} free"
        for listener in sorted(node.facts.listeners, key=lambda item: item.port)
        if listener.protocol.startswith("tcp") and listener.port in wanted
    ]
    fail_if(findings, ports=port_ranges(ports))


# ---------------------------------------------------------------------------
# N1-N4: names and DNS


@check(
    id="ACP-NODE-013",
    title="the hostname follows ACP's naming rules",
    severity=Severity.HIGH,
    scope=Scope.NODE,
    applies=preprocessed(),
    refs=[PREPROCESSING],
    remediation=(
        "Rename the host (hostnamectl set-hostname <name>) to at most 36 lowercase letters, digits, '-' and '.', "
        "starting and ending with a letter or digit, without '.-', '..' or '-.'."
    ),
)
def check_hostname_rules(node: NodeContext) -> None:
    """The hostname becomes part of Kubernetes object names and certificates, and ACP
    limits it further than RFC 1123: at most 36 characters, only lowercase letters,
    digits, "-" and ".", a letter or digit first and last, and none of ".-", ".." or
    "-." inside."""
    name = node.facts.hostname
    if name is None:
        manual(f"{node.name}: the hostname could not be read; check `hostname` by hand")
    problems = []
    if len(name) > MAX_HOSTNAME_LENGTH:
        problems.append(f"is {len(name)} characters long (at most {MAX_HOSTNAME_LENGTH})")
    if not HOSTNAME_CHARACTERS.match(name):
        bad = sorted(set(re.sub(r"[a-z0-9.-]", "", name)))
        problems.append(
            f"contains {listed(repr(c) for c in bad)} (only lowercase letters, digits, '-' and '.' are allowed)"
        )
    if not name or not name[0].isalnum() or not name[-1].isalnum():
        problems.append("must start and end with a letter or digit")
    problems += [f"contains {pair!r}" for pair in HOSTNAME_FORBIDDEN if pair in name]
    fail_if([f"{node.name}: hostname {name!r} {problem}" for problem in problems], hostname=name)


@check(
    id="ACP-NODE-014",
    title="localhost resolves to 127.0.0.1 in /etc/hosts",
    severity=Severity.HIGH,
    scope=Scope.NODE,
    applies=preprocessed(),
    refs=[PREPROCESSING],
    remediation="Make the first IPv4 entry for localhost in /etc/hosts `127.0.0.1 localhost`.",
)
def check_localhost_resolves(node: NodeContext) -> None:
    """Platform components reach local endpoints as "localhost"; node preprocessing
    requires /etc/hosts to map it to 127.0.0.1. The resolver answers from the first
    line that names the host, so the first IPv4 line for localhost must be
    127.0.0.1 (an IPv6 line such as "::1 localhost" is fine)."""
    hosts = node.facts.etc_hosts
    if hosts is None:
        manual(f"{node.name}: /etc/hosts could not be read; check that localhost maps to 127.0.0.1 by hand")
    for fields in config_lines(hosts):
        address = ip_or_none(fields[0])
        if address is not None and address.version == 4 and "localhost" in (name.lower() for name in fields[1:]):
            if str(address) != "127.0.0.1":
                fail(
                    f"{node.name}: /etc/hosts maps localhost to {address} ({' '.join(fields)}); node "
                    "preprocessing requires 127.0.0.1",
                    seen=str(address),
                )
            return
    fail(f"{node.name}: /etc/hosts has no IPv4 entry for localhost; node preprocessing requires `127.0.0.1 localhost`")


@check(
    id="ACP-NODE-015",
    title="/etc/resolv.conf lists usable nameservers and systemd-resolved is off",
    severity=Severity.HIGH,
    scope=Scope.NODE,
    applies=preprocessed(),
    refs=[PREPROCESSING],
    remediation=(
        "Disable systemd-resolved (systemctl disable --now systemd-resolved), and write /etc/resolv.conf as "
        "a regular file "
        "with at least one `nameserver` outside 172.0.0.0/8."
    ),
)
def check_resolv_conf_nameservers(node: NodeContext) -> None:
    """Pods inherit the node's resolv.conf through the kubelet. Node preprocessing
    requires the file to exist with at least one nameserver, no nameserver starting
    with 172, and systemd-resolved disabled: its stub 127.0.0.53 means nothing inside
    a pod. The docs give no reason for the 172 rule; 172.16.0.0/12 holds the container
    runtimes' bridge ranges (ACP-NODE-021), where a nameserver would be unreachable.
    The rule is applied as written, to any IPv4 nameserver whose first octet is 172."""
    facts = node.facts
    findings, unknown = [], []
    if facts.resolv_conf is None:
        findings.append(
            f"{node.name}: /etc/resolv.conf does not exist; node preprocessing requires it with at least one nameserver"
        )
        nameservers: list[str] = []
    else:
        nameservers = [
            fields[1]
            for fields in resolv_conf_lines(facts.resolv_conf)
            if fields[0] == "nameserver" and len(fields) > 1
        ]
        if not nameservers:
            findings.append(
                f"{node.name}: /etc/resolv.conf has no nameserver line; node preprocessing requires at least one"
            )
    for server in nameservers:
        address = ip_or_none(server)
        if address is not None and address.version == 4 and address.words[0] == 172:
            findings.append(
                f"{node.name}: nameserver {server} in /etc/resolv.conf starts with 172; node preprocessing "
                "forbids such nameservers"
            )
    if facts.systemd_resolved_active:
        findings.append(f"{node.name}: systemd-resolved is active; node preprocessing requires it disabled")
    elif facts.systemd_resolved_active is None:
        unknown.append(f"{node.name}: whether systemd-resolved is active could not be read")
    conclude(findings, unknown=unknown, nameservers=nameservers, systemd_resolved_active=facts.systemd_resolved_active)


@check(
    id="ACP-NODE-016",
    title="/etc/resolv.conf has no search line, or one within the kubelet's limits",
    severity=Severity.MEDIUM,
    scope=Scope.NODE,
    applies=preprocessed(),
    refs=[PREPROCESSING],
    remediation=(
        "Remove the `search` line from /etc/resolv.conf; if it is needed, keep it to at most 28 domains of at most 253 "
        "characters each and 2048 characters in all."
    ),
)
def check_resolv_conf_search(node: NodeContext) -> None:
    """Pods get the node's search domains followed by the cluster's own, and the
    kubelet limits the combined list: at most 28 node domains (domainCountLimit 32
    minus 3, exclusive), each at most 253 characters, at most 2048 characters in all
    (MaxDNSSearchListChar). Beyond that pods fail DNS configuration. Node
    preprocessing asks for no search line at all, which is why a search line within
    the limits is still a WARN."""
    resolv_conf = node.facts.resolv_conf
    domains = search_domains(resolv_conf) if resolv_conf is not None else None
    if not domains:
        return  # no file (ACP-NODE-015 reports that) or no search line
    shown = " ".join(domains)
    findings = []
    if len(domains) > MAX_SEARCH_DOMAINS:
        findings.append(
            f"{node.name}: the resolv.conf search line has {len(domains)} domains; at most "
            f"{MAX_SEARCH_DOMAINS} are allowed"
        )
    findings += [
        f"{node.name}: search domain {domain[:40]}... is {len(domain)} characters; at most "
        f"{MAX_SEARCH_DOMAIN_LENGTH} are allowed"
        for domain in domains
        if len(domain) > MAX_SEARCH_DOMAIN_LENGTH
    ]
    if len(shown) > MAX_SEARCH_LIST_CHARS:
        findings.append(
            f"{node.name}: the resolv.conf search line is {len(shown)} characters; at most "
            f"{MAX_SEARCH_LIST_CHARS} are allowed"
        )
    fail_if(findings, search=domains)
    warn(
        f"{node.name}: /etc/resolv.conf has a search line ({shown[:200]}); node preprocessing asks for "
        "none, and allows one within the limits only when needed",
        search=domains,
    )


# ---------------------------------------------------------------------------
# N5, N6: address and route


def special_address_problem(ip: IPAddress) -> str | None:
    """Why ``ip`` can never be a node IP, or None."""
    if ip.is_loopback():
        return "a loopback address"
    if ip.is_multicast():
        return "a multicast address"
    if ip.is_link_local():
        return "a link-local address"
    if int(ip) == 0:
        return "the all-zero address"
    if ip.version == 4 and str(ip) == "255.255.255.255":
        return "the broadcast address"
    return None


@check(
    id="ACP-NODE-017",
    title="the plan's node IP is configured on the node and is a usable unicast address",
    severity=Severity.CRITICAL,
    scope=Scope.NODE,
    applies=preprocessed(),
    refs=[PREPROCESSING],
    remediation=(
        "Give the node in the plan the IP address it really has on its cluster-facing interface (`ip -br "
        "addr`), a unicast "
        "address that is not loopback, link-local, multicast, 0.0.0.0 or a broadcast address."
    ),
)
def check_node_ip_configured(node: NodeContext) -> None:
    """Kubernetes advertises and binds the node IP: it must be an address this machine
    really has, and node preprocessing excludes loopback, multicast, link-local,
    all-zero and broadcast addresses (including the subnet broadcast address of the
    interface that carries it). A wrong node IP breaks the join, hence critical."""
    require(node, "addresses")
    findings = []
    for ip in node.spec.addresses:
        problem = special_address_problem(ip)
        if problem:
            findings.append(f"{node.name}: the plan's node IP {ip} is {problem}; node preprocessing forbids it")
            continue
        address = address_carrying(node, ip)
        if address is None:
            have = listed(address_text(a) for a in node.facts.addresses)
            findings.append(
                f"{node.name}: the plan's node IP {ip} is not configured on any interface (the node has {have})"
            )
        elif (
            ip.version == 4
            and address.prefix_length <= 30
            and IPNetwork(f"{ip}/{address.prefix_length}").broadcast == ip
        ):
            findings.append(f"{node.name}: the plan's node IP {ip} is the broadcast address of {address_text(address)}")
    fail_if(
        findings,
        planned=[str(ip) for ip in node.spec.addresses],
        addresses=[address_text(a) for a in node.facts.addresses],
    )


@check(
    id="ACP-NODE-018",
    title="the node has a default route for each address family the cluster uses",
    severity=Severity.HIGH,
    scope=Scope.NODE,
    applies=preprocessed(),
    refs=[PREPROCESSING],
    remediation="Add a default gateway on the node's network configuration (e.g. `ip route add default via <gateway>`, "
    "made persistent).",
)
def check_default_route(node: NodeContext) -> None:
    """Node preprocessing requires `ip route` to show a default route: Kubernetes
    components that are not told an address pick the node's interface from the
    default route and stop with "no default routes found" without one. For IPv6 and
    dual-stack clusters the same is asked of the IPv6 routing table (our extension
    of the IPv4 wording: each family's address is chosen from its own routes)."""
    require(node, "routes")
    have = default_route_families(node.facts.routes)
    ip_family = node.plan.spec.cluster.ip_family
    fail_if(
        [
            f"{node.name}: no IPv{family} default route (`ip{' -6' if family == 6 else ''} route` shows none); "
            f"node preprocessing requires a default route, and this {ip_family} cluster uses IPv{family}"
            for family in FAMILIES[ip_family]
            if family not in have
        ],
        routes=list(node.facts.routes),
    )


# ---------------------------------------------------------------------------
# N7, N8: free ports


@check(
    id="ACP-NODE-019",
    title="the Kubernetes ports of the node's role are free",
    severity=Severity.HIGH,
    scope=Scope.NODE,
    applies=before_install(),
    refs=[PREPROCESSING],
    remediation="Stop or reconfigure whatever listens on the listed ports (`ss -ltnp` shows the process).",
)
def check_role_ports_free(node: NodeContext) -> None:
    """etcd (2379, 2380), the API server (6443) and the kubelet and kube-proxy
    (10249-10256) bind these ports; if anything already listens there they fail to
    start. Control-plane nodes need all of them free, workers 10249-10256. The
    installer node needs 8080, 12080, 12443 and 16443 as well, but the plan does not
    say which machine runs the installer, so those are not checked. Only run before
    installation: on an installed cluster these are the cluster's own listeners."""
    require_ports_free(node, PORTS_BY_ROLE[node.role], f"a {node.role} node")


@check(
    id="ACP-NODE-020",
    title="the network plugin's ports are free",
    severity=Severity.HIGH,
    scope=Scope.NODE,
    applies=before_install(plugins=frozenset(CNI_PORTS)),
    refs=PREPROCESSING_PAGES,
    remediation="Stop or reconfigure whatever listens on the listed ports (`ss -ltnp` shows the process).",
)
def check_cni_ports_free(node: NodeContext) -> None:
    """Kube-OVN's OVN databases listen on 6641 (northbound) and 6642 (southbound) and
    Calico's BGP on 179. The ACP 4.0/4.1 pages word the rule for the global cluster,
    4.2 and later for any cluster; a taken port breaks the plugin on any cluster, so
    it is checked on every node of every cluster that uses the plugin (our reading)."""
    network = node.plan.spec.network
    assert network is not None, "ACP-NODE-020 applies only to plans with a network (a CNI plugin)"
    require_ports_free(node, CNI_PORTS[network.plugin], network.plugin)


# ---------------------------------------------------------------------------
# N9: runtime bridge range


@check(
    id="ACP-NODE-021",
    title="no interface address or route uses the container runtime's bridge range",
    severity=Severity.MEDIUM,
    scope=Scope.NODE,
    applies=before_install(),
    refs=PREPROCESSING_PAGES,
    remediation=(
        "Move the listed addresses or routes out of 172.17.0.0-172.18.255.255 (ACP 4.2+) or 172.16.0.0-172.32.255.255 "
        "(ACP 4.0/4.1), or set `bip` in the nerdctl (4.2+) or Docker (4.0/4.1) configuration so the runtime "
        "bridge uses a "
        "free range; contact support if neither is possible."
    ),
)
def check_runtime_bridge_range_unused(node: NodeContext) -> None:
    """The container runtime's default bridge takes 172.16.x.x-172.32.x.x (Docker, ACP
    4.0/4.1) or 172.17.x.x-172.18.x.x (nerdctl, ACP 4.2/4.3) on the node; a network
    the node already reaches in that range becomes unreachable once the bridge comes
    up. ACP-NET-006 checks the plan's addresses; this check checks what the node
    itself has: interface addresses and routes (kernel routes of those addresses are
    not repeated)."""
    require(node, "addresses", "routes")
    runtime, bridge = runtime_bridge_range(node.plan)
    used: list[Labelled] = []
    for address in node.facts.addresses:
        ip = ip_or_none(address.address)
        if ip is not None:
            used.append(host(f"address {address_text(address)}", ip))
    for line in node.facts.routes:
        fields = route_fields(line)
        destination = route_destination(fields)
        if destination is not None and not is_kernel_route(fields):
            used.append(Labelled(f"route '{line.strip()}'", destination))
    findings = [f"{node.name}: {item.label} lies in the {bridge}" for item, _ in find_overlaps(used, [bridge])]
    fail_if(
        [
            f"{line}; {runtime} takes that range for its bridge unless `bip` is set (source: {plan_page(node.plan)})"
            for line in findings
        ]
    )


# ---------------------------------------------------------------------------
# Remediation steps (`acpcheck remediate`; see acpcheck/remediation/steps.py). Only
# N2 has a value the docs give that a machine can set; a hostname, nameservers or a
# node address are the operator's to choose.


@step(
    fixes=check_localhost_resolves,
    name="hosts-localhost",
    does="puts `127.0.0.1 localhost` in /etc/hosts ahead of any other IPv4 localhost line",
)
def hosts_localhost(node: NodeView) -> Changes:
    return changes_of([edit(node, "/etc/hosts", ensure_localhost, "localhost resolves to 127.0.0.1")])
