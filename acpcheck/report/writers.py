"""Report files, all written from one results document (the results.json content).

- results.json  the fixed machine-readable format (DESIGN.md)
- junit.xml     one testcase per check and target, named by check id, for CI UIs
- summary.md    what a person reads first: verdict, then findings with fixes
- report.html   one self-contained page (no external assets)
- results.sarif SARIF 2.1.0 for code-scanning UIs: FAIL and WARN findings on the
                plan file, at the line of the field they are about when known

Nothing here sees the plan's secrets: the plan holds only references, and the
results hold only what checks chose to report.
"""

from __future__ import annotations

import html
import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from acpcheck.model.result import best_ref

STATUS_ICON = {"pass": "✅", "fail": "❌", "warn": "⚠️", "skip": "⏭️", "manual": "✋", "error": "💥", "waived": "🏳️"}
# Findings first, in the order a person should read them.
SECTIONS = ("fail", "error", "warn", "manual", "waived")
VERDICT = {0: "compliant", 1: "NOT compliant", 2: "assessment incomplete: some checks could not run", 5: "nothing selected"}


def write_all(out_dir: Path, document: dict[str, Any]) -> Path:
    """Write every report into ``out_dir`` (created); return the directory."""
    out_dir.mkdir(parents=True, exist_ok=True)
    _atomic_write(out_dir / "results.json", json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    _atomic_write(out_dir / "junit.xml", junit_xml(document))
    _atomic_write(out_dir / "summary.md", summary_markdown(document))
    _atomic_write(out_dir / "report.html", report_html(document))
    _atomic_write(out_dir / "results.sarif", json.dumps(sarif(document), indent=2, ensure_ascii=False) + "\n")
    return out_dir


def _atomic_write(path: Path, text: str) -> None:
    # A CI job that reads the file while a run is finishing never sees half of it.
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


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
            lines += ["```", result["message"] or "(no message)", "```", ""]
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


_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.5em}table{border-collapse:collapse;width:100%}td,th{padding:.35em .6em;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}
.s{font-weight:600;text-transform:uppercase;font-size:.8em;padding:.15em .5em;border-radius:3px;color:#fff}
.pass{background:#2e7d32}.fail{background:#c62828}.warn{background:#ef6c00}.skip{background:#757575}.manual{background:#6a1b9a}.error{background:#4e342e}.waived{background:#1565c0}
pre{white-space:pre-wrap;margin:.3em 0;font-size:.92em}details summary{cursor:pointer;color:#555}.counts span{margin-right:1em}
"""


def report_html(document: dict[str, Any]) -> str:
    run, summary, results = document["run"], document["summary"], document["results"]
    e = html.escape
    order = {s: i for i, s in enumerate((*SECTIONS, "pass", "skip"))}
    rows = []
    for r in sorted(results, key=lambda r: (order[r["status"]], r["check"], r["target"])):
        detail = ""
        if r["status"] != "pass":
            detail = f"<pre>{e(r['message'])}</pre>"
        if r["status"] in ("fail", "warn", "waived"):
            detail += f"<div><b>Fix:</b> {e(r['remediation'])}</div>"
        links = f'<a href="{e(best_ref(r, run["acp"]))}">source</a>'
        rows.append(
            f"<tr><td><span class='s {r['status']}'>{r['status']}</span></td><td>{e(r['check'])}<br><small>{e(r['severity'])}</small></td>"
            f"<td>{e(r['target'])}</td><td><b>{e(r['title'])}</b>{detail}<details><summary>why</summary>{links}</details></td></tr>"
        )
    counts = "".join(f"<span class='s {s}'>{s} {n}</span> " for s, n in summary.items() if n)
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>acpcheck {e(run['cluster'])}</title><style>{_CSS}</style></head><body>"
        f"<h1>acpcheck: {e(run['cluster'])} — {e(VERDICT.get(run['exitCode'], 'unknown'))}</h1>"
        f"<p>Plan <code>{e(run['plan'])}</code> · ACP {e(run['acp'])} · profile <code>{e(run['profile'])}</code> · run <code>{e(run['id'])}</code></p>"
        f"<p class='counts'>{counts}</p>"
        "<table><tr><th>status</th><th>check</th><th>target</th><th>finding</th></tr>" + "".join(rows) + "</table></body></html>\n"
    )


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
        uri, line = _plan_location(finding, run["plan"])
        entry: dict[str, Any] = {
            "ruleId": finding["check"],
            "level": "warning" if finding["status"] == "warn" else SARIF_LEVEL.get(finding["severity"], "warning"),
            "message": {"text": f"[{finding['target']}] {finding['message']}"},
            "locations": [{"physicalLocation": {"artifactLocation": {"uri": uri}, "region": {"startLine": line}}}],
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
                "results": results,
            }
        ],
    }


def _plan_location(finding: dict[str, Any], plan_file: str) -> tuple[str, int]:
    """(file, line) from the finding's ``at`` evidence when it points into the plan file."""
    at = str((finding.get("evidence") or {}).get("at") or "")
    file, _, line = at.rpartition(":")
    if file == plan_file and line.isdigit():
        return file, int(line)
    return plan_file, 1
