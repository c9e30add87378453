"""Remediation on real lab nodes (lab/acpcheck_lab/scenarios/remediation.yaml): every change
is observed from outside acpcheck, in each node's own root view (nsenter into its mount
namespace) and its own network namespace (net.* sysctls, nftables).

What is real here and what is not:

- real: every file a step edits, creates, removes or moves aside (sshd_config, hosts,
  system.conf, ufw.conf, selinux/config, default/grub, modules-load.d, dpkg's status
  file, kubelet.service, /usr/local/bin, the leftover directories), each node's own
  nftables rules and net.* sysctls, each node's own sshd and its reload (SIGHUP, logged
  in the node's sshd.log), logins through the SOCKS5 proxy and sudo;
- not real: the kernel-side state of swap, loaded modules, SELinux enforcement and the
  running kernel's command line. A lab node shows generated files there (/proc/swaps,
  /proc/modules, /sys/fs/selinux, /proc/cmdline), so swapoff, modprobe and setenforce
  cannot act, and the steps say so and report NEEDS REBOOT: only their persisted
  configuration is proven here (their commands are unit-tested in
  tests/remediation/test_remediation_steps.py). No GRUB tool exists in the lab either.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from acpcheck import Scope, Severity, check, fail
from acpcheck.facts.model import NodeContext
from acpcheck.remediation import steps as step_module
from acpcheck.remediation.changes import Changes
from acpcheck.remediation.journal import Journal
from acpcheck.remediation.nodesteps import sshd_option, sysctl_values
from acpcheck.remediation.runner import Options, SshAccess, remediate, rollback
from acpcheck.remediation.steps import Step, register
from acpcheck.remediation.view import NodeView
from acpcheck_lab import LabInfo, down, up

#: Paths whose state (type, mode, owner, bytes) each node must get back from rollback.
WATCHED = {
    "fix-config": ["/etc/ssh/sshd_config", "/etc/hosts", "/etc/systemd/system.conf", "/etc/ufw/ufw.conf"],
    "fix-kernel": ["/etc/default/grub", "/etc/selinux/config", "/etc/modules-load.d/ipvs.conf", "/etc/modules-load.d"],
    "fix-soft": [
        "/etc/systemd/system/kubelet.service",
        "/var/lib/dpkg/status",
        "/var/lib/dpkg/status-old",
        "/usr/local/bin/docker",
        "/var/lib/docker",
        "/var/log/pods",
        "/var/lib/nerdctl",
    ],
    "fix-hidden": ["/etc/ssh/sshd_config"],
    "ok": ["/etc/ssh/sshd_config", "/etc/hosts"],
}
FIXED = {
    ("ACP-NODE-007", "fix-config"),
    ("ACP-NODE-010", "fix-config"),
    ("ACP-NODE-011", "fix-config"),
    ("ACP-NODE-012", "fix-config"),
    ("ACP-NODE-014", "fix-config"),
    ("ACP-NODE-023", "fix-soft"),
    ("ACP-NODE-025", "fix-soft"),
    ("ACP-NODE-026", "fix-soft"),
    ("ACP-NODE-010", "fix-hidden"),
}
#: The lab cannot act on its nodes' kernels (see the module docstring): what persists is
#: done, the rest comes with the next boot …
NEEDS_REBOOT = {("ACP-NODE-003", "fix-kernel"), ("ACP-NODE-006", "fix-kernel"), ("ACP-NODE-008", "fix-kernel")}
#: … except GRUB: /etc/default/grub is edited, but no GRUB tool exists to regenerate its configuration.
STILL_FAILING = {("ACP-NODE-001", "fix-kernel")}


@pytest.fixture(scope="module")
def lab(lab_machine: Path) -> Iterator[LabInfo]:
    """The remediation scenario for this module (pytest tears it down after the last test, passed or not)."""
    yield up("remediation", lab_machine)
    down(lab_machine, purge=True)


def in_node(lab: LabInfo, node: str, script: str, *args: str) -> str:
    """``script`` in the node's own mount and network namespaces (not through acpcheck)."""
    pid = (lab.state_dir / "nodes" / node / "sshd.pid").read_text().strip()
    done = subprocess.run(
        ["nsenter", "-t", pid, "-m", "-n", "--", "sh", "-c", script, "sh", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout


STATE = r"""for p in "$@"; do
  if [ -L "$p" ]; then echo "$p link $(readlink "$p")"
  elif [ -f "$p" ]; then echo "$p file $(stat -c '%a %u %g' "$p") $(sha256sum < "$p" | cut -d' ' -f1)"
  elif [ -d "$p" ]; then echo "$p dir $(stat -c '%a %u %g' "$p") $(find "$p" | sort | sha256sum | cut -d' ' -f1)"
  else echo "$p absent"; fi
done"""


def node_state(lab: LabInfo) -> dict[str, str]:
    """Every watched path of every node, the fix-config node's nftables rules, and the nodes' arp_accept."""
    state = {node: in_node(lab, node, STATE, *paths) for node, paths in WATCHED.items()}
    state["fix-config nft"] = in_node(lab, "fix-config", "nft list ruleset")
    return state


def run(lab: LabInfo, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args],
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
        check=False,
        env={**os.environ, **lab.env(), **(env or {})},
    )


def assess(lab: LabInfo, out: Path) -> set[tuple[str, str]]:
    """`acpcheck run` of the node checks: the (check, node) pairs that FAIL."""
    done = run(lab, "acpcheck", "run", "--plan", str(lab.plan_file), "--out", str(out), "--check", "ACP-NODE-0*")
    assert (out / "results.json").exists(), f"exit {done.returncode}\n{done.stdout}{done.stderr}"
    results = json.loads((out / "results.json").read_text())
    assert results["summary"]["error"] == 0, done.stdout + done.stderr
    return {(r["check"], r["target"].removeprefix("node:")) for r in results["results"] if r["status"] == "fail"}


def remediation(
    lab: LabInfo, out: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    done = run(
        lab, "acpcheck.remediation", "remediate", "--plan", str(lab.plan_file), "--out", str(out), *args, env=env
    )
    return done, json.loads((out / "remediation.json").read_text())


def outcomes(document: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {(s["check"], n["node"]): s["outcome"] for n in document["nodes"] for s in n["steps"]}


def reloads(lab: LabInfo, node: str) -> int:
    return (lab.state_dir / "nodes" / node / "sshd.log").read_text().count("Received SIGHUP")


def test_assess_dry_run_apply_assess_rollback_assess(lab: LabInfo, tmp_path: Path) -> None:
    """The whole promise on real nodes: the dry-run changes nothing and shows what apply
    then writes; apply fixes what the lab can change (and says NEEDS REBOOT where it
    cannot act on a kernel); a second apply changes nothing; rollback brings back the
    same failures with byte-identical files; no secret reaches any output."""
    outputs: list[str] = []
    pristine = node_state(lab)
    failing = assess(lab, tmp_path / "assess1")
    assert FIXED | NEEDS_REBOOT | STILL_FAILING <= failing

    dry, planned = remediation(
        lab, tmp_path / "dry", "--from", str(tmp_path / "assess1" / "results.json"), "--allow-removals"
    )
    outputs.append(dry.stdout + dry.stderr)
    assert dry.returncode == 1, dry.stdout + dry.stderr
    assert node_state(lab) == pristine  # a dry-run changes nothing
    assert "-UseDNS yes" in dry.stdout and "+UseDNS no" in dry.stdout and "$ nft flush ruleset" in dry.stdout

    before_reloads = {node: reloads(lab, node) for node in ("fix-config", "fix-hidden")}
    applied, document = remediation(lab, tmp_path / "apply", "--allow-removals", "--apply", "--run-id", "LAB-RUN-1")
    outputs.append(applied.stdout + applied.stderr)
    got = outcomes(document)
    assert {pair for pair, outcome in got.items() if outcome == "fixed"} == FIXED, applied.stdout
    assert {pair for pair, outcome in got.items() if outcome == "needs reboot"} == NEEDS_REBOOT, applied.stdout
    assert {pair for pair, outcome in got.items() if outcome == "still failing"} == STILL_FAILING, applied.stdout
    assert applied.returncode == 1  # findings remain until a reboot
    # sshd really reloaded (twice on fix-config: UseDNS, then UsePAM), and logins went on working
    assert reloads(lab, "fix-config") == before_reloads["fix-config"] + 2
    assert reloads(lab, "fix-hidden") == before_reloads["fix-hidden"] + 1
    # what the dry-run planned is what the nodes hold now (a file two steps edit: the second's bytes)
    last_planned = {
        (n["node"], a["path"]): a["afterSha256"]
        for n in planned["nodes"]
        for s in n["steps"]
        for a in s["actions"]
        if a["kind"] == "file"
    }
    assert len(last_planned) == 9
    for (node, path), sha in last_planned.items():
        line = in_node(lab, node, STATE, path).split()
        assert (line[-1] if sha else line[1]) == (sha or "absent"), (node, path)
    assert in_node(lab, "fix-config", "nft list ruleset").strip() == ""  # the node's own rules, flushed

    assert assess(lab, tmp_path / "assess2") & FIXED == set()
    assert assess(lab, tmp_path / "assess2") >= NEEDS_REBOOT | STILL_FAILING

    again, second = remediation(lab, tmp_path / "apply2", "--allow-removals", "--apply", "--run-id", "LAB-RUN-2")
    outputs.append(again.stdout + again.stderr)
    assert "no change made" in again.stdout and sum(s["changed"] for n in second["nodes"] for s in n["steps"]) == 0
    assert not any(
        r["event"] == "intent"
        for _, records, _ in Journal.open(tmp_path / "apply2" / "journal").read()
        for r in records
    )

    undone = run(
        lab, "acpcheck.remediation", "rollback", "LAB-RUN-1", "--journal-dir", str(tmp_path / "apply" / "journal")
    )
    outputs.append(undone.stdout + undone.stderr)
    assert undone.returncode == 0, undone.stdout + undone.stderr
    assert assess(lab, tmp_path / "assess3") == failing
    assert node_state(lab) == pristine  # byte for byte, modes and owners, absent paths absent, the same nft rules

    written = [
        path.read_bytes()
        for out in ("dry", "apply", "apply2")
        for path in (tmp_path / out).rglob("*")
        if path.is_file()
    ]
    for secret in (lab.lab_password, lab.env().get("ACPLAB_PROXY_PASSWORD", "")):
        assert (
            secret
            and not any(secret in text for text in outputs)
            and not any(secret.encode() in data for data in written)
        )


def test_a_crash_between_any_two_changes_is_recovered_by_rollback(lab: LabInfo, tmp_path: Path) -> None:
    """The runner SIGKILLed at crash points (after a change is journaled, after it is made,
    after it is marked done), then `rollback`: the node is exactly as before."""
    pristine = node_state(lab)
    for point in (1, 2, 6, 11):
        out = tmp_path / f"crash{point}"
        done, _ = (
            run(
                lab,
                "acpcheck.remediation",
                "remediate",
                "--plan",
                str(lab.plan_file),
                "--out",
                str(out),
                "--apply",
                "--run-id",
                f"CRASH-{point}",
                "--check",
                "ACP-NODE-007",
                "--check",
                "ACP-NODE-01*",
                env={"ACPCHECK_REMEDIATION_CRASH_AT": str(point)},
            ),
            None,
        )
        assert done.returncode == -9, done.stdout + done.stderr  # killed mid-apply
        assert not (out / "remediation.json").exists()
        undone = run(lab, "acpcheck.remediation", "rollback", f"CRASH-{point}", "--journal-dir", str(out / "journal"))
        assert undone.returncode == 0, undone.stdout + undone.stderr
        assert node_state(lab) == pristine, point


# ---------------------------------------------------------------------------
# In-process: test steps that the shipped catalogue has no use for.

TEST_REF = ["https://docs.alauda.io/container_platform/4.3/install/prepare/node_preprocessing.html"]
ARP_ACCEPT = "net.ipv4.conf.all.arp_accept"


@check(
    id="ACP-NODE-961",
    title="arp_accept is on (test)",
    severity=Severity.HIGH,
    scope=Scope.NODE,
    refs=TEST_REF,
    remediation="-",
)
def check_arp_accept(node: NodeContext) -> None:
    """The sysctl step's proof: a net.* sysctl of the node's own namespace (test)."""
    if node.facts.sysctls.get(ARP_ACCEPT) != "1":
        fail(f"{node.name}: {ARP_ACCEPT} is {node.facts.sysctls.get(ARP_ACCEPT)}")


@check(
    id="ACP-NODE-962",
    title="sshd denies everybody (test)",
    severity=Severity.HIGH,
    scope=Scope.NODE,
    refs=TEST_REF,
    remediation="-",
)
def check_lockout(node: NodeContext) -> None:
    """A change that would lock everybody out, to prove it is taken back (test)."""
    fail(f"{node.name}: always")


def _lockout(view: NodeView) -> Changes:
    return sshd_option(view, "AllowUsers", "nobody-at-all")


@pytest.fixture
def lab_steps(monkeypatch: pytest.MonkeyPatch, lab: LabInfo) -> Iterator[None]:
    for name, value in lab.env().items():
        monkeypatch.setenv(name, value)
    steps = (
        Step(
            "ACP-NODE-961",
            "arp-accept",
            "arp_accept on",
            lambda view: sysctl_values(view, {ARP_ACCEPT: "1"}, "/etc/sysctl.d/90-acpcheck-test.conf", "test"),
        ),
        Step("ACP-NODE-962", "lockout", "AllowUsers nobody", _lockout),
    )
    for item in steps:
        register(item)
    yield
    for item in steps:
        step_module.STEPS.pop(item.check, None)


def only(lab: LabInfo, tmp_path: Path, *names: str):
    from acpcheck.model.plan import load_plan

    data = yaml.safe_load(lab.plan_file.read_text())
    data["spec"]["nodes"] = [n for n in data["spec"]["nodes"] if n["name"] in names]
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_plan(path)


def apply_in_process(plan: Any, tmp_path: Path, check_id: str, run_id: str):
    access = SshAccess(plan)
    try:
        return remediate(
            plan, Options(apply=True, selectors=(check_id,), run_id=run_id, journal_dir=tmp_path / run_id), access
        )
    finally:
        access.close()


def sysctl(lab: LabInfo, node: str) -> str:
    return in_node(lab, node, f"sysctl -n {ARP_ACCEPT}").strip()


def test_net_sysctls_change_in_the_nodes_own_namespace_and_come_back(
    lab: LabInfo, tmp_path: Path, lab_steps: None
) -> None:
    plan = only(lab, tmp_path, "fix-config", "fix-hidden")
    assert {sysctl(lab, n) for n in ("fix-config", "fix-hidden", "ok")} == {"0"}
    report = apply_in_process(plan, tmp_path, "ACP-NODE-961", "SYSCTL")
    assert [node.locked for node in report.nodes] == [None, None]  # no lock left behind by an earlier (killed) apply
    assert {item.outcome for node in report.nodes for item in node.steps} == {"fixed"}
    assert (sysctl(lab, "fix-config"), sysctl(lab, "fix-hidden"), sysctl(lab, "ok")) == (
        "1",
        "1",
        "0",
    )  # per namespace; "ok" not in the plan
    assert "net.ipv4.conf.all.arp_accept = 1" in in_node(lab, "fix-hidden", "cat /etc/sysctl.d/90-acpcheck-test.conf")
    access = SshAccess(plan)
    try:
        assert rollback(plan, Journal.open(tmp_path / "SYSCTL"), access).exit_code() == 0
    finally:
        access.close()
    assert {sysctl(lab, n) for n in ("fix-config", "fix-hidden")} == {"0"}
    assert in_node(lab, "fix-hidden", STATE, "/etc/sysctl.d/90-acpcheck-test.conf").split()[1] == "absent"


def test_an_sshd_change_that_locks_people_out_is_taken_back_at_once(
    lab: LabInfo, tmp_path: Path, lab_steps: None
) -> None:
    plan = only(lab, tmp_path, "ok")
    before = node_state(lab)["ok"]
    reloaded = reloads(lab, "ok")
    report = apply_in_process(plan, tmp_path, "ACP-NODE-962", "LOCKOUT")
    (item,) = [item for node in report.nodes for item in node.steps]
    assert item.outcome == "failed" and any("a new SSH login failed" in m for m in item.messages), item.messages
    assert node_state(lab)["ok"] == before
    assert reloads(lab, "ok") == reloaded + 2  # reloaded with the bad file, and again with the good one
    access = SshAccess(plan)  # the node still lets people in
    try:
        assert access.fresh_login(plan.spec.nodes[0]) is None
    finally:
        access.close()
