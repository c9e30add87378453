"""Allure results in Allure itself: the allure-results written by a real run (under -n 2)
are read by Allure's own command line (`allure generate`, allure-commandline from
npm, a Java app; scripts/setup-system.sh installs it), and the report it builds is
asserted on: titles, statuses, categories, labels, links, description, environment.

Without the Allure command line that test is skipped (saying so); the result files
are still checked against what the Allure report reads from them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "data")) if str(ROOT / "tests" / "data") not in sys.path else None
import report_runs  # noqa: E402  (tests/data: the shared report runs)

from acpcheck.report.allure import environment  # noqa: E402

ALLURE = (
    os.environ.get("ACPCHECK_ALLURE") or shutil.which("allure") or "/opt/acpcheck-test-tools/node_modules/.bin/allure"
)
#: acpcheck status -> (Allure status, start of the status message, category)
EXPECTED = {
    "pass": ("passed", None, None),
    "fail": ("failed", "FAIL (", "Non-compliant (FAIL)"),
    "warn": ("passed", "WARN (", "Advice and findings below fail_on (WARN)"),
    "waived": ("passed", "WAIVED by net-team@example.com until 2999-01-01", "Waived (WAIVED)"),
    "skip": ("skipped", "SKIP: ", "Not applicable (SKIP)"),
    "manual": ("skipped", "MANUAL: ", "Needs a person (MANUAL)"),
    "error": ("broken", "ERROR: could not check", "Could not check (ERROR)"),
}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[report_runs.Run, Path]:
    directory = tmp_path_factory.mktemp("allure-run")
    results = directory / "allure-results"
    done = report_runs.run_every_status(directory, "out", "--alluredir", str(results), "-n", "2")
    assert done.process.returncode == 1, done.process.stdout + done.process.stderr
    return done, results


def written(results: Path) -> list[dict[str, Any]]:
    return [json.loads(path.read_text(encoding="utf-8")) for path in results.glob("*-result.json")]


def test_the_result_files(run: tuple[report_runs.Run, Path]) -> None:
    done, results = run
    document = json.loads(done.text("results.json"))
    by_title = {f"{r['check']} {r['title']} [{r['target']}]": r for r in document["results"]}
    files = {d["name"]: d for d in written(results)}
    # One result per check and target, titled as in junit.xml, plus one per expired waiver.
    assert set(files) == {*by_title, "ACP-NET-999 waiver expired [node:*]"}
    for title, result in by_title.items():
        allure = files[title]
        status, message, _ = EXPECTED[result["status"]]
        assert allure["status"] == status, title
        assert (allure.get("statusDetails") or {}).get("message", "").startswith(message or ""), title
        labels = {(label["name"], label["value"]) for label in allure["labels"]}
        assert {
            ("tag", result["check"]),
            ("tag", result["target"]),
            ("story", f"{result['check']} {result['title']}"),
            ("feature", result["area"]),
            ("epic", "acpcheck"),
        } <= labels
        assert {("check_id", result["check"]), ("target", result["target"])} <= labels
        assert [link["url"] for link in allure["links"]] == result["refs"]
        assert f"Fix: {result['remediation']}" in allure["description"]
    assert files["ACP-NET-902 the cluster CIDR is not 10.3.0.0/16 [plan]"]["description"].startswith("Why 902 exists")
    # Advice is never "broken"; only ERRORs are.
    assert {d["name"] for d in files.values() if d["status"] == "broken"} == {
        t for t, r in by_title.items() if r["status"] == "error"
    }
    # Severities by rank, after the profile: critical blocker, high critical, medium normal, low minor.
    severity = {
        d["name"]: next(label["value"] for label in d["labels"] if label["name"] == "severity") for d in files.values()
    }
    assert (
        severity["ACP-NET-904 explicit warning [plan]"] == "blocker"
        and severity["ACP-NET-903 low severity failure [plan]"] == "minor"
    )
    assert severity["ACP-NODE-910 a node check that passes [node:cp1]"] == "normal"
    # A node parameter shows the node's name, not the repr of its facts.
    node_params = [p["value"] for d in files.values() for p in d.get("parameters", []) if p["name"] == "node"]
    assert node_params and set(node_params) <= {"cp1", "cp2", "cp3", "w1", "w2"}
    properties = (results / "environment.properties").read_text(encoding="latin-1")
    assert (
        f"plan={report_runs.EXAMPLE}" in properties
        and "ACP\\ version=4.3" in properties
        and "profile=report-tests" in properties
    )
    assert json.loads((results / "categories.json").read_text())[0]["name"] == "Non-compliant (FAIL)"


def test_environment_properties_escape_what_java_would_misread() -> None:
    document = {
        "run": {
            "plan": "a=b: ü\n#x",
            "cluster": "c",
            "acp": "4.3",
            "profile": "p",
            "failOn": "medium",
            "exitCode": 0,
            "id": "r",
            "acpcheck": "0",
        },
        "expiredWaivers": [],
    }
    text = environment(document)
    assert "plan=a=b: \\u00fc\\n#x\n" in text and text.isascii()


@pytest.mark.skipif(
    not Path(ALLURE).exists(),
    reason=f"Allure's command line is not installed ({ALLURE}; scripts/setup-system.sh installs allure-commandline "
    "from npm)",
)
def test_allure_generate_reads_them(run: tuple[report_runs.Run, Path], tmp_path: Path) -> None:
    done, results = run
    version = subprocess.run(
        [ALLURE, "--version"], capture_output=True, text=True, timeout=60, check=False
    ).stdout.strip()
    print(f"Allure command line {version}")
    report = tmp_path / "report"
    process = subprocess.run(
        [ALLURE, "generate", str(results), "-o", str(report), "--clean"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert process.returncode == 0, process.stdout + process.stderr
    document = json.loads(done.text("results.json"))
    cases = {c["name"]: c for c in (json.loads(p.read_text()) for p in (report / "data" / "test-cases").glob("*.json"))}
    for result in document["results"]:
        case = cases[f"{result['check']} {result['title']} [{result['target']}]"]
        status, message, category = EXPECTED[result["status"]]
        assert case["status"] == status and (case.get("statusMessage") or "").startswith(message or "")
        assert [c["name"] for c in case["extra"].get("categories", [])] == ([category] if category else [])
        assert {result["check"], result["target"]} <= set(case["extra"]["tags"])
        assert [link["url"] for link in case["links"]] == result["refs"]
    expired = cases["ACP-NET-999 waiver expired [node:*]"]
    assert expired["status"] == "failed" and [c["name"] for c in expired["extra"]["categories"]] == ["Expired waivers"]
    categories = {
        c["name"]: c["statistic"]["total"]
        for c in json.loads((report / "widgets" / "categories.json").read_text())["items"]
    }
    counts = document["summary"]
    assert categories == {
        "Non-compliant (FAIL)": counts["fail"], "Expired waivers": 1, "Could not check (ERROR)": counts["error"],
        "Advice and findings below fail_on (WARN)": counts["warn"], "Waived (WAIVED)": counts["waived"],
        "Not applicable (SKIP)": counts["skip"], "Needs a person (MANUAL)": counts["manual"],
    }  # fmt: skip
    environment_widget = {
        e["name"]: e["values"] for e in json.loads((report / "widgets" / "environment.json").read_text())
    }
    assert environment_widget["plan"] == [str(report_runs.EXAMPLE)] and environment_widget["ACP version"] == ["4.3"]
    assert environment_widget["profile"] == ["report-tests"] and environment_widget["verdict"] == [
        "NOT compliant (exit code 1)"
    ]
    # The Behaviors tree: epic acpcheck, feature the area, story the check.
    behaviors = json.loads((report / "data" / "behaviors.json").read_text())
    epic = next(child for child in behaviors["children"] if child["name"] == "acpcheck")
    features = {child["name"]: child for child in epic["children"]}
    assert {"NET", "NODE"} <= set(features)
    assert any(
        story["name"] == "ACP-NODE-909 swap is disabled" and len(story["children"]) == 5
        for story in features["NODE"]["children"]
    )
