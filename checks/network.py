"""Network planning: CIDRs, node addresses, IP family, endpoint and control-plane layout.

Every check here reads the plan alone (scope ``plan``). Address arithmetic goes
through :mod:`acpcheck.addressing`; whenever many ranges are compared (every node
against every CIDR) the comparison is one :func:`~acpcheck.addressing.find_overlaps`
sweep, and node addresses compared with each other are grouped by value, so a
1,000-node plan costs O(n log n), never a loop over pairs. A finding per node or pair
is listed for the first few only, then "... and N more" (``some_lines``): 1,000 nodes
on one address are one short message, not a million lines in every report.

Messages name the rule, every value involved and where the plan sets it
(``spec.nodes[3].ipv4 at plan.yaml:34``), so a reader can fix the file without
looking anything up.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlparse

from netaddr import IPAddress, IPNetwork
from pydantic import Field

from acpcheck import Severity, When, check, fail, fail_if, manual, skip
from acpcheck.addressing import (
    Labelled,
    family_name,
    find_overlaps,
    host,
    is_domain,
    is_ip,
    parse_cidr,
    parse_ip,
    within,
)
from acpcheck.checks.support import (
    HCP_CONCEPTS,
    HOSTED_CONTROL_PLANE,
    planned_network,
    runtime_bridge_range,
    some_lines,
    some_names,
)
from acpcheck.constants import (
    ACP_DOCS,
    NODE_ADD,
    ON_PREMISES,
    PLATFORM_URL_ANNOTATION,
    PLATFORM_URL_PAGE,
    PREPROCESSING,
    PREREQUISITES,
    preprocessing_page,
)
from acpcheck.model.plan import PLATFORM_MANAGED, ClusterPlan, dotted

# ---------------------------------------------------------------------------
# Sources

ON_PREMISES_41 = f"{ACP_DOCS}/4.1/configure/clusters/on-premises.html"
SUBNETS = f"{ACP_DOCS}/4.3/configure/networking/functions/configure_subnet.html"
UNDERLAY = f"{ACP_DOCS}/4.3/configure/networking/how_to/kube_ovn/kubeovn_underlay_py.html"
PREPROCESSING_41 = preprocessing_page("4.1")
INSTALLING = f"{ACP_DOCS}/4.3/install/installing.html"
EVALUATING_WORKLOAD = f"{ACP_DOCS}/4.3/configure/scalability/evaluating_workload.html"
KB_UNATTENDED = "https://github.com/alauda/knowledge/blob/main/docs/en/solutions/Unattended_Installation.md"

# ---------------------------------------------------------------------------
# Facts these checks rely on

#: Kube-OVN join CIDRs the ACP installer uses when none is given. The official
#: docs do not state them; they come from the Alauda KB unattended-install script.
DEFAULT_JOIN_CIDRS: dict[int, IPNetwork] = {4: parse_cidr("100.64.0.0/16"), 6: parse_cidr("fd00:100:64::/64")}

#: Address families each ``spec.cluster.ipFamily`` needs.
IP_FAMILY_VERSIONS: dict[str, frozenset[int]] = {
    "ipv4": frozenset({4}),
    "ipv6": frozenset({6}),
    "dual-stack": frozenset({4, 6}),
}

#: Highest kubelet max-pods the Create Cluster form recommends.
RECOMMENDED_MAX_PODS = 256

#: Longest entry the form accepts in "APIServer URL" (publicAlternativeNames).
MAX_ALTERNATIVE_NAME_LENGTH = 253


# ---------------------------------------------------------------------------
# Shared helpers: the plan's ranges, labelled and located.


@dataclass(frozen=True)
class Located(Labelled):
    """A labelled range that also says where the plan sets it, for messages."""

    at: str = ""

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text} ({self.at})" if self.at else text


def field_at(plan: ClusterPlan, *path: str | int) -> str:
    """``spec.nodes[3].ipv4 at plan.yaml:34``: the field's name and its line."""
    return f"{dotted(path)} at {plan.where(*path)}"


def located_cidrs(
    plan: ClusterPlan, label: str, path: tuple[str, ...], networks: Iterable[IPNetwork] | None
) -> list[Located]:
    at = field_at(plan, *path)
    return [Located(label, network, at) for network in networks or ()]


def located_address(label: str, address: IPAddress, at: str) -> Located:
    single = host(label, address)
    return Located(single.label, single.network, at)


def ip_versions(plan: ClusterPlan) -> frozenset[int]:
    return IP_FAMILY_VERSIONS[plan.spec.cluster.ip_family]


def families(versions: Iterable[int]) -> str:
    """{4, 6} -> 'IPv4 and IPv6'."""
    return " and ".join(family_name(v) for v in sorted(set(versions)))


def pod_cidrs(plan: ClusterPlan) -> list[Located]:
    return located_cidrs(plan, "cluster CIDR", ("spec", "network", "clusterCIDR"), planned_network(plan).cluster_cidr)


