"""Connectivity on the lab: every node listens and connects to every other node on
real sshd nodes; a node firewalled (nftables in its own namespace) from another gives
exactly that pair, and a workload cluster's nodes reach (or not) what the plan names
of the global cluster. Only the lab's own addresses are contacted."""

from __future__ import annotations

from pathlib import Path

import pytest

from test_lb_on_lab import Case, assert_only_lab_addresses, findings, lab_up, leftovers, run_acpcheck

FIREWALL = Case("lb-firewall", ("ACP-CONN-*",), {
    ("ACP-CONN-001", "node:cp1"): ("fail", ("cp1 cannot reach cp3", "6443/tcp (apiserver) timeout", "2379/tcp (etcd-client) timeout",
                                            "10250/tcp (kubelet) timeout", "6081/udp (geneve) timeout")),
})


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
def test_workload_nodes_reach_the_global_addresses_the_plan_names(registry: str, lab_machine: Path, tmp_path: Path) -> None:
    """The lab's LB plays the global cluster: its 6443 answers (the platform URL), its
    11443 has no frontend (a registry nobody can reach) unless the plan points at 6443."""
    with lab_up(lab_machine, "lb-good") as lab:
        endpoint = str(lab.lab_subnets.endpoint_address)
        registry_address = f"{endpoint}:11443" if registry == "refused" else f"{endpoint}:6443"
        edits = {"cluster": {"annotations": {"cpaas.io/platform-url": f"https://{endpoint}:6443"}},
                 "registry": {"type": "platform", "address": registry_address}}
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
