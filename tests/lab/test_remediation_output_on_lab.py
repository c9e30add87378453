"""What remediate prints on real lab nodes (lab/acpcheck_lab/scenarios/remediation.yaml),
through the CLI as people run it: at 80 columns, plain when piped and coloured on a
terminal (a pty); after --apply "written", the recap and the undo command, which is then
run exactly as printed; remediation.json valid against reports/remediation.schema.json.
The sshd steps reload sshd with the packaged node script, shown as ``reload-sshd``."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import shlex
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from acpcheck.sources.nodeside import node_program
from acpcheck_lab import LabInfo, down, up

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "reports" / "remediation.schema.json").read_text())
#: The checks whose steps edit sshd_config: two on fix-config (stacked), one on fix-hidden.
SSHD_CHECKS = ("--check", "ACP-NODE-010", "--check", "ACP-NODE-011")
#: How a line starts that is never wrapped (a diff line, a command, the undo command).
VERBATIM = ("$ ", "--- ", "+++ ", "@@", "+", "-", " ", "acpcheck rollback ")
WIDTH = 80


@pytest.fixture(scope="module")
def lab(lab_machine: Path) -> Iterator[LabInfo]:
    info = up("remediation", lab_machine)
    try:
        yield info
    finally:
        down(lab_machine, purge=True)


def environment(lab: LabInfo) -> dict[str, str]:
    """The lab's environment, at 80 columns, colour left to the terminal, acpcheck on PATH."""
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "PY_COLORS")}
    env.update(lab.env(), COLUMNS=str(WIDTH), TERM="xterm-256color")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def acpcheck(lab: LabInfo, *args: str) -> subprocess.CompletedProcess[str]:
    """``acpcheck ARGS``, output piped (no terminal)."""
    return subprocess.run(
        ["acpcheck", *args],
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
        env=environment(lab),
        check=False,
    )


