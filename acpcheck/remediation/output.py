"""What remediation shows people (text, per node) and machines (``remediation.json``).

Per node: every wanted step with its owning check's status, the exact commands and a
unified diff of every file it changes (a dry-run: would; an apply: did), what it
leaves undone and why, and after an apply the outcome: FIXED, NEEDS REBOOT, STILL
FAILING, FAILED (and undone), REFUSED, SKIPPED. Everything that comes from a node is
made visible (control characters escaped) before it reaches a terminal.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from acpcheck.errors import visible
from acpcheck.remediation.actions import DescribeAs, kind_of, unified_diff
from acpcheck.remediation.changes import MoveAside, RunCommand, WriteFile
from acpcheck.remediation.commands import shown
from acpcheck.remediation.runner import NodeReport, RollbackReport, RunReport, StepReport, action_label
from acpcheck.report.terminal import Line, wrap

REMEDIATION_SCHEMA = "acpcheck/remediation/v1"

OUTCOMES = {
    "planned": "would change",
    "nothing to change": "nothing to change",
    "fixed": "FIXED",
    "needs reboot": "NEEDS REBOOT",
    "still failing": "STILL FAILING",
    "failed": "FAILED",
    "refused": "REFUSED",
    "skipped": "SKIPPED",
    "unverified": "UNVERIFIED",
}
_RED, _YELLOW, _GREEN, _CYAN = {"red": True}, {"yellow": True}, {"green": True}, {"cyan": True}
#: The colour of each outcome on a terminal.
_OUTCOME_MARKUP = {
    "planned": _CYAN,
    "nothing to change": _GREEN,
    "fixed": _GREEN,
    "needs reboot": _YELLOW,
    "still failing": _RED,
    "failed": _RED,
    "refused": _YELLOW,
    "skipped": _YELLOW,
    "unverified": _RED,
}
#: The recap's counters, in order (Ansible's ``ok`` and ``changed`` first): after an apply …
APPLY_RECAP = (
    "ok",
    "changed",
    "fixed",
    "needs_reboot",
    "still_failing",
    "failed",
    "refused",
    "skipped",
    "unreachable",
)
#: … and in a dry-run.
DRY_RUN_RECAP = ("ok", "would_change", "failed", "refused", "skipped", "unreachable")
#: Recap counters that mean something went wrong (red), or that something is left to do (yellow).
_BAD = frozenset({"failed", "still_failing", "unreachable"})
_LEFT = frozenset({"needs_reboot", "refused", "skipped", "would_change"})
#: A continued (wrapped) line is indented this much more than its first.
HANGING = "    "


@dataclass
class Row:
    """One line of remediation's text before it is wrapped."""

    text: str
    indent: int = 0
    markup: dict[str, bool] = field(default_factory=dict)
    verbatim: bool = False  # a diff line or a command: never wrapped, so it copies as it is
    #: A command after ``text`` (``then: $ reload-sshd``): on the same line when it fits,
    #: else on a line of its own under it; never wrapped.
    command: str | None = None


def lay_out(rows: list[Row], width: int | None) -> list[Line]:
    """``rows`` as lines of at most ``width`` columns (None: each row one line), each
    continued line under its first, one indent further."""
    lines: list[Line] = []
    for row in rows:
        indent = " " * row.indent
        if row.command is not None:
            joined = f"{indent}{row.text} {row.command}"
            if width is None or len(joined) <= width:
                lines.append((joined, row.markup))
            else:
                lines += [(line, row.markup) for line in wrap(row.text, width, indent, indent + HANGING)]
                lines.append((f"{indent}  {row.command}", row.markup))
            continue
        for part in row.text.splitlines() or [""]:
            if width is None or row.verbatim:
                lines.append((indent + part, row.markup))
            else:
                lines += [(line, row.markup) for line in wrap(part, width, indent, indent + HANGING)]
    return lines


def text_of(lines: list[Line]) -> str:
    return "".join(text + "\n" for text, _ in lines)


def heading(target: str) -> str:
    """How remediate and rollback name a target: ``node cp1``, ``cluster demo``."""
    kind, sep, name = target.partition(":")
    return f"{kind} {name}" if sep and kind in ("node", "cluster") else f"node {target}"


def _diff_markup(line: str) -> dict[str, bool]:
    if line.startswith(("--- ", "+++ ")):
        return {"bold": True}
    if line.startswith("+"):
        return _GREEN
    if line.startswith("-"):
        return _RED
    return {}


#: How a diff line (or a created object's YAML line) starts, under an action's first line.
_DIFF_LINE = ("--- ", "+++ ", "@@", "+", "-", " ", "… ", "binary content")


