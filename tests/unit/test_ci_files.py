"""The CI files of docs/ci/ in their consumers' tools, and their steps run for real.

- docs/ci/github-actions.yml: actionlint (it runs shellcheck on every `run:` script) and
  the SchemaStore workflow schema; then its `run:` steps in order, as the runner runs
  them (bash -eo pipefail, GITHUB_OUTPUT and GITHUB_STEP_SUMMARY files, step outputs
  passed on), against replayed facts.
- docs/ci/gitlab-ci.yml: GitLab's own CI schema (ci.json) and shellcheck on its script;
  then the script, as the runner runs it, and the report files its artifacts name.

The schemas are the ones check-jsonschema vendors (``vendor.github-workflows`` is
SchemaStore's github-workflow.json, ``vendor.gitlab-ci`` GitLab's ci.json), so no
network is needed. The install step is not run: the suite's own acpcheck is on PATH.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "data")) if str(ROOT / "tests" / "data") not in sys.path else None
import report_runs  # noqa: E402  (tests/data: the shared report runs)

GITHUB = ROOT / "docs" / "ci" / "github-actions.yml"
GITLAB = ROOT / "docs" / "ci" / "gitlab-ci.yml"
BIN = Path(sys.executable).parent
#: GitLab's code quality severities (docs.gitlab.com, "Code Quality report format").
GITLAB_SEVERITIES = {"info", "minor", "major", "critical", "blocker"}


def tool(name: str) -> str:
    found = shutil.which(name, path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    assert found, f"{name} is not installed (pyproject's test extra, or scripts/setup-system.sh)"
    return found


def run_tool(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)


def check_schema(schema: str, file: Path) -> subprocess.CompletedProcess[str]:
    return run_tool(tool("check-jsonschema"), "--builtin-schema", schema, str(file))


def test_the_github_workflow_passes_actionlint() -> None:
    tool("shellcheck")  # without it actionlint would skip the run: scripts silently
    process = run_tool(tool("actionlint"), "-no-color", str(GITHUB))
    assert process.returncode == 0 and process.stdout == "", process.stdout + process.stderr


def test_both_files_match_their_published_schemas(tmp_path: Path) -> None:
    for schema, file in (("vendor.github-workflows", GITHUB), ("vendor.gitlab-ci", GITLAB)):
        process = check_schema(schema, file)
        assert process.returncode == 0, process.stdout + process.stderr
    # The schemas do refuse a mistake: a misspelt artifacts key, a step with neither run nor uses.
    broken = tmp_path / "gitlab-ci.yml"
    broken.write_text(GITLAB.read_text().replace("expire_in:", "expires_in:"))
    assert check_schema("vendor.gitlab-ci", broken).returncode == 1
    broken = tmp_path / "github.yml"
    broken.write_text(GITHUB.read_text().replace("run: exit", "runs: exit"))
    assert check_schema("vendor.github-workflows", broken).returncode == 1


def test_the_gitlab_script_passes_shellcheck(tmp_path: Path) -> None:
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/bash\n" + "\n".join(yaml.safe_load(GITLAB.read_text())["acpcheck"]["script"]) + "\n")
    process = run_tool(tool("shellcheck"), "--shell=bash", str(script))
    assert process.returncode == 0, process.stdout + process.stderr


@pytest.fixture
def workspace(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A repository as the CI files expect it (clusters/prod-east.yaml and its waivers),
    and the variables that make the run replay saved facts with the every-status pack:
    FAILs on several nodes, a WARN, a WAIVED finding, an unreachable node, an expired waiver."""
    inputs = report_runs.every_status_inputs(tmp_path / "inputs")
    repo = tmp_path / "repo"
    (repo / "clusters").mkdir(parents=True)
    shutil.copy(report_runs.EXAMPLE, repo / "clusters" / "prod-east.yaml")
    shutil.copy(inputs["waivers"], repo / "clusters" / "waivers.yaml")
    return repo, {
        "ACPCHECK_PROFILE": str(inputs["profile"]),
        "ACPCHECK_OPTIONS": f"--facts {inputs['facts']} -- {report_runs.PACK}",
    }


