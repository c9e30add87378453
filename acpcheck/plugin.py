"""The pytest plugin: options, fixtures, node parametrisation, statuses, results.

Inert unless ``--acp-plan`` is given: installing acpcheck must not change anyone
else's pytest run. With a plan it

- collects ``@check`` functions (``check_*``) and the first-party pack,
- selects them by profile, SKIPs the ones that do not apply to the plan,
- parametrises node checks per node (with ``xdist_group(<node>)`` so
  ``--dist loadgroup`` keeps one node on one worker),
- grades each outcome PASS/FAIL/WARN/SKIP/MANUAL/ERROR (+ waived) on the report,
- and, on the controller only, writes results.json, junit.xml, summary.md and
  report.html (see ``acpcheck.report``).
"""

from __future__ import annotations

import importlib
import json
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generator

import pytest

import acpcheck.checks
from acpcheck.errors import InputError
from acpcheck.facts.model import Fleet, GatherFailure, NodeContext
from acpcheck.fleet import FactsByNode, NodeUnavailable, context_for, fleet_for, node_checks_selected, obtain_facts
from acpcheck.model.check import CheckMeta, Scope, Severity, verdict_of
from acpcheck.model.plan import ClusterPlan, Node, load_plan
from acpcheck.model.profile import Profile, load_profile, matches_selector
from acpcheck.model.result import CheckResult, Status, new_run_id, utc_now
from acpcheck.model.waivers import Waivers, load_waivers

#: Where the first-party checks are: the top-level checks/ of a checkout (editable
#: install) or acpcheck/checks/ inside a wheel. Either way their import name is
#: ``acpcheck.checks.<module>``.
CHECKS_DIR = Path(acpcheck.checks.__file__).resolve().parent
CHECKS_PACKAGE = acpcheck.checks.__name__
DEFAULT_PROFILE = "preinstall"


@dataclass
class Settings:
    """Everything a run was configured with; built once in pytest_configure."""

    plan: ClusterPlan
    plan_path: str
    profile: Profile
    waivers: Waivers
    out_dir: Path
    run_id: str
    select: list[str] = field(default_factory=list)
    started: str = ""
    #: saved facts to load instead of connecting (--acp-facts, or the xdist controller's)
    replay_dir: Path | None = None
    #: this process's facts, once obtained
    facts: FactsByNode | None = None
    #: facts being gathered in the background while pytest collects
    pending: Future[FactsByNode] | None = None


SETTINGS = pytest.StashKey[Settings]()
META = pytest.StashKey[CheckMeta]()
TARGET = pytest.StashKey[str]()

ALLURE_SEVERITY = {
    Severity.CRITICAL: "blocker",
    Severity.HIGH: "critical",
    Severity.MEDIUM: "normal",
    Severity.LOW: "minor",
    Severity.INFO: "trivial",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("acpcheck", "Alauda Container Platform checks")
    group.addoption("--acp-plan", metavar="FILE", help="cluster plan (YAML); without it acpcheck does nothing")
    group.addoption("--acp-profile", metavar="NAME|FILE", default=DEFAULT_PROFILE, help=f"profile (default {DEFAULT_PROFILE})")
    group.addoption("--acp-out", metavar="DIR", help="report directory (default reports/out/<run-id>)")
    group.addoption("--acp-waivers", metavar="FILE", help="waivers file (YAML)")
    group.addoption("--acp-select", metavar="SELECTORS", default="", help="only these checks, comma-separated: ACP-NET-*, area:VER, scope:plan")
    group.addoption("--acp-facts", metavar="DIR", help="replay node facts saved by `acpcheck gather` (no connection)")
    group.addoption("--acp-run-id", metavar="ID", help=None)


def settings_of(config: pytest.Config) -> Settings | None:
    return config.stash.get(SETTINGS, None)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "acpcheck(id): an acpcheck check (added by the plugin)")
    if "xdist_group" not in (line.split("(")[0].split(":")[0] for line in config.getini("markers")):
        config.addinivalue_line("markers", "xdist_group(name): keep items of one group on one xdist worker")
    plan_path = config.getoption("acp_plan")
    if not plan_path:
        return
    try:
        plan = load_plan(plan_path)
        profile = load_profile(config.getoption("acp_profile"))
        waivers = load_waivers(config.getoption("acp_waivers"))
    except InputError as error:
        raise pytest.UsageError(f"acpcheck: bad input\n{error}") from None
    workerinput = getattr(config, "workerinput", None)
    run_id = config.getoption("acp_run_id") or (workerinput or {}).get("acp_run_id") or new_run_id()
    out_dir = Path(config.getoption("acp_out") or Path("reports/out") / run_id)
    select = [s.strip() for s in config.getoption("acp_select").split(",") if s.strip()]
    replay = config.getoption("acp_facts") or (workerinput or {}).get("acp_facts_dir")
    settings = Settings(plan, plan_path, profile, waivers, out_dir, run_id, select, utc_now(), Path(replay) if replay else None)
    config.stash[SETTINGS] = settings
    if settings.replay_dir is not None:
        try:  # saved facts are input too: a damaged file is exit 4, before anything runs
            settings.facts = obtain_facts(plan, settings.replay_dir, None)
        except InputError as error:
            raise pytest.UsageError(f"acpcheck: bad input\n{error}") from None
    # Check packs name their functions check_* and their files check_*.py; the
    # first-party pack's files are collected by path (pytest_collect_file).
    config.addinivalue_line("python_functions", "check_*")
    config.addinivalue_line("python_files", "check_*.py")
    if workerinput is None:
        from acpcheck.report.collector import ResultCollector

        config.pluginmanager.register(ResultCollector(settings), "acpcheck-collector")
        if not config.option.collectonly and node_checks_selected(plan, profile, select):
            if config.getoption("numprocesses", None):
                # xdist workers must not each connect to every node: gather here, once,
                # and hand the workers the saved directory.
                _facts(settings)
                settings.replay_dir = settings.replay_dir or out_dir / "facts"
            else:
                # Waiting on the nodes overlaps with pytest's collection.
                settings.pending = ThreadPoolExecutor(1, thread_name_prefix="acpcheck-facts").submit(_obtain, settings)


