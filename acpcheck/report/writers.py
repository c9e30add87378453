"""Report files, all written from one results document (the results.json content).

- results.json  the fixed machine-readable format (docs/interfaces.md)
- junit.xml     one testcase per check and target, named by check id, for CI UIs;
                valid against the junit-10.xsd that Jenkins' xUnit plugin enforces;
                one failing testcase per expired waiver
- summary.md    what a person reads first: verdict, then findings with fixes
- report.html   one self-contained page (no external assets, an inline filter
                script), from the Jinja2 template reports/report.html.j2
                (package acpcheck.reports)
- results.sarif SARIF 2.1.0 for code-scanning UIs (acpcheck.report.sarif)
- codequality.json  GitLab's code quality report (acpcheck.report.codequality)

Every non-compliance shows in every file: FAILs, ERRORs (the assessment is
incomplete), expired waivers and the verdict.

A run that did not complete (acpcheck or a plugin broke, the run was interrupted,
checks gave no result) is never reported as anything but that: the document then
carries ``incomplete`` (the reason), every file's verdict says "incomplete" with the
reason (``verdict``), and results.json is not written at all, since its ``exitCode``
is a completed run's (docs/interfaces.md).

Besides the document, the writers take a ``Context``: each check's rationale (the
"why" of the HTML page and SARIF's ``fullDescription``) and the plan line of each
target (where SARIF puts a node's findings). Both come from the run; without them
the reports still work, with the title in place of the rationale and line 1.

Nothing here sees the plan's secrets: the plan holds only references, and the
results hold only what checks chose to report.

Whatever the results hold (a node's hostname, a facts value, a file name), every
file is well-formed: strings that no file can hold (lone surrogates) and numbers
JSON cannot write (NaN) are made text first, and in the files people read (XML,
Markdown, HTML) every control or escape character is written as a visible escape.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.resources
import json
import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING, Any

from acpcheck import jsontext
from acpcheck.errors import has_invisible, visible
from acpcheck.model.result import best_ref
from acpcheck.report.codequality import codequality
from acpcheck.report.document import (
    SEVERITY_ORDER,
    ClusterVerdict,
    Context,
    cluster_of,
    clusters,
    error_groups,
    is_fleet,
    live_evidence,
    live_evidence_sentence,
    provenance_sentence,
    verdict,
)
from acpcheck.report.sarif import artifact_location, sarif

if TYPE_CHECKING:
    import jinja2

__all__ = [
    "Context",
    "artifact_location",
    "error_groups",
    "groups",
    "junit_xml",
    "render_all",
    "report_html",
    "sarif",
    "summary_markdown",
    "verdict",
    "write_all",
]

STATUS_ICON = {"pass": "✅", "fail": "❌", "warn": "⚠️", "skip": "⏭️", "manual": "✋", "error": "💥", "waived": "🏳️"}
# Findings first, in the order a person should read them.
SECTIONS = ("fail", "error", "warn", "manual", "waived")
STATUS_ORDER = {s: i for i, s in enumerate((*SECTIONS, "pass", "skip"))}


def render_all(document: dict[str, Any], context: Context | None = None) -> dict[str, str]:
    """Every report file of ``document``, by name (see ``OutDir.write``)."""
    context = context or Context()
    plain = _plain(document)
    exact = document if plain else _writable(document)
    shown = exact if plain else _shown(exact)
    shown_context = dataclasses.replace(
        context, rationales={k: visible(v) for k, v in _writable(dict(context.rationales)).items()}
    )
    exact_context = dataclasses.replace(
        context, rationales=_writable(dict(context.rationales)), waivers_file=_writable(context.waivers_file)
    )
    files = {
        # One result per line (jsontext): reads and greps well, and fast to write.
        "results.json": jsontext.dumps(exact, expand=2) + "\n",
        "junit.xml": junit_xml(shown),
        "summary.md": summary_markdown(shown),
        "report.html": report_html(shown, shown_context),
        "results.sarif": json.dumps(
            sarif(exact, exact_context),
            indent=2,
            ensure_ascii=False,
            allow_nan=False,
        )
        + "\n",
        "codequality.json": json.dumps(codequality(exact, exact_context), indent=2, ensure_ascii=False, allow_nan=False)
        + "\n",
    }
    if document.get("incomplete"):
        # Its exitCode would be read as a completed run's verdict; the other files say "incomplete".
        del files["results.json"]
    return files


def write_all(out_dir: Path, document: dict[str, Any], context: Context | None = None) -> Path:
    """Write every report into ``out_dir`` (claimed and locked for the write); return it."""
    from acpcheck.report.outdir import OutDir

    claimed = OutDir.claim(out_dir, str(document["run"]["id"]), force=True, retire=False)
    try:
        return claimed.write(render_all(document, context))
    finally:
        claimed.release()


_SURROGATE = re.compile("[\ud800-\udfff]")
#: In JSON text: a control character other than tab and newline, as JSON writes it.
_JSON_CONTROL = re.compile(r"\\u00[01]|\\[bfr]")


def _plain(document: dict[str, Any]) -> bool:
    """Whether ``document`` holds nothing ``_writable`` or ``_shown`` would rewrite: no
    NaN or infinity, no lone surrogate, no invisible character. The C encoder and two
    searches say so in a fraction of the time of walking a 1,000-node document twice
    (a false alarm only costs the walk)."""
    try:
        text = json.dumps(document, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return not (has_invisible(text) or _JSON_CONTROL.search(text))


def _writable(value: Any) -> Any:
    """``value`` with what no UTF-8 file or JSON can hold made text: lone surrogates
    (from a facts file's ``\\ud800``) as escapes, NaN and infinities as words."""
    if isinstance(value, str):
        return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", value) if _SURROGATE.search(value) else value
    if isinstance(value, dict):
        return {_writable(str(k)): _writable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_writable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _shown(value: Any) -> Any:
    """``value`` with every string made visible (for the XML, Markdown and HTML reports)."""
    if isinstance(value, str):
        return visible(value)
    if isinstance(value, dict):
        return {k: _shown(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shown(v) for v in value]
    return value


def _title(result: dict[str, Any]) -> str:
    return f"{result['check']} {result['title']} [{result['target']}]"


def _first_line(text: str) -> str:
    return text.splitlines()[0] if text else ""


# -- grouping: what repeats across targets is read once ----------------------------------


def groups(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Results as a person reads them, findings first.

    - ERRORs with the same reason on the same target across several checks are one
      group about that target (``kind`` "target", its ``items`` are the checks);
    - everything else is one group per check and status (``kind`` "check", its
      ``items`` are the targets): the same FAIL on 40 nodes is read once, with the
      nodes listed, and the message once when every target has the same one.
    """
    out: list[dict[str, Any]] = []
    by_check: dict[tuple[str, str], dict[str, Any]] = {}
    for error in error_groups(results):
        if len(error["members"]) > 1:
            items = error["members"]
            out.append(
                {
                    "kind": "target",
                    "status": "error",
                    "check": items[0]["check"],
                    "title": f"{len(items)} checks could not run on {error['target']}",
                    "severity": min((i["severity"] for i in items), key=lambda s: SEVERITY_ORDER.get(s, 9)),
                    "areas": sorted({i["area"] for i in items}),
                    "targets": [error["target"]],
                    "message": error["message"],
                    "same_message": True,
                    "members": items,
                }
            )
    grouped = {id(i) for g in out for i in g["members"]}
    for result in results:
        if id(result) in grouped:
            continue
        key = (result["check"], result["status"])
        group = by_check.get(key)
        if group is None:
            group = by_check[key] = {
                "kind": "check",
                "status": result["status"],
                "check": result["check"],
                "title": result["title"],
                "severity": result["severity"],
                "areas": [result["area"]],
                "targets": [],
                "members": [],
                "remediation": result["remediation"],
                "refs": result["refs"],
            }
            out.append(group)
        group["targets"].append(result["target"])
        group["members"].append(result)
    for group in out:
        messages = {
            (i["message"], json.dumps(i["waiver"], sort_keys=True) if i.get("waiver") else None)
            for i in group["members"]
        }
        group["same_message"] = len(messages) == 1
        group["message"] = group["members"][0]["message"]
    out.sort(
        key=lambda g: (
            STATUS_ORDER.get(g["status"], 9),
            SEVERITY_ORDER.get(g["severity"], 9),
            g["kind"] != "target",
            g["check"],
            g["targets"][0],
        )
    )
    return out


# -- junit.xml -------------------------------------------------------------------------------


def junit_xml(document: dict[str, Any]) -> str:
    """One testcase per check and target (``ACP-NET-001 <title> [target]``, classname
    ``acpcheck.<AREA>``), one failing testcase per expired waiver; run data as suite
    properties and per-case data in the case's ``system-out``, where junit-10.xsd
    allows them (it has no ``properties`` inside a ``testcase``).

    A fleet run has one ``testsuite`` per cluster (``acpcheck <cluster>``, its verdict and
    blockers as properties), and one more (``acpcheck <fleet>``) only for what belongs to
    no cluster: expired waivers and a run that did not complete."""
    run, results, summary = document["run"], document["results"], document["summary"]
    expired = document.get("expiredWaivers", [])
    incomplete = document.get("incomplete")
    said = verdict(document)
    if not is_fleet(document):
        properties: list[tuple[str, Any]] = [
            ("verdict", said),
            ("exitCode", run["exitCode"]),
            ("plan", run["plan"]),
            ("cluster", run["cluster"]),
            ("acp", run["acp"]),
            ("profile", run["profile"]),
            ("failOn", run["failOn"]),
            ("expiredWaivers", len(expired)),
            ("run", run["id"]),
            ("acpcheck", run["acpcheck"]),
        ]
        # where the live evidence came from, when the run read a cluster
        properties += [(f"liveEvidence.{key}", value) for key, value in live_evidence(document)]
        suites = [
            _suite(
                f"acpcheck {run['cluster']}",
                run,
                results,
                summary,
                properties,
                expired,
                incomplete,
                f"acpcheck {run['cluster']}: {said} (exit {run['exitCode']})\n",
            )
        ]
    else:
        suites = []
        for member in clusters(document):
            properties = [
                ("verdict", member.verdict),
                ("blockers", member.blockers),
                ("cluster", member.name),
                ("role", member.role),
                ("type", member.type),
                ("plan", member.plan or ""),
                ("fleet", run["fleet"]["name"]),
                ("fleetFile", run["fleet"]["file"]),
                ("acp", run["acp"]),
                ("profile", run["profile"]),
                ("failOn", run["failOn"]),
                ("run", run["id"]),
                ("acpcheck", run["acpcheck"]),
            ]
            found = dict(member.live_evidence or {})
            properties += [(f"liveEvidence.{key}", str(found[key])) for key in found if found[key] is not None]
            said_of = f"{member.verdict}" + (f": {member.blockers}" if member.blockers else "")
            suites.append(
                _suite(
                    f"acpcheck {member.name}",
                    run,
                    member.results,
                    member.summary,
                    properties,
                    [],
                    None,
                    f"acpcheck {member.name}: {said_of}\n",
                )
            )
        if expired or incomplete:
            properties = [("verdict", said), ("exitCode", run["exitCode"]), ("fleet", run["fleet"]["name"])]
            suites.append(
                _suite(
                    f"acpcheck {run['cluster']}",
                    run,
                    [],
                    {status: 0 for status in summary},
                    properties,
                    expired,
                    incomplete,
                    f"acpcheck fleet {run['cluster']}: {said} (exit {run['exitCode']})\n",
                )
            )
    root = ET.Element(
        "testsuites",
        name="acpcheck",
        tests=str(sum(int(suite.get("tests", "0")) for suite in suites)),
        failures=str(sum(int(suite.get("failures", "0")) for suite in suites)),
        errors=str(sum(int(suite.get("errors", "0")) for suite in suites)),
    )
    root.extend(suites)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _suite(
    name: str,
    run: dict[str, Any],
    results: list[dict[str, Any]],
    summary: dict[str, int],
    properties: list[tuple[str, Any]],
    expired: list[dict[str, Any]],
    incomplete: str | None,
    said: str,
) -> ET.Element:
    """One ``testsuite``: its ``properties``, a testcase per result, a failing one per
    expired waiver, an errored one when the run did not complete, and ``said`` (the
    verdict line) as its ``system-out``."""
    suite = ET.Element(
        "testsuite",
        name=name,
        tests=str(len(results) + len(expired) + bool(incomplete)),
        failures=str(summary["fail"] + len(expired)),
        errors=str(summary["error"] + bool(incomplete)),
        skipped=str(sum(summary[status] for status in SKIPPED_IN_JUNIT)),
        time=f"{sum(r['duration'] for r in results):.3f}",
        timestamp=run["started"],
    )
    listed = ET.SubElement(suite, "properties")
    for key, value in properties:
        ET.SubElement(listed, "property", name=key, value=str(value))
    for result in results:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"acpcheck.{result['area']}",
            name=_title(result),
            time=f"{result['duration']:.3f}",
        )
        status = result["status"]
        detail = f"{result['message']}\n\nfix: {result['remediation']}\nsee: {best_ref(result, run['acp'])}"
        if status == "fail":
            ET.SubElement(
                case, "failure", message=_first_line(result["message"]), type=result["severity"]
            ).text = detail
        elif status == "error":
            ET.SubElement(case, "error", message=_first_line(result["message"]), type="could-not-check").text = result[
                "message"
            ]
        elif status in SKIPPED_IN_JUNIT:
            _skipped(case, result, detail)
        out = (
            f"status: {status.upper()}\ncheck: {result['check']}\nseverity: {result['severity']}\ntarget: "
            f"{result['target']}\n"
        )
        if status in ("warn", "waived", "manual"):
            out += f"\n{detail}\n"
        if result.get("waiver"):
            waiver = result["waiver"]
            out += f"waived by {waiver['owner']} until {waiver['expires']}: {waiver['reason']}\n"
        ET.SubElement(case, "system-out").text = out
    for waiver in expired:
        case = ET.SubElement(
            suite,
            "testcase",
            classname="acpcheck.waivers",
            name=f"{waiver['check']} waiver expired [{waiver['target']}]",
            time="0.000",
        )
        message = (
            f"the waiver owned by {waiver['owner']} expired on {waiver['expires']}: it waives nothing and fails the run"
        )
        ET.SubElement(case, "failure", message=message, type="expired-waiver").text = (
            f"{message}\nreason it was given: {waiver['reason']}\nrenew it (a new expires date) or remove it "
            "from the waivers file."
        )
    if incomplete:
        # A CI test view shows this case red: the results above are only what was graded before the run stopped.
        case = ET.SubElement(
            suite, "testcase", classname="acpcheck.run", name="acpcheck run did not complete", time="0.000"
        )
        ET.SubElement(
            case, "error", message=_first_line(incomplete), type="run-incomplete"
        ).text = (
            f"{incomplete}\nThe results in this file are those graded before the run stopped; it is not an assessment."
        )
    ET.SubElement(suite, "system-out").text = said
    return suite


#: Statuses written as a ``skipped`` case: neither passed nor failed, and shown with their text.
#: GitLab's test report shows a case's text only for failed, errored and skipped cases (its JUnit
#: parser drops system-out of a passed one), so a WARN or WAIVED finding written as passed with
#: its details in system-out was invisible there; as ``skipped`` GitLab shows the element's text.
SKIPPED_IN_JUNIT = ("warn", "waived", "skip", "manual")


def _skipped(case: ET.Element, result: dict[str, Any], detail: str) -> None:
    """The ``skipped`` element of a WARN, WAIVED, SKIP or MANUAL case: ``message`` its first
    line, the text everything a reader needs (GitLab shows only the text, Jenkins both)."""
    status = result["status"]
    text = f"{status.upper()} ({result['severity']}) on {result['target']}\n\n"
    text += detail if status != "skip" else result["message"] or "(no message)"
    if result.get("waiver"):
        waiver = result["waiver"]
        text += f"\nwaived by {waiver['owner']} until {waiver['expires']}: {waiver['reason']}"
    ET.SubElement(case, "skipped", message=f"{status.upper()}: {_first_line(result['message'])}", type=status).text = (
        text + "\n"
    )


# -- summary.md ------------------------------------------------------------------------------


def summary_markdown(document: dict[str, Any]) -> str:
    """summary.md: the verdict, the counts, then the findings with their fixes, worst
    first, within ``SUMMARY_BUDGET``. A fleet run's opens with one row per cluster
    (verdict, blockers, a link to its findings), then each cluster's findings."""
    run, summary, results = document["run"], document["summary"], document["results"]
    fleet = is_fleet(document)
    lines = [
        f"# acpcheck: {'fleet ' if fleet else ''}{run['cluster']} — {verdict(document)}",
        "",
        (
            (f"Fleet `{run['fleet']['file']}`" if fleet else f"Plan `{run['plan']}`")
            + f" · ACP {run['acp']} · profile `{run['profile']}` (fail on {run['failOn']} and "
            f"above) · run `{run['id']}` · acpcheck {run['acpcheck']} · exit code {run['exitCode']}"
        ),
        "",
        "| " + " | ".join(f"{STATUS_ICON[s]} {s}" for s in summary) + " |",
        "|" + "---|" * len(summary),
        "| " + " | ".join(str(n) for n in summary.values()) + " |",
        "",
    ]
    if live_evidence_sentence(document):
        lines += [live_evidence_sentence(document), ""]
    if run.get("baseline"):
        from acpcheck.report.diff import baseline_sentence

        lines += [baseline_sentence(run), ""]
    if document.get("incomplete"):
        lines += [
            f"> **The run did not complete:** {document['incomplete']}. The results below are those graded before it "
            "stopped; this is not an assessment, and results.json was not written.",
            "",
        ]
    expired = document.get("expiredWaivers", [])
    for waiver in expired[:SUMMARY_LIST_MAX]:
        lines.append(
            f"> **Expired waiver** for `{waiver['check']}` `[{waiver['target']}]` (owner {waiver['owner']}, "
            f"expired {waiver['expires']}): it no longer applies and fails the run."
        )
        lines.append("")
    if len(expired) > SUMMARY_LIST_MAX:
        lines += [f"> …and {len(expired) - SUMMARY_LIST_MAX} more expired waivers in report.html.", ""]
    if summary["error"]:
        lines += [
            (
                f"> **Incomplete:** {summary['error']} check result(s) could not be determined (ERROR); the run "
                "is not compliant until they are."
            ),
            "",
        ]
    if fleet:
        members = clusters(document)
        lines += _clusters_table(members, SUMMARY_BUDGET // 2 - sum(len(line) + 1 for line in lines))
    budget = SUMMARY_BUDGET - sum(len(line) + 1 for line in lines)
    left_out = 0
    if not fleet:
        found, budget, left_out = _summary_findings(results, summary, run["acp"], budget, "##")
        lines += found
    else:
        for member in members:
            head = [
                f"## Cluster {member.name}",
                "",
                f"{VERDICT_ICON[member.verdict]} **{member.verdict}**"
                + (f": {member.blockers}" if member.blockers else ""),
                "",
            ]
            size = sum(len(line) + 1 for line in head)
            if size > budget:
                left_out += len(groups([r for r in member.results if r["status"] in SECTIONS]))
                continue
            budget -= size
            found, budget, skipped = _summary_findings(member.results, member.summary, run["acp"], budget, "###")
            lines += head + found
            left_out += skipped
    if left_out:
        lines += [f"**…and {left_out} more groups of findings in report.html** (this summary is kept short).", ""]
    passed = sum(1 for r in results if r["status"] == "pass")
    skipped = sum(1 for r in results if r["status"] == "skip")
    if passed or skipped:
        # Counted, not listed: one row per passing check and target is ~3 KB per healthy node.
        lines += [
            "## Passed and not applicable",
            "",
            (
                f"{STATUS_ICON['pass']} {passed} passed · {STATUS_ICON['skip']} {skipped} not applicable, "
                f"over {len({(cluster_of(r, run), r['target']) for r in results})} targets; each is listed in "
                "report.html."
            ),
            "",
        ]
    return "\n".join(lines)


def _summary_findings(
    results: list[dict[str, Any]], summary: dict[str, int], acp: str, budget: int, level: str
) -> tuple[list[str], int, int]:
    """The findings of ``results`` by status (headed ``level``), the groups that fit in
    ``budget`` characters: (lines, the budget left, how many groups were left out)."""
    lines: list[str] = []
    left_out = 0
    for status in SECTIONS:
        chosen = [g for g in groups(results) if g["status"] == status]
        if not chosen:
            continue
        heading = [f"{level} {STATUS_ICON[status]} {status.upper()} ({summary[status]})", ""]
        for group in chosen:
            block = _summary_group(group, status, acp, level + "#")
            size = sum(len(line) + 1 for line in heading + block)
            if size > budget:
                left_out += 1
                continue
            lines += heading + block
            budget -= size
            heading = []
    return lines, budget, left_out


#: A cluster's verdict as summary.md and the terminal show it.
VERDICT_ICON = {"ready": "✅", "blocked": "❌", "incomplete": "⚠️"}


def _clusters_table(members: list[ClusterVerdict], budget: int) -> list[str]:
    """summary.md's table of a fleet: one row per cluster, in the fleet's order, linking
    to the cluster's heading (``## Cluster <name>``, whose anchor GitHub and GitLab make
    ``#cluster-<name>``); rows past ``budget`` characters are counted, not listed."""
    lines = [
        "| Cluster | Role | Type | Verdict | Blockers |",
        "|---|---|---|---|---|",
    ]
    budget -= sum(len(line) + 1 for line in lines)
    left: list[ClusterVerdict] = []
    for member in members:
        origin = " (discovered)" if member.discovered else ""
        row = (
            f"| [{_cell(member.name)}](#{member.anchor}) | {_cell(member.role)} | {_cell(member.type)}{origin} | "
            f"{VERDICT_ICON[member.verdict]} {member.verdict} | {_cell(member.blockers) or '—'} |"
        )
        if left or len(row) + 1 > budget:
            left.append(member)
            continue
        lines.append(row)
        budget -= len(row) + 1
    lines.append("")
    if left:
        tally = ", ".join(
            f"{sum(m.verdict == v for m in left)} {v}" for v in VERDICT_ICON if any(m.verdict == v for m in left)
        )
        lines += [f"…and {len(left)} more clusters ({tally}) in report.html.", ""]
    return lines


def _cell(text: str) -> str:
    """``text`` in one Markdown table cell: one line, its pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")


#: summary.md is read in a PR comment or a job summary: GitHub refuses a comment over 65,536
#: characters, so the findings get this many and the rest is in report.html (``summary_markdown``).
SUMMARY_BUDGET = 60_000
#: At most this many targets, expired waivers or differing messages are listed in one place.
SUMMARY_LIST_MAX = 20
#: At most this many findings of one check with differing messages are written out in full.
SUMMARY_MESSAGES_MAX = 5
#: A message longer than this is cut in summary.md (report.html has it whole).
SUMMARY_MESSAGE_MAX = 1_500


def _summary_group(group: dict[str, Any], status: str, acp: str, level: str = "###") -> list[str]:
    """The summary.md lines of one group of findings (headed ``level``), each list and message bounded."""
    if group["kind"] == "target":
        checks = [item["check"] for item in group["members"]]
        return [
            f"{level} {group['title']}",
            "",
            "Checks: " + _bounded(checks, "checks"),
            "",
            *_fenced(_cut(group["message"])),
            "",
        ]
    lines: list[str] = []
    shown = group["members"][:1] if group["same_message"] else group["members"][:SUMMARY_MESSAGES_MAX]
    for result in shown:
        targets = _bounded(group["targets"], "targets") if group["same_message"] else result["target"]
        lines += [
            f"{level} {result['check']} — {result['title']} `[{targets}]`",
            "",
            f"Severity **{result['severity']}**.",
            "",
            *_fenced(_cut(result["message"])),
            "",
        ]
        if result.get("waiver"):
            w = result["waiver"]
            lines += [f"Waived by {w['owner']} until {w['expires']}: {w['reason']}", ""]
        if status in ("fail", "warn", "waived"):
            lines += [f"**Fix:** {result['remediation']}", ""]
        lines += [f"Source: {best_ref(result, acp)}", ""]
    if not group["same_message"] and len(shown) < len(group["members"]):
        more = group["members"][len(shown) :]
        lines += [
            f"…and {len(more)} more {status.upper()} of {group['check']} with other messages, on "
            f"{_bounded([r['target'] for r in more], 'targets')}: in report.html.",
            "",
        ]
    return lines


def _bounded(names: list[str], what: str) -> str:
    """``names`` joined, at most ``SUMMARY_LIST_MAX`` of them, then how many more."""
    if len(names) <= SUMMARY_LIST_MAX:
        return ", ".join(names)
    return ", ".join(names[:SUMMARY_LIST_MAX]) + f" and {len(names) - SUMMARY_LIST_MAX} more {what}"


def _cut(text: str) -> str:
    if len(text) <= SUMMARY_MESSAGE_MAX:
        return text
    return text[:SUMMARY_MESSAGE_MAX] + f"\n… ({len(text) - SUMMARY_MESSAGE_MAX} more characters in report.html)"


def _fenced(text: str) -> list[str]:
    fence = "`" * max([3, *(len(run) + 1 for run in re.findall("`+", text))])
    return [fence, text or "(no message)", fence]


# -- report.html -----------------------------------------------------------------------------


def report_html(document: dict[str, Any], context: Context | None = None) -> str:
    """The page of ``reports/report.html.j2``: verdict, expired waivers, filters, then
    every group of results, findings first, each with its rationale and fix."""
    context = context or Context()
    run = document["run"]
    members = (
        [
            {
                "name": member.name,
                "anchor": member.anchor,
                "role": member.role,
                "type": member.type,
                "plan": member.plan,
                "discovered": member.discovered,
                "verdict": member.verdict,
                "blockers": member.blockers,
                "summary": member.summary,
                "live_evidence": provenance_sentence(member.live_evidence),
                "groups": _page_groups(member.results, context, run["acp"]),
            }
            for member in clusters(document)
        ]
        if is_fleet(document)
        else None
    )
    targets = sorted(
        {r["target"] for r in document["results"]}, key=lambda t: (not t == "plan", not t.startswith("node:*"), t)
    )
    return _template("report.html.j2").render(
        run=run,
        summary=document["summary"],
        verdict=verdict(document),
        live_evidence=live_evidence_sentence(document),
        expired=document.get("expiredWaivers", []),
        groups=_page_groups(document["results"], context, run["acp"]) if members is None else [],
        clusters=members,
        areas=sorted({r["area"] for r in document["results"]}),
        targets=targets,
    )


def _page_groups(results: list[dict[str, Any]], context: Context, acp: str) -> list[dict[str, Any]]:
    """``groups`` of ``results``, each with its rationale's paragraphs (``why``) and its sources, best first."""
    page_groups = groups(results)
    for group in page_groups:
        group["why"] = (
            paragraphs(context.rationales.get(group["check"], "") or group["title"]) if group["kind"] == "check" else []
        )
        best = best_ref(group["members"][0], acp) if group.get("refs") else ""
        group["sources"] = list(dict.fromkeys([best, *group.get("refs", [])])) if best else []
    return page_groups


def paragraphs(text: str) -> list[str]:
    """A docstring's paragraphs, each on one line (the page wraps them itself);
    a list item (``- …``) is a paragraph of its own."""
    out: list[str] = []
    for block in re.split(r"\n\s*\n", text.strip()):
        current: list[str] = []
        for line in block.splitlines():
            if re.match(r"\s*([-*•]|\d+[.)])\s", line) and current:
                out.append(" ".join(current))
                current = []
            current.append(line.strip())
        if current:
            out.append(" ".join(current))
    return out


@functools.cache
def _template(name: str) -> jinja2.Template:
    # Imported here, not at the top: jinja2 costs ~25 ms, and only the controller
    # renders, once at the end of a run (xdist workers import this module too).
    import jinja2

    # Read through importlib.resources: the templates ship in the acpcheck.reports
    # package (top-level reports/ in a checkout), also inside a wheel or a zip.
    text = importlib.resources.files("acpcheck.reports").joinpath(name).read_text(encoding="utf-8")
    environment = jinja2.Environment(
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["tojson_attr"] = lambda value: json.dumps(value, ensure_ascii=True)
    return environment.from_string(text)
