"""The pytest plugin: options, evidence fixtures, node parametrisation, statuses, results.

Inert unless ``--acp-plan`` is given: installing acpcheck must not change anyone
else's pytest run. With a plan it

- collects ``@check`` functions (``check_*``) and the first-party pack,
- selects them by profile, SKIPs the ones that do not apply to the plan,
- gathers the evidence the selected checks need once per run on the controller
  (``acpcheck.sources``), or replays it (``--acp-facts``), and hands each check
  the evidence named by its parameters (``node``, ``nodes``, …): directly for
  ``CheckItem``s, through fixtures of the same names for checks that also use
  fixtures of their own,
- makes one item per check and node for node checks (with ``xdist_group(<node>)``
  so ``--dist loadgroup`` keeps one node on one worker),
- grades each outcome through ``acpcheck.grading`` on the report,
- and, on the controller only, writes results.json, junit.xml, summary.md and
  report.html (see ``acpcheck.report``).
"""

from __future__ import annotations

import gc
import importlib
import inspect
import traceback
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Generator

import pytest

import acpcheck.checks
from acpcheck.errors import InputError, Problem
from acpcheck.grading import GradingPolicy, grade, not_applicable, target_of
from acpcheck.model.check import CheckMeta, NotApplicable, Scope, Severity
from acpcheck.model.plan import (
    ClusterPlan,
    Node,
    load_plan,
    plan_from_document,
    secret_reference_problems,
)
from acpcheck.model.profile import (
    Profile,
    load_profile,
    matches_selector,
    selector_problems,
    unknown_override_problems,
)
from acpcheck.model.result import CheckResult, Status, new_run_id, utc_now
from acpcheck.model.waivers import Waiver, Waivers, load_waivers
from acpcheck.report.outdir import OutDir, usable
from acpcheck.sources import REGISTRY, SourceEntry, TargetUnavailable, source_providing, sources_for
from acpcheck.sources.evidence import Evidence, ProgressLine

#: Where the first-party checks are: the top-level checks/ of a checkout (editable
#: install) or acpcheck/checks/ inside a wheel. Either way their import name is
#: ``acpcheck.checks.<module>``.
CHECKS_DIR = Path(acpcheck.checks.__file__).resolve().parent
CHECKS_PACKAGE = acpcheck.checks.__name__
DEFAULT_PROFILE = "preinstall"


@dataclass(eq=False)  # registered as a pytest plugin object: hashed by identity
class RunInputs:
    """A run's input, read and checked once, before anything runs or connects, and
    what the run hands back. ``acpcheck run`` prepares it (``prepare_run``) and
    registers it as a plugin object; under plain pytest, pytest_configure prepares it.
    """

    plan: ClusterPlan
    plan_path: str
    profile: Profile
    waivers: Waivers
    run_id: str
    out: OutDir
    select: list[str] = field(default_factory=list)
    #: the evidence replayed from --facts (loaded here, so a damaged file is exit 4)
    evidence: Evidence | None = None
    replay_dir: Path | None = None
    #: set by the collector once the reports are written: the run's exit code
    exit_code: int | None = None
    #: set by the collector when the run did not complete or its reports could not be
    #: written: the reason, or the path and the cause
    failure: str | None = None
    #: `acpcheck run` prints ``failure`` itself (on stderr); under plain pytest the collector does
    command_line: bool = False


