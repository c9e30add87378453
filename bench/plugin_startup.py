"""Benchmark: what installing acpcheck costs a pytest run that does not use it.

pytest loads every installed plugin (entry point ``pytest11``) on every run; the
acpcheck plugin must stay cheap when no ``--acp-*`` option is given (target: under
50 ms). Two figures, on a directory with one trivial test:

- import time of the plugin: the cumulative time of the outermost ``acpcheck``
  imports (what the plugin pulls in, pydantic included when it imports it) in
  ``python -X importtime``, median of several runs. pytest imports its plugins with
  ``importlib.import_module``, which ``-X importtime`` does not log (only what they
  import in turn), so the figure comes from an interpreter that imports pytest, then
  the plugin's entry point and the modules it lists (``pytest_plugins``) with
  ``import``, as pytest would; the pytest run's own log is shown beside it;
- wall and CPU time (user + system) of ``python -m pytest -q`` with the plugin and
  with ``-p no:acpcheck``, median of several runs each (interleaved, so load on a
  shared machine hits both; CPU time is the steadier of the two there).

It also says whether pydantic or ``acpcheck.model.plan`` was imported at all.
Nothing is asserted: this is a measuring tool (tests/plugin/test_startup.py is the test).

    python bench/plugin_startup.py [--runs 9]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TRIVIAL_TEST = "def test_one():\n    assert 1\n"


def outermost_acpcheck_imports(importtime_log: str) -> dict[str, int]:
    """Module -> cumulative microseconds, for each ``acpcheck`` import not made by
    another ``acpcheck`` module (so nothing is counted twice).

    ``-X importtime`` prints a module after everything it imported, indented one
    level deeper than it; read backwards, each line's ancestors are the lines
    above it on the stack.
    """
    entries: list[tuple[int, str, int]] = []
    for line in importtime_log.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative_text, name_part = line.removeprefix("import time:").split("|", 2)
        if not cumulative_text.strip().isdigit():
            continue  # the header line
        module = name_part.lstrip(" ")
        depth = (len(name_part) - len(module) - 1) // 2
        entries.append((depth, module.strip(), int(cumulative_text)))
    found: dict[str, int] = {}
    ancestors: list[tuple[int, str]] = []
    for depth, name, cumulative in reversed(entries):
        while ancestors and ancestors[-1][0] >= depth:
            ancestors.pop()
        is_ours = name == "acpcheck" or name.startswith("acpcheck.")
        if is_ours and not any(a == "acpcheck" or a.startswith("acpcheck.") for _, a in ancestors):
            found[name] = found.get(name, 0) + cumulative
        ancestors.append((depth, name))
    return found


#: What pytest imports of the plugin on a run without a plan: its entry point, then each
#: module the entry point lists, after pytest itself (whose cost is not the plugin's).
IMPORT_LIKE_PYTEST = "; ".join(
    (
        "import pytest",
        "import acpcheck.plugin as entry_point",
        "[__import__(part) for part in entry_point.pytest_plugins]",
    )
)


def importtime(directory: Path, *command: str) -> tuple[int, dict[str, int], bool]:
    """One run: microseconds of the plugin's imports, their split, and whether pydantic was imported."""
    run = subprocess.run(
        [sys.executable, "-X", "importtime", *command], capture_output=True, text=True, check=True, cwd=directory
    )
    found = outermost_acpcheck_imports(run.stderr)
    imported = {line.rsplit("|", 1)[-1].strip() for line in run.stderr.splitlines() if line.startswith("import time:")}
    return sum(found.values()), found, bool(imported & {"pydantic", "acpcheck.model.plan"})


def timed(directory: Path, *extra: str) -> tuple[float, float]:
    """Wall and CPU seconds of one pytest run on ``directory``."""
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra, str(directory)],
        capture_output=True,
        check=True,
        cwd=directory,
    )
    wall = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = cpu_after.ru_utime - cpu_before.ru_utime + cpu_after.ru_stime - cpu_before.ru_stime
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        (directory / "test_trivial.py").write_text(TRIVIAL_TEST)
        os.environ.pop("PYTEST_ADDOPTS", None)
        timed(directory)  # warm the file cache and the bytecode cache
        totals, splits, in_run, heavy = [], [], [], False
        for _ in range(runs):
            total, split, pulled = importtime(directory, "-c", IMPORT_LIKE_PYTEST)
            totals.append(total)
            splits.append(split)
            run_total, _, run_pulled = importtime(directory, "-m", "pytest", "--co", "-q", "-p", "no:cacheprovider")
            in_run.append(run_total)
            heavy = heavy or pulled or run_pulled
        with_plugin, without_plugin = [], []
        for _ in range(runs):
            with_plugin.append(timed(directory))
            without_plugin.append(timed(directory, "-p", "no:acpcheck"))
    median_split = splits[totals.index(sorted(totals)[len(totals) // 2])]
    print(f"runs: {runs} each, on {os.cpu_count()} cores, pytest on one trivial test")
    print(f"acpcheck imports at start-up (median, -X importtime): {statistics.median(totals) / 1000:.1f} ms")
    for name, micros in sorted(median_split.items(), key=lambda kv: -kv[1]):
        print(f"  {name}: {micros / 1000:.1f} ms")
    print(f"  (what a pytest --co run logs of them: {statistics.median(in_run) / 1000:.1f} ms)")
    print(f"pydantic or acpcheck.model.plan imported: {'yes' if heavy else 'no'}")
    for index, kind in enumerate(("wall", "CPU")):
        plugin = statistics.median(times[index] for times in with_plugin)
        bare = statistics.median(times[index] for times in without_plugin)
        print(
            f"{kind}, median: {plugin * 1000:.0f} ms with the plugin, {bare * 1000:.0f} ms with -p no:acpcheck, "
            f"difference {(plugin - bare) * 1000:+.0f} ms"
        )


if __name__ == "__main__":
    main()
