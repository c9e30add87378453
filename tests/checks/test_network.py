"""Tables of passing and failing plans for every check in acpcheck.checks.network.

Each case starts from the base example (a 4.3 Kube-OVN overlay workload cluster:
cp1-cp3 at 192.0.2.11-13, w1/w2 at 192.0.2.21-22, LB VIP 192.0.2.100), applies
edits in order, and runs one check the way the plugin grades it. A FAIL must name
the offending values; LOW-severity checks come out as WARN under the default
fail_on=medium and as FAIL under fail_on=low, and both are covered.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conftest import BASE, DELETE, EXAMPLES, make_plan, merge, run_check

from acpcheck.checks import network as network_checks
from acpcheck.checks.network import (
    check_control_plane_count,
    check_control_plane_odd,
    check_endpoint_not_a_node,
    check_flannel_capacity,
    check_host_addresses_outside_cidrs,
    check_hosted_cidrs_disjoint_from_management,
    check_ip_families_consistent,
    check_ipv6_global_has_domain,
    check_join_cidr_disjoint,
    check_max_pods_recommended,
    check_nodes_unique,
    check_platform_url_annotation,
    check_pod_cidr_capacity,
    check_pod_service_cidrs_disjoint,
    check_public_alternative_names,
    check_runtime_bridge_range_free,
    check_self_built_vip,
    check_underlay_subnet,
)
from acpcheck.model.check import Severity
from acpcheck.model.plan import ClusterPlan, load_plan

NETWORK_CHECKS: list[Callable[..., Any]] = [
    function
    for _, function in inspect.getmembers(network_checks, inspect.isfunction)
    if hasattr(function, "__acpcheck__")
]

# ---------------------------------------------------------------------------
# Building blocks for plans


Edit = dict[str, Any] | tuple["Edit", ...]


def plan_of(*edits: Edit) -> ClusterPlan:
    """The base plan with each edit deep-merged in turn; a tuple is a preset of several edits.

    Edits are applied one by one rather than merged with each other first, so that a
    DELETE always removes a key from the plan built so far.
    """
    data = BASE
    for edit in flatten(edits):
        data = merge(data, edit)
    return make_plan(base=data)


def flatten(edits: tuple[Edit, ...]) -> Iterator[dict[str, Any]]:
    for edit in edits:
        if isinstance(edit, tuple):
            yield from flatten(edit)
        else:
            yield edit


def spec(**fields: Any) -> dict[str, Any]:
    return {"spec": fields}


def nodes(*entries: tuple[str, str, str | None, str | None]) -> dict[str, Any]:
    """Replace the node list; an entry is (name, role, ipv4, ipv6)."""
    listed = []
    for name, role, ipv4, ipv6 in entries:
        node: dict[str, Any] = {"name": name, "role": role}
        if ipv4:
            node["ipv4"] = ipv4
        if ipv6:
            node["ipv6"] = ipv6
        listed.append(node)
    return spec(nodes=listed)


def control_planes(count: int) -> dict[str, Any]:
    """``count`` control-plane nodes plus two workers."""
    return nodes(
        *[(f"cp{i}", "control-plane", f"192.0.2.{10 + i}", None) for i in range(1, count + 1)],
        ("w1", "worker", "192.0.2.21", None),
        ("w2", "worker", "192.0.2.22", None),
    )


def network(**fields: Any) -> dict[str, Any]:
    return spec(network=fields)


def kube_ovn(**fields: Any) -> dict[str, Any]:
    return network(kubeOvn=fields)


def cluster(**fields: Any) -> dict[str, Any]:
    return spec(cluster=fields)


def endpoint(**fields: Any) -> dict[str, Any]:
    return spec(endpoint=fields)


ACP_41 = spec(acp={"version": "4.1"}, cluster={"kubernetesVersion": "1.32.7"})
IMPORTED = cluster(type="imported")
#: Imported and registered clusters may leave the network section out; the checks that read it SKIP.
NO_NETWORK = spec(network=DELETE)
IMPORTED_NO_NETWORK = (IMPORTED, NO_NETWORK)
REGISTERED_NO_NETWORK = (cluster(type="registered"), NO_NETWORK)
NO_NETWORK_REASON = "the plan has no network section (imported/registered clusters may omit it)"
GLOBAL = cluster(role="global")
CALICO = network(plugin="calico", kubeOvn=DELETE)
FLANNEL = (ACP_41, network(plugin="flannel", kubeOvn=DELETE, nodeIPCount=128))
UNDERLAY = network(
    clusterCIDR="10.20.0.0/22",
    kubeOvn={"transmitMode": "underlay", "gateway": "10.20.0.1", "vlanID": 120, "reservedIPs": ["10.20.0.2"]},
)
#: Underlay whose pod VLAN is the node network itself: every used address must be reserved.
UNDERLAY_ON_NODE_NETWORK = network(
    clusterCIDR="192.0.2.0/24",
    kubeOvn={"transmitMode": "underlay", "gateway": "192.0.2.1", "reservedIPs": []},
)
DUAL = (
    cluster(ipFamily="dual-stack"),
    network(
        clusterCIDR=["10.3.0.0/16", "fd00:10:16::/64"],
        serviceCIDR=["10.4.0.0/16", "fd00:10:96::/112"],
        kubeOvn={"joinCIDR": ["100.64.0.0/16", "fd00:100:64::/64"]},
    ),
)
DUAL_NODES = nodes(
    ("cp1", "control-plane", "192.0.2.11", "2001:db8::11"),
    ("cp2", "control-plane", "192.0.2.12", "2001:db8::12"),
    ("cp3", "control-plane", "192.0.2.13", "2001:db8::13"),
    ("w1", "worker", "192.0.2.21", "2001:db8::21"),
    ("w2", "worker", "192.0.2.22", "2001:db8::22"),
)
V6 = (
    cluster(ipFamily="ipv6"),
    network(clusterCIDR="fd00:10:16::/64", serviceCIDR="fd00:10:96::/112", kubeOvn={"joinCIDR": "fd00:100:64::/64"}),
)
V6_NODES = nodes(
    ("cp1", "control-plane", None, "2001:db8::11"),
    ("cp2", "control-plane", None, "2001:db8::12"),
    ("cp3", "control-plane", None, "2001:db8::13"),
    ("w1", "worker", None, "2001:db8::21"),
)
HCP = (
    cluster(type="hosted-control-plane"),
    network(plugin="calico", kubeOvn=DELETE, clusterCIDR="10.13.0.0/16", serviceCIDR="10.14.0.0/16"),
    spec(managementCluster={"podCIDR": "10.3.0.0/16", "serviceCIDR": "10.4.0.0/16"}),
)
HCP_WORKERS = nodes(("w1", "worker", "203.0.113.81", None), ("w2", "worker", "203.0.113.82", None))
VIP = endpoint(address="192.0.2.100", selfBuiltVIP={"enabled": True, "vrid": 137})
EXTERNAL = endpoint(externalAccess="203.0.113.20")
PLATFORM_URL = cluster(annotations={"cpaas.io/platform-url": "https://global-ext.example.com"})


def long_domain(length: int) -> str:
    """A syntactically valid DNS name of exactly ``length`` characters."""
    labels, remaining = [], length
    while remaining > 0:
        label = min(63, remaining)
        if remaining - label == 1:  # never leave room for a lone dot and nothing after it
            label -= 1
        labels.append("a" * label)
        remaining -= label + 1
    name = ".".join(labels)
    assert len(name) == length, len(name)
    return name


# ---------------------------------------------------------------------------
# The tables

LOW = Severity.LOW


def case(
    function: Callable[..., Any],
    status: str,
    *edits: Edit,
    expect: tuple[str, ...] = (),
    fail_on: Severity = Severity.MEDIUM,
    id: str,
) -> Any:
    check_id = function.__acpcheck__.id
    return pytest.param(function, edits, status, expect, fail_on, id=f"{check_id}-{status}-{id}")


CASES = [
    # ACP-NET-001 pod and service CIDRs
    case(check_pod_service_cidrs_disjoint, "pass", id="defaults"),
    case(
        check_pod_service_cidrs_disjoint,
        "pass",
        network(clusterCIDR="10.3.0.0/17", serviceCIDR="10.3.128.0/17"),
        id="adjacent",
    ),
    case(
        check_pod_service_cidrs_disjoint,
        "fail",
        network(serviceCIDR="10.3.128.0/17"),
        expect=(
            "service CIDR 10.3.128.0/17",
            "cluster CIDR 10.3.0.0/16",
            "spec.network.serviceCIDR at test-plan.yaml:",
        ),
        id="nested",
    ),
    case(
        check_pod_service_cidrs_disjoint,
        "fail",
        DUAL,
        network(serviceCIDR=["10.4.0.0/16", "fd00:10:16::/112"]),
        expect=("service CIDR fd00:10:16::/112", "cluster CIDR fd00:10:16::/64"),
        id="dual-stack-ipv6-side",
    ),
    case(
        check_pod_service_cidrs_disjoint,
        "fail",
        IMPORTED,
        network(serviceCIDR="10.0.0.0/8"),
        expect=("service CIDR 10.0.0.0/8",),
        id="imported-too",
    ),
    case(
        check_pod_service_cidrs_disjoint,
        "skip",
        IMPORTED_NO_NETWORK,
        expect=(NO_NETWORK_REASON,),
        id="imported-no-network",
    ),
    case(
        check_pod_service_cidrs_disjoint,
        "skip",
        REGISTERED_NO_NETWORK,
        expect=(NO_NETWORK_REASON,),
        id="registered-no-network",
    ),
    # ACP-NET-002 Kube-OVN join CIDR
    case(check_join_cidr_disjoint, "pass", id="defaults"),
    case(check_join_cidr_disjoint, "pass", kube_ovn(joinCIDR=DELETE), id="join-unset"),
    case(
        check_join_cidr_disjoint,
        "fail",
        kube_ovn(joinCIDR="10.4.0.0/24"),
        expect=("join CIDR 10.4.0.0/24", "service CIDR 10.4.0.0/16", "spec.network.kubeOvn.joinCIDR"),
        id="inside-service",
    ),
    case(
        check_join_cidr_disjoint,
        "fail",
        kube_ovn(joinCIDR=DELETE),
        network(clusterCIDR="100.64.0.0/16"),
        expect=("join CIDR 100.64.0.0/16", "installer default", "cluster CIDR 100.64.0.0/16"),
        id="default-join-vs-pods",
    ),
    case(
        check_join_cidr_disjoint,
        "fail",
        V6,
        V6_NODES,
        kube_ovn(joinCIDR=DELETE),
        network(clusterCIDR="fd00:100:64::/112"),
        expect=("join CIDR fd00:100:64::/64", "installer default", "cluster CIDR fd00:100:64::/112"),
        id="ipv6-default-join",
    ),
    case(check_join_cidr_disjoint, "skip", CALICO, expect=("network plugin calico",), id="calico"),
    case(
        check_join_cidr_disjoint,
        "skip",
        IMPORTED_NO_NETWORK,
        expect=("cluster type imported", NO_NETWORK_REASON),
        id="imported-no-network",
    ),
    # ACP-NET-003 host addresses outside the cluster's CIDRs
    case(check_host_addresses_outside_cidrs, "pass", id="defaults"),
    case(check_host_addresses_outside_cidrs, "pass", UNDERLAY_ON_NODE_NETWORK, id="underlay-pods-on-host-network"),
    case(
        check_host_addresses_outside_cidrs,
        "fail",
        network(clusterCIDR="192.0.2.0/24"),
        expect=(
            "node cp1 192.0.2.11",
            "spec.nodes[0].ipv4 at test-plan.yaml:",
            "cluster CIDR 192.0.2.0/24",
            "endpoint 192.0.2.100",
        ),
        id="overlay-pods-on-host-network",
    ),
    case(
        check_host_addresses_outside_cidrs,
        "fail",
        UNDERLAY_ON_NODE_NETWORK,
        network(serviceCIDR="192.0.2.0/28"),
        expect=("node cp1 192.0.2.11 (spec.nodes[0].ipv4", "lies inside service CIDR 192.0.2.0/28"),
        id="service-contains-node-even-in-underlay",
    ),
    case(
        check_host_addresses_outside_cidrs,
        "fail",
        kube_ovn(joinCIDR="192.0.2.16/28"),
        expect=("node w1 192.0.2.21", "node w2 192.0.2.22", "join CIDR 192.0.2.16/28"),
        id="join-contains-workers",
    ),
    case(
        check_host_addresses_outside_cidrs,
        "fail",
        DUAL,
        DUAL_NODES,
        network(clusterCIDR=["10.3.0.0/16", "2001:db8::/64"]),
        expect=("node w2 2001:db8::22", "cluster CIDR 2001:db8::/64"),
        id="ipv6-pods-on-host-network",
    ),
    case(check_host_addresses_outside_cidrs, "skip", IMPORTED, expect=("cluster type imported",), id="imported"),
    case(
        check_host_addresses_outside_cidrs,
        "skip",
        REGISTERED_NO_NETWORK,
        expect=(NO_NETWORK_REASON,),
        id="registered-no-network",
    ),
    # ACP-NET-004 Kube-OVN Underlay subnet
    case(check_underlay_subnet, "pass", UNDERLAY, id="underlay"),
    case(
        check_underlay_subnet,
        "pass",
        UNDERLAY_ON_NODE_NETWORK,
        kube_ovn(reservedIPs=["192.0.2.11", "192.0.2.12", "192.0.2.13", "192.0.2.21", "192.0.2.22", "192.0.2.100"]),
        id="used-addresses-reserved",
    ),
    case(
        check_underlay_subnet,
        "pass",
        UNDERLAY,
        network(nic=DELETE),
        spec(nodes=[{**node, "nic": "eth1"} for node in BASE["spec"]["nodes"]]),
        id="nic-on-every-node",
    ),
    case(
        check_underlay_subnet,
        "fail",
        UNDERLAY,
        kube_ovn(gateway=DELETE),
        expect=("no default gateway", "spec.network.kubeOvn.gateway"),
        id="no-gateway",
    ),
    case(
        check_underlay_subnet,
        "fail",
        UNDERLAY,
        kube_ovn(gateway="10.99.0.1"),
        expect=("gateway 10.99.0.1", "outside the cluster CIDR 10.20.0.0/22"),
        id="gateway-outside",
    ),
    case(
        check_underlay_subnet,
        "fail",
        UNDERLAY,
        kube_ovn(reservedIPs=["10.20.0.2", "10.99.0.2"]),
        expect=(
            "reserved IP 10.99.0.2",
            "spec.network.kubeOvn.reservedIPs[1]",
            "outside the cluster CIDR 10.20.0.0/22",
        ),
        id="reserved-outside",
    ),
    case(
        check_underlay_subnet,
        "fail",
        UNDERLAY_ON_NODE_NETWORK,
        kube_ovn(reservedIPs=["192.0.2.11"]),
        expect=("node cp2 192.0.2.12", "node w2 192.0.2.22", "endpoint 192.0.2.100", "not in reservedIPs"),
        id="used-addresses-not-reserved",
    ),
    case(
        check_underlay_subnet,
        "fail",
        UNDERLAY,
        network(nic=DELETE),
        expect=("no NIC to bridge for node(s) cp1, cp2, cp3, w1, w2", "spec.network.nic"),
        id="no-nic",
    ),
    case(check_underlay_subnet, "skip", expect=("not Kube-OVN underlay",), id="overlay"),
    case(check_underlay_subnet, "skip", IMPORTED_NO_NETWORK, expect=(NO_NETWORK_REASON,), id="imported-no-network"),
    # ACP-NET-005 hosted control plane vs management cluster
    case(check_hosted_cidrs_disjoint_from_management, "pass", HCP, HCP_WORKERS, id="disjoint"),
    case(
        check_hosted_cidrs_disjoint_from_management,
        "fail",
        HCP,
        HCP_WORKERS,
        spec(managementCluster={"podCIDR": "10.13.0.0/16"}),
        expect=(
            "cluster CIDR 10.13.0.0/16",
            "management cluster pod CIDR 10.13.0.0/16",
            "spec.managementCluster.podCIDR",
        ),
        id="pods-overlap",
    ),
    case(
        check_hosted_cidrs_disjoint_from_management,
        "fail",
        HCP,
        HCP_WORKERS,
        spec(managementCluster={"serviceCIDR": "10.14.128.0/17"}),
        expect=("service CIDR 10.14.0.0/16", "management cluster service CIDR 10.14.128.0/17"),
        id="services-overlap",
    ),
    case(
        check_hosted_cidrs_disjoint_from_management,
        "manual",
        HCP,
        HCP_WORKERS,
        spec(managementCluster=DELETE),
        expect=(
            "spec.managementCluster.podCIDR and spec.managementCluster.serviceCIDR not set",
            "its pod CIDR overlaps none of 10.13.0.0/16",
            "its service CIDR overlaps none of 10.14.0.0/16",
        ),
        id="management-unknown",
    ),
    case(
        check_hosted_cidrs_disjoint_from_management,
        "manual",
        HCP,
        HCP_WORKERS,
        spec(managementCluster={"serviceCIDR": DELETE}),
        expect=("spec.managementCluster.serviceCIDR not set", "its service CIDR overlaps none of 10.14.0.0/16"),
        id="management-service-unknown",
    ),
    case(
        check_hosted_cidrs_disjoint_from_management,
        "fail",
        HCP,
        HCP_WORKERS,
        spec(managementCluster={"podCIDR": "10.13.0.0/17", "serviceCIDR": DELETE}),
        expect=("management cluster pod CIDR 10.13.0.0/17",),
        id="pods-overlap-service-unknown",
    ),
    case(check_hosted_cidrs_disjoint_from_management, "skip", expect=("cluster type on-premise",), id="on-premise"),
    case(
        check_hosted_cidrs_disjoint_from_management,
        "skip",
        REGISTERED_NO_NETWORK,
        expect=(NO_NETWORK_REASON,),
        id="registered-no-network",
    ),
    # ACP-NET-006 container-runtime bridge range
    case(check_runtime_bridge_range_free, "pass", id="defaults"),
    case(
        check_runtime_bridge_range_free,
        "pass",
        nodes(("cp1", "control-plane", "172.20.0.5", None)),
        id="4.3-allows-172.20",
    ),
    case(
        check_runtime_bridge_range_free, "pass", ACP_41, network(serviceCIDR="172.33.0.0/16"), id="4.1-just-above-range"
    ),
    case(
        check_runtime_bridge_range_free,
        "fail",
        nodes(("cp1", "control-plane", "172.17.0.5", None)),
        expect=("node cp1 172.17.0.5", "nerdctl bridge range on ACP 4.3 172.17.0.0-172.18.255.255", "bip"),
        id="4.3-node",
    ),
    case(
        check_runtime_bridge_range_free,
        "fail",
        ACP_41,
        nodes(("cp1", "control-plane", "172.20.0.5", None)),
        expect=("node cp1 172.20.0.5", "Docker bridge range on ACP 4.1 172.16.0.0-172.32.255.255"),
        id="4.1-node",
    ),
    case(
        check_runtime_bridge_range_free,
        "fail",
        ACP_41,
        network(serviceCIDR="172.32.0.0/16"),
        expect=("service CIDR 172.32.0.0/16", "Docker bridge range"),
        id="4.1-service-cidr",
    ),
    case(
        check_runtime_bridge_range_free,
        "skip",
        cluster(type="immutable"),
        expect=("cluster type immutable",),
        id="immutable",
    ),
    case(
        check_runtime_bridge_range_free,
        "skip",
        IMPORTED_NO_NETWORK,
        expect=(NO_NETWORK_REASON,),
        id="imported-no-network",
    ),
    # ACP-NET-007 IP families
    case(check_ip_families_consistent, "pass", id="ipv4"),
    case(check_ip_families_consistent, "pass", DUAL, DUAL_NODES, id="dual-stack"),
    case(check_ip_families_consistent, "pass", V6, V6_NODES, id="ipv6"),
    case(
        check_ip_families_consistent,
        "fail",
        DUAL,
        DUAL_NODES,
        spec(nodes=[*DUAL_NODES["spec"]["nodes"][:4], {"name": "w2", "role": "worker", "ipv4": "192.0.2.22"}]),
        expect=("node w2 (spec.nodes[4] at test-plan.yaml:", "no IPv6 address", "dual-stack needs IPv4 and IPv6"),
        id="dual-stack-node-without-ipv6",
    ),
    case(
        check_ip_families_consistent,
        "fail",
        DUAL,
        DUAL_NODES,
        network(serviceCIDR="10.4.0.0/16"),
        expect=("spec.network.serviceCIDR at test-plan.yaml:", "is 10.4.0.0/16 (IPv4)", "needs IPv4 and IPv6"),
        id="dual-stack-single-family-cidr",
    ),
    case(
        check_ip_families_consistent,
        "fail",
        DUAL,
        DUAL_NODES,
        UNDERLAY,
        network(clusterCIDR=["10.20.0.0/22", "fd00:10:16::/64"]),
        expect=("spec.network.kubeOvn.gateway", "is 10.20.0.1 (IPv4)"),
        id="dual-stack-gateway",
    ),
    case(
        check_ip_families_consistent,
        "fail",
        network(clusterCIDR="fd00:10:16::/64"),
        expect=("spec.network.clusterCIDR", "fd00:10:16::/64 (IPv6)", "ipFamily ipv4 needs IPv4"),
        id="ipv4-with-ipv6-cidr",
    ),
    case(
        check_ip_families_consistent,
        "fail",
        V6,
        V6_NODES,
        spec(nodes=[*V6_NODES["spec"]["nodes"], {"name": "w2", "role": "worker", "ipv4": "192.0.2.22"}]),
        expect=("node w2", "no IPv6 address", "ipFamily ipv6"),
        id="ipv6-node-without-ipv6",
    ),
    case(check_ip_families_consistent, "skip", IMPORTED, expect=("cluster type imported",), id="imported"),
    case(
        check_ip_families_consistent,
        "skip",
        REGISTERED_NO_NETWORK,
        expect=(NO_NETWORK_REASON,),
        id="registered-no-network",
    ),
    # ACP-NET-008 IPv6 global platform address
    case(
        check_ipv6_global_has_domain,
        "pass",
        GLOBAL,
        V6,
        V6_NODES,
        endpoint(address="acp.example.com"),
        id="domain-endpoint",
    ),
    case(
        check_ipv6_global_has_domain,
        "pass",
        GLOBAL,
        V6,
        V6_NODES,
        endpoint(
            address="2001:db8::100", selfBuiltVIP={"enabled": True, "vrid": 137}, externalAccess="acp.example.com"
        ),
        id="vip-plus-domain",
    ),
    case(
        check_ipv6_global_has_domain,
        "fail",
        GLOBAL,
        V6,
        V6_NODES,
        endpoint(address="2001:db8::100"),
        expect=("2001:db8::100", "spec.endpoint at test-plan.yaml:", "needs a domain name"),
        id="ip-endpoint",
    ),
    case(
        check_ipv6_global_has_domain,
        "skip",
        V6,
        V6_NODES,
        endpoint(address="2001:db8::100"),
        expect=("workload cluster",),
        id="workload",
    ),
    # ... and it does not read the network, so a third-party plan without one is still checked.
    case(
        check_ipv6_global_has_domain,
        "fail",
        GLOBAL,
        V6,
        V6_NODES,
        IMPORTED_NO_NETWORK,
        endpoint(address="2001:db8::100"),
        expect=("needs a domain name",),
        id="imported-no-network",
    ),
    # ACP-NET-009 Flannel sizing
    case(check_flannel_capacity, "pass", FLANNEL, id="defaults"),
    case(
        check_flannel_capacity,
        "pass",
        FLANNEL,
        network(clusterCIDR="10.3.0.0/22", nodeIPCount=65),
        id="65-rounds-to-128-fits",
    ),
    case(
        check_flannel_capacity,
        "fail",
        FLANNEL,
        network(clusterCIDR="10.3.0.0/23", nodeIPCount=65),
        expect=("cluster CIDR 10.3.0.0/23", "4 per-node blocks of 128 addresses (nodeIPCount 65)", "5 nodes"),
        id="65-rounds-to-128-too-few",
    ),
    case(
        check_flannel_capacity,
        "fail",
        FLANNEL,
        network(nodeIPCount=DELETE),
        expect=("spec.network.nodeIPCount", "is not set"),
        id="no-node-ip-count",
    ),
    case(check_flannel_capacity, "skip", expect=("network plugin kube-ovn",), id="kube-ovn"),
    case(
        check_flannel_capacity, "skip", REGISTERED_NO_NETWORK, expect=(NO_NETWORK_REASON,), id="registered-no-network"
    ),
    # ACP-NET-010 kubelet max-pods
    case(check_max_pods_recommended, "pass", id="installer-default"),
    case(check_max_pods_recommended, "pass", spec(kubelet={"extraArgs": {"max-pods": 256}}), id="256"),
    case(
        check_max_pods_recommended, "warn", spec(kubelet={"extraArgs": {"max-pods": 257}}), expect=("is 257",), id="257"
    ),
    case(
        check_max_pods_recommended,
        "warn",
        spec(kubelet={"extraArgs": {"max-pods": "300"}}),
        expect=("kubelet max-pods (spec.kubelet.extraArgs.max-pods", "is 300"),
        id="300",
    ),
    case(
        check_max_pods_recommended,
        "fail",
        spec(kubelet={"extraArgs": {"max-pods": 300}}),
        expect=("is 300",),
        fail_on=LOW,
        id="300-fail-on-low",
    ),
    case(
        check_max_pods_recommended,
        "warn",
        FLANNEL,
        network(nodeIPCount=512),
        expect=("Flannel nodeIPCount", "is 512"),
        id="flannel-node-ip-count",
    ),
    case(
        check_max_pods_recommended,
        "warn",
        spec(kubelet={"extraArgs": {"max-pods": "many"}}),
        expect=("'many'", "not a positive integer"),
        id="not-a-number",
    ),
    case(check_max_pods_recommended, "skip", IMPORTED, expect=("cluster type imported",), id="imported"),
    case(
        check_max_pods_recommended, "skip", IMPORTED_NO_NETWORK, expect=(NO_NETWORK_REASON,), id="imported-no-network"
    ),
    # ACP-NET-011 pod CIDR capacity (derived threshold)
    case(check_pod_cidr_capacity, "pass", id="defaults"),
    case(check_pod_cidr_capacity, "pass", network(clusterCIDR="10.3.0.0/22"), id="1024-for-550"),
    case(
        check_pod_cidr_capacity,
        "warn",
        network(clusterCIDR="10.3.0.0/24"),
        expect=("cluster CIDR 10.3.0.0/24", "holds 256 addresses", "5 nodes x 110 pods", "installer default", "550"),
        id="256-for-550",
    ),
    case(
        check_pod_cidr_capacity,
        "fail",
        CALICO,
        network(clusterCIDR="10.3.0.0/22"),
        spec(kubelet={"extraArgs": {"max-pods": 250}}),
        expect=("holds 1,024 addresses", "5 nodes x 250 pods (kubelet max-pods", "1,250"),
        fail_on=LOW,
        id="calico-explicit-max-pods",
    ),
    case(
        check_pod_cidr_capacity,
        "error",
        spec(kubelet={"extraArgs": {"max-pods": "0"}}),
        expect=("could not check", "not a positive integer"),
        id="bad-max-pods",
    ),
    case(check_pod_cidr_capacity, "skip", FLANNEL, expect=("network plugin flannel",), id="flannel"),
    case(check_pod_cidr_capacity, "skip", IMPORTED_NO_NETWORK, expect=(NO_NETWORK_REASON,), id="imported-no-network"),
    # ACP-NET-012 control-plane count
    case(check_control_plane_count, "pass", id="three"),
    case(check_control_plane_count, "pass", control_planes(1), id="one"),
    case(check_control_plane_count, "pass", control_planes(4), id="four-is-supported"),
    case(check_control_plane_count, "pass", GLOBAL, control_planes(1), id="global-one"),
    case(
        check_control_plane_count,
        "fail",
        control_planes(2),
        expect=("2 control-plane nodes", "exactly two is not supported", "spec.nodes at"),
        id="two",
    ),
    case(check_control_plane_count, "fail", control_planes(0), expect=("no control-plane node",), id="none"),
    case(
        check_control_plane_count,
        "fail",
        GLOBAL,
        control_planes(5),
        expect=("global cluster has 5 control-plane nodes", "1 or 3"),
        id="global-five",
    ),
    case(check_control_plane_count, "skip", HCP, HCP_WORKERS, expect=("cluster type hosted-control-plane",), id="hcp"),
    # ACP-NET-013 odd control-plane count
    case(check_control_plane_odd, "pass", id="three"),
    case(check_control_plane_odd, "pass", control_planes(5), id="five"),
    case(check_control_plane_odd, "warn", control_planes(4), expect=("4 control-plane nodes", "odd count"), id="four"),
    case(
        check_control_plane_odd,
        "fail",
        control_planes(6),
        expect=("6 control-plane nodes",),
        fail_on=LOW,
        id="six-fail-on-low",
    ),
    case(check_control_plane_odd, "skip", GLOBAL, expect=("global cluster",), id="global"),
    # ACP-NET-014 self-built VIP
    case(check_self_built_vip, "pass", VIP, id="vrid-137"),
    case(check_self_built_vip, "pass", VIP, endpoint(selfBuiltVIP={"vrid": 1}), id="vrid-1"),
    case(check_self_built_vip, "pass", VIP, endpoint(selfBuiltVIP={"vrid": 255}), id="vrid-255"),
    case(
        check_self_built_vip,
        "fail",
        VIP,
        endpoint(selfBuiltVIP={"vrid": DELETE}),
        expect=("no VRID", "spec.endpoint.selfBuiltVIP.vrid"),
        id="no-vrid",
    ),
    case(
        check_self_built_vip,
        "fail",
        VIP,
        endpoint(selfBuiltVIP={"vrid": 256}),
        expect=("VRID 256", "outside 1-255"),
        id="vrid-256",
    ),
    case(check_self_built_vip, "fail", VIP, endpoint(selfBuiltVIP={"vrid": 0}), expect=("VRID 0",), id="vrid-0"),
    case(
        check_self_built_vip,
        "fail",
        VIP,
        endpoint(address="api.example.com"),
        expect=("endpoint api.example.com", "is a domain"),
        id="domain",
    ),
    case(
        check_self_built_vip,
        "fail",
        VIP,
        endpoint(address=DELETE),
        expect=("no VIP", "spec.endpoint.address"),
        id="no-address",
    ),
    case(
        check_self_built_vip,
        "fail",
        VIP,
        endpoint(address="192.0.2.21"),
        expect=("endpoint 192.0.2.21", "node w1 192.0.2.21", "same address", "spec.nodes[3].ipv4"),
        id="vip-is-a-node",
    ),
    case(check_self_built_vip, "skip", expect=("self-built VIP disabled",), id="hardware-lb"),
    # ACP-NET-015 endpoint vs control-plane node address
    case(check_endpoint_not_a_node, "pass", id="lb-vip"),
    case(check_endpoint_not_a_node, "pass", endpoint(address="api.example.com"), id="domain"),
    case(
        check_endpoint_not_a_node,
        "warn",
        control_planes(1),
        endpoint(address="192.0.2.11"),
        expect=("endpoint 192.0.2.11", "node cp1 192.0.2.11", "never be scaled to high availability"),
        id="single-control-plane",
    ),
    case(
        check_endpoint_not_a_node,
        "fail",
        endpoint(address="192.0.2.12"),
        expect=("node cp2 192.0.2.12", "goes down with that node"),
        fail_on=LOW,
        id="one-of-three",
    ),
    case(check_endpoint_not_a_node, "skip", VIP, expect=("self-built VIP enabled",), id="self-built-vip"),
    # ACP-NET-016 publicAlternativeNames
    case(check_public_alternative_names, "pass", id="none"),
    case(
        check_public_alternative_names,
        "pass",
        spec(
            apiServer={"publicAlternativeNames": ["api.example.com", "192.0.2.100", "2001:db8::100", long_domain(253)]}
        ),
        id="ips-domains-253",
    ),
    case(
        check_public_alternative_names,
        "fail",
        spec(apiServer={"publicAlternativeNames": ["api.example.com", "https://api.example.com:6443"]}),
        expect=(
            "'https://api.example.com:6443'",
            "spec.apiServer.publicAlternativeNames[1]",
            "neither an IP address nor a domain name",
        ),
        id="url",
    ),
    case(
        check_public_alternative_names,
        "fail",
        spec(apiServer={"publicAlternativeNames": ["*.example.com"]}),
        expect=("'*.example.com'",),
        id="wildcard",
    ),
    case(
        check_public_alternative_names,
        "fail",
        spec(apiServer={"publicAlternativeNames": [long_domain(254)]}),
        expect=("is 254 characters", "at most 253"),
        id="254-chars",
    ),
    # ACP-NET-017 unique nodes
    case(check_nodes_unique, "pass", id="defaults"),
    case(check_nodes_unique, "pass", DUAL, DUAL_NODES, id="dual-stack"),
    case(
        check_nodes_unique,
        "fail",
        nodes(
            ("cp1", "control-plane", "192.0.2.11", None),
            ("w1", "worker", "192.0.2.21", None),
            ("w1", "worker", "192.0.2.22", None),
        ),
        expect=("node name 'w1' is used 2 times", "spec.nodes[1].name", "spec.nodes[2].name"),
        id="duplicate-name",
    ),
    case(
        check_nodes_unique,
        "fail",
        nodes(
            ("cp1", "control-plane", "192.0.2.11", None),
            ("w1", "worker", "192.0.2.21", None),
            ("w2", "worker", "192.0.2.21", None),
        ),
        expect=("node w1 192.0.2.21", "node w2 192.0.2.21", "same address"),
        id="duplicate-ipv4",
    ),
    case(
        check_nodes_unique,
        "fail",
        DUAL,
        nodes(("cp1", "control-plane", "192.0.2.11", "2001:db8::11"), ("w1", "worker", "192.0.2.21", "2001:db8::11")),
        expect=("node cp1 2001:db8::11", "node w1 2001:db8::11"),
        id="duplicate-ipv6",
    ),
    # ACP-NET-018 cpaas.io/platform-url
    case(check_platform_url_annotation, "skip", expect=("no spec.endpoint.externalAccess",), id="same-network"),
    case(check_platform_url_annotation, "pass", EXTERNAL, PLATFORM_URL, id="annotated"),
    case(
        check_platform_url_annotation,
        "fail",
        EXTERNAL,
        expect=(
            "no cpaas.io/platform-url annotation",
            "spec.cluster.annotations.cpaas.io/platform-url",
            "203.0.113.20",
        ),
        id="missing",
    ),
    case(
        check_platform_url_annotation,
        "fail",
        EXTERNAL,
        cluster(annotations={"cpaas.io/platform-url": "http://global-ext.example.com"}),
        expect=("'http://global-ext.example.com'", "not an https URL"),
        id="http",
    ),
    case(
        check_platform_url_annotation,
        "fail",
        EXTERNAL,
        cluster(annotations={"cpaas.io/platform-url": "https://"}),
        expect=("not an https URL with a host",),
        id="no-host",
    ),
    case(check_platform_url_annotation, "skip", GLOBAL, EXTERNAL, expect=("global cluster",), id="global"),
    case(
        check_platform_url_annotation,
        "fail",
        IMPORTED_NO_NETWORK,
        EXTERNAL,
        expect=("no cpaas.io/platform-url annotation",),
        id="imported-no-network",
    ),
]


@pytest.mark.parametrize(("function", "edits", "status", "expect", "fail_on"), CASES)
def test_check(
    function: Callable[..., Any], edits: tuple[Edit, ...], status: str, expect: tuple[str, ...], fail_on: Severity
) -> None:
    verdict = run_check(function, plan_of(*edits), fail_on=fail_on)
    assert verdict.status == status, verdict.message
    for text in expect:
        assert text in verdict.message


def test_every_check_has_a_passing_and_a_failing_case() -> None:
    covered: dict[str, set[str]] = {}
    for param in CASES:
        function, _, status, _, _ = param.values
        covered.setdefault(function.__acpcheck__.id, set()).add(status)
    for function in NETWORK_CHECKS:
        check_id = function.__acpcheck__.id
        assert {"pass", "fail"} <= covered.get(check_id, set()), f"{check_id} needs a pass and a fail case"


def test_ids_are_numbered_in_order() -> None:
    ids = sorted(function.__acpcheck__.id for function in NETWORK_CHECKS)
    assert ids == [f"ACP-NET-{n:03d}" for n in range(1, len(ids) + 1)]


# ---------------------------------------------------------------------------
# The shipped examples are good plans.

MY_EXAMPLES = [
    "workload-kube-ovn.yaml",
    "global-cluster.yaml",
    "calico.yaml",
    "flannel-4.1.yaml",
    "dual-stack.yaml",
    "ipv6-only.yaml",
    "kube-ovn-underlay.yaml",
    "hosted-control-plane.yaml",
]


@pytest.mark.parametrize("name", MY_EXAMPLES)
def test_example_passes_every_network_check(name: str) -> None:
    plan = load_plan(EXAMPLES / name)
    verdicts = {function.__acpcheck__.id: run_check(function, plan, fail_on=LOW) for function in NETWORK_CHECKS}
    problems = {
        check_id: f"{v.status}: {v.message}" for check_id, v in verdicts.items() if v.status not in ("pass", "skip")
    }
    assert not problems


def test_examples_use_documentation_addresses_for_nodes() -> None:
    from acpcheck.addressing import Labelled, find_overlaps, parse_cidr

    documentation = [
        Labelled("documentation range", parse_cidr(c))
        for c in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
    ]
    for name in MY_EXAMPLES:
        addresses = network_checks.node_addresses(load_plan(EXAMPLES / name))
        inside = {item for item, _ in find_overlaps(addresses, documentation)}
        assert inside == set(addresses), f"{name}: {[str(a) for a in set(addresses) - inside]}"


# ---------------------------------------------------------------------------
# A 500-node plan: the overlap checks give exact answers at the tested maximum size.

DOCUMENTATION_PREFIXES = ("192.0.2", "198.51.100", "203.0.113")


def many_nodes(count: int) -> list[dict[str, Any]]:
    """``count`` nodes (three control planes, then workers) on hosts .1-.250 of the documentation ranges."""
    hosts = [f"{prefix}.{last}" for prefix in DOCUMENTATION_PREFIXES for last in range(1, 251)]
    return [
        {
            "name": f"cp{i + 1}" if i < 3 else f"w{i - 2}",
            "role": "control-plane" if i < 3 else "worker",
            "ipv4": hosts[i],
        }
        for i in range(count)
    ]


@pytest.fixture(scope="module")
def large_nodes() -> list[dict[str, Any]]:
    return many_nodes(500)


def test_large_plan_is_clean(large_nodes: list[dict[str, Any]]) -> None:
    plan = plan_of(endpoint(address="api.example.com"), spec(nodes=large_nodes))
    for function in NETWORK_CHECKS:
        verdict = run_check(function, plan, fail_on=LOW)
        assert verdict.status in ("pass", "skip"), f"{function.__acpcheck__.id}: {verdict.message}"


def test_large_plan_finds_every_node_inside_the_pod_cidr(large_nodes: list[dict[str, Any]]) -> None:
    # 250 nodes sit in 192.0.2.0/24 and the other 250 in 198.51.100.0/24.
    plan = plan_of(endpoint(address="api.example.com"), spec(nodes=large_nodes), network(clusterCIDR="198.51.100.0/24"))
    verdict = run_check(check_host_addresses_outside_cidrs, plan)
    assert verdict.status == "fail"
    findings = verdict.evidence["findings"]
    # A sample of the 250, then how many more: not 250 lines in every report.
    assert len(findings) == 11 and findings[-1] == "... and 240 more addresses inside the cluster's CIDRs"
    assert all(finding.startswith("node w") and " 198.51.100." in finding for finding in findings[:-1])
    assert "node w248 198.51.100.1 " in verdict.message and "node w497 " not in verdict.message


def test_large_plan_finds_exactly_the_duplicate_address(large_nodes: list[dict[str, Any]]) -> None:
    duplicated = [*large_nodes[:-1], {**large_nodes[-1], "ipv4": large_nodes[100]["ipv4"]}]
    plan = plan_of(endpoint(address="api.example.com"), spec(nodes=duplicated))
    verdict = run_check(check_nodes_unique, plan)
    assert verdict.status == "fail"
    assert verdict.evidence["findings"] == [
        "2 nodes have the same address 192.0.2.101: node w98 192.0.2.101 (spec.nodes[100].ipv4 at "
        f"{plan.where('spec', 'nodes', 100, 'ipv4')}), "
        f"node w497 192.0.2.101 (spec.nodes[499].ipv4 at {plan.where('spec', 'nodes', 499, 'ipv4')}); "
        "two nodes cannot share an address"
    ]


def test_large_underlay_plan_reports_each_unreserved_node(large_nodes: list[dict[str, Any]]) -> None:
    reserved = [node["ipv4"] for node in large_nodes[:200]]  # 200 of the 250 nodes in 192.0.2.0/24
    plan = plan_of(
        endpoint(address="api.example.com"),
        spec(nodes=large_nodes),
        network(
            clusterCIDR="192.0.2.0/24",
            kubeOvn={"transmitMode": "underlay", "gateway": "192.0.2.254", "reservedIPs": reserved},
        ),
    )
    verdict = run_check(check_underlay_subnet, plan)
    assert verdict.status == "fail"
    findings = verdict.evidence["findings"]
    assert len(findings) == 11 and findings[-1] == "... and 40 more unreserved addresses"
    assert "node w198 192.0.2.201 " in findings[0] and "not in reservedIPs" in findings[0]
