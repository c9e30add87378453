"""Dry-run, apply and rollback: nodes in parallel, each node's steps in order.

    remediate(plan, options, access)  ->  RunReport       (dry-run unless options.apply)
    rollback(journal, access)         ->  RollbackReport

A step is *wanted* on a node when its owning check FAILs or WARNs there, graded by
``acpcheck.grading.evaluate`` on facts gathered now (``--from results.json`` narrows
this to the findings of an earlier assessment, still re-graded now). Its changes are
read from the node's current files. A dry-run stops there and shows them. ``apply``
then performs their actions one by one, each journaled (intent, with what undoes it)
before it changes anything and marked done after; an action that fails undoes its
whole step at once. When a node's steps are done its facts are gathered again (one
probe) and every owning check graded again: fixed, needs reboot, or still failing.

``rollback`` undoes, newest first, every change that was started and is not yet
undone, whether its apply finished, failed, or was killed midway. The journal it gets
was verified whole when it was opened (``Journal.open``), and every target it names is
checked against the plan, before any node is touched.

An apply holds each node's lock (``nodelock``) from before its first step reads the
node until the node is done; rollback holds it while it undoes. A node another
remediation holds is not changed, and its report names the holder.

Nodes are reached through a ``NodeAccess``: the run's SSH pool (``SshAccess``), or
anything else that gives a transport and facts per node (the tests use this machine).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from acpcheck.errors import InputError, Problem
from acpcheck.facts.model import GatherFailure, NodeContext, NodeFacts
from acpcheck.grading import GradingPolicy, evaluate
from acpcheck.model.result import EXIT_ERROR, EXIT_FAIL, EXIT_INTERRUPTED, EXIT_OK, CheckResult, Status
from acpcheck.remediation.actions import (
    BACKUP_ROOT,
    KINDS,
    ActionContext,
    ActionFailed,
    kind_of,
)
from acpcheck.remediation.changes import Changes
from acpcheck.remediation.journal import Journal, TargetJournal, file_name, rollback_command
from acpcheck.remediation.nodefiles import NodeFileError
from acpcheck.remediation.nodelock import NodeLock, NodeLockError, lock_file, release_run
from acpcheck.remediation.refusals import node_refusal, plan_refusal
from acpcheck.remediation.steps import Step
from acpcheck.remediation.view import NodeView
from acpcheck.transport.errors import TransportError

if TYPE_CHECKING:
    from acpcheck.model.check import CheckMeta
    from acpcheck.model.plan import ClusterPlan, Node
    from acpcheck.transport.base import NodeTransport

#: Statuses of the owning check that make a step wanted.
FINDINGS = frozenset({Status.FAIL, Status.WARN})
#: Environment variable for crash tests: the runner kills itself (SIGKILL) at this
#: crash point (points are counted across the run: after each journal record is
#: durable and after each change is made), like a runner killed by the OOM killer.
CRASH_ENV = "ACPCHECK_REMEDIATION_CRASH_AT"
#: Failures of a node or an action that are reported, never raised.
NODE_ERRORS = (TransportError, NodeFileError, ActionFailed, OSError)


class SimulatedCrash(BaseException):
    """Raised at a crash point by in-process tests: nothing catches it, like SIGKILL."""


class Crasher:
    """Counts crash points; at ``at`` it kills the process (``hard``) or raises SimulatedCrash."""

    def __init__(self, at: int | None = None, *, hard: bool = False):
        self.at = at
        self.hard = hard
        self.count = 0
        self._lock = threading.Lock()

    @classmethod
    def from_environment(cls) -> Crasher:
        value = os.environ.get(CRASH_ENV, "")
        return cls(int(value), hard=True) if value.isdigit() else cls()

    def point(self) -> None:
        if self.at is None:
            return
        with self._lock:
            self.count += 1
            hit = self.count == self.at
        if hit:
            if self.hard:
                os.kill(os.getpid(), signal.SIGKILL)
            raise SimulatedCrash(f"crash point {self.at}")


# ---------------------------------------------------------------------------
# Reaching nodes


class NodeAccess(Protocol):
    """Transports and facts per node, for one remediation or rollback."""

    def transport(self, node: Node) -> NodeTransport: ...
    def gather(self, nodes: list[Node]) -> dict[str, NodeFacts | GatherFailure]: ...
    def fresh_login(self, node: Node) -> str | None: ...
    def close(self) -> None: ...


#: Login failures that may be sshd re-executing itself after SIGHUP, worth another try.
RETRIED_LOGIN_FAILURES = frozenset({"unreachable", "timeout", "proxy"})


class SshAccess:
    """The plan's nodes over SSH: one pooled session per node for the whole run (facts,
    planning, changes, facts again), and brand-new logins to prove sshd still lets
    people in after it was reloaded."""

    LOGIN_ATTEMPTS_SECONDS = 20.0

    def __init__(self, plan: ClusterPlan):
        from acpcheck.sources.base import GatherContext

        self.plan = plan
        self._context = GatherContext(plan)

    def transport(self, node: Node) -> NodeTransport:
        return self._context.pool.session(node)

    def gather(self, nodes: list[Node]) -> dict[str, NodeFacts | GatherFailure]:
        from acpcheck.facts.gather import gather_all

        return gather_all(self.plan, nodes, timeouts=self._context.timeouts, pool=self._context.pool)

    def fresh_login(self, node: Node) -> str | None:
        from acpcheck.transport.ssh import connect_node

        deadline = time.monotonic() + self.LOGIN_ATTEMPTS_SECONDS
        problem = "no attempt"
        while True:
            try:
                with connect_node(
                    self.plan, node, timeouts=self._context.timeouts, known_hosts=self._context.pool.known_hosts
                ) as session:
                    result = session.run("true", 10.0)
                    if result.ok:
                        return None
                    problem = f"`true` exited {result.exit_status}"
            except TransportError as error:
                problem = f"{error.kind}: {error.message}"
                if error.kind not in RETRIED_LOGIN_FAILURES:
                    return problem  # refused by sshd itself: asking again changes nothing
            if time.monotonic() > deadline:
                return problem
            time.sleep(0.5)  # sshd re-executes itself on SIGHUP: a moment without a listener

    def close(self) -> None:
        self._context.close()


class ClusterAccess(Protocol):
    """The Kubernetes API of the plan's cluster, for cluster steps: a client, and evidence read now."""

    def kube(self) -> Any: ...  # transport.kube.KubeClient
    def gather(self) -> Any: ...  # sources.cluster.ClusterEvidence
    def close(self) -> None: ...