def service_cidrs(plan: ClusterPlan) -> list[Located]:
    return located_cidrs(plan, "service CIDR", ("spec", "network", "serviceCIDR"), planned_network(plan).service_cidr)


def join_cidrs(plan: ClusterPlan) -> list[Located]:
    """Kube-OVN join CIDRs; when the plan leaves them unset, the installer defaults for its IP families."""
    if planned_network(plan).plugin != "kube-ovn":
        return []
    path = ("spec", "network", "kubeOvn", "joinCIDR")
    given = planned_network(plan).kube_ovn.join_cidr
    if given:
        return located_cidrs(plan, "join CIDR", path, given)
    at = f"{field_at(plan, *path)}, unset: installer default"
    return [Located("join CIDR", DEFAULT_JOIN_CIDRS[version], at) for version in sorted(ip_versions(plan))]


def cluster_cidrs(plan: ClusterPlan) -> list[Located]:
    """Every range the cluster itself allocates from: pods, services and the Kube-OVN join network."""
    return pod_cidrs(plan) + service_cidrs(plan) + join_cidrs(plan)


def node_addresses(plan: ClusterPlan, role: str | None = None) -> list[Located]:
    """Every address of every node (or of the nodes with ``role``), located at its field."""
    addresses = []
    for index, node in enumerate(plan.spec.nodes):
        if role is not None and node.role != role:
            continue
        for key, address in (("ipv4", node.ipv4), ("ipv6", node.ipv6)):
            if address is not None:
                addresses.append(
                    located_address(f"node {node.name}", address, field_at(plan, "spec", "nodes", index, key))
                )
    return addresses


def endpoint_address(plan: ClusterPlan) -> Located | None:
    """The cluster endpoint when it is an IP (a VIP); None for a domain or no endpoint."""
    address = plan.spec.endpoint.address
    if address is None or not is_ip(address):
        return None
    return located_address("endpoint", parse_ip(address), field_at(plan, "spec", "endpoint", "address"))


def host_network_addresses(plan: ClusterPlan) -> list[Located]:
    """Addresses on the hosts' own network: every node, plus the endpoint VIP."""
    vip = endpoint_address(plan)
    return node_addresses(plan) + ([vip] if vip else [])


def size(item: Labelled) -> int:
    return item.last - item.first + 1


def clash(a: Labelled, b: Labelled) -> str:
    """How two overlapping ranges meet, in words."""
    if size(a) == 1 and size(b) == 1:
        return f"{a} and {b} are the same address"
    if size(a) == 1:
        return f"{a} lies inside {b}"
    if size(b) == 1:
        return f"{b} lies inside {a}"
    return f"{a} overlaps {b}"


def kubelet_max_pods(plan: ClusterPlan, params: dict[str, Any]) -> tuple[int, str]:
    """Pods per node the kubelet will allow, and where that number comes from.

    The form's precedence: an explicit ``max-pods`` kubelet parameter, else Flannel's
    Node IP Count (the form writes it into max-pods), else the installer default.
    ValueError when the plan's value is not a positive integer.
    """
    explicit = plan.spec.kubelet.extra_args.get("max-pods")
    if explicit is not None:
        at = field_at(plan, "spec", "kubelet", "extraArgs", "max-pods")
        text = str(explicit).strip()
        if not text.isdigit() or int(text) < 1:
            raise ValueError(f"kubelet max-pods {explicit!r} ({at}) is not a positive integer")
        return int(text), f"kubelet max-pods ({at})"
    network = planned_network(plan)
    if network.plugin == "flannel" and network.node_ip_count is not None:
        return (
            network.node_ip_count,
            "Flannel nodeIPCount, which the form turns into kubelet max-pods "
            f"({field_at(plan, 'spec', 'network', 'nodeIPCount')})",
        )
    return int(params["defaultMaxPods"]), "the installer default kubelet max-pods"


#: The profile parameters the max-pods checks read, validated when a profile is loaded:
#: a whole number of pods per node (kubelet accepts any positive value; more than a /16
#: of pods on one node is surely a typo).
MAX_PODS_PARAMS: dict[str, Any] = {"defaultMaxPods": Annotated[int, Field(strict=True, ge=1, le=65536)]}

# Applicability shared by several checks.
BUILT_BY_ACP = When(cluster_types=PLATFORM_MANAGED)
#: For checks that read spec.network, which plans of imported/registered clusters may omit.
NETWORK_BUILT_BY_ACP = When(cluster_types=PLATFORM_MANAGED, needs_network=True)
#: Cluster types whose control-plane nodes are listed in the plan and installed by ACP.
OWN_CONTROL_PLANE = frozenset({"on-premise", "immutable"})

# ---------------------------------------------------------------------------
# CIDRs


