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
    Context,
    error_groups,
    live_evidence,
    live_evidence_sentence,
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
    allows them (it has no ``properties`` inside a ``testcase``)."""
    run, results, summary = document["run"], document["results"], document["summary"]
    expired = document.get("expiredWaivers", [])
    incomplete = document.get("incomplete")
    suite = ET.Element(
        "testsuite",
        name=f"acpcheck {run['cluster']}",
        tests=str(len(results) + len(expired) + bool(incomplete)),
        failures=str(summary["fail"] + len(expired)),
        errors=str(summary["error"] + bool(incomplete)),
        skipped=str(sum(summary[status] for status in SKIPPED_IN_JUNIT)),
        time=f"{sum(r['duration'] for r in results):.3f}",
        timestamp=run["started"],
    )
    properties = ET.SubElement(suite, "properties")
    said = verdict(document)
    for name, value in (
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
    ):
        ET.SubElement(properties, "property", name=name, value=str(value))
    for key, value in live_evidence(document):  # where the live evidence came from, when the run read a cluster
        ET.SubElement(properties, "property", name=f"liveEvidence.{key}", value=value)
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
    ET.SubElement(suite, "system-out").text = f"acpcheck {run['cluster']}: {said} (exit {run['exitCode']})\n"
    root = ET.Element(
        "testsuites",
        name="acpcheck",
        tests=suite.get("tests", "0"),
        failures=suite.get("failures", "0"),
        errors=suite.get("errors", "0"),
    )
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


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
    run, summary, results = document["run"], document["summary"], document["results"]
    lines = [
        f"# acpcheck: {run['cluster']} — {verdict(document)}",
        "",
        (
            f"Plan `{run['plan']}` · ACP {run['acp']} · profile `{run['profile']}` (fail on {run['failOn']} and "
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
    budget = SUMMARY_BUDGET - sum(len(line) + 1 for line in lines)
    left_out = 0
    for status in SECTIONS:
        chosen = [g for g in groups(results) if g["status"] == status]
        if not chosen:
            continue
        heading = [f"## {STATUS_ICON[status]} {status.upper()} ({summary[status]})", ""]
        for group in chosen:
            block = _summary_group(group, status, run["acp"])
            size = sum(len(line) + 1 for line in heading + block)
            if size > budget:
                left_out += 1
                continue
            lines += heading + block
            budget -= size
            heading = []
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
                f"over {len({r['target'] for r in results})} targets; each is listed in report.html."
            ),
            "",
        ]
    return "\n".join(lines)


#: summary.md is read in a PR comment or a job summary: GitHub refuses a comment over 65,536
#: characters, so the findings get this many and the rest is in report.html (``summary_markdown``).
SUMMARY_BUDGET = 60_000
#: At most this many targets, expired waivers or differing messages are listed in one place.
SUMMARY_LIST_MAX = 20
#: At most this many findings of one check with differing messages are written out in full.
SUMMARY_MESSAGES_MAX = 5
#: A message longer than this is cut in summary.md (report.html has it whole).
SUMMARY_MESSAGE_MAX = 1_500


def _summary_group(group: dict[str, Any], status: str, acp: str) -> list[str]:
    """The summary.md lines of one group of findings, each list and message bounded."""
    if group["kind"] == "target":
        checks = [item["check"] for item in group["members"]]
        return [
            f"### {group['title']}",
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
            f"### {result['check']} — {result['title']} `[{targets}]`",
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
    page_groups = groups(document["results"])
    for group in page_groups:
        group["why"] = (
            paragraphs(context.rationales.get(group["check"], "") or group["title"]) if group["kind"] == "check" else []
        )
        best = best_ref(group["members"][0], run["acp"]) if group.get("refs") else ""
        group["sources"] = list(dict.fromkeys([best, *group.get("refs", [])])) if best else []
    targets = sorted(
        {r["target"] for r in document["results"]}, key=lambda t: (not t == "plan", not t.startswith("node:*"), t)
    )
    return _template("report.html.j2").render(
        run=run,
        summary=document["summary"],
        verdict=verdict(document),
        live_evidence=live_evidence_sentence(document),
        expired=document.get("expiredWaivers", []),
        groups=page_groups,
        areas=sorted({r["area"] for r in document["results"]}),
        targets=targets,
    )


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
