"""The pre-install verdict at a size above the old breaking point (issue 16).

Up to 30 lab nodes every connectivity probe passed; from 60 up, every node of a
healthy lab FAILed ACP-CONN-001 with "timeout" on every pair, because the lab's
nodes share one kernel and its one ARP table held 1,024 entries (see
lab/acpcheck_lab/kernel_limits.py). These tests run 120 real sshd nodes behind a real
haproxy: a healthy lab is green on the whole ``preinstall`` profile, and the
``at-scale`` scenario's defects are each found once, on the right node and port,
while the probe is sampled (above 50 nodes).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from test_lb_on_lab import assert_only_lab_addresses, leftovers, run_acpcheck

from acpcheck.sources.connectivity import ALL_PAIRS_UP_TO, SAMPLED_PEERS
from acpcheck_lab import down, up
from acpcheck_lab.kernel_limits import read_limits
from acpcheck_lab.scenario import healthy_scenario, load_scenario, scaled_scenario

NODES = 120  # above the old breaking point (60), and sampled (above ALL_PAIRS_UP_TO)


def test_a_healthy_lab_of_120_nodes_passes_the_whole_preinstall_profile(lab_machine: Path, tmp_path: Path) -> None:
    before = read_limits()
    lab = up(healthy_scenario(NODES), lab_machine)
    try:
        assert read_limits()["net/ipv4/neigh/default/gc_thresh3"] >= NODES * NODES
        document = run_acpcheck(lab, tmp_path, timeout=240)
        assert leftovers(lab) == [], "a listener survived the run"
    finally:
        down(lab_machine, purge=True)
    assert read_limits() == before, "lab down puts the ARP table's limits back"
    statuses = Counter(result["status"] for result in document["results"])
    bad = [
        (r["check"], r["target"], r["message"][:200])
        for r in document["results"]
        if r["status"] in ("fail", "error", "manual", "warn")
    ]
    assert not bad, bad[:10]
    assert document["exit"] == 0
    checked = {result["check"] for result in document["results"] if result["status"] == "pass"}
    assert {"ACP-CONN-001", "ACP-LB-001", "ACP-LB-002"} <= checked  # the load balancer and connectivity really ran
    assert statuses["pass"] >= NODES * 20
    assert_only_lab_addresses(lab, document)


def test_each_defect_is_found_once_on_the_right_node_and_port_at_120_nodes(lab_machine: Path, tmp_path: Path) -> None:
    assert NODES > ALL_PAIRS_UP_TO  # the sampled probe is what is under test
    lab = up(scaled_scenario(load_scenario("at-scale"), NODES), lab_machine)
    try:
        document = run_acpcheck(lab, tmp_path, "area:CONN", "area:LB", "ACP-NODE-019", timeout=240)
        assert leftovers(lab) == []
    finally:
        down(lab_machine, purge=True)
    results = {(r["check"], r["target"]): r for r in document["results"]}
    others = {key: (r["status"], r["message"]) for key, r in results.items() if r["status"] not in ("pass", "skip")}

    # one control-plane node left out of one LB port
    lb = others.pop(("ACP-LB-002", "node:cp2"))
    assert lb[0] == "fail" and "port 11780" in lb[1] and "never cp2" in lb[1]
    # one TCP port dropped between two nodes: w1 -> cp3 2379, and nothing else from w1 but the geneve block below
    w1 = others.pop(("ACP-CONN-001", "node:w1"))
    assert w1[0] == "fail" and "w1 cannot reach cp3: 2379/tcp (etcd-client) timeout" in w1[1]
    assert "cp1" not in w1[1] and "cp2" not in w1[1]
    # a busy port: not proven, named as such, on that node only (and the port check FAILs there)
    w4 = others.pop(("ACP-CONN-001", "node:w4"))
    assert w4[0] == "manual" and "10250/tcp (kubelet) on w4: not proven: the port is in use" in w4[1]
    assert others.pop(("ACP-NODE-019", "node:w4"))[0] == "fail"
    # a node without any listener tool: one MANUAL, on that node, never a FAIL for the nodes that probe it
    w3 = others.pop(("ACP-CONN-001", "node:w3"))
    assert (
        w3[0] == "manual" and "no node could prove it reaches w3" in w3[1] and "w3 has no tool to connect with" in w3[1]
    )
    # one UDP port class blocked on w2: exactly the nodes that probe w2 FAIL, each naming w2 and geneve
    geneve = {key: value for key, value in others.items() if key[0] == "ACP-CONN-001"}
    assert all(
        status == "fail" and "cannot reach w2: 6081/udp (geneve) timeout" in message
        for status, message in geneve.values()
    ), geneve
    assert (
        SAMPLED_PEERS <= len(geneve) + 1 <= SAMPLED_PEERS + 3
    )  # w1's FAIL (counted above) also names w2 when w1 probes it
    for key in geneve:
        others.pop(key)
    assert not others, others  # nothing else: no ERROR, no FAIL on a healthy node
    assert_only_lab_addresses(lab, document)