@check(
    id="ACP-NET-001",
    title="pod and service CIDRs do not overlap",
    severity=Severity.CRITICAL,
    refs=[ON_PREMISES],
    remediation="Choose a service CIDR outside the cluster (pod) CIDR, e.g. the installer defaults 10.3.0.0/16 (pods) "
    "and 10.4.0.0/16 (services).",
    applies=When(needs_network=True),
)
def check_pod_service_cidrs_disjoint(plan: ClusterPlan) -> None:
    """The Create Cluster form refuses, for every network plugin, a Service CIDR that overlaps
    the default subnet (cluster CIDR): a ClusterIP that is also a pod address is ambiguous,
    and traffic to one of them goes to the other. Applies to every cluster type, because a
    cluster with overlapping ranges is broken however it was built (skipped when the plan of an
    imported or registered cluster leaves the network out)."""
    pairs = find_overlaps(service_cidrs(plan), pod_cidrs(plan))
    findings = [
        f"{clash(service, pod)}: the service CIDR must not overlap the cluster (pod) CIDR" for service, pod in pairs
    ]
    fail_if(findings, at=plan.where("spec", "network", "serviceCIDR"))


@check(
    id="ACP-NET-002",
    title="the Kube-OVN join CIDR overlaps neither the pod nor the service CIDR",
    severity=Severity.CRITICAL,
    refs=[ON_PREMISES, SUBNETS, KB_UNATTENDED],
    remediation=(
        "Set spec.network.kubeOvn.joinCIDR to a range outside the cluster and service CIDRs "
        "(the installer default is 100.64.0.0/16, fd00:100:64::/64 for IPv6), or move the cluster/service "
        "CIDR away from it."
    ),
    applies=When(cluster_types=PLATFORM_MANAGED, plugins=frozenset({"kube-ovn"})),
)
def check_join_cidr_disjoint(plan: ClusterPlan) -> None:
    """Kube-OVN's join subnet carries node-to-pod traffic in Overlay mode; the form refuses a
    Join CIDR that overlaps the default subnet or the Service CIDR. Underlay does not use the
    join subnet, but it is still created and its range must not conflict. When the plan sets
    no joinCIDR, the check compares the installer's default (100.64.0.0/16 and
    fd00:100:64::/64), taken from the Alauda KB unattended-install script because the
    product docs do not state it."""
    pairs = find_overlaps(join_cidrs(plan), pod_cidrs(plan) + service_cidrs(plan))
    findings = [
        f"{clash(join, other)}: the Kube-OVN join CIDR must not overlap the cluster or service CIDR"
        for join, other in pairs
    ]
    fail_if(findings, at=plan.where("spec", "network", "kubeOvn", "joinCIDR"))


@check(
    id="ACP-NET-003",
    title="node addresses and the endpoint VIP lie outside the cluster's own CIDRs",
    severity=Severity.HIGH,
    refs=[ON_PREMISES, INSTALLING],
    remediation=(
        "Pick service and join CIDRs (and, for overlay networks, a cluster CIDR) that do not contain "
        "the hosts' network, e.g. the installer defaults 10.3.0.0/16, 10.4.0.0/16 and 100.64.0.0/16 when "
        "the hosts are elsewhere."
    ),
    applies=NETWORK_BUILT_BY_ACP,
)
def check_host_addresses_outside_cidrs(plan: ClusterPlan) -> None:
    """A node address (or the endpoint VIP) inside the service CIDR can be taken by a ClusterIP,
    and inside the join CIDR it collides with Kube-OVN's node gateway addresses; either way
    traffic to that host is captured by the cluster network. In overlay modes (Kube-OVN
    Overlay, Calico, Flannel, Custom) the container network must not share the host network
    segment either. Kube-OVN Underlay is the exception for the cluster CIDR: its pods sit on
    the physical network by design, and ACP-NET-004 checks that used addresses are reserved."""
    network = planned_network(plan)
    underlay = network.plugin == "kube-ovn" and network.kube_ovn.transmit_mode == "underlay"
    ranges = service_cidrs(plan) + join_cidrs(plan) + ([] if underlay else pod_cidrs(plan))
    pairs = find_overlaps(ranges, host_network_addresses(plan))
    findings = [
        f"{clash(cidr, address)}: host-network addresses must stay out of the cluster's CIDRs"
        for cidr, address in pairs
    ]
    fail_if(some_lines(findings, "addresses inside the cluster's CIDRs"))


