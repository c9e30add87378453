"""What every report file reads the same way from one results document (the
results.json content): the schema versions it may have, the verdict in words, each
cluster's verdict (a fleet run: ready, blocked or incomplete), the ERRORs grouped by
target and reason, the order of severities, and the ``Context`` the reports show
beyond results.json.

The writers (``writers``), ``sarif``, ``allure`` and ``terminal`` all import it; it
imports none of them, so no report module needs another to say what a run was.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from acpcheck.model.result import EXIT_ERROR, EXIT_FAIL, EXIT_NOTHING_SELECTED, EXIT_OK, Status

#: The results.json schema version acpcheck writes (docs/interfaces.md): v2 has ``cluster`` on
#: every result and ``run.fleet``.
RESULTS_SCHEMA = "acpcheck/results/v2"
#: The version before: no ``run.fleet``, and a result's cluster is ``run.cluster``.
RESULTS_SCHEMA_V1 = "acpcheck/results/v1"
#: What the readers (``acpcheck diff``, ``--baseline``, ``remediate --from``, ``--out``) accept.
READABLE_SCHEMAS = (RESULTS_SCHEMA, RESULTS_SCHEMA_V1)

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
    #: a fleet run: cluster -> its ``lines`` (target -> line in that member's plan file, or in the fleet file)
    member_lines: Mapping[str, Mapping[str, int]] = field(default_factory=dict)

    def lines_of(self, cluster: str, fleet: bool) -> Mapping[str, int]:
        """The target lines of ``cluster``'s findings: a fleet member's own, else the run's plan's."""
        return self.member_lines.get(cluster, {}) if fleet else self.lines


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
    return provenance_sentence(document["run"].get("liveEvidence"))


def provenance_sentence(found: dict[str, Any] | None) -> str:
    """``live_evidence_sentence`` of one provenance (``run.liveEvidence``, or a fleet
    member's ``liveEvidence``); "" for None."""
    found = found or {}
    said = {key: str(found[key]) for key in LIVE_EVIDENCE_LABELS if found.get(key) is not None}
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


# -- a fleet: one verdict per cluster --------------------------------------------------------

#: A cluster's upgrade-readiness verdict (FLEET-SPEC section 4), worst first.
BLOCKED, INCOMPLETE_CLUSTER, READY = "blocked", "incomplete", "ready"
#: At most this many findings are named in a cluster's blockers.
BLOCKERS_NAMED = 3
#: A blocker's message is cut to this many characters ("a few words"; the findings have it whole).
BLOCKER_WORDS = 90


def cluster_of(result: dict[str, Any], run: dict[str, Any]) -> str:
    """The cluster a result belongs to: its own ``cluster`` (results/v2), else the run's
    (results/v1, where every result is of ``run.cluster``)."""
    return result.get("cluster") or run["cluster"]


def is_fleet(document: dict[str, Any]) -> bool:
    """Whether ``document`` is of a fleet run (``run.fleet`` set), not of one plan."""
    return bool(document["run"].get("fleet"))


@dataclass(frozen=True)
class ClusterVerdict:
    """One cluster of a run: who it is, its verdict and blockers, and its own results."""

    name: str
    role: str
    type: str
    #: the member's plan file as the fleet gave it; None: a plan made from the fleet entry
    plan: str | None
    discovered: bool
    live_evidence: dict[str, Any] | None
    verdict: str
    #: why it is not ready, in a few words ("" when ready)
    blockers: str
    results: list[dict[str, Any]]

    @property
    def anchor(self) -> str:
        """The id of its findings in report.html (and heading slug in summary.md): ``cluster-<name>``.
        A member's name is a DNS-1123 label; anything else is made one."""
        return "cluster-" + (re.sub(r"[^a-z0-9-]+", "-", self.name.lower()).strip("-") or "unnamed")

    @property
    def summary(self) -> dict[str, int]:
        counts = {str(status): 0 for status in Status}
        for result in self.results:
            counts[result["status"]] = counts.get(result["status"], 0) + 1
        return counts


def cluster_verdict(results: list[dict[str, Any]], run_incomplete: bool = False) -> tuple[str, str]:
    """(verdict, blockers) of one cluster from its results, the one place that decides it:
    ``blocked`` when any is FAIL; else ``incomplete`` when any is ERROR or MANUAL (what
    could not be judged is never ready), when it has no result at all, or when the run did
    not complete; else ``ready``. The blockers name the FAILs (blocked) or the ERRORs and
    MANUALs (incomplete), each as ``<check>: <message's first line, cut>``, the first
    ``BLOCKERS_NAMED`` of them, then how many more."""
    failed = [r for r in results if r["status"] == "fail"]
    if failed:
        return BLOCKED, _few_words(failed)
    unknown = [r for r in results if r["status"] in ("error", "manual")]
    if unknown:
        return INCOMPLETE_CLUSTER, _few_words(unknown)
    if not results:
        return INCOMPLETE_CLUSTER, "no check ran on it"
    if run_incomplete:
        return INCOMPLETE_CLUSTER, "the run did not complete"
    return READY, ""


def _few_words(results: list[dict[str, Any]]) -> str:
    parts: list[str] = []
    for group in error_groups([r for r in results if r["status"] == "error"]):
        if len(group["members"]) > 1:  # one reason on one target (its API down): said once
            parts.append(f"{len(group['members'])} checks could not run: {_cut(group['message'])}")
    grouped = {id(r) for g in error_groups(results) if len(g["members"]) > 1 for r in g["members"]}
    seen: set[tuple[str, str]] = set()
    for result in sorted(
        (r for r in results if id(r) not in grouped), key=lambda r: SEVERITY_ORDER.get(r["severity"], 9)
    ):
        said = (result["check"], _cut(result["message"] or result["title"]))
        if said not in seen:
            seen.add(said)
            parts.append(f"{said[0]}: {said[1]}")
    named = parts[:BLOCKERS_NAMED]
    more = f"; and {len(parts) - BLOCKERS_NAMED} more" if len(parts) > BLOCKERS_NAMED else ""
    return "; ".join(named) + more


def _cut(message: str) -> str:
    line = message.splitlines()[0].strip() if message.strip() else ""
    return line if len(line) <= BLOCKER_WORDS else line[: BLOCKER_WORDS - 1].rstrip() + "…"


def clusters(document: dict[str, Any]) -> list[ClusterVerdict]:
    """Every cluster of ``document`` with its verdict, in the fleet file's order (then any
    other cluster its results name, in their order); for a single-plan document the one
    cluster ``run.cluster``. A fleet-level result (target ``fleet:<name>``) counts for its
    own ``cluster``, the global member."""
    run = document["run"]
    fleet = run.get("fleet") or {}
    members = {m["name"]: m for m in fleet.get("clusters", [])}
    by_cluster: dict[str, list[dict[str, Any]]] = {name: [] for name in members}
    if not members:
        by_cluster[run["cluster"]] = []
    for result in document["results"]:
        by_cluster.setdefault(cluster_of(result, run), []).append(result)
    out = []
    for name, results in by_cluster.items():
        member = members.get(name, {})
        said, blockers = cluster_verdict(results, bool(document.get("incomplete")))
        out.append(
            ClusterVerdict(
                name=name,
                role=member.get("role") or "",
                type=member.get("type") or "",
                plan=member.get("plan") if member else run.get("plan"),
                discovered=bool(member.get("discovered")),
                live_evidence=member.get("liveEvidence") if member else run.get("liveEvidence"),
                verdict=said,
                blockers=blockers,
                results=results,
            )
        )
    return out
