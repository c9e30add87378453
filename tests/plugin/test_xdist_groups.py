"""``--dist loadgroup`` keeps the items of one ``xdist_group`` on one worker.

acpcheck relies on it twice: a node's check items share ``xdist_group(<node>)``
(``acpcheck run -n``), and the suite's namespace-lab tests share one group so that a
single worker holds the machine's lab lock (tests/conftest.py). pytest 9.2 with
pytest-xdist 3.8 silently stopped grouping (pytest-dev/pytest-xdist#1386): nothing
failed, the lab tests on the other worker waited for the lock and were skipped. This
test is what says so if the pin on pytest in pyproject.toml is lifted too early."""

from __future__ import annotations

import pytest

GROUPED = """
import os
import pytest

@pytest.mark.parametrize("i", range(6))
@pytest.mark.xdist_group("together")
def test_grouped(i):
    with open("workers.txt", "a") as seen:  # the worker's output is not the run's
        seen.write(os.environ["PYTEST_XDIST_WORKER"] + " ")

@pytest.mark.parametrize("i", range(6))
def test_free(i):
    pass
"""


def test_loadgroup_runs_a_group_on_one_worker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_grouped=GROUPED)
    result = pytester.runpytest_subprocess("-p", "no:acpcheck", "-n", "2", "--dist", "loadgroup")
    result.assert_outcomes(passed=12)
    workers = set((pytester.path / "workers.txt").read_text().split())
    assert len(workers) == 1, f"the group ran on {sorted(workers)}: --dist loadgroup did not group"
