"""junit.xml in its consumer's schema: the junit-10.xsd that Jenkins' xUnit plugin enforces
(tests/data/junit-10.xsd; pytest's own junitxml is tested against the same family),
validated with xmlschema.

Real runs: every status, an unreachable node and an expired waiver (tests/data/
report_runs.py), serial and under -n 2, plus every example plan.
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import xmlschema

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "data")) if str(ROOT / "tests" / "data") not in sys.path else None
import report_runs  # noqa: E402  (tests/data: the shared report runs)

from acpcheck.report import writers  # noqa: E402

XSD = xmlschema.XMLSchema10(ROOT / "tests" / "data" / "junit-10.xsd")
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml")) + sorted((ROOT / "examples" / "defective").glob("*.yaml"))


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> report_runs.Run:
    return report_runs.every_status(tmp_path_factory.getbasetemp())


def cases(text: str) -> dict[str, ET.Element]:
    return {case.get("name", ""): case for case in ET.fromstring(text).iter("testcase")}


def test_valid_against_the_xunit_schema(run: report_runs.Run) -> None:
    XSD.validate(str(run.out / "junit.xml"))  # raises with the line and the rule broken


def test_every_non_compliance_is_in_it(run: report_runs.Run) -> None:
    root = ET.fromstring(run.text("junit.xml"))
    suite = root.find("testsuite")
    assert suite is not None
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert (
        properties["verdict"] == "NOT compliant"
        and properties["exitCode"] == "1"
        and properties["expiredWaivers"] == "1"
    )
    by_name = cases(run.text("junit.xml"))
    # Names as test views show them, classname by area.
    failing = by_name["ACP-NET-902 the cluster CIDR is not 10.3.0.0/16 [plan]"]
    assert failing.get("classname") == "acpcheck.NET" and "fix the CIDR" in (failing.findtext("failure") or "")
    assert by_name["ACP-NODE-909 swap is disabled [node:w2]"].get("classname") == "acpcheck.NODE"
    # An ERROR (a broken check, an unreachable node) is an error.
    assert by_name["ACP-NET-907 broken check [plan]"].find("error") is not None
    unreachable = by_name["ACP-NODE-910 a node check that passes [node:w1]"].find("error")
    assert unreachable is not None and report_runs.UNREACHABLE in unreachable.get("message", "")
    # An expired waiver alone fails the run: it is a failing test case.
    expired = by_name["ACP-NET-999 waiver expired [node:*]"]
    assert expired.get("classname") == "acpcheck.waivers" and expired.find("failure").get("type") == "expired-waiver"
    # Counts agree with the cases.
    failures = sum(case.find("failure") is not None for case in by_name.values())
    errors = sum(case.find("error") is not None for case in by_name.values())
    assert (suite.get("failures"), suite.get("errors"), suite.get("tests")) == (
        str(failures),
        str(errors),
        str(len(by_name)),
    )
    # Per-case data, where the schema allows it: the case's system-out.
    waived = by_name["ACP-NET-913 waived failure [plan]"].findtext("system-out") or ""
    assert "status: WAIVED" in waived and "waived by net-team@example.com until 2999-01-01" in waived
    assert "status: MANUAL" in (by_name["ACP-NET-906 needs a person [plan]"].findtext("system-out") or "")
    warn = by_name["ACP-NET-904 explicit warning [plan]"].findtext("system-out") or ""
    assert "status: WARN" in warn and "worth a look" in warn and "fix: look at it" in warn
    assert all(case.find("properties") is None for case in by_name.values())


def gitlab_view(text: str) -> dict[str, tuple[str, str | None]]:
    """Each case as GitLab's test report shows it: (status, the text it shows).

    The rules of GitLab's JUnit parser (lib/gitlab/ci/parsers/test/junit.rb,
    ``create_test_case``): a failure or error shows its element's text then the case's
    system-out; a skipped case shows only the skipped element's text; a passed case
    shows nothing (its system-out is dropped)."""
    view: dict[str, tuple[str, str | None]] = {}
    for case in ET.fromstring(text).iter("testcase"):
        out = case.findtext("system-out")
        if case.find("failure") is not None:
            view[case.get("name", "")] = ("failed", "\n\n".join(filter(None, [case.findtext("failure"), out])))
        elif case.find("error") is not None:
            view[case.get("name", "")] = ("error", "\n\n".join(filter(None, [case.findtext("error"), out])))
        elif case.find("skipped") is not None:
            view[case.get("name", "")] = ("skipped", case.findtext("skipped"))
        else:
            view[case.get("name", "")] = ("success", None)
    return view


def test_gitlab_shows_warn_and_waived_details(run: report_runs.Run) -> None:
    """WARN and WAIVED are skipped cases whose text has the message, the fix and the waiver:
    what GitLab's test report shows (it drops the output of passed cases)."""
    view = gitlab_view(run.text("junit.xml"))
    status, warn = view["ACP-NET-904 explicit warning [plan]"]
    assert status == "skipped" and warn is not None
    assert warn.startswith("WARN (critical) on plan") and "worth a look" in warn and "fix: look at it" in warn
    status, waived = view["ACP-NET-913 waived failure [plan]"]
    assert status == "skipped" and waived is not None
    assert "WAIVED" in waived and "waived by net-team@example.com until 2999-01-01: single-node lab" in waived
    status, manual = view["ACP-NET-906 needs a person [plan]"]
    assert status == "skipped" and manual is not None and "ask the network team" in manual
    assert view["ACP-NODE-909 swap is disabled [node:w2]"] == (
        "failed",
        view["ACP-NODE-909 swap is disabled [node:w2]"][1],
    )
    # Every case that is not a pass has text in GitLab.
    document = json.loads(run.text("results.json"))
    for result in document["results"]:
        name = f"{result['check']} {result['title']} [{result['target']}]"
        assert (view[name][1] is None) == (result["status"] == "pass"), name
    suite = ET.fromstring(run.text("junit.xml")).find("testsuite")
    assert suite is not None and suite.get("skipped") == str(
        sum(document["summary"][s] for s in ("warn", "waived", "skip", "manual"))
    )


