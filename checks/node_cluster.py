"""Cross-node rules: what must hold between the nodes of one cluster (node
preprocessing X2-X3, node-add and self-built VIP rules). Each check takes ``nodes``
(a :class:`~acpcheck.facts.model.NodeSet`) and judges every member at once.

A node whose facts could not be gathered cannot be compared: when the members
agree but some nodes are missing, the check is MANUAL and names them, since a
missing node could hold the duplicate hostname or the drifting clock.

X1 (no firewall between nodes) needs traffic between nodes and is not checked here.

NodeSet state that makes each check FAIL (for the lab):

- ACP-NODE-033: two nodes with the same hostname (compared case-insensitively).
- ACP-NODE-034: two nodes in different time zones (e.g. UTC and Asia/Shanghai).
- ACP-NODE-035: two nodes whose clocks differ by more than 10 s beyond the probes' round-trip uncertainty.
- ACP-NODE-036: an x86_64 node and an aarch64 node in one cluster.
- ACP-NODE-037: (LOW: WARN by default) nodes on different OS distributions (e.g. ubuntu and rhel).
- ACP-NODE-038: self-built VIP plan whose endpoint address lies outside the subnet of a
  control-plane node's interface that carries its plan IP (e.g. VIP 192.0.2.10 with cp1 at 192.0.2.11/32).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from netaddr import IPNetwork

from acpcheck import NodeSet, Scope, Severity, check, skip
from acpcheck.addressing import is_ip, parse_ip
from acpcheck.checks.support import (
    address_carrying,
    address_text,
    conclude,
    preprocessed,
    some_lines,
    some_names,
)
from acpcheck.constants import NODE_ADD, ON_PREMISES, PREPROCESSING, PREREQUISITES
from acpcheck.facts.model import NodeFacts

#: Largest clock difference allowed between two nodes (node preprocessing X3).
MAX_CLOCK_SKEW_SECONDS = 10.0


def missing_nodes(nodes: NodeSet) -> list[str]:
    """One line per node whose facts could not be gathered."""
    return [
        f"{name}: facts not gathered ({failure.kind}: {failure.message})"
        for name, failure in sorted(nodes.failures.items())
    ]


def group_by(
    nodes: NodeSet, read: Callable[[NodeFacts], str | None], what: str
) -> tuple[dict[str, list[str]], list[str]]:
    """Node names grouped by the value ``read`` returns, and a line for every node where it is unknown."""
    groups: dict[str, list[str]] = defaultdict(list)
    unknown = []
    for member in nodes.members:
        value = read(member.facts)
        if value is None:
            unknown.append(f"{member.name}: {what} could not be read")
        else:
            groups[value].append(member.name)
    return dict(groups), unknown + missing_nodes(nodes)


def require_one_value(nodes: NodeSet, read: Callable[[NodeFacts], str | None], what: str, rule: str) -> None:
    """FAIL when the members disagree on ``what``, listing which node has which value."""
    groups, unknown = group_by(nodes, read, what)
    findings = []
    if len(groups) > 1:
        spread = "; ".join(
            some_lines([f"{value} on {some_names(names)}" for value, names in sorted(groups.items())], "values")
        )
        findings.append(f"{what} differs between nodes: {spread}; {rule}")
    conclude(findings, unknown=unknown, values={value: names for value, names in groups.items()})


# ---------------------------------------------------------------------------
# X2, X3: names and time


@check(
    id="ACP-NODE-033",
    title="hostnames are unique across the cluster",
    severity=Severity.HIGH,
    scope=Scope.NODE,
    applies=preprocessed(),
    refs=[PREPROCESSING],
    remediation="Give every node its own hostname (hostnamectl set-hostname <name>).",
)
def check_hostnames_unique(nodes: NodeSet) -> None:
    """Kubernetes registers nodes by hostname when the cluster names nodes that way,
    and certificates and logs identify nodes by it; node preprocessing requires it
    unique in the cluster. Hostnames are compared ignoring case, as DNS does."""
    groups, unknown = group_by(nodes, lambda facts: facts.hostname.lower() if facts.hostname else None, "the hostname")
    findings = [
        f"hostname {name!r} is used by {len(members)} nodes: {some_names(members)}; hostnames must be unique"
        for name, members in sorted(groups.items())
        if len(members) > 1
    ]
    conclude(some_lines(findings, "shared hostnames"), unknown=unknown)


@check(
    id="ACP-NODE-034",
    title="all nodes use the same time zone",
    severity=Severity.MEDIUM,
    scope=Scope.NODE,
    applies=preprocessed(),
    refs=[PREPROCESSING],
    remediation="Set one time zone on every node (timedatectl set-timezone <zone>).",
)
def check_same_time_zone(nodes: NodeSet) -> None:
    """Node preprocessing requires one time zone on all nodes: scheduled jobs,
    certificate checks and log timestamps that mix zones are misread."""
    require_one_value(
        nodes, lambda facts: facts.timezone, "the time zone", "node preprocessing requires one time zone on all nodes"
    )


@dataclass(frozen=True)
class ClockReading:
    """A node's clock offset from the controller's, known to within ± uncertainty."""

    node: str
    offset: float
    uncertainty: float

    def __str__(self) -> str:
        return f"{self.node} {self.offset:+.1f} s (±{self.uncertainty:.1f} s)"


def clock_reading(name: str, facts: NodeFacts) -> ClockReading:
    """skew = node clock - controller clock at the middle of the probe's exec; the node
    read its clock somewhere within the round trip, so the offset is known to ± rtt/2."""
    return ClockReading(name, facts.clock_epoch - facts.clock_read_at_epoch, facts.round_trip_seconds / 2)


@check(
    id="ACP-NODE-035",
    title="node clocks agree within 10 seconds",
    severity=Severity.HIGH,
    scope=Scope.NODE,
    applies=preprocessed(),
    refs=[PREPROCESSING],
    remediation="Synchronise every node with the same NTP source (chrony or systemd-timesyncd) and check `chronyc "
    "tracking`.",
)
def check_clock_skew(nodes: NodeSet) -> None:
    """Node preprocessing allows at most 10 s between node clocks: etcd leases,
    certificate validity and token expiry all compare timestamps across nodes.

    Each node's offset from the controller is measured during its probe: node clock
    minus the controller's clock at the middle of the exec, uncertain by half the
    round trip. The check FAILs only when the skew is certainly above 10 s, i.e. when
    the largest offset minus its uncertainty exceeds the smallest offset plus its
    uncertainty by more than 10 s. When only the uncertainty keeps it from deciding,
    it is MANUAL."""
    readings = [clock_reading(member.name, member.facts) for member in nodes.members]
    gaps = missing_nodes(nodes)
    if len(readings) < 2 and not gaps:
        skip("fewer than two nodes: nothing to compare")
    findings, unknown = [], list(gaps)
    if len(readings) >= 2:
        ahead = max(readings, key=lambda r: r.offset - r.uncertainty)
        behind = min(readings, key=lambda r: r.offset + r.uncertainty)
        certain = (ahead.offset - ahead.uncertainty) - (behind.offset + behind.uncertainty)
        spread = max(r.offset for r in readings) - min(r.offset for r in readings)
        if certain > MAX_CLOCK_SKEW_SECONDS:
            findings.append(
                f"clocks differ by at least {certain:.1f} s between {ahead} and {behind} (offsets from the "
                "controller); "
                f"node preprocessing allows at most {MAX_CLOCK_SKEW_SECONDS:g} s"
            )
        elif spread > MAX_CLOCK_SKEW_SECONDS:
            unknown.append(
                f"clock offsets span {spread:.1f} s but the probes' round trips leave it uncertain whether "
                "the skew exceeds "
                f"{MAX_CLOCK_SKEW_SECONDS:g} s ({listed_readings(readings)}); compare `chronyc tracking` on the nodes"
            )
    conclude(findings, unknown=unknown, offsets={r.node: round(r.offset, 3) for r in readings})


def listed_readings(readings: list[ClockReading]) -> str:
    ordered = sorted(readings, key=lambda r: r.offset)
    return ", ".join(map(str, [ordered[0], ordered[-1]]))


# ---------------------------------------------------------------------------
# Same architecture and OS


@check(
    id="ACP-NODE-036",
    title="all nodes have the same CPU architecture",
    severity=Severity.HIGH,
    scope=Scope.NODE,
    applies=preprocessed(),
    refs=[NODE_ADD, ON_PREMISES],
    remediation=(
        "Build the cluster from nodes of one architecture. Mixed x86_64/aarch64 clusters need the dual-architecture "
        "(hybrid) Core package; with it, waive this check."
    ),
)
def check_same_architecture(nodes: NodeSet) -> None:
    """Nodes added to a cluster must have the cluster's CPU architecture, and with a
    single-architecture Core package the images exist for that architecture only:
    pods scheduled on a node of the other one cannot start. ACP also ships a hybrid
    package for mixed clusters; the plan does not say which package is used, so a
    mixed cluster FAILs and a hybrid install waives it."""
    require_one_value(
        nodes,
        lambda facts: facts.architecture,
        "the CPU architecture",
        "nodes of a cluster must share one architecture",
    )


@check(
    id="ACP-NODE-037",
    title="all nodes run the same OS distribution",
    severity=Severity.LOW,
    scope=Scope.NODE,
    applies=preprocessed(),
    refs=[NODE_ADD],
    remediation="Use the same OS distribution on every node of the cluster.",
)
def check_same_os(nodes: NodeSet) -> None:
    """The node-add page says a new node's OS type should match the existing nodes'.
    "Should" makes this LOW: a WARN under the default profile. The OS type is read
    as the /etc/os-release ID (ubuntu, rhel, centos, kylin): different releases of
    one distribution are the same type (our reading)."""
    require_one_value(nodes, lambda facts: facts.os_id, "the OS distribution", "the nodes' OS type should match")


# ---------------------------------------------------------------------------
# Self-built VIP


@check(
    id="ACP-NODE-038",
    title="the self-built VIP lies in the control-plane nodes' subnet",
    severity=Severity.HIGH,
    scope=Scope.NODE,
    applies=preprocessed(self_built_vip=True),
    refs=[ON_PREMISES, PREREQUISITES],
    remediation="Choose a VIP inside the subnet of the control-plane nodes' interfaces, or move the control-plane "
    "nodes into one subnet with it.",
)
def check_vip_in_control_plane_subnet(nodes: NodeSet) -> None:
    """keepalived moves the self-built VIP between control-plane nodes with gratuitous
    ARP, which only works when the VIP and every control-plane node share one L2
    subnet. The subnet of a node is read from its interface address that carries its
    plan IP, with that address's prefix length. Like the other node checks it skips
    immutable-OS clusters, whose nodes acpcheck does not probe (ACP-NET-014 still
    checks their VIP in the plan)."""
    plan = nodes.plan
    text = plan.spec.endpoint.address
    if not text or not is_ip(text):
        skip(f"the endpoint {text or '(unset)'} is not an IP address; ACP-NET-014 reports that")
    if not plan.control_plane:
        skip("the plan has no control-plane node; ACP-NET-012 reports that")
    vip = parse_ip(text)
    members = {member.name: member for member in nodes.members}
    findings, unknown = [], []
    for spec_node in plan.control_plane:
        planned = next((ip for ip in spec_node.addresses if ip.version == vip.version), None)
        member = members.get(spec_node.name)
        if planned is None:
            findings.append(
                f"{spec_node.name}: has no IPv{vip.version} address in the plan, so it cannot share a "
                f"subnet with the VIP {vip}"
            )
        elif member is None:
            unknown.append(
                f"{spec_node.name}: facts not gathered ("
                f"{nodes.failures[spec_node.name].kind if spec_node.name in nodes.failures else 'not in the node set'})"
            )
        elif (address := address_carrying(member, planned)) is None:
            unknown.append(
                f"{spec_node.name}: plan IP {planned} is on no interface (ACP-NODE-017), so its subnet is unknown"
            )
        elif vip not in IPNetwork(f"{address.address}/{address.prefix_length}"):
            subnet = IPNetwork(f"{address.address}/{address.prefix_length}").cidr
            findings.append(
                f"{spec_node.name}: the self-built VIP {vip} is outside its subnet {subnet} "
                f"({address_text(address)}); the VIP and all control-plane nodes must share one subnet"
            )
    conclude(findings, unknown=unknown, vip=str(vip))