class KubeAccess:
    """The plan's kubeconfig (or --kubeconfig), exactly as the ``cluster`` source reads it."""

    def __init__(self, plan: ClusterPlan, environ: dict[str, str] | None = None):
        self.plan = plan
        self.environ = environ
        self._kube: Any = None

    @classmethod
    def of(cls, plan: ClusterPlan, environ: dict[str, str] | None = None) -> KubeAccess | None:
        """None when the run has no kubeconfig (the cluster checks are not applicable then)."""
        from acpcheck.transport.kube import kubeconfig_of

        return cls(plan, environ) if kubeconfig_of(plan, environ)[0] else None

    def kube(self) -> Any:
        from acpcheck.transport.kube import (
            ApiFailure,
            KubeClient,
            KubeconfigError,
            kubeconfig_of,
            load_kubeconfig,
        )

        if self._kube is None:
            path, context = kubeconfig_of(self.plan, self.environ)
            try:
                self._kube = KubeClient(load_kubeconfig(str(path), context))
            except (KubeconfigError, ApiFailure) as error:
                raise ActionFailed(str(getattr(error, "message", error))) from None
        return self._kube

    def gather(self) -> Any:
        from acpcheck.sources.cluster import gather_cluster

        return gather_cluster(self.plan, environ=self.environ)

    def close(self) -> None:
        if self._kube is not None:
            self._kube.close()
            self._kube = None


# ---------------------------------------------------------------------------
# Reports


