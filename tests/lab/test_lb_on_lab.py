"""The load-balancer proof on the lab: a real haproxy (and keepalived) in front of real
sshd nodes, one shipped ``lb-*`` scenario per case (lab/acpcheck_lab/scenarios/). Each
gives exactly its finding, naming the port and the node; and no listener survives any
run: a normal end, FAIL, ERROR, Ctrl-C or a killed runner. ``acpcheck run`` runs as
a real process, under an audit hook that records every address it contacts: only
the lab's own.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from acpcheck_lab import LabInfo, down, up

#: Strings only acpcheck's node-side helpers carry on their command lines.
HELPER_MARKS = (b"acpcheck-port", b"acpcheck-bg", b"acpcheck-conn", b"acpcheck-vrrp")

#: Runs `acpcheck` with an audit hook that appends every address it connects or sends to.
AUDITED = r"""
import json, runpy, sys
log = open(sys.argv.pop(1), "a", buffering=1)
def hook(event, args):
    if event in ("socket.connect", "socket.sendto") and isinstance(args[-1], tuple):
        log.write(json.dumps([event, str(args[-1][0]), args[-1][1]]) + "\n")
    elif event == "socket.getaddrinfo":
        log.write(json.dumps([event, str(args[0]), args[1]]) + "\n")
