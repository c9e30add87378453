"""Statuses, one check result, and the exit code they add up to (docs/interfaces.md, fixed)."""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field, fields
from typing import Any


class Status(enum.StrEnum):
    PASS = "pass"
    FAIL = "fail"
    WARN = "warn"
    SKIP = "skip"
    MANUAL = "manual"
    ERROR = "error"
    WAIVED = "waived"


#: The target of a check about every node of the plan at once (a cross-node check).
#: Targets (docs/interfaces.md): ``plan``, ``node:<name>``, ``node:*``, ``cluster:<name>``;
#: a waiver's target is a glob over them, so ``node:*`` waives per-node and cross-node results.
ALL_NODES = "node:*"

# Exit codes of `acpcheck run` (docs/interfaces.md); `remediate` and `rollback` use the same
# numbers for the same outcomes (docs/interfaces.md), and EXIT_INTERRUPTED for Ctrl-C.
EXIT_OK = 0
EXIT_FAIL = 1
EXIT_ERROR = 2
EXIT_INTERNAL = 3
EXIT_BAD_INPUT = 4
EXIT_NOTHING_SELECTED = 5
#: remediate/rollback stopped by Ctrl-C (128 + SIGINT, as a shell reports it).
EXIT_INTERRUPTED = 130


@dataclass
class CheckResult:
    """One check on one target; serialised as an entry of results.json."""

    check: str
    title: str
    area: str
    severity: str
    status: Status
    target: str
    message: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)
    remediation: str = ""
    refs: list[str] = field(default_factory=list)
    waiver: dict[str, Any] | None = None
    duration: float = 0.0
    #: the cluster the target belongs to (the plan's metadata.name; a fleet's member)
    cluster: str = ""

    def as_dict(self) -> dict[str, Any]:
        # Shallow on purpose (one per check and node): evidence is already plain JSON data.
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["status"] = str(self.status)
        data["refs"] = list(self.refs)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckResult:
        return cls(**{**data, "status": Status(data["status"])})

    def best_ref(self, acp_version: str) -> str:
        """The source to show first: the one the finding cites, else the page for
        the plan's ACP version, else the first reference."""
        return best_ref(self.as_dict(), acp_version)


def best_ref(result: dict[str, Any], acp_version: str) -> str:
    """See CheckResult.best_ref; works on results.json entries too."""
    cited = (result.get("evidence") or {}).get("source")
    if isinstance(cited, str) and cited.startswith("https://"):
        return cited
    minor = "/" + ".".join(acp_version.split(".")[:2]) + "/"
    refs = result.get("refs") or [""]
    return next((ref for ref in refs if minor in ref), refs[0])


def summarise(results: list[CheckResult]) -> dict[str, int]:
    counts = {str(s): 0 for s in Status}
    for result in results:
        counts[str(result.status)] += 1
    return counts


def exit_code(summary: dict[str, int], expired_waivers: int = 0) -> int:
    """0 compliant (warnings allowed), 1 any FAIL or expired waiver, 2 no FAIL but ERROR, 5 nothing ran."""
    if summary.get("fail", 0) or expired_waivers:
        return EXIT_FAIL
    if summary.get("error", 0):
        return EXIT_ERROR
    if not any(summary.values()):
        return EXIT_NOTHING_SELECTED
    return EXIT_OK


def utc_now() -> str:
    """Timestamps in results: ISO 8601, UTC, seconds."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def new_run_id() -> str:
    """``20261121T080000Z-1a2b``: sortable, and unique enough for one machine."""
    import secrets

    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(2)
