"""report.html: rendered from reports/report.html.j2 with autoescape, one self-contained page.

What the page holds, parsed as HTML (tests/unit/test_report_browser.py opens it in
Chromium): every status, findings first, each with its rationale and its fix;
repeats grouped; expired waivers and the verdict; filters; nothing fetched.
"""

from __future__ import annotations

import importlib.resources
from html.parser import HTMLParser
from typing import Any

from acpcheck.model.result import Status
from acpcheck.report.document import VERDICT, Context
from acpcheck.report.writers import SECTIONS, groups, paragraphs, report_html

HOSTILE = "<script>alert('x')</script> & \"quoted\""
STATUSES = [str(s) for s in Status]
WHY = "Two ranges that overlap make a ClusterIP ambiguous.\n\nThe form refuses it."


def _result(status: str, check: str, **changes: Any) -> dict[str, Any]:
    waiver = {
        "check": check,
        "target": "plan",
        "reason": "accepted",
        "owner": "ops@example.com",
        "expires": "2099-01-01",
    }
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
        "refs": [
            "https://docs.alauda.io/container_platform/4.2/a.html",
            "https://docs.alauda.io/container_platform/4.3/b.html",
        ],
        "waiver": waiver if status == "waived" else None,
        "duration": 0.001,
    } | changes


