"""Checks that compare nodes or addresses stay short and sub-quadratic (issue 22, item 5).

1,000 nodes on one address (a copy-paste slip) once made ACP-NET-017 report every
pair: 499,500 findings, 470 MB of reports. Each comparing check now names a sample
and says how many more. Time and memory are shown by bench/same_address_bench.py,
not asserted here.
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import make_plan, run_check
from netaddr import IPAddress, IPNetwork

from acpcheck.addressing import Labelled, find_overlaps, host
from acpcheck.checks.network import (
    check_endpoint_not_a_node,
    check_host_addresses_outside_cidrs,
    check_nodes_unique,
    check_runtime_bridge_range_free,
    check_self_built_vip,
)
from acpcheck.model.plan import ClusterPlan

NODES = 1000
#: Enough nodes for a sample and "N more", few enough to load quickly, for the checks
#: that compare each node with a handful of ranges (linear already; only their messages grew).
SOME_NODES = 100
SHARED = "192.0.2.50"


def one_address(count: int, address: str = SHARED, **extra: Any) -> ClusterPlan:
    members = [
        {
            "name": f"cp{i + 1}" if i < 3 else f"w{i - 2}",
            "role": "control-plane" if i < 3 else "worker",
            "ipv4": address,
        }
        for i in range(count)
    ]
    return make_plan({"spec": {"nodes": members, **extra}})


@pytest.fixture(scope="module")
def shared_plan() -> ClusterPlan:
    return one_address(NODES)


def test_one_address_is_one_finding_naming_ten_nodes_and_how_many_more(shared_plan: ClusterPlan) -> None:
    verdict = run_check(check_nodes_unique, shared_plan)
    assert verdict.status == "fail"
    assert verdict.evidence["findings"] == [verdict.message]
    message = verdict.message
    assert message.startswith(f"1000 nodes have the same address {SHARED}: node cp1 {SHARED} (spec.nodes[0].ipv4 at ")
    assert "node w7 " in message and "node w8 " not in message  # the first ten: cp1-cp3, w1-w7
    assert message.endswith(" and 990 more; two nodes cannot share an address")
    assert len(message) < 2000


def test_many_duplicated_names_and_addresses_are_sampled() -> None:
    # Pairs of nodes, each pair on its own address and with one name: two findings a pair.
    members = []
    for i in range(SOME_NODES):
        pair = i // 2
        members.append(
            {
                "name": f"n{pair}",
                "role": "control-plane" if i < 3 else "worker",
                "ipv4": f"10.{pair // 250}.{pair % 250}.1",
            }
        )
    verdict = run_check(
        check_nodes_unique,
        make_plan(
            {"spec": {"nodes": members, "network": {"clusterCIDR": "172.20.0.0/16", "serviceCIDR": "172.21.0.0/16"}}}
        ),
    )
    findings = verdict.evidence["findings"]
    assert verdict.status == "fail"
    assert len(findings) == 11
    assert findings[0].startswith("node name 'n0' is used 2 times (spec.nodes[0].name at ")
    assert findings[-1] == "... and 90 more duplicated names or addresses"


@pytest.mark.parametrize(
    ("function", "edits", "more"),
    [
        (
            check_host_addresses_outside_cidrs,
            {"network": {"clusterCIDR": "192.0.2.0/24"}, "endpoint": {"address": "api.example.com"}},
            "addresses inside the cluster's CIDRs",
        ),
        (check_runtime_bridge_range_free, {}, "ranges in the bridge range"),
        (
            check_self_built_vip,
            {"endpoint": {"address": SHARED, "selfBuiltVIP": {"enabled": True, "vrid": 7}}},
            "nodes with the VIP's address",
        ),
    ],
    ids=["ACP-NET-003", "ACP-NET-006", "ACP-NET-014"],
)
def test_node_against_range_findings_are_sampled(function: Any, edits: dict[str, Any], more: str) -> None:
    address = "172.17.0.9" if function is check_runtime_bridge_range_free else SHARED
    verdict = run_check(function, one_address(SOME_NODES, address, **edits))
    assert verdict.status == "fail", verdict.message
    lines = verdict.message.splitlines()
    assert len(lines) == 11 and lines[-1] == f"... and 90 more {more}"


def test_endpoint_on_every_control_plane_node_is_sampled() -> None:
    members = [{"name": f"cp{i + 1}", "role": "control-plane", "ipv4": SHARED} for i in range(15)]
    verdict = run_check(
        check_endpoint_not_a_node, make_plan({"spec": {"nodes": members, "endpoint": {"address": SHARED}}})
    )
    lines = verdict.message.splitlines()
    assert len(lines) == 11 and lines[-1] == "... and 5 more control-plane nodes with the endpoint's address"


def test_overlaps_against_another_set_are_one_per_range_however_many_coincide() -> None:
    same = [host(f"node {i}", IPAddress(SHARED)) for i in range(NODES)]
    network = Labelled("pod CIDR", IPNetwork("192.0.2.0/24"))
    elsewhere = Labelled("service CIDR", IPNetwork("10.4.0.0/16"))
    assert find_overlaps([network, elsewhere], same) == [(network, node) for node in same]
    assert find_overlaps([elsewhere], same) == []
    # Pairs within one set keep their start-address order.
    a, b, c = (
        Labelled("a", IPNetwork("10.0.0.0/8")),
        Labelled("b", IPNetwork("10.1.0.0/16")),
        Labelled("c", IPNetwork("10.1.2.0/24")),
    )
    assert find_overlaps([c, b, a]) == [(a, b), (a, c), (b, c)]
