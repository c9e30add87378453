"""The engine end to end on this machine (see conftest): the dry-run changes nothing and
shows what apply then does, apply verifies through the grading function, a second apply
is a no-op, rollback restores byte for byte (content, mode, owner, absent stays
absent), a crash at any point is recoverable, failures undo their own step, refusals
change nothing."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import pytest
from nodes.conftest import plan_with

from acpcheck.remediation.journal import Journal
from acpcheck.remediation.output import document, render_run
from acpcheck.remediation.runner import Crasher, SimulatedCrash, pending_undos
from remediation.conftest import Machine, node_dir, outcomes, rollback_run, run, snapshot


def test_dry_run_changes_nothing_and_shows_every_change(machine: Machine, tmp_path: Path) -> None:
    before = snapshot(machine.root)
    report = run(machine, tmp_path, allow_removals=True)
    assert snapshot(machine.root) == before
    assert report.exit_code() == 1
    assert set(outcomes(report).values()) == {"planned"}
    text = render_run(report)
    assert "-value=bad" in text and "+value=good" in text  # a unified diff
    assert "(new, 0600 0:0)" in text  # a file in directories that do not exist yet
    assert "echo off >" in text and "undo: $ cat >" in text  # exact commands and their undo
    assert "undo: none exists (a log line cannot be taken back)" in text
    assert not (tmp_path / "out").exists()  # a dry-run journals nothing


def test_apply_verifies_and_dry_run_matched_it(machine: Machine, tmp_path: Path) -> None:
    dry = document(run(machine, tmp_path, allow_removals=True), 1)
    report = run(machine, tmp_path, apply=True, allow_removals=True)
    assert report.exit_code() == 0, render_run(report)
    assert set(outcomes(report).values()) == {"fixed"}
    assert all(item.after is not None and item.after.status == "pass" for node in report.nodes for item in node.steps)
    # what the dry-run showed is what apply wrote: the planned bytes are the node's bytes now
    for node in dry["nodes"]:
        for item in node["steps"]:
            for action in item["actions"]:
                if action["kind"] == "file" and action["afterSha256"]:
                    assert hashlib.sha256(Path(action["path"]).read_bytes()).hexdigest() == action["afterSha256"]
    config = machine.root / "cp1" / "config"
    assert (config.stat().st_uid, oct(config.stat().st_mode & 0o777)) == (4321, "0o640")  # owner and mode kept
    assert (machine.root / "cp1" / "reloaded").read_text() == "reload\n"  # `then` ran once


def test_journal_says_what_undoes_a_change_before_the_change(machine: Machine, tmp_path: Path) -> None:
    run(machine, tmp_path, apply=True, allow_removals=True)
    journal = Journal.open(tmp_path / "out" / "RUN1" / "journal")
    for _, records, warning in journal.read():
        assert warning is None
        intents = {r["seq"]: r for r in records if r["event"] == "intent"}
        for done in (r for r in records if r["event"] == "done"):
            assert done["ref"] in intents and done["ref"] < done["seq"]
        config = next(r for r in intents.values() if r["kind"] == "file" and r["undo"]["path"].endswith("/config"))
        assert config["undo"]["before"]["mode"] == "0640" and config["undo"]["before"]["uid"] == 4321
    assert journal.header["schema"] == "acpcheck/journal/v2" and journal.header["run"] == "RUN1"


def test_second_apply_changes_nothing_and_says_so(machine: Machine, tmp_path: Path) -> None:
    run(machine, tmp_path, apply=True, allow_removals=True)
    after_first = snapshot(machine.root)
    second = run(machine, tmp_path, apply=True, allow_removals=True, run_id="RUN2")
    assert snapshot(machine.root) == after_first
    assert second.exit_code() == 0 and not list(second.steps())
    assert "nothing to change" in render_run(second)
    assert not any(
        r["event"] == "intent"
        for _, records, _ in Journal.open(tmp_path / "out" / "RUN2" / "journal").read()
        for r in records
    )


def test_rollback_restores_byte_for_byte_and_absent_stays_absent(machine: Machine, tmp_path: Path) -> None:
    before = snapshot(machine.root)
    run(machine, tmp_path, apply=True, allow_removals=True)
    assert snapshot(machine.root) != before
    report = rollback_run(machine, tmp_path)
    assert report.exit_code() == 0
    after = snapshot(machine.root)
    assert {k: v for k, v in after.items() if k.split("/", 1)[-1] not in ("reloaded", "log")} == {
        k: v for k, v in before.items() if k.split("/", 1)[-1] not in ("reloaded", "log")
    }
    assert not (machine.root / "cp1" / "new").exists()  # the directories made for a new file are gone again
    irreversible = sorted(line.text for target in report.targets for line in target.lines if line.irreversible)
    assert irreversible == [
        (
            f"`echo note >> {machine.root / name / 'log'}`: NOT reversed: no reverse exists (a log line cannot "
            "be taken back)"
        )
        for name in ("cp1", "w1")
    ]
    again = rollback_run(machine, tmp_path)  # a second rollback has nothing left to do
    assert not any(target.lines for target in again.targets)


def test_rollback_refuses_to_overwrite_a_later_change(machine: Machine, tmp_path: Path) -> None:
    run(machine, tmp_path, apply=True, allow_removals=True)
    config = machine.root / "cp1" / "config"
    config.write_text("value=good\nedited=by-someone-else\n")
    report = rollback_run(machine, tmp_path)
    assert report.exit_code() == 2
    assert config.read_text() == "value=good\nedited=by-someone-else\n"
    failed = [line.text for target in report.targets for line in target.lines if not line.ok]
    assert len(failed) == 1 and "changed after this run changed it" in failed[0]


#: Crash points of one node's apply: 3 per action (after the intent is durable, after
#: the change, after "done"). Every one of them, then rollback: the node is as before.
def crash_points(machine: Machine, tmp_path: Path) -> int:
    counter = Crasher(10**9)
    run(machine, tmp_path, apply=True, allow_removals=True, run_id="COUNT", crasher=counter)
    return counter.count


def test_a_crash_at_any_point_is_recoverable_with_rollback(machine: Machine, tmp_path: Path) -> None:
    machine.plan = plan_with({"spec": {"nodes": [{"name": "cp1", "role": "control-plane", "ipv4": "192.0.2.11"}]}})
    before = snapshot(machine.root / "cp1")
    total = crash_points(machine, tmp_path)
    rollback_run(machine, tmp_path, "COUNT")
    assert total >= 18
    for point in range(1, total + 1):
        run_id = f"CRASH{point}"
        with pytest.raises(SimulatedCrash):
            run(machine, tmp_path, apply=True, allow_removals=True, run_id=run_id, crasher=Crasher(point))
        journal = Journal.open(tmp_path / "out" / run_id / "journal")
        assert pending_undos(journal.read()[0][1])  # the crash left work for rollback
        assert rollback_run(machine, tmp_path, run_id).exit_code() == 0
        after = snapshot(machine.root / "cp1")
        assert {k: v for k, v in after.items() if k not in ("reloaded", "log")} == {
            k: v for k, v in before.items() if k not in ("reloaded", "log")
        }, point


def test_a_failing_step_undoes_its_own_changes(machine: Machine, tmp_path: Path) -> None:
    broken = machine.root / "cp1" / "broken.conf"
    report = run(machine, tmp_path, apply=True, selectors=("ACP-NODE-955",))
    assert outcomes(report)[("cp1", "ACP-NODE-955/broken")] == "failed"
    assert report.exit_code() == 2
    assert broken.read_text() == "broken\n"
    messages = next(item.messages for node in report.nodes for item in node.steps if node.node == "cp1")
    assert any("the second half fails" in m for m in messages) and any(m.startswith("undone:") for m in messages)
    assert not any(
        pending_undos(records) for _, records, _ in Journal.open(tmp_path / "out" / "RUN1" / "journal").read()
    )


def test_a_new_login_that_fails_puts_the_file_back(machine: Machine, tmp_path: Path) -> None:
    from acpcheck.remediation.changes import Changes, WriteFile
    from acpcheck.remediation.steps import STEPS, Step
    from remediation.conftest import _config

    def guarded(view) -> Changes:  # the sshd steps' shape: validate, reload, then a brand-new login
        changes = _config(view)
        return Changes(tuple(replace(a, login_check=True) if isinstance(a, WriteFile) else a for a in changes.actions))

    STEPS["ACP-NODE-951"] = [Step("ACP-NODE-951", "config", "sets value=good", guarded)]
    machine.login_problem = "auth: authentication failed"
    config = machine.root / "cp1" / "config"
    before = config.read_bytes()
    report = run(machine, tmp_path, apply=True, selectors=("ACP-NODE-951",))
    assert outcomes(report)[("cp1", "ACP-NODE-951/config")] == "failed"
    assert config.read_bytes() == before
    assert (
        machine.root / "cp1" / "reloaded"
    ).read_text() == "reload\nreload\n"  # reloaded with the new file, then with the old one
    assert any("a new SSH login failed" in m for node in report.nodes for item in node.steps for m in item.messages)


def test_a_file_changed_since_the_step_read_it_is_not_written(machine: Machine, tmp_path: Path) -> None:
    from acpcheck.remediation.changes import Changes, WriteFile
    from acpcheck.remediation.steps import STEPS, Step

    config = machine.root / "cp1" / "config"

    def stale(view):
        path = node_dir(view.node) / "config"
        planned = view.file(str(path))
        path.write_text("value=bad\nsomeone=else\n")  # between the step reading it and the change
        return Changes((WriteFile(str(path), planned, b"value=good\n", "stale"),))

    STEPS["ACP-NODE-951"] = [Step("ACP-NODE-951", "config", "sets value=good", stale)]
    report = run(machine, tmp_path, apply=True, selectors=("ACP-NODE-951",))
    assert outcomes(report)[("cp1", "ACP-NODE-951/config")] == "failed"
    assert config.read_text() == "value=bad\nsomeone=else\n"
    assert any(
        "changed on the node since the step read it" in m
        for node in report.nodes
        for item in node.steps
        for m in item.messages
    )


def test_removals_need_the_extra_flag(machine: Machine, tmp_path: Path) -> None:
    report = run(machine, tmp_path, apply=True, run_id="NOFLAG")
    assert outcomes(report)[("cp1", "ACP-NODE-952/leftover")] == "skipped"
    assert (machine.root / "cp1" / "leftover" / "inner" / "data").exists()
    assert report.exit_code() == 1


def test_immutable_clusters_are_refused_with_the_doc_and_nothing_changes(machine: Machine, tmp_path: Path) -> None:
    before = snapshot(machine.root)
    machine.plan = plan_with({"spec": {"cluster": {"type": "immutable"}}})
    report = run(machine, tmp_path, apply=True)
    assert report.refused and "node_preprocessing.html" in report.refused and "immutable" in report.refused
    assert report.exit_code() == 1 and snapshot(machine.root) == before
    assert not (tmp_path / "out").exists()


def test_an_immutable_os_node_is_refused(machine: Machine, tmp_path: Path) -> None:
    original = machine.facts
    machine.facts = lambda name: (
        replace(original(name), os_id="opensuse-microos", os_pretty_name="openSUSE MicroOS")
        if name == "w1"
        else original(name)
    )  # type: ignore[method-assign]
    before = snapshot(machine.root / "w1")
    report = run(machine, tmp_path, apply=True, allow_removals=True)
    assert {outcome for (node, _), outcome in outcomes(report).items() if node == "w1"} == {"refused"}
    assert snapshot(machine.root / "w1") == before
    assert {o for (node, _), o in outcomes(report).items() if node == "cp1"} == {"fixed"}


def test_an_unreachable_node_is_reported_and_the_others_are_fixed(machine: Machine, tmp_path: Path) -> None:
    machine.failing = {"w1"}
    report = run(machine, tmp_path, apply=True, allow_removals=True)
    assert report.exit_code() == 2
    assert next(n for n in report.nodes if n.node == "w1").error.startswith("unreachable")
    assert "could not be reached" in render_run(report)


def test_findings_of_an_earlier_run_narrow_the_steps(machine: Machine, tmp_path: Path) -> None:
    report = run(machine, tmp_path, findings=frozenset({("ACP-NODE-951", "node:cp1")}))
    assert list(outcomes(report)) == [("cp1", "ACP-NODE-951/config")]


def test_remediation_json_is_plain_json(machine: Machine, tmp_path: Path) -> None:
    report = run(machine, tmp_path, apply=True, allow_removals=True)
    data = json.loads(json.dumps(document(report, report.exit_code())))
    assert data["schema"] == "acpcheck/remediation/v1" and data["mode"] == "apply"
    assert {s["outcome"] for n in data["nodes"] for s in n["steps"]} == {"fixed"}


def test_ctrl_c_starts_no_new_change_and_rollback_completes_the_journal(machine: Machine, tmp_path: Path) -> None:
    from acpcheck.remediation.steps import STEPS, Step
    from remediation.conftest import _state

    def interrupted(view):
        if view.name == "w1":
            raise KeyboardInterrupt  # Ctrl-C while w1 plans its step
        return _state(view)

    STEPS["ACP-NODE-954"] = [Step("ACP-NODE-954", "state", "turns the state off", interrupted)]
    before = snapshot(machine.root)
    report = run(machine, tmp_path, apply=True, allow_removals=True)
    assert report.interrupted and report.exit_code() == 130
    assert "interrupted: no further change was started" in render_run(report)
    assert rollback_run(machine, tmp_path).exit_code() == 0
    after = snapshot(machine.root)
    assert {k: v for k, v in after.items() if k.split("/", 1)[-1] not in ("reloaded", "log")} == {
        k: v for k, v in before.items() if k.split("/", 1)[-1] not in ("reloaded", "log")
    }


class LostConnection:
    """This machine, until the connection is 'lost' at the Nth command: every later command fails."""

    def __init__(self, inner, after: int):
        self.inner, self.left = inner, after

    def run_as_root(self, command, timeout=None, *, stdin=None):
        from acpcheck.transport.errors import TransportError

        self.left -= 1
        if self.left < 0:
            raise TransportError("unreachable", "the connection was lost while the command ran (test)")
        return self.inner.run_as_root(command, timeout, stdin=stdin)

    def __getattr__(self, name):
        return getattr(self.inner, name)


@pytest.mark.parametrize("after", [2, 6, 10, 14])
def test_a_connection_lost_midway_leaves_a_journal_that_rollback_completes(
    machine: Machine, tmp_path: Path, after: int
) -> None:
    machine.plan = plan_with({"spec": {"nodes": [{"name": "cp1", "role": "control-plane", "ipv4": "192.0.2.11"}]}})
    before = snapshot(machine.root / "cp1")
    healthy = machine.transport
    machine.transport = lambda node: LostConnection(healthy(node), after)  # type: ignore[method-assign]
    report = run(machine, tmp_path, apply=True, allow_removals=True)
    assert report.exit_code() == 2
    machine.transport = healthy  # type: ignore[method-assign]
    assert rollback_run(machine, tmp_path).exit_code() == 0
    after_state = snapshot(machine.root / "cp1")
    assert {k: v for k, v in after_state.items() if k not in ("reloaded", "log")} == {
        k: v for k, v in before.items() if k not in ("reloaded", "log")
    }