STEP_OUTPUT = re.compile(r"\$\{\{\s*steps\.([\w-]+)\.outputs\.([\w-]+)\s*\}\}")


def run_github_job(repo: Path, overrides: dict[str, str]) -> tuple[dict[str, int], Path, dict[str, Any]]:
    """The job's `run:` steps in order, as the runner runs them on a push: each step's exit
    code by name, the job summary file, and the `with:` of each `uses:` step by action."""
    job = yaml.safe_load(GITHUB.read_text())["jobs"]["acpcheck"]
    runner = repo.parent / "runner"
    runner.mkdir()
    summary = runner / "step-summary.md"
    env = {
        **os.environ,
        **{k: str(v) for k, v in job["env"].items()},
        **overrides,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_EVENT_NAME": "push",
    }
    outputs: dict[str, dict[str, str]] = {}
    codes: dict[str, int] = {}
    uses: dict[str, Any] = {}
    for number, step in enumerate(job["steps"]):
        if "uses" in step:
            uses[step["uses"].split("@")[0]] = step.get("with", {})
            continue
        name = step["name"]
        if "pip install" in step["run"] or "github.event_name == 'pull_request'" in step.get("if", ""):
            continue  # the suite's acpcheck is installed; this is a push, not a pull request
        step_env = {
            key: STEP_OUTPUT.sub(lambda m: outputs[m.group(1)][m.group(2)], str(value))
            for key, value in step.get("env", {}).items()
        }
        assert not any("${{" in value for value in step_env.values()), step_env
        output = runner / f"output-{number}"
        output.touch()
        script = runner / f"step-{number}.sh"
        script.write_text(step["run"])
        process = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=repo,
            env={**env, **step_env, "GITHUB_OUTPUT": str(output)},
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        codes[name] = process.returncode
        if "id" in step:
            outputs[step["id"]] = dict(line.split("=", 1) for line in output.read_text().splitlines())
    return codes, summary, uses


def test_the_github_steps_run_for_real(workspace: tuple[Path, dict[str, str]]) -> None:
    repo, overrides = workspace
    codes, summary, uses = run_github_job(repo, overrides)
    out = repo / "acpcheck-out"
    # The run step records the exit code and goes on; the last step ends the job with it.
    assert codes == {"Run acpcheck": 0, "End with acpcheck's exit code": 1}
    assert summary.read_text() == (out / "summary.md").read_text() and "NOT compliant" in summary.read_text()
    # What the upload steps name is there: the SARIF, with the plan and the waivers file relative to the repository.
    log = json.loads((repo / uses["github/codeql-action/upload-sarif"]["sarif_file"]).read_text())
    (run,) = log["runs"]
    assert run["originalUriBaseIds"] == {"SRCROOT": {"uri": repo.resolve().as_uri() + "/"}}
    files = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in run["results"]}
    assert files == {"clusters/prod-east.yaml", "clusters/waivers.yaml"}
    kept = repo / uses["actions/upload-artifact"]["path"]
    assert {"junit.xml", "summary.md", "report.html", "results.sarif", "codequality.json", "results.json"} <= {
        p.name for p in kept.iterdir()
    }


def test_the_github_job_says_why_when_no_report_was_written(workspace: tuple[Path, dict[str, str]]) -> None:
    repo, overrides = workspace
    codes, summary, _ = run_github_job(repo, {**overrides, "ACPCHECK_PLAN": "clusters/missing.yaml"})
    assert codes == {"Run acpcheck": 0, "End with acpcheck's exit code": 4}  # bad input
    assert summary.read_text() == "acpcheck exited 4 without writing reports: see the log of this step.\n"