@check(
    id="ACP-NET-004",
    title="the Kube-OVN Underlay subnet has a gateway, a NIC and its used addresses reserved",
    severity=Severity.HIGH,
    refs=[ON_PREMISES, UNDERLAY, SUBNETS],
    remediation=(
        "Set spec.network.kubeOvn.gateway to the physical gateway inside the cluster CIDR, list every address of the "
        "cluster CIDR already in use (nodes, VIPs, other devices) in reservedIPs, and name the bridged NIC "
        "in spec.network.nic "
        "(or nic on every node)."
    ),
    applies=When(cluster_types=PLATFORM_MANAGED, transmit_modes=frozenset({"underlay"})),
)
def check_underlay_subnet(plan: ClusterPlan) -> None:
    """Underlay pods take addresses straight from the physical network, so the form requires the
    physical default gateway, which must lie inside the Cluster CIDR, and the NIC to bridge
    (node NIC takes precedence over the cluster NIC). Reserved IPs are excluded from
    allocation and only mean something inside the Cluster CIDR. Addresses of the subnet that
    other devices already use must be reserved; this check applies that to what the plan
    knows about: node addresses and the endpoint VIP."""
    network = planned_network(plan)
    kube_ovn = network.kube_ovn
    pods = pod_cidrs(plan)
    pod_text = ", ".join(str(pod.network) for pod in pods)
    findings = []

    gateway_path = ("spec", "network", "kubeOvn", "gateway")
    if not kube_ovn.gateway:
        findings.append(
            f"no default gateway ({field_at(plan, *gateway_path)}): Underlay needs the physical network's "
            "gateway, inside the cluster CIDR"
        )
    for address in kube_ovn.gateway or ():
        gateway = located_address("gateway", address, field_at(plan, *gateway_path))
        if not within(gateway, pods):
            findings.append(
                f"{gateway} is outside the cluster CIDR {pod_text}: the Underlay gateway must lie inside it"
            )

    reserved = {int(parse_ip(text)) for text in kube_ovn.reserved_ips}
    for index, text in enumerate(kube_ovn.reserved_ips):
        reserved_ip = located_address(
            "reserved IP", parse_ip(text), field_at(plan, "spec", "network", "kubeOvn", "reservedIPs", index)
        )
        if not within(reserved_ip, pods):
            findings.append(
                f"{reserved_ip} is outside the cluster CIDR {pod_text}: "
                "reserved IPs only exclude addresses of the Underlay subnet"
            )

    unreserved = [
        f"{clash(cidr, address)} but is not in reservedIPs: Kube-OVN would hand it to a pod"
        for cidr, address in find_overlaps(pods, host_network_addresses(plan))
        if address.first not in reserved
    ]
    findings += some_lines(unreserved, "unreserved addresses")

    if network.nic is None:
        without_nic = [node.name for node in plan.spec.nodes if node.nic is None]
        if without_nic:
            findings.append(
                f"no NIC to bridge for node(s) {some_names(without_nic)} ({field_at(plan, 'spec', 'network', 'nic')}): "
                "Underlay needs spec.network.nic or a nic on every node"
            )
    fail_if(findings, at=plan.where("spec", "network", "kubeOvn"))


@check(
    id="ACP-NET-005",
    title="hosted cluster pod and service CIDRs do not overlap the management cluster's",
    severity=Severity.HIGH,
    refs=[HCP_CONCEPTS],
    remediation=(
        "Set spec.managementCluster.podCIDR and serviceCIDR to the management cluster's ranges, and choose hosted "
        "cluster CIDRs outside them (e.g. 10.13.0.0/16 and 10.14.0.0/16 when the management cluster uses the defaults)."
    ),
    applies=When(cluster_types=HOSTED_CONTROL_PLANE, needs_network=True),
)
def check_hosted_cidrs_disjoint_from_management(plan: ClusterPlan) -> None:
    """The Hosted Control Plane concepts page requires the hosted cluster's pod CIDR not to
    overlap the management cluster's pod CIDR, and its service CIDR not to overlap the
    management cluster's service CIDR: the hosted control plane runs as pods of the management
    cluster and talks to the hosted data plane. That page is the only one that states the
    rule; the other ACP pages have generic no-overlap rules only (a cluster's CIDRs against
    the host network, the global cluster and other clusters).

    The management cluster's CIDRs come from the plan (spec.managementCluster); a range the
    plan does not give cannot be compared here, and is left to a person (MANUAL) with what
    to compare, unless the given one already overlaps (FAIL)."""
    management = plan.spec.management_cluster
    findings, unset, by_hand = [], [], []
    for label, key, hosted, theirs in (
        ("pod", "podCIDR", pod_cidrs(plan), management.pod_cidr),
        ("service", "serviceCIDR", service_cidrs(plan), management.service_cidr),
    ):
        path = ("spec", "managementCluster", key)
        if not theirs:
            unset.append(dotted(path))
            by_hand.append(f"{label} CIDR overlaps none of {', '.join(str(cidr.network) for cidr in hosted)}")
            continue
        management_ranges = located_cidrs(plan, f"management cluster {label} CIDR", path, theirs)
        for ours, other in find_overlaps(hosted, management_ranges):
            findings.append(
                f"{clash(ours, other)}: a hosted cluster's {label} CIDR must not overlap the management cluster's"
            )
    fail_if(findings, at=plan.where("spec", "managementCluster"))
    if unset:
        manual(
            f"{' and '.join(unset)} not set, so acpcheck cannot compare: check on the management cluster that its "
            f"{' and that its '.join(by_hand)} (this cluster's own; source: {HCP_CONCEPTS}), or set the field"
        )


