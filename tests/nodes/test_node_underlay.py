"""Kube-OVN Underlay node checks (checks/node_underlay.py): PASS and FAIL/WARN tables.

The plan is the example plan switched to Underlay with ``spec.network.nic: eth1``; the
healthy node has eth1 without an address, its plan and SSH address on eth0.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from acpcheck.checks.node_underlay import (
    check_monitored_nic_names,
    check_underlay_nic_dedicated,
    check_underlay_nic_exists,
)
from acpcheck.facts.model import Address
from nodes.conftest import EXAMPLE_DATA, Case, case, plan_ip, run_case

UNDERLAY: dict[str, Any] = {"spec": {"network": {"kubeOvn": {"transmitMode": "underlay"}, "nic": "eth1"}}}
CP1 = plan_ip("cp1")


def cp1_names_nic(nic: str | None) -> dict[str, Any]:
    """The Underlay plan with cp1 naming its own NIC (node NIC > cluster NIC); None: no cluster NIC either."""
    nodes = copy.deepcopy(EXAMPLE_DATA["spec"]["nodes"])
    for node in nodes:
        if node["name"] == "cp1" and nic is not None:
            node["nic"] = nic
    network = {**UNDERLAY["spec"]["network"], "nic": None} if nic is None else UNDERLAY["spec"]["network"]
    return {"spec": {"network": network, "nodes": nodes}}


CASES = [
    case(check_underlay_nic_exists, "pass", "nic-present", plan=UNDERLAY),
    case(check_underlay_nic_exists, "pass", "node-nic-wins", plan=cp1_names_nic("eth0")),
    case(
        check_underlay_nic_exists,
        "fail",
        "nic-missing",
        plan=UNDERLAY,
        facts={"interfaces": ("lo", "eth0")},
        mentions=("no network link named eth1", "lo, eth0"),
    ),
    case(check_underlay_nic_exists, "manual", "links-unknown", plan=UNDERLAY, facts={"interfaces": None}),
    case(check_underlay_nic_exists, "skip", "no-nic-in-plan", plan=cp1_names_nic(None)),
    case(check_underlay_nic_exists, "skip", "overlay", plan={}),
    case(check_underlay_nic_dedicated, "pass", "nic-unused", plan=UNDERLAY),
    case(
        check_underlay_nic_dedicated,
        "fail",
        "ssh-address-on-nic",
        plan=cp1_names_nic("eth0"),
        mentions=(f"eth0 holds {CP1}", "SSH session"),
    ),
    case(
        check_underlay_nic_dedicated,
        "fail",
        "node-address-on-nic",
        plan=UNDERLAY,
        facts={"addresses": (Address("eth1", 4, CP1, 24),), "ssh_server_address": "198.51.100.7"},
        mentions=(f"eth1 holds {CP1}", "address in the plan"),
    ),
    case(
        check_underlay_nic_dedicated,
        "fail",
        "default-route-on-nic",
        plan=UNDERLAY,
        facts={"routes": ("default via 192.0.2.1 dev eth1 proto static",)},
        mentions=("default route leaves through eth1",),
    ),
    case(check_monitored_nic_names, "pass", "eth-names", plan=UNDERLAY),
    case(
        check_monitored_nic_names,
        "warn",
        "odd-underlay-name",
        plan=cp1_names_nic("ul0"),
        mentions=("ul0 (the Underlay NIC)", "eth, en, wl or ww"),
    ),
    case(
        check_monitored_nic_names,
        "warn",
        "odd-address-nic",
        plan=UNDERLAY,
        facts={"addresses": (Address("br-mgmt", 4, CP1, 24),)},
        mentions=(f"br-mgmt (holds {CP1})",),
    ),
]


@pytest.mark.parametrize("row", CASES)
def test_underlay_checks(row: Case) -> None:
    run_case(row)