def test_the_gitlab_job_runs_for_real(workspace: tuple[Path, dict[str, str]]) -> None:
    repo, overrides = workspace
    job = yaml.safe_load(GITLAB.read_text())["acpcheck"]
    lines = [line for line in job["script"] if "pip install" not in line]  # the suite's acpcheck is installed
    process = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", "\n".join(lines)],
        cwd=repo,
        env={
            **os.environ,
            **{k: str(v) for k, v in job["variables"].items()},
            **overrides,
            "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        },
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert process.returncode == 1, process.stdout + process.stderr  # NOT compliant: the job fails
    reports = job["artifacts"]["reports"]
    # The test report: WARN and WAIVED are skipped cases with their details as text, which GitLab shows.
    junit = ET.parse(repo / reports["junit"]).getroot()
    skipped = {c.get("name"): c.find("skipped") for c in junit.iter("testcase") if c.find("skipped") is not None}
    warn = skipped["ACP-NET-904 explicit warning [plan]"]
    assert warn is not None and "worth a look" in (warn.text or "") and "fix: look at it" in (warn.text or "")
    # The code quality report: GitLab's format, on the lines of the repository's files.
    issues = json.loads((repo / reports["codequality"]).read_text())
    assert isinstance(issues, list) and issues
    for issue in issues:
        assert {"description", "check_name", "fingerprint", "severity", "location"} <= issue.keys()
        assert issue["severity"] in GITLAB_SEVERITIES and isinstance(issue["location"]["lines"]["begin"], int)
    assert len({i["fingerprint"] for i in issues}) == len(issues)
    by_check = {(i["check_name"], i["location"]["path"], i["location"]["lines"]["begin"]) for i in issues}
    waivers = (repo / "clusters" / "waivers.yaml").read_text().splitlines()
    expired = next(i for i in issues if i["check_name"] == "expired-waiver")
    assert expired["location"]["path"] == "clusters/waivers.yaml" and expired["severity"] == "critical"
    assert "ACP-NET-999" in waivers[expired["location"]["lines"]["begin"] - 1]
    plan = (repo / "clusters" / "prod-east.yaml").read_text().splitlines()
    cidr = next(line for check, path, line in by_check if check == "ACP-NET-902")
    assert "clusterCIDR" in plan[cidr - 1]
    assert {i["severity"] for i in issues if i["check_name"] in ("ACP-NET-903", "ACP-NET-904")} == {"minor"}
    assert {i["severity"] for i in issues if i["check_name"] == "ACP-NET-913"} == {"info"}  # waived
    for path in job["artifacts"]["paths"]:
        assert (repo / path).exists(), path


def test_codequality_of_any_text_is_valid_json() -> None:
    """A lone surrogate (a non-UTF-8 file name) in the waivers path or a message still writes
    a UTF-8 code quality report; without a waivers file an expired waiver sits on the plan."""
    from acpcheck.report import writers
    from acpcheck.report.document import Context

    finding = {
        "check": "ACP-NET-001", "title": "t", "area": "NET", "severity": "critical", "status": "fail",
        "target": "node:\ud800", "message": "bad \ud800", "evidence": {}, "remediation": "r",
        "refs": ["https://docs.alauda.io/container_platform/4.3/x.html"], "waiver": None, "duration": 0.1,
    }  # fmt: skip
    document = {
        "schema": "acpcheck/results/v1",
        "run": {
            "id": "r",
            "started": "2026-01-01T00:00:00Z",
            "finished": "2026-01-01T00:00:01Z",
            "profile": "p",
            "plan": "plan.yaml",
            "cluster": "c",
            "acp": "4.3",
            "acpcheck": "0",
            "failOn": "medium",
            "exitCode": 1,
        },  # fmt: skip
        "summary": {"pass": 0, "fail": 1, "warn": 0, "skip": 0, "manual": 0, "error": 0, "waived": 0},
        "expiredWaivers": [{"check": "X", "target": "*", "reason": "r", "owner": "o", "expires": "2000-01-01"}],
        "results": [finding],
    }
    located = writers.render_all(document, Context(waivers_file="w\udcff.yaml", expired_waiver_lines=(3,)))
    issues = json.loads(located["codequality.json"].encode("utf-8"))
    assert [i["severity"] for i in issues] == ["blocker", "critical"]
    assert issues[1]["location"] == {"path": "w\\udcff.yaml", "lines": {"begin": 3}}
    alone = json.loads(writers.render_all(document)["codequality.json"])
    assert alone[1]["location"] == {"path": "plan.yaml", "lines": {"begin": 1}}