@check(
    id="ACP-NET-006",
    title="node addresses and cluster CIDRs avoid the container runtime's bridge range",
    severity=Severity.MEDIUM,
    refs=[PREPROCESSING_41, PREPROCESSING, PREREQUISITES],
    remediation=(
        "Move the listed ranges out of 172.16.0.0-172.32.255.255 (ACP 4.0/4.1) or 172.17.0.0-172.18.255.255 "
        "(ACP 4.2+), "
        "or set `bip` in the Docker (4.0/4.1) or nerdctl (4.2+) configuration so the runtime bridge uses a free range; "
        "contact support if neither is possible."
    ),
    applies=When(cluster_types=frozenset({"on-premise", "hosted-control-plane"}), needs_network=True),
)
def check_runtime_bridge_range_free(plan: ClusterPlan) -> None:
    """Node preprocessing requires the container runtime's bridge range to be unused: on
    ACP 4.0/4.1 Docker takes 172.16.x.x-172.32.x.x, on 4.2/4.3 nerdctl takes 172.17.x.x-
    172.18.x.x. A node, pod, service or join address in that range is routed to the local
    bridge instead of the network. The plan cannot say whether `bip` was changed, so a
    finding asks for either. Not applied to immutable-OS nodes (image-provisioned, outside
    node preprocessing) or to imported/registered clusters."""
    runtime, bridge = runtime_bridge_range(plan)
    pairs = find_overlaps(cluster_cidrs(plan) + node_addresses(plan), [bridge])
    findings = [
        f"{clash(item, bridge)}: {runtime} uses that range for its bridge unless `bip` is set" for item, _ in pairs
    ]
    fail_if(some_lines(findings, "ranges in the bridge range"))


# ---------------------------------------------------------------------------
# IP family


@check(
    id="ACP-NET-007",
    title="every CIDR, node and gateway carries exactly the cluster's IP families",
    severity=Severity.HIGH,
    refs=[ON_PREMISES, INSTALLING],
    remediation=(
        "Match spec.cluster.ipFamily: ipv4 takes one IPv4 CIDR per field, ipv6 one IPv6 CIDR, dual-stack a "
        "list of one IPv4 "
        "and one IPv6 CIDR (e.g. [10.3.0.0/16, fd00:10:16::/64]); give every node an address of each family."
    ),
    applies=NETWORK_BUILT_BY_ACP,
)
def check_ip_families_consistent(plan: ClusterPlan) -> None:
    """The cluster network protocol (IPv4, IPv6 or dual-stack) cannot change after creation.
    Dual-stack needs every node to have a correctly configured IPv6 address besides its IPv4
    one, and every range (cluster, service, join) and the Underlay gateway in both families;
    IPv6 single-stack needs IPv6 everywhere; an IPv4 cluster cannot use IPv6 CIDRs."""
    wanted = ip_versions(plan)
    ip_family = plan.spec.cluster.ip_family
    network = planned_network(plan)
    fields: list[tuple[tuple[str, ...], tuple[Any, ...] | None]] = [
        (("spec", "network", "clusterCIDR"), network.cluster_cidr),
        (("spec", "network", "serviceCIDR"), network.service_cidr),
    ]
    if network.plugin == "kube-ovn":
        fields += [
            (("spec", "network", "kubeOvn", "joinCIDR"), network.kube_ovn.join_cidr),
            (("spec", "network", "kubeOvn", "gateway"), network.kube_ovn.gateway),
        ]
    findings = []
    for path, values in fields:
        have = {value.version for value in values or ()}
        if values and have != wanted:
            shown = ", ".join(str(value) for value in values)
            findings.append(
                f"{field_at(plan, *path)} is {shown} ({families(have)}): ipFamily {ip_family} needs {families(wanted)}"
            )
    short = []
    for index, node in enumerate(plan.spec.nodes):
        missing = wanted - {address.version for address in node.addresses}
        if missing:
            short.append(
                f"node {node.name} ({field_at(plan, 'spec', 'nodes', index)}) has no {families(missing)} address: "
                f"ipFamily {ip_family} needs {families(wanted)} on every node"
            )
    fail_if(
        findings + some_lines(short, "nodes without an address of each family"),
        at=plan.where("spec", "cluster", "ipFamily"),
    )


@check(
    id="ACP-NET-008",
    title="an IPv6 global cluster is reached through a domain name",
    severity=Severity.HIGH,
    refs=[PREREQUISITES, INSTALLING],
    remediation=(
        "Use a domain name for the platform access address: spec.endpoint.address, or "
        "spec.endpoint.externalAccess when the endpoint is a self-built VIP."
    ),
    applies=When(cluster_roles=frozenset({"global"}), ip_families=frozenset({"ipv6"})),
)
def check_ipv6_global_has_domain(plan: ClusterPlan) -> None:
    """Platform access over IPv6 requires a domain name; the installer insists on one when the
    global cluster is single-stack IPv6. The plan has no separate "platform access address"
    field, so a domain in spec.endpoint.address or spec.endpoint.externalAccess is accepted
    (a self-built VIP endpoint must itself be an IP)."""
    endpoint = plan.spec.endpoint
    candidates = [value for value in (endpoint.address, endpoint.external_access) if value]
    if not any(is_domain(value) for value in candidates):
        shown = ", ".join(candidates) or "nothing"
        fail(
            f"{field_at(plan, 'spec', 'endpoint')} gives {shown}: an IPv6 global cluster needs a domain "
            "name as its platform access address"
        )