@dataclass
class StepReport:
    step: Step
    before: CheckResult
    changes: Changes | None = None  # what the step proposed
    #: planned | nothing to change | fixed | needs reboot | still failing | failed | refused | skipped | unverified
    outcome: str = "planned"
    after: CheckResult | None = None
    messages: list[str] = field(default_factory=list)
    changed: int = 0  # actions performed

    @property
    def changes_planned(self) -> bool:
        return bool(self.changes and self.changes.actions)


@dataclass
class NodeReport:
    node: str
    error: str | None = None
    refused: str | None = None
    locked: str | None = None  # another remediation holds the node: nothing done there
    steps: list[StepReport] = field(default_factory=list)
    already_passing: list[str] = field(default_factory=list)  # findings of --from that pass now


@dataclass
class RunReport:
    run_id: str
    plan: ClusterPlan
    apply: bool
    nodes: list[NodeReport]
    refused: str | None = None
    journal: Path | None = None
    interrupted: bool = False
    #: Where each node keeps this run's backups (``Options.backup_root``).
    backup_root: str = BACKUP_ROOT
    #: Changes of this run the journal holds and ``rollback`` would undo (started, not undone).
    to_undo: int = 0

    @property
    def backup_dir(self) -> str:
        """This run's backup directory on each node (``ActionContext.backup_dir``)."""
        return f"{self.backup_root}/{self.run_id}"

    @property
    def undo(self) -> str | None:
        """The command that undoes this run, when it changed anything."""
        return rollback_command(self.run_id, self.journal) if self.journal is not None and self.to_undo else None

    def steps(self) -> Iterable[StepReport]:
        return (s for n in self.nodes for s in n.steps)

    def exit_code(self) -> int:
        """0 nothing left to do; 1 changes planned (dry-run) or findings remain; 2 a node
        or a step failed; 130 interrupted."""
        if self.interrupted:
            return EXIT_INTERRUPTED
        if self.refused:
            return EXIT_FAIL
        if any(n.error or n.locked for n in self.nodes) or any(
            s.outcome in ("failed", "unverified") for s in self.steps()
        ):
            return EXIT_ERROR
        if not self.apply:
            planned = any(s.changes_planned or s.outcome in ("skipped", "refused") for s in self.steps())
            return EXIT_FAIL if planned else EXIT_OK
        return EXIT_FAIL if any(s.outcome not in ("fixed",) for s in self.steps()) else EXIT_OK


# ---------------------------------------------------------------------------
# Choosing steps


@dataclass(frozen=True)
class Options:
    apply: bool = False
    allow_removals: bool = False
    selectors: tuple[str, ...] = ()
    #: (check, target) pairs that FAILed or WARNed in an earlier assessment; None: every node.
    findings: frozenset[tuple[str, str]] | None = None
    run_id: str = ""
    journal_dir: Path | None = None
    header: dict[str, Any] = field(default_factory=dict)  # extra run.json fields (plan path and text, argv)
    max_parallel: int = 64
    backup_root: str = BACKUP_ROOT  # on each node
    lock_path: Callable[[Node], str] = lock_file  # each node's lock (tests: one per node directory)


def selected_steps(selectors: Iterable[str], target: str = "node") -> list[tuple[Step, CheckMeta]]:
    """Every node (or cluster) step whose owning check matches a selector (all of them without one)."""
    from acpcheck.model.profile import matches_selector
    from acpcheck.remediation.steps import STEPS

    catalog = checks()
    chosen = list(selectors)
    found = []
    for check_id in sorted(STEPS):
        meta = catalog.get(check_id)
        if meta is None:
            # @step and @cluster_step take the check function itself, so this is a Step
            # made by hand for a check that was never imported: a bug, never skipped quietly.
            names = ", ".join(s.id for s in STEPS[check_id])
            raise LookupError(f"steps {names} fix {check_id}, but no check {check_id} was imported")
        if chosen and not any(matches_selector(s, meta) for s in chosen):
            continue
        found += [(s, meta) for s in STEPS[check_id] if s.target == target]
    return sorted(found, key=lambda pair: (pair[0].order, pair[0].check, pair[0].name))