def _action_rows(lines: list[str], indent: int) -> list[Row]:
    """The lines a kind describes (``ActionKind.describe``: a first line, the rest one
    level in): the prose wraps; the diff lines and the commands do not."""
    rows = []
    for number, line in enumerate(lines):
        nested = number > 0 and line.startswith("  ")
        body, at = (line[2:], indent + 2) if nested else (line, indent)
        if number > 0 and body.startswith(_DIFF_LINE):
            rows.append(Row(body, at, _diff_markup(body), verbatim=True))
        elif body.startswith("$ "):
            rows.append(Row(body, at, verbatim=True))
        elif ": $ " in body:
            text, _, command = body.partition(": $ ")
            rows.append(Row(f"{text}:", at, command=f"$ {command}"))
        else:
            rows.append(Row(body, at))
    return rows


def step_rows(item: StepReport, report: RunReport, node: str, written_by: dict[str, str], indent: int) -> list[Row]:
    """One step: its head (outcome first, as run's FAIL lines), what it does, its changes."""
    step = item.step
    after = f" -> {item.after.status}" if item.after is not None else ""
    outcome = OUTCOMES.get(item.outcome, item.outcome.upper())
    deferred = item.changes is not None and item.changes.deferred
    later = " (full effect at the next boot)" if item.outcome == "planned" and deferred else ""
    markup = {"bold": True, **_OUTCOME_MARKUP.get(item.outcome, {})}
    rows = [
        Row(f"[{outcome}] {step.check} {item.before.title}: {item.before.status}{after}{later}", indent, markup),
        Row(f"step {step.id}: {step.does}", indent + 2),
    ]
    changes = item.changes
    if changes is not None and changes.refused:
        rows.append(Row(visible(changes.refused), indent + 2))
    if changes is not None and changes.actions:
        rows.append(Row("changes made:" if made(item, report.apply, 0) else "changes:", indent + 2))
        for index, action in enumerate(changes.actions):
            lines = kind_of(action).describe(action, described_as(item, report, node, index))
            path = getattr(action, "path", None)
            if isinstance(action, WriteFile) and path in written_by:
                lines.insert(
                    1,
                    f"  stacked on step {written_by[path]} above: this diff starts from the file as that step "
                    "leaves it",
                )
            rows += _action_rows(lines, indent + 4)
        if item.outcome not in ("failed", "refused", "skipped", "nothing to change"):
            for action in changes.actions:
                if isinstance(action, WriteFile):
                    written_by[action.path] = step.id
    for note in changes.notes if changes is not None else ():
        rows.append(Row(f"note: {visible(note)}", indent + 2))
    for message in item.messages:
        rows.append(Row(visible(message), indent + 2))
    if item.outcome == "needs reboot":
        rows.append(Row("reboot the node to finish (acpcheck never reboots)", indent + 2))
    return rows


def made(item: StepReport, apply: bool, index: int) -> bool:
    """The step's action ``index`` was made by this apply, and stays made (a failed step's
    changes are undone at once)."""
    return apply and index < item.changed and item.outcome != "failed"


def described_as(item: StepReport, report: RunReport, node: str, index: int) -> DescribeAs:
    """How action ``index`` of ``item`` on ``node`` is worded: planned or written, and its backups."""
    target = node if node.startswith("cluster:") else f"node:{node}"
    return DescribeAs(
        done=made(item, report.apply, index),
        backup_dir=report.backup_dir,
        label=action_label(target, item.step, index),
    )


def recap(node: NodeReport, apply: bool) -> dict[str, int]:
    """A node's recap counters (``APPLY_RECAP`` or ``DRY_RUN_RECAP``): steps by outcome."""
    outcomes = Counter(item.outcome for item in node.steps)
    counts = {
        "ok": outcomes["nothing to change"],
        "changed": sum(1 for item in node.steps if item.changed and item.outcome != "failed"),
        "would_change": outcomes["planned"],
        "fixed": outcomes["fixed"],
        "needs_reboot": outcomes["needs reboot"],
        "still_failing": outcomes["still failing"],
        "failed": outcomes["failed"] + outcomes["unverified"],
        "refused": outcomes["refused"],
        "skipped": outcomes["skipped"],
        "unreachable": int(bool(node.error)),
    }
    return {key: counts[key] for key in (APPLY_RECAP if apply else DRY_RUN_RECAP)}


