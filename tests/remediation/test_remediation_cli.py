"""`acpcheck remediate` / `acpcheck rollback` as commands (python -m acpcheck.remediation
until the main command dispatches to them): bad input is exit 4 before anything
connects; a node that cannot be reached is exit 2; the journal survives a cut line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from acpcheck.remediation.cli import main
from acpcheck.remediation.journal import Journal, JournalError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "workload-kube-ovn.yaml"


def loopback_plan(tmp_path: Path) -> Path:
    """A plan whose one node is this machine's loopback on a closed port: refused at once."""
    text = (
        EXAMPLE.read_text().split("  nodes:")[0]
        + "  nodes:\n    - {name: cp1, role: control-plane, ipv4: 127.0.0.1, ssh: {port: 9}}\n"
    )
    path = tmp_path / "plan.yaml"
    path.write_text(text.replace("port: 22", "port: 9").replace("~/.ssh/id_ed25519", str(tmp_path / "no-key")))
    return path


def test_bad_input_is_exit_4(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["remediate", "--plan", str(tmp_path / "missing.yaml")]) == 4
    assert main(["remediate", "--plan", str(EXAMPLE), "--check", "ACP-NOPE-1"]) == 4
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"run": {"cluster": "another"}, "results": []}))
    assert main(["remediate", "--plan", str(EXAMPLE), "--from", str(results)]) == 4
    assert '--from: not a results.json: it has no "schema"' in capsys.readouterr().err
    results.write_text(
        json.dumps({"schema": "acpcheck/results/v1", "run": {"id": "r", "cluster": "another"}, "results": []})
    )
    assert main(["remediate", "--plan", str(EXAMPLE), "--from", str(results)]) == 4
    assert "is 'another', but the plan is of cluster 'prod-east'" in capsys.readouterr().err
    fifo = tmp_path / "results-fifo.json"
    os.mkfifo(fifo)  # it used to wait for a writer forever; /dev/zero grew to 3.8 GB
    assert main(["remediate", "--plan", str(EXAMPLE), "--from", str(fifo)]) == 4
    assert "not a regular file (it is a FIFO)" in capsys.readouterr().err
    assert main(["remediate", "--plan", str(EXAMPLE), "--from", "/dev/zero"]) == 4
    assert "not a regular file (it is a device)" in capsys.readouterr().err
    assert main(["rollback", "NO-SUCH-RUN", "--journal-dir", str(tmp_path / "none")]) == 4
    assert "no remediation journal" in capsys.readouterr().err
    assert main(["remediate"]) == 4


def test_rollback_of_another_runs_journal_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Journal.create(tmp_path / "journal", {"run": "RUN-A", "planText": EXAMPLE.read_text()})
    assert main(["rollback", "RUN-B", "--journal-dir", str(tmp_path / "journal")]) == 4
    assert "is the journal of run RUN-A" in capsys.readouterr().err


def test_an_unreachable_node_is_exit_2_and_nothing_is_journaled(tmp_path: Path) -> None:
    plan = loopback_plan(tmp_path)
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "acpcheck.remediation", "remediate", "--plan", str(plan), "--apply", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "node cp1: could not be reached" in done.stdout
    document = json.loads((out / "remediation.json").read_text())
    assert document["mode"] == "apply" and document["nodes"][0]["error"]
    ((target, records, _),) = Journal.open(
        out / "journal"
    ).read()  # a header, a file opened for the node, and not one change
    assert target == "node:cp1" and [r["event"] for r in records] == ["open"]


def test_an_out_directory_that_cannot_be_written_is_exit_4_before_any_node_is_contacted(tmp_path: Path) -> None:
    """The node of this plan listens nowhere: had it been contacted, the node would be
    "could not be reached" (exit 2). A read-only --out is bad input, said first."""
    plan = loopback_plan(tmp_path)
    locked = tmp_path / "read-only"
    locked.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,ro", "tmpfs", str(locked)], check=True)
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "acpcheck.remediation",
                "remediate",
                "--plan",
                str(plan),
                "--apply",
                "--out",
                str(locked / "run"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    finally:
        subprocess.run(["umount", str(locked)], check=True)
    assert done.returncode == 4, done.stdout + done.stderr
    assert "--out" in done.stderr and "Read-only file system" in done.stderr, done.stderr
    assert "cp1" not in done.stdout + done.stderr  # no node was contacted


def test_a_journal_cut_short_by_a_crash_still_reads(tmp_path: Path) -> None:
    journal = Journal.create(tmp_path / "journal", {"run": "RUN1"}, ["node:cp1"])
    writer = journal.writer("node:cp1")
    writer.append(
        "intent",
        step="S",
        action=0,
        kind="move",
        undo={"path": "/x", "backup": "/var/lib/acpcheck/backup/RUN1/moved/x"},
    )
    with open(writer.path, "a") as handle:
        handle.write('{"seq": 3, "at": "2026-')  # the runner died in the middle of a line
    reopened = Journal.open(tmp_path / "journal")
    ((target, records, warning),) = reopened.read()
    assert target == "node:cp1" and [r["event"] for r in records] == ["open", "intent"]
    assert warning and "cut short" in warning
    reopened.writer("node:cp1").append("undone", ref=2, note="moved back")  # the cut line goes first: never mid-file
    ((_, records, warning),) = Journal.open(tmp_path / "journal").read()
    assert [r["event"] for r in records] == ["open", "intent", "undone"] and warning is None
    with pytest.raises(JournalError, match="already holds the journal of run RUN1"):
        Journal.create(tmp_path / "journal", {"run": "RUN2"})


def test_module_entry_point_shows_help() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "acpcheck.remediation", "rollback", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0 and "--journal-dir" in done.stdout


def test_run_remediate_shows_the_dry_run_of_that_runs_findings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from acpcheck.remediation.cli import after_run

    out = tmp_path / "run"
    out.mkdir()
    results = {
        "schema": "acpcheck/results/v1",
        "run": {"id": "r1", "cluster": "prod-east"},
        "results": [
            {
                "check": "ACP-NODE-010",
                "title": "sshd does not look up client names",
                "severity": "low",
                "target": "node:cp1",
                "status": "fail",
                "message": "UseDNS yes",
            }
        ],
    }
    (out / "results.json").write_text(json.dumps(results))
    assert after_run(str(loopback_plan(tmp_path)), out) == 2  # its one node cannot be reached here
    assert "dry-run: nothing is changed" in capsys.readouterr().out


def test_from_reads_a_results_file_of_a_thousand_node_run(tmp_path: Path) -> None:
    """A 1,000-node preinstall run writes about 19 MB of results.json, more than the
    16 MiB limit for hand-written input: --from takes it (and only the FAIL/WARN pairs)."""
    from acpcheck.model.plan import load_plan
    from acpcheck.remediation.runner import findings_of

    results = [
        {
            "check": f"ACP-NODE-{i % 40:03d}",
            "target": f"node:w{i}",
            "title": "a node check",
            "severity": "high",
            "status": "fail" if i % 997 == 0 else "pass",
            "message": "x" * 440,
        }
        for i in range(36_000)
    ]
    path = tmp_path / "results.json"
    document = {"schema": "acpcheck/results/v1", "run": {"id": "r1", "cluster": "prod-east"}, "results": results}
    path.write_text(json.dumps(document))
    assert path.stat().st_size > 16 << 20
    assert findings_of(path, load_plan(EXAMPLE)) == {
        (r["check"], r["target"]) for r in results if r["status"] == "fail"
    }
