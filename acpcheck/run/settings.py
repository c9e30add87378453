"""What a run is while it runs: its settings and evidence in this process (``Settings``),
and the fixed description of it that the report collector is given (``RunDescription``).
"""

from __future__ import annotations

import gc
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acpcheck.grading import GradingPolicy, not_applicable
from acpcheck.model.check import CheckMeta
from acpcheck.model.plan import ClusterPlan
from acpcheck.model.profile import Profile
from acpcheck.model.result import utc_now
from acpcheck.model.waivers import Waivers
from acpcheck.report.outdir import OutDir
from acpcheck.run.inputs import RunInputs, chosen_by, sources_needed
from acpcheck.sources import SourceEntry, TargetUnavailable, source_providing
from acpcheck.sources.evidence import Evidence, ProgressLine


@dataclass
class Settings:
    """Everything a run was configured with, and its evidence in this process: built
    once per process when pytest is configured (on the controller from ``RunInputs``,
    on an xdist worker from what the controller sent: ``acpcheck.run.workers``)."""

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

    @classmethod
    def of(cls, inputs: RunInputs) -> Settings:
        """The controller's settings: the input ``prepare_run`` read, the run starting now."""
        return cls(
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

    def sources_needed(self) -> list[SourceEntry]:
        """The sources that the selected, applicable first-party checks read (a plan-only run: none)."""
        return sources_needed(self.plan, self.profile, self.select)

    # -- evidence: gathered once per run on the controller, or replayed ---------

    def gather_in_background(self, entries: list[SourceEntry]) -> None:
        """Start gathering ``entries`` now, so that waiting on the nodes overlaps with
        pytest's collection; ``ensure_evidence`` waits for it."""
        executor = ThreadPoolExecutor(1, thread_name_prefix="acpcheck-evidence")
        self.pending = executor.submit(self.gather, entries)
        executor.shutdown(wait=False)

    def gather(self, entries: list[SourceEntry]) -> None:
        if self.inputs is not None:
            self.inputs.out.adopt(self.evidence_dir.name)
        self.evidence.gather(entries, save_to=self.evidence_dir, progress=ProgressLine())
        if not gc.isenabled():
            # `acpcheck run` turns the cyclic collector off; the closed connections'
            # paramiko objects are cycles (about 130 objects each), freed now, not at exit.
            gc.collect()

    def ensure_evidence(self, entries: list[SourceEntry]) -> None:
        """Make this process's evidence hold ``entries``: wait for the background gather,
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

    def provide(self, parameter: str, node: Any) -> Any:
        """A check parameter's value: the plan, the params, or evidence (gathered or replayed
        first if need be). A target without evidence gives its TargetUnavailable, which
        grading makes ERROR when the body would run (the plugin's pytest_pyfunc_call):
        raised, pytest would format a traceback for every check of an unreachable node."""
        if parameter == "plan":
            return self.plan
        if parameter == "params":
            return self.profile.params
        entry = source_providing(parameter)
        assert entry is not None, parameter
        self.ensure_evidence([entry])
        try:
            return self.evidence.provide(parameter, node)
        except TargetUnavailable as missing:
            return missing


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
        )
