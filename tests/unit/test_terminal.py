"""The terminal, as a person (and a shell pipeline) reads it: real `acpcheck` processes.

- output to a closed pipe ends quietly with the command's own exit code (every subcommand);
- lines wrap to the terminal's width and keep their indent;
- one unreachable node prints one ERROR block with the number of checks affected;
- pytest's totals line names nothing an acpcheck user cannot act on.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "data")) if str(ROOT / "tests" / "data") not in sys.path else None
import report_runs  # noqa: E402  (tests/data: the shared report runs)

from acpcheck.report.terminal import INDENT, summary_lines  # noqa: E402

SCRIPT = Path(sys.executable).with_name("acpcheck")
COMPLIANT = report_runs.EXAMPLE
DEFECTIVE = ROOT / "examples" / "defective" / "workload-with-defects.yaml"
NOISE = ("Traceback", "BrokenPipe", "Exception ignored", "Errno 32")


def closed_pipe_run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """``acpcheck ARGS`` with its standard output a pipe whose reader is already gone."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run(
            [str(SCRIPT), *args],
            stdout=write,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            cwd=cwd,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write)


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("schema",), 0),
        (("explain", "ACP-NET-001"), 0),
        (("list", "--json"), 0),
        (("validate", "--plan", str(COMPLIANT)), 0),
        (("run", "--plan", str(COMPLIANT), "--profile", "plan", "--out", "{out}"), 0),
        (("run", "--plan", str(DEFECTIVE), "--profile", "plan", "--out", "{out}"), 1),
        (("run", "--plan", str(COMPLIANT), "--profile", "plan", "--out", "{out}", "-n", "2"), 0),
        (("explain", "ACP-NOPE-1"), 4),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, tuple) else str(value),
)
def test_a_closed_pipe_ends_quietly_with_the_right_exit_code(args: tuple[str, ...], code: int, tmp_path: Path) -> None:
    done = closed_pipe_run(*(a.replace("{out}", str(tmp_path / "out")) for a in args))
    assert done.returncode == code, done.stderr
    if code != 4:
        assert not any(word in done.stderr for word in NOISE), done.stderr
    if args[0] == "run":
        assert (tmp_path / "out" / "results.json").exists()  # the run went on to its end


def test_head_reads_the_first_line_and_leaves(tmp_path: Path) -> None:
    """`acpcheck run … | head -1`: the reader leaves after the first line, the run does not notice."""
    process = subprocess.Popen(
        [str(SCRIPT), "run", "--plan", str(COMPLIANT), "--profile", "plan", "--out", str(tmp_path / "out")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, cwd=ROOT,
    )  # fmt: skip
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.readline().startswith(b"acpcheck ")
    process.stdout.close()
    error = process.stderr.read().decode()
    assert process.wait(timeout=120) == 0 and not any(word in error for word in NOISE), error


@pytest.fixture(scope="module")
def narrow(tmp_path_factory: pytest.TempPathFactory) -> report_runs.Run:
    """The every-status run on a 60-column terminal."""
    return report_runs.run_every_status(tmp_path_factory.mktemp("narrow"), env={"COLUMNS": "60"})


def section(stdout: str) -> list[str]:
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if re.fullmatch(r"=+ acpcheck =+", line))
    return lines[start + 1 :]


def test_long_lines_wrap_to_the_width_with_their_indent(narrow: report_runs.Run) -> None:
    lines = section(narrow.process.stdout)[:-1]  # the last line is pytest's own
    for line in lines:
        # Only a word that cannot be broken may be longer: a link, or the report directory's path
        # (pytest's temporary directories grow with its run counter).
        unbreakable = " " not in line.strip()
        assert len(line) <= 60 or unbreakable or line.strip().startswith(("see: https://", "https://")), line
    # A wrapped message keeps the block's indent; a wrapped fix keeps the text's.
    block = lines[lines.index(next(line for line in lines if line.startswith("EXPIRED waiver"))) :]
    assert block[1].startswith(INDENT) and not block[1].startswith(INDENT + " ")
    fix = next(i for i, line in enumerate(lines) if line.startswith(INDENT + "fix: "))
    assert all(len(line) <= 60 for line in lines[: fix + 1])


def test_one_unreachable_node_is_one_error_block(narrow: report_runs.Run) -> None:
    flat = "\n".join(section(narrow.process.stdout)).replace("\n" + INDENT, " ")  # wrapped lines joined again
    assert flat.count(report_runs.UNREACHABLE) == 1
    assert (
        flat.count("ERROR  node:w1: 4 checks could not run (ACP-NODE-908, ACP-NODE-909, ACP-NODE-910, ACP-NODE-911)")
        == 1
    )
    assert "[node:w1]" not in flat
    # The same FAIL on four nodes is one block naming them.
    assert (
        flat.count("swap is on (/swap.img)") == 1 and "[node:cp1, node:cp2, node:cp3, node:w2] swap is disabled" in flat
    )


def test_the_totals_line_says_only_what_a_user_can_act_on(narrow: report_runs.Run, tmp_path: Path) -> None:
    words = {"passed", "failed", "skipped", "errors", "error", "warned", "manual", "waived"}
    selected = report_runs.acpcheck(
        "run",
        "--plan",
        str(COMPLIANT),
        "--profile",
        "preinstall",
        "--check",
        "ACP-NET-001",
        "--out",
        str(tmp_path / "one"),
    )
    for stdout in (narrow.process.stdout, selected.stdout):
        totals = stdout.rstrip().splitlines()[-1]
        counted = re.findall(r"(\d+) ([a-z]+)", totals.split(" in ")[0])
        assert counted and {word for _, word in counted} <= words, totals
        assert "deselected" not in stdout and "warnings" not in totals
    assert selected.stdout.rstrip().splitlines()[-1].startswith("1 passed in ")


def test_forty_identical_errors_print_once() -> None:
    results = [
        {"check": f"ACP-NODE-{i:03d}", "title": f"rule {i}", "area": "NODE", "severity": "high", "status": "error",
         "target": "node:w9", "message": "could not check: timeout: no answer in 10 s",
         "evidence": {}, "remediation": "-", "refs": ["https://docs.alauda.io/x"], "waiver": None, "duration": 0.0}
        for i in range(1, 41)
    ]  # fmt: skip
    run = {"cluster": "c", "profile": "p", "failOn": "medium", "exitCode": 2, "acp": "4.3"}
    summary = {"pass": 0, "fail": 0, "warn": 0, "skip": 0, "manual": 0, "error": 40, "waived": 0}
    lines = [
        text
        for text, _ in summary_lines(
            {"run": run, "summary": summary, "results": results, "expiredWaivers": []}, 200, "out"
        )
    ]
    assert lines[:2] == [
        "ERROR  node:w9: 40 checks could not run (ACP-NODE-001, ACP-NODE-002, ACP-NODE-003, ACP-NODE-004, "
        "ACP-NODE-005, ACP-NODE-006 and 34 more)",
        INDENT + "could not check: timeout: no answer in 10 s",
    ]
    assert lines[2].startswith("c: assessment incomplete")
