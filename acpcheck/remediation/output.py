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
from typing import Any

from acpcheck.errors import visible
from acpcheck.remediation.actions import kind_of, unified_diff
from acpcheck.remediation.changes import MoveAside, RunCommand, WriteFile
from acpcheck.remediation.runner import RollbackReport, RunReport, StepReport

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


def _indent(lines: list[str], prefix: str) -> list[str]:
    return [prefix + line for line in lines]


def step_lines(item: StepReport, apply: bool) -> list[str]:
    step = item.step
    status = str(item.before.status)
    after = f" -> {item.after.status}" if item.after is not None else ""
    outcome = OUTCOMES.get(item.outcome, item.outcome.upper())
    if item.outcome == "planned" and item.changes is not None and item.changes.deferred:
        outcome += " (full effect at the next boot)"
    lines = [f"{step.check} {item.before.title}: {status}{after}  [{outcome}]", f"  step {step.id}: {step.does}"]
    changes = item.changes
    if changes is not None and changes.refused:
        lines.append(f"  {visible(changes.refused)}")
    if changes is not None and changes.actions:
        lines.append("  changes made:" if apply and item.changed else "  changes:")
        for action in changes.actions:
            lines += _indent(kind_of(action).describe(action), "    ")
    for note in changes.notes if changes is not None else ():
        lines.append(f"  note: {visible(note)}")
    for message in item.messages:
        lines.append(f"  {visible(message)}")
    if item.outcome == "needs reboot":
        lines.append("  reboot the node to finish (acpcheck never reboots)")
    return lines


def render_run(report: RunReport) -> str:
    plan = report.plan
    mode = "apply" if report.apply else "dry-run: nothing is changed; add --apply to make these changes"
    out = [
        (
            f"acpcheck remediate: {plan.metadata.name} (ACP {plan.spec.acp.version}, {len(plan.spec.nodes)} "
            f"nodes), run {report.run_id}, {mode}"
        )
    ]
    if report.refused:
        return "\n".join([*out, visible(report.refused)]) + "\n"
    for node in report.nodes:
        out.append("")
        if node.error:
            out.append(
                f"node {node.node}: could not be reached ({visible(node.error, one_line=True)}); nothing done there"
            )
            continue
        if node.locked:
            out.append(f"node {node.node}: NOT changed: {visible(node.locked, one_line=True)}")
            continue
        if node.refused and not node.steps:
            out.append(f"node {node.node}: {visible(node.refused)}")
            continue
        if not node.steps:
            passing = f" ({'; '.join(node.already_passing)})" if node.already_passing else ""
            out.append(f"node {node.node}: nothing to change: no check with a remediation step fails here{passing}")
            continue
        out.append(node.node if node.node.startswith("cluster:") else f"node {node.node}")
        if node.refused:
            out.append(f"  {visible(node.refused)}")
        for item in node.steps:
            out += _indent(step_lines(item, report.apply), "  ")
    out += ["", summary(report)]
    if report.interrupted:
        out.append("interrupted: no further change was started.")
    if report.journal is not None:
        out.append(f"journal: {report.journal}; undo every change of this run with: acpcheck rollback {report.run_id}")
    return "\n".join(out) + "\n"


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
        "interrupted": report.interrupted,
        "exitCode": exit_code,
        "nodes": [
            {
                "node": node.node,
                "error": node.error,
                "refused": node.refused,
                "locked": node.locked,
                "alreadyPassing": node.already_passing,
                "steps": [_step_document(item) for item in node.steps],
            }
            for node in report.nodes
        ],
    }


def _step_document(item: StepReport) -> dict[str, Any]:
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
        "actions": [_action_document(action) for action in (changes.actions if changes is not None else ())],
    }


def _action_document(action: Any) -> dict[str, Any]:
    if isinstance(action, WriteFile):
        return {
            "kind": "file",
            "path": action.path,
            "before": action.before.kind,
            "beforeSha256": action.before.sha256,
            "afterSha256": hashlib.sha256(action.after).hexdigest() if action.after is not None else None,
            "diff": unified_diff(action.path, action.before, action.after, new_mode=action.mode),
            "then": action.then,
        }
    if isinstance(action, RunCommand):
        return {
            "kind": "command",
            "command": action.command,
            "reverse": action.reverse,
            "noReverse": action.no_reverse,
            "touches": len(action.touches),
        }
    if isinstance(action, MoveAside):
        return {"kind": "move", "path": action.path}
    # A cluster object (remediation.objects.ObjectChange): its diff, never a Secret's values.
    return {
        "kind": "object",
        "op": action.op,
        "object": str(action.ref),
        **action.ref.as_record(),
        "diff": kind_of(action).describe(action),
    }


def render_rollback(report: RollbackReport, cluster: str) -> str:
    out = [f"acpcheck rollback: run {report.run_id} of {cluster}"]
    undone = irreversible = failed = 0
    for target in report.targets:
        out.append("")
        if target.warning:
            out.append(f"{target.target}: warning: {target.warning}")
        if target.error:
            out.append(f"{target.target}: NOT rolled back: {visible(target.error, one_line=True)}")
            failed += 1
            continue
        if not target.lines:
            out.append(f"{target.target}: nothing to undo")
            continue
        out.append(target.target)
        for line in target.lines:
            mark = "not reversible" if line.irreversible else ("undone" if line.ok else "FAILED")
            out.append(f"  {line.step}: [{mark}] {visible(line.text)}")
            undone += line.ok and not line.irreversible
            irreversible += line.irreversible
            failed += not line.ok
    out += ["", f"summary: {undone} change(s) undone, {irreversible} without a reverse (listed above), {failed} failed"]
    return "\n".join(out) + "\n"
