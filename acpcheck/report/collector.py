"""Controller-side collector: gathers graded results and writes the run's reports.

Registered only on the controller (never on xdist workers), like pytest's own
junitxml: workers grade items, xdist forwards their reports with the
``acp_result`` attribute, and this class sees every one of them exactly once.

It also knows whether the run completed, and never writes a verdict for one that
did not: when pytest stopped with an internal error (a plugin that broke, e.g.
allure-pytest on a full ``--alluredir``), was interrupted, or checks it collected
gave no result (an xdist worker that died), the report set says "incomplete" with
the reason (``writers.verdict``), has no results.json, and ``acpcheck run`` exits 3
(2 when interrupted, as before). A report directory that cannot take the reports
(full, read-only) is exit 4 naming it, with none of the set left behind.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from acpcheck import __version__
from acpcheck.errors import InputError, visible
from acpcheck.model.result import (
    ALL_NODES,
    EXIT_BAD_INPUT,
    EXIT_ERROR,
    EXIT_INTERNAL,
    CheckResult,
    Status,
    exit_code,
    summarise,
    utc_now,
)
from acpcheck.report import writers
from acpcheck.report.document import RESULTS_SCHEMA
from acpcheck.report.outdir import ReportsNotWritten, usable
from acpcheck.report.terminal import summary_lines

if TYPE_CHECKING:
    from acpcheck.model.plan import ClusterPlan
    from acpcheck.report.diff import Baseline
    from acpcheck.run.settings import RunDescription


#: The longest reason an incomplete report gives (the first line of an exception, a path).
REASON_CHARS = 400


class ResultCollector:
    """``run``: the run, as the controller configured it. ``is_check_item``: whether a
    collected item is a check (the plugin knows; a run may hold plain tests too)."""

    def __init__(self, run: RunDescription, is_check_item: Callable[[pytest.Item], bool]):
        self.description = run
        self.is_check_item = is_check_item
        #: the directories this run writes, by option: a crash on one of them is named
        self.directories = {"--out": str(run.out.path), "--alluredir": run.alluredir}
        self.by_nodeid: dict[str, CheckResult] = {}
        #: check id -> its rationale, sent once per check by each process that graded it
        self.rationales: dict[str, str] = {}
        self.written: Path | None = None
        self.run: dict[str, Any] = {}
        self.document: dict[str, Any] = {}
        #: node ids of the check items the run will run (None until collected)
        self.expected: set[str] | None = None
        #: why pytest stopped with an internal error (pytest_internalerror)
        self.crash: str | None = None
        #: the first check item that ended without a graded result, and how
        self.lost: str | None = None
        #: --baseline (--acp-baseline): the earlier run whose findings do not fail this one
        self.baseline: Baseline | None = None

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        path = session.config.getoption("acp_baseline", None)
        if path:
            from acpcheck.report.diff import Baseline, refuse_other_cluster

            try:
                self.baseline = Baseline.read(path)
                fleet = self.description.fleet
                if fleet is not None:
                    refuse_other_cluster(
                        self.baseline.file, fleet.name, "the fleet (metadata.name)", "--baseline", fleet=True
                    )
                else:
                    refuse_other_cluster(
                        self.baseline.file, self.description.plan.metadata.name, "the plan", "--baseline", fleet=False
                    )
            except InputError as error:
                raise pytest.UsageError(f"acpcheck: bad input\n{error}") from None

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.expected = {item.nodeid for item in session.items if self.is_check_item(item)}

    @pytest.hookimpl(optionalhook=True)  # xdist: the controller collects nothing itself
    def pytest_xdist_node_collection_finished(self, node: Any, ids: Sequence[str]) -> None:
        if self.expected is None:
            # The controller has ids only: check items are the check_* functions
            # (the plugin's python_functions); every worker collects the same ids.
            self.expected = {nodeid for nodeid in ids if nodeid.rsplit("::", 1)[-1].startswith("check_")}

    def pytest_internalerror(self, excrepr: Any, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        if self.crash is None:
            self.crash = crash_reason(excinfo.value, self.directories)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = getattr(report, "acp_result", None)
        if data is None:
            if report.failed and self.lost is None and (self.expected is None or report.nodeid in self.expected):
                # Failed outside grading: an xdist worker that died running it, a plugin's hook that broke.
                self.lost = f"{report.nodeid}: {_first_line(str(report.longrepr))}"
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
        # By cluster (in the fleet's order: a single plan has one), then check and target.
        order = {name: index for index, name in enumerate(self.description.clusters)}
        return sorted(self.by_nodeid.values(), key=lambda r: (order.get(r.cluster, len(order)), r.check, r.target))

    def incomplete(self, session: pytest.Session, exitstatus: int) -> tuple[int, str] | None:
        """(exit code, reason) when the run did not complete, else None."""
        if self.crash is not None or exitstatus == pytest.ExitCode.INTERNAL_ERROR:
            return EXIT_INTERNAL, self.crash or "pytest stopped with an internal error"
        missing = sorted((self.expected or set()) - set(self.by_nodeid))
        maxfail = session.config.getoption("maxfail", 0) or 0
        summary = summarise(list(self.by_nodeid.values()))
        if maxfail and summary["fail"] + summary["error"] >= maxfail:
            return None  # stopped by the user's own -x/--maxfail, on a FAIL or ERROR that the verdict shows
        if exitstatus == pytest.ExitCode.INTERRUPTED:
            return EXIT_ERROR, f"interrupted ({session.shouldstop})" if isinstance(
                session.shouldstop, str
            ) and session.shouldstop else "interrupted"
        if missing:
            example = self.lost or missing[0]
            return (
                EXIT_INTERNAL,
                f"{len(missing)} of {len(self.expected or ())} checks gave no result (first: {example})",
            )
        return None

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if session.config.option.collectonly:
            return
        described = self.description
        results = self.results
        summary = summarise(results)
        expired = [w.as_dict() for w in described.waivers.expired]
        fleet = described.fleet
        self.run = {
            "id": described.run_id,
            "started": described.started,
            "finished": utc_now(),
            "profile": described.profile.name,
            "plan": described.plan_path,
            "cluster": fleet.name if fleet is not None else described.plan.metadata.name,
            "acp": fleet.target if fleet is not None else described.plan.spec.acp.version,
            "acpcheck": __version__,
            "failOn": str(described.profile.fail_on),
            "exitCode": exit_code(summary, len(expired)),
            "liveEvidence": live_evidence(described) if fleet is None else None,  # null: the run read no cluster
            "baseline": None,
            "fleet": fleet_roster(described),  # null: a single-plan run
        }
        if self.baseline is not None:
            dicts = [r.as_dict() for r in results]
            self.run["exitCode"] = self.baseline.exit_code(results, self.run, len(expired))
            self.run["baseline"] = self.baseline.record(dicts, self.run)
        document = self.document = {
            "schema": RESULTS_SCHEMA,
            "run": self.run,
            "summary": summary,
            "expiredWaivers": expired,
            "results": [r.as_dict() for r in results],
        }
        stopped = self.incomplete(session, exitstatus)
        alluredir = described.alluredir
        if alluredir:
            from acpcheck.report import allure

            if stopped is not None:
                self._mark_incomplete(*stopped)
            try:
                allure.write_run_files(Path(alluredir), document)
            except OSError as error:
                stopped = stopped or (EXIT_INTERNAL, f"--alluredir {_path_text(alluredir)}: {error.strerror or error}")
        if stopped is not None:
            self._mark_incomplete(*stopped)
        context = writers.Context(
            self.rationales,
            plan_lines(described.plan) if fleet is None else {},
            described.waivers.file,
            described.waivers.expired_lines(),
            {m.name: plan_lines(m.plan) for m in fleet.members} if fleet is not None else {},
        )
        try:
            files = writers.render_all(document, context)
            self.written = described.out.write(files, "incomplete" if stopped else "complete")
        except (ReportsNotWritten, OSError) as error:
            # Nothing of this set is left, and the previous run's reports were removed
            # when this run began: nothing stale is left looking current either.
            problem = (
                error.problem
                if isinstance(error, ReportsNotWritten)
                else f"{_path_text(described.out.path)}: the reports cannot be written ({error.strerror or error})"
            )
            self._say(session, EXIT_BAD_INPUT, f"bad input\n{problem}")
            return
        failure = (
            (
                f"the run did not complete: {stopped[1]}; the reports in {_path_text(self.written)} say so (no "
                "results.json)"
            )
            if stopped
            else None
        )
        self._say(session, self.run["exitCode"], failure)

    def _say(self, session: pytest.Session, code: int, failure: str | None) -> None:
        """Hand the exit code (and what went wrong) to `acpcheck run`, which prints it;
        under plain pytest, print it here."""
        hand_back = self.description.hand_back
        hand_back.exit_code, hand_back.failure = code, failure  # never re-read from a file
        if failure and not hand_back.command_line:
            session.config.get_terminal_writer().line(f"acpcheck: {failure}", red=True)

    def _mark_incomplete(self, code: int, reason: str) -> None:
        self.run["exitCode"] = code
        self.document["incomplete"] = reason

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.written is None:
            return
        tr = terminalreporter
        tr.section("acpcheck")
        # terminal.summary_lines makes every line visible: a hostname may hold escape sequences.
        for text, markup in summary_lines(self.document, tr.config.get_terminal_writer().fullwidth, str(self.written)):
            tr.write_line(text, **markup)
        if self.baseline is not None:
            from acpcheck.report.diff import baseline_sentence
            from acpcheck.report.terminal import INDENT, wrap

            for text in wrap(baseline_sentence(self.run), tr.config.get_terminal_writer().fullwidth, "", INDENT):
                tr.write_line(text, bold=True)


def live_evidence(described: RunDescription, cluster: str | None = None) -> dict[str, Any] | None:
    """results.json's ``run.liveEvidence`` (a fleet: each member's, ``cluster``): where
    the live-cluster evidence came from (``acpcheck.sources.cluster.LiveProvenance``),
    replayed or not; None when no cluster was read (no check needed it, no kubeconfig
    named an API server, or the member's checks did not run)."""
    evidence = described.evidence if cluster is None else described.clusters[cluster].evidence
    if not evidence.has("cluster"):
        return None
    from acpcheck.sources.cluster import live_provenance

    replayed = described.hand_back.replay_dir
    if replayed is not None and cluster is not None:
        replayed = replayed / cluster
    found = live_provenance(evidence.raw("cluster"), str(replayed) if replayed else None, described.started)
    return found.as_dict() if found else None


def fleet_roster(described: RunDescription) -> dict[str, Any] | None:
    """results.json's ``run.fleet``: the fleet and its members in order (those the global
    cluster listed too), each with where its live evidence came from; None for a plan."""
    fleet = described.fleet
    if fleet is None:
        return None
    return {
        "name": fleet.name,
        "file": described.plan_path,
        "acp": fleet.target,
        "clusters": [
            {
                "name": member.name,
                "role": member.role,
                "type": member.type,
                "plan": member.plan.file if member.plan.declared else None,
                "discovered": member.discovered,
                "liveEvidence": live_evidence(described, member.name),
            }
            for member in fleet.members
        ],
    }


def crash_reason(error: BaseException, directories: dict[str, str | None]) -> str:
    """One line on why pytest stopped. A file-system error is blamed on the run's
    directory it happened in (``--alluredir DIR: cannot be written to (No space left on
    device)``): by its file name, or, when it has none (a write that failed on a full
    disk; an xdist worker's error, which reaches the controller as text), on the one
    that cannot be written now. Anything else: the exception's line."""
    said = _exception_line(error)
    if isinstance(error, OSError) and error.filename is not None:
        for option, directory in directories.items():
            if directory and _inside(str(error.filename), directory):
                return _first_line(
                    f"{option} {_path_text(directory)}: {error.strerror or error} (writing "
                    f"{_path_text(Path(str(error.filename)).name)})"
                )
    if isinstance(error, OSError) or "[Errno " in said:
        for option, directory in directories.items():
            if directory:
                try:
                    usable(Path(directory), option)
                except InputError as refused:
                    return _first_line(f"{option} {_path_text(directory)}: {refused.problems[0].message}")
    if isinstance(error, OSError) and error.filename is not None:
        return _first_line(f"{_path_text(error.filename)}: {error.strerror or error}")
    return _first_line(said)


def _exception_line(error: BaseException) -> str:
    """``OSError: [Errno 28] No space left on device``. xdist hands a worker's internal
    error to the controller as an AssertionError holding the worker's traceback: its
    last exception line is the one that says what happened."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if isinstance(error, AssertionError):
        raised = [line for line in lines if re.match(r"^(E\s+)?[\w.]+(Error|Exception|Exit|Interrupt): ", line)]
        if raised:
            return re.sub(r"^E\s+", "", raised[-1])
    return f"{type(error).__name__}: {lines[0] if lines else ''}"


def _inside(path: str, directory: str) -> bool:
    try:
        return Path(path).resolve().is_relative_to(Path(directory).resolve())
    except (OSError, ValueError):
        return False


def _path_text(path: Any) -> str:
    return visible(str(path), one_line=True)


def _first_line(text: str) -> str:
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    return line if len(line) <= REASON_CHARS else line[: REASON_CHARS - 1] + "…"


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
        (
            f"cluster:{plan.metadata.name}",
            ("spec", "kubeconfig") if ("spec", "kubeconfig") in source.lines else ("metadata", "name"),
        ),
    ):
        line = source.line_of(path)
        if line:
            lines[target] = line
    return lines
