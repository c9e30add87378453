"""results.sarif in its consumers: the OASIS SARIF 2.1.0 schema, and sarif-tools reading it back.

A real run with every status, an unreachable node and an expired waiver
(tests/data/report_runs.py): the log validates, every rule says what, why and where
to read more, every finding sits on the plan line of what it is about, levels
follow what a finding did to the run, and what is not a finding (ERRORs, an expired
waiver, the verdict) is in the invocation.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "data")) if str(ROOT / "tests" / "data") not in sys.path else None
import report_runs  # noqa: E402  (tests/data: the shared report runs)

from acpcheck.report import writers  # noqa: E402

SCHEMA = json.loads((ROOT / "tests" / "data" / "sarif-schema-2.1.0.json").read_text())
SARIF_TOOL = Path(sys.executable).with_name("sarif")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> report_runs.Run:
    return report_runs.every_status(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def log(run: report_runs.Run) -> dict[str, Any]:
    return json.loads(run.text("results.sarif"))


def schema_errors(document: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft4Validator(SCHEMA)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


def node_line(name: str) -> int:
    """The line of the node's entry in spec.nodes of the example plan."""
    lines = report_runs.EXAMPLE.read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if re.match(rf"\s*- \{{name: {name},", line))


def test_the_log_is_valid_sarif_2_1_0(log: dict[str, Any]) -> None:
    jsonschema.Draft4Validator.check_schema(SCHEMA)
    assert schema_errors(log) == []
    assert log["version"] == "2.1.0" and log["$schema"] == SCHEMA["id"]


def test_every_rule_says_what_why_and_where(log: dict[str, Any], run: report_runs.Run) -> None:
    rules = log["runs"][0]["tool"]["driver"]["rules"]
    document = json.loads(run.text("results.json"))
    assert [r["id"] for r in rules] == [*dict.fromkeys(r["check"] for r in document["results"]), "expired-waiver"]
    for rule in rules[:-1]:
        assert (
            rule["shortDescription"]["text"]
            and rule["fullDescription"]["text"]
            and rule["helpUri"].startswith("https://")
        ), rule["id"]
    for rule in rules:
        assert rule["help"]["text"].strip() and rule["fullDescription"]["text"], rule["id"]
    by_id = {r["id"]: r for r in rules}
    assert (
        by_id["ACP-NET-902"]["fullDescription"]["text"] == "Why 902 exists: the cluster CIDR must be chosen on purpose."
    )
    assert by_id["ACP-NET-001"]["fullDescription"]["text"].startswith(
        "The Create Cluster form refuses"
    )  # a first-party rationale
    # The default level says whether a failure of the check fails the run under fail_on (medium).
    assert by_id["ACP-NET-902"]["defaultConfiguration"]["level"] == "error"  # high
    assert by_id["ACP-NET-903"]["defaultConfiguration"]["level"] == "warning"  # low


def test_findings_sit_on_the_plan_line_of_what_they_are_about(log: dict[str, Any]) -> None:
    run = log["runs"][0]
    located = {
        (r["ruleId"], r["properties"]["target"]): r["locations"][0]
        for r in run["results"]
        if r["ruleId"] != "expired-waiver"
    }
    for name in ("cp1", "cp2", "cp3", "w2"):
        location = located[("ACP-NODE-909", f"node:{name}")]
        assert location["physicalLocation"]["region"]["startLine"] == node_line(name)
        assert location["logicalLocations"][0]["fullyQualifiedName"] == f"node:{name}"
    plan_text = report_runs.EXAMPLE.read_text().splitlines()
    cidr = located[("ACP-NET-902", "plan")]["physicalLocation"]["region"]["startLine"]
    assert "clusterCIDR" in plan_text[cidr - 1]  # the field its `at` evidence names
    for location in located.values():
        artifact = location["physicalLocation"]["artifactLocation"]
        assert artifact == {"uri": "examples/workload-kube-ovn.yaml", "uriBaseId": "SRCROOT"}
    assert run["originalUriBaseIds"]["SRCROOT"]["uri"] == ROOT.as_uri() + "/"


