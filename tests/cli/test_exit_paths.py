"""Runs that break, and exit codes that say whose problem it is (issue 22, items 2 and 8).

- A run that does not complete (a plugin dies, an xdist worker dies, a full
  --alluredir stops pytest) exits 3 and leaves a report set whose verdict is
  "incomplete" with the reason, and no results.json: never one that says compliant.
- A report directory that is full or read-only, and a path over the file system's
  name limit, are the machine's or the user's problem: exit 4 naming the path.
- pytest's own early exits with 0 (``-- --co``, ``-- --markers``) are 0; ``-n`` is
  bounded; ``acpcheck lab`` usage errors are 4.

Full and read-only file systems are real: a 64 KiB tmpfs per case (root only),
filled to leave a few pages, unmounted whatever happens.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from runner import acpcheck

from acpcheck.catalog import load_catalog
from acpcheck.model.profile import load_profile

ROOT = Path(__file__).resolve().parents[2]
GOOD = ROOT / "examples" / "workload-kube-ovn.yaml"  # compliant under the plan profile: exit 0 when all goes well
#: How many checks the plan profile selects (one item each on GOOD: plan checks run once).
PLAN_CHECKS = sum(1 for meta in load_catalog().values() if load_profile("plan").selects(meta))
PAGE = 4096
TMPFS_PAGES = 16  # size=64k

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")

Mount = Callable[..., Path]


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Mount]:
    """``tmpfs(name, free_pages=…, read_only=…)``: a 64 KiB tmpfs under tmp_path, filled
    so that ``free_pages`` pages of 4 KiB are left; every one is unmounted at the end."""
    mounted: list[Path] = []

    def mount(name: str, free_pages: int = 0, read_only: bool = False) -> Path:
        directory = tmp_path / name
        directory.mkdir()
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_PAGES * PAGE // 1024}k", "tmpfs", str(directory)], check=True
        )
        mounted.append(directory)
        if free_pages < TMPFS_PAGES:
            (directory / "filler").write_bytes(b"\0" * (TMPFS_PAGES - free_pages) * PAGE)
        if read_only:
            subprocess.run(["mount", "-o", "remount,ro", str(directory)], check=True)
        return directory

    try:
        yield mount
    finally:
        for directory in reversed(mounted):
            if subprocess.run(["umount", str(directory)], check=False).returncode != 0:
                subprocess.run(["umount", "-l", str(directory)], check=False)


def output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


def assert_incomplete(out: Path, reason: str) -> None:
    """The report set in ``out`` says the run did not complete, and why; nothing in it says compliant."""
    assert not (out / "results.json").exists()
    summary = (out / "summary.md").read_text()
    assert summary.splitlines()[0].endswith(f"INCOMPLETE: the run did not complete ({reason})"), summary.splitlines()[0]
    assert "exit code 3" in summary and "— compliant" not in summary
    assert f'name="verdict" value="INCOMPLETE: the run did not complete ({reason})"' in (out / "junit.xml").read_text()
    assert 'type="run-incomplete"' in (out / "junit.xml").read_text()
    invocation = json.loads((out / "results.sarif").read_text())["runs"][0]["invocations"][0]
    assert (invocation["exitCode"], invocation["executionSuccessful"]) == (3, False)
    assert json.loads((out / ".acpcheck-manifest.json").read_text())["state"] == "incomplete"


# -- item 2: a run that does not complete never reports a verdict --------------------------------


@needs_root
@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one-process", "xdist"])
def test_alluredir_that_fills_up_during_the_run_leaves_an_incomplete_report(
    tmp_path: Path, tmpfs: Mount, workers: list[str]
) -> None:
    allure = tmpfs("allure", free_pages=1)  # room for the check of --alluredir, not for the results
    out = tmp_path / "out"
    result = acpcheck(
        "run", "--plan", str(GOOD), "--profile", "plan", "--out", str(out), "--alluredir", str(allure), *workers
    )
    assert result.returncode == 3, output(result)
    reason = f"--alluredir {allure}: cannot be written to (No space left on device)"
    assert (
        f"acpcheck: the run did not complete: {reason}; the reports in {out} say so (no results.json)" in result.stderr
    )
    assert_incomplete(out, reason)


@needs_root
def test_alluredir_full_from_the_start_is_bad_input(tmp_path: Path, tmpfs: Mount) -> None:
    allure = tmpfs("allure", free_pages=0)
    result = acpcheck(
        "run", "--plan", str(GOOD), "--profile", "plan", "--out", str(tmp_path / "out"), "--alluredir", str(allure)
    )
    assert result.returncode == 4, output(result)
    assert f"{allure}: --alluredir: cannot be written to (No space left on device)" in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_plugin_that_dies_leaves_an_incomplete_report(tmp_path: Path) -> None:
    (tmp_path / "dying_plugin.py").write_text(
        "def pytest_runtest_logreport(report):\n"
        "    if report.when == 'call':\n"
        "        raise RuntimeError('the plugin died')\n"
    )
    out = tmp_path / "out"
    result = acpcheck(
        "run",
        "--plan",
        str(GOOD),
        "--profile",
        "plan",
        "--out",
        str(out),
        "--",
        "-p",
        "dying_plugin",
        env={"PYTHONPATH": str(tmp_path)},
    )
    assert result.returncode == 3, output(result)
    assert "acpcheck: the run did not complete: RuntimeError: the plugin died;" in result.stderr
    assert_incomplete(out, "RuntimeError: the plugin died")


def test_a_worker_that_dies_leaves_an_incomplete_report(tmp_path: Path) -> None:
    # The run ends (acpcheck does not let xdist replace a dead worker: that hangs under
    # --dist loadgroup); the check it was running, and those not run yet, have no result.
    (tmp_path / "killer_plugin.py").write_text(
        "import os\n"
        "def pytest_runtest_call(item):\n"
        "    if hasattr(item.config, 'workerinput') and item.name == 'check_nodes_unique':\n"
        "        os._exit(9)\n"
    )
    out = tmp_path / "out"
    result = acpcheck(
        "run",
        "--plan",
        str(GOOD),
        "--profile",
        "plan",
        "--out",
        str(out),
        "-n",
        "2",
        "--",
        "-p",
        "killer_plugin",
        env={"PYTHONPATH": str(tmp_path)},
    )
    assert result.returncode == 3, output(result)
    reason = (
        rf"\d+ of {PLAN_CHECKS} checks gave no result \(first: checks/network\.py::check_nodes_unique: worker 'gw\d' "
        r"crashed while running"
    )
    assert re.search(f"acpcheck: the run did not complete: {reason}", result.stderr), result.stderr
    assert not (out / "results.json").exists()
    assert re.search(
        f"INCOMPLETE: the run did not complete \\({reason}", (out / "summary.md").read_text().splitlines()[0]
    )


# -- item 8: the user's and the machine's problems are exit 4, naming the path -----------------------


@needs_root
def test_out_that_fills_up_before_the_reports_is_exit_4_and_leaves_none(tmp_path: Path, tmpfs: Mount) -> None:
    full = tmpfs("full", free_pages=4)  # the check of --out, the lock and the manifest fit; the reports do not
    out = full / "out"
    result = acpcheck("run", "--plan", str(GOOD), "--profile", "plan", "--out", str(out))
    assert result.returncode == 4, output(result)
    assert (
        f"acpcheck: bad input\n{out}: --out: the reports cannot be written (No space left on device)" in result.stderr
    )
    assert sorted(p.name for p in out.iterdir()) == [".acpcheck-manifest.json", ".acpcheck.lock"]


@needs_root
@pytest.mark.parametrize(
    ("free_pages", "read_only", "cause"),
    [(0, False, "No space left on device"), (16, True, "Read-only file system")],
    ids=["full", "read-only"],
)
def test_out_on_a_full_or_read_only_file_system_is_refused_before_the_run(
    tmp_path: Path, tmpfs: Mount, free_pages: int, read_only: bool, cause: str
) -> None:
    directory = tmpfs("fs", free_pages=free_pages, read_only=read_only)
    for out in (directory, directory / "new"):
        result = acpcheck("run", "--plan", str(GOOD), "--profile", "plan", "--out", str(out))
        assert result.returncode == 4, output(result)
        assert "Traceback" not in output(result) and "passed" not in result.stdout  # refused before any check ran
        verb = "cannot be written to" if out == directory else "cannot be"
        assert f"{out}: --out: {verb}" in result.stderr and cause in result.stderr


@pytest.mark.parametrize(
    ("option", "value"),
    [("--profile", "p" * 300), ("--facts", "f" * 300), ("--out", "o" * 300), ("--waivers", "w" * 300)],
)
def test_a_path_over_the_name_limit_is_exit_4_with_the_path(tmp_path: Path, option: str, value: str) -> None:
    args = ["--plan", str(GOOD), "--out", str(tmp_path / "out"), option, value]
    if option != "--facts":
        args = ["--profile", "plan", *args]  # --facts only matters to a profile that reads evidence
    result = acpcheck("run", *args, cwd=tmp_path)
    assert result.returncode == 4, output(result)
    assert "Traceback" not in output(result)
    assert (
        result.stderr.startswith("acpcheck: bad input\n")
        and value in result.stderr
        and "File name too long" in result.stderr
    )
    if option in ("--profile", "--facts", "--out"):
        assert f": {option}: " in result.stderr


# -- pytest's own early exits, -n, the lab -----------------------------------------------------------


@pytest.mark.parametrize(
    ("argument", "shows"), [("--co", f"{PLAN_CHECKS} tests collected"), ("--markers", "@pytest.mark.acpcheck(id)")]
)
def test_pytest_early_exits_with_success_pass_through(tmp_path: Path, argument: str, shows: str) -> None:
    result = acpcheck("run", "--plan", str(GOOD), "--profile", "plan", "--out", str(tmp_path / "out"), "--", argument)
    assert result.returncode == 0, output(result)
    assert shows in result.stdout
    assert "did not complete" not in result.stderr


def test_workers_are_bounded_by_the_cpus(tmp_path: Path) -> None:
    cpus = len(os.sched_getaffinity(0))
    result = acpcheck("run", "--plan", str(GOOD), "--profile", "plan", "--out", str(tmp_path / "out"), "-n", "1000")
    assert result.returncode == 0, output(result)
    assert f"acpcheck: -n 1000 lowered to {cpus}: this machine gives acpcheck {cpus} CPU(s)" in result.stderr
    assert json.loads((tmp_path / "out" / "results.json").read_text())["run"]["exitCode"] == 0


@pytest.mark.parametrize(
    "argv",
    [["lab", "frobnicate"], ["lab", "up", "--nodes", "many"], ["lab", "status", "--bogus"]],
    ids=["command", "value", "option"],
)
def test_lab_usage_errors_are_bad_input(argv: list[str]) -> None:
    # Refused by the parser: nothing is built or read.
    result = acpcheck(*argv)
    assert result.returncode == 4, output(result)
    assert "error:" in result.stderr
    direct = subprocess.run(
        [sys.executable, "-m", "acpcheck_lab", *argv[1:]], capture_output=True, text=True, check=False, timeout=60
    )
    assert direct.returncode == 4