def checks() -> dict[str, CheckMeta]:
    """Every check imported: the first-party catalogue, and check packs imported alongside."""
    from acpcheck.catalog import load_catalog
    from acpcheck.model.check import REGISTRY

    load_catalog()
    return REGISTRY


def check_function(meta: CheckMeta) -> Callable[..., Any]:
    module, _, name = meta.function.rpartition(".")
    return getattr(importlib.import_module(module), name)


def grade(meta: CheckMeta, node: NodeContext, policy: GradingPolicy) -> CheckResult:
    """The owning check on ``node``, graded exactly as a run grades it."""
    return evaluate(check_function(meta), policy, {"node": node})


# ---------------------------------------------------------------------------
# Remediate


def remediate(
    plan: ClusterPlan,
    options: Options,
    access: NodeAccess,
    *,
    crasher: Crasher | None = None,
    progress: Callable[[str], None] | None = None,
    cluster_access: ClusterAccess | None = None,
) -> RunReport:
    crasher = crasher or Crasher.from_environment()
    report = RunReport(options.run_id, plan, options.apply, [], backup_root=options.backup_root)
    cluster_steps = selected_steps(options.selectors, "cluster")
    cluster_target = f"cluster:{plan.metadata.name}"
    if options.findings is not None and not any(target == cluster_target for _, target in options.findings):
        cluster_steps = []
    own_access = None
    if cluster_steps and cluster_access is None:
        cluster_access = own_access = KubeAccess.of(plan)
    if cluster_access is None:
        cluster_steps = []
    refusal = plan_refusal(plan)
    if refusal and not cluster_steps:
        report.refused = refusal
        return report
    steps = [] if refusal else selected_steps(options.selectors)
    nodes = [
        n
        for n in plan.spec.nodes
        if options.findings is None or any(target == n.target for _, target in options.findings)
    ]
    if (not steps or not nodes) and not cluster_steps:
        return report
    journal = None
    if options.apply:
        assert options.journal_dir is not None
        targets = ([cluster_target] if cluster_steps else []) + ([n.target for n in nodes] if steps else [])
        header = {
            "run": options.run_id,
            "cluster": plan.metadata.name,
            "backupRoot": options.backup_root,
            **options.header,
        }
        journal = Journal.create(options.journal_dir, header, targets)
        report.journal = options.journal_dir
    with journal.locked() if journal is not None else contextlib.nullcontext():
        _remediate_all(
            plan,
            options,
            access,
            report,
            journal,
            crasher,
            progress,
            cluster_steps,
            cluster_access,
            own_access,
            refusal,
            steps,
            nodes,
        )
    if journal is not None:
        report.to_undo = sum(len(pending_undos(records)) for _, records, _ in journal.read())
    return report


def _remediate_all(
    plan: ClusterPlan,
    options: Options,
    access: NodeAccess,
    report: RunReport,
    journal: Journal | None,
    crasher: Crasher,
    progress: Callable[[str], None] | None,
    cluster_steps: list[tuple[Step, CheckMeta]],
    cluster_access: ClusterAccess | None,
    own_access: KubeAccess | None,
    refusal: str | None,
    steps: list[tuple[Step, CheckMeta]],
    nodes: list[Node],
) -> RunReport:
    """The cluster's steps, then every node's (with the journal held, when there is one)."""
    if cluster_steps:
        assert cluster_access is not None
        try:
            report.nodes.append(_remediate_cluster(plan, cluster_steps, options, cluster_access, journal, crasher))
        except KeyboardInterrupt:
            report.interrupted = True
            return report
        finally:
            if own_access is not None:
                own_access.close()
    if refusal:  # the node steps are refused, the cluster steps ran (and refused what the docs refuse)
        report.nodes += [NodeReport(n.name, refused=refusal) for n in nodes]
    if not steps or not nodes:
        return report
    policy = GradingPolicy.for_plan(plan)
    facts = access.gather(nodes)
    stop = threading.Event()
    reports: dict[str, NodeReport] = {}

    def one(node: Node) -> None:
        reports[node.name] = _remediate_node(
            plan, node, facts[node.name], steps, options, access, policy, journal, crasher, stop
        )
        if progress:
            progress(node.name)

    def run_all() -> None:
        pool = ThreadPoolExecutor(
            max_workers=max(1, min(options.max_parallel, len(nodes))), thread_name_prefix="acpcheck-remediate"
        )
        futures = [pool.submit(one, node) for node in nodes]
        try:
            for future in futures:
                future.result()
        except KeyboardInterrupt:
            # No new change starts; connections are cut so that nodes waiting on one fail
            # fast. What was started is in the journal, for `acpcheck rollback`.
            stop.set()
            access.close()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown()

    try:
        run_all()
    except KeyboardInterrupt:
        report.interrupted = True
    report.nodes += [reports[n.name] for n in nodes if n.name in reports]
    return report


