"""The plugin's options and its start: the ``--acp-*`` options, the markers every run
knows, and, on a run with ``--acp-plan`` (or ``--acp-fleet``) only, the plugin's other parts.

pytest imports this module (and ``fixtures``) on every run in an environment where
acpcheck is installed, so it imports nothing of the model: pydantic and the plan model
alone cost such a run about 0.3 s. Without a plan the plugin costs a few milliseconds
(``bench/plugin_startup.py``; ``tests/plugin/test_startup.py`` keeps it so).
"""

from __future__ import annotations

import pytest

from acpcheck.run import DEFAULT_PROFILE

#: The parts of the plugin that act on a run with a plan, registered (and imported)
#: by pytest_configure only then. pytest calls a part's pytest_configure as it is
#: registered (the hook is historic), in this order: settings first.
RUN_PARTS = (
    "acpcheck.plugin.session",  # the run's settings, xdist hand-off, report collector, evidence gathering
    "acpcheck.plugin.collection",  # check modules and items, selection, applicability, markers, order
    "acpcheck.plugin.evidence",  # evidence fixtures (checks collected the usual way)
    "acpcheck.plugin.outcomes",  # running a check body, grading, pytest outcomes and statuses
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("acpcheck", "Alauda Container Platform checks")
    group.addoption("--acp-plan", metavar="FILE", help="cluster plan (YAML); without it acpcheck does nothing")
    group.addoption(
        "--acp-fleet",
        metavar="FILE",
        help="fleet file (YAML, kind: Fleet) instead of a plan: every member cluster judged in one run",
    )
    group.addoption(
        "--acp-profile", metavar="NAME|FILE", default=DEFAULT_PROFILE, help=f"profile (default {DEFAULT_PROFILE})"
    )
    group.addoption("--acp-out", metavar="DIR", help="report directory (default reports/out/<run-id>)")
    group.addoption("--acp-waivers", metavar="FILE", help="waivers file (YAML)")
    group.addoption(
        "--acp-select",
        metavar="SELECTORS",
        default="",
        help="only these checks, comma-separated: ACP-NET-*, area:VER, scope:plan",
    )
    group.addoption(
        "--acp-facts", metavar="DIR", help="replay the evidence saved by a run or by `acpcheck gather` (no connection)"
    )
    group.addoption(
        "--acp-baseline",
        metavar="FILE",
        help="results.json of an earlier run: only findings not in it fail the run (acpcheck run --baseline)",
    )
    group.addoption("--acp-run-id", metavar="ID", help=None)
    group.addoption(
        "--acp-force", action="store_true", help="write reports into a --acp-out directory that holds other files"
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "acpcheck(id): an acpcheck check (added by the plugin)")
    if "xdist_group" not in (line.split("(")[0].split(":")[0] for line in config.getini("markers")):
        config.addinivalue_line("markers", "xdist_group(name): keep items of one group on one xdist worker")
    if not (config.getoption("acp_plan") or config.getoption("acp_fleet")):
        return
    for part in RUN_PARTS:
        config.pluginmanager.import_plugin(part)
