"""Fixtures for the real-lab tests: they build namespaces, bridges and sshds, so they
need root, ``ip netns``, OpenSSH's sshd and microsocks; without them they are skipped
with the reason. Several labs can be up on one machine, but the lab tests check that
``down`` leaves nothing of any lab behind, so they want the machine's labs to
themselves: a file lock serialises pytest workers and concurrent runs, and the tests use
their own state dirs (TEST_STATE, SECOND_STATE), so they never tear down a lab someone
else is using."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from acpcheck_lab import LabInfo, down, registry, up
from acpcheck_lab.host import lab_links, lab_namespaces

TEST_STATE = Path("/tmp/acpcheck-lab-tests")
#: The second lab's, for the tests with two labs up at once.
SECOND_STATE = Path("/tmp/acpcheck-lab-tests-second")
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
    """This machine, with no lab up but the tests'; yields the tests' state dir."""
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
        for state in (TEST_STATE, SECOND_STATE):
            if (state / ".acpcheck-lab").exists() or registry.find(state):
                down(state, purge=True)  # a crashed earlier test run
        if lab_namespaces() or lab_links():
            others = ", ".join(str(lab) for lab in registry.labs_up()) or "objects of no recorded lab"
            pytest.skip(
                f"another lab is up on this machine ({others}); the lab tests want the machine's labs to themselves: "
                "take it down first (acpcheck lab down --state DIR, or --all)"
            )
        yield TEST_STATE
        down(SECOND_STATE, purge=True, quiet=True)
        down(TEST_STATE, purge=True, quiet=True)


@pytest.fixture
def second_state(lab_machine: Path) -> Path:
    """The state dir of the tests' second lab (taken down with the first by ``lab_machine``)."""
    return SECOND_STATE


@pytest.fixture(scope="module")
def defects_lab(lab_machine: Path) -> Iterator[LabInfo]:
    """The shipped ``defects`` scenario, up for one test module."""
    info = up("defects", lab_machine)
    try:
        yield info
    finally:
        down(lab_machine, purge=True)
