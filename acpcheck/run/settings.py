"""What a run is while it runs: its settings and evidence in this process (``Settings``),
and the fixed description of it that the report collector is given (``RunDescription``).
"""

from __future__ import annotations

import gc
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from acpcheck.grading import GradingPolicy, not_applicable
from acpcheck.model.check import CheckMeta, Scope
from acpcheck.model.plan import ClusterPlan
from acpcheck.model.profile import Profile
from acpcheck.model.result import utc_now
from acpcheck.model.waivers import Waivers
from acpcheck.report.outdir import OutDir
from acpcheck.run.inputs import RunInputs, chosen_by, sources_needed
from acpcheck.sources import SourceEntry, TargetUnavailable, source_providing
from acpcheck.sources.evidence import Evidence, ProgressLine

if TYPE_CHECKING:
    from acpcheck.model.fleet import Fleet, FleetMember


@dataclass(eq=False)
class ClusterRun:
    """One cluster of a run: the plan's (a single-plan run has one), or a fleet member.
    Its plan, how its checks are graded, and its evidence in this process."""

    plan: ClusterPlan
    policy: GradingPolicy
    evidence: Evidence
    #: saved evidence to load instead of connecting (--facts, or what the xdist controller gathered)
    replay_dir: Path | None = None
    #: where evidence gathered in this process is saved (None: kept in memory only)
    save_dir: Path | None = None
    #: why acpcheck has no way into this cluster (a fleet member discovered on global
    #: without a kubeconfig): every check that needs its evidence is ERROR with this reason
    unreachable: str | None = None
    #: evidence being gathered in the background while pytest collects
    pending: Future[None] | None = None
    #: a progress line on stderr while gathering (None: quiet, as on an xdist worker)
    progress: ProgressLine | None = None

    def __post_init__(self) -> None:
        self._reasons: dict[str, str | None] = {}
        self._judged_as = self.plan
        if self.unreachable is not None:
            # A fleet member acpcheck has no way into is still a live cluster: its live checks
            # apply (and are ERROR with the reason, ``provide``), they are not SKIPped for want
            # of a kubeconfig, which would leave the cluster out in silence.
            spec = self.plan.spec.model_copy(update={"kubeconfig": f"<{self.unreachable}>"})
            self._judged_as = self.plan.model_copy(update={"spec": spec})

    @property
    def name(self) -> str:
        return self.plan.metadata.name

    def not_applicable(self, meta: CheckMeta) -> str | None:
        """Why ``meta`` does not apply to this cluster's plan: decided once per check, not per item."""
        if meta.id not in self._reasons:
            self._reasons[meta.id] = not_applicable(meta, self._judged_as)
        return self._reasons[meta.id]

    def gather_in_background(self, entries: list[SourceEntry]) -> None:
        """Start gathering ``entries`` now, so that waiting on the nodes overlaps with
        pytest's collection; ``ensure_evidence`` waits for it."""
        executor = ThreadPoolExecutor(1, thread_name_prefix="acpcheck-evidence")
        self.pending = executor.submit(self.gather, entries)
        executor.shutdown(wait=False)

    def gather(self, entries: list[SourceEntry]) -> None:
        self.evidence.gather(entries, save_to=self.save_dir, progress=self.progress)
        if not gc.isenabled():
            # `acpcheck run` turns the cyclic collector off; the closed connections'
            # paramiko objects are cycles (about 130 objects each), freed now, not at exit.
            gc.collect()

    def ensure_evidence(self, entries: list[SourceEntry]) -> None:
        """Make this cluster's evidence hold ``entries``: wait for the background gather,
        then replay or gather what is still missing (a check pack outside the catalogue)."""
        if self.pending is not None:
            pending, self.pending = self.pending, None
            pending.result()
        missing = [entry for entry in entries if not self.evidence.has(entry.name)]
        if not missing:
            return
        if self.replay_dir is not None:
            self.evidence.replay(missing, self.replay_dir)
        else:
            self.gather(missing)

    def provide(self, entry: SourceEntry, parameter: str, node: Any) -> Any:
        """Evidence for one check parameter (gathered or replayed first if need be); a
        target without evidence gives its TargetUnavailable (see ``Settings.provide``)."""
        if self.unreachable is not None:
            return TargetUnavailable(f"cluster:{self.name}", "unreachable", self.unreachable)
        self.ensure_evidence([entry])
        try:
            return self.evidence.provide(parameter, node)
        except TargetUnavailable as missing:
            return missing