def _remediate_node(
    plan: ClusterPlan,
    spec: Node,
    facts: NodeFacts | GatherFailure,
    steps: list[tuple[Step, CheckMeta]],
    options: Options,
    access: NodeAccess,
    policy: GradingPolicy,
    journal: Journal | None,
    crasher: Crasher,
    stop: threading.Event,
) -> NodeReport:
    report = NodeReport(spec.name)
    if isinstance(facts, GatherFailure):
        report.error = f"{facts.kind}: {facts.message}"
        return report
    node = NodeContext(spec=spec, facts=facts, plan=plan)
    report.refused = node_refusal(node)
    try:
        transport = access.transport(spec)
    except TransportError as error:
        report.error = f"{error.kind}: {error.message}"
        return report
    view = NodeView(transport, node)
    target = spec.target
    writer = journal.writer(target) if journal is not None else None
    lock: NodeLock | None = None
    try:
        for step, meta in steps:
            if stop.is_set():
                break
            if spec.role not in meta.roles:
                continue
            if options.findings is not None and (step.check, target) not in options.findings:
                continue
            item = _wanted(report, step, grade(meta, node, policy), options)
            if item is None:
                continue
            if writer is not None and lock is None and not report.refused:
                # Taken before the first step reads the node, so that it reads what no other remediation is changing.
                try:
                    lock = NodeLock.acquire(transport, options.lock_path(spec), run_id=options.run_id, target=target)
                except NodeLockError as error:
                    report.locked, report.steps = str(error), []
                    return report
            changes = _proposed(item, report.refused, view, options)
            if changes is None:
                continue
            if options.apply and writer is not None:
                ctx = ActionContext(
                    transport,
                    options.run_id,
                    target,
                    fresh_login=lambda: access.fresh_login(spec),
                    backup_root=options.backup_root,
                    lock=lock,
                )
                _perform(item, ctx, writer, crasher, stop)
                view.forget()  # the next step reads what the node holds now
            else:
                view.assume(changes)  # a dry-run: the next step reads the node as if this one's were made
        if options.apply and report.steps and not stop.is_set():
            _verify(report, spec, plan, access, policy)
    except SimulatedCrash:
        lock = None  # like SIGKILL: the lock stays on the node (rollback of this run takes it over)
        raise
    finally:
        if lock is not None:
            _release(lock)
    return report


def _release(lock: NodeLock) -> None:
    """Release a node's lock; a node gone meanwhile keeps it until it is stale (or rolled back)."""
    try:
        lock.release()
    except NodeLockError:
        pass


