"""What a run prints at its end (the ``acpcheck`` section of the terminal summary).

- Findings (FAIL, ERROR, WARN, MANUAL) first, worst first, each a block: a head
  line, the message, and for a FAIL or WARN the fix and the source.
- ERRORs with one reason on one target (an unreachable node: every check of it) are
  one block with the number of checks affected, not one identical block per check;
  the same finding on several targets (swap on 40 nodes) is one block naming them.
- Every line wraps to the terminal's width and keeps its indent, so a long message
  stays readable as a block; a URL is never broken.
- Where the live-cluster evidence came from first (server, context, user, version,
  time read; replayed or not), when the run read a cluster.
- Expired waivers, then (a fleet run) one line per cluster with its verdict and
  blockers, then the verdict with the counts, then where the reports are. A fleet's
  findings name their cluster (``[east: node:cp1]``).

Every line is made visible: a node's hostname or a facts value may hold escape
sequences.
"""

from __future__ import annotations

import textwrap
from typing import Any

from acpcheck.errors import visible
from acpcheck.model.result import best_ref
from acpcheck.report.document import (
    BLOCKED,
    INCOMPLETE_CLUSTER,
    SEVERITY_ORDER,
    cluster_of,
    clusters,
    error_groups,
    is_fleet,
    live_evidence_sentence,
    verdict,
)

INDENT = " " * 7
_ORDER = {"fail": 0, "error": 1, "warn": 2, "manual": 3}
_COLOUR = {"fail": {"red": True}, "error": {"red": True}, "warn": {"yellow": True}}
#: A cluster's verdict line: blocked red, incomplete yellow, ready green.
_VERDICT_COLOUR = {BLOCKED: {"red": True}, INCOMPLETE_CLUSTER: {"yellow": True}}
#: At most this many check ids or targets are named in a grouped block's head line.
MAX_IDS = 6

Line = tuple[str, dict[str, bool]]


def wrap(text: str, width: int, indent: str = "", hanging: str | None = None) -> list[str]:
    """``text`` (one line, made visible) wrapped to ``width`` columns: the first
    line starts with ``indent``, the others with ``hanging`` (default: ``indent``)."""
    text = visible(text, True)
    hanging = indent if hanging is None else hanging
    return textwrap.wrap(
        text,
        max(width, len(hanging) + 20),
        initial_indent=indent,
        subsequent_indent=hanging,
        break_long_words=False,
        break_on_hyphens=False,
    ) or [indent.rstrip()]


def _block(head: str, body: list[tuple[str, str]], width: int, markup: dict[str, bool]) -> list[Line]:
    lines: list[Line] = [(line, {"bold": True, **markup}) for line in wrap(head, width, "", INDENT)]
    for label, text in body:
        for part in text.splitlines() or [""]:
            prefix = f"{INDENT}{label}" if label else INDENT
            lines += [(line, {}) for line in wrap(part, width, prefix, INDENT + " " * len(label))]
            label = " " * len(label) if label else label
    return lines


def _named(names: list[str]) -> str:
    return ", ".join(names[:MAX_IDS]) + (f" and {len(names) - MAX_IDS} more" if len(names) > MAX_IDS else "")


def summary_lines(document: dict[str, Any], width: int, written: str) -> list[Line]:
    """The lines of the ``acpcheck`` section for ``document`` (a results.json document)."""
    run, results = document["run"], document["results"]
    fleet = is_fleet(document)
    # Where the live evidence came from heads the section (nothing when the run read no cluster).
    lines: list[Line] = [(line, {}) for line in wrap(live_evidence_sentence(document), width, "", INDENT) if line]
    grouped = [g for g in error_groups(results) if len(g["members"]) > 1]
    in_group = {id(item) for g in grouped for item in g["members"]}
    # The same finding on several targets (one check, one status, one message) is one block.
    same: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
    for result in results:
        if result["status"] in _ORDER and id(result) not in in_group:
            where = cluster_of(result, run) if fleet else ""
            same.setdefault((where, result["check"], result["status"], result["message"]), []).append(result)
    blocks: list[tuple[tuple[Any, ...], list[Line]]] = []
    for members in same.values():
        result, status = members[0], members[0]["status"]
        body = [("", result["message"])]
        if status in ("fail", "warn"):
            body += [("fix: ", result["remediation"]), ("see: ", best_ref(result, run["acp"]))]
        targets = _named([m["target"] for m in members])
        if fleet:
            targets = f"{cluster_of(result, run)}: {targets}"
        key = (_ORDER[status], SEVERITY_ORDER.get(result["severity"], 9), result["check"], result["target"])
        blocks.append(
            (
                key,
                _block(
                    f"{status.upper():<6} {result['check']} [{targets}] {result['title']}",
                    body,
                    width,
                    _COLOUR.get(status, {}),
                ),
            )
        )
    for group in grouped:
        checks = [item["check"] for item in group["members"]]
        where = f"{cluster_of(group['members'][0], run)}: " if fleet else ""
        head = f"ERROR  {where}{group['target']}: {len(checks)} checks could not run ({_named(checks)})"
        key = (_ORDER["error"], -1, checks[0], group["target"])
        blocks.append((key, _block(head, [("", group["message"])], width, _COLOUR["error"])))
    for _, block in sorted(blocks, key=lambda b: b[0]):
        lines += block
    for waiver in document.get("expiredWaivers", []):
        head = (
            f"EXPIRED waiver {waiver['check']} [{waiver['target']}] owned by {waiver['owner']}, expired "
            f"{waiver['expires']}: it waives nothing and fails the run"
        )
        lines += [(line, {"red": True}) for line in wrap(head, width, "", INDENT)]
    if fleet:
        lines += cluster_lines(document, width)
    counts = ", ".join(f"{n} {s}" for s, n in document["summary"].items() if n)
    head = (
        f"{'fleet ' if fleet else ''}{run['cluster']}: {verdict(document)} — {counts or 'no results'} "
        f"(profile {run['profile']}, fail_on {run['failOn']})"
    )
    lines += [(line, {"bold": True}) for line in wrap(head, width, "", INDENT)]
    names = (
        "junit.xml, summary.md, report.html, results.sarif, codequality.json"
        if document.get("incomplete")
        else "results.json, junit.xml, summary.md, report.html, results.sarif, codequality.json"
    )
    lines += [(line, {}) for line in wrap(f"reports: {written}/  ({names})", width, "", INDENT)]
    return lines


def cluster_lines(document: dict[str, Any], width: int) -> list[Line]:
    """A fleet's verdict per cluster, one line each (wrapped when its blockers are long):
    ``east      BLOCKED     ACP-UPG-010: live v1.33.2, the plan declares 1.34.1``."""
    members = clusters(document)
    name_width = max(len(m.name) for m in members) if members else 0
    lines: list[Line] = []
    for member in members:
        head = f"{member.name:<{name_width}}  {member.verdict.upper():<10}  {member.blockers}".rstrip()
        hanging = " " * (name_width + 14)
        lines += [
            (line, _VERDICT_COLOUR.get(member.verdict, {"green": True})) for line in wrap(head, width, "", hanging)
        ]
    return lines
