"""The reports of a fleet run: one verdict per cluster, first, in every file.

The document is the three-cluster fleet of tests/data/fleet_documents.py: ``global``
ready, ``east`` blocked by a FAIL (its live Kubernetes version), ``west`` incomplete
(its API server down: every check ERROR with one reason). Each report is read back the
way its consumer reads it: report.html parsed (and opened in headless Chromium when it
is installed), junit.xml against junit-10.xsd, results.sarif against the SARIF 2.1.0
schema, results.json against reports/results.schema.json, Allure's labels through
allure-python-commons' own result objects.
"""

from __future__ import annotations

import copy
import hashlib
import json
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jsonschema
import pytest
import xmlschema
from allure_commons.model2 import Label
from allure_commons.model2 import TestResult as AllureResult

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "data")) if str(ROOT / "tests" / "data") not in sys.path else None
import fleet_documents as fleet  # noqa: E402  (tests/data: fleet results documents)

from acpcheck.report import writers  # noqa: E402
from acpcheck.report.allure import AllureAdapter, environment, marks  # noqa: E402
from acpcheck.report.codequality import codequality  # noqa: E402
from acpcheck.report.diff import NEW, STILL, Baseline, baseline_state, read_results  # noqa: E402
from acpcheck.report.document import (  # noqa: E402
    RESULTS_SCHEMA,
    Context,
    cluster_verdict,
    clusters,
)
from acpcheck.report.terminal import summary_lines  # noqa: E402

XSD = xmlschema.XMLSchema10(ROOT / "tests" / "data" / "junit-10.xsd")
SARIF_SCHEMA = json.loads((ROOT / "tests" / "data" / "sarif-schema-2.1.0.json").read_text())
RESULTS_JSON_SCHEMA = json.loads((ROOT / "reports" / "results.schema.json").read_text())
EXPECTED = [("global", "ready"), ("east", "blocked"), ("west", "incomplete")]


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return fleet.three_clusters()


@pytest.fixture(scope="module")
def files(document: dict[str, Any]) -> dict[str, str]:
    return writers.render_all(document)


# -- the verdict, computed in one place ------------------------------------------------------


def test_each_cluster_gets_its_verdict_and_blockers_in_the_fleet_order(document: dict[str, Any]) -> None:
    found = clusters(document)
    assert [(c.name, c.verdict) for c in found] == EXPECTED
    ready, east, west = found
    assert ready.blockers == "" and (ready.role, ready.type, ready.plan) == (
        "global",
        "on-premise",
        "plans/global.yaml",
    )
    assert east.blockers == f"ACP-UPG-010: {fleet.EAST_FAIL}"
    assert west.blockers == f"3 checks could not run: {fleet.WEST_DOWN}" and west.discovered
    # Each cluster holds only its own results: node:cp1 of global is not east's.
    assert [r["cluster"] for r in east.results] == ["east"] * 3
    assert east.summary["fail"] == 1 and west.summary["error"] == 3 and ready.summary["warn"] == 1


def test_the_verdict_rules() -> None:
    def of(*statuses: str) -> str:
        return cluster_verdict([fleet.result("c", "ACP-UPG-010", s, "cluster:c", f"said {s}") for s in statuses])[0]

    assert of("pass", "warn", "skip", "waived") == "ready"
    assert of("pass", "manual") == "incomplete"  # what a person must verify is not ready
    assert of("error", "fail") == "blocked"  # a FAIL blocks whatever else is unknown
    assert cluster_verdict([]) == ("incomplete", "no check ran on it")  # nothing checked is never ready
    assert cluster_verdict([fleet.result("c", "ACP-UPG-010", "pass", "cluster:c")], run_incomplete=True) == (
        "incomplete",
        "the run did not complete",
    )
    # A few words: the first three findings, the rest counted, a long message cut.
    failing = [fleet.result("c", f"ACP-UPG-0{n}", "fail", "cluster:c", "x" * 300) for n in range(10, 15)]
    said, blockers = cluster_verdict(failing)
    assert said == "blocked" and blockers.endswith("; and 2 more") and len(blockers) < 400


def test_a_fleet_rule_counts_for_the_global_cluster(document: dict[str, Any]) -> None:
    changed = copy.deepcopy(document)
    rule = next(r for r in changed["results"] if r["target"] == "fleet:prod")
    rule.update(status="fail", message="workload cluster east is outside 1.32-1.34: upgrade it first")
    assert [(c.name, c.verdict) for c in clusters(changed)][0] == ("global", "blocked")