def _recap_rows(report: RunReport) -> list[Row]:
    if not report.nodes:
        return []
    names = [n.node for n in report.nodes]
    pad = max(len(name) for name in [*names, "total"])
    totals: Counter[str] = Counter()
    rows = [Row("recap", 0, {"bold": True})]
    for node in report.nodes:
        counts = recap(node, report.apply)
        totals.update(counts)
        why = " (held by another remediation: nothing done)" if node.locked else ""
        if node.refused and not node.steps:
            why = " (refused: nothing done)"
        rows.append(Row(_recap_line(visible(node.node, one_line=True), pad, counts) + why, 2, _recap_markup(counts)))
    if len(report.nodes) > 1:
        total = {key: totals[key] for key in counts}
        rows.append(Row(_recap_line("total", pad, total), 2, {"bold": True, **_recap_markup(total)}))
    return rows


def _recap_line(name: str, pad: int, counts: dict[str, int]) -> str:
    return f"{name:<{pad}} : " + " ".join(f"{key}={value}" for key, value in counts.items())


def _recap_markup(counts: dict[str, int]) -> dict[str, bool]:
    if any(counts.get(key) for key in _BAD):
        return _RED
    return _YELLOW if any(counts.get(key) for key in _LEFT) else _GREEN


def run_lines(report: RunReport, width: int | None = None) -> list[Line]:
    """The text of a remediate run, as lines of at most ``width`` columns (None: unwrapped)."""
    plan = report.plan
    mode = "apply" if report.apply else "dry-run: nothing is changed; add --apply to make these changes"
    rows = [
        Row(
            f"acpcheck remediate: {plan.metadata.name} (ACP {plan.spec.acp.version}, {len(plan.spec.nodes)} "
            f"nodes), run {report.run_id}, {mode}",
            0,
            {"bold": True},
        )
    ]
    if report.refused:
        return lay_out([*rows, Row(visible(report.refused))], width)
    for node in report.nodes:
        rows.append(Row(""))
        head = heading(node.node)
        if node.error:
            rows.append(
                Row(f"{head}: could not be reached ({visible(node.error, one_line=True)}); nothing done there", 0, _RED)
            )
            continue
        if node.locked:
            rows.append(Row(f"{head}: NOT changed: {visible(node.locked, one_line=True)}", 0, _RED))
            continue
        if node.refused and not node.steps:
            rows.append(Row(f"{head}: {visible(node.refused)}", 0, _YELLOW))
            continue
        if not node.steps:
            passing = f" ({'; '.join(node.already_passing)})" if node.already_passing else ""
            rows.append(
                Row(f"{head}: nothing to change: no check with a remediation step fails here{passing}", 0, _GREEN)
            )
            continue
        rows.append(Row(head, 0, {"bold": True}))
        if node.refused:
            rows.append(Row(visible(node.refused), 2))
        written_by: dict[str, str] = {}
        for item in node.steps:
            rows += step_rows(item, report, node.node, written_by, 2)
    rows += [Row(""), *_recap_rows(report), Row(summary(report), 0, {"bold": True})]
    if report.interrupted:
        rows.append(Row("interrupted: no further change was started.", 0, _RED))
    if report.journal is not None:
        rows.append(Row(f"journal: {report.journal}"))
    if report.undo is not None:
        rows += [Row("undo every change of this run with:"), Row(report.undo, 2, {"bold": True}, verbatim=True)]
    return lay_out(rows, width)


def render_run(report: RunReport, width: int | None = None) -> str:
    return text_of(run_lines(report, width))


def summary(report: RunReport) -> str:
    steps = list(report.steps())
    if not steps:
        return "summary: nothing to change: every selected check with a remediation step passes on every node" + (
            ""
            if all(not n.error and not n.locked for n in report.nodes)
            else " that could be reached (and was not held by another remediation)"
        )
    counts = Counter(OUTCOMES.get(s.outcome, s.outcome) for s in steps)
    nodes = len({n.node for n in report.nodes if n.steps})
    actions = [
        a for s in steps if s.changes is not None and s.outcome not in ("skipped", "refused") for a in s.changes.actions
    ]
    files = sum(isinstance(a, WriteFile) for a in actions)
    commands = sum(isinstance(a, RunCommand) for a in actions)
    moves = sum(isinstance(a, MoveAside) for a in actions)
    objects = sum(getattr(a, "kind", "") == "object" for a in actions)
    what = f"{files} file(s), {commands} command(s), {moves} path(s) moved aside" + (
        f", {objects} Kubernetes object(s)" if objects else ""
    )
    if report.apply:
        changed = sum(s.changed for s in steps)
        head = (
            f"summary: {len(steps)} step(s) on {nodes} node(s) made {changed} change(s): {what}"
            if changed
            else f"summary: {len(steps)} step(s) on {nodes} node(s): no change made"
        )
    else:
        head = f"summary: {len(steps)} step(s) on {nodes} node(s) would make {len(actions)} change(s): {what}"
    return head + "; " + ", ".join(f"{label} {count}" for label, count in sorted(counts.items()))


