"""Report files, all written from one results document (the results.json content).

- results.json  the fixed machine-readable format (DESIGN.md)
- junit.xml     one testcase per check and target, named by check id, for CI UIs
- summary.md    what a person reads first: verdict, then findings with fixes
- report.html   one self-contained page (no external assets)

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