def test_a_v1_document_is_one_cluster_of_run_cluster(document: dict[str, Any]) -> None:
    old = fleet.v1(document)
    old["run"]["cluster"] = "staging-west"
    (only,) = clusters(old)
    assert only.name == "staging-west" and only.verdict == "blocked" and len(only.results) == len(old["results"])


# -- report.html -------------------------------------------------------------------------------


class _Page(HTMLParser):
    """The first table's rows, every element id, the links, and which cluster section each group is in."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[str] = []
        self.rows: list[dict[str, Any]] = []
        self.ids: list[str] = []
        self.sections: dict[str, list[str]] = {}
        self.first_group_at: int | None = None
        self._in_row: dict[str, Any] | None = None
        self._cluster: str | None = None
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        classes = (values.get("class") or "").split()
        if values.get("id"):
            self.ids.append(values["id"] or "")
        if tag == "table":
            self.tables.append(values.get("id") or "")
        if tag == "tr" and values.get("data-cluster"):
            self._in_row = {"cluster": values["data-cluster"], "verdict": values["data-verdict"], "href": None}
            self.rows.append(self._in_row)
        if tag == "a" and self._in_row is not None:
            self._in_row["href"] = values.get("href")
        if tag == "section":
            if "cluster" in classes:
                self._cluster = values["id"]
                self.sections[values["id"] or ""] = []
            elif "group" in classes:
                self.first_group_at = self.first_group_at or len(self.ids)
                if self._cluster:
                    self.sections[self._cluster].append(f"{values['data-status']} {values['data-check']}")

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":
            self._in_row = None


def test_report_html_opens_with_one_row_per_cluster_linking_to_its_findings(files: dict[str, str]) -> None:
    page = _Page()
    page.feed(files["report.html"])
    assert page.tables[0] == "clusters"
    assert [(row["cluster"], row["verdict"]) for row in page.rows] == EXPECTED
    # The table comes before any finding, and every link leads to that cluster's findings.
    assert page.ids.index("clusters") < (page.first_group_at or 0)
    assert len(page.ids) == len(set(page.ids))
    for row in page.rows:
        anchor = row["href"].removeprefix("#")
        assert anchor in page.ids, row
    assert "fail ACP-UPG-010" in page.sections["cluster-east"]
    assert page.sections["cluster-west"] == ["error ACP-UPG-010"]  # one group: three checks, one reason
    assert "fail ACP-UPG-010" not in page.sections["cluster-global"]
    assert (
        "Fleet <code>fleet.yaml</code>" in files["report.html"]
        and "<h1>acpcheck: fleet prod</h1>" in files["report.html"]
    )


def test_report_html_links_work_in_chromium(files: dict[str, str], tmp_path: Path) -> None:
    from test_report_browser import CHROMIUM, PHONE, Chromium  # the browser driver of the report's own tests

    if CHROMIUM is None:
        pytest.skip("chromium is not installed (scripts/setup-system.sh installs it)")
    page = tmp_path / "report.html"
    page.write_text(files["report.html"])
    browser = Chromium(tmp_path / "profile")
    try:
        browser.open(page.as_uri(), PHONE)
        rows = browser.js(
            "[...document.querySelectorAll('#clusters tbody tr')].map(r => [r.cells[0].textContent, "
            "r.cells[3].textContent])"
        )
        assert [tuple(row) for row in rows] == EXPECTED
        # Readable on a phone: nothing wider than the screen, no cluster name broken over two lines.
        assert browser.js("document.documentElement.scrollWidth") <= PHONE["width"]
        assert browser.js("document.querySelector(\"#clusters a[href='#cluster-west']\").getClientRects().length") == 1
        browser.click("#clusters a[href='#cluster-west']")
        browser.js("new Promise(r => setTimeout(r, 200))")
        assert browser.js("location.hash") == "#cluster-west"
        # The page scrolled to the linked section: its heading is on screen.
        top = browser.js("document.getElementById('cluster-west').getBoundingClientRect().top")
        assert browser.js("window.scrollY") > 0 and 0 <= top < browser.js("window.innerHeight"), top
        # The filters still work across the clusters' sections.
        browser.click("#filters input[value=pass]")
        shown = browser.js("[...document.querySelectorAll('#results .group')].filter(g => !g.hidden).length")
        assert shown == 3  # global's WARN, east's FAIL, west's ERROR
        # ...and one cluster can be chosen: the other clusters' sections are hidden.
        browser.js(
            "(() => { const s = document.querySelector('#filters select[name=cluster]'); s.value = 'east'; "
            "s.dispatchEvent(new Event('change', {bubbles: true})); })()"
        )
        assert browser.js(
            "[...document.querySelectorAll('#results .cluster')].filter(s => !s.hidden).map(s => s.id)"
        ) == ["cluster-east"]
        assert (
            browser.js("document.getElementById('shown').value") == "1 of 8 shown"
        )  # east's FAIL (its passes are unticked)
        browser.screenshot(tmp_path / "fleet-report.png", PHONE["width"])
        print(f"screenshot: {tmp_path / 'fleet-report.png'}")
    finally:
        browser.close()


# -- summary.md --------------------------------------------------------------------------------


def test_summary_md_has_the_cluster_table_then_each_cluster(files: dict[str, str]) -> None:
    text = files["summary.md"]
    lines = text.splitlines()
    assert lines[0] == "# acpcheck: fleet prod — NOT compliant"
    header = lines.index("| Cluster | Role | Type | Verdict | Blockers |")
    rows = [line.split(" | ") for line in lines[header + 2 : header + 5]]
    assert [(row[0].removeprefix("| "), row[3]) for row in rows] == [
        ("[global](#cluster-global)", "✅ ready"),
        ("[east](#cluster-east)", "❌ blocked"),
        ("[west](#cluster-west)", "⚠️ incomplete"),
    ]
    assert rows[2][2] == "imported (discovered)" and fleet.WEST_DOWN in rows[2][4]
    # Each link's target is a heading that GitHub and GitLab anchor as #cluster-<name>, in the table's order.
    headings = [line for line in lines if line.startswith("## Cluster ")]
    assert headings == ["## Cluster global", "## Cluster east", "## Cluster west"]
    east = text.index("## Cluster east")
    assert (
        east
        < text.index("#### ACP-UPG-010 — the live version is in range `[cluster:east]`")
        < text.index("## Cluster west")
    )


def test_summary_md_of_a_big_fleet_stays_within_a_comment(document: dict[str, Any]) -> None:
    # 400 clusters, each blocked by a finding whose message names it: nothing can be said once.
    results = [
        fleet.result(f"c{n:03d}", f"ACP-UPG-0{10 + k}", "fail", f"cluster:c{n:03d}", f"c{n:03d} is off by {k} " * 20)
        for n in range(400)
        for k in range(3)
    ]
    big = fleet.document(results)
    big["run"]["fleet"]["clusters"] = [fleet.member(f"c{n:03d}", "workload", "on-premise", None) for n in range(400)]
    text = writers.summary_markdown(big)
    assert len(text) < 65_536
    assert "more clusters (" in text and "blocked) in report.html" in text
    assert "| [c000](#cluster-c000) |" in text


# -- the terminal ------------------------------------------------------------------------------


def test_the_terminal_says_one_line_per_cluster(document: dict[str, Any]) -> None:
    lines = [text for text, _ in summary_lines(document, 200, "out")]
    verdicts = [line for line in lines if line.split()[:1] in (["global"], ["east"], ["west"])]
    assert verdicts == [
        "global  READY",
        f"east    BLOCKED     ACP-UPG-010: {fleet.EAST_FAIL}",
        f"west    INCOMPLETE  3 checks could not run: {fleet.WEST_DOWN}",
    ]
    assert lines[-2].startswith("fleet prod: NOT compliant — 5 pass, 1 fail, 1 warn, 3 error")
    # A finding names its cluster.
    assert "FAIL   ACP-UPG-010 [east: cluster:east] the live version is in range" in lines
    colours = {text.split()[0]: markup for text, markup in summary_lines(document, 200, "out") if "READY" in text}
    assert colours == {"global": {"green": True}}


# -- junit.xml ---------------------------------------------------------------------------------


def test_junit_has_one_valid_testsuite_per_cluster(files: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "junit.xml").write_text(files["junit.xml"])
    XSD.validate(str(tmp_path / "junit.xml"))
    root = ET.fromstring(files["junit.xml"])
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["acpcheck global", "acpcheck east", "acpcheck west"]
    props = [{p.get("name"): p.get("value") for p in s.iter("property")} for s in suites]
    assert [(p["cluster"], p["verdict"]) for p in props] == EXPECTED
    assert props[1]["blockers"] == f"ACP-UPG-010: {fleet.EAST_FAIL}" and props[0]["liveEvidence.serverVersion"]
    assert [(s.get("tests"), s.get("failures"), s.get("errors")) for s in suites] == [
        ("4", "0", "0"),
        ("3", "1", "0"),
        ("3", "0", "3"),
    ]
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("10", "1", "3")
    # The same node in two clusters: a case in each suite.
    assert [len([c for c in s.iter("testcase") if "[node:cp1]" in (c.get("name") or "")]) for s in suites] == [1, 1, 0]


def test_junit_puts_what_belongs_to_no_cluster_in_a_suite_of_the_fleet(
    document: dict[str, Any], tmp_path: Path
) -> None:
    changed = copy.deepcopy(document)
    changed["expiredWaivers"] = [
        {"check": "ACP-UPG-012", "target": "*", "reason": "old", "owner": "ops@example.com", "expires": "2020-01-01"}
    ]
    changed["incomplete"] = "interrupted"
    (tmp_path / "junit.xml").write_text(writers.junit_xml(changed))
    XSD.validate(str(tmp_path / "junit.xml"))
    suites = ET.parse(tmp_path / "junit.xml").getroot().findall("testsuite")
    assert [s.get("name") for s in suites][-1] == "acpcheck prod"
    assert (suites[-1].get("failures"), suites[-1].get("errors")) == ("1", "1")


# -- results.sarif -----------------------------------------------------------------------------


def sarif_errors(log: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft4Validator(SARIF_SCHEMA)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(log)]


def test_sarif_has_one_valid_run_per_cluster(files: dict[str, str]) -> None:
    log = json.loads(files["results.sarif"])
    assert sarif_errors(log) == []
    runs = log["runs"]
    assert [(r["properties"]["cluster"], r["properties"]["verdict"].split(":")[0]) for r in runs] == EXPECTED
    # A code-scanning category per cluster: GitHub refuses two runs of one tool and category.
    ids = [r["automationDetails"]["id"] for r in runs]
    assert ids == [f"acpcheck/upgrade/{name}/20261207T200000Z-aaaa" for name, _ in EXPECTED]
    east, west = runs[1], runs[2]
    assert [(r["ruleId"], r["level"]) for r in east["results"]] == [("ACP-UPG-010", "error")]
    assert east["invocations"][0]["executionSuccessful"] is True
    assert west["results"] == [] and west["invocations"][0]["executionSuccessful"] is False
    assert fleet.WEST_DOWN in west["invocations"][0]["toolExecutionNotifications"][0]["message"]["text"]
    assert runs[0]["invocations"][0]["properties"]["liveEvidence"]["server"] == "https://global.example.com:6443"
    # A member without a plan file: its findings sit on the fleet file.
    assert east["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "fleet.yaml"


def test_sarif_baseline_state_is_per_cluster(document: dict[str, Any], tmp_path: Path) -> None:
    """--baseline on a fleet: a finding is known by (cluster, check, target), so the same
    check failing on the same target name in another cluster is new, not "unchanged"."""
    old = copy.deepcopy(document)
    old["results"].append(fleet.result("east", "ACP-UPG-010", "fail", "plan", "east's plan says 1.34"))
    (tmp_path / "old.json").write_text(json.dumps(old))
    later = copy.deepcopy(document)
    later["results"].append(fleet.result("global", "ACP-UPG-010", "fail", "plan", "east's plan says 1.34"))
    baseline = Baseline.read(str(tmp_path / "old.json"))
    later["run"]["baseline"] = baseline.record(later["results"], later["run"])
    jsonschema.Draft202012Validator(RESULTS_JSON_SCHEMA).validate(later)
    assert later["run"]["baseline"]["counts"] == {"new": 1, "fixed": 1, "changed": 0, "still-failing": 5}
    log = writers.sarif(later, Context())
    assert sarif_errors(log) == []
    states = {
        (run["properties"]["cluster"], r["ruleId"], r["properties"]["target"]): r["baselineState"]
        for run in log["runs"]
        for r in run["results"]
    }
    assert states == {
        ("global", "ACP-UPG-012", "cluster:global"): "unchanged",
        ("global", "ACP-UPG-010", "plan"): "new",
        ("east", "ACP-UPG-010", "cluster:east"): "unchanged",
    }
    assert (
        baseline.state_of(later["results"][-1], later["run"])
        == NEW
        == baseline_state(later["results"][-1], later["run"])
    )
    assert baseline.state_of(later["results"][4], later["run"]) == STILL


# -- Allure ------------------------------------------------------------------------------------


def test_allure_parent_suite_is_the_cluster() -> None:
    def labels(cluster: str | None) -> dict[str, str]:
        found = marks("ACP-UPG-010", "t", "UPG", "node:cp1", "high", "why", "fix", [fleet.REF], cluster=cluster)
        return {m.kwargs["label_type"]: m.args[0] for m in found if m.name == "allure_label"}

    assert labels("east")["parentSuite"] == "east" and labels("east")["cluster"] == "east"
    assert labels(None)["parentSuite"] == "acpcheck" and "cluster" not in labels(None)  # one plan: as before
    # The adapter tells a fleet's node cp1 of east from cp1 of global.
    adapter = AllureAdapter("medium", "4.3")
    for cluster, status in (("global", "pass"), ("east", "fail")):
        data = fleet.result(cluster, "ACP-UPG-011", status, "node:cp1", f"{cluster} said so")
        adapter.pytest_runtest_logreport(SimpleNamespace(acp_result=data))  # type: ignore[arg-type]
    statuses = {}
    for cluster in ("global", "east"):
        result = AllureResult(
            name="x",
            fullName="checks.test_upgrade#check_x",
            labels=[
                Label("check_id", "ACP-UPG-011"),
                Label("target", "node:cp1"),
                Label("cluster", cluster),
                Label("parentSuite", cluster),
            ],
        )
        adapter.report_result(result)
        statuses[cluster] = (result.status, result.statusDetails and result.statusDetails.message)
    assert statuses == {
        "global": ("passed", None),
        "east": ("failed", "FAIL (high, fails at medium and above): east said so"),
    }


def test_allure_environment_names_each_cluster_verdict(document: dict[str, Any]) -> None:
    lines = environment(document).splitlines()
    assert "fleet=fleet.yaml" in lines and "fleet\\ name=prod" in lines
    assert "cluster\\ global=ready" in lines
    assert any(line.startswith("cluster\\ east=blocked: ACP-UPG-010") for line in lines)


# -- codequality.json --------------------------------------------------------------------------


def test_codequality_fingerprints_include_the_cluster(document: dict[str, Any]) -> None:
    both = copy.deepcopy(document)
    both["results"].append(fleet.result("global", "ACP-UPG-010", "fail", "node:cp1", "same"))
    both["results"].append(fleet.result("east", "ACP-UPG-010", "fail", "node:cp1", "same"))
    issues = codequality(both, Context())
    same = [i for i in issues if "node:cp1" in i["description"]]
    assert len(same) == 2 and len({i["fingerprint"] for i in same}) == 2
    assert {i["description"].split(":")[0] for i in same} == {"global", "east"}
    assert {i["location"]["path"] for i in same} == {"plans/global.yaml", "fleet.yaml"}
    # One plan: the fingerprints GitLab already knows do not change.
    single = fleet.v1(document)
    single["results"] = [r for r in single["results"] if r["status"] == "fail"]
    (issue,) = codequality(single, Context())
    assert issue["fingerprint"] == hashlib.sha256(b"acpcheck|ACP-UPG-010|cluster:east").hexdigest()


# -- results.json ------------------------------------------------------------------------------


def test_results_json_of_a_fleet_is_valid_v2_and_a_v1_file_is_still_read(
    files: dict[str, str], document: dict[str, Any], tmp_path: Path
) -> None:
    written = json.loads(files["results.json"])
    assert written["schema"] == RESULTS_SCHEMA == "acpcheck/results/v2"
    jsonschema.Draft202012Validator(RESULTS_JSON_SCHEMA).validate(written)
    # v2 requires each result's cluster; the schema refuses a result without one.
    missing = copy.deepcopy(written)
    del missing["results"][0]["cluster"]
    with pytest.raises(jsonschema.ValidationError, match="'cluster' is a required property"):
        jsonschema.Draft202012Validator(RESULTS_JSON_SCHEMA).validate(missing)
    # The readers take v1 (every result of run.cluster) and v2 alike.
    (tmp_path / "v1.json").write_text(json.dumps(fleet.v1(document)))
    (tmp_path / "v2.json").write_text(files["results.json"])
    old, new = read_results(str(tmp_path / "v1.json")), read_results(str(tmp_path / "v2.json"))
    assert set(old.findings()) == {
        ("prod", "ACP-UPG-010", "cluster:east"),
        *(("prod", f"ACP-UPG-0{n}", "cluster:west") for n in (10, 12, 13)),
        ("prod", "ACP-UPG-012", "cluster:global"),
    }
    assert ("east", "ACP-UPG-010", "cluster:east") in new.findings()
