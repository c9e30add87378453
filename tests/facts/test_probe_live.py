"""The probe over a real loopback sshd: its facts must match what Python reads locally."""

from __future__ import annotations

import os
import platform
import re
import socket
import time
from pathlib import Path

import pytest
from realsshd import FAST, Lab

from acpcheck.facts.gather import PROBE_COMMAND, probe_session
from acpcheck.facts.model import NodeFacts, field_errors, probe_script
from acpcheck.transport import KnownHosts, SshSession, connect, resolve_ssh

ROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Sandboxed kernels (gVisor) have no /proc/modules; /sys/module still lists the modules, so nothing is lost.
EXPECTED_ERRORS = ()


def session_as(lab: Lab, known_hosts: KnownHosts, user: str = "root") -> SshSession:
    plan = lab.plan(user=user)
    return connect(resolve_ssh(plan, plan.spec.nodes[0]), timeouts=FAST, known_hosts=known_hosts)


@pytest.fixture
def known_hosts(tmp_path: Path) -> KnownHosts:
    return KnownHosts(tmp_path / "known_hosts")


@pytest.fixture
def root_facts(lab: Lab, known_hosts: KnownHosts) -> NodeFacts:
    with session_as(lab, known_hosts) as session:
        return probe_session(session)


def test_probe_matches_local_reads(lab: Lab, root_facts: NodeFacts) -> None:
    facts = root_facts
    cpuinfo = Path("/proc/cpuinfo").read_text()
    meminfo = Path("/proc/meminfo").read_text()
    assert facts.node == "n1"
    assert facts.hostname == socket.gethostname()
    assert facts.kernel_release == Path("/proc/sys/kernel/osrelease").read_text().strip()
    assert facts.architecture == platform.machine()
    assert facts.os_id == platform.freedesktop_os_release()["ID"]
    assert facts.cpu_count == len(re.findall(r"^processor\s*:", cpuinfo, re.MULTILINE))
    assert facts.memory_kib == int(re.search(r"^MemTotal:\s+(\d+)", meminfo, re.MULTILINE)[1])  # type: ignore[index]
    assert facts.sysctls["net.ipv4.ip_forward"] == Path("/proc/sys/net/ipv4/ip_forward").read_text().strip()
    assert len(facts.mounts) == len(Path("/proc/mounts").read_text().splitlines())
    assert ("tcp", "127.0.0.1", lab.sshd.port) in {(x.protocol, x.address, x.port) for x in facts.listeners}
    assert facts.binaries["ip"] == __import__("shutil").which("ip", path=ROOT_PATH)
    root_fs = os.statvfs("/")
    assert facts.disks[0].path == "/" and facts.disks[0].size_kib == root_fs.f_blocks * root_fs.f_frsize // 1024
    assert {d.path for d in facts.disks} == {"/", "/var/lib/etcd", "/var/lib/containerd", "/cpaas", "/tmp"}
    if Path("/etc/timezone").exists() and not Path("/run/systemd/system").exists():
        assert facts.timezone == Path("/etc/timezone").read_text().strip()
    assert (facts.user, facts.is_root, facts.passwordless_sudo) == ("root", True, None)
    assert facts.sshd.get("usepam") in ("yes", "no")  # sshd -T ran
    assert facts.probe_errors == EXPECTED_ERRORS


def test_clock_is_read_within_the_round_trip(root_facts: NodeFacts) -> None:
    # Same machine, same clock: the skew estimate must be within the measured uncertainty.
    assert 0 <= root_facts.round_trip_seconds < 5
    assert abs(root_facts.clock_epoch - root_facts.clock_read_at_epoch) <= root_facts.round_trip_seconds / 2 + 0.05
    assert abs(root_facts.clock_read_at_epoch - time.time()) < 60


def test_probe_is_one_fast_exec(lab: Lab, known_hosts: KnownHosts, capsys: pytest.CaptureFixture[str]) -> None:
    with session_as(lab, known_hosts) as session:
        durations = []
        for _ in range(5):
            result = session.run(PROBE_COMMAND, stdin=probe_script())
            assert result.exit_status == 0, result.stderr
            durations.append(result.finished_at - result.input_sent_at)
    with capsys.disabled():
        print(f"\nprobe exec on loopback: best {min(durations):.3f} s, worst {max(durations):.3f} s over 5 runs")
    assert min(durations) < 2  # target < 0.3 s; generous for a loaded CI box


def test_non_root_without_sudo(lab: Lab, known_hosts: KnownHosts) -> None:
    with session_as(lab, known_hosts, lab.plain.name) as session:
        facts = probe_session(session)
    assert (facts.user, facts.is_root, facts.passwordless_sudo) == (lab.plain.name, False, False)
    assert facts.sshd == {} and field_errors(facts, "sshd")  # sshd -T needs root: unknown, and why
    assert facts.hostname == socket.gethostname()  # everything else still arrives


def test_non_root_with_passwordless_sudo(lab: Lab, known_hosts: KnownHosts, root_facts: NodeFacts) -> None:
    with session_as(lab, known_hosts, lab.sudoer.name) as session:
        facts = probe_session(session)
    assert (facts.user, facts.is_root, facts.passwordless_sudo) == (lab.sudoer.name, False, True)
    assert facts.sshd == root_facts.sshd  # read as root through sudo -n
    assert facts.probe_errors == EXPECTED_ERRORS