def test_messages_leave_the_target_to_the_location(log: dict[str, Any]) -> None:
    """The same finding on several nodes has one text, so tools group it; the node is in its location."""
    swap = [r for r in log["runs"][0]["results"] if r["ruleId"] == "ACP-NODE-909"]
    assert {r["message"]["text"] for r in swap} == {"swap is on (/swap.img)"}
    assert sorted(r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] for r in swap) == [
        "node:cp1", "node:cp2", "node:cp3", "node:w2",
    ]  # fmt: skip
    assert not any(r["message"]["text"].startswith("[") for r in log["runs"][0]["results"])


def test_an_expired_waiver_is_a_result_on_its_line_in_the_waivers_file(
    log: dict[str, Any], run: report_runs.Run
) -> None:
    """A run whose only problem is an expired waiver is red: code scanning must see a result too."""
    (expired,) = [r for r in log["runs"][0]["results"] if r["ruleId"] == "expired-waiver"]
    waivers = run.directory / "waivers.yaml"
    location = expired["locations"][0]["physicalLocation"]
    line = location["region"]["startLine"]
    assert "ACP-NET-999" in waivers.read_text().splitlines()[line - 1]
    assert location["artifactLocation"] == {"uri": "waivers.yaml", "uriBaseId": "WAIVERSDIR"}
    assert log["runs"][0]["originalUriBaseIds"]["WAIVERSDIR"]["uri"] == waivers.parent.as_uri() + "/"
    assert expired["level"] == "error" and "expired on 2020-01-01" in expired["message"]["text"]