# ---------------------------------------------------------------------------
# Pod address capacity


@check(
    id="ACP-NET-009",
    title="the Flannel cluster CIDR has a per-node block for every planned node",
    severity=Severity.HIGH,
    refs=[ON_PREMISES_41],
    remediation=(
        "Set spec.network.nodeIPCount (pod IPs per node), and widen the cluster CIDR or lower nodeIPCount until "
        "CIDR size / next power of two >= nodeIPCount covers every node; the network cannot change after creation."
    ),
    applies=When(cluster_types=PLATFORM_MANAGED, plugins=frozenset({"flannel"})),
)
def check_flannel_capacity(plan: ClusterPlan) -> None:
    """Flannel splits the cluster CIDR evenly into one block per node, sized by Node IP Count,
    and the form derives the maximum node count from the two. The docs do not give the
    formula; this check uses standard subnetting: block = the smallest power of two >= Node
    IP Count, maximum nodes = cluster CIDR size / block. Every planned node, control plane
    included, needs a block."""
    node_ip_count = planned_network(plan).node_ip_count
    if node_ip_count is None:
        fail(
            f"{field_at(plan, 'spec', 'network', 'nodeIPCount')} is not set: Flannel needs the number of "
            "pod IPs per node"
        )
    block = 1 << (node_ip_count - 1).bit_length()
    planned = len(plan.spec.nodes)
    findings = []
    for cidr in pod_cidrs(plan):
        fits = size(cidr) // block
        if fits < max(planned, 1):
            findings.append(
                f"{cidr} holds {fits} per-node blocks of {block} addresses (nodeIPCount {node_ip_count}), "
                f"but the plan has {planned} nodes"
            )
    fail_if(findings, at=plan.where("spec", "network", "clusterCIDR"))


@check(
    id="ACP-NET-010",
    title="kubelet max-pods is at most 256",
    severity=Severity.LOW,
    refs=[ON_PREMISES, EVALUATING_WORKLOAD],
    remediation="Keep kubelet max-pods (spec.kubelet.extraArgs.max-pods, or Flannel's nodeIPCount) at 256 or less; add "
    "nodes for more pods.",
    applies=NETWORK_BUILT_BY_ACP,
    params=MAX_PODS_PARAMS,
)
def check_max_pods_recommended(plan: ClusterPlan, params: dict[str, Any]) -> None:
    """The form accepts any positive max-pods but recommends a value not exceeding 256, and
    ACP's tested maximum is 250 pods per node. The value checked is the one the kubelet will
    get: an explicit max-pods parameter, else Flannel's Node IP Count (which the form turns
    into max-pods). A value that is not a positive integer is reported too."""
    try:
        max_pods, source = kubelet_max_pods(plan, params)
    except ValueError as error:
        fail(str(error))
    if max_pods > RECOMMENDED_MAX_PODS:
        fail(
            f"{source} is {max_pods}: values above {RECOMMENDED_MAX_PODS} are not recommended (ACP tests up "
            "to 250 pods per node)"
        )


@check(
    id="ACP-NET-011",
    title="the cluster CIDR has an address for every pod the nodes can run",
    severity=Severity.LOW,
    refs=[ON_PREMISES, EVALUATING_WORKLOAD],
    remediation="Widen the cluster CIDR (e.g. a /16 gives 65,536 addresses) or plan a lower max-pods; pod ranges "
    "cannot change after creation.",
    applies=When(cluster_types=PLATFORM_MANAGED, plugins=frozenset({"kube-ovn", "calico"})),
    params=MAX_PODS_PARAMS,
)
def check_pod_cidr_capacity(plan: ClusterPlan, params: dict[str, Any]) -> None:
    """Our derived threshold, not an ACP number: nodes x kubelet max-pods should fit in the
    cluster CIDR, or pods stay Pending for want of an address when nodes fill up. Kube-OVN
    allocates from the whole default subnet and Calico in per-node blocks borrowed from the
    pool, so the CIDR size is an upper bound (the gateway, reserved IPs and partly used
    blocks take some); hence low severity. max-pods is the plan's kubelet parameter or the
    installer default (110)."""
    max_pods, source = kubelet_max_pods(plan, params)
    nodes = len(plan.spec.nodes)
    needed = nodes * max_pods
    findings = [
        f"{cidr} holds {size(cidr):,} addresses, but {nodes} nodes x {max_pods} pods ({source}) need up to {needed:,}"
        for cidr in pod_cidrs(plan)
        if size(cidr) < needed
    ]
    fail_if(findings, at=plan.where("spec", "network", "clusterCIDR"))


# ---------------------------------------------------------------------------
# Control plane and endpoint