def prepare_run(
    plan_path: str,
    profile: str = "preinstall",
    waivers: str | None = None,
    out: str | None = None,
    run_id: str | None = None,
    select: list[str] | None = None,
    facts: str | None = None,
    force: bool = False,
    alluredir: str | None = None,
    known_checks: Iterable[str] | None = None,
) -> RunInputs:
    """Read, validate and check everything a run needs, in this order, before any
    check runs: plan, profile and waivers (every problem at once), ``--check``
    selectors, the replayed evidence or (for a run that connects) the plan's secret
    references, ``--alluredir``, and last the report directory, which is locked for
    the run. InputError (exit 4) on the first stage with problems.

    ``known_checks``: every check the run can have, when the caller knows them
    (``acpcheck run``: the catalogue), so that an override naming none is refused
    here with the other problems; otherwise the plugin refuses it after collection.
    """
    problems: list[Problem] = []
    loaded: dict[str, Any] = {}

    def load_run_profile(reference: str) -> Profile:
        return load_profile(reference, known_checks=known_checks)

    for name, loader, value in (
        ("plan", load_plan, plan_path),
        ("profile", load_run_profile, profile),
        ("waivers", load_waivers, waivers),
    ):
        try:
            loaded[name] = loader(value)
        except InputError as error:
            problems.extend(error.problems)
    selectors = [s.strip() for s in ",".join(select or []).split(",") if s.strip()]
    problems.extend(selector_problems(selectors))
    if problems:
        raise InputError(problems)
    plan: ClusterPlan = loaded["plan"]
    needed = sources_needed(plan, loaded["profile"], selectors)
    evidence = None
    if facts is not None:
        evidence = Evidence(plan)
        evidence.replay(needed, Path(facts))
    elif needed:
        problems = secret_reference_problems(plan)
        if any(entry.name == "cluster" for entry in needed):
            from acpcheck.transport.kube import kubeconfig_problems

            # a kubeconfig (or a file it names) that is no file, too big, not YAML or
            # missing a field is the user's to fix: exit 4 now, not an ERROR per check
            problems += kubeconfig_problems(plan)
        if problems:
            raise InputError(problems)
    if alluredir:
        usable(Path(alluredir), "--alluredir")
    run_id = run_id or new_run_id()
    claimed = OutDir.claim(
        Path(out or Path("reports/out") / run_id), run_id, force, keep=[Path(facts)] if facts else []
    )
    return RunInputs(
        plan,
        plan_path,
        loaded["profile"],
        loaded["waivers"],
        run_id,
        claimed,
        selectors,
        evidence,
        Path(facts) if facts else None,
    )


def sources_needed(plan: ClusterPlan, profile: Profile, select: list[str]) -> list[SourceEntry]:
    """The sources that the selected, applicable first-party checks read (a plan-only run: none)."""
    from acpcheck.catalog import load_catalog

    return sources_for(
        meta.needs
        for meta in load_catalog().values()
        if chosen_by(profile, select, meta) and not_applicable(meta, plan) is None
    )


def chosen_by(profile: Profile, select: list[str], meta: CheckMeta) -> bool:
    """Selected by the profile and by every --acp-select (when any is given)."""
    return profile.selects(meta) and (not select or any(matches_selector(s, meta) for s in select))


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
    #: saved evidence to load instead of connecting (--acp-facts, or the xdist controller's)
    replay_dir: Path | None = None
    #: this process's evidence, gathered or replayed source by source
    evidence: Evidence = field(default=None)  # type: ignore[assignment]
    #: evidence being gathered in the background while pytest collects
    pending: Future[None] | None = None
    #: the controller's prepared input: its locked report directory, and where the exit code goes
    inputs: RunInputs | None = None

    def __post_init__(self) -> None:
        self._reasons: dict[str, str | None] = {}
        if self.evidence is None:
            self.evidence = Evidence(self.plan)
        self.policy = GradingPolicy(self.plan, self.profile, self.waivers)

    def chooses(self, meta: CheckMeta) -> bool:
        return chosen_by(self.profile, self.select, meta)

    def not_applicable(self, meta: CheckMeta) -> str | None:
        """Why ``meta`` does not apply to this run's plan: decided once per check, not per item."""
        if meta.id not in self._reasons:
            self._reasons[meta.id] = not_applicable(meta, self.plan)
        return self._reasons[meta.id]

    @property
    def evidence_dir(self) -> Path:
        return self.out_dir / "facts"


SETTINGS = pytest.StashKey[Settings]()
META = pytest.StashKey[CheckMeta]()
TARGET = pytest.StashKey[str]()


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
    group.addoption("--acp-run-id", metavar="ID", help=None)
    group.addoption(
        "--acp-force", action="store_true", help="write reports into a --acp-out directory that holds other files"
    )