def _document(
    results: list[dict[str, Any]], exit_code: int = 1, expired: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    summary = {s: sum(r["status"] == s for r in results) for s in STATUSES}
    run = {
        "id": "20261121T080000Z-1a2b",
        "started": "2026-11-21T08:00:00Z",
        "finished": "2026-11-21T08:00:01Z",
        "profile": "plan",
        "plan": "plan.yaml",
        "cluster": "prod-east",
        "acp": "4.3",
        "acpcheck": "0.1.0",
        "failOn": "medium",
        "exitCode": exit_code,
    }
    return {
        "schema": "acpcheck/results/v1",
        "run": run,
        "summary": summary,
        "expiredWaivers": expired or [],
        "results": results,
    }


class _Page(HTMLParser):
    """The result groups of the page: status, check, targets, the text of their parts, links."""

    def __init__(self) -> None:
        super().__init__()
        self.groups: list[dict[str, Any]] = []
        self.links: list[str] = []
        self.scripts: list[dict[str, str | None]] = []
        self.external: list[str] = []
        self.meta: list[dict[str, str | None]] = []
        self.text: dict[str, str] = {}
        self.title = ""
        self._open: list[str] = []
        self._part: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        classes = (values.get("class") or "").split()
        if tag == "section" and "group" in classes:
            self.groups.append(
                {
                    "status": values["data-status"],
                    "check": values["data-check"],
                    "targets": values["data-targets"],
                    "why": "",
                    "fix": "",
                    "msg": "",
                    "text": "",
                }
            )
        if tag == "a":
            self.links.append(values.get("href") or "")
        if tag == "script":
            self.scripts.append(values)
        if tag in ("link", "img", "iframe", "object") or values.get("src"):
            self.external.append(tag)
        if tag == "meta":
            self.meta.append(values)
        for part in ("why", "fix", "msg"):
            if part in classes:
                self._part, self._part_tag = part, tag
        if values.get("id"):
            self._open.append(values["id"] or "")
            self.text.setdefault(values["id"] or "", "")
        elif tag not in ("br", "input", "meta", "option"):
            self._open.append("")
        self._in_title = tag == "title"

    def handle_endtag(self, tag: str) -> None:
        if tag == getattr(self, "_part_tag", None):
            self._part = self._part_tag = None
        if self._open:
            self._open.pop()
        self._in_title = False

    def handle_data(self, data: str) -> None:
        if getattr(self, "_in_title", False):
            self.title += data
        if self.groups:
            self.groups[-1]["text"] += data
            if self._part:
                self.groups[-1][self._part] += data
        for name in filter(None, self._open):
            self.text[name] += data


def _parse(page: str) -> _Page:
    parser = _Page()
    parser.feed(page)
    parser.close()
    return parser


def test_every_status_findings_first_each_with_why_and_fix() -> None:
    results = [_result(status, f"ACP-NET-{i:03d}") for i, status in enumerate(reversed(STATUSES), start=1)]
    context = Context({r["check"]: WHY for r in results})
    parsed = _parse(report_html(_document(results), context))
    assert [g["status"] for g in parsed.groups] == [*SECTIONS, "pass", "skip"]
    for group in parsed.groups:
        assert group["why"] == "Two ranges that overlap make a ClusterIP ambiguous.The form refuses it.", group
        assert ("message of" in group["msg"]) == (group["status"] != "pass")
        assert (group["fix"] == f"remediation of {group['check']}") == (group["status"] != "error")
    # Sources: the page for the plan's ACP version (4.3) first, then the others.
    assert parsed.links[:2] == [
        "https://docs.alauda.io/container_platform/4.3/b.html",
        "https://docs.alauda.io/container_platform/4.2/a.html",
    ]
    assert parsed.text["verdict"] == f"{VERDICT[1]} (exit code 1)"
    failing = parsed.groups[0]
    assert failing["msg"] == f"message of {failing['check']}\nsecond line"  # line breaks kept verbatim


def test_repeats_are_grouped_with_their_targets() -> None:
    swap = [
        _result("fail", "ACP-NODE-008", target=f"node:n{i:02d}", area="NODE", message="swap is on") for i in range(40)
    ]
    unreachable = [
        _result(
            "error",
            f"ACP-NODE-{i:03d}",
            target="node:n07",
            area="NODE",
            message="could not check: unreachable: refused",
        )
        for i in range(10, 15)
    ]
    mixed = [
        _result("fail", "ACP-NODE-017", target=f"node:n{i:02d}", area="NODE", message=f"n{i:02d} lacks its IP")
        for i in range(3)
    ]
    document = _document(swap + unreachable + mixed)
    found = groups(document["results"])
    assert [(g["kind"], g["status"], g["check"], len(g["members"])) for g in found] == [
        ("check", "fail", "ACP-NODE-008", 40),
        ("check", "fail", "ACP-NODE-017", 3),
        ("target", "error", "ACP-NODE-010", 5),
    ]
    parsed = _parse(report_html(document))
    assert (
        parsed.groups[0]["text"].count("swap is on") == 1
        and parsed.groups[0]["text"].count("node:n") == 40
        and "40 targets" in parsed.groups[0]["text"]
    )
    assert all(f"n{i:02d} lacks its IP" in parsed.groups[1]["text"] for i in range(3))
    assert (
        "5 checks could not run on node:n07" in parsed.groups[2]["text"]
        and parsed.groups[2]["text"].count("unreachable: refused") == 1
    )


def test_expired_waivers_errors_and_verdict_are_shown() -> None:
    expired = [
        {
            "check": "ACP-NET-012",
            "target": "node:*",
            "reason": "long gone",
            "owner": "ops@example.com",
            "expires": "2000-01-01",
        }
    ]
    page = _parse(
        report_html(
            _document([_result("pass", "ACP-NET-001"), _result("error", "ACP-NET-002")], exit_code=1, expired=expired)
        )
    )
    assert (
        "ACP-NET-012" in page.text["expired"]
        and "ops@example.com" in page.text["expired"]
        and "fail the run" in page.text["expired"]
    )
    assert "1 result(s) could not be determined" in page.text["incomplete"]
    assert page.text["verdict"] == "NOT compliant (exit code 1)"


def test_self_contained_phone_ready_and_filterable() -> None:
    page = report_html(_document([_result(s, f"ACP-NET-{i:03d}") for i, s in enumerate(STATUSES, 1)]))
    parsed = _parse(page)
    assert {"name": "viewport", "content": "width=device-width, initial-scale=1"} in parsed.meta
    assert parsed.external == [] and parsed.scripts == [{"id": "filter-script"}]  # one inline script, nothing fetched
    assert all(link.startswith("https://docs.alauda.io/") for link in parsed.links)
    for control in ('name="status"', 'name="area"', 'name="target"', 'type="search"'):
        assert control in page


def test_everything_from_the_results_is_escaped() -> None:
    hostile = _result(
        "fail",
        "ACP-NET-001",
        title=HOSTILE,
        message=HOSTILE,
        remediation=HOSTILE,
        target=f"node:{HOSTILE}",
        refs=[f'https://x/"><script>{HOSTILE}'],
    )
    document = _document([hostile])
    document["run"] |= {"cluster": HOSTILE, "plan": HOSTILE, "profile": HOSTILE, "id": HOSTILE}
    page = report_html(document, Context({"ACP-NET-001": HOSTILE}))
    assert "<script>" not in page and '"quoted"' not in page
    parsed = _parse(page)
    assert (
        parsed.external == [] and parsed.title == f"acpcheck {HOSTILE}" and parsed.scripts == [{"id": "filter-script"}]
    )
    (group,) = parsed.groups
    assert (
        group["targets"] == f'["node:{HOSTILE}"]'.replace('"quoted"', '\\"quoted\\"')
        and HOSTILE in group["msg"]
        and group["why"] == HOSTILE
    )
    assert parsed.links == [f'https://x/"><script>{HOSTILE}']


def test_unknown_exit_code_and_empty_run() -> None:
    parsed = _parse(report_html(_document([], exit_code=42)))
    assert parsed.text["verdict"] == "unknown (exit code 42)" and parsed.groups == []


def test_rationale_paragraphs_are_reflowed() -> None:
    assert paragraphs("One line\nwrapped.\n\n- a list item\n  continued\n- another") == [
        "One line wrapped.",
        "- a list item continued",
        "- another",
    ]


def test_template_ships_in_the_reports_package() -> None:
    template = importlib.resources.files("acpcheck.reports").joinpath("report.html.j2").read_text(encoding="utf-8")
    assert "{{ g.message }}" in template and "|safe" not in template and "http://" not in template
