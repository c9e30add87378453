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