def settings_of(config: pytest.Config) -> Settings | None:
    return config.stash.get(SETTINGS, None)


def _bad_input(error: InputError) -> pytest.UsageError:
    return pytest.UsageError(f"acpcheck: bad input\n{error}")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "acpcheck(id): an acpcheck check (added by the plugin)")
    if "xdist_group" not in (line.split("(")[0].split(":")[0] for line in config.getini("markers")):
        config.addinivalue_line("markers", "xdist_group(name): keep items of one group on one xdist worker")
    plan_path = config.getoption("acp_plan")
    if not plan_path:
        return
    workerinput = getattr(config, "workerinput", None)
    settings = (
        _worker_settings(config, workerinput) if workerinput is not None else _controller_settings(config, plan_path)
    )
    config.stash[SETTINGS] = settings
    needed = _sources_needed(settings)
    if workerinput is not None and settings.replay_dir is not None:
        try:  # what the controller gathered or checked; read again only if damaged since
            settings.evidence.replay(needed, settings.replay_dir)
        except InputError as error:
            raise _bad_input(error) from None
    # Check packs name their functions check_* and their files check_*.py; the
    # first-party pack's files are collected by path (pytest_collect_file).
    config.addinivalue_line("python_functions", "check_*")
    config.addinivalue_line("python_files", "check_*.py")
    if config.getoption("allure_report_dir", None):
        from acpcheck.report import allure

        allure.register(
            config, str(settings.profile.fail_on), settings.plan.spec.acp.version
        )  # titles and statuses, in every process
    if workerinput is None and config.getoption("numprocesses", None):
        # Under xdist this process collects nothing: the checks it knows (first-party
        # and imported packs) are all the run has to name an override.
        _refuse_unknown_overrides(settings)
    if workerinput is None:
        from acpcheck.report.collector import ResultCollector

        config.pluginmanager.register(
            ResultCollector(settings, config.getoption("allure_report_dir", None)), "acpcheck-collector"
        )
        if not config.option.collectonly and needed and settings.replay_dir is None:
            if config.getoption("numprocesses", None):
                # xdist workers must not each connect to every node: gather here, once,
                # and hand the workers the saved directory.
                _ensure_evidence(settings, needed)
                settings.replay_dir = settings.evidence_dir
            else:
                # Waiting on the nodes overlaps with pytest's collection.
                executor = ThreadPoolExecutor(1, thread_name_prefix="acpcheck-evidence")
                settings.pending = executor.submit(_gather, settings, needed)
                executor.shutdown(wait=False)


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
            raise _bad_input(error) from None
    settings = Settings(
        inputs.plan,
        inputs.plan_path,
        inputs.profile,
        inputs.waivers,
        inputs.out.path,
        inputs.run_id,
        inputs.select,
        utc_now(),
        inputs.replay_dir,
        evidence=inputs.evidence or Evidence(inputs.plan),
        inputs=inputs,
    )
    return settings


def _worker_settings(config: pytest.Config, workerinput: dict[str, Any]) -> Settings:
    """An xdist worker's settings, from what the controller read (no input file is read again)."""
    from acpcheck.matrix import known_acp_versions
    from acpcheck.yamlsource import parse_yaml

    given = workerinput["acp_inputs"]
    plan = plan_from_document(parse_yaml(given["plan_text"], given["plan_path"]), known_acp_versions())
    profile = Profile(
        **{
            **given["profile"],
            "fail_on": Severity.parse(given["profile"]["fail_on"]),
            "overrides": {k: Severity.parse(v) for k, v in given["profile"]["overrides"].items()},
        }
    )
    import datetime as dt

    waivers = Waivers([Waiver.model_validate(w) for w in given["waivers"]], dt.date.fromisoformat(given["today"]))
    replay = workerinput.get("acp_evidence_dir")
    return Settings(
        plan,
        given["plan_path"],
        profile,
        waivers,
        Path(given["out"]),
        workerinput["acp_run_id"],
        given["select"],
        utc_now(),
        Path(replay) if replay else None,
    )


