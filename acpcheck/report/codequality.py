"""codequality.json: the findings in GitLab's code quality format, for the merge request
widget and the pipeline's Code Quality tab (``artifacts:reports:codequality``).

GitLab reads a JSON list of issues in a subset of the Code Climate format: each with
``description``, ``check_name``, ``fingerprint``, ``severity`` (info, minor, major,
critical, blocker) and ``location`` (``path`` relative to the project, ``lines.begin``).
GitLab cannot read SARIF here, so acpcheck writes this file with the other reports.

- One issue per FAIL, WARN and WAIVED finding, on the same plan line as in SARIF
  (``sarif.plan_line``); a FAIL's severity follows the check's, a WARN is ``minor``
  and a WAIVED finding ``info``. The target is in the description: GitLab's location
  is a file and line only.
- One ``critical`` issue per expired waiver, on its line in the waivers file (it fails
  the run).
- ERRORs (a check could not run) are not code quality issues: they are errored cases
  in junit.xml, which GitLab shows in its test report.

The fingerprint is the check and target (and for an expired waiver its expiry date), so
GitLab can tell a finding that is new in a merge request from one already on the target
branch. In a fleet run it is the cluster, check and target (the same node name may be in
two clusters), the description starts with the cluster, and the location is the
member's plan file (the fleet file for a member without one).
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any
from urllib.parse import unquote

from acpcheck.report.document import Context, cluster_of, is_fleet
from acpcheck.report.sarif import SARIF_BASE, artifact_location, member_file, plan_line

#: A FAIL's severity -> GitLab's (a FAIL fails the run, so at least ``major``).
FAIL_SEVERITY = {"critical": "blocker", "high": "critical", "medium": "major", "low": "major", "info": "major"}
#: What a finding that did not fail the run is in GitLab's words.
OTHER_SEVERITY = {"warn": "minor", "waived": "info"}


def codequality(document: dict[str, Any], context: Context) -> list[dict[str, Any]]:
    """The code quality issues of one results document (see the module's docstring)."""
    run = document["run"]
    fleet = is_fleet(document)
    plans = {m["name"]: member_file(m["plan"], run["fleet"]["file"]) for m in run["fleet"]["clusters"]} if fleet else {}
    where: dict[str, tuple[str, Context]] = {}
    issues = []
    for finding in document["results"]:
        status = finding["status"]
        if status not in ("fail", "warn", "waived"):
            continue
        severity = FAIL_SEVERITY.get(finding["severity"], "major") if status == "fail" else OTHER_SEVERITY[status]
        cluster = cluster_of(finding, run)
        plan_file = plans.get(cluster, run["plan"])
        if cluster not in where:  # the member's plan as GitLab names it, and its lines: once per cluster
            where[cluster] = (_project_path(plan_file), replace(context, lines=context.lines_of(cluster, fleet)))
        path, lines_context = where[cluster]
        description = (
            f"{finding['check']} {status.upper()} on {finding['target']}: {finding['message'] or finding['title']}"
        )
        if fleet:
            description = f"{cluster}: {description}"
        if finding.get("waiver"):
            waiver = finding["waiver"]
            description += f" (waived by {waiver['owner']} until {waiver['expires']})"
        issues.append(
            _issue(
                description,
                finding["check"],
                severity,
                path,
                plan_line(finding, plan_file, lines_context),
                f"{cluster}|{finding['check']}|{finding['target']}"
                if fleet
                else f"{finding['check']}|{finding['target']}",
            )
        )
    # Without the waivers file (a document rendered on its own) the issue sits on the plan's first line.
    waivers = _project_path(context.waivers_file) if context.waivers_file else _project_path(run["plan"])
    lines = context.expired_waiver_lines if context.waivers_file else ()
    for number, waiver in enumerate(document.get("expiredWaivers", [])):
        issues.append(
            _issue(
                (
                    f"the waiver for {waiver['check']} [{waiver['target']}] owned by {waiver['owner']} expired on "
                    f"{waiver['expires']}: it waives nothing and fails the run; renew or remove it"
                ),
                "expired-waiver",
                "critical",
                waivers,
                lines[number] if number < len(lines) else 1,
                f"expired-waiver|{waiver['check']}|{waiver['target']}|{waiver['expires']}",
            )
        )
    return issues


def _issue(description: str, check: str, severity: str, path: str, line: int, identity: str) -> dict[str, Any]:
    return {
        "type": "issue",
        "description": description,
        "check_name": check,
        "fingerprint": hashlib.sha256(f"acpcheck|{identity}".encode(errors="surrogatepass")).hexdigest(),
        "severity": severity,
        "location": {"path": path, "lines": {"begin": line}},
    }


def _project_path(file: str) -> str:
    """``file`` as GitLab wants it: relative to the project directory (the working
    directory of the job) when it is under it, else as given."""
    artifact, _ = artifact_location(file)
    return unquote(artifact["uri"]) if artifact["uriBaseId"] == SARIF_BASE else file
