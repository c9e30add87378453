"""What every report file reads the same way from one results document (the
results.json content): the verdict in words, the ERRORs grouped by target and
reason, the order of severities, and the ``Context`` the reports show beyond
results.json.

The writers (``writers``), ``sarif``, ``allure`` and ``terminal`` all import it; it
imports none of them, so no report module needs another to say what a run was.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from acpcheck.model.result import EXIT_ERROR, EXIT_FAIL, EXIT_NOTHING_SELECTED, EXIT_OK

SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}
#: A completed run's exit code in words.
VERDICT = {
    EXIT_OK: "compliant",
    EXIT_FAIL: "NOT compliant",
    EXIT_ERROR: "assessment incomplete: some checks could not run",
    EXIT_NOTHING_SELECTED: "nothing selected",
}
#: The verdict of a run that did not complete, whatever its results say.
INCOMPLETE = "INCOMPLETE: the run did not complete"


def verdict(document: dict[str, Any]) -> str:
    """The run's verdict in words: ``INCOMPLETE: the run did not complete (<reason>)``
    for a run that did not complete, else the words for its exit code."""
    reason = document.get("incomplete")
    if reason:
        return f"{INCOMPLETE} ({reason})"
    return VERDICT.get(document["run"]["exitCode"], "unknown")


@dataclass(frozen=True)
class Context:
    """What the reports show beyond results.json, from the run that made it."""

    #: check id -> its rationale (the check's docstring): why the rule exists
    rationales: Mapping[str, str] = field(default_factory=dict)
    #: target -> the plan line of its entry (node:<name> -> its item of spec.nodes)
    lines: Mapping[str, int] = field(default_factory=dict)
    #: the waivers file of the run as given (--waivers), where an expired waiver is reported
    waivers_file: str = ""
    #: the line in ``waivers_file`` of each expired waiver, in the order of ``expiredWaivers``
    expired_waiver_lines: tuple[int, ...] = ()


def error_groups(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """ERRORs with one reason on one target (an unreachable node: every check of it),
    one group each, in order of first appearance: ``{"target", "message", "members"}``."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for result in results:
        if result["status"] == "error":
            key = (result["target"], result["message"])
            found.setdefault(key, {"target": result["target"], "message": result["message"], "members": []})[
                "members"
            ].append(result)
    return list(found.values())


#: results.json's ``run.liveEvidence`` fields, as the reports label them, in the order they show them.
LIVE_EVIDENCE_LABELS = {
    "server": "API server",
    "context": "context",
    "user": "user",
    "serverVersion": "API server version",
    "readAt": "read at",
    "replayedFrom": "replayed from",
    "replayedAt": "replayed at",
}


def live_evidence(document: dict[str, Any]) -> list[tuple[str, str]]:
    """``(field, value)`` of the run's live-evidence provenance (``run.liveEvidence``),
    the fields that have a value, in ``LIVE_EVIDENCE_LABELS`` order; [] when the run
    read no cluster (every report then says nothing about one)."""
    found = document["run"].get("liveEvidence") or {}
    return [(key, str(found[key])) for key in LIVE_EVIDENCE_LABELS if found.get(key) is not None]


def live_evidence_sentence(document: dict[str, Any]) -> str:
    """The provenance in one sentence for people (terminal, summary.md, report.html), or "":
    ``Live evidence: https://… (context c, user u), API server v1.34.5, read at 2026-…Z``,
    then ``; replayed by this run from DIR at 2026-…Z`` for a replay."""
    said = dict(live_evidence(document))
    if not said:
        return ""
    who = ", ".join(f"{LIVE_EVIDENCE_LABELS[key]} {said[key]}" for key in ("context", "user") if key in said)
    sentence = f"Live evidence: {said['server']}" + (f" ({who})" if who else "")
    sentence += f", API server {said['serverVersion']}" if "serverVersion" in said else ", API server version unknown"
    if "readAt" in said:
        sentence += f", read at {said['readAt']}"
    if "replayedFrom" in said:
        sentence += f"; replayed by this run from {said['replayedFrom']}" + (
            f" at {said['replayedAt']}" if "replayedAt" in said else ""
        )
    return sentence