def _remediate_cluster(
    plan: ClusterPlan,
    steps: list[tuple[Step, CheckMeta]],
    options: Options,
    access: ClusterAccess,
    journal: Journal | None,
    crasher: Crasher,
) -> NodeReport:
    """The cluster steps, in order, against ``cluster:<name>`` through the Kubernetes API."""
    from acpcheck.remediation.objects import ClusterObjects
    from acpcheck.remediation.refusals import cluster_step_refusal
    from acpcheck.sources.cluster import NODES, ClusterView

    target = f"cluster:{plan.metadata.name}"
    report = NodeReport(target)
    evidence = access.gather()
    if evidence.failure is not None:
        report.error = f"{evidence.failure[0]}: {evidence.failure[1]}"
        return report
    view = ClusterView(evidence)
    policy = GradingPolicy.for_plan(plan)
    live_nodes = view.items(NODES) if evidence.reads.get(NODES.key) and evidence.reads[NODES.key].status == "ok" else []
    try:
        objects = ClusterObjects(access.kube(), plan)
    except ActionFailed as error:
        report.error = str(error)
        return report
    writer = journal.writer(target) if journal is not None else None
    for step, meta in steps:
        if options.findings is not None and (step.check, target) not in options.findings:
            continue
        item = _wanted(report, step, evaluate(check_function(meta), policy, {"cluster": view}), options)
        if item is None:
            continue
        changes = _proposed(item, cluster_step_refusal(plan, step.check, live_nodes), objects, options)
        if changes is None:
            continue
        if options.apply and writer is not None:
            ctx = ActionContext(None, options.run_id, target, kube=objects.kube)  # type: ignore[arg-type]
            _perform(item, ctx, writer, crasher, threading.Event())
            objects.forget()
        else:
            objects.assume(changes)
    if options.apply and report.steps:
        pending = [s for s in report.steps if s.outcome not in ("failed", "refused", "skipped")]
        if pending:
            fresh = access.gather()
            for item in pending:
                if fresh.failure is not None:
                    item.outcome = "unverified"
                    item.messages.append(f"could not read the cluster again: {fresh.failure[0]}: {fresh.failure[1]}")
                    continue
                item.after = evaluate(
                    check_function(checks()[item.step.check]), policy, {"cluster": ClusterView(fresh)}
                )
                item.outcome = "fixed" if item.after.status not in FINDINGS else "still failing"
    return report


def _wanted(report: NodeReport, step: Step, before: CheckResult, options: Options) -> StepReport | None:
    """The step's report when its owning check FAILs or WARNs now (else None, noted with --from)."""
    if before.status not in FINDINGS:
        if options.findings is not None:
            report.already_passing.append(f"{step.check} now {before.status}")
        return None
    item = StepReport(step, before)
    report.steps.append(item)
    return item


def _proposed(item: StepReport, refusal: str | None, view: Any, options: Options) -> Changes | None:
    """Ask the step for its changes (unless refused): they are ``item.changes``, and
    returned when there is anything to show or make."""
    if refusal:
        item.outcome, item.changes = "refused", Changes(refused=refusal)
        return None
    try:
        item.changes = item.step.changes(view)
    except NODE_ERRORS as error:
        item.outcome = "failed"
        item.messages.append(f"could not work out the changes: {error}")
        return None
    if item.changes.refused:
        item.outcome = "refused"
    elif item.step.removes and not options.allow_removals:
        item.outcome = "skipped"
        item.messages.append("deletes software or data: only with --allow-removals")
    elif not item.changes.actions:
        item.outcome = "nothing to change"
    else:
        return item.changes
    return None


def _perform(
    item: StepReport, ctx: ActionContext, writer: TargetJournal, crasher: Crasher, stop: threading.Event
) -> None:
    """Perform one step's actions, each journaled by ``writer``; on a failure undo the
    step's own changes at once."""
    assert item.changes is not None
    run_id = ctx.run_id
    started: list[tuple[int, str, dict[str, Any]]] = []  # (intent seq, kind, undo record)
    try:
        for index, action in enumerate(item.changes.actions):
            if stop.is_set():
                item.messages.append("interrupted before this step was complete")
                return
            if ctx.lock is not None:
                ctx.lock.refresh()  # still ours (and alive) before each change
            ctx.label = action_label(ctx.target, item.step, index)
            kind = kind_of(action)
            undo = kind.prepare(action, ctx)
            seq = writer.append("intent", step=item.step.id, action=index, kind=action.kind, undo=undo)
            started.append((seq, action.kind, undo))
            crasher.point()
            kind.perform(action, ctx)
            crasher.point()
            writer.append("done", ref=seq)
            item.changed += 1
            crasher.point()
    except NODE_ERRORS as error:
        item.outcome = "failed"
        item.messages.append(str(error))
        if started:
            writer.append("failed", ref=started[-1][0], error=str(error))
        for seq, kind_name, undo in reversed(started):
            try:
                note = KINDS[kind_name].undo(undo, ctx)
                writer.append("undone", ref=seq, note=note)
                item.messages.append(f"undone: {note}")
            except NODE_ERRORS as undo_error:
                writer.append("undo-failed", ref=seq, error=str(undo_error))
                item.messages.append(
                    f"could NOT undo ({undo_error}); run `{rollback_command(run_id, writer.path.parent)}`"
                )


