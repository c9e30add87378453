"""Connectivity on the lab: every node listens and connects to every other node on
real sshd nodes; a node firewalled (nftables in its own namespace) from another gives
exactly that pair, and a workload cluster's nodes reach (or not) what the plan names
of the global cluster. Only the lab's own addresses are contacted."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import yaml
from nodes.conftest import node_context
from test_lb_on_lab import Case, assert_only_lab_addresses, findings, lab_up, leftovers, plan_of, run_acpcheck

from acpcheck.checks import connectivity as checks
from acpcheck.model.plan import load_plan
from acpcheck.sources import connectivity as source
from acpcheck.sources.base import GatherContext
from acpcheck.testing import run_check
from acpcheck.transport.errors import TransportError

FIREWALL = Case(
    "lb-firewall",
    ("ACP-CONN-*",),
    {
        ("ACP-CONN-001", "node:cp1"): (
            "fail",
            (
                "cp1 cannot reach cp3",
                "6443/tcp (apiserver) timeout",
                "2379/tcp (etcd-client) timeout",
                "10250/tcp (kubelet) timeout",
                "6081/udp (geneve) timeout",
            ),
        ),
    },
)


def test_a_node_firewalled_from_another_gives_exactly_that_pair(lab_machine: Path, tmp_path: Path) -> None:
    with lab_up(lab_machine, FIREWALL.scenario) as lab:
        document = run_acpcheck(lab, tmp_path, *FIREWALL.selectors)
        assert leftovers(lab) == []
    seen = findings(document)
    assert set(seen) == set(FIREWALL.expect), seen
    status, message = seen[("ACP-CONN-001", "node:cp1")]
    assert status == "fail" and all(word in message for word in FIREWALL.expect[("ACP-CONN-001", "node:cp1")][1])
    assert "cp2" not in message  # only the firewalled pair
    assert_only_lab_addresses(lab, document)


@pytest.mark.parametrize("registry", ["refused", "reached"])
def test_workload_nodes_reach_the_global_addresses_the_plan_names(
    registry: str, lab_machine: Path, tmp_path: Path
) -> None:
    """The lab's LB plays the global cluster: its 6443 answers (the platform URL), its
    11443 has no frontend (a registry nobody can reach) unless the plan points at 6443."""
    with lab_up(lab_machine, "lb-good") as lab:
        endpoint = str(lab.lab_subnets.endpoint_address)
        registry_address = f"{endpoint}:11443" if registry == "refused" else f"{endpoint}:6443"
        edits = {
            "cluster": {"annotations": {"cpaas.io/platform-url": f"https://{endpoint}:6443"}},
            "registry": {"type": "platform", "address": registry_address},
        }
        document = run_acpcheck(lab, tmp_path, "ACP-CONN-002", "ACP-CONN-003", edits=edits)
        assert leftovers(lab) == []
    seen = findings(document)
    statuses = {(r["check"], r["target"]): r["status"] for r in document["results"]}
    assert all(statuses[("ACP-CONN-002", f"node:{node}")] == "pass" for node in ("cp1", "cp2", "cp3", "w1"))
    if registry == "refused":
        assert set(seen) == {("ACP-CONN-003", f"node:{node}") for node in ("cp1", "cp2", "cp3", "w1")}
        assert all(f"global registry {endpoint}:11443: refused" in message for _, message in seen.values())
    else:
        assert not seen
    assert_only_lab_addresses(lab, document)


def test_a_node_whose_connection_is_lost_mid_probe_runs_again_and_fails_nobody(
    lab_machine: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What 1,000 lab nodes on two cores did: w1's connection was lost while the probe
    ran, so its connector failed and its listener ended with the connection. Its
    connector runs once more (on a new connection) and passes; the nodes that probed
    w1 after its listener ended are not FAILed for it; w1 itself says what was not
    proven towards it, and why."""
    real = source.ConnectivitySource._connect_from
    lost = threading.Event()

    def connect_from(context: GatherContext, node: object, *args: object) -> object:
        if getattr(node, "name", "") == "w1" and not lost.is_set():
            context.pool.session(node).abort()  # the connection dies, and w1's listener with it
            time.sleep(2)  # the listener notices within half a second (epoll on its stdout)
            lost.set()
            raise TransportError("unreachable", "the connection was lost while the command ran")
        lost.wait(30)  # the others probe w1 only once it is gone
        return real(context, node, *args)

    monkeypatch.setattr(source.ConnectivitySource, "_connect_from", staticmethod(connect_from))
    with lab_up(lab_machine, "lb-good") as lab:
        for key, value in lab.env().items():
            monkeypatch.setenv(key, value)
        plan_file = tmp_path / "plan.yaml"
        plan_file.write_text(yaml.safe_dump(plan_of(lab)))
        plan = load_plan(plan_file)
        context = GatherContext(plan=plan, later=["checks"])
        try:
            evidence = source.ConnectivitySource().gather(context)
        finally:
            context.close()
        assert leftovers(lab) == []
    assert evidence.nodes["w1"].attempts == 2 and not evidence.nodes["w1"].error and evidence.nodes["w1"].ok > 0
    assert evidence.listeners["w1"].ended and evidence.listeners["w1"].unproven_after_end > 0
    results = {
        name: run_check(checks.check_node_reaches_peers, plan, node=node_context(name, plan), connectivity=evidence)
        for name in ("cp1", "cp2", "cp3", "w1")
    }
    assert {name: result.status for name, result in results.items()} == {
        "cp1": "pass",
        "cp2": "pass",
        "cp3": "pass",
        "w1": "manual",
    }, {name: result.message for name, result in results.items()}
    assert "its listener ended during the probe" in results["w1"].message
