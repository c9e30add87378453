"""What installing acpcheck costs a pytest run that does not use it (issue 21, item 5).

pytest loads the plugin (entry point ``acpcheck``) on every run in an environment
where acpcheck is installed; without ``--acp-plan`` it must not import the model
(pydantic and the plan model alone cost such a run about 0.3 s). The figures are
``bench/plugin_startup.py``'s; these tests keep the imports that make them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "workload-kube-ovn.yaml"

#: What the run's conftest.py reports as imported when the session ends: the plugin's
#: light part (so the plugin did load), its run parts, the model, pydantic.
WATCHED = ("acpcheck.plugin.options", "acpcheck.plugin.collection", "acpcheck.model.plan", "pydantic")

CONFTEST = f"""
import sys

def pytest_terminal_summary(terminalreporter):
    loaded = [name for name in {WATCHED!r} if name in sys.modules]
    terminalreporter.write_line("IMPORTED " + " ".join(loaded))
"""


def imported(pytester: pytest.Pytester, *args: str) -> list[str]:
    """The watched modules imported by a fresh pytest process run with ``args`` on a trivial test."""
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_trivial="def test_one():\n    assert 1\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)
    (line,) = [line for line in result.outlines if line.startswith("IMPORTED")]
    return line.split()[1:]


def test_a_run_without_acpcheck_options_imports_neither_pydantic_nor_the_plan_model(pytester: pytest.Pytester) -> None:
    assert imported(pytester) == ["acpcheck.plugin.options"]


def test_a_run_with_a_plan_imports_the_rest_of_the_plugin(pytester: pytest.Pytester) -> None:
    """The counterpart: the same conftest sees the run parts and the model once a plan is given."""
    out = pytester.path / "out"
    assert imported(pytester, f"--acp-plan={EXAMPLE}", "--acp-profile=plan", f"--acp-out={out}", "--co") == list(
        WATCHED
    )


def test_a_run_without_the_plugin_imports_none_of_it(pytester: pytest.Pytester) -> None:
    assert imported(pytester, "-p", "no:acpcheck") == []
