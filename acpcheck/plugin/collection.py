"""Collection: the first-party check modules, one item per check (per node for a node
check), selection by profile and --acp-select, applicability, markers, keywords and order.

What pytest's own selection sees of a check item (README "Selecting checks"):

- its node id, ``…::check_swap_disabled[cp2]``: a node check's items are
  parametrised by node, so pytest's cache (``--lf``, ``--ff``, ``--nf``, ``--sw``)
  reads their ids back as the ids of the same items;
- ``-k`` keywords: the check id (``ACP-NODE-008``) and the target (``node:cp2``,
  ``plan``, ``cluster:<name>``), besides pytest's own (the item's name);
- markers ``area_<AREA>`` and ``severity_<severity>`` (the profile's severity), for
  ``-m``, registered with the run's other markers.

Every use of pytest's private API by the plugin is here, each marked "private pytest
API" with what it is and why; a pytest upgrade that breaks the plugin breaks it here.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from _pytest import python as pytest_python

from acpcheck.grading import target_of
from acpcheck.model.check import AREAS, CheckMeta, Scope, Severity
from acpcheck.model.plan import Node
from acpcheck.plugin.session import refuse_unknown_overrides
from acpcheck.plugin.stash import CLUSTER, META, NODE_PARAM, TARGET, settings_of
from acpcheck.run.inputs import CHECKS_DIR, CHECKS_PACKAGE
from acpcheck.run.settings import Settings
from acpcheck.sources import REGISTRY, sources_for


class CheckModule(pytest.Module):
    """A first-party check module, imported by its package name.

    pytest would import ``checks/network.py`` of a checkout as ``checks.network``
    (its rootdir-relative name); the catalogue and the other check modules know it
    as ``acpcheck.checks.network``. Importing it under one name means every check
    registers once, whether the run says ``pytest checks/`` or ``--pyargs acpcheck.checks``.
    """

    def _getobj(self) -> Any:
        # private pytest API: Module._getobj, the method that imports the module.
        return importlib.import_module(f"{CHECKS_PACKAGE}.{self.path.stem}")


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    """Collect the first-party checks (plain module names such as network.py)."""
    if settings_of(parent.config) is None:
        return None
    if file_path.suffix == ".py" and file_path.parent.resolve() == CHECKS_DIR and file_path.name != "__init__.py":
        return CheckModule.from_parent(parent, path=file_path)
    return None


#: The check parameters a run provides itself: the plan, the profile's params, the
#: fleet (``acpcheck run --fleet``) and the evidence of every registered source.
PROVIDED = frozenset(
    {"plan", "params", "fleet"} | {parameter for entry in REGISTRY.values() for parameter in entry.provides}
)


class CheckItem(pytest.Function):
    """One check on one target, its arguments taken straight from the run's evidence.

    pytest would resolve each argument of each item through its fixture machinery
    (a request, a fixture definition and a cache per argument): at 1,000 nodes,
    31,000 items, that alone was a fifth of the run. A check whose parameters are
    all provided by the run (``PROVIDED``) gets these items instead; one that asks
    for anything else (a fixture of a check pack's conftest.py) is collected the
    usual way, through the fixtures of ``acpcheck.plugin.evidence``. Names, markers,
    ``-k``, ``-m``, ``-n``, ``--lf`` and JUnit are the same either way: ``check_name[node]``
    per node, parametrised by node as pytest's own items would be.
    """

    #: (file, 0-based line) of the check function, found once per check by the collector
    check_location: tuple[Path, int]

    def reportinfo(self) -> tuple[Path, int, str]:
        # pytest's looks the function's file and line up again for every item.
        return (*self.check_location, self.name)


def check_arguments(item: pytest.Function, settings: Settings) -> dict[str, Any]:
    """A check item's arguments; a TargetUnavailable in place of a target's missing evidence."""
    if isinstance(item, CheckItem):
        node, cluster = item.stash.get(NODE_PARAM, None), item.stash.get(CLUSTER, None)
        return {parameter: settings.provide(parameter, node, cluster) for parameter in item.stash[META].needs}
    # private pytest API: Function._fixtureinfo, the names of the fixtures the function
    # itself takes (funcargs also holds autouse fixtures, which the check does not take).
    return {name: item.funcargs[name] for name in item._fixtureinfo.argnames}


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
        if settings.fleet is not None:
            # Their evidence fixtures know one cluster only.
            reason = "not applicable: checks that take fixtures of their own do not run in a fleet run yet"
            skipped = pytest.Function.from_parent(collector, name=name, callobj=obj)
            skipped.add_marker(pytest.mark.skip(reason=reason))
            return [skipped]
        return None  # pytest's own items and fixtures (pytest_generate_tests parametrises them)
    # private pytest API: Session._fixturemanager.getfixtureinfo, the fixture closure of
    # a function; with func=None, the autouse fixtures only, computed once per module.
    info = collector.session._fixturemanager.getfixtureinfo(node=collector, func=None, cls=None)  # type: ignore[arg-type]  # a Module works here
    code = inspect.unwrap(obj).__code__  # type: ignore[arg-type]
    location = (Path(code.co_filename), code.co_firstlineno - 1)

    def item(
        param: str | None = None, node: Node | None = None, *marks: pytest.MarkDecorator, cluster: str | None = None
    ) -> CheckItem:
        # private pytest API: Function's callobj= and fixtureinfo= arguments (pytest's
        # own collector passes them), so pytest neither looks the function up again
        # nor computes its fixture closure per item; and callspec=, see _parametrised.
        made = CheckItem.from_parent(
            collector,
            name=name if param is None else f"{name}[{param}]",
            originalname=name,
            callspec=None if param is None else _parametrised(param),
            callobj=obj,
            fixtureinfo=info,
        )
        made.check_location = location
        made.stash[NODE_PARAM] = node
        made.stash[CLUSTER] = cluster if cluster is not None else settings.plan.metadata.name
        for mark in marks:
            made.add_marker(mark)
        return made

    if settings.fleet is not None:
        return _fleet_items(meta, settings, item)
    if not _per_node(meta, meta.needs):
        return [item()]
    targets = _node_targets(meta, settings)
    if isinstance(targets, str):
        return [item("not-applicable", None, pytest.mark.skip(reason=targets))]
    return [item(node.name, node, pytest.mark.xdist_group(node.name)) for node in targets]


def _fleet_items(meta: CheckMeta, settings: Settings, item: Callable[..., CheckItem]) -> list[pytest.Item]:
    """A check's items in a fleet run: per member (``check_x[east]``), per member and node
    for a node check (``check_x[east/cp1]``); a fleet rule once, on the global member.
    Every item of a member is in the member's ``xdist_group``: ``--dist loadgroup`` runs
    a member on one worker, which gathers its evidence once (acpcheck.run.fleetrun)."""
    made: list[pytest.Item] = []
    members = [settings.fleet_rules_cluster()] if meta.scope is Scope.FLEET else list(settings.clusters)
    for cluster in members:
        group = pytest.mark.xdist_group(cluster)
        if not _per_node(meta, meta.needs):
            made.append(item(cluster, None, group, cluster=cluster))
            continue
        targets = _node_targets(meta, settings, cluster)
        if isinstance(targets, str):
            made.append(
                item(f"{cluster}/not-applicable", None, group, pytest.mark.skip(reason=targets), cluster=cluster)
            )
        else:
            made += [item(f"{cluster}/{node.name}", node, group, cluster=cluster) for node in targets]
    return made


def _parametrised(param_id: str) -> Any:
    """The callspec of a CheckItem of one node: its id only (the node is in the item's
    stash, not a fixture parameter).

    pytest >= 9.2 builds an item's node id from its original name and its callspec's
    id, and reads the ids that ``--lf``, ``--ff``, ``--nf`` and ``--sw`` keep in its
    cache back the same way (``name[params]``); an item named ``check_x[cp2]`` with no
    callspec would never equal the id read back. Older pytest builds the id from the
    name, which is the same text.
    """
    return _CALLSPEC(_idlist=[param_id])


#: private pytest API: CallSpec (CallSpec2 in older pytest), what Metafunc.parametrize
#: makes for each parameter set; _idlist holds one id per parametrize() call.
_CALLSPEC: Any = getattr(pytest_python, "CallSpec", None) or getattr(pytest_python, "CallSpec2")  # noqa: B009


def _per_node(meta: CheckMeta, parameters: Iterable[str]) -> bool:
    """A node check with one item per node (not a cross-node check, which takes ``nodes``)."""
    return meta.scope is Scope.NODE and "node" in parameters


def _node_targets(meta: CheckMeta, settings: Settings, cluster: str | None = None) -> list[Node] | str:
    """The nodes a node check has an item for, or why it has none (one SKIP, target
    ``node:*``, that says why: not one per node, nor pytest's "got empty parameter set")."""
    nodes = [n for n in settings.cluster(cluster).plan.spec.nodes if n.role in meta.roles]
    return settings.not_applicable(meta, cluster) or (
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


def pytest_collection_finish(session: pytest.Session) -> None:
    """Gather before the first check runs (not inside it), so progress reads cleanly."""
    settings = settings_of(session.config)
    if settings is None or session.config.option.collectonly or settings.fleet is not None:
        return  # a fleet member's evidence is gathered where its checks run, when first needed
    needs = [
        item.stash[META].needs for item in session.items if META in item.stash and not item.get_closest_marker("skip")
    ]
    entries = sources_for(needs)
    if entries:
        settings.ensure_evidence(entries)


# -- selection, applicability, labels -------------------------------------------


def area_marker(area: str) -> str:
    return f"area_{area}"


def severity_marker(severity: Severity) -> str:
    return f"severity_{severity}"


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers the check items get (``--strict-markers`` refuses others)."""
    for area in AREAS:
        config.addinivalue_line("markers", f"{area_marker(area)}: acpcheck check of area {area} (added by the plugin)")
    for severity in Severity:
        config.addinivalue_line(
            "markers",
            f"{severity_marker(severity)}: acpcheck check of severity {severity} in the profile (added by the plugin)",
        )


def _target(item: pytest.Item, meta: CheckMeta, settings: Settings) -> str:
    if isinstance(item, CheckItem):
        node = item.stash[NODE_PARAM]
    else:
        callspec = getattr(item, "callspec", None)
        node = callspec.params.get("node") if callspec else None
    about: dict[str, Any] = {"node": node} if node is not None else {}
    if meta.scope is Scope.FLEET:
        about["fleet"] = settings.fleet
    return target_of(meta, settings.cluster(item.stash.get(CLUSTER, None)).plan, about)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    settings = settings_of(config)
    if settings is None:
        return
    allure = bool(config.getoption("allure_report_dir", None))
    marks_of: dict[str, list[pytest.MarkDecorator]] = {}  # per check, made once for all its items
    for item in items:
        meta: CheckMeta | None = getattr(getattr(item, "function", None), "__acpcheck__", None)
        if meta is None:
            continue
        item.stash[META] = meta
        item.stash[TARGET] = _target(item, meta, settings)
        if meta.id not in marks_of:
            marks_of[meta.id] = _check_marks(meta, settings)
        for mark in marks_of[meta.id]:
            item.add_marker(mark)
        cluster = item.stash.setdefault(CLUSTER, settings.plan.metadata.name)
        item.extra_keyword_matches.update((meta.id, item.stash[TARGET]))  # -k ACP-NODE-008, -k node:cp2
        if settings.fleet is not None:
            item.extra_keyword_matches.add(cluster)  # -k east
        reason = settings.not_applicable(meta, cluster)
        if reason and not _per_node(meta, meta.needs):  # a node check's SKIP was made with its items
            item.add_marker(pytest.mark.skip(reason=reason))
        if allure:
            _add_allure_labels(item, meta, settings)
    if getattr(config, "workerinput", None) is None:
        refuse_unknown_overrides(settings)  # now every check pack of the run is imported
    # Stable order: by cluster (in the fleet's order), check id, then target, whatever the file layout.
    order = {name: index for index, name in enumerate(settings.clusters)}
    items.sort(
        key=lambda i: (
            (order.get(i.stash[CLUSTER], 0), i.stash[META].id, i.stash[TARGET])
            if META in i.stash
            else (-1, "", i.nodeid)
        )
    )


def _check_marks(meta: CheckMeta, settings: Settings) -> list[pytest.MarkDecorator]:
    """The markers of a check's items: ``acpcheck(id)``, ``area_<AREA>`` and
    ``severity_<severity>`` (the run's profile's). The last two take their value as
    argument too: allure-pytest makes a tag of every marker without one, and the Allure
    labels already carry the area and the severity."""
    severity = settings.profile.severity_of(meta)
    return [
        pytest.mark.acpcheck(meta.id),
        getattr(pytest.mark, area_marker(meta.area))(meta.area),
        getattr(pytest.mark, severity_marker(severity))(str(severity)),
    ]


def _add_allure_labels(item: pytest.Item, meta: CheckMeta, settings: Settings) -> None:
    """Labels, links and description that allure-pytest reads (acpcheck.report.allure)."""
    from acpcheck.report.allure import marks

    severity = str(settings.profile.severity_of(meta))
    cluster = item.stash[CLUSTER] if settings.fleet is not None else None  # the top of Allure's Suites tree
    for mark in marks(
        meta.id,
        meta.title,
        meta.area,
        item.stash[TARGET],
        severity,
        meta.rationale,
        meta.remediation,
        list(meta.refs),
        cluster,
    ):
        item.add_marker(mark)