def journal_file_stem(target: str) -> str:
    return file_name(target).removesuffix(".jsonl")


def action_label(target: str, step: Step, index: int) -> str:
    """The name of an action's archive in the run's backup directory on the node."""
    return f"{journal_file_stem(target)}-{step.check}-{step.name}-{index}"


def _verify(report: NodeReport, spec: Node, plan: ClusterPlan, access: NodeAccess, policy: GradingPolicy) -> None:
    """Gather the node's facts again and grade every owning check: the outcome of each step."""
    pending = [s for s in report.steps if s.outcome not in ("failed", "refused", "skipped")]
    if not pending:
        return
    fresh = access.gather([spec])[spec.name]
    if isinstance(fresh, GatherFailure):
        for item in pending:
            item.outcome = "unverified"
            item.messages.append(f"could not gather facts again: {fresh.kind}: {fresh.message}")
        return
    node = NodeContext(spec=spec, facts=fresh, plan=plan)
    catalog = checks()
    for item in pending:
        item.after = grade(catalog[item.step.check], node, policy)
        deferred = item.changes is not None and item.changes.deferred
        if item.after.status not in FINDINGS:
            item.outcome = "fixed"
        elif deferred:
            item.outcome = "needs reboot"
        else:
            item.outcome = "still failing"


# ---------------------------------------------------------------------------
# Rollback


@dataclass
class UndoLine:
    step: str
    text: str
    ok: bool
    irreversible: bool = False


@dataclass
class TargetRollback:
    target: str
    lines: list[UndoLine] = field(default_factory=list)
    error: str | None = None
    warning: str | None = None


@dataclass
class RollbackReport:
    run_id: str
    targets: list[TargetRollback]

    def exit_code(self) -> int:
        if any(t.error or not all(line.ok for line in t.lines) for t in self.targets):
            return EXIT_ERROR
        return EXIT_OK