def _inputs_for_workers(settings: Settings) -> dict[str, Any]:
    profile = settings.profile
    source = settings.plan._source
    return {
        "plan_path": settings.plan_path,
        "plan_text": source.text if source is not None and source.text is not None else "",
        "profile": {
            "name": profile.name,
            "description": profile.description,
            "include": list(profile.include),
            "exclude": list(profile.exclude),
            "fail_on": str(profile.fail_on),
            "overrides": {k: str(v) for k, v in profile.overrides.items()},
            "params": dict(profile.params),
            "source": profile.source,
        },
        "waivers": [w.as_dict() for w in settings.waivers.all],
        "today": settings.waivers.today.isoformat(),
        "out": str(settings.out_dir),
        "select": list(settings.select),
    }


def _sources_needed(settings: Settings) -> list[SourceEntry]:
    """The sources that the selected, applicable first-party checks read (a plan-only run: none)."""
    return sources_needed(settings.plan, settings.profile, settings.select)


def _gather(settings: Settings, entries: list[SourceEntry]) -> None:
    if settings.inputs is not None:
        settings.inputs.out.adopt(settings.evidence_dir.name)
    settings.evidence.gather(entries, save_to=settings.evidence_dir, progress=ProgressLine())
    if not gc.isenabled():
        # `acpcheck run` turns the cyclic collector off; the closed connections'
        # paramiko objects are cycles (about 130 objects each), freed now, not at exit.
        gc.collect()


def _ensure_evidence(settings: Settings, entries: list[SourceEntry]) -> None:
    """Make this process's evidence hold ``entries``: wait for the background gather,
    then replay or gather what is still missing (a check pack outside the catalogue)."""
    if settings.pending is not None:
        pending, settings.pending = settings.pending, None
        pending.result()
    missing = [entry for entry in entries if not settings.evidence.has(entry.name)]
    if not missing:
        return
    if settings.replay_dir is not None:
        settings.evidence.replay(missing, settings.replay_dir)
    else:
        _gather(settings, missing)


def pytest_unconfigure(config: pytest.Config) -> None:
    settings = settings_of(config)
    if settings is not None:
        settings.evidence.close()  # a gather interrupted by Ctrl-C drops its connections
        if settings.inputs is not None:
            settings.inputs.out.release()


@pytest.hookimpl(optionalhook=True)  # an xdist hook: absent without xdist
def pytest_configure_node(node: Any) -> None:
    """Controller side: give every worker the run id and the directory of the evidence gathered here."""
    settings = settings_of(node.config)
    if settings is not None:
        node.workerinput["acp_run_id"] = settings.run_id
        node.workerinput["acp_inputs"] = _inputs_for_workers(settings)
        if settings.replay_dir is not None:
            node.workerinput["acp_evidence_dir"] = str(settings.replay_dir)


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


#: The check parameters a run provides itself: the plan, the profile's params and
#: the evidence of every registered source.
PROVIDED = frozenset({"plan", "params"} | {parameter for entry in REGISTRY.values() for parameter in entry.provides})
NODE_PARAM = pytest.StashKey["Node | None"]()


