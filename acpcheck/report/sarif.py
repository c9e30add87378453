"""results.sarif: SARIF 2.1.0 for code-scanning UIs (GitHub, GitLab, the SARIF viewers).

- One rule per check of the run, with ``shortDescription`` (the compliant state),
  ``fullDescription`` (the rationale), ``help`` (the fix) and ``helpUri`` (the docs
  page); its default level says whether a failure of that check fails the run under
  the profile's ``fail_on``.
- One result per FAIL, WARN and WAIVED finding. Its ``level`` follows what the
  finding did to the run: a FAIL (it failed the run) is ``error``, a WARN (below
  ``fail_on``, or advice) ``warning``, a WAIVED finding ``note`` with a suppression
  naming the waiver.
- With ``acpcheck run --baseline``, each finding's ``baselineState`` (SARIF 2.1.0
  §3.27.24) is ``new``, ``unchanged`` or ``updated`` (``report.diff``); fixed
  findings are not written as ``absent`` results (results.json counts them).
- Each result sits on the plan line of what it is about: the field its ``at``
  evidence names, else the target's own entry (a node's ``spec.nodes`` item, the
  ``spec.nodes`` list for a cross-node result, ``metadata.name`` for the live
  cluster), else line 1. URIs are relative, with a ``uriBaseId``.
- What is not a finding but still matters is in the invocation: the exit code and
  the verdict, ``executionSuccessful`` false when a check could not run (ERROR:
  the assessment is incomplete) or the run did not complete, a tool-execution
  notification per ERROR reason and target (and one ``run-incomplete``), and a
  tool-configuration notification per expired waiver; and where the live-cluster
  evidence came from (the invocation's ``liveEvidence`` property), when the run read a cluster.

A fleet run's log has one run per cluster (in the fleet's order): its own rules,
results and invocation (its verdict: ready, blocked or incomplete), its findings on
that member's plan file (the fleet file for a member without one), an
``automationDetails.id`` of ``acpcheck/<profile>/<cluster>/<run id>`` (a code-scanning
category per cluster) and ``baselineState`` per (cluster, check, target). What belongs
to no cluster (expired waivers, a run that did not complete) is in the first run.

Validated in the tests against the OASIS SARIF 2.1.0 schema and read back by
sarif-tools (tests/unit/test_sarif.py, tests/unit/test_fleet_reports.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

from acpcheck.constants import ACP_DOCS
from acpcheck.model.check import Severity
from acpcheck.model.result import best_ref
from acpcheck.report.diff import baseline_state
from acpcheck.report.document import Context, clusters, error_groups, is_fleet, verdict

SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
#: A finding's status -> its SARIF level: what it did to the run, not only its severity.
SARIF_LEVEL = {"fail": "error", "warn": "warning", "waived": "note"}
#: The base of relative artifact URIs: the directory acpcheck ran in, when the plan is under it.
SARIF_BASE = "SRCROOT"
#: Otherwise: the plan file's own directory.
PLAN_BASE = "PLANDIR"
#: And the waivers file's own directory, when it is not under the working directory either.
WAIVERS_BASE = "WAIVERSDIR"
#: The rule of the results for expired waivers (one per expired waiver, on its line in the waivers file).
EXPIRED_WAIVER: dict[str, Any] = {
    "id": "expired-waiver",
    "name": "ExpiredWaiver",
    "shortDescription": {"text": "every waiver in the waivers file is still in force"},
    "fullDescription": {
        "text": (
            "A waiver past its expires date waives nothing and fails the run, so that an exception cannot "
            "silently outlive the reason it was granted for."
        )
    },
    "help": {
        "text": "Renew the waiver (a new expires date, with its owner's agreement) or remove it from the waivers file.",
        "markdown": "**Fix:** renew the waiver (a new `expires` date) or remove it from the waivers file.",
    },
    "defaultConfiguration": {"level": "error"},
    "properties": {"tags": ["acpcheck", "waivers"]},
}


def fails_the_run(severity: str, fail_on: str) -> bool:
    """Whether a failure of ``severity`` is a FAIL (not a WARN) under ``fail_on``."""
    try:
        return Severity.parse(severity) >= Severity.parse(fail_on)
    except ValueError:
        return True


def sarif(document: dict[str, Any], context: Context) -> dict[str, Any]:
    """The SARIF log of one results document (see the module's docstring)."""
    run = document["run"]
    if not is_fleet(document):
        runs = [
            _run(
                document,
                document["results"],
                document["summary"],
                context,
                Scope(run["plan"], context.lines, f"acpcheck/{run['profile']}/{run['id']}", run["cluster"]),
                verdict(document),
                True,
            )
        ]
    else:
        runs = []
        for number, member in enumerate(clusters(document)):
            plan = member_file(member.plan, run["fleet"]["file"])
            said = member.verdict + (f": {member.blockers}" if member.blockers else "")
            scope = Scope(
                plan,
                context.lines_of(member.name, fleet=True),
                f"acpcheck/{run['profile']}/{member.name}/{run['id']}",
                member.name,
                {"fleet": run["fleet"]["name"], "role": member.role, "type": member.type},
            )
            entry = _run(document, member.results, member.summary, context, scope, said, number == 0)
            if member.live_evidence:
                entry["invocations"][0]["properties"]["liveEvidence"] = member.live_evidence
            runs.append(entry)
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": runs}


def member_file(plan: str | None, fleet_file: str) -> str:
    """Where a fleet member's findings sit: its plan file (as the fleet file names it,
    relative to the fleet file), else the fleet file."""
    if not plan:
        return fleet_file
    path = Path(plan)
    return str(path if path.is_absolute() else Path(fleet_file).parent / path)


@dataclass(frozen=True)
class Scope:
    """What one SARIF run is of: the plan file its findings sit on and its lines, its
    automation id, its cluster, and more properties for a fleet member."""

    plan: str
    lines: Mapping[str, int]
    automation: str
    cluster: str
    more: Mapping[str, str] = field(default_factory=dict)


def _run(
    document: dict[str, Any],
    these: list[dict[str, Any]],
    summary: dict[str, int],
    context: Context,
    scope: Scope,
    said: str,
    run_level: bool,
) -> dict[str, Any]:
    """One SARIF run of ``these`` results; ``run_level``: also what belongs to the whole
    run (expired waivers, a run that did not complete)."""
    run = document["run"]
    context = replace(context, lines=scope.lines)
    artifact, bases = artifact_location(scope.plan)
    rules: dict[str, dict[str, Any]] = {}
    for result in these:
        if result["check"] not in rules:
            rules[result["check"]] = _rule(result, run, context)
    index = {check: i for i, check in enumerate(rules)}
    results = []
    for finding in (r for r in these if r["status"] in SARIF_LEVEL):
        entry: dict[str, Any] = {
            "ruleId": finding["check"],
            "ruleIndex": index[finding["check"]],
            "level": SARIF_LEVEL[finding["status"]],
            "kind": "fail",
            # The target is in the location (logicalLocations), not the text: tools that group
            # by message then see "swap is on" on 40 nodes as one finding with 40 locations.
            "message": {"text": finding["message"] or finding["title"]},
            "locations": [_location(artifact, plan_line(finding, scope.plan, context), finding["target"])],
            "partialFingerprints": {"acpcheck/check-target/v1": f"{finding['check']}|{finding['target']}"},
            "properties": {"status": finding["status"], "severity": finding["severity"], "target": finding["target"]},
        }
        state = baseline_state(finding, run)  # SARIF 2.1.0 §3.27.24; None: the run had no --baseline
        if state is not None:
            entry["baselineState"] = state
        if finding.get("waiver"):
            waiver = finding["waiver"]
            entry["suppressions"] = [
                {
                    "kind": "external",
                    "status": "accepted",
                    "justification": f"{waiver['reason']} (owner {waiver['owner']}, until {waiver['expires']})",
                }
            ]
        results.append(entry)
    execution = []
    for group in error_groups(these):
        first = group["members"][0]
        checks = [item["check"] for item in group["members"]]
        notification: dict[str, Any] = {
            "level": "error",
            "descriptor": {"id": "could-not-check"},
            "message": {
                "text": (
                    f"ERROR [{group['target']}] {len(checks)} check(s) could not run ({', '.join(checks)}): "
                    f"{first['message']}"
                )
            },
            "locations": [_location(artifact, plan_line(first, scope.plan, context), group["target"])],
            "properties": {"target": group["target"], "checks": checks},
        }
        if len(checks) == 1:
            notification["associatedRule"] = {"id": checks[0], "index": index[checks[0]]}
        execution.append(notification)
    expired = document.get("expiredWaivers", []) if run_level else []
    waivers_artifact, waivers_bases = (
        artifact_location(context.waivers_file, base_id=WAIVERS_BASE) if context.waivers_file else ({}, {})
    )
    for number, waiver in enumerate(expired):
        if EXPIRED_WAIVER["id"] not in rules:
            rules[EXPIRED_WAIVER["id"]] = EXPIRED_WAIVER
            index[EXPIRED_WAIVER["id"]] = len(index)
        results.append(_expired_waiver_result(waiver, index[EXPIRED_WAIVER["id"]], waivers_artifact, context, number))
    configuration = [
        {
            "level": "error",
            "descriptor": {"id": "expired-waiver"},
            "message": {
                "text": (
                    f"the waiver for {w['check']} [{w['target']}] owned by {w['owner']} expired on "
                    f"{w['expires']}: it waives nothing and fails the run ({w['reason']})"
                )
            },
            "properties": dict(w),
        }
        for w in expired
    ]
    if document.get("incomplete") and run_level:
        execution.append(
            {
                "level": "error",
                "descriptor": {"id": "run-incomplete"},
                "message": {"text": f"the run did not complete: {document['incomplete']}"},
            }
        )
    invocation: dict[str, Any] = {
        "executionSuccessful": summary["error"] == 0 and not document.get("incomplete"),
        "exitCode": run["exitCode"],
        "exitCodeDescription": said,
        "startTimeUtc": run["started"],
        "endTimeUtc": run["finished"],
        "toolExecutionNotifications": execution,
        "toolConfigurationNotifications": configuration,
        "properties": {
            "profile": run["profile"],
            "failOn": run["failOn"],
            "summary": summary,
            "expiredWaivers": len(configuration),
        },
    }
    if run.get("liveEvidence"):  # where the live evidence came from, when the run read a cluster
        invocation["properties"]["liveEvidence"] = run["liveEvidence"]
    return {
        "tool": {
            "driver": {
                "name": "acpcheck",
                "version": run["acpcheck"],
                "semanticVersion": run["acpcheck"],
                "informationUri": f"{ACP_DOCS}/4.3/",
                "rules": list(rules.values()),
            }
        },
        "automationDetails": {"id": scope.automation},
        "originalUriBaseIds": {**waivers_bases, **bases},
        "invocations": [invocation],
        "results": results,
        "properties": {"cluster": scope.cluster, "acp": run["acp"], "verdict": said, **scope.more},
    }


def _expired_waiver_result(
    waiver: dict[str, Any], rule_index: int, artifact: dict[str, str], context: Context, number: int
) -> dict[str, Any]:
    """The result for an expired waiver: an error on its line in the waivers file (no
    location when the file is not known, as for a document rendered on its own)."""
    entry: dict[str, Any] = {
        "ruleId": EXPIRED_WAIVER["id"],
        "ruleIndex": rule_index,
        "level": "error",
        "kind": "fail",
        "message": {
            "text": (
                f"the waiver for {waiver['check']} [{waiver['target']}] owned by {waiver['owner']} expired on "
                f"{waiver['expires']}: it waives nothing and fails the run ({waiver['reason']})"
            )
        },
        "partialFingerprints": {"acpcheck/expired-waiver/v1": f"{waiver['check']}|{waiver['target']}"},
        "properties": {"status": "expired-waiver", **waiver},
    }
    if artifact:
        lines = context.expired_waiver_lines
        line = lines[number] if number < len(lines) else 1
        entry["locations"] = [{"physicalLocation": {"artifactLocation": dict(artifact), "region": {"startLine": line}}}]
    return entry


def _rule(result: dict[str, Any], run: dict[str, Any], context: Context) -> dict[str, Any]:
    rationale = context.rationales.get(result["check"]) or result["title"]
    source = best_ref(result, run["acp"])
    return {
        "id": result["check"],
        "name": "".join(part.capitalize() for part in result["check"].split("-")),
        "shortDescription": {"text": result["title"]},
        "fullDescription": {"text": rationale},
        "help": {
            "text": f"{result['remediation']}\n\nSource: {source}",
            "markdown": f"**Fix:** {result['remediation']}\n\n[Source]({source})",
        },
        "helpUri": source,
        "defaultConfiguration": {"level": "error" if fails_the_run(result["severity"], run["failOn"]) else "warning"},
        "properties": {"severity": result["severity"], "area": result["area"], "tags": ["acpcheck", result["area"]]},
    }


def _location(artifact: dict[str, str], line: int, target: str) -> dict[str, Any]:
    location: dict[str, Any] = {"physicalLocation": {"artifactLocation": dict(artifact), "region": {"startLine": line}}}
    if target != "plan":
        kind, _, name = target.partition(":")
        location["logicalLocations"] = [
            {"name": name, "fullyQualifiedName": target, "kind": "resource", "properties": {"acpcheckKind": kind}}
        ]
    return location


def plan_line(finding: dict[str, Any], plan_file: str, context: Context) -> int:
    """The plan line a finding is about: its ``at`` evidence when that points into
    the plan file, else (a plan finding) the first plan line its message cites, else
    its target's entry (context.lines), else 1."""
    at = str((finding.get("evidence") or {}).get("at") or "")
    file, _, line = at.rpartition(":")
    if file == plan_file and line.isdigit() and int(line) > 0:
        return int(line)
    if (
        finding["target"] == "plan"
    ):  # a plan finding that names its field only in the message: "(spec.nodes at plan.yaml:24)"
        cited = re.search(f" at {re.escape(plan_file)}:([1-9][0-9]*)\\b", finding.get("message") or "")
        if cited:
            return int(cited.group(1))
    return context.lines.get(finding["target"]) or 1


def artifact_location(
    plan_file: str, cwd: Path | None = None, base_id: str = PLAN_BASE
) -> tuple[dict[str, str], dict[str, Any]]:
    """The SARIF ``artifactLocation`` of the plan file (or another input file), and the
    ``originalUriBaseIds`` it needs.

    Always a relative, percent-encoded URI with a ``uriBaseId``: relative to
    ``SRCROOT`` (the working directory, what code-scanning uploads are relative to)
    when the file is under it, else to ``base_id`` (``PLANDIR``), the file's own directory."""
    cwd = (cwd or Path.cwd()).resolve()
    path = Path(plan_file)
    absolute = path if path.is_absolute() else cwd / path
    try:
        relative = Path(*absolute.parts).relative_to(cwd) if ".." not in path.parts else None
    except ValueError:
        relative = None
    if relative is not None:
        return {"uri": quote(relative.as_posix()), "uriBaseId": SARIF_BASE}, {SARIF_BASE: {"uri": cwd.as_uri() + "/"}}
    resolved = Path(*absolute.parts).resolve() if ".." in absolute.parts else absolute
    base = resolved.parent.as_uri()
    return {"uri": quote(resolved.name), "uriBaseId": base_id}, {
        base_id: {"uri": base if base.endswith("/") else base + "/"}
    }
