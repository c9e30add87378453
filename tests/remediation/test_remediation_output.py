"""What remediate and rollback print, and remediation.json, on this machine's test nodes
(tests/remediation/conftest.py): wrapped to the width given, one heading style, a recap
line per node, "written" and the real backup path after an apply, stacked edits of one
file said as such, and the undo command only when there is something to undo. The same
on real nodes through the CLI, at 80 columns, with and without a terminal:
tests/remediation/test_remediation_output_on_lab.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from acpcheck.remediation import steps as step_module
from acpcheck.remediation.changes import changes_of
from acpcheck.remediation.edits import set_assignment
from acpcheck.remediation.nodesteps import edit
from acpcheck.remediation.output import (
    APPLY_RECAP,
    DRY_RUN_RECAP,
    OUTCOMES,
    REMEDIATION_SCHEMA,
    document,
    render_rollback,
    render_run,
    run_lines,
)
from acpcheck.remediation.runner import RunReport
from acpcheck.remediation.steps import Step, register
from acpcheck.remediation.view import NodeView
from remediation.conftest import Machine, node_dir, rollback_run, run

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "reports" / "remediation.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
#: How a line starts that is never wrapped (a diff line, a command, the undo command): it copies as it is.
VERBATIM = ("$ ", "--- ", "+++ ", "@@", "+", "-", " ", "acpcheck rollback ")


def validate(report: RunReport) -> dict[str, Any]:
    """remediation.json of ``report``, checked against reports/remediation.schema.json (as the CLI writes it)."""
    written = json.loads(json.dumps(document(report, report.exit_code())))
    VALIDATOR.validate(written)
    return written


def long_lines(text: str, width: int) -> list[str]:
    """Lines wider than ``width`` that could have been wrapped: not diff lines or commands,
    and not one word longer than the width (the test nodes' paths are, as run's URLs)."""
    return [
        line
        for line in text.splitlines()
        if len(line) > width and not line.lstrip(" ").startswith(VERBATIM) and " " in line.strip()
    ]


def recap_line(text: str, node: str) -> str:
    """The node's recap line (unwrapped: rendered without a width)."""
    (line,) = [line for line in text.splitlines() if line.startswith(f"  {node} ") and " : " in line]
    return line


def _other(view: NodeView) -> Any:
    path = str(node_dir(view.node) / "config")
    return changes_of([edit(view, path, lambda text: set_assignment(text, "other", "2"), "other=2")])


@pytest.fixture
def stacked_step(test_steps: Any) -> Iterator[Step]:
    """A second step of ACP-NODE-951 that edits the same config file after the first."""
    step = Step("ACP-NODE-951", "other", "sets other=2", _other)
    register(step)
    yield step
    step_module.STEPS.pop(step.check, None)