class CheckItem(pytest.Function):
    """One check on one target, its arguments taken straight from the run's evidence.

    pytest would resolve each argument of each item through its fixture machinery
    (a request, a fixture definition and a cache per argument): at 1,000 nodes,
    31,000 items, that alone was a fifth of the run. A check whose parameters are
    all provided by the run (``PROVIDED``) gets these items instead; one that asks
    for anything else (a fixture of a check pack's conftest.py) is collected the
    usual way, through the fixtures below. Names, markers, ``-k``, ``-m``, ``-n``
    and JUnit are the same either way: ``check_name[node]`` per node.
    """

    #: (file, 0-based line) of the check function, found once per check by the collector
    check_location: tuple[Path, int]

    def reportinfo(self) -> tuple[Path, int, str]:
        # pytest's looks the function's file and line up again for every item.
        return (*self.check_location, self.name)

    def arguments(self, settings: Settings) -> dict[str, Any]:
        """The check's arguments; a TargetUnavailable in place of a target's missing evidence."""
        meta = self.stash[META]
        values: dict[str, Any] = {}
        for parameter in meta.needs:
            values[parameter] = _provide(settings, parameter, self.stash.get(NODE_PARAM, None))
        return values


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> list[pytest.Item] | None:
    """The items of a check: none for a check the profile or --acp-select leaves out
    (at 1,000 nodes, items made only to be deselected would cost more than the
    checks), one per node for a node check, else one."""
    meta: CheckMeta | None = getattr(obj, "__acpcheck__", None)
    settings = settings_of(collector.config)
    if meta is None or settings is None:
        return None
    if not settings.chooses(meta):
        return []
    if not meta.needs <= PROVIDED or not isinstance(collector, pytest.Module):
        return None  # pytest's own items and fixtures (pytest_generate_tests parametrises them)
    info = collector.session._fixturemanager.getfixtureinfo(
        node=collector, func=None, cls=None
    )  # autouse fixtures only
    code = inspect.unwrap(obj).__code__  # type: ignore[arg-type]
    location = (Path(code.co_filename), code.co_firstlineno - 1)

    def item(suffix: str, node: Node | None = None, *marks: pytest.MarkDecorator) -> CheckItem:
        # The full name makes the node id on every pytest; originalname after, as
        # pytest >= 9.2 would build the id from it and a callspec, which these items have not.
        made = CheckItem.from_parent(collector, name=name + suffix, callobj=obj, fixtureinfo=info)
        made.originalname = name
        made.check_location = location
        made.stash[NODE_PARAM] = node
        for mark in marks:
            made.add_marker(mark)
        return made

    if not _per_node(meta, meta.needs):
        return [item("")]
    targets = _node_targets(meta, settings)
    if isinstance(targets, str):
        return [item("[not-applicable]", None, pytest.mark.skip(reason=targets))]
    return [item(f"[{node.name}]", node, pytest.mark.xdist_group(node.name)) for node in targets]


def _per_node(meta: CheckMeta, parameters: Iterable[str]) -> bool:
    """A node check with one item per node (not a cross-node check, which takes ``nodes``)."""
    return meta.scope is Scope.NODE and "node" in parameters


def _node_targets(meta: CheckMeta, settings: Settings) -> list[Node] | str:
    """The nodes a node check has an item for, or why it has none (one SKIP, target
    ``node:*``, that says why: not one per node, nor pytest's "got empty parameter set")."""
    nodes = [n for n in settings.plan.spec.nodes if n.role in meta.roles]
    return settings.not_applicable(meta) or (
        nodes if nodes else f"not applicable: the plan lists no {'/'.join(sorted(meta.roles))} nodes"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Per-node parametrisation of a node check collected the usual way (see CheckItem)."""
    meta: CheckMeta | None = getattr(metafunc.function, "__acpcheck__", None)
    settings = settings_of(metafunc.config)
    if meta is None or settings is None or not _per_node(meta, metafunc.fixturenames):
        return
    targets = _node_targets(meta, settings)
    if isinstance(targets, str):
        nodes = [pytest.param(None, id="not-applicable", marks=pytest.mark.skip(reason=targets))]
    else:
        nodes = [pytest.param(n, id=n.name, marks=pytest.mark.xdist_group(n.name)) for n in targets]
    metafunc.parametrize("node", nodes, indirect=True)


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


def _provide(settings: Settings, parameter: str, param: Any) -> Any:
    """A check parameter's value: the plan, the params, or evidence (gathered or replayed
    first if need be). A target without evidence gives its TargetUnavailable, which
    grading makes ERROR when the body would run (pytest_pyfunc_call): raised, pytest
    would format a traceback for every check of an unreachable node."""
    if parameter == "plan":
        return settings.plan
    if parameter == "params":
        return settings.profile.params
    entry = source_providing(parameter)
    assert entry is not None, parameter
    _ensure_evidence(settings, [entry])
    try:
        return settings.evidence.provide(parameter, param)
    except TargetUnavailable as missing:
        return missing


def _evidence_fixture(parameter: str, doc: str) -> Callable[..., Any]:
    """The fixture that hands check parameter ``parameter`` its evidence (checks collected the usual way)."""

    def provide(request: pytest.FixtureRequest) -> Any:
        value = _provide(_require(request), parameter, getattr(request, "param", None))
        if isinstance(value, TargetUnavailable) and META not in request.node.stash:
            raise value  # not a check: a plain test using the fixture
        return value

    provide.__doc__ = doc
    provide.__name__ = parameter
    return pytest.fixture(name=parameter)(provide)


# One fixture per parameter a registered source provides (node, nodes, …), so a
# new source needs no change here. pytest finds fixtures among a plugin's globals.
globals().update(
    {
        f"_evidence_fixture_{parameter}": _evidence_fixture(parameter, doc)
        for entry in REGISTRY.values()
        for parameter, doc in entry.provides.items()
    }
)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Gather before the first check runs (not inside it), so progress reads cleanly."""
    settings = settings_of(session.config)
    if settings is None or session.config.option.collectonly:
        return
    needs = [
        item.stash[META].needs for item in session.items if META in item.stash and not item.get_closest_marker("skip")
    ]
    entries = sources_for(needs)
    if entries:
        _ensure_evidence(settings, entries)