@pytest.hookimpl(optionalhook=True)  # an xdist hook: absent without xdist
def pytest_configure_node(node: Any) -> None:
    """Controller side: give every worker the run id and the directory of the facts gathered here."""
    settings = settings_of(node.config)
    if settings is not None:
        node.workerinput["acp_run_id"] = settings.run_id
        if settings.replay_dir is not None:
            node.workerinput["acp_facts_dir"] = str(settings.replay_dir)


class CheckModule(pytest.Module):
    """A first-party check module, imported by its package name.

    pytest would import ``checks/network.py`` of a checkout as ``checks.network``
    (its rootdir-relative name); the catalogue and the other check modules know it
    as ``acpcheck.checks.network``. Importing it under one name means every check
    registers once, whether the run says ``pytest checks/`` or ``--pyargs acpcheck.checks``.
    """

    def _getobj(self) -> Any:
        return importlib.import_module(f"{CHECKS_PACKAGE}.{self.path.stem}")


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    """Collect the first-party checks (plain module names such as network.py)."""
    if settings_of(parent.config) is None:
        return None
    if file_path.suffix == ".py" and file_path.parent.resolve() == CHECKS_DIR and file_path.name != "__init__.py":
        return CheckModule.from_parent(parent, path=file_path)
    return None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    meta: CheckMeta | None = getattr(metafunc.function, "__acpcheck__", None)
    settings = settings_of(metafunc.config)
    if meta is None or settings is None or meta.scope is not Scope.NODE or "node" not in metafunc.fixturenames:
        return
    nodes = [n for n in settings.plan.spec.nodes if n.role in meta.roles]
    metafunc.parametrize(
        "node",
        [pytest.param(n, id=n.name, marks=pytest.mark.xdist_group(n.name)) for n in nodes],
        indirect=True,
    )


# -- fixtures -----------------------------------------------------------------


def _require(request: pytest.FixtureRequest) -> Settings:
    settings = settings_of(request.config)
    if settings is None:
        pytest.fail("acpcheck checks need a plan: run with --acp-plan FILE (or use `acpcheck run`)", pytrace=False)
    return settings


@pytest.fixture(scope="session")
def plan(request: pytest.FixtureRequest) -> ClusterPlan:
    """The cluster plan under assessment."""
    return _require(request).plan


