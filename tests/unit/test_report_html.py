"""report.html: rendered from reports/report.html.j2 with autoescape, one self-contained page."""

from __future__ import annotations

import importlib.resources
import re
from html.parser import HTMLParser
from typing import Any

from acpcheck.model.result import Status
from acpcheck.report.writers import SECTIONS, VERDICT, report_html

HOSTILE = "<script>alert('x')</script> & \"quoted\""
STATUSES = [str(s) for s in Status]


def _result(status: str, check: str, **changes: Any) -> dict[str, Any]:
    waiver = {"check": check, "target": "plan", "reason": "accepted", "owner": "ops@example.com", "expires": "2099-01-01"}
    return {
        "check": check,
        "title": f"title of {check}",
        "area": "NET",
        "severity": "high",
        "status": status,
        "target": "plan",
        "message": f"message of {check}\nsecond line",
        "evidence": {},
        "remediation": f"remediation of {check}",
        "refs": ["https://docs.alauda.io/container_platform/4.2/a.html", "https://docs.alauda.io/container_platform/4.3/b.html"],
        "waiver": waiver if status == "waived" else None,
        "duration": 0.001,
    } | changes


def _document(results: list[dict[str, Any]], exit_code: int = 1) -> dict[str, Any]:
    summary = {s: sum(r["status"] == s for r in results) for s in STATUSES}
    run = {"id": "20261121T080000Z-1a2b", "started": "2026-11-21T08:00:00Z", "finished": "2026-11-21T08:00:01Z", "profile": "plan", "plan": "plan.yaml", "cluster": "prod-east", "acp": "4.3", "acpcheck": "0.1.0", "failOn": "medium", "exitCode": exit_code}
    return {"schema": "acpcheck/results/v1", "run": run, "summary": summary, "expiredWaivers": [], "results": results}


class _Page(HTMLParser):
    """Rows of the findings table as (status, check, target, text of the finding cell, links)."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.cells: list[str] | None = None
        self.links: list[str] = []
        self.external: list[str] = []
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "tr":
            self.cells = []
        elif tag == "td" and self.cells is not None:
            self.cells.append("")
        elif tag == "a":
            self.links.append(values.get("href") or "")
        elif tag in ("script", "link", "img", "iframe") or values.get("src"):
            self.external.append(tag)
        self._in_title = tag == "title"

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr" and self.cells:
            self.rows.append(self.cells)
        if tag == "tr":
            self.cells = None
        self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        if self.cells:
            self.cells[-1] += data


def _parse(page: str) -> _Page:
    parser = _Page()
    parser.feed(page)
    parser.close()
    return parser


def test_every_status_is_shown_findings_first_with_fix_and_source() -> None:
    results = [_result(status, f"ACP-NET-{i:03d}") for i, status in enumerate(reversed(STATUSES), start=1)]
    page = report_html(_document(results))
    parsed = _parse(page)
    assert [row[0] for row in parsed.rows] == [*SECTIONS, "pass", "skip"]
    for row in parsed.rows:
        status, check, finding = row[0], row[1], row[3]
        assert check.startswith("ACP-NET-") and check.endswith("high")
        assert ("message of" in finding) == (status != "pass")
        assert ("Fix: remediation of" in finding) == (status in ("fail", "warn", "waived"))
    # The source is the page for the plan's ACP version (4.3), once per row.
    assert parsed.links == ["https://docs.alauda.io/container_platform/4.3/b.html"] * len(results)
    counts = re.search(r"<p class='counts'>(.*?)</p>", page, re.S)
    assert counts is not None and all(f"{s} 1" in counts.group(1) for s in STATUSES)
    assert f"acpcheck: prod-east — {VERDICT[1]}" in page
    assert "<pre>message of ACP-NET-001\nsecond line</pre>" in page  # line breaks kept verbatim


def test_everything_from_the_results_is_escaped() -> None:
    hostile = _result("fail", "ACP-NET-001", title=HOSTILE, message=HOSTILE, remediation=HOSTILE, target=f"node:{HOSTILE}", refs=[f'https://x/"><script>{HOSTILE}'])
    document = _document([hostile])
    document["run"] |= {"cluster": HOSTILE, "plan": HOSTILE, "profile": HOSTILE, "id": HOSTILE}
    page = report_html(document)
    assert "<script" not in page and "\"quoted\"" not in page
    parsed = _parse(page)
    assert parsed.external == [] and parsed.title == f"acpcheck {HOSTILE}"
    assert parsed.rows[0][2] == f"node:{HOSTILE}" and HOSTILE in parsed.rows[0][3]
    assert parsed.links == [f'https://x/"><script>{HOSTILE}']


def test_unknown_exit_code_and_empty_run() -> None:
    page = report_html(_document([], exit_code=42))
    assert "acpcheck: prod-east — unknown" in page and _parse(page).rows == []


def test_template_ships_in_the_reports_package() -> None:
    template = importlib.resources.files("acpcheck.reports").joinpath("report.html.j2").read_text(encoding="utf-8")
    assert "{{ r.message }}" in template and "|safe" not in template
