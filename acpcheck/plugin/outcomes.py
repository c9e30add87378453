"""Outcomes: running a check body, grading how it ended (``acpcheck.grading``) on its
report, pytest's outcome for each status, and the statuses pytest's terminal shows.
"""

from __future__ import annotations

import traceback
from collections.abc import Generator

import pytest

from acpcheck.grading import grade
from acpcheck.model.check import NotApplicable
from acpcheck.model.result import CheckResult, Status
from acpcheck.plugin.collection import check_arguments
from acpcheck.plugin.stash import CLUSTER, META, SETTINGS, TARGET, settings_of
from acpcheck.sources import TargetUnavailable

#: how a check body ended (its finding, or the exception it raised), kept for grading
ENDING = pytest.StashKey[BaseException]()
#: the checks whose rationale this process has sent with a report (once per check)
RATIONALE_SENT = pytest.StashKey[set[str]]()


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run a check body and keep how it ended for grading.

    A finding (FAIL, WARN, MANUAL, SKIP) is an exception by design; letting it
    propagate would make pytest format a traceback for each one, only for grading
    to replace it with the finding. pytest's own outcomes (``pytest.skip``,
    ``pytest.fail``, Ctrl-C) are not ``Exception`` and still propagate.
    """
    if META not in pyfuncitem.stash:
        return None
    arguments = check_arguments(pyfuncitem, pyfuncitem.config.stash[SETTINGS])
    missing = next((value for value in arguments.values() if isinstance(value, TargetUnavailable)), None)
    if missing is not None:
        pyfuncitem.stash[ENDING] = missing  # no evidence for this target: ERROR, and the body does not run
        return True
    try:
        pyfuncitem.obj(**arguments)
    except Exception as ending:  # noqa: BLE001 — graded in pytest_runtest_makereport
        pyfuncitem.stash[ENDING] = ending
    return True


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    settings = settings_of(item.config)
    meta = item.stash.get(META, None)
    if settings is None or meta is None:
        return report
    decisive = (
        report.when == "call"
        or (report.when == "setup" and not report.passed)
        or (report.when == "teardown" and report.failed)
    )
    if not decisive:
        return report
    if report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        ending: BaseException | None = NotApplicable(reason.removeprefix("Skipped: "))
    elif call.excinfo:
        ending = call.excinfo.value
    else:
        ending = item.stash.get(ENDING, None) if report.when == "call" else None
    policy = settings.cluster(item.stash.get(CLUSTER, None)).policy
    result = grade(meta, item.stash[TARGET], ending, policy, phase=report.when, duration=report.duration)
    report.acp_result = result.as_dict()  # type: ignore[attr-defined]  # travels to the xdist controller
    sent = item.config.stash.setdefault(RATIONALE_SENT, set())
    if meta.id not in sent:  # the reports' "why": once per check and process, not per target
        sent.add(meta.id)
        report.acp_rationale = meta.rationale  # type: ignore[attr-defined]
    _set_pytest_outcome(report, result, ending)
    return report


def _set_pytest_outcome(report: pytest.TestReport, result: CheckResult, ending: BaseException | None) -> None:
    """Map our status onto pytest's three outcomes (so plain pytest exit codes make sense)."""
    headline = f"{result.check} [{result.target}] {result.status.name}: {result.message}"
    if result.status in (Status.PASS, Status.WARN, Status.WAIVED):
        report.outcome = "passed"
        report.longrepr = None
        if result.status is not Status.PASS:
            report.sections.append(("acpcheck", headline))
    elif result.status in (Status.MANUAL, Status.SKIP) and report.when == "call":
        prefix = "MANUAL: " if result.status is Status.MANUAL else ""
        report.outcome = "skipped"
        report.longrepr = (str(report.location[0]), report.location[1] or 0, prefix + result.message)
    elif result.status is Status.FAIL:
        report.outcome = "failed"
        report.longrepr = headline
    elif result.status is Status.ERROR and report.when == "call" and report.passed:
        # A check body that broke (its exception was kept by pytest_pyfunc_call): a
        # pytest failure, with the traceback that says where to look.
        report.outcome = "failed"
        report.longrepr = headline + "\n" + "".join(traceback.format_exception(ending)) if ending else headline
    # Setup-time SKIPs and ERRORs keep pytest's own outcome and traceback (useful to debug a check).


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> tuple[str, str, str] | None:
    result = getattr(report, "acp_result", None)
    if result is None:
        return None
    status = result["status"]
    if status == "warn":
        return "warned", "W", "WARN"
    if status == "waived":
        return "waived", "w", "WAIVED"
    if status == "manual":
        return "manual", "M", "MANUAL"
    if status == "error" and report.when == "call":
        return "error", "E", "ERROR"
    return None
