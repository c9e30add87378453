"""Background commands (``start``/``stop``/deadline) over SSH and locally, and the
wrapper under every POSIX shell installed here.

The loopback sshd runs commands on this machine, so the tests look at the
processes themselves (/proc) to prove that a stopped or expired command and its
children are gone. Zombies count as gone: this machine's init does not reap
orphans, and a zombie is dead.
"""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from realsshd import FAST, Lab

from acpcheck.transport import (
    Background,
    KnownHosts,
    LocalTransport,
    NodeTransport,
    SshSession,
    TransportError,
    connect,
    resolve_ssh,
)
from acpcheck.transport.background import WRAPPER, start_line, stop_line

# The command prints its own pid and a child's, then waits: both must die with it.
PARENT_AND_CHILD = 'echo "$$"; sleep 300 & echo "$!"; echo started; wait'


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return text.rsplit(") ", 1)[1].split()  # state ppid pgrp …


def live(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def group_members(pgid: int) -> list[int]:
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields is not None and fields[0] != "Z" and int(fields[2]) == pgid:
                members.append(int(entry))
    return members


def eventually(condition: Callable[[], bool], timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.05)


def started_pids(handle: Background) -> tuple[int, int]:
    """The command's pid and its child's, once it has printed them."""
    eventually(lambda: "started" in handle.output()[0], 5, "the command printed its pids")
    parent, child = handle.output()[0].split()[:2]
    return int(parent), int(child)


# --- both transports ----------------------------------------------------------------------


def test_stop_ends_the_command_and_its_child(transport: NodeTransport) -> None:
    handle = transport.start(PARENT_AND_CHILD, deadline=60)
    assert isinstance(handle, Background) and handle.pgid is not None
    parent, child = started_pids(handle)
    assert live(parent) and live(child) and handle.running()
    assert set(group_members(handle.pgid)) >= {parent, child}
    with pytest.raises(TransportError) as caught:
        handle.wait(0.2)
    assert caught.value.kind == "timeout" and "still running" in caught.value.message

    started = time.monotonic()
    result = handle.stop()
    assert time.monotonic() - started < 2  # SIGTERM is enough: no grace period spent
    assert not live(parent) and not live(child) and group_members(handle.pgid) == []
    assert not handle.running()
    assert result.stdout == f"{parent}\n{child}\nstarted\n"  # without the wrapper's marker line
    assert result.exit_status == -1  # killed by a signal
    assert handle.stop() is result and handle.wait(0) is result  # idempotent


def test_natural_end_gives_status_and_output_and_ends_leftovers(transport: NodeTransport) -> None:
    handle = transport.start('printf "out\\n"; echo err >&2; sleep 300 & echo "$!"; exit 3', deadline=60)
    result = handle.wait(10)
    assert result.exit_status == 3 and result.stderr == "err\n"
    out, leftover = result.stdout.split()
    assert out == "out"
    eventually(lambda: not live(int(leftover)), 3, "the wrapper ended what the command left behind")
    assert result.first_output_at is not None and result.started_at <= result.first_output_at <= result.finished_at
    assert handle.stop() is result


def test_stop_escalates_to_sigkill(transport: NodeTransport) -> None:
    handle = transport.start('trap "" TERM; ' + PARENT_AND_CHILD, deadline=60)
    parent, child = started_pids(handle)
    started = time.monotonic()
    # grace: 1.6 s. The budget leaves the stop script (which walks /proc) room on a
    # machine busy with a whole suite and a lab; only the grace is asserted.
    handle.stop(timeout=10.0)
    assert time.monotonic() - started > 1.5  # SIGKILL only after the grace that TERM was given
    assert not live(parent) and not live(child)
    assert handle.pgid is not None and group_members(handle.pgid) == []


def test_deadline_ends_it_when_nobody_calls_stop(transport: NodeTransport) -> None:
    handle = transport.start(PARENT_AND_CHILD, deadline=1)
    parent, child = started_pids(handle)
    started = time.monotonic()
    eventually(lambda: not live(parent) and not live(child), 4, "the watchdog ended the command at its deadline")
    assert time.monotonic() - started > 0.3
    result = handle.wait(3)
    assert result.exit_status == -1 and "started" in result.stdout


# --- over SSH: the runner goes away ---------------------------------------------------------


def root_session(lab: Lab, known_hosts: KnownHosts, **ssh: object) -> SshSession:
    plan = lab.plan(**ssh)
    return connect(resolve_ssh(plan, plan.spec.nodes[0]), timeouts=FAST, known_hosts=known_hosts)


def test_deadline_outlives_a_dropped_connection(lab: Lab, known_hosts: KnownHosts) -> None:
    """The runner disappears (connection cut, no stop): the node's watchdog ends everything by itself."""
    session = root_session(lab, known_hosts)
    handle = session.start('trap "" TERM; ' + PARENT_AND_CHILD, deadline=1)  # TERM ignored: only SIGKILL ends it
    parent, child = started_pids(handle)
    pgid = handle.pgid
    assert pgid is not None
    session._transport.sock.shutdown(socket.SHUT_RDWR)  # abruptly: no SSH goodbye
    session.close()
    eventually(lambda: not handle.running(), 3, "the handle noticed the lost connection")
    with pytest.raises(TransportError) as caught:
        handle.wait(0)
    assert caught.value.kind == "unreachable" and "deadline" in caught.value.message
    time.sleep(0.5)
    assert live(parent) and live(child)  # sshd did not end them: the connection loss alone changes nothing
    eventually(lambda: not live(parent) and not live(child), 5, "SIGKILL two seconds after the deadline")
    eventually(lambda: group_members(pgid) == [], 2, "the watchdog itself is gone too")


def test_as_root_through_sudo_and_stop_with_the_same_rights(lab: Lab, known_hosts: KnownHosts) -> None:
    with root_session(lab, known_hosts, user=lab.sudoer.name) as session:
        handle = session.start('id -u; echo "$$"; sleep 300 & echo "$!"; echo started; wait', deadline=60, as_root=True)
        eventually(lambda: "started" in handle.output()[0], 5, "started")
        uid, parent, child = handle.output()[0].split()[:3]
        assert uid == "0" and Path(f"/proc/{parent}").stat().st_uid == 0
        handle.stop()
        assert not live(int(parent)) and not live(int(child))
        # Without as_root: the user's own processes, stopped without sudo.
        handle = session.start(PARENT_AND_CHILD, deadline=60)
        parent_pid, child_pid = started_pids(handle)
        assert Path(f"/proc/{parent_pid}").stat().st_uid != 0
        handle.stop()
        assert not live(parent_pid) and not live(child_pid)
    with root_session(lab, known_hosts, user=lab.plain.name) as session:
        handle = session.start(
            "sleep 300", deadline=60, as_root=True
        )  # no passwordless sudo: ended at once, like run_as_root
        result = handle.wait(5)
        assert result.exit_status != 0 and "password is required" in result.stderr and handle.pgid is None


# --- the wrapper under each shell -------------------------------------------------------------


@pytest.fixture
def shells(tmp_path: Path) -> dict[str, str]:
    """dash, bash and busybox sh, those installed (busybox is sh when called as sh)."""
    found = {name: path for name in ("dash", "bash", "busybox") if (path := shutil.which(name))}
    if "busybox" in found:
        link = tmp_path / "sh"
        link.symlink_to(found["busybox"])
        found["busybox"] = str(link)
    if not found:
        pytest.skip("none of dash, bash, busybox is installed")
    return found


def test_wrapper_under_each_shell(shells: dict[str, str]) -> None:
    """Stop, natural end and the deadline (TERM ignored: KILL two seconds later) under each shell.

    The deadline runs are started first and checked last, so all shells share one wait.
    """
    transports = {name: LocalTransport(name, command_timeout=10, shell=path) for name, path in shells.items()}
    expiring = {
        name: local.start('trap "" TERM; ' + PARENT_AND_CHILD, deadline=1) for name, local in transports.items()
    }
    for name, local in transports.items():
        handle = local.start(PARENT_AND_CHILD, deadline=60)
        parent, child = started_pids(handle)
        assert handle.pgid == int(_stat(parent)[2]) and set(group_members(handle.pgid)) >= {parent, child}, name  # type: ignore[index]
        handle.stop()
        assert group_members(handle.pgid) == [], name
        assert tuple(local.start("echo hi; exit 7", deadline=60).wait(5))[:2] == (7, "hi\n"), name
    for name, handle in expiring.items():
        parent, child = started_pids(handle)
        assert live(parent) and live(child), name
    for name, handle in expiring.items():
        eventually(
            lambda handle=handle: group_members(handle.pgid or 0) == [],
            6,
            f"{name}: TERM at the deadline, KILL two seconds later",
        )
        assert handle.wait(1).exit_status == -1, name
    for local in transports.values():
        local.close()


def test_lines_are_plain_posix_sh() -> None:
    assert shlex.split(start_line("echo 'it''s'", 2.5, sudo=True)) == [
        "exec",
        "sudo",
        "-n",
        "/bin/sh",
        "-c",
        WRAPPER,
        "/bin/sh",
        "3",
        "echo 'it''s'",
    ]
    assert shlex.split(stop_line(1234, 2.0))[-3:] == ["/bin/sh", "1234", "20"]
    assert "set -m" not in WRAPPER  # dash and busybox refuse job control without a terminal
    with pytest.raises(ValueError):
        start_line("true", 0)


def test_login_shell_noise_before_the_marker_is_dropped() -> None:
    handle = Background("n1", run_line=LocalTransport().run, abandon=lambda: None, sudo=False)
    for chunk in (b"Welcome to a chatty .bashrc\nacpcheck-", b"bg 4242\nfirst ", b"line\n"):
        handle.feed_stdout(chunk)
    handle.feed_stderr(b"warning\n")
    assert handle.pgid == 4242 and handle.output() == ("first line\n", "warning\n")
    handle.finish(0)
    assert tuple(handle.wait(0)) == (0, "first line\n", "warning\n")


def test_wait_output_returns_as_soon_as_the_line_is_there_and_at_the_end(transport: NodeTransport) -> None:
    """Listeners wait for their ready line this way: woken by the output, not by polling."""
    handle = transport.start("sleep 0.3; echo ready; sleep 30", deadline=60)
    try:
        started = time.monotonic()
        out, _ = handle.wait_output(lambda text: "ready" in text, 20)
        assert "ready" in out and time.monotonic() - started < 10
        out, _ = handle.wait_output(lambda text: "never" in text, 0.2)  # the timeout bounds it
        assert "never" not in out
    finally:
        handle.stop()
    out, _ = handle.wait_output(lambda text: "never" in text, 20)  # an ended command returns at once
    assert not handle.running()
