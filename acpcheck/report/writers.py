"""Report files, all written from one results document (the results.json content).

- results.json  the fixed machine-readable format (docs/interfaces.md)
- junit.xml     one testcase per check and target, named by check id, for CI UIs
- summary.md    what a person reads first: verdict, then findings with fixes
- report.html   one self-contained page (no external assets), from the Jinja2
                template reports/report.html.j2 (package acpcheck.reports)
- results.sarif SARIF 2.1.0 for code-scanning UIs: FAIL and WARN findings on the
                plan file, at the line of the field they are about when known

Nothing here sees the plan's secrets: the plan holds only references, and the
results hold only what checks chose to report.

Whatever the results hold (a node's hostname, a facts value, a file name), every
file is well-formed: strings that no file can hold (lone surrogates) and numbers
JSON cannot write (NaN) are made text first, and in the files people read (XML,
Markdown, HTML) every control or escape character is written as a visible escape.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from acpcheck.errors import visible
from acpcheck.model.result import best_ref

if TYPE_CHECKING:
    import jinja2

STATUS_ICON = {"pass": "✅", "fail": "❌", "warn": "⚠️", "skip": "⏭️", "manual": "✋", "error": "💥", "waived": "🏳️"}
# Findings first, in the order a person should read them.
SECTIONS = ("fail", "error", "warn", "manual", "waived")
VERDICT = {0: "compliant", 1: "NOT compliant", 2: "assessment incomplete: some checks could not run", 5: "nothing selected"}


def render_all(document: dict[str, Any]) -> dict[str, str]:
    """Every report file of ``document``, by name (see ``OutDir.write``)."""
    exact = _writable(document)
    shown = _shown(exact)
    return {
        "results.json": json.dumps(exact, indent=2, ensure_ascii=False, allow_nan=False) + "\n",
        "junit.xml": junit_xml(shown),
        "summary.md": summary_markdown(shown),
        "report.html": report_html(shown),
        "results.sarif": json.dumps(sarif(exact), indent=2, ensure_ascii=False, allow_nan=False) + "\n",
    }


def write_all(out_dir: Path, document: dict[str, Any]) -> Path:
    """Write every report into ``out_dir`` (claimed and locked for the write); return it."""
    from acpcheck.report.outdir import OutDir

    claimed = OutDir.claim(out_dir, str(document["run"]["id"]), force=True, retire=False)
    try:
        return claimed.write(render_all(document))
    finally:
        claimed.release()


_SURROGATE = re.compile("[\ud800-\udfff]")


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


def junit_xml(document: dict[str, Any]) -> str:
    results = document["results"]
    summary = document["summary"]
    suite = ET.Element(
        "testsuite",
        name=f"acpcheck {document['run']['cluster']}",
        tests=str(len(results)),
        failures=str(summary["fail"]),
        errors=str(summary["error"]),
        skipped=str(summary["skip"] + summary["manual"]),
        time=f"{sum(r['duration'] for r in results):.3f}",
        timestamp=document["run"]["started"],
    )
    for result in results:
        case = ET.SubElement(suite, "testcase", classname=f"acpcheck.{result['area']}", name=_title(result), time=f"{result['duration']:.3f}")
        properties = ET.SubElement(case, "properties")
        for name in ("check", "severity", "target", "status"):
            ET.SubElement(properties, "property", name=name, value=str(result[name]))
        detail = f"{result['message']}\n\nfix: {result['remediation']}\nsee: {best_ref(result, document['run']['acp'])}"
        status = result["status"]
        if status == "fail":
            ET.SubElement(case, "failure", message=result["message"].splitlines()[0] if result["message"] else "", type=result["severity"]).text = detail
        elif status == "error":
            ET.SubElement(case, "error", message=result["message"].splitlines()[0] if result["message"] else "", type="error").text = result["message"]
        elif status in ("skip", "manual"):
            ET.SubElement(case, "skipped", message=f"{status.upper()}: {result['message']}")
        elif status in ("warn", "waived"):
            waiver = result.get("waiver") or {}
            extra = f"\nwaived by {waiver.get('owner')} until {waiver.get('expires')}: {waiver.get('reason')}" if waiver else ""
            ET.SubElement(case, "system-out").text = f"{status.upper()}: {detail}{extra}"
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def summary_markdown(document: dict[str, Any]) -> str:
    run, summary, results = document["run"], document["summary"], document["results"]
    lines = [
        f"# acpcheck: {run['cluster']} — {VERDICT.get(run['exitCode'], 'unknown')}",
        "",
        f"Plan `{run['plan']}` · ACP {run['acp']} · profile `{run['profile']}` (fail on {run['failOn']} and above) · run `{run['id']}` · acpcheck {run['acpcheck']}",
        "",
        "| " + " | ".join(f"{STATUS_ICON[s]} {s}" for s in summary) + " |",
        "|" + "---|" * len(summary),
        "| " + " | ".join(str(n) for n in summary.values()) + " |",
        "",
    ]
    for waiver in document.get("expiredWaivers", []):
        lines.append(f"> **Expired waiver** for `{waiver['check']}` `[{waiver['target']}]` (owner {waiver['owner']}, expired {waiver['expires']}): it no longer applies and fails the run.")
        lines.append("")
    for status in SECTIONS:
        chosen = [r for r in results if r["status"] == status]
        if not chosen:
            continue
        lines += [f"## {STATUS_ICON[status]} {status.upper()} ({len(chosen)})", ""]
        for result in chosen:
            lines += [f"### {result['check']} — {result['title']} `[{result['target']}]`", "", f"Severity **{result['severity']}**.", ""]
            fence = "`" * max([3, *(len(run) + 1 for run in re.findall("`+", result["message"]))])
            lines += [fence, result["message"] or "(no message)", fence, ""]
            if result.get("waiver"):
                w = result["waiver"]
                lines += [f"Waived by {w['owner']} until {w['expires']}: {w['reason']}", ""]
            if status in ("fail", "warn", "waived"):
                lines += [f"**Fix:** {result['remediation']}", ""]
            lines += [f"Source: {best_ref(result, run['acp'])}", ""]
    passed = [r for r in results if r["status"] in ("pass", "skip")]
    if passed:
        lines += ["## Passed and not applicable", "", "| check | target | status | note |", "|---|---|---|---|"]
        for result in passed:
            note = result["message"].replace("|", "\\|") if result["status"] == "skip" else result["title"]
            lines.append(f"| {result['check']} | {result['target']} | {STATUS_ICON[result['status']]} {result['status']} | {note} |")
        lines.append("")
    return "\n".join(lines)


def report_html(document: dict[str, Any]) -> str:
    """The page of ``reports/report.html.j2``: findings first, then passes and skips."""
    run = document["run"]
    order = {s: i for i, s in enumerate((*SECTIONS, "pass", "skip"))}
    results = sorted(document["results"], key=lambda r: (order[r["status"]], r["check"], r["target"]))
    return _template("report.html.j2").render(
        run=run,
        summary=document["summary"],
        verdict=VERDICT.get(run["exitCode"], "unknown"),
        rows=[(r, best_ref(r, run["acp"])) for r in results],
    )


@functools.cache
def _template(name: str) -> jinja2.Template:
    # Imported here, not at the top: jinja2 costs ~25 ms, and only the controller
    # renders, once at the end of a run (xdist workers import this module too).
    import jinja2

    # Read through importlib.resources: the templates ship in the acpcheck.reports
    # package (top-level reports/ in a checkout), also inside a wheel or a zip.
    text = importlib.resources.files("acpcheck.reports").joinpath(name).read_text(encoding="utf-8")
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)
    return environment.from_string(text)


SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
#: Severity -> SARIF level of a FAIL (a WARN is always "warning").
SARIF_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}


def sarif(document: dict[str, Any]) -> dict[str, Any]:
    """FAIL, WARN and WAIVED results as SARIF 2.1.0, one rule per check.

    Every finding sits on the plan file: at the line of the field a check named in
    its ``at`` evidence (``plan.yaml:17``), else line 1; a node's findings also name
    the node as a logical location. WAIVED findings carry a suppression with the
    waiver's owner and reason.
    """
    run = document["run"]
    findings = [r for r in document["results"] if r["status"] in ("fail", "warn", "waived")]
    artifact, bases = artifact_location(run["plan"])
    rules: dict[str, dict[str, Any]] = {}
    results = []
    for finding in findings:
        rules.setdefault(
            finding["check"],
            {
                "id": finding["check"],
                "name": finding["check"].replace("-", ""),
                "shortDescription": {"text": finding["title"]},
                "help": {"text": finding["remediation"]},
                "helpUri": best_ref(finding, run["acp"]),
                "defaultConfiguration": {"level": SARIF_LEVEL.get(finding["severity"], "warning")},
                "properties": {"severity": finding["severity"], "area": finding["area"]},
            },
        )
        line = _plan_line(finding, run["plan"])
        entry: dict[str, Any] = {
            "ruleId": finding["check"],
            "level": "warning" if finding["status"] == "warn" else SARIF_LEVEL.get(finding["severity"], "warning"),
            "message": {"text": f"[{finding['target']}] {finding['message']}"},
            "locations": [{"physicalLocation": {"artifactLocation": artifact, "region": {"startLine": line}}}],
        }
        if finding["target"] != "plan":
            entry["locations"][0]["logicalLocations"] = [{"name": finding["target"], "kind": "resource"}]
        if finding.get("waiver"):
            waiver = finding["waiver"]
            entry["suppressions"] = [{"kind": "external", "justification": f"{waiver['reason']} (owner {waiver['owner']}, until {waiver['expires']})"}]
        results.append(entry)
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": {"name": "acpcheck", "version": run["acpcheck"], "informationUri": "https://docs.alauda.io/container_platform/4.3/", "rules": list(rules.values())}},
                "automationDetails": {"id": f"acpcheck/{run['profile']}/{run['id']}"},
                **({"originalUriBaseIds": bases} if bases else {}),
                "results": results,
            }
        ],
    }


def _plan_line(finding: dict[str, Any], plan_file: str) -> int:
    """The line of the finding's ``at`` evidence when it points into the plan file, else 1."""
    at = str((finding.get("evidence") or {}).get("at") or "")
    file, _, line = at.rpartition(":")
    return int(line) if file == plan_file and line.isdigit() and int(line) > 0 else 1


#: The base of relative artifact URIs: the directory acpcheck ran in.
SARIF_BASE = "SRCROOT"


def artifact_location(plan_file: str, cwd: Path | None = None) -> tuple[dict[str, str], dict[str, Any]]:
    """The SARIF ``artifactLocation`` of the plan file, and the ``originalUriBaseIds`` it needs.

    A real URI either way: relative to ``SRCROOT`` (the working directory) when the
    plan is under it, else an absolute ``file://`` URI; percent-encoded both ways."""
    cwd = (cwd or Path.cwd()).resolve()
    path = Path(plan_file)
    absolute = path if path.is_absolute() else cwd / path
    try:
        relative = Path(*absolute.parts).relative_to(cwd) if ".." not in path.parts else None
    except ValueError:
        relative = None
    if relative is not None:
        return {"uri": quote(relative.as_posix()), "uriBaseId": SARIF_BASE}, {SARIF_BASE: {"uri": cwd.as_uri() + "/"}}
    return {"uri": "file://" + quote(absolute.as_posix())}, {}
