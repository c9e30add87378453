"""Evidence is saved with the run and replays offline: a run over real lab nodes and
its replay (`--facts <out>/facts`, no connection) write the same results.json, byte
for byte, apart from the run's id, timestamps and durations."""

from __future__ import annotations

import re
from pathlib import Path

from test_node_checks_on_lab import acpcheck_run

from acpcheck_lab import LabInfo

#: What legitimately differs between two runs of the same evidence.
VOLATILE = re.compile(r'("(?:id|started|finished|duration)": )("[^"]*"|[0-9.e-]+)')


def normalised(results_json: Path) -> bytes:
    return VOLATILE.sub(r"\1<volatile>", results_json.read_text(encoding="utf-8")).encode()


def logins_by_node(lab: LabInfo) -> dict[str, int]:
    return {
        node.name: (lab.state_dir / "nodes" / node.name / "sshd.log").read_text().count("Accepted ")
        for node in lab.nodes
    }


def sshd_logins(lab: LabInfo) -> int:
    return sum(logins_by_node(lab).values())


def test_a_run_logs_in_to_each_node_once(defects_lab: LabInfo, tmp_path: Path) -> None:
    """Every source of the run (facts, load balancer, connectivity) shares one login per
    node, and xdist workers connect to none: at 1,000 nodes each extra login is runner CPU."""
    before = logins_by_node(defects_lab)
    run = acpcheck_run(defects_lab, defects_lab.plan_file, tmp_path / "out", "--profile", "preinstall", "-n", "2")
    after = logins_by_node(defects_lab)
    gathered = {
        p.stem for p in (tmp_path / "out" / "facts" / "nodes").glob("*.json") if '"failure"' not in p.read_text()
    }
    assert gathered, run["output"]
    assert {name: after[name] - before[name] for name in after} == {name: int(name in gathered) for name in after}


def test_replayed_run_writes_the_same_results_without_connecting(defects_lab: LabInfo, tmp_path: Path) -> None:
    live = acpcheck_run(defects_lab, defects_lab.plan_file, tmp_path / "live", "--profile", "preinstall")
    assert live["summary"]["fail"], "the defects lab has failing nodes"
    evidence = tmp_path / "live" / "facts"
    assert sorted(p.stem for p in (evidence / "nodes").glob("*.json")) == sorted(n.name for n in defects_lab.nodes)

    logins = sshd_logins(defects_lab)
    replayed = acpcheck_run(
        defects_lab, defects_lab.plan_file, tmp_path / "replay", "--profile", "preinstall", "--facts", str(evidence)
    )
    assert sshd_logins(defects_lab) == logins, "a replayed run must not contact any node"
    assert replayed["exit"] == live["exit"]
    assert normalised(tmp_path / "replay" / "results.json") == normalised(tmp_path / "live" / "results.json")