def acpcheck_on_a_terminal(lab: LabInfo, *args: str) -> tuple[int, str]:
    """``acpcheck ARGS`` with its stdout on a pty of 80 columns: (exit code, what it printed)."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, WIDTH, 0, 0))
    process = subprocess.Popen(
        ["acpcheck", *args], stdin=subprocess.DEVNULL, stdout=follower, stderr=subprocess.PIPE, env=environment(lab)
    )
    os.close(follower)
    out = bytearray()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the pty closed: the process is done
                break
            if not chunk:
                break
            out += chunk
        elif process.poll() is not None:
            break
    os.close(leader)
    process.wait(timeout=60)
    return process.returncode, out.decode().replace("\r\n", "\n")


def unwrapped_long_lines(text: str) -> list[str]:
    """Lines past 80 columns that could have been wrapped (not diff lines or commands)."""
    return [
        line
        for line in text.splitlines()
        if len(line) > WIDTH and not line.lstrip(" ").startswith(VERBATIM) and " " in line.strip()
    ]


def recap(text: str) -> dict[str, str]:
    """node -> its recap line (``fix-config : ok=0 …``), continued lines joined."""
    lines = text[text.index("\nrecap\n") + 7 :].splitlines()
    found: dict[str, str] = {}
    for line in lines:
        if line.startswith("    ") and found:
            found[list(found)[-1]] += " " + line.strip()
        elif line.startswith("  ") and " : " in line:
            name, _, counts = line.strip().partition(" : ")
            found[name.strip()] = counts
        else:
            break
    return found


def sshd_config(lab: LabInfo, node: str) -> str:
    """The node's sshd_config, read in its own mount namespace (not through acpcheck)."""
    pid = (lab.state_dir / "nodes" / node / "sshd.pid").read_text().strip()
    return subprocess.run(
        ["nsenter", "-t", pid, "-m", "--", "cat", "/etc/ssh/sshd_config"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout


def remediation_json(out: Path) -> dict[str, Any]:
    written = json.loads((out / "remediation.json").read_text())
    jsonschema.Draft202012Validator(SCHEMA).validate(written)
    return written


def test_dry_run_at_80_columns_plain_when_piped_and_coloured_on_a_terminal(lab: LabInfo, tmp_path: Path) -> None:
    plan = str(lab.plan_file)
    dry = acpcheck(lab, "remediate", "--plan", plan, "--allow-removals", "--out", str(tmp_path / "dry"))
    text = dry.stdout
    assert dry.returncode == 1, text + dry.stderr  # changes to make
    assert "\x1b[" not in text  # piped: no colour
    assert not unwrapped_long_lines(text), unwrapped_long_lines(text)
    assert "\n  [would change] ACP-NODE-010 " in text  # the outcome first, never cut in two
    # sshd's reload is the packaged script, by its name; its text is in remediation.json only
    assert "then: $ reload-sshd" in text and "kill -HUP" not in text
    assert "stacked on step ACP-NODE-010/sshd-usedns above" in text  # UsePAM's diff starts after UseDNS's
    assert "acpcheck rollback" not in text  # nothing was changed: nothing to undo
    lines = recap(text)
    assert set(lines) == {"fix-config", "fix-kernel", "fix-soft", "fix-hidden", "ok", "total"}, text
    assert lines["ok"] == "ok=0 would_change=0 failed=0 refused=0 skipped=0 unreachable=0"
    written = remediation_json(tmp_path / "dry")
    files = [a for n in written["nodes"] for s in n["steps"] for a in s["actions"] if a["kind"] == "file"]
    reloads = [a for a in files if a["thenShown"] == "reload-sshd"]
    assert len(reloads) == 3 and all(node_program("reload_sshd.sh").splitlines()[-1] in a["then"] for a in reloads)

    code, coloured = acpcheck_on_a_terminal(lab, "remediate", "--plan", plan, "--allow-removals")
    assert code == 1, coloured
    assert "\x1b[" in coloured  # a terminal: coloured, as run's summary
    assert not unwrapped_long_lines(re.sub(r"\x1b\[[0-9;]*m", "", coloured))  # wrapped to the pty's 80 columns


def test_apply_says_written_recaps_and_its_undo_command_works_as_printed(lab: LabInfo, tmp_path: Path) -> None:
    plan = str(lab.plan_file)
    before = {node: sshd_config(lab, node) for node in ("fix-config", "fix-hidden")}
    out = tmp_path / "apply"
    applied = acpcheck(lab, "remediate", "--plan", plan, *SSHD_CHECKS, "--apply", "--out", str(out))
    text = applied.stdout
    assert applied.returncode == 0, text + applied.stderr  # both checks pass now on both nodes
    assert "\x1b[" not in text and not unwrapped_long_lines(text), unwrapped_long_lines(text)
    assert "[FIXED] ACP-NODE-010" in text and "[FIXED] ACP-NODE-011" in text
    assert "\t(written, " in text and "\t(planned, " not in text and "edited /etc/ssh/sshd_config" in text
    assert "stacked on step ACP-NODE-010/sshd-usedns above" in text
    lines = recap(text)
    assert lines["fix-config"].startswith("ok=0 changed=2 fixed=2 needs_reboot=0 still_failing=0 failed=0")
    assert lines["fix-hidden"].startswith("ok=0 changed=1 fixed=1 ")
    assert lines["total"].endswith("refused=0 skipped=0 unreachable=0")
    written = remediation_json(out)
    (undo,) = [line.strip() for line in text.splitlines() if line.strip().startswith("acpcheck rollback ")]
    assert undo == written["undo"] == f"acpcheck rollback {written['run']} --journal-dir {out.resolve() / 'journal'}"
    assert sshd_config(lab, "fix-config") != before["fix-config"]

    # a second apply changes nothing: no undo command to offer
    again = acpcheck(lab, "remediate", "--plan", plan, *SSHD_CHECKS, "--apply", "--out", str(tmp_path / "again"))
    assert again.returncode == 0 and "acpcheck rollback" not in again.stdout, again.stdout + again.stderr
    assert remediation_json(tmp_path / "again")["undo"] is None

    # the printed command, verbatim, from another working directory
    undone = subprocess.run(
        shlex.split(undo),
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
        env=environment(lab),
        cwd=tmp_path,
        check=False,
    )
    assert undone.returncode == 0, undone.stdout + undone.stderr
    assert "\nnode fix-config\n" in undone.stdout and "[undone] ACP-NODE-011/sshd-usepam:" in undone.stdout
    assert {node: sshd_config(lab, node) for node in before} == before