def document(report: RunReport, exit_code: int) -> dict[str, Any]:
    """remediation.json: the same as the text, for machines and tests."""
    return {
        "schema": REMEDIATION_SCHEMA,
        "run": report.run_id,
        "cluster": report.plan.metadata.name,
        "mode": "apply" if report.apply else "dry-run",
        "refused": report.refused,
        "journal": str(report.journal) if report.journal else None,
        "undo": report.undo,
        "backupDir": report.backup_dir,
        "interrupted": report.interrupted,
        "exitCode": exit_code,
        "nodes": [
            {
                "node": node.node,
                "error": node.error,
                "refused": node.refused,
                "locked": node.locked,
                "alreadyPassing": node.already_passing,
                "recap": recap(node, report.apply),
                "steps": [_step_document(item, report, node.node) for item in node.steps],
            }
            for node in report.nodes
        ],
    }


def _step_document(item: StepReport, report: RunReport, node: str) -> dict[str, Any]:
    changes = item.changes
    return {
        "step": item.step.id,
        "check": item.step.check,
        "title": item.before.title,
        "before": str(item.before.status),
        "after": str(item.after.status) if item.after is not None else None,
        "afterMessage": item.after.message if item.after is not None else None,
        "outcome": item.outcome,
        "changed": item.changed,
        "notes": list(changes.notes) if changes is not None else [],
        "messages": item.messages,
        "actions": [
            _action_document(action, described_as(item, report, node, index))
            for index, action in enumerate(changes.actions if changes is not None else ())
        ],
    }


def _action_document(action: Any, how: DescribeAs) -> dict[str, Any]:
    if isinstance(action, WriteFile):
        return {
            "kind": "file",
            "done": how.done,
            "path": action.path,
            "before": action.before.kind,
            "beforeSha256": action.before.sha256,
            "afterSha256": hashlib.sha256(action.after).hexdigest() if action.after is not None else None,
            "diff": unified_diff(action.path, action.before, action.after, new_mode=action.mode, written=how.done),
            "then": action.then,
            "thenShown": shown(action.then) if action.then is not None else None,
        }
    if isinstance(action, RunCommand):
        return {
            "kind": "command",
            "done": how.done,
            "command": action.command,
            "reverse": action.reverse,
            "noReverse": action.no_reverse,
            "touches": len(action.touches),
        }
    if isinstance(action, MoveAside):
        return {"kind": "move", "done": how.done, "path": action.path, "backup": f"{how.backup_dir}/moved{action.path}"}
    # A cluster object (remediation.objects.ObjectChange): its diff, never a Secret's values.
    return {
        "kind": "object",
        "done": how.done,
        "op": action.op,
        "object": str(action.ref),
        **action.ref.as_record(),
        "diff": kind_of(action).describe(action, how),
    }


def rollback_lines(report: RollbackReport, cluster: str, width: int | None = None) -> list[Line]:
    """The text of a rollback, in remediate's heading style, as lines of at most ``width`` columns."""
    rows = [Row(f"acpcheck rollback: run {report.run_id} of {cluster}", 0, {"bold": True})]
    undone = irreversible = failed = 0
    for target in report.targets:
        rows.append(Row(""))
        head = heading(target.target)
        if target.warning:
            rows.append(Row(f"{head}: warning: {visible(target.warning)}", 0, _YELLOW))
        if target.error:
            rows.append(Row(f"{head}: NOT rolled back: {visible(target.error, one_line=True)}", 0, _RED))
            failed += 1
            continue
        if not target.lines:
            rows.append(Row(f"{head}: nothing to undo", 0, _GREEN))
            continue
        rows.append(Row(head, 0, {"bold": True}))
        for line in target.lines:
            mark = "not reversible" if line.irreversible else ("undone" if line.ok else "FAILED")
            markup = _YELLOW if line.irreversible else (_GREEN if line.ok else _RED)
            rows.append(Row(f"[{mark}] {line.step}: {visible(line.text)}", 2, markup))
            undone += line.ok and not line.irreversible
            irreversible += line.irreversible
            failed += not line.ok
    rows += [
        Row(""),
        Row(
            f"summary: {undone} change(s) undone, {irreversible} without a reverse (listed above), {failed} failed",
            0,
            {"bold": True, **(_RED if failed else _GREEN)},
        ),
    ]
    return lay_out(rows, width)


def render_rollback(report: RollbackReport, cluster: str, width: int | None = None) -> str:
    return text_of(rollback_lines(report, cluster, width))