def test_a_run_failed_only_by_an_expired_waiver_has_a_result(tmp_path: Path) -> None:
    waivers = tmp_path / "waivers.yaml"
    waivers.write_text(
        "waivers:\n  - check: ACP-NET-001\n    reason: old\n    owner: ops@example.com\n    expires: 2020-01-01\n"
    )
    process = report_runs.acpcheck(
        "run", "--plan", str(report_runs.EXAMPLE), "--profile", "plan", "--waivers", str(waivers),
        "--out", str(tmp_path / "out"),
    )  # fmt: skip
    assert process.returncode == 1, process.stdout + process.stderr
    log = json.loads((tmp_path / "out" / "results.sarif").read_text())
    (result,) = log["runs"][0]["results"]
    assert result["ruleId"] == "expired-waiver" and result["locations"][0]["physicalLocation"]["region"] == {
        "startLine": 2
    }
    assert schema_errors(log) == []
    gate = subprocess.run(
        [str(SARIF_TOOL), "--check", "error", "summary", str(tmp_path / "out" / "results.sarif")],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert gate.returncode != 0 and "error: 1" in gate.stdout


def test_levels_follow_what_the_finding_did_to_the_run(log: dict[str, Any]) -> None:
    results = {(r["ruleId"], r["properties"]["target"]): r for r in log["runs"][0]["results"]}
    assert results[("ACP-NET-902", "plan")]["level"] == "error"  # FAIL: failed the run
    assert results[("ACP-NET-904", "plan")]["level"] == "warning"  # a critical check's warn(): advice, not its severity
    assert results[("ACP-NET-903", "plan")]["level"] == "warning"  # low, below fail_on
    waived = results[("ACP-NET-913", "plan")]
    assert (
        waived["level"] == "note"
        and waived["suppressions"][0]["status"] == "accepted"
        and "net-team@example.com" in waived["suppressions"][0]["justification"]
    )
    assert not any(r["properties"]["status"] in ("pass", "skip", "manual", "error") for r in results.values())


def test_fail_on_low_makes_a_low_failure_an_error(run: report_runs.Run) -> None:
    document = json.loads(run.text("results.json"))
    document["run"]["failOn"] = "low"
    low = next(r for r in document["results"] if r["check"] == "ACP-NET-903")
    low["status"] = "fail"  # what grading gives it under fail_on low
    log = json.loads(writers.render_all(document)["results.sarif"])
    result = next(r for r in log["runs"][0]["results"] if r["ruleId"] == "ACP-NET-903")
    rule = next(r for r in log["runs"][0]["tool"]["driver"]["rules"] if r["id"] == "ACP-NET-903")
    assert result["level"] == "error" and rule["defaultConfiguration"]["level"] == "error"
    assert schema_errors(log) == []


def test_errors_expired_waivers_and_the_verdict_are_in_the_invocation(log: dict[str, Any]) -> None:
    (invocation,) = log["runs"][0]["invocations"]
    assert invocation["executionSuccessful"] is False  # ERRORs: the assessment is incomplete
    assert invocation["exitCode"] == 1 and invocation["exitCodeDescription"] == "NOT compliant"
    notifications = invocation["toolExecutionNotifications"]
    unreachable = [n for n in notifications if n["properties"]["target"] == "node:w1"]
    assert len(unreachable) == 1 and unreachable[0]["properties"]["checks"] == [
        "ACP-NODE-908",
        "ACP-NODE-909",
        "ACP-NODE-910",
        "ACP-NODE-911",
    ]
    assert report_runs.UNREACHABLE in unreachable[0]["message"]["text"]
    assert unreachable[0]["locations"][0]["physicalLocation"]["region"]["startLine"] == node_line("w1")
    broken = next(n for n in notifications if n["properties"]["target"] == "plan")
    assert broken["associatedRule"]["id"] == "ACP-NET-907" and broken["level"] == "error"
    (expired,) = invocation["toolConfigurationNotifications"]
    assert (
        expired["descriptor"]["id"] == "expired-waiver"
        and expired["level"] == "error"
        and "ACP-NET-999" in expired["message"]["text"]
    )


def test_a_compliant_run_is_a_successful_execution(tmp_path: Path) -> None:
    process = report_runs.acpcheck(
        "run", "--plan", str(report_runs.EXAMPLE), "--profile", "plan", "--out", str(tmp_path / "out")
    )
    assert process.returncode == 0, process.stdout + process.stderr
    log = json.loads((tmp_path / "out" / "results.sarif").read_text())
    (invocation,) = log["runs"][0]["invocations"]
    assert invocation["executionSuccessful"] is True and invocation["exitCode"] == 0
    assert (
        log["runs"][0]["results"] == [] and invocation["toolExecutionNotifications"] == [] and schema_errors(log) == []
    )


def test_sarif_tools_reads_it_back(run: report_runs.Run, tmp_path: Path) -> None:
    """sarif-tools (PyPI `sarif-tools`), a second consumer: its CSV has every finding at its plan line."""
    table = tmp_path / "findings.csv"
    process = subprocess.run(
        [str(SARIF_TOOL), "csv", "--output", str(table), str(run.out / "results.sarif")],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert process.returncode == 0, process.stdout + process.stderr
    rows = list(csv.DictReader(table.open(encoding="utf-8")))
    assert {(row["Code"], row["Severity"]) for row in rows} == {
        ("ACP-NET-902", "error"), ("ACP-NODE-908", "error"), ("ACP-NODE-909", "error"),
        ("ACP-NET-903", "warning"), ("ACP-NET-904", "warning"), ("ACP-NET-913", "note"),
        ("expired-waiver", "error"),
    }  # fmt: skip
    swap = sorted((row["Description"], int(row["Line"])) for row in rows if row["Code"] == "ACP-NODE-909")
    assert swap == sorted(("swap is on (/swap.img)", node_line(n)) for n in ("cp1", "cp2", "cp3", "w2"))
    assert {row["Location"] for row in rows} == {"examples/workload-kube-ovn.yaml", "waivers.yaml"}
    # Its CI gate: errors in the log fail it.
    gate = subprocess.run(
        [str(SARIF_TOOL), "--check", "error", "summary", str(run.out / "results.sarif")],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert gate.returncode != 0 and "error: 7" in gate.stdout  # 6 FAILs and the expired waiver