def test_dry_run_then_apply_then_second_apply_as_people_read_them(
    machine: Machine, tmp_path: Path, stacked_step: Step
) -> None:
    dry = run(machine, tmp_path, run_id="DRY")
    text = render_run(dry, 80)
    assert not long_lines(text, 80), long_lines(text, 80)
    assert "[would change] ACP-NODE-951 the config says value=good: fail" in text  # the outcome first, whole
    backup = f"{tmp_path / 'backup'}/DRY"
    assert f"{backup}/moved{node_dir_of(machine, 'cp1')}/leftover" in text and "<run>" not in text
    assert f"(archive: {backup}/node-cp1-ACP-NODE-954-state-1.tar)" in render_run(dry)
    # two steps edit one file: the second diff says where it starts
    assert "stacked on step ACP-NODE-951/config above: this diff starts from the file as that step" in render_run(dry)
    assert "(planned, 0640 4321:4321 kept)" in text and "(written," not in text
    assert recap_line(render_run(dry), "cp1") == (
        "  cp1   : ok=0 would_change=4 failed=0 refused=0 skipped=1 unreachable=0"
    )
    assert "acpcheck rollback" not in text  # a dry-run changes nothing: nothing to undo
    written = validate(dry)
    assert written["undo"] is None and written["nodes"][0]["recap"]["would_change"] == 4

    applied = run(machine, tmp_path, apply=True, run_id="APPLY")
    text = render_run(applied, 80)
    assert not long_lines(text, 80), long_lines(text, 80)
    assert "[FIXED] ACP-NODE-951 the config says value=good: fail -> pass" in text
    assert "changes made:" in text and "(written, 0640 4321:4321 kept)" in text and "(planned," not in text
    assert "first archived on the node what it changes" in text
    unwrapped = render_run(applied)
    assert recap_line(unwrapped, "cp1") == (
        "  cp1   : ok=0 changed=4 fixed=4 needs_reboot=0 still_failing=0 failed=0 refused=0 skipped=1 unreachable=0"
    )
    assert recap_line(unwrapped, "total").endswith("skipped=2 unreachable=0")
    journal = tmp_path / "out" / "APPLY" / "journal"
    undo = f"  acpcheck rollback APPLY --journal-dir {journal}"
    assert undo in text.splitlines()  # one line, never wrapped: it copies as it is
    written = validate(applied)
    assert written["undo"] == undo.strip() and written["backupDir"] == f"{tmp_path / 'backup'}/APPLY"
    files = [a for n in written["nodes"] for s in n["steps"] for a in s["actions"] if a["kind"] == "file"]
    assert files and all(a["done"] and "\t(written," in a["diff"][1] for a in files if a["before"] == "file")

    again = run(machine, tmp_path, apply=True, run_id="AGAIN")
    text = render_run(again, 80)
    assert "no change made" in text and "acpcheck rollback" not in text  # nothing changed: no undo to offer
    assert validate(again)["undo"] is None


def node_dir_of(machine: Machine, name: str) -> Path:
    return machine.root / name


def test_remediate_and_rollback_name_targets_alike(machine: Machine, tmp_path: Path, test_steps: Any) -> None:
    applied = run(machine, tmp_path, apply=True)
    undone = rollback_run(machine, tmp_path)
    remediated, rolled_back = render_run(applied, 100), render_rollback(undone, "prod-east", 100)
    for name in ("cp1", "w1"):
        assert f"\nnode {name}\n" in remediated and f"\nnode {name}\n" in rolled_back
    assert "node:" not in remediated + rolled_back
    assert "[undone] ACP-NODE-951/config:" in rolled_back and not long_lines(rolled_back, 100)


def test_an_unreachable_node_has_its_recap_and_the_json_validates(
    machine: Machine, tmp_path: Path, test_steps: Any
) -> None:
    machine.failing.add("w1")
    applied = run(machine, tmp_path, apply=True)
    text = render_run(applied)
    assert "node w1: could not be reached (unreachable: no route to host (test)); nothing done there" in text
    assert recap_line(text, "w1").endswith("failed=0 refused=0 skipped=0 unreachable=1")
    assert validate(applied)["nodes"][1]["recap"]["unreachable"] == 1


def test_lines_carry_colour_markup_for_a_terminal(machine: Machine, tmp_path: Path, test_steps: Any) -> None:
    applied = run(machine, tmp_path, apply=True)
    markup = dict(run_lines(applied, 80))
    assert markup["  [FIXED] ACP-NODE-951 the config says value=good: fail -> pass"] == {"bold": True, "green": True}
    assert markup["        -value=bad"] == {"red": True} and markup["        +value=good"] == {"green": True}
    assert markup[recap_line(render_run(applied, 80), "cp1")] == {"yellow": True}  # one step skipped


def test_the_schema_keeps_up_with_the_code() -> None:
    defs = SCHEMA["$defs"]
    assert SCHEMA["properties"]["schema"]["const"] == REMEDIATION_SCHEMA
    assert set(defs["outcome"]["enum"]) == set(OUTCOMES)
    dry, apply = (branch["required"] for branch in defs["recap"]["oneOf"])
    assert (tuple(dry), tuple(apply)) == (DRY_RUN_RECAP, APPLY_RECAP)