def test_names_are_the_same_with_and_without_xdist(run: report_runs.Run, tmp_path: Path) -> None:
    parallel = report_runs.run_every_status(tmp_path, "parallel", "-n", "2")
    assert parallel.process.returncode == run.process.returncode == 1
    XSD.validate(str(parallel.out / "junit.xml"))

    def shape(text: str) -> list[tuple[str | None, str | None, tuple[str, ...]]]:
        return [
            (c.get("classname"), c.get("name"), tuple(child.tag for child in c))
            for c in ET.fromstring(text).iter("testcase")
        ]

    assert shape(parallel.text("junit.xml")) == shape(run.text("junit.xml"))


@pytest.mark.parametrize("plan", EXAMPLES, ids=lambda p: p.name)
def test_every_example_run_is_valid(plan: Path, tmp_path: Path) -> None:
    process = report_runs.acpcheck("run", "--plan", str(plan), "--profile", "plan", "--out", str(tmp_path / "out"))
    assert process.returncode in (0, 1), process.stdout + process.stderr
    XSD.validate(str(tmp_path / "out" / "junit.xml"))


def test_hostile_text_stays_valid() -> None:
    """Control characters, markup and lone surrogates in any field: still valid against the schema."""
    hostile = "\x1b[31m]]></failure><x>&amp;\ud800\u202e"
    result = {
        "check": "ACP-NET-001", "title": hostile, "area": "NET", "severity": "high", "status": "fail",
        "target": f"node:{hostile}", "message": hostile, "evidence": {}, "remediation": hostile,
        "refs": ["https://docs.alauda.io/container_platform/4.3/x.html"], "waiver": None, "duration": 0.1,
    }  # fmt: skip
    run = {
        "id": "r",
        "started": "2026-01-01T00:00:00Z",
        "finished": "2026-01-01T00:00:01Z",
        "profile": hostile,
        "plan": hostile,
        "cluster": hostile,
        "acp": "4.3",
        "acpcheck": "0",
        "failOn": "medium",
        "exitCode": 1,
    }
    summary = {"pass": 0, "fail": 1, "warn": 0, "skip": 0, "manual": 0, "error": 0, "waived": 0}
    expired = [{"check": hostile, "target": hostile, "reason": hostile, "owner": hostile, "expires": "2000-01-01"}]
    text = writers.render_all(
        {
            "schema": "acpcheck/results/v1",
            "run": run,
            "summary": summary,
            "expiredWaivers": expired,
            "results": [result],
        }
    )["junit.xml"]
    XSD.validate(text)
    assert len(cases(text)) == 2
