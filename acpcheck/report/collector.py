"""Controller-side collector: gathers graded results and writes the run's reports.

Registered only on the controller (never on xdist workers), like pytest's own
junitxml: workers grade items, xdist forwards their reports with the
``acp_result`` attribute, and this class sees every one of them exactly once.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from acpcheck import __version__
from acpcheck.errors import visible
from acpcheck.model.result import (
    ALL_NODES,
    EXIT_INTERNAL,
    CheckResult,
    Status,
    exit_code,
    summarise,
    utc_now,
)
from acpcheck.report import writers
from acpcheck.report.terminal import summary_lines

if TYPE_CHECKING:
    from acpcheck.model.plan import ClusterPlan
    from acpcheck.plugin import Settings


class ResultCollector:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.by_nodeid: dict[str, CheckResult] = {}
        #: check id -> its rationale, sent once per check by each process that graded it
        self.rationales: dict[str, str] = {}
        self.written: Path | None = None
        self.run: dict[str, Any] = {}
        self.document: dict[str, Any] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = getattr(report, "acp_result", None)
        if data is None:
            return
        rationale = getattr(report, "acp_rationale", None)
        if rationale:
            self.rationales.setdefault(data["check"], rationale)
        previous = self.by_nodeid.get(report.nodeid)
        # A teardown error only matters when the check itself had passed.
        if previous is None or previous.status is Status.PASS:
            self.by_nodeid[report.nodeid] = CheckResult.from_dict(data)

    @property
    def results(self) -> list[CheckResult]:
        return sorted(self.by_nodeid.values(), key=lambda r: (r.check, r.target))

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if session.config.option.collectonly:
            return
        settings = self.settings
        results = self.results
        summary = summarise(results)
        expired = [w.as_dict() for w in settings.waivers.expired]
        self.run = {
            "id": settings.run_id,
            "started": settings.started,
            "finished": utc_now(),
            "profile": settings.profile.name,
            "plan": settings.plan_path,
            "cluster": settings.plan.metadata.name,
            "acp": settings.plan.spec.acp.version,
            "acpcheck": __version__,
            "failOn": str(settings.profile.fail_on),
            "exitCode": exit_code(summary, len(expired)),
        }
        document = self.document = {
            "schema": "acpcheck/results/v1",
            "run": self.run,
            "summary": summary,
            "expiredWaivers": expired,
            "results": [r.as_dict() for r in results],
        }
        context = writers.Context(self.rationales, plan_lines(settings.plan))
        inputs = settings.inputs
        try:
            files = writers.render_all(document, context)
            self.written = inputs.out.write(files) if inputs is not None else writers.write_all(settings.out_dir, document, context)
            alluredir = session.config.getoption("allure_report_dir", None)
            if alluredir:
                from acpcheck.report import allure

                allure.write_run_files(Path(alluredir), document)
        except OSError as error:
            # The previous run's reports were removed when this run began: nothing stale is left looking current.
            session.config.get_terminal_writer().line(f"acpcheck: the reports could not be written to {visible(str(settings.out_dir), True)}: {error.strerror or error}", red=True)
            if inputs is not None:
                inputs.exit_code = EXIT_INTERNAL
            return
        if inputs is not None:
            inputs.exit_code = self.run["exitCode"]  # handed back to `acpcheck run`: never re-read from a file

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.written is None:
            return
        tr = terminalreporter
        tr.section("acpcheck")
        # terminal.summary_lines makes every line visible: a hostname may hold escape sequences.
        for text, markup in summary_lines(self.document, tr._tw.fullwidth, str(self.written)):
            tr.write_line(text, **markup)


def plan_lines(plan: ClusterPlan) -> dict[str, int]:
    """Each target's line in the plan file: a node's item of ``spec.nodes``, the
    ``spec.nodes`` list for the cross-node target, ``metadata.name`` (or
    ``spec.kubeconfig``) for the live cluster. Empty for a plan not read from a file."""
    source = plan._source
    if source is None:
        return {}
    lines: dict[str, int] = {}
    for index, node in enumerate(plan.spec.nodes):
        line = source.line_of(("spec", "nodes", index))
        if line:
            lines.setdefault(node.target, line)
    for target, path in (
        (ALL_NODES, ("spec", "nodes")),
        (f"cluster:{plan.metadata.name}", ("spec", "kubeconfig") if ("spec", "kubeconfig") in source.lines else ("metadata", "name")),
    ):
        line = source.line_of(path)
        if line:
            lines[target] = line
    return lines
