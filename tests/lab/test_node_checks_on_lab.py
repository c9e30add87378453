"""Every node check proven on real lab nodes: FAIL on a node that really has the
defect, PASS on one that does not; and the run survives bad credentials, a bad
proxy, changed host keys and dead nodes. Each test runs `acpcheck run` as a user
would (a real process, real sshd nodes, the real SOCKS5 proxy).

The `defects` scenario (acpcheck/lab/scenarios/defects.yaml) says which node carries
which defect. Two checks cannot be proven here: the CPU architecture of a lab node
is this machine's (ACP-NODE-028 ARM CPU model, ACP-NODE-036 same architecture);
their unit tables in tests/nodes cover both outcomes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from acpcheck.lab import LabInfo

#: check -> (nodes that must FAIL, nodes that must PASS) in the defects lab's own plan.
PROOFS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "ACP-NODE-001": (("bad-kernel",), ("healthy",)),
    "ACP-NODE-002": (("centos-bad",), ("centos-ok",)),
    "ACP-NODE-003": (("bad-kernel",), ("healthy",)),
    "ACP-NODE-004": (("centos-bad",), ("centos-ok",)),
    "ACP-NODE-005": (("bad-kernel",), ("healthy",)),
    "ACP-NODE-006": (("bad-kernel",), ("healthy",)),
    "ACP-NODE-007": (("bad-config",), ("healthy",)),
    "ACP-NODE-008": (("bad-kernel",), ("healthy",)),
    "ACP-NODE-009": (("bad-sudo",), ("healthy", "hidden-ok")),
    "ACP-NODE-010": (("bad-config",), ("healthy",)),
    "ACP-NODE-011": (("bad-config",), ("healthy",)),
    "ACP-NODE-012": (("bad-config",), ("healthy",)),
    "ACP-NODE-013": (("bad-config",), ("healthy",)),
    "ACP-NODE-014": (("bad-config",), ("healthy",)),
    "ACP-NODE-015": (("bad-config", "bad-network", "bad-software"), ("healthy",)),
    "ACP-NODE-016": (("bad-config",), ("healthy",)),
    "ACP-NODE-018": (("bad-network",), ("healthy",)),
    "ACP-NODE-019": (("bad-network",), ("healthy",)),
    "ACP-NODE-020": (("bad-network",), ("healthy",)),
    "ACP-NODE-021": (("bad-network",), ("healthy",)),
    "ACP-NODE-022": (("bad-software",), ("healthy",)),
    "ACP-NODE-023": (("bad-software",), ("healthy",)),
    "ACP-NODE-024": (("bad-software",), ("healthy",)),
    "ACP-NODE-025": (("bad-software",), ("healthy",)),
    "ACP-NODE-026": (("bad-software",), ("healthy",)),
    "ACP-NODE-027": (("bad-kernel", "bad-network", "kylin-sp2"), ("healthy", "centos-ok", "kylin-ok")),
    "ACP-NODE-031": (("bad-kernel",), ("healthy",)),
    "ACP-NODE-032": (("bad-kernel",), ("healthy",)),
}
#: Checks whose FAIL comes out as WARN by design (low severity under fail_on medium).
WARN_PROOFS = {"ACP-NODE-029": (("kylin-sp2",), ("kylin-ok",))}
#: Cross-node checks: FAIL for the defects fleet, PASS for a fleet of healthy nodes.
FLEET_PROOFS = ("ACP-NODE-033", "ACP-NODE-034", "ACP-NODE-035")
HEALTHY_FLEET = ("healthy", "hidden-ok", "bad-kernel")
NOT_PROVABLE_ON_THIS_MACHINE = {"ACP-NODE-028", "ACP-NODE-036"}


@pytest.fixture(scope="module")
def lab(defects_lab: LabInfo) -> LabInfo:
    return defects_lab


def acpcheck_run(lab: LabInfo, plan: dict[str, Any] | Path, out: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """`acpcheck run` on the lab; returns results.json plus the exit code."""
    if isinstance(plan, dict):
        path = out.parent / f"{out.name}-plan.yaml"
        path.write_text(yaml.safe_dump(plan))
        plan = path
    command = [sys.executable, "-m", "acpcheck", "run", "--plan", str(plan), "--out", str(out), *args]
    completed = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **lab.env(), **(env or {})}, timeout=120, stdin=subprocess.DEVNULL)
    results_file = out / "results.json"
    assert results_file.exists(), completed.stdout + completed.stderr
    document = json.loads(results_file.read_text())
    document["exit"] = completed.returncode
    document["output"] = completed.stdout + completed.stderr
    return document


def statuses(document: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {(r["check"], r["target"].removeprefix("node:")): r["status"] for r in document["results"]}


def lab_plan(lab: LabInfo) -> dict[str, Any]:
    return yaml.safe_load(lab.plan_file.read_text())


@pytest.fixture(scope="module")
def full_run(lab: LabInfo, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return acpcheck_run(lab, lab.plan_file, tmp_path_factory.mktemp("full") / "out", "--profile", "preinstall")


def test_full_run_finds_defects_and_completes(full_run: dict[str, Any]) -> None:
    assert full_run["exit"] == 1
    assert full_run["summary"]["error"] == 0, [r for r in full_run["results"] if r["status"] == "error"]
    assert "gathering facts: 12/12 nodes" in full_run["output"]


@pytest.mark.parametrize("check", sorted(PROOFS))
def test_node_check_fails_on_the_defect_and_passes_without(full_run: dict[str, Any], check: str) -> None:
    got = statuses(full_run)
    failing, passing = PROOFS[check]
    for node in failing:
        assert got[(check, node)] == "fail", (check, node)
        message = next(r["message"] for r in full_run["results"] if r["check"] == check and r["target"] == f"node:{node}")
        assert node in message  # the FAIL names the node …
    for node in passing:
        assert got[(check, node)] == "pass", (check, node)


@pytest.mark.parametrize("check", sorted(WARN_PROOFS))
def test_advisory_node_check_warns_on_the_defect(full_run: dict[str, Any], check: str) -> None:
    got = statuses(full_run)
    failing, passing = WARN_PROOFS[check]
    assert all(got[(check, node)] == "warn" for node in failing)
    assert all(got[(check, node)] == "pass" for node in passing)


def test_cross_node_checks_fail_for_the_defects_fleet(full_run: dict[str, Any]) -> None:
    got = statuses(full_run)
    assert {check: got[(check, "nodes")] for check in FLEET_PROOFS} == dict.fromkeys(FLEET_PROOFS, "fail")
    messages = {r["check"]: r["message"] for r in full_run["results"] if r["target"] == "nodes"}
    assert "twin" in messages["ACP-NODE-033"] and "Asia/Shanghai" in messages["ACP-NODE-034"] and "bad-time" in messages["ACP-NODE-035"]
    assert got[("ACP-NODE-037", "nodes")] == "warn"  # Debian among Ubuntu, CentOS and Kylin: OS type "should" match


def test_cross_node_checks_pass_for_a_consistent_fleet(lab: LabInfo, tmp_path: Path) -> None:
    plan = lab_plan(lab)
    plan["spec"]["nodes"] = [n for n in plan["spec"]["nodes"] if n["name"] in HEALTHY_FLEET]
    got = statuses(acpcheck_run(lab, plan, tmp_path / "out", "--check", "ACP-NODE-03*"))
    for check in (*FLEET_PROOFS, "ACP-NODE-036", "ACP-NODE-037"):
        assert got[(check, "nodes")] == "pass", check


def test_plan_ip_missing_on_the_node(lab: LabInfo, tmp_path: Path) -> None:
    plan = lab_plan(lab)
    healthy = next(n for n in plan["spec"]["nodes"] if n["name"] == "healthy")
    healthy["sshHost"] = healthy["ipv4"]
    healthy["ipv4"] = "203.0.113.250"  # reachable over SSH, but not the node's address
    got = statuses(acpcheck_run(lab, plan, tmp_path / "out", "--check", "ACP-NODE-017"))
    assert got[("ACP-NODE-017", "healthy")] == "fail"
    assert got[("ACP-NODE-017", "bad-kernel")] == "pass"


def test_global_control_plane_minimum_size(lab: LabInfo, tmp_path: Path) -> None:
    plan = lab_plan(lab)
    plan["spec"]["cluster"]["role"] = "global"
    got = statuses(acpcheck_run(lab, plan, tmp_path / "out", "--check", "ACP-NODE-030"))
    assert got[("ACP-NODE-030", "bad-kernel")] == "fail"  # 2 CPUs, 4 GiB
    assert got[("ACP-NODE-030", "healthy")] == "pass"


@pytest.mark.parametrize(("vip", "expected"), [("203.0.113.250", "pass"), ("192.0.2.250", "fail")])
def test_self_built_vip_in_the_control_plane_subnet(lab: LabInfo, tmp_path: Path, vip: str, expected: str) -> None:
    plan = lab_plan(lab)
    plan["spec"]["endpoint"] = {"address": vip, "selfBuiltVIP": {"enabled": True, "vrid": 37}}
    got = statuses(acpcheck_run(lab, plan, tmp_path / "out", "--check", "ACP-NODE-038"))
    assert got[("ACP-NODE-038", "nodes")] == expected


def test_every_node_check_is_proven_here_or_named_as_not_provable() -> None:
    from acpcheck.catalog import load_catalog

    node_checks = {check for check in load_catalog() if check.startswith("ACP-NODE-")}
    proven = {*PROOFS, *WARN_PROOFS, *FLEET_PROOFS, "ACP-NODE-017", "ACP-NODE-030", "ACP-NODE-037", "ACP-NODE-038"}
    assert node_checks - proven == NOT_PROVABLE_ON_THIS_MACHINE


# -- transport failures: ERROR for the node concerned, the rest of the run completes ---------


def only(plan: dict[str, Any], *names: str) -> dict[str, Any]:
    plan["spec"]["nodes"] = [n for n in plan["spec"]["nodes"] if n["name"] in names]
    return plan


def errors_by_node(document: dict[str, Any]) -> dict[str, str]:
    return {r["target"].removeprefix("node:"): r["message"] for r in document["results"] if r["status"] == "error"}


def test_wrong_key_is_an_auth_error(lab: LabInfo, tmp_path: Path) -> None:
    stranger = tmp_path / "id_stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    plan = only(lab_plan(lab), "healthy", "bad-kernel")
    plan["spec"]["nodes"][0]["ssh"] = {"auth": {"privateKeyFile": str(stranger)}}
    started = time.monotonic()
    document = acpcheck_run(lab, plan, tmp_path / "out", "--check", "ACP-NODE-008")
    assert time.monotonic() - started < 60  # generous: only "it did not hang"
    assert document["exit"] == 1  # bad-kernel's swap FAIL outranks healthy's ERROR
    assert "could not check: auth:" in errors_by_node(document)["healthy"]
    assert statuses(document)[("ACP-NODE-008", "bad-kernel")] == "fail"  # the other node still ran


def test_wrong_password_is_an_auth_error_and_never_printed(lab: LabInfo, tmp_path: Path) -> None:
    plan = only(lab_plan(lab), "bad-sudo")
    plan["spec"]["nodes"][0]["ssh"] = {"user": "acplab", "auth": {"passwordEnv": "LAB_WRONG_PASSWORD"}}
    document = acpcheck_run(lab, plan, tmp_path / "out", "--check", "ACP-NODE-008", env={"LAB_WRONG_PASSWORD": "Not-The-Password-9"})
    assert "could not check: auth:" in errors_by_node(document)["bad-sudo"]
    assert "Not-The-Password-9" not in document["output"] + json.dumps(document)


def test_right_password_works(lab: LabInfo, tmp_path: Path) -> None:
    plan = only(lab_plan(lab), "bad-sudo")
    plan["spec"]["nodes"][0]["ssh"] = {"user": "acplab", "auth": {"passwordEnv": "ACPLAB_SSH_PASSWORD"}}
    assert statuses(acpcheck_run(lab, plan, tmp_path / "out", "--check", "ACP-NODE-008"))[("ACP-NODE-008", "bad-sudo")] == "pass"


def test_proxy_with_wrong_credentials_is_an_error_for_hidden_nodes_only(lab: LabInfo, tmp_path: Path) -> None:
    document = acpcheck_run(lab, only(lab_plan(lab), "healthy", "hidden-ok"), tmp_path / "out", "--check", "ACP-NODE-008", env={"ACPLAB_PROXY_PASSWORD": "wrong"})
    errors = errors_by_node(document)
    assert list(errors) == ["hidden-ok"] and "proxy-auth" in errors["hidden-ok"]
    assert statuses(document)[("ACP-NODE-008", "healthy")] == "pass"


@pytest.mark.parametrize("policy", ["strict", "accept-new"])
def test_changed_host_key_is_refused(lab: LabInfo, tmp_path: Path, policy: str) -> None:
    impostor = tmp_path / "impostor"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(impostor)], check=True)
    plan = only(lab_plan(lab), "healthy", "bad-kernel")
    known_hosts = tmp_path / "known_hosts"
    healthy_ip = plan["spec"]["nodes"][0]["ipv4"]
    key_type, key_data = impostor.with_suffix(".pub").read_text().split()[:2]
    pinned = [line for line in lab.paths.known_hosts.read_text().splitlines() if not line.startswith(f"{healthy_ip} ")]
    pinned.append(f"{healthy_ip} {key_type} {key_data}")
    known_hosts.write_text("\n".join(pinned) + "\n")
    plan["spec"]["ssh"].update({"hostKeyPolicy": policy, "knownHostsFile": str(known_hosts)})
    document = acpcheck_run(lab, plan, tmp_path / "out", "--check", "ACP-NODE-008")
    assert "host-key" in errors_by_node(document)["healthy"] and "CHANGED" in errors_by_node(document)["healthy"]
    assert statuses(document)[("ACP-NODE-008", "bad-kernel")] == "fail"


def sshd_pids(lab: LabInfo, node: str) -> list[int]:
    netns = lab.node(node).netns
    pids = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True, check=True).stdout.split()
    return [int(pid) for pid in pids if Path(f"/proc/{pid}/comm").read_text().strip() == "sshd"]


def test_frozen_node_times_out_and_the_run_completes(lab: LabInfo, tmp_path: Path) -> None:
    plan = only(lab_plan(lab), "healthy", "bad-kernel")
    plan["spec"]["ssh"]["connectTimeoutSeconds"] = 2
    frozen = sshd_pids(lab, "healthy")
    for pid in frozen:
        os.kill(pid, signal.SIGSTOP)  # the node stops answering, like a hung machine
    try:
        started = time.monotonic()
        document = acpcheck_run(lab, plan, tmp_path / "out", "--check", "ACP-NODE-008")
        elapsed = time.monotonic() - started
    finally:
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)
    assert "timeout" in errors_by_node(document)["healthy"]
    assert statuses(document)[("ACP-NODE-008", "bad-kernel")] == "fail"
    assert elapsed < 60  # bounded by the node's timeout, not hung


def test_node_killed_before_its_turn_is_unreachable(lab: LabInfo, tmp_path: Path) -> None:
    # Killing the node's sshd listener closes its port: from then on the node refuses
    # connections, as a powered-off service does. This is the lab's last test on it.
    for pid in sshd_pids(lab, "kylin-sp2"):
        os.kill(pid, signal.SIGKILL)
    document = acpcheck_run(lab, only(lab_plan(lab), "kylin-sp2", "kylin-ok"), tmp_path / "out", "--check", "ACP-NODE-008")
    assert "unreachable" in errors_by_node(document)["kylin-sp2"]
    assert statuses(document)[("ACP-NODE-008", "kylin-ok")] == "pass"
    assert document["exit"] == 2


def test_xdist_run_gives_the_same_results_and_contacts_each_node_once(lab: LabInfo, tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"  # one file for both runs: messages cite it
    plan.write_text(yaml.safe_dump(only(lab_plan(lab), "healthy", "hidden-ok", "bad-kernel", "bad-config")))
    logs = {name: lab.state_dir / "nodes" / name / "sshd.log" for name in ("healthy", "hidden-ok", "bad-kernel", "bad-config")}
    before = {name: log.read_text().count("Accepted ") for name, log in logs.items()}
    parallel = acpcheck_run(lab, plan, tmp_path / "parallel", "-n", "2")
    after = {name: log.read_text().count("Accepted ") for name, log in logs.items()}
    assert {name: after[name] - before[name] for name in logs} == dict.fromkeys(logs, 1)
    serial = acpcheck_run(lab, plan, tmp_path / "serial")
    strip = lambda d: sorted((r["check"], r["target"], r["status"], r["message"]) for r in d["results"] if "clock" not in r["message"])  # noqa: E731
    assert strip(parallel) == strip(serial)
