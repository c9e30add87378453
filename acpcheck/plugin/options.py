"""The plugin's options and configuration: the ``--acp-*`` options; on a run with
``--acp-plan``, the run's settings (prepared input on the controller, what the
controller sent on an xdist worker), the report collector (controller only), the
start of evidence gathering, and what xdist workers are sent.
"""

from __future__ import annotations

from typing import Any

import pytest

from acpcheck.errors import InputError
from acpcheck.model.profile import unknown_override_problems
from acpcheck.plugin.stash import SETTINGS, is_check_item, settings_of
from acpcheck.run.inputs import DEFAULT_PROFILE, RunInputs, prepare_run
from acpcheck.run.settings import RunDescription, Settings
from acpcheck.run.workers import for_workers, worker_settings


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("acpcheck", "Alauda Container Platform checks")
    group.addoption("--acp-plan", metavar="FILE", help="cluster plan (YAML); without it acpcheck does nothing")
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


def bad_input(error: InputError) -> pytest.UsageError:
    return pytest.UsageError(f"acpcheck: bad input\n{error}")


def refuse_unknown_overrides(settings: Settings) -> None:
    problems = unknown_override_problems(settings.profile)
    if problems:
        raise bad_input(InputError(problems))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "acpcheck(id): an acpcheck check (added by the plugin)")
    if "xdist_group" not in (line.split("(")[0].split(":")[0] for line in config.getini("markers")):
        config.addinivalue_line("markers", "xdist_group(name): keep items of one group on one xdist worker")
    plan_path = config.getoption("acp_plan")
    if not plan_path:
        return
    workerinput = getattr(config, "workerinput", None)
    settings = worker_settings(workerinput) if workerinput is not None else _controller_settings(config, plan_path)
    config.stash[SETTINGS] = settings
    needed = settings.sources_needed()
    if workerinput is not None and settings.replay_dir is not None:
        try:  # what the controller gathered or checked; read again only if damaged since
            settings.evidence.replay(needed, settings.replay_dir)
        except InputError as error:
            raise bad_input(error) from None
    # Check packs name their functions check_* and their files check_*.py; the
    # first-party pack's files are collected by path (pytest_collect_file).
    config.addinivalue_line("python_functions", "check_*")
    config.addinivalue_line("python_files", "check_*.py")
    alluredir = config.getoption("allure_report_dir", None)
    if alluredir:
        from acpcheck.report import allure

        allure.register(
            config, str(settings.profile.fail_on), settings.plan.spec.acp.version
        )  # titles and statuses, in every process
    if workerinput is None and config.getoption("numprocesses", None):
        # Under xdist this process collects nothing: the checks it knows (first-party
        # and imported packs) are all the run has to name an override.
        refuse_unknown_overrides(settings)
    if workerinput is None:
        from acpcheck.report.collector import ResultCollector

        assert settings.inputs is not None  # the controller's settings are made from its prepared input
        config.pluginmanager.register(
            ResultCollector(RunDescription.of(settings, settings.inputs, alluredir), is_check_item),
            "acpcheck-collector",
        )
        if not config.option.collectonly and needed and settings.replay_dir is None:
            if config.getoption("numprocesses", None):
                # xdist workers must not each connect to every node: gather here, once,
                # and hand the workers the saved directory.
                settings.ensure_evidence(needed)
                settings.replay_dir = settings.evidence_dir
            else:
                settings.gather_in_background(needed)  # waiting on the nodes overlaps with pytest's collection


def _controller_settings(config: pytest.Config, plan_path: str) -> Settings:
    """The run's input as ``acpcheck run`` prepared it (read once), or prepared here under plain pytest."""
    inputs = next((p for p in config.pluginmanager.get_plugins() if isinstance(p, RunInputs)), None)
    if inputs is None:
        try:
            inputs = prepare_run(
                plan_path,
                config.getoption("acp_profile"),
                config.getoption("acp_waivers"),
                config.getoption("acp_out"),
                config.getoption("acp_run_id"),
                [config.getoption("acp_select")],
                config.getoption("acp_facts"),
                config.getoption("acp_force"),
                config.getoption("allure_report_dir", None),
            )
        except InputError as error:
            raise bad_input(error) from None
    return Settings.of(inputs)


def pytest_unconfigure(config: pytest.Config) -> None:
    settings = settings_of(config)
    if settings is not None:
        settings.evidence.close()  # a gather interrupted by Ctrl-C drops its connections
        if settings.inputs is not None:
            settings.inputs.out.release()


@pytest.hookimpl(optionalhook=True)  # an xdist hook: absent without xdist
def pytest_configure_node(node: Any) -> None:
    """Controller side: give every worker the run id, the run's input and where the evidence gathered here is."""
    settings = settings_of(node.config)
    if settings is not None:
        node.workerinput.update(for_workers(settings))
