"""What changed since last time: two results.json documents compared, and a run gated on a baseline.

A **finding** is a result a person has to look at: FAIL, ERROR, WARN, MANUAL or WAIVED
(what summary.md lists as findings); PASS and SKIP are not findings. A finding is known
by its key, ``(cluster, check, target)``: the cluster is the result's own ``cluster``
(results/v2) and the run's ``run.cluster`` in a results/v1 document
(``document.cluster_of``), so a fleet's documents compare cluster by cluster with the
same code and format, and a v1 document with a v2 one of the same cluster.

Comparing an OLD document with a NEW one puts every key that is a finding on either side
in one category (docs/interfaces.md, "acpcheck diff"):

- ``new``: a finding in NEW whose key was no finding in OLD (absent, PASS or SKIP);
- ``fixed``: a finding in OLD whose key is no finding in NEW (PASS, SKIP, or no result);
- ``changed``: a finding on both sides whose status or message differs;
- ``still-failing``: a finding on both sides with the same status and message.

Messages are compared without the plan locations they cite (``<plan file>:<line>``):
moving a line of the plan, or giving it by another path, changes no finding.

``Baseline.state_of`` is the one place that decides whether a finding "is in the
baseline"; ``acpcheck diff`` (``compare``) and ``acpcheck run --baseline`` (the exit
code, the counts in the reports, SARIF's ``baselineState``) both ask it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

from acpcheck.errors import InputError, Problem, visible
from acpcheck.model.result import EXIT_FAIL, EXIT_OK, CheckResult, Status, exit_code, summarise
from acpcheck.report.document import READABLE_SCHEMAS, RESULTS_SCHEMA, RESULTS_SCHEMA_V1, cluster_of
from acpcheck.yamlsource import load_json

DIFF_SCHEMA = "acpcheck/diff/v1"
#: The largest results.json read (diff, --baseline, remediate --from): it grows with the
#: cluster, about 19 kB per node with the preinstall profile (18 MB at 1,000 nodes), past
#: the 16 MiB limit of hand-written input; 256 MiB is some 13,000 nodes.
RESULTS_MAX_BYTES = 256 << 20

#: The statuses that make a result a finding (see the module's docstring).
FINDINGS = frozenset({Status.FAIL, Status.ERROR, Status.WARN, Status.MANUAL, Status.WAIVED})

#: The categories of ``acpcheck diff``, in the order it prints them.
NEW, FIXED, CHANGED, STILL = "new", "fixed", "changed", "still-failing"
CATEGORIES = (NEW, FIXED, CHANGED, STILL)

#: SARIF 2.1.0 §3.27.24 baselineState of a finding, by its diff category.
BASELINE_STATE = {NEW: "new", STILL: "unchanged", CHANGED: "updated", FIXED: "absent"}

Key = tuple[str, str, str]  # (cluster, check, target)

#: The keys of a results.json result that diff reads, and the type each must have.
_RESULT_KEYS = {"check": str, "title": str, "severity": str, "status": str, "target": str, "message": str}


def is_finding(result: dict[str, Any]) -> bool:
    return result["status"] in FINDINGS


def key_of(result: dict[str, Any], run: dict[str, Any]) -> Key:
    return (cluster_of(result, run), result["check"], result["target"])


@dataclass(frozen=True)
class ResultsFile:
    """A results.json read and checked for what diff and --baseline need."""

    path: str
    sha256: str
    document: dict[str, Any]

    @property
    def run(self) -> dict[str, Any]:
        return self.document["run"]

    def findings(self) -> dict[Key, dict[str, Any]]:
        return {key_of(r, self.run): r for r in self.document["results"] if is_finding(r)}


def read_results(path: str, option: str = "") -> ResultsFile:
    """``path`` as a results.json document, or InputError (exit 4) naming the file and
    what is wrong with it: unreadable, not JSON, not a results.json, a schema version
    this acpcheck does not read (it reads ``READABLE_SCHEMAS``), or a result without the
    keys diff compares (a v2 result also its ``cluster``; a v2 ``run.fleet`` null or an
    object naming its clusters)."""

    def refuse(message: str, field: str = "") -> InputError:
        return InputError([Problem(path, None, field or option, message)])

    try:
        # The one loader (regular files only, UTF-8, strict JSON), within the size results.json may reach.
        located = load_json(path, RESULTS_MAX_BYTES)
    except InputError as error:
        raise InputError([replace(p, field=p.field or option) for p in error.problems]) from None
    document = located.data
    if not isinstance(document, dict) or "schema" not in document:
        raise refuse(f'not a results.json: it has no "schema": "{RESULTS_SCHEMA}" (written by `acpcheck run`)')
    schema = document["schema"]
    if schema not in READABLE_SCHEMAS:
        said = visible(str(schema), one_line=True)[:80]
        readable = " or ".join(READABLE_SCHEMAS)
        if isinstance(schema, str) and schema.startswith("acpcheck/results/"):
            raise refuse(f"{said} is not a version this acpcheck {_version()} reads ({readable})", "schema")
        raise refuse(f"not a results.json: {said}, expected {readable}", "schema")
    run = document.get("run")
    if not isinstance(run, dict):
        raise refuse("missing or not an object", "run")
    for name in ("id", "cluster"):
        if not isinstance(run.get(name), str) or not run[name]:
            raise refuse("missing or not a string", f"run.{name}")
    fleet = run.get("fleet")
    if schema != RESULTS_SCHEMA_V1 and fleet is not None:
        if not isinstance(fleet, dict) or not isinstance(fleet.get("clusters"), list):
            raise refuse("not null or an object with a list of clusters", "run.fleet")
        for index, member in enumerate(fleet["clusters"]):
            if not isinstance(member, dict) or not isinstance(member.get("name"), str) or not member["name"]:
                raise refuse("not an object with a name", f"run.fleet.clusters[{index}]")
    results = document.get("results")
    if not isinstance(results, list):
        raise refuse("missing or not a list", "results")
    statuses = {str(s) for s in Status}
    for index, result in enumerate(results):
        if not isinstance(result, dict):
            raise refuse("not an object", f"results[{index}]")
        for name, kind in _RESULT_KEYS.items():
            if not isinstance(result.get(name), kind):
                raise refuse("missing or not a string", f"results[{index}].{name}")
        if result["status"] not in statuses:
            raise refuse(f"unknown status {result['status'][:20]!r}", f"results[{index}].status")
        if ("cluster" in result or schema != RESULTS_SCHEMA_V1) and not isinstance(result.get("cluster"), str):
            raise refuse("missing or not a string", f"results[{index}].cluster")
    return ResultsFile(path, hashlib.sha256((located.text or "").encode()).hexdigest(), document)


def _version() -> str:
    from acpcheck import __version__

    return __version__


def subject(run: dict[str, Any]) -> str:
    """What a run is of, in words: ``fleet 'prod'`` (``run.fleet`` set: ``run.cluster`` is the
    fleet's name) or ``cluster 'prod-east'``."""
    return f"{'fleet' if run.get('fleet') else 'cluster'} {run['cluster']!r}"


def refuse_other_cluster(
    file: ResultsFile, cluster: str, compared_with: str, option: str = "", fleet: bool | None = None
) -> None:
    """Exit 4 when ``file`` is a run of another cluster than ``cluster`` (that of
    ``compared_with``), or of another fleet: comparing two clusters would call every
    finding of one of them new and every one of the other fixed, which says nothing.

    ``cluster`` is the plan's ``metadata.name``, or with ``fleet=True`` the fleet's name
    (``run.cluster`` of a fleet run); ``fleet`` True or False also refuses a file of the
    other kind (a fleet's run compared with one plan's of the same name). None compares
    the names only (``refuse_other_run`` compares two files' kinds too)."""
    kind_differs = fleet is not None and bool(file.run.get("fleet")) != fleet
    if file.run["cluster"] != cluster or kind_differs:
        if fleet is None:  # names only: say the other side is of the same kind as this file
            fleet = bool(file.run.get("fleet"))
        expected = f"{'fleet' if fleet else 'cluster'} {cluster!r}"
        raise InputError(
            [
                Problem(
                    file.path,
                    None,
                    option or "run.cluster",
                    f"is a run of {subject(file.run)}, but {compared_with} is of {expected}: compare runs of one "
                    f"{'fleet' if fleet else 'cluster'}",
                )
            ]
        )


def refuse_other_run(new: ResultsFile, old: ResultsFile, compared_with: str, option: str = "") -> None:
    """``acpcheck diff``'s check: exit 4 unless ``new`` is of the same cluster, or the same
    fleet, as ``old`` (named ``compared_with``)."""
    refuse_other_cluster(new, old.run["cluster"], compared_with, option, fleet=bool(old.run.get("fleet")))


def same_message(old: str, old_run: dict[str, Any], new: str, new_run: dict[str, Any]) -> bool:
    """Whether two findings' messages say the same, apart from where they cite the plan:
    a message names plan fields as ``<plan file>:<line>`` (the ``at`` evidence), and an
    edit elsewhere in the plan moves those lines, or the plan is given by another path,
    without the finding changing."""
    return _without_plan_lines(old, old_run) == _without_plan_lines(new, new_run)


def _without_plan_lines(message: str, run: dict[str, Any]) -> str:
    plan = run.get("plan")
    return re.sub(re.escape(plan) + r":\d+", "<plan>", message) if isinstance(plan, str) and plan else message


@dataclass(frozen=True)
class Baseline:
    """The findings of an earlier run that a new one is compared with."""

    file: ResultsFile

    @classmethod
    def read(cls, path: str, option: str = "--baseline") -> Baseline:
        return cls(read_results(path, option))

    def state_of(self, result: dict[str, Any], run: dict[str, Any]) -> str:
        """The diff category of ``result`` (a finding of a later run): NEW when its key
        is no finding of the baseline, STILL when the baseline's has the same status
        and message, else CHANGED. The one place "is this finding in the baseline"."""
        known = self._findings.get(key_of(result, run))
        if known is None:
            return NEW
        same = known["status"] == result["status"] and same_message(
            known["message"], self.file.run, result["message"], run
        )
        return STILL if same else CHANGED

    def fixed(self, results: Iterable[dict[str, Any]], run: dict[str, Any]) -> list[dict[str, Any]]:
        """The baseline's findings whose key is no finding among ``results``."""
        now = {key_of(r, run) for r in results if is_finding(r)}
        return [r for key, r in self._findings.items() if key not in now]

    @cached_property
    def _findings(self) -> dict[Key, dict[str, Any]]:
        return self.file.findings()

    def exit_code(self, results: list[CheckResult], run: dict[str, Any], expired_waivers: int) -> int:
        """``acpcheck run --baseline``'s exit code: the usual one (``model.result.exit_code``)
        of the results that are not findings already in the baseline (a changed one
        counts as in it), so a FAIL or ERROR known before no longer fails the run; an
        expired waiver still does, and a run of nothing is still 5."""
        if not results:
            return exit_code(summarise(results), expired_waivers)
        remaining = [r for r in results if r.status not in FINDINGS or self.state_of(r.as_dict(), run) == NEW]
        if not remaining:
            return EXIT_FAIL if expired_waivers else EXIT_OK
        return exit_code(summarise(remaining), expired_waivers)

    def record(self, results: list[dict[str, Any]], run: dict[str, Any]) -> dict[str, Any]:
        """results.json's ``run.baseline``: which file, and how this run's findings relate to it."""
        states = {category: 0 for category in CATEGORIES}
        known = []
        for result in results:
            if is_finding(result):
                category = self.state_of(result, run)
                states[category] += 1
                if category != NEW:
                    known.append(
                        {
                            "cluster": cluster_of(result, run),
                            "check": result["check"],
                            "target": result["target"],
                            "state": BASELINE_STATE[category],
                        }
                    )
        states[FIXED] = len(self.fixed(results, run))
        return {
            "file": self.file.path,
            "sha256": self.file.sha256,
            "runId": self.file.run["id"],
            "counts": states,
            "known": known,
        }


def baseline_state(result: dict[str, Any], run: dict[str, Any]) -> str | None:
    """SARIF's ``baselineState`` of a finding of a run that had ``--baseline`` (None
    without one), from what results.json recorded (``run.baseline.known``)."""
    recorded = run.get("baseline")
    if not recorded:
        return None
    known = {(k.get("cluster") or run["cluster"], k["check"], k["target"]): k["state"] for k in recorded["known"]}
    return known.get(key_of(result, run), BASELINE_STATE[NEW])


def baseline_sentence(run: dict[str, Any]) -> str:
    """What the terminal and summary.md say of a run's ``--baseline`` ("" without one)."""
    recorded = run.get("baseline")
    if not recorded:
        return ""
    tally = recorded["counts"]
    known = tally[STILL] + tally[CHANGED]
    return (
        f"Baseline {recorded['file']} (run {recorded['runId']}): {known} of this run's findings were in it "
        f"({tally[STILL]} unchanged, {tally[CHANGED]} changed) and do not decide the exit code; {tally[NEW]} new; "
        f"{tally[FIXED]} fixed since."
    )


@dataclass(frozen=True)
class Change:
    """One key of ``acpcheck diff``: its category, and the result on each side (None: no finding there)."""

    category: str
    key: Key
    old: dict[str, Any] | None
    new: dict[str, Any] | None

    @property
    def shown(self) -> dict[str, Any]:
        return self.new or self.old or {}

    def as_dict(self) -> dict[str, Any]:
        cluster, check, target = self.key
        return {
            "category": self.category,
            "cluster": cluster,
            "check": check,
            "target": target,
            "title": self.shown["title"],
            "severity": self.shown["severity"],
            "old": _side(self.old),
            "new": _side(self.new),
        }


def _side(result: dict[str, Any] | None) -> dict[str, str] | None:
    return None if result is None else {"status": result["status"], "message": result["message"]}


def compare(old: ResultsFile, new: ResultsFile) -> list[Change]:
    """Every finding of either side, in its category; in category order, then by key.

    A fixed finding's ``new`` side is the result it became (PASS or SKIP) or None when
    NEW has no result for it."""
    baseline = Baseline(old)
    old_findings = old.findings()
    by_key = {key_of(r, new.run): r for r in new.document["results"]}
    changes = [
        Change(baseline.state_of(r, new.run), key, old_findings.get(key), r)
        for key, r in by_key.items()
        if is_finding(r)
    ]
    for result in baseline.fixed(new.document["results"], new.run):
        key = key_of(result, old.run)
        changes.append(Change(FIXED, key, result, by_key.get(key)))
    order = {category: i for i, category in enumerate(CATEGORIES)}
    return sorted(changes, key=lambda c: (order[c.category], c.key))


def counts(changes: list[Change]) -> dict[str, int]:
    return {category: sum(1 for c in changes if c.category == category) for category in CATEGORIES}


def diff_exit_code(changes: list[Change]) -> int:
    """1 when anything is new, else 0."""
    return EXIT_FAIL if any(c.category == NEW for c in changes) else EXIT_OK


def diff_document(old: ResultsFile, new: ResultsFile, changes: list[Change]) -> dict[str, Any]:
    """``acpcheck diff --format json`` (reports/diff.schema.json)."""
    return {
        "schema": DIFF_SCHEMA,
        "old": _about(old),
        "new": _about(new),
        "counts": counts(changes),
        "exitCode": diff_exit_code(changes),
        "findings": [c.as_dict() for c in changes],
    }


def _about(side: ResultsFile) -> dict[str, Any]:
    run = side.run
    return {
        "file": side.path,
        "sha256": side.sha256,
        "runId": run["id"],
        "cluster": run["cluster"],
        "finished": run.get("finished"),
    }


#: How each category is headed in the text output.
HEADINGS = {NEW: "New", FIXED: "Fixed", CHANGED: "Changed", STILL: "Still failing"}


def diff_text(old: ResultsFile, new: ResultsFile, changes: list[Change], width: int) -> list[str]:
    """``acpcheck diff``'s text: one block per finding under its category's heading,
    wrapped to ``width`` like the run's own summary (``report.terminal.wrap``)."""
    from acpcheck.report.terminal import INDENT, wrap

    def when(side: ResultsFile) -> str:
        return f"run {side.run['id']}" + (f" ({side.run['finished']})" if side.run.get("finished") else "")

    lines = wrap(f"{new.run['cluster']}: {when(old)} → {when(new)}", width, "", INDENT)
    fleet = bool(new.run.get("fleet") or old.run.get("fleet"))
    if not fleet:
        lines += _categories(changes, new.run["cluster"], width, "")
    else:
        # A fleet: each cluster's changes under its own heading, in the order NEW lists its clusters.
        order = {m["name"]: i for i, m in enumerate((new.run.get("fleet") or old.run.get("fleet") or {})["clusters"])}
        for cluster in sorted({c.key[0] for c in changes}, key=lambda name: (order.get(name, len(order)), name)):
            members = [c for c in changes if c.key[0] == cluster]
            tally = counts(members)
            said = ", ".join(f"{tally[c]} {HEADINGS[c].lower()}" for c in CATEGORIES if tally[c])
            lines += ["", f"== cluster {cluster}: {said}"]
            lines += _categories(members, cluster, width, "  ")
    tally = counts(changes)
    lines += ["", ", ".join(f"{tally[c]} {HEADINGS[c].lower()}" for c in CATEGORIES)]
    return lines


def _categories(changes: list[Change], cluster_shown: str, width: int, indent: str) -> list[str]:
    """The text of ``changes`` under their categories' headings; a finding of another cluster
    than ``cluster_shown`` names its cluster."""
    from acpcheck.report.terminal import INDENT, wrap

    lines: list[str] = []
    for category in CATEGORIES:
        members = [c for c in changes if c.category == category]
        if not members:
            continue
        lines += ["", f"{indent}{HEADINGS[category]} ({len(members)})"]
        for change in members:
            result = change.shown
            was = change.old["status"].upper() if change.old else "—"
            now = change.new["status"].upper() if change.new else "no result"
            status = now if category in (NEW, STILL) or was == now else f"{was} → {now}"
            cluster = "" if change.key[0] == cluster_shown else f"{change.key[0]} "
            lines += wrap(
                f"{status} {change.key[1]} [{cluster}{change.key[2]}] {result['title']}",
                width,
                indent + "  ",
                indent + INDENT,
            )
            if category == CHANGED and change.old and change.new and change.old["message"] != change.new["message"]:
                # both sides in full: the message is what changed (or came with the new status)
                lines += _message(change.old["message"], "was: ", width, indent)
                lines += _message(change.new["message"], "now: ", width, indent)
            elif category != FIXED:
                lines += _message(result["message"], "", width, indent)
    return lines


def _message(text: str, label: str, width: int, indent: str = "") -> list[str]:
    from acpcheck.report.terminal import INDENT, wrap

    lines: list[str] = []
    for part in text.splitlines() or [""]:
        lines += wrap(part, width, indent + INDENT + label, indent + INDENT + " " * len(label))
        label = " " * len(label)
    return lines