sys.addaudithook(hook)
sys.argv[0] = "acpcheck"
runpy.run_module("acpcheck", run_name="__main__")
"""


@contextlib.contextmanager
def lab_up(state: Path, scenario: str) -> Iterator[LabInfo]:
    info = up(scenario, state)
    try:
        yield info
    finally:
        down(state, purge=True)


def leftovers(lab: LabInfo) -> list[str]:
    """acpcheck helpers still running in any lab node."""
    found = []
    for node in lab.nodes:
        pids = subprocess.run(
            ["ip", "netns", "pids", node.netns], capture_output=True, text=True, check=False
        ).stdout.split()
        for pid in pids:
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if any(mark in cmdline for mark in HELPER_MARKS):
                found.append(f"{node.name}: pid {pid}")
    return found


def plan_of(lab: LabInfo, edits: dict[str, Any] | None = None) -> dict[str, Any]:
    plan = yaml.safe_load(lab.plan_file.read_text())
    for key, value in (edits or {}).items():
        plan["spec"].setdefault(key, {}).update(value) if isinstance(value, dict) else plan["spec"].__setitem__(
            key, value
        )
    return plan


def run_acpcheck(
    lab: LabInfo,
    tmp: Path,
    *selectors: str,
    edits: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    plan: dict[str, Any] | None = None,
    timeout: float = 120,
) -> dict[str, Any]:
    """`acpcheck run` as a process under the audit hook; results.json plus exit code and the addresses contacted."""
    tmp.mkdir(parents=True, exist_ok=True)
    plan_file, out, audit = tmp / "plan.yaml", tmp / "out", tmp / "audit.jsonl"
    plan_file.write_text(yaml.safe_dump(plan or plan_of(lab, edits)))
    checks = [arg for selector in selectors for arg in ("--check", selector)]
    command = [sys.executable, "-c", AUDITED, str(audit), "run", "--plan", str(plan_file), "--out", str(out), *checks]
    completed = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
        env={**os.environ, **lab.env(), **(env or {})},
    )
    assert (out / "results.json").exists(), completed.stdout + completed.stderr
    document = json.loads((out / "results.json").read_text())
    document["exit"] = completed.returncode
    document["contacted"] = [json.loads(line) for line in audit.read_text().splitlines()] if audit.exists() else []
    return document


def findings(document: dict[str, Any]) -> dict[tuple[str, str], tuple[str, str]]:
    """Every result that is not a PASS or SKIP: (check, target) -> (status, message)."""
    return {
        (r["check"], r["target"]): (r["status"], r["message"])
        for r in document["results"]
        if r["status"] not in ("pass", "skip")
    }


def assert_only_lab_addresses(lab: LabInfo, document: dict[str, Any]) -> None:
    nets = [ipaddress.ip_network(cidr) for cidr in lab.subnets.values()]
    strangers = set()
    for event, host, _port in document["contacted"]:
        if event == "socket.getaddrinfo" and host in ("localhost", "None"):
            continue
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            strangers.add(f"{event} {host}")
            continue
        if not (address.is_loopback or any(address in net for net in nets)):
            strangers.add(f"{event} {host}")
    assert document["contacted"], "the audit hook saw no connection at all"
    assert not strangers, f"contacted outside the lab: {sorted(strangers)}"


@dataclass(frozen=True)
class Case:
    scenario: str
    selectors: tuple[str, ...]
    #: (check, target) -> (status, words the message must hold); every other result must PASS or SKIP
    expect: dict[tuple[str, str], tuple[str, tuple[str, ...]]]
    edits: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    #: (check, target) -> words of a SKIP that names the FAIL explaining it (one root cause, one FAIL)
    explained: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.scenario


#: The proof waits this long for a missing backend (the lab's haproxy sees a new one within 200 ms).
QUICK = {"loadBalancer": {"proofSeconds": 1}}
LB = ("ACP-LB-*",)
NOT_FORWARDED = ("port 11781 (alb-https)", "no control-plane node answered", "ACP-LB-001 FAILs")

CASES = [
    Case("lb-good", ("area:LB", "area:CONN"), {}),
    Case(
        "lb-missing-backend",
        LB,
        {("ACP-LB-002", "node:cp2"): ("fail", ("port 11780 (alb-http)", "reached cp1, cp3, never cp2"))},
        QUICK,
    ),
    Case(
        "lb-unforwarded",
        LB,
        {
            ("ACP-LB-001", "node:*"): (
                "fail",
                ("port 11781 (alb-https)", "198.18.0.10:11781 refused every connection"),
            ),
        },
        QUICK,
        explained={("ACP-LB-002", f"node:cp{i}"): NOT_FORWARDED for i in (1, 2, 3)},
    ),
    Case(
        "lb-endpoint-down",
        LB,
        {
            ("ACP-LB-001", "node:*"): (
                "fail",
                ("port 6443 (apiserver)", "port 11780 (alb-http)", "port 11781 (alb-https)", "did not answer"),
            ),
        },
        QUICK,
        explained={("ACP-LB-002", f"node:cp{i}"): ("no control-plane node answered", "port 6443") for i in (1, 2, 3)},
    ),
    Case(
        "lb-vip-taken",
        LB,
        {("ACP-LB-004", "node:*"): ("fail", ("198.18.0.10", "refused (a host sent a reset)", "answers ARP"))},
    ),
    Case(
        "lb-vrrp-blocked",
        LB,
        {("ACP-LB-005", "node:*"): ("fail", ("VRRP from cp1 never reached cp3", "VRRP from cp2 never reached cp3"))},
    ),
    Case(
        "lb-live",
        LB,
        {
            ("ACP-LB-008", "cluster:lab-lb-live"): (
                "fail",
                ("served by cp1 expires in", "served by cp2 expires in", "Medium"),
            ),
            ("ACP-LB-009", "cluster:lab-lb-live"): ("fail", ("cp3: 198.18.0.13:6443 does not answer",)),
            ("ACP-LB-010", "cluster:lab-lb-live"): ("fail", ("12 connections to 198.18.0.10:6443 reached",)),
        },
        env={"ACPCHECK_LIVE": "1"},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_scenario_gives_exactly_its_finding(case: Case, lab_machine: Path, tmp_path: Path) -> None:
    with lab_up(lab_machine, case.scenario) as lab:
        document = run_acpcheck(lab, tmp_path, *case.selectors, edits=case.edits, env=case.env)
        assert leftovers(lab) == [], "a listener survived the run"
        extra: dict[str, Any] = {}
        if case.scenario == "lb-vrrp-blocked":
            extra["masters"] = keepalived_masters(lab)
        if case.scenario == "lb-live":
            extra["more names"] = run_acpcheck(
                lab,
                tmp_path / "names",
                *case.selectors,
                env=case.env,
                edits={"apiServer": {"publicAlternativeNames": ["api.lab.example", "api2.lab.example"]}},
            )
    seen = findings(document)
    assert set(seen) == set(case.expect), seen
    for key, (status, words) in case.expect.items():
        assert seen[key][0] == status, seen[key]
        missing = [word for word in words if word not in seen[key][1]]
        assert not missing, f"{key}: {missing} not in {seen[key][1]!r}"
    assert document["exit"] == (1 if case.expect else 0)
    results = {(r["check"], r["target"]): r for r in document["results"]}
    for key, words in case.explained.items():
        assert results[key]["status"] == "skip" and all(word in results[key]["message"] for word in words), results[key]
    assert_only_lab_addresses(lab, document)
    if "masters" in extra:
        # real keepalived agrees: cp1 and cp2 hear each other (one master), cp3 hears nobody (a second master)
        assert extra["masters"] == ["cp1", "cp3"]
    if "more names" in extra:
        status, message = findings(extra["more names"])[("ACP-LB-006", "cluster:lab-lb-live")]
        assert status == "fail" and "lacks api2.lab.example among its SANs" in message


def test_pinning_lb_reaches_one_node_only(lab_machine: Path, tmp_path: Path) -> None:
    with lab_up(lab_machine, "lb-pinned") as lab:
        document = run_acpcheck(lab, tmp_path, *LB, edits=QUICK)
        assert leftovers(lab) == []
    seen = findings(document)
    failed = sorted(
        target for (check, target), (status, _) in seen.items() if check == "ACP-LB-002" and status == "fail"
    )
    assert len(failed) == 2 and set(seen) == {("ACP-LB-002", target) for target in failed}
    pinned = ({"node:cp1", "node:cp2", "node:cp3"} - set(failed)).pop().removeprefix("node:")
    for target in failed:
        message = seen[("ACP-LB-002", target)][1]
        for port in ("port 6443", "port 11780", "port 11781"):
            assert port in message
        assert f"every connection went to {pinned}" in message


def test_an_unreachable_node_is_an_error_and_the_others_are_still_proven_and_cleaned(
    lab_machine: Path, tmp_path: Path
) -> None:
    with lab_up(lab_machine, "lb-missing-backend") as lab:
        plan = plan_of(lab, QUICK)
        cp3 = next(node for node in plan["spec"]["nodes"] if node["name"] == "cp3")
        cp3["ssh"] = {"port": 2222}  # nothing listens there: its facts, and so its listener, fail
        document = run_acpcheck(lab, tmp_path, *LB, plan=plan)
        assert leftovers(lab) == []
    seen = findings(document)
    assert seen[("ACP-LB-002", "node:cp3")][0] == "error" and "unreachable" in seen[("ACP-LB-002", "node:cp3")][1]
    assert seen[("ACP-LB-002", "node:cp2")][0] == "fail" and "never cp2" in seen[("ACP-LB-002", "node:cp2")][1]
    assert ("ACP-LB-002", "node:cp1") not in seen


def keepalived_masters(lab: LabInfo) -> list[str]:
    """Real keepalived on cp1-cp3 (priorities 150/100/50) for the plan's VIP: who ends up holding it."""
    config = lab.state_dir / "vrrp-check"
    config.mkdir()
    started = []
    try:
        for priority, node in zip((150, 100, 50), ("cp1", "cp2", "cp3"), strict=True):
            conf = config / f"{node}.conf"
            conf.write_text(
                f"global_defs {{\n  vrrp_version 3\n}}\nvrrp_instance check {{\n  state BACKUP\n  interface "
                "eth0\n  virtual_router_id 52\n"
                f"  priority {priority}\n  advert_int 0.2\n  virtual_ipaddress {{\n    "
                f"{lab.lab_subnets.endpoint_address}/24 dev eth0\n  }}\n}}\n"
            )
            started.append(
                subprocess.Popen(
                    [
                        "ip",
                        "netns",
                        "exec",
                        lab.node(node).netns,
                        "keepalived",
                        "-n",
                        "-l",
                        "-P",
                        "-f",
                        str(conf),
                        "-p",
                        str(config / f"{node}.pid"),
                        "-r",
                        str(config / f"{node}-vrrp.pid"),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        deadline = time.monotonic() + 8
        masters: list[str] = []
        while time.monotonic() < deadline:
            masters = [
                node
                for node in ("cp1", "cp2", "cp3")
                if str(lab.lab_subnets.endpoint_address)
                in subprocess.run(
                    ["ip", "-n", lab.node(node).netns, "-4", "address"], capture_output=True, text=True, check=False
                ).stdout
            ]
            if masters == ["cp1", "cp3"]:
                break
            time.sleep(0.25)
        return masters
    finally:
        for process in started:
            process.terminate()
        for process in started:
            process.wait(10)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "killed"])
def test_no_listener_survives_an_interrupted_or_killed_runner(
    sig: signal.Signals, lab_machine: Path, tmp_path: Path
) -> None:
    """Mid-proof (the endpoint is down and the proof would wait 30 s), the runner gets
    Ctrl-C or SIGKILL. The listeners' node-side deadline is 45 s away; they are gone
    within seconds anyway: each notices its runner's connection is gone."""
    with lab_up(lab_machine, "lb-endpoint-down") as lab:
        plan_file = tmp_path / "plan.yaml"
        plan_file.write_text(yaml.safe_dump(plan_of(lab, {"loadBalancer": {"proofSeconds": 30}})))
        runner = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "acpcheck",
                "run",
                "--plan",
                str(plan_file),
                "--out",
                str(tmp_path / "out"),
                "--check",
                "ACP-LB-*",
            ],
            env={**os.environ, **lab.env()},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 30
            while len(leftovers(lab)) < 3 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert len(leftovers(lab)) >= 3, "the listeners never started"
            runner.send_signal(sig)
            runner.wait(20)
            stopped = time.monotonic()
            # The node-side deadline is 45 s away: gone well before it means the listeners
            # noticed their runner's connection was gone. 25 s leaves room for a machine
            # busy with the rest of the suite (10 s was once too tight under load).
            while leftovers(lab) and time.monotonic() - stopped < 25:
                time.sleep(0.1)
            assert leftovers(lab) == [], f"still running {time.monotonic() - stopped:.1f} s after the runner ended"
        finally:
            if runner.poll() is None:
                runner.kill()
                runner.wait(10)
