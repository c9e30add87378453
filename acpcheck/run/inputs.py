"""A run's input: read, validated and locked once, before any check runs or connects.

``acpcheck run`` calls ``prepare_run`` itself (bad input is exit 4 with nothing
started) and hands the result to pytest; under plain pytest the plugin calls it
from pytest_configure. Either way the same function reads the same files.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from acpcheck.model.fleet import Fleet
    from acpcheck.sources.sshhosts import SshHostInventory

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
    #: the fleet under assessment (``--fleet``); ``plan`` is then its global member's (else its first)
    fleet: Fleet | None = None
    #: a fleet's evidence replayed from --facts, per member (checked here: exit 4 when damaged)
    fleet_evidence: dict[str, Evidence] | None = None
    #: hosted control planes: the management cluster's SSH hosts, added to ``plan`` as node targets
    #: (``discover_ssh_hosts``); sent to xdist workers so that they collect the same items
    ssh_hosts: SshHostInventory | None = None


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
    fleet: str | None = None,
) -> RunInputs:
    """Read, validate and check everything a run needs, in this order, before any
    check runs: plan, profile and waivers (every problem at once), ``--check``
    selectors, the replayed evidence or (for a run that connects) the plan's secret
    references, ``--alluredir``, and last the report directory, which is locked for
    the run. InputError (exit 4) on the first stage with problems.

    ``known_checks``: every check the run can have, when the caller knows them
    (``acpcheck run``: the catalogue), so that an override naming none is refused
    here with the other problems; otherwise the plugin refuses it after collection.

    ``fleet``: a fleet file instead of a plan (``plan_path`` is then ignored): every
    member's plan, kubeconfig and secret references are checked the same way, and the
    workload clusters the global cluster lists are added (``prepare_fleet``).
    """
    problems: list[Problem] = []
    loaded: dict[str, Any] = {}

    def load_run_profile(reference: str) -> Profile:
        return load_profile(reference, known_checks=known_checks)

    if fleet is not None:
        from acpcheck.model.fleet import load_fleet

        plan_path = fleet
    stages: tuple[tuple[str, Callable[[], Any]], ...] = (
        ("plan", lambda: load_fleet(plan_path) if fleet is not None else load_plan(plan_path)),
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
    fleet_run: Fleet | None = None
    fleet_evidence: dict[str, Evidence] | None = None
    ssh_hosts: SshHostInventory | None = None
    if fleet is not None:
        fleet_run, fleet_evidence = prepare_fleet(loaded["plan"], loaded["profile"], selectors, facts)
        first = fleet_run.global_member or fleet_run.members[0]
        plan: ClusterPlan = first.plan
        evidence = None
    else:
        plan = loaded["plan"]
        needed = sources_needed(plan, loaded["profile"], selectors)
        evidence = None
        if facts is None:
            problems = connection_problems(plan, needed)
            if problems:
                raise InputError(problems)
        plan, ssh_hosts = discover_ssh_hosts(plan, needed, facts)
        if facts is not None:
            evidence = Evidence(plan)
            evidence.replay(needed, Path(facts))
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
        fleet=fleet_run,
        fleet_evidence=fleet_evidence,
        ssh_hosts=ssh_hosts if fleet is None else None,
    )


def connection_problems(plan: ClusterPlan, needed: list[SourceEntry]) -> list[Problem]:
    """What stops a run that connects from reaching ``plan``'s machines and cluster:
    secret references that resolve to nothing, a kubeconfig that cannot be used."""
    from acpcheck.transport.kube import kubeconfig_given, kubeconfig_problems

    problems = secret_reference_problems(plan) if needed else []
    if any(entry.name == "cluster" for entry in needed) or kubeconfig_given():
        # a kubeconfig (or a file it names) that is no file, too big, not YAML or
        # missing a field, or a context it does not have, is the user's to fix: exit 4
        # now, not an ERROR per check; one named by --kubeconfig or --context whatever
        # the run reads with it (the live load-balancer checks only ask whether it is given)
        problems += kubeconfig_problems(plan)
    return problems


def prepare_fleet(
    fleet: Fleet, profile: Profile, select: list[str], facts: str | None
) -> tuple[Fleet, dict[str, Evidence] | None]:
    """A fleet ready to run, and its members' replayed evidence (``--facts``: one
    directory per member, exit 4 when damaged). Every member that connects is checked
    like a plan first (exit 4 for all their problems at once). Then the workload
    clusters that the global cluster lists and the fleet file does not are added as
    members (``discover: true``; read from global's cluster registry now, on this
    machine, or from its replayed evidence, so that every worker runs the same
    members). A discovered member acpcheck has no way into stays, as ERROR with the reason."""
    from acpcheck.sources.cluster import PLATFORM_CLUSTERS, gather_cluster

    problems: list[Problem] = []
    if facts is None:
        for member in fleet.members:
            if member.unreachable is None:
                problems += connection_problems(member.plan, sources_needed(member.plan, profile, select))
    if problems:
        raise InputError(problems)
    replayed: dict[str, Evidence] | None = {} if facts is not None else None

    def replay(member_plan: ClusterPlan) -> Evidence:
        evidence = Evidence(member_plan)
        assert facts is not None
        evidence.replay(sources_needed(member_plan, profile, select), Path(facts) / member_plan.metadata.name)
        return evidence

    global_member = fleet.global_member
    if fleet.spec.discover and global_member is not None:
        if replayed is not None:
            replayed[global_member.name] = replay(global_member.plan)
            found = replayed[global_member.name]
            listed = found.raw("cluster") if found.has("cluster") else None
        else:
            listed = gather_cluster(global_member.plan, reads=(PLATFORM_CLUSTERS,))
        read = listed.reads.get(PLATFORM_CLUSTERS.key) if listed is not None and listed.failure is None else None
        if read is not None and read.status == "ok":
            fleet = fleet.with_discovered(read.items or [])
        # else: the global cluster could not list its clusters; its own checks say why (ERROR)
    if replayed is not None:
        for member in fleet.members:
            if member.name not in replayed:
                replayed[member.name] = replay(member.plan)
    return fleet, replayed


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


# -- hosted control planes: SSH hosts as node targets (ACP-HCP-030..039) ----------


def discover_ssh_hosts(
    plan: ClusterPlan, needed: list[SourceEntry], facts: str | None
) -> tuple[ClusterPlan, SshHostInventory | None]:
    """A hosted-control-plane plan whose selected checks read ``ssh_hosts`` or node facts: the
    management cluster's SSH hosts, read now (or replayed from ``--facts``), and the plan with each
    host it does not list added as a worker node, so that the node checks have an item per host (as
    a fleet's discovered members get theirs). Any other run: the plan as it is, and None. (A run
    that selects node checks only does not save the hosts: its ``--facts`` replay judges the plan's
    own nodes.)"""
    from acpcheck.sources import REGISTRY
    from acpcheck.sources.sshhosts import discovers_hosts, take_inventory, with_ssh_hosts

    hosted = plan.spec.cluster.type == "hosted-control-plane"
    if not hosted or not any(entry.name in ("sshhosts", "nodes") for entry in needed):
        return plan, None
    if facts is not None:
        replayed = Evidence(plan)
        replayed.replay([REGISTRY["sshhosts"]], Path(facts))  # missing: an inventory that failed, no host
        inventory = replayed.raw("sshhosts")
    elif discovers_hosts(plan):
        inventory = take_inventory(plan)
    else:
        return plan, None
    return with_ssh_hosts(plan, inventory), inventory