@check(
    id="ACP-NET-012",
    title="the control plane has a supported number of nodes",
    severity=Severity.HIGH,
    refs=[NODE_ADD, INSTALLING, PREREQUISITES],
    remediation="Plan 1 (no HA) or 3 control-plane nodes for a global cluster; at least 1 and never 2 for a workload "
    "cluster (3 or 5 for HA).",
    applies=When(cluster_types=OWN_CONTROL_PLANE),
)
def check_control_plane_count(plan: ClusterPlan) -> None:
    """A cluster needs at least one control-plane node, and exactly two is not supported (two
    etcd members cannot lose either one). The global cluster installer offers 1 or 3.
    Hosted-control-plane clusters are not checked (their control plane runs in the management
    cluster), nor are imported/registered ones."""
    count = len(plan.control_plane)
    at = field_at(plan, "spec", "nodes")
    if count == 0:
        fail(f"no control-plane node in {at}: a cluster needs at least one")
    if count == 2:
        fail(f"2 control-plane nodes ({at}): exactly two is not supported; use 1, or 3 for high availability")
    if plan.spec.cluster.role == "global" and count not in (1, 3):
        fail(f"the global cluster has {count} control-plane nodes ({at}): the installer supports 1 or 3")


@check(
    id="ACP-NET-013",
    title="the control plane has an odd number of nodes",
    severity=Severity.LOW,
    refs=[NODE_ADD],
    remediation="Use an odd number of control-plane nodes (3 or 5); an even one adds no fault tolerance.",
    applies=When(cluster_roles=frozenset({"workload"}), cluster_types=OWN_CONTROL_PLANE),
)
def check_control_plane_odd(plan: ClusterPlan) -> None:
    """Odd control-plane counts (3 or 5) are recommended: etcd needs a majority, so 4 nodes
    survive one failure just like 3, and 6 like 5. Two is refused outright by ACP-NET-012;
    the global cluster's 1-or-3 rule is there too."""
    count = len(plan.control_plane)
    if count >= 4 and count % 2 == 0:
        fail(f"{count} control-plane nodes ({field_at(plan, 'spec', 'nodes')}): an odd count (3 or 5) is recommended")


@check(
    id="ACP-NET-014",
    title="the self-built VIP has a valid VRID and is an unused IP address",
    severity=Severity.HIGH,
    refs=[ON_PREMISES, PREREQUISITES],
    remediation=(
        "Give spec.endpoint.selfBuiltVIP.vrid a VRID from 1 to 255 that is unused in the L2 segment (the installer "
        "default is 137), and make spec.endpoint.address an unused IP in the control-plane nodes' subnet."
    ),
    applies=When(cluster_types=OWN_CONTROL_PLANE, self_built_vip=True),
)
def check_self_built_vip(plan: ClusterPlan) -> None:
    """keepalived needs a VRRP virtual router id (1-255, unique in the segment) and a VIP that
    no node already uses; a self-built VIP cannot be a domain name. The rule that the VIP
    shares the control-plane nodes' subnet needs the subnet masks, which the plan does not
    carry; it is left to the load-balancer checks on live nodes."""
    endpoint = plan.spec.endpoint
    findings = []
    vrid_at = field_at(plan, "spec", "endpoint", "selfBuiltVIP", "vrid")
    if endpoint.self_built_vip.vrid is None:
        findings.append(f"no VRID ({vrid_at}): keepalived needs one from 1 to 255")
    elif not 1 <= endpoint.self_built_vip.vrid <= 255:
        findings.append(f"VRID {endpoint.self_built_vip.vrid} ({vrid_at}) is outside 1-255")
    address_at = field_at(plan, "spec", "endpoint", "address")
    vip = endpoint_address(plan)
    if endpoint.address is None:
        findings.append(f"no VIP ({address_at}): a self-built VIP needs an IP address")
    elif vip is None:
        findings.append(
            f"endpoint {endpoint.address} ({address_at}) is a domain: a self-built VIP must be an IP address"
        )
    else:
        taken = [
            f"{clash(vip, node)}: the VIP must differ from every node IP"
            for _, node in find_overlaps([vip], node_addresses(plan))
        ]
        findings += some_lines(taken, "nodes with the VIP's address")
    fail_if(findings, at=plan.where("spec", "endpoint"))


@check(
    id="ACP-NET-015",
    title="the cluster endpoint is not a control-plane node's own address",
    severity=Severity.LOW,
    refs=[ON_PREMISES],
    remediation="Put a load balancer VIP (or a domain resolving to it) in spec.endpoint.address, even for a single "
    "control-plane node.",
    applies=When(cluster_types=OWN_CONTROL_PLANE, self_built_vip=False),
)
def check_endpoint_not_a_node(plan: ClusterPlan) -> None:
    """With one control-plane node whose own IP is the endpoint, the cluster can never grow to
    a highly available control plane, so the docs recommend a load balancer even for one node.
    With several control-plane nodes, an endpoint that is one of them fails with that node.
    Self-built VIP plans are covered by ACP-NET-014."""
    vip = endpoint_address(plan)
    if vip is None:
        return
    hits = [node for _, node in find_overlaps([vip], node_addresses(plan, role="control-plane"))]
    if len(plan.control_plane) == 1:
        consequence = "with a single control-plane node the cluster can never be scaled to high availability"
    else:
        consequence = "the cluster endpoint goes down with that node"
    fail_if(
        some_lines(
            [f"{clash(vip, node)}: {consequence}" for node in hits], "control-plane nodes with the endpoint's address"
        )
    )


