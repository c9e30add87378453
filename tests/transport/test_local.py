"""LocalTransport: commands on this machine through subprocess."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from acpcheck.transport import CommandResult, LocalTransport, TransportError
from acpcheck.transport import base as transport_base
from acpcheck.transport import ssh as transport_ssh


def test_run_status_output_stdin_and_times() -> None:
    local = LocalTransport("here")
    result = local.run("printf out; printf err >&2; exit 7")
    assert tuple(result) == (7, "out", "err") and not result.ok
    assert result.started_at <= result.input_sent_at <= (result.first_output_at or 0) <= result.finished_at
    assert local.run("cat", stdin="fed through stdin\n").stdout == "fed through stdin\n"
    assert local.run("head -c 3", stdin=b"x" * 1_000_000).stdout == "xxx"  # stops reading early: still a result
    assert local.run("true").first_output_at is None


def test_timeout_kills_the_whole_command(tmp_path: Path) -> None:
    local = LocalTransport()
    child_file = tmp_path / "child"
    started = time.monotonic()
    with pytest.raises(TransportError) as caught:
        local.run(f'sleep 300 & echo "$!" > {child_file}; wait', timeout=0.5)
    assert caught.value.kind == "timeout" and caught.value.message == "local: command did not finish within 0.5 s"
    assert time.monotonic() - started < 3
    child = int(child_file.read_text())
    state = Path(f"/proc/{child}/stat").read_text().rsplit(") ", 1)[1][0] if Path(f"/proc/{child}").exists() else "gone"
    assert state in ("Z", "gone")  # killed with its session (a zombie is dead: this init does not reap)


@pytest.mark.skipif(os.geteuid() != 0, reason="runs as root directly only when root")
def test_run_as_root_directly_when_root() -> None:
    assert LocalTransport().run_as_root("id -u; echo 'quoted $HOME'").stdout == "0\nquoted $HOME\n"


def test_command_result_lives_in_base() -> None:
    assert CommandResult is transport_base.CommandResult is transport_ssh.CommandResult
