"""The acpcheck command as a user runs it: a real process, real files, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from runner import acpcheck

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
GOOD_PLANS = sorted(EXAMPLES.glob("*.yaml"))
BASE = (EXAMPLES / "workload-kube-ovn.yaml").read_text()


@pytest.mark.parametrize("plan", GOOD_PLANS, ids=lambda p: p.name)
def test_good_example_is_compliant(plan: Path, tmp_path: Path) -> None:
    result = acpcheck("run", "--plan", str(plan), "--profile", "plan", "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stdout + result.stderr
    document = json.loads((tmp_path / "out" / "results.json").read_text())
    assert document["summary"]["fail"] == 0 and document["summary"]["error"] == 0
    assert document["summary"]["pass"] > 0


def test_defective_plan_fails_with_rule_values_and_source(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = acpcheck(
        "run",
        "--plan",
        str(EXAMPLES / "defective" / "workload-with-defects.yaml"),
        "--profile",
        "plan",
        "--out",
        str(out),
    )
    assert result.returncode == 1, result.stdout + result.stderr
    document = json.loads((out / "results.json").read_text())
    failing = {r["check"]: r for r in document["results"] if r["status"] == "fail"}
    # Each deliberate defect in that file is reported by the rule that owns it.
    messages = "\n".join(r["message"] for r in failing.values())
    for value in ("1.32.9", "10.3.128.0/17", "300", "198.51.100.21", "198.51.100.11"):
        assert value in messages, value
    assert any("control-plane" in r["message"] and "2" in r["message"] for r in failing.values())
    assert all(r["refs"] and r["refs"][0].startswith("https://") for r in failing.values())
    assert "NOT compliant" in result.stdout and "see: https://docs.alauda.io/" in result.stdout
    for name in ("results.json", "junit.xml", "summary.md", "report.html"):
        assert (out / name).stat().st_size > 0


@pytest.mark.parametrize(
    ("find", "replace", "expected"),
    [
        ("spec:\n", "spec: [\n", "invalid YAML"),
        ("ipFamily: ipv4", "ipFamly: ipv4", "spec.cluster.ipFamly: unknown field; did you mean 'ipFamily'?"),
        ("port: 22", "port: twenty-two", "spec.ssh.port: Input should be a valid integer"),
        (
            "clusterCIDR: 10.3.0.0/16",
            "clusterCIDR: 10.3.0.0/40",
            "spec.network.clusterCIDR: '10.3.0.0/40' has an impossible prefix length",
        ),
        (
            "auth: {privateKeyFile: ~/.ssh/id_ed25519}",
            "auth: {password: S3cret-Hunter2}",
            "spec.ssh.auth.password: literal secrets are refused",
        ),
    ],
)
def test_bad_plan_exits_4_naming_file_and_line(tmp_path: Path, find: str, replace: str, expected: str) -> None:
    plan = tmp_path / "plan.yaml"
    text = BASE.replace(find, replace, 1)
    plan.write_text(text)
    result = acpcheck("run", "--plan", str(plan), "--out", str(tmp_path / "out"))
    assert result.returncode == 4
    assert expected in result.stderr
    assert f"{plan}:" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "Hunter2" not in result.stderr + result.stdout
    assert not (tmp_path / "out").exists()  # nothing half-done


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(BASE.replace("ipFamily: ipv4", "ipFamily: ipv5").replace("plugin: kube-ovn", "plugin: weave"))
    result = acpcheck("validate", "--plan", str(plan))
    assert result.returncode == 4
    assert "spec.cluster.ipFamily" in result.stderr and "spec.network.plugin" in result.stderr


def test_bad_profile_and_waivers_exit_4(tmp_path: Path) -> None:
    waivers = tmp_path / "waivers.yaml"
    waivers.write_text("waivers:\n  - {check: ACP-NET-001}\n")
    result = acpcheck(
        "run", "--plan", str(EXAMPLES / "workload-kube-ovn.yaml"), "--profile", "nonsense", "--waivers", str(waivers)
    )
    assert result.returncode == 4
    assert "profile 'nonsense' not found" in result.stderr
    assert f"{waivers}:2: waivers[0].reason: required field is missing" in result.stderr


def test_nothing_selected_exits_5(tmp_path: Path) -> None:
    result = acpcheck(
        "run", "--plan", str(EXAMPLES / "workload-kube-ovn.yaml"), "--check", "ACP-ENC-*", "--out", str(tmp_path / "o")
    )
    assert result.returncode == 5, result.stdout + result.stderr


def test_password_env_value_never_reaches_output(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(BASE.replace("auth: {privateKeyFile: ~/.ssh/id_ed25519}", "auth: {passwordEnv: NODE_SSH_PASSWORD}"))
    out = tmp_path / "out"
    secret = "Very-S3cret-Value-42"
    result = acpcheck(
        "run", "--plan", str(plan), "--profile", "plan", "--out", str(out), env={"NODE_SSH_PASSWORD": secret}
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert secret not in result.stdout + result.stderr
    for path in out.iterdir():
        assert secret not in path.read_text()


def test_list_and_explain() -> None:
    listing = acpcheck("list", "--profile", "plan")
    assert listing.returncode == 0
    assert "ACP-NET-001" in listing.stdout and "ACP-VER-001" in listing.stdout
    as_json = json.loads(acpcheck("list", "--json", "--area", "ver").stdout)
    assert as_json and {c["area"] for c in as_json} == {"VER"}
    explained = acpcheck("explain", "acp-ver-001")
    assert explained.returncode == 0
    assert (
        "Why:" in explained.stdout and "Sources:" in explained.stdout and "https://docs.alauda.io/" in explained.stdout
    )
    unknown = acpcheck("explain", "ACP-VER-0001")
    assert unknown.returncode == 4 and "did you mean ACP-VER-001" in unknown.stderr


def test_schema_is_json() -> None:
    result = acpcheck("schema")
    assert json.loads(result.stdout)["title"] == "acpcheck ClusterPlan"


def test_user_pytest_ini_does_not_change_a_run(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = --this-option-does-not-exist\n")
    result = acpcheck("run", "--plan", str(EXAMPLES / "workload-kube-ovn.yaml"), "--profile", "plan", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert list((tmp_path / "reports" / "out").glob("*/results.json"))


def test_conftest_files_of_the_working_directory_are_not_imported(tmp_path: Path) -> None:
    # Someone else's test suite: importing it would run their code in every assessment.
    for directory in (tmp_path, tmp_path / "tests"):
        directory.mkdir(exist_ok=True)
        (directory / "conftest.py").write_text(
            "raise SystemExit('conftest.py of the working directory was imported')\n"
        )
    result = acpcheck("run", "--plan", str(EXAMPLES / "workload-kube-ovn.yaml"), "--profile", "plan", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "was imported" not in result.stdout + result.stderr


def test_damaged_facts_directory_exits_4(tmp_path: Path) -> None:
    facts = tmp_path / "facts"
    facts.mkdir()
    (facts / "cp1.json").write_text("{not json")
    result = acpcheck(
        "run", "--plan", str(EXAMPLES / "workload-kube-ovn.yaml"), "--facts", str(facts), "--out", str(tmp_path / "out")
    )
    assert result.returncode == 4
    assert f"{facts / 'cp1.json'}:1: not readable JSON" in result.stderr
    assert "Traceback" not in result.stderr


def test_gather_reports_unreachable_nodes_without_hanging(tmp_path: Path) -> None:
    # Loopback only: a node whose SSH port nothing listens on (port 1 on 127.0.0.1).
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    text = BASE.replace("port: 22", "port: 1\n    connectTimeoutSeconds: 2").replace("~/.ssh/id_ed25519", str(key))
    # Only w1, and only through loopback: nothing else is contacted.
    text = (
        text[: text.index("  nodes:")]
        + "  nodes:\n    - {name: w1, role: worker, ipv4: 192.0.2.21, sshHost: 127.0.0.1}\n"
    )
    plan = tmp_path / "plan.yaml"
    plan.write_text(text)
    # Facts of another node, from an earlier gather: this gather must not delete them.
    other = {
        "schema": "acpcheck/facts/v1",
        "node": "other",
        "failure": {"kind": "probe", "message": "from another gather"},
    }
    (tmp_path / "facts" / "nodes").mkdir(parents=True)
    (tmp_path / "facts" / "nodes" / "other.json").write_text(json.dumps(other))
    result = acpcheck("gather", "--plan", str(plan), "--out", str(tmp_path / "facts"))
    assert result.returncode == 2
    assert "ERROR  w1: unreachable: 127.0.0.1:1 refused the connection" in result.stderr
    saved = json.loads((tmp_path / "facts" / "nodes" / "w1.json").read_text())
    assert saved["failure"]["kind"] == "unreachable"
    assert json.loads((tmp_path / "facts" / "nodes" / "other.json").read_text()) == other
    # The evidence directory replays: the node is ERROR again, with no connection attempt.
    replayed = acpcheck(
        "run",
        "--plan",
        str(plan),
        "--facts",
        str(tmp_path / "facts"),
        "--check",
        "ACP-NODE-008",
        "--out",
        str(tmp_path / "out"),
    )
    assert replayed.returncode == 2, replayed.stdout + replayed.stderr
    (result,) = json.loads((tmp_path / "out" / "results.json").read_text())["results"]
    assert (result["status"], result["target"]) == ("error", "node:w1")
    assert "127.0.0.1:1 refused the connection" in result["message"]


def test_sarif_points_at_the_line_of_the_field(tmp_path: Path) -> None:
    plan = EXAMPLES / "defective" / "workload-with-defects.yaml"
    out = tmp_path / "out"
    acpcheck("run", "--plan", str(plan), "--profile", "plan", "--out", str(out))
    results = json.loads((out / "results.sarif").read_text())["runs"][0]["results"]
    overlap = next(r for r in results if r["ruleId"] == "ACP-NET-001")
    line = next(
        n for n, text in enumerate(plan.read_text().splitlines(), 1) if text.lstrip().startswith("serviceCIDR:")
    )
    assert overlap["locations"][0]["physicalLocation"]["region"]["startLine"] == line


def test_plan_only_run_imports_no_transport_or_node_source(tmp_path: Path) -> None:
    """Which sources a run gathers follows from the selected checks' parameters: a
    plan-only run loads neither paramiko nor the node-facts gatherer."""
    script = (
        "import sys\n"
        "from acpcheck.cli import main\n"
        f"code = main(['run', '--plan', {str(EXAMPLES / 'workload-kube-ovn.yaml')!r}, '--profile', 'plan', "
        f"'--out', {str(tmp_path / 'out')!r}])\n"
        "loaded = [m for m in ('paramiko', 'acpcheck.facts.gather', 'acpcheck.transport.ssh') if m in sys.modules]\n"
        "print('LOADED', loaded, 'EXIT', code)\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )
    assert "LOADED [] EXIT 0" in completed.stdout, completed.stdout + completed.stderr
    assert not (tmp_path / "out" / "facts").exists()