@check(
    id="ACP-NET-016",
    title="APIServer alternative names are IP addresses or domain names of at most 253 characters",
    severity=Severity.MEDIUM,
    refs=[ON_PREMISES],
    remediation="List only IP addresses or DNS names (at most 253 characters each) in "
    "spec.apiServer.publicAlternativeNames.",
    applies=BUILT_BY_ACP,
)
def check_public_alternative_names(plan: ClusterPlan) -> None:
    """publicAlternativeNames ("APIServer URL") go into the API server certificate; the form
    accepts only IPs or domain names, at most 253 characters. A URL, a port or a wildcard
    there breaks certificate generation."""
    findings = []
    for index, name in enumerate(plan.spec.api_server.public_alternative_names):
        at = field_at(plan, "spec", "apiServer", "publicAlternativeNames", index)
        if len(name) > MAX_ALTERNATIVE_NAME_LENGTH:
            findings.append(
                f"{name[:40]}... ({at}) is {len(name)} characters: at most {MAX_ALTERNATIVE_NAME_LENGTH} are allowed"
            )
        elif not (is_ip(name) or is_domain(name)):
            findings.append(f"{name!r} ({at}) is neither an IP address nor a domain name")
    fail_if(findings, at=plan.where("spec", "apiServer", "publicAlternativeNames"))


# ---------------------------------------------------------------------------
# Nodes and connectivity


@check(
    id="ACP-NET-017",
    title="every node has a unique name and unique addresses",
    severity=Severity.HIGH,
    refs=[ON_PREMISES, PREPROCESSING],
    remediation="Give each machine one entry in spec.nodes, with its own name and its own IPv4/IPv6 addresses.",
    applies=BUILT_BY_ACP,
)
def check_nodes_unique(plan: ClusterPlan) -> None:
    """Nodes are named by IP or hostname and both must be unique across the cluster; a machine
    belongs to one cluster only, and two nodes with the same address would be the same
    machine joined twice."""
    places: dict[str, list[str]] = defaultdict(list)
    for index, node in enumerate(plan.spec.nodes):
        places[node.name].append(field_at(plan, "spec", "nodes", index, "name"))
    findings = [
        f"node name {name!r} is used {len(at)} times ({some_names(at)})" for name, at in places.items() if len(at) > 1
    ]
    # Grouped by value, not compared pair by pair: 1,000 nodes on one address are one
    # finding naming a few of them, where the pairs were 499,500 findings.
    sharing: dict[tuple[int, int], list[Located]] = defaultdict(list)
    for address in node_addresses(plan):
        sharing[(address.version, address.first)].append(address)
    findings += [
        f"{len(group)} nodes have the same address {group[0].network[0]}: "
        f"{some_names([str(a) for a in group])}; two nodes cannot share an address"
        for group in sharing.values()
        if len(group) > 1
    ]
    fail_if(some_lines(findings, "duplicated names or addresses"), at=plan.where("spec", "nodes"))


@check(
    id="ACP-NET-018",
    title="a workload cluster on another network carries an https cpaas.io/platform-url",
    severity=Severity.HIGH,
    refs=[ON_PREMISES, PLATFORM_URL_PAGE],
    remediation=(
        "Add the annotation cpaas.io/platform-url: https://<an address of global reachable from this cluster> to "
        "spec.cluster.annotations (a domain different from the platform access address, forwarding HTTPS to "
        "every global control-plane node)."
    ),
    applies=When(cluster_roles=frozenset({"workload"})),
)
def check_platform_url_annotation(plan: ClusterPlan) -> None:
    """global and workload clusters must reach each other. When the workload cluster needs
    External Access (it is not on global's network), global's own address is likely
    unreachable from it too, so the cluster must carry the cpaas.io/platform-url annotation
    with an https URL of global that it can reach. A plan without External Access is
    skipped: both clusters share a network."""
    external_access = plan.spec.endpoint.external_access
    if external_access is None:
        skip("no spec.endpoint.externalAccess: global and this cluster share a network")
    at = field_at(plan, "spec", "cluster", "annotations", PLATFORM_URL_ANNOTATION)
    url = plan.spec.cluster.annotations.get(PLATFORM_URL_ANNOTATION)
    reason = f"spec.endpoint.externalAccess is {external_access}, so global and this cluster are on different networks"
    if url is None:
        fail(
            f"no {PLATFORM_URL_ANNOTATION} annotation ({at}): {reason}; the cluster needs an address of "
            "global it can reach"
        )
    parsed = urlparse(url)
    if parsed.scheme != "https" or not parsed.hostname:
        fail(f"{PLATFORM_URL_ANNOTATION} {url!r} ({at}) is not an https URL with a host")
