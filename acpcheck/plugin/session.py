"""A run with a plan: its settings (prepared input on the controller, what the
controller sent on an xdist worker), the report collector (controller only), the
start of evidence gathering, and what xdist workers are sent.

Registered by ``acpcheck.plugin.options`` only on a run with ``--acp-plan``.
"""

from __future__ import annotations

from typing import Any

import pytest

from acpcheck.errors import InputError
from acpcheck.model.profile import unknown_override_problems
from acpcheck.plugin.stash import SETTINGS, is_check_item, settings_of
from acpcheck.run.fleetrun import WORKER_EVIDENCE, receive_evidence, worker_evidence
from acpcheck.run.inputs import RunInputs, prepare_run
from acpcheck.run.settings import RunDescription, Settings
from acpcheck.run.workers import for_workers, worker_settings


def bad_input(error: InputError) -> pytest.UsageError:
    return pytest.UsageError(f"acpcheck: bad input\n{error}")


def refuse_unknown_overrides(settings: Settings) -> None:
    problems = unknown_override_problems(settings.profile)
    if problems:
        raise bad_input(InputError(problems))


def distributed(config: pytest.Config) -> bool:
    """Whether xdist runs the checks in workers (``-n N`` or ``--tx``), not this process."""
    return bool(config.getoption("numprocesses", None) or config.getoption("tx", None))


def pytest_configure(config: pytest.Config) -> None:
    plan_path = config.getoption("acp_plan")
    workerinput = getattr(config, "workerinput", None)
    settings = worker_settings(workerinput) if workerinput is not None else _controller_settings(config, plan_path)
    config.stash[SETTINGS] = settings
    # A fleet member's evidence is gathered where its checks run, when first needed (acpcheck.run.fleetrun).
    needed = settings.sources_needed() if settings.fleet is None else []
    if workerinput is not None and settings.replay_dir is not None and needed:
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
    if workerinput is None and distributed(config):
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
            if distributed(config):
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
                fleet=config.getoption("acp_fleet"),
            )
        except InputError as error:
            raise bad_input(error) from None
    return Settings.of(inputs)


def pytest_unconfigure(config: pytest.Config) -> None:
    settings = settings_of(config)
    if settings is not None:
        for run in settings.clusters.values():
            run.evidence.close()  # a gather interrupted by Ctrl-C drops its connections
        if settings.inputs is not None:
            settings.inputs.out.release()


def pytest_sessionfinish(session: pytest.Session) -> None:
    """xdist worker of a fleet run: send the controller the evidence gathered here."""
    settings = settings_of(session.config)
    workeroutput = getattr(session.config, "workeroutput", None)
    if settings is not None and settings.fleet is not None and workeroutput is not None:
        workeroutput[WORKER_EVIDENCE] = worker_evidence(settings)


@pytest.hookimpl(optionalhook=True)  # an xdist hook: absent without xdist
def pytest_testnodedown(node: Any, error: Any) -> None:
    """Controller of a fleet run: keep the evidence a worker gathered (``<out>/facts/<cluster>/``)."""
    settings = settings_of(node.config)
    output = getattr(node, "workeroutput", None)
    if settings is not None and settings.fleet is not None and output:
        try:
            receive_evidence(settings, output.get(WORKER_EVIDENCE), str(getattr(node, "gateway", node).id))
        except InputError as refused:
            # The run cannot say where this evidence came from: it does not complete (exit 3, reports say why).
            raise RuntimeError(f"refused what an xdist worker sent: {refused.problems[0].message}") from None


@pytest.hookimpl(optionalhook=True)  # an xdist hook: absent without xdist
def pytest_configure_node(node: Any) -> None:
    """Controller side: give every worker the run id, the run's input and where the evidence gathered here is."""
    settings = settings_of(node.config)
    if settings is not None:
        node.workerinput.update(for_workers(settings))