# -- selection, applicability, labels -------------------------------------------


def _target(item: pytest.Item, meta: CheckMeta, settings: Settings) -> str:
    if isinstance(item, CheckItem):
        node = item.stash[NODE_PARAM]
    else:
        callspec = getattr(item, "callspec", None)
        node = callspec.params.get("node") if callspec else None
    return target_of(meta, settings.plan, {"node": node} if node is not None else {})


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    settings = settings_of(config)
    if settings is None:
        return
    allure = bool(config.getoption("allure_report_dir", None))
    for item in items:
        meta: CheckMeta | None = getattr(getattr(item, "function", None), "__acpcheck__", None)
        if meta is None:
            continue
        item.stash[META] = meta
        item.stash[TARGET] = _target(item, meta, settings)
        item.add_marker(pytest.mark.acpcheck(meta.id))
        reason = settings.not_applicable(meta)
        if reason and not _per_node(meta, meta.needs):  # a node check's SKIP was made with its items
            item.add_marker(pytest.mark.skip(reason=reason))
        if allure:
            _add_allure_labels(item, meta, settings)
    if getattr(config, "workerinput", None) is None:
        _refuse_unknown_overrides(settings)  # now every check pack of the run is imported
    # Stable order: by check id, then target, whatever the file layout.
    items.sort(key=lambda i: (i.stash[META].id, i.stash[TARGET]) if META in i.stash else ("", i.nodeid))


def _refuse_unknown_overrides(settings: Settings) -> None:
    problems = unknown_override_problems(settings.profile)
    if problems:
        raise _bad_input(InputError(problems))


def _add_allure_labels(item: pytest.Item, meta: CheckMeta, settings: Settings) -> None:
    """Labels, links and description that allure-pytest reads (acpcheck.report.allure)."""
    from acpcheck.report.allure import marks

    severity = str(settings.profile.severity_of(meta))
    for mark in marks(
        meta.id, meta.title, meta.area, item.stash[TARGET], severity, meta.rationale, meta.remediation, list(meta.refs)
    ):
        item.add_marker(mark)


# -- grading -------------------------------------------------------------------

ENDING = pytest.StashKey[BaseException]()
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
    if isinstance(pyfuncitem, CheckItem):
        arguments = pyfuncitem.arguments(pyfuncitem.config.stash[SETTINGS])
    else:
        arguments = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
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
    result = grade(meta, item.stash[TARGET], ending, settings.policy, phase=report.when, duration=report.duration)
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
