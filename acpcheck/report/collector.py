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
    EXIT_INTERNAL,
    CheckResult,
    Status,
    exit_code,
    summarise,
    utc_now,
)
from acpcheck.report import writers

if TYPE_CHECKING:
    from acpcheck.plugin import Settings

_SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}


class ResultCollector:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.by_nodeid: dict[str, CheckResult] = {}
        self.written: Path | None = None
        self.run: dict[str, Any] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = getattr(report, "acp_result", None)
        if data is None:
            return
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
        document = {
            "schema": "acpcheck/results/v1",
            "run": self.run,
            "summary": summary,
            "expiredWaivers": expired,
            "results": [r.as_dict() for r in results],
        }
        inputs = settings.inputs
        try:
            files = writers.render_all(document)
            self.written = inputs.out.write(files) if inputs is not None else writers.write_all(settings.out_dir, document)
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
        results = self.results
        notable = [r for r in results if r.status in (Status.FAIL, Status.ERROR, Status.WARN, Status.MANUAL)]
        notable.sort(key=lambda r: (_STATUS_ORDER[r.status], _SEVERITY_ORDER.get(r.severity, 9), r.check, r.target))
        tr.section("acpcheck")
        # Every line is made visible: a node's hostname or a facts value may hold escape sequences.
        for result in notable:
            colour = {"fail": {"red": True}, "error": {"red": True}, "warn": {"yellow": True}}.get(str(result.status), {})
            tr.write_line(visible(f"{result.status.name:<6} {result.check} [{result.target}] {result.title}", True), bold=True, **colour)
            for line in result.message.splitlines():
                tr.write_line(visible(f"       {line}", True))
            if result.status in (Status.FAIL, Status.WARN):
                tr.write_line(visible(f"       fix: {result.remediation}", True))
                tr.write_line(visible(f"       see: {result.best_ref(self.settings.plan.spec.acp.version)}", True))
        for waiver in self.settings.waivers.expired:
            tr.write_line(visible(f"EXPIRED waiver {waiver.check} [{waiver.target}] owned by {waiver.owner}, expired {waiver.expires}", True), red=True)
        counts = summarise(results)
        line = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        verdict = writers.VERDICT[self.run["exitCode"]]
        tr.write_line(
            visible(f"{self.settings.plan.metadata.name}: {verdict} — {line or 'no results'} (profile {self.settings.profile.name}, fail_on {self.settings.profile.fail_on})", True),
            bold=True,
        )
        tr.write_line(visible(f"reports: {self.written}/  (results.json, junit.xml, summary.md, report.html, results.sarif)", True))


_STATUS_ORDER = {Status.FAIL: 0, Status.ERROR: 1, Status.WARN: 2, Status.MANUAL: 3}