def pending_undos(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Intents not yet undone, newest first."""
    undone = {r["ref"] for r in records if r["event"] == "undone"}
    return [r for r in reversed(records) if r["event"] == "intent" and r["seq"] not in undone]


def rollback(
    plan: ClusterPlan,
    journal: Journal,
    access: NodeAccess,
    *,
    max_parallel: int = 64,
    cluster_access: ClusterAccess | None = None,
    lock_path: Callable[[Node], str] = lock_file,
) -> RollbackReport:
    """Undo what ``journal`` (verified by ``Journal.open``) says is not undone yet. A target
    with changes to undo that ``plan`` cannot reach is InputError before any node is touched."""
    by_name = {n.name: n for n in plan.spec.nodes}
    cluster_target = f"cluster:{plan.metadata.name}"
    targets = journal.read()
    unreachable = [
        Problem(
            str(journal.writer(target).path),
            None,
            "target",
            f"{target} has changes to undo, but the plan of {plan.metadata.name} has no such node (nor cluster): "
            "give the plan the run used (--plan); nothing was undone anywhere",
        )
        for target, records, _ in targets
        if pending_undos(records)
        and target != cluster_target
        and (not target.startswith("node:") or target.removeprefix("node:") not in by_name)
    ]
    if unreachable:
        raise InputError(unreachable)
    owned: dict[str, KubeAccess | None] = {}  # the Kubernetes access rollback opens itself (closed at the end)
    results: dict[str, TargetRollback] = {}

    def _free_own_lock(target: str, outcome: TargetRollback) -> None:
        """A node of the run with nothing to undo may still hold the run's lock (the apply
        was killed after taking it, before changing anything): remove it, or say why not."""
        node = by_name[target.removeprefix("node:")]
        try:
            release_run(access.transport(node), lock_path(node), journal.run_id)
        except (TransportError, NodeLockError) as error:
            outcome.warning = (
                outcome.warning
                or f"could not check for this run's lock on {target}: {getattr(error, 'message', error)}"
            )

    def one(target: str, records: list[dict[str, Any]], warning: str | None) -> None:
        outcome = TargetRollback(target, warning=warning)
        results[target] = outcome
        pending = pending_undos(records)
        if not pending:
            if target.startswith("node:") and target.removeprefix("node:") in by_name:
                _free_own_lock(target, outcome)
            return
        lock = None
        if target == cluster_target:
            kube_access = cluster_access or owned.setdefault("kube", KubeAccess.of(plan))
            if kube_access is None:
                outcome.error = f"{target}: no kubeconfig (spec.kubeconfig, or --kubeconfig); nothing undone there"
                return
            try:
                ctx = ActionContext(None, journal.run_id, target, kube=kube_access.kube())  # type: ignore[arg-type]
            except ActionFailed as error:
                outcome.error = str(error)
                return
        else:
            node = by_name[target.removeprefix("node:")]
            try:
                transport = access.transport(node)
                lock = NodeLock.acquire(
                    transport, lock_path(node), run_id=journal.run_id, target=target, purpose="rollback"
                )
            except TransportError as error:
                outcome.error = f"{error.kind}: {error.message}"
                return
            except NodeLockError as error:
                outcome.error = str(error)
                return
            ctx = ActionContext(transport, journal.run_id, target, lock=lock)
        writer = journal.writer(target)
        try:
            for record in pending:
                try:
                    if lock is not None:
                        lock.refresh()
                except NodeLockError as error:
                    outcome.error = str(error)
                    return
                try:
                    note = KINDS[record["kind"]].undo(record["undo"], ctx)
                except NODE_ERRORS as error:
                    writer.append("undo-failed", ref=record["seq"], error=str(error))
                    outcome.lines.append(UndoLine(record["step"], f"could NOT undo: {error}", False))
                    continue
                writer.append("undone", ref=record["seq"], note=note)
                outcome.lines.append(UndoLine(record["step"], note, True, irreversible="NOT reversed" in note))
        finally:
            if lock is not None:
                _release(lock)

    workers = max(1, min(max_parallel, len(targets) or 1))
    with journal.locked(), ThreadPoolExecutor(max_workers=workers, thread_name_prefix="acpcheck-rollback") as pool:
        try:
            for future in [pool.submit(one, target, records, warning) for target, records, warning in targets]:
                future.result()
        finally:
            for kube_access in owned.values():
                if kube_access is not None:
                    kube_access.close()
    return RollbackReport(journal.run_id, [results[target] for target, _, _ in targets])


# ---------------------------------------------------------------------------
# Earlier findings


def findings_of(results_file: Path, plan: ClusterPlan) -> frozenset[tuple[str, str]]:
    """(check, target) pairs that FAILed or WARNed in a results.json of this plan's cluster.

    Read by the one results.json reader (``acpcheck.report.diff.read_results``, which
    ``diff`` and ``--baseline`` use too): a file that is not a whole results.json of
    this version is bad input (exit 4) before any node is touched."""
    from acpcheck.errors import InputError, Problem
    from acpcheck.report.diff import read_results

    results = read_results(str(results_file), "--from")
    cluster = results.run["cluster"]
    if cluster != plan.metadata.name:
        raise InputError(
            [
                Problem(
                    str(results_file),
                    None,
                    "run.cluster",
                    f"is {cluster!r}, but the plan is of cluster {plan.metadata.name!r}",
                )
            ]
        )
    return frozenset((r["check"], r["target"]) for r in results.document["results"] if r["status"] in ("fail", "warn"))