@dataclass
class Settings:
    """Everything a run was configured with, and its evidence in this process: built
    once per process when pytest is configured (on the controller from ``RunInputs``,
    on an xdist worker from what the controller sent: ``acpcheck.run.workers``).

    A run judges one cluster (``--plan``) or a fleet (``--fleet``: every member a
    ``ClusterRun`` of its own, in ``clusters``). ``plan`` is the single plan, or the
    fleet's global member's (else its first)."""

    plan: ClusterPlan
    plan_path: str
    profile: Profile
    waivers: Waivers
    out_dir: Path
    run_id: str
    select: list[str] = field(default_factory=list)
    started: str = ""
    #: saved evidence to load instead of connecting (--acp-facts, or the xdist controller's);
    #: a fleet's holds one directory per member (``DIR/<cluster>/<source>/…``)
    replay_dir: Path | None = None
    #: the single plan's evidence in this process, gathered or replayed source by source
    evidence: Evidence = field(default=None)  # type: ignore[assignment]
    #: the controller's prepared input: its locked report directory, and where the exit code goes
    inputs: RunInputs | None = None
    #: the fleet under assessment (``acpcheck run --fleet``), else None
    fleet: Fleet | None = None
    #: every cluster of the run, by name, in the fleet's order (one for a single plan)
    clusters: dict[str, ClusterRun] = field(default_factory=dict)
    #: an xdist worker's own directory for the fleet members' evidence it gathers (acpcheck.run.fleetrun)
    scratch: Path | None = None

    def __post_init__(self) -> None:
        if self.evidence is None:
            self.evidence = Evidence(self.plan)
        self.policy = GradingPolicy(self.plan, self.profile, self.waivers)
        if not self.clusters:
            if self.fleet is None:
                self.clusters = {
                    self.plan.metadata.name: ClusterRun(
                        self.plan,
                        self.policy,
                        self.evidence,
                        self.replay_dir,
                        self.evidence_dir,
                        progress=ProgressLine(),
                    )
                }
            else:
                self.clusters = {member.name: self._member_run(member) for member in self.fleet.members}

    def _member_run(self, member: FleetMember) -> ClusterRun:
        """A fleet member's run: its evidence is gathered where its checks run, the first
        time one needs it (``fleet_evidence``), or replayed from ``<replay_dir>/<name>``."""
        return ClusterRun(
            member.plan,
            GradingPolicy(member.plan, self.profile, self.waivers),
            Evidence(member.plan),
            self.replay_dir / member.name if self.replay_dir is not None else None,
            unreachable=member.unreachable,
        )

    @classmethod
    def of(cls, inputs: RunInputs) -> Settings:
        """The controller's settings: the input ``prepare_run`` read, the run starting now."""
        settings = cls(
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
            fleet=inputs.fleet,
        )
        for name, replayed in (inputs.fleet_evidence or {}).items():
            settings.clusters[name].evidence = replayed  # what prepare_run replayed (checked: exit 4 when damaged)
        return settings

    @property
    def single(self) -> ClusterRun:
        """The cluster of a single-plan run."""
        assert self.fleet is None, "a fleet run has several clusters"
        return self.clusters[self.plan.metadata.name]

    def chooses(self, meta: CheckMeta) -> bool:
        return chosen_by(self.profile, self.select, meta)

    def not_applicable(self, meta: CheckMeta, cluster: str | None = None) -> str | None:
        """Why ``meta`` does not apply to ``cluster`` (default: the single plan's): decided once per check."""
        run = self.cluster(cluster)
        if meta.scope is Scope.FLEET:
            if self.fleet is None:
                return "not applicable: a fleet rule (acpcheck run --fleet FILE)"
            judged_on = self.fleet_rules_cluster()
            if run.name != judged_on:
                return f"not applicable: fleet rules are judged on the fleet's global cluster ({judged_on})"
            if self.fleet.global_member is None:
                return "not applicable: the fleet names no global cluster (role: global)"
        return run.not_applicable(meta)

    def fleet_rules_cluster(self) -> str:
        """The member whose items the fleet rules are: the global cluster, else the first member."""
        assert self.fleet is not None
        member = self.fleet.global_member or self.fleet.members[0]
        return member.name

    def cluster(self, name: str | None) -> ClusterRun:
        return self.clusters[name] if name is not None else self.single

    @property
    def evidence_dir(self) -> Path:
        return self.out_dir / "facts"

    def sources_needed(self) -> list[SourceEntry]:
        """The sources that the selected, applicable first-party checks read (a plan-only run: none)."""
        return sources_needed(self.plan, self.profile, self.select)

    # -- evidence: a single plan's gathered once per run on the controller, or replayed;
    #    a fleet member's where its checks run (acpcheck.run.fleetrun) ------------

    def gather_in_background(self, entries: list[SourceEntry]) -> None:
        self._adopt_evidence_dir()
        self.single.gather_in_background(entries)

    def ensure_evidence(self, entries: list[SourceEntry]) -> None:
        self._adopt_evidence_dir()
        self.single.ensure_evidence(entries)

    def _adopt_evidence_dir(self) -> None:
        if self.inputs is not None and self.replay_dir is None:
            self.inputs.out.adopt(self.evidence_dir.name)

    def provide(self, parameter: str, node: Any, cluster: str | None = None) -> Any:
        """A check parameter's value: the plan, the params, the fleet, or evidence (gathered
        or replayed first if need be). A target without evidence gives its TargetUnavailable,
        which grading makes ERROR when the body would run (the plugin's pytest_pyfunc_call):
        raised, pytest would format a traceback for every check of an unreachable node."""
        run = self.cluster(cluster)
        if parameter == "plan":
            return run.plan
        if parameter == "params":
            return self.profile.params
        if parameter == "fleet":
            return self.fleet
        entry = source_providing(parameter)
        assert entry is not None, parameter
        if self.fleet is not None and run.unreachable is None and run.save_dir is None and run.replay_dir is None:
            # A member's first check here: gather every source its checks read, at once
            # (one SSH pool for all of them), as a single plan's run does on the controller.
            self._prepare_member_gathering(run)
            run.ensure_evidence(sources_needed(run.plan, self.profile, self.select))
        return run.provide(entry, parameter, node)

    def _prepare_member_gathering(self, run: ClusterRun) -> None:
        """Where a fleet member's evidence is saved, decided before it is first gathered
        in this process: ``<out>/facts/<member>`` on the controller (no xdist), else this
        worker's own temporary directory, sent back at its end (``acpcheck.run.fleetrun``)."""
        if self.inputs is not None:
            self._adopt_evidence_dir()
            run.save_dir = self.evidence_dir / run.name
            return
        if self.scratch is None:
            self.scratch = Path(tempfile.mkdtemp(prefix=f"acpcheck-{self.run_id}-"))
        run.save_dir = self.scratch / run.name