@pytest.fixture(scope="session")
def params(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Profile parameters (defaults from acpcheck.model.profile.DEFAULT_PARAMS)."""
    return _require(request).profile.params


def _facts(settings: Settings) -> FactsByNode:
    """This process's node facts: replayed, or gathered once from every node."""
    if settings.facts is None:
        settings.facts = settings.pending.result() if settings.pending is not None else _obtain(settings)
    return settings.facts


def _obtain(settings: Settings) -> FactsByNode:
    save_dir = None if settings.replay_dir else settings.out_dir / "facts"
    try:
        return obtain_facts(settings.plan, settings.replay_dir, save_dir)
    except Exception as error:  # a bug must not hide the other results: every node is ERROR
        failure = f"gathering failed: {type(error).__name__}: {error}"
        return {n.name: GatherFailure(n.name, "probe", failure) for n in settings.plan.spec.nodes}


@pytest.fixture
def node(request: pytest.FixtureRequest) -> NodeContext:
    """The node a node-scope check runs against (parametrised per plan node): its
    plan entry and its facts. A node whose facts could not be gathered is ERROR."""
    settings = _require(request)
    return context_for(settings.plan, request.param, _facts(settings))


@pytest.fixture
def nodes(request: pytest.FixtureRequest) -> Fleet:
    """Every node's facts at once, for cross-node checks (unique hostnames, clock skew …)."""
    settings = _require(request)
    return fleet_for(settings.plan, _facts(settings))


def pytest_collection_finish(session: pytest.Session) -> None:
    """Gather before the first check runs (not inside it), so progress reads cleanly."""
    settings = settings_of(session.config)
    if settings is None or settings.facts is not None or session.config.option.collectonly:
        return
    if any(_needs_facts(item) for item in session.items):
        _facts(settings)


def _needs_facts(item: pytest.Item) -> bool:
    return META in item.stash and not item.get_closest_marker("skip") and bool({"node", "nodes"} & set(getattr(item, "fixturenames", ())))


# -- selection, applicability, labels -------------------------------------------


def _target(item: pytest.Item, meta: CheckMeta, settings: Settings) -> str:
    if meta.scope is Scope.NODE:
        callspec = getattr(item, "callspec", None)
        node_param = callspec.params.get("node") if callspec else None
        return node_param.target if isinstance(node_param, Node) else "nodes"
    if meta.scope is Scope.CLUSTER:
        return f"cluster:{settings.plan.metadata.name}"
    return "plan"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    settings = settings_of(config)
    if settings is None:
        return
    selected: list[pytest.Item] = []
    deselected: list[pytest.Item] = []
    for item in items:
        meta: CheckMeta | None = getattr(getattr(item, "function", None), "__acpcheck__", None)
        if meta is None:
            selected.append(item)
            continue
        chosen = settings.profile.selects(meta) and (not settings.select or any(matches_selector(s, meta) for s in settings.select))
        if not chosen:
            deselected.append(item)
            continue
        item.stash[META] = meta
        item.stash[TARGET] = _target(item, meta, settings)
        item.add_marker(pytest.mark.acpcheck(meta.id))
        reason = meta.applies.not_applicable(settings.plan)
        if reason:
            item.add_marker(pytest.mark.skip(reason=reason))
        if config.getoption("allure_report_dir", None):
            _add_allure_labels(item, meta, settings)
        selected.append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
    # Stable order: by check id, then target, whatever the file layout.
    selected.sort(key=lambda i: (i.stash[META].id, i.stash[TARGET]) if META in i.stash else ("", i.nodeid))
    items[:] = selected


def _add_allure_labels(item: pytest.Item, meta: CheckMeta, settings: Settings) -> None:
    label = pytest.mark.allure_label
    item.add_marker(label(ALLURE_SEVERITY[settings.profile.severity_of(meta)], label_type="severity"))
    item.add_marker(label(meta.area, label_type="feature"))
    item.add_marker(label(meta.id, label_type="check_id"))
    item.add_marker(label(item.stash[TARGET], label_type="target"))
    item.add_marker(label(meta.id, label_type="as_id"))


# -- grading -------------------------------------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    settings = settings_of(item.config)
    meta = item.stash.get(META, None)
    if settings is None or meta is None:
        return report
    decisive = report.when == "call" or (report.when == "setup" and not report.passed) or (report.when == "teardown" and report.failed)
    if not decisive:
        return report
    status, message, evidence = _grade(report, call, meta, settings)
    target = item.stash[TARGET]
    waiver = None
    if status in (Status.FAIL, Status.WARN):
        found = settings.waivers.find(meta.id, target)
        if found is not None and not found.is_expired(settings.waivers.today):
            status, waiver = Status.WAIVED, found.as_dict()
        elif found is not None:
            message += f"\n(waiver owned by {found.owner} expired on {found.expires.isoformat()}; it no longer applies)"
    result = CheckResult(
        check=meta.id,
        title=meta.title,
        area=meta.area,
        severity=str(settings.profile.severity_of(meta)),
        status=status,
        target=target,
        message=message,
        evidence=_jsonable(evidence),
        remediation=meta.remediation,
        refs=list(meta.refs),
        waiver=waiver,
        duration=round(report.duration, 4),
    )
    report.acp_result = result.as_dict()  # type: ignore[attr-defined]  # travels to the xdist controller
    _set_pytest_outcome(report, result)
    return report


def _grade(report: pytest.TestReport, call: pytest.CallInfo[None], meta: CheckMeta, settings: Settings) -> tuple[Status, str, dict[str, Any]]:
    if report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        return Status.SKIP, reason.removeprefix("Skipped: "), {}
    if report.when != "call":
        error = call.excinfo.value if call.excinfo else None
        if isinstance(error, NodeUnavailable):
            failure = error.failure
            return Status.ERROR, f"could not check: {failure.kind}: {failure.message}", {"node": failure.node, "kind": failure.kind}
        return Status.ERROR, f"could not check ({report.when} failed): {type(error).__name__}: {error}", {}
    verdict = verdict_of(call.excinfo.value if call.excinfo else None, settings.profile.severity_of(meta), settings.profile.fail_on)
    return Status(verdict.status), verdict.message, verdict.evidence


def _set_pytest_outcome(report: pytest.TestReport, result: CheckResult) -> None:
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
    # Setup-time SKIPs and ERRORs keep pytest's own outcome and traceback (useful to debug a check).


def _jsonable(evidence: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(evidence, default=str))  # type: ignore[no-any-return]


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
