"""Tables for acpcheck.checks.node_cluster: rules between the nodes of one cluster.

Each row runs on a node set of the example plan's five nodes (cp1-cp3, w1, w2), all
healthy unless the row overrides a node's facts or marks it not gathered.
"""

from __future__ import annotations

import pytest

from acpcheck.checks.node_cluster import (
    check_clock_skew,
    check_hostnames_unique,
    check_same_architecture,
    check_same_os,
    check_same_time_zone,
    check_vip_in_control_plane_subnet,
)
from acpcheck.facts.model import Address
from acpcheck.model.check import Severity
from nodes.conftest import PROBE_EPOCH, case, run_case

SELF_BUILT_VIP = {"spec": {"endpoint": {"address": "192.0.2.100", "selfBuiltVIP": {"enabled": True, "vrid": 137}}}}
SINGLE_NODE = {"spec": {"nodes": [{"name": "cp1", "role": "control-plane", "ipv4": "192.0.2.11"}]}}


def clock(offset: float, round_trip: float = 0.2) -> dict[str, float]:
    """A node whose clock is ``offset`` seconds ahead of the controller's."""
    return {"clock_epoch": PROBE_EPOCH + offset, "round_trip_seconds": round_trip}


CASES = [
    # X2
    case(check_hostnames_unique, "pass", "unique"),
    case(
        check_hostnames_unique,
        "fail",
        "two-nodes-one-name",
        node_set={"w1": {"hostname": "worker"}, "w2": {"hostname": "Worker"}},
        mentions=["'worker'", "2 nodes: w1, w2"],
    ),
    case(check_hostnames_unique, "manual", "hostname-unknown", node_set={"w2": {"hostname": None}}),
    case(
        check_hostnames_unique,
        "manual",
        "node-not-gathered",
        failures={"w2": "unreachable"},
        mentions=["w2: facts not gathered (unreachable"],
    ),
    case(
        check_hostnames_unique,
        "fail",
        "duplicate-and-missing-node",
        node_set={"cp1": {"hostname": "dup"}, "cp2": {"hostname": "dup"}},
        failures={"w2": "auth"},
        mentions=["'dup'", "(not verified) w2: facts not gathered (auth"],
    ),
    # X3: time zone
    case(check_same_time_zone, "pass", "all-utc"),
    case(
        check_same_time_zone,
        "fail",
        "one-in-shanghai",
        node_set={"w2": {"timezone": "Asia/Shanghai"}},
        mentions=["Asia/Shanghai on w2", "UTC on cp1, cp2, cp3, w1"],
    ),
    case(
        check_same_time_zone,
        "manual",
        "unknown",
        node_set={"cp3": {"timezone": None}},
        mentions=["cp3: the time zone could not be read"],
    ),
    # X3: clock skew
    case(check_clock_skew, "pass", "in-sync"),
    case(check_clock_skew, "pass", "9s-apart", node_set={"w1": clock(4.5), "w2": clock(-4.5)}),
    case(check_clock_skew, "fail", "30s-ahead", node_set={"w1": clock(30)}, mentions=["w1 +30.0 s", "at least 29.8 s"]),
    case(
        check_clock_skew,
        "fail",
        "spread-across-two-nodes",
        node_set={"cp2": clock(6), "w2": clock(-6)},
        mentions=["cp2 +6.0 s", "w2 -6.0 s", "at least 11.8 s"],
    ),
    case(
        check_clock_skew,
        "manual",
        "uncertain-with-slow-round-trip",
        node_set={"w1": clock(11, round_trip=4)},
        mentions=["span 11.0 s"],
    ),
    case(check_clock_skew, "skip", "single-node", plan=SINGLE_NODE),
    # Architecture and OS
    case(check_same_architecture, "pass", "all-x86"),
    case(
        check_same_architecture,
        "fail",
        "one-arm-node",
        node_set={"w2": {"architecture": "aarch64"}},
        mentions=["aarch64 on w2", "x86_64 on cp1, cp2, cp3, w1"],
    ),
    case(check_same_architecture, "manual", "unknown", node_set={"w2": {"architecture": None}}),
    case(check_same_os, "pass", "all-ubuntu"),
    case(
        check_same_os,
        "warn",
        "one-rhel-node",
        node_set={"w2": {"os_id": "rhel"}},
        mentions=["rhel on w2", "ubuntu on cp1"],
    ),
    case(
        check_same_os,
        "fail",
        "one-rhel-node-strict",
        node_set={"w2": {"os_id": "rhel"}},
        fail_on=Severity.LOW,
        mentions=["rhel on w2"],
    ),
    # Self-built VIP
    case(check_vip_in_control_plane_subnet, "pass", "same-slash-24", plan=SELF_BUILT_VIP),
    case(
        check_vip_in_control_plane_subnet,
        "fail",
        "cp2-slash-32",
        plan=SELF_BUILT_VIP,
        node_set={"cp2": {"addresses": (Address("eth0", 4, "192.0.2.12", 32),)}},
        mentions=["cp2: the self-built VIP 192.0.2.100 is outside its subnet 192.0.2.12/32"],
    ),
    case(
        check_vip_in_control_plane_subnet,
        "fail",
        "vip-elsewhere",
        plan={"spec": {"endpoint": {"address": "198.51.100.10", "selfBuiltVIP": {"enabled": True, "vrid": 137}}}},
        mentions=["cp1: the self-built VIP 198.51.100.10 is outside its subnet 192.0.2.0/24", "cp3:"],
    ),
    case(
        check_vip_in_control_plane_subnet,
        "manual",
        "cp3-not-gathered",
        plan=SELF_BUILT_VIP,
        failures={"cp3": "timeout"},
        mentions=["cp3: facts not gathered (timeout)"],
    ),
    case(
        check_vip_in_control_plane_subnet,
        "pass",
        "worker-not-gathered-does-not-matter",
        plan=SELF_BUILT_VIP,
        failures={"w1": "timeout"},
    ),
    case(
        check_vip_in_control_plane_subnet,
        "manual",
        "plan-ip-not-on-node",
        plan=SELF_BUILT_VIP,
        node_set={"cp1": {"addresses": ()}},
        mentions=["ACP-NODE-017"],
    ),
    case(check_vip_in_control_plane_subnet, "skip", "load-balancer"),
]


@pytest.mark.parametrize("row", CASES)
def test_cluster_checks(row) -> None:
    run_case(row)
