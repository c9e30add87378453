"""A run's input: read, validated and locked once, before any check runs or connects.

``acpcheck run`` calls ``prepare_run`` itself (bad input is exit 4 with nothing
started) and hands the result to pytest; under plain pytest the plugin calls it
from pytest_configure. Either way the same function reads the same files.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import acpcheck.checks
from acpcheck.errors import InputError, Problem
from acpcheck.grading import not_applicable
from acpcheck.model.check import CheckMeta
from acpcheck.model.plan import ClusterPlan, load_plan, secret_reference_problems
from acpcheck.model.profile import Profile, load_profile, matches_selector, selector_problems
from acpcheck.model.result import new_run_id
from acpcheck.model.waivers import Waivers, load_waivers
from acpcheck.report.outdir import OutDir, usable
from acpcheck.run import DEFAULT_PROFILE
from acpcheck.sources import SourceEntry, sources_for
from acpcheck.sources.evidence import Evidence

#: Where the first-party checks are: the top-level checks/ of a checkout (editable
#: install) or acpcheck/checks/ inside a wheel. Either way their import name is
#: ``acpcheck.checks.<module>``.
CHECKS_DIR = Path(acpcheck.checks.__file__).resolve().parent
CHECKS_PACKAGE = acpcheck.checks.__name__


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
    profile: str = DEFAULT_PROFILE,
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

    stages: tuple[tuple[str, Callable[[], Any]], ...] = (
        ("plan", lambda: load_plan(plan_path)),
        ("profile", lambda: load_run_profile(profile)),
        ("waivers", lambda: load_waivers(waivers)),
    )
    for name, load in stages:
        try:
            loaded[name] = load()
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
    else:
        from acpcheck.transport.kube import kubeconfig_given, kubeconfig_problems

        problems = secret_reference_problems(plan) if needed else []
        if any(entry.name == "cluster" for entry in needed) or kubeconfig_given():
            # a kubeconfig (or a file it names) that is no file, too big, not YAML or
            # missing a field, or a context it does not have, is the user's to fix: exit 4
            # now, not an ERROR per check; one named by --kubeconfig or --context whatever
            # the run reads with it (the live load-balancer checks only ask whether it is given)
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