@dataclass(frozen=True)
class RunDescription:
    """The run as the report collector (``acpcheck.report.collector``) sees it: built once
    on the controller when pytest is configured, and fixed from then on. The collector
    gets this, not ``Settings``, which holds this process's evidence and changes as it runs."""

    run_id: str
    started: str
    plan: ClusterPlan
    plan_path: str
    profile: Profile
    waivers: Waivers
    #: the run's locked report directory, which the reports are written through
    out: OutDir
    #: --alluredir, when the run writes Allure results too
    alluredir: str | None
    #: the prepared input, where the collector hands back the exit code and what went wrong
    #: (``exit_code``, ``failure``) and which says whether `acpcheck run` prints it itself
    hand_back: RunInputs
    #: this process's evidence, read by the collector once the checks have run: where the live evidence came from
    evidence: Evidence
    #: the fleet under assessment, else None
    fleet: Fleet | None = None
    #: every cluster of the run (for a fleet: each member's evidence as the controller has it once the workers are done)
    clusters: dict[str, ClusterRun] = field(default_factory=dict)

    @classmethod
    def of(cls, settings: Settings, hand_back: RunInputs, alluredir: str | None) -> RunDescription:
        return cls(
            settings.run_id,
            settings.started,
            settings.plan,
            settings.plan_path,
            settings.profile,
            settings.waivers,
            hand_back.out,
            alluredir,
            hand_back,
            settings.evidence,
            settings.fleet,
            settings.clusters,
        )
