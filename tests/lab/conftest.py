"""Fixtures for the real-lab tests: they build namespaces, bridges and sshds, so they
need root, ``ip netns``, OpenSSH's sshd and microsocks; without them they are skipped
with the reason. One lab runs per machine: a file lock serialises pytest workers and
concurrent runs, and the tests use their own state dir so they never tear down a lab
someone else is using."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from acpcheck_lab import LabInfo, down, up
from acpcheck_lab.host import lab_links, lab_namespaces

TEST_STATE = Path("/tmp/acpcheck-lab-tests")
LOCK_FILE = Path("/run/lock/acpcheck-lab-tests.lock")
LOCK_TIMEOUT = 300


def _why_no_lab() -> str | None:
    if os.geteuid() != 0:
        return "the lab tests need root (network namespaces, bridges, mounts)"
    for tool, package in (
        ("ip", "iproute2"),
        ("unshare", "util-linux"),
        ("/usr/sbin/sshd", "openssh-server"),
        ("microsocks", "microsocks"),
    ):
        if shutil.which(tool) is None:
            return f"{tool} is missing (apt-get install {package}, or run scripts/setup-system.sh)"
    probe = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10, check=False)
    if probe.returncode != 0:
        return f"`ip netns` is unavailable: {probe.stderr.strip()}"
    return None


@pytest.fixture(scope="session")
def lab_machine() -> Iterator[Path]:
    """This machine, ready for one lab at a time; yields the tests' state dir."""
    reason = _why_no_lab()
    if reason:
        pytest.skip(reason)
    LOCK_FILE.parent.mkdir(parents=True, exist_ok=True)
    with open(LOCK_FILE, "w") as lock:
        deadline = time.monotonic() + LOCK_TIMEOUT
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    pytest.skip(f"another run held the lab lock for {LOCK_TIMEOUT} s")
                time.sleep(0.2)
        if lab_namespaces() or lab_links():
            if not (TEST_STATE / ".acpcheck-lab").exists():
                pytest.skip("another lab is up on this machine (not the tests'); run `acpcheck lab down` first")
            down(TEST_STATE, purge=True)  # a crashed earlier test run
        yield TEST_STATE
        down(TEST_STATE, purge=True, quiet=True)


@pytest.fixture(scope="module")
def defects_lab(lab_machine: Path) -> Iterator[LabInfo]:
    """The shipped ``defects`` scenario, up for one test module."""
    info = up("defects", lab_machine)
    try:
        yield info
    finally:
        down(lab_machine, purge=True)
