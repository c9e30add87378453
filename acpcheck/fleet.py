"""Where a run's node facts come from: gathered once per node, or replayed.

Gathering happens once per run, in parallel over all nodes (one SSH connection
and one probe exec per node). Under xdist the controller gathers before the
workers start and saves the facts into the run's report directory; workers load
them from there, so every node is contacted exactly once whatever ``-n`` is.
``--acp-facts DIR`` replays a saved directory with no connection at all.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from acpcheck.facts.model import Fleet, GatherFailure, NodeContext, NodeFacts

if TYPE_CHECKING:
    from acpcheck.model.plan import ClusterPlan, Node
    from acpcheck.model.profile import Profile

FactsByNode = dict[str, "NodeFacts | GatherFailure"]


class NodeUnavailable(Exception):
    """The node's facts could not be gathered: its checks are ERROR, never FAIL."""

    def __init__(self, failure: GatherFailure):
        super().__init__(f"{failure.node}: {failure.kind}: {failure.message}")
        self.failure = failure


def node_checks_selected(plan: ClusterPlan, profile: Profile, select: list[str]) -> bool:
    """Whether the run will need node facts (any selected, applicable first-party node check)."""
    from acpcheck.catalog import load_catalog
    from acpcheck.model.check import Scope
    from acpcheck.model.profile import matches_selector

    return any(
        meta.scope is Scope.NODE
        and profile.selects(meta)
        and (not select or any(matches_selector(s, meta) for s in select))
        and meta.applies.not_applicable(plan) is None
        for meta in load_catalog().values()
    )


def obtain_facts(plan: ClusterPlan, replay_dir: Path | None, save_dir: Path | None) -> FactsByNode:
    """Load facts from ``replay_dir``, or gather them from every plan node (saving them to ``save_dir``)."""
    from acpcheck.facts.store import load_facts, save_facts

    if replay_dir is not None:
        return load_facts(replay_dir, plan)
    # Imported here: a plan-only or replayed run never loads paramiko.
    from acpcheck.facts.gather import gather_all
    from acpcheck.transport import Timeouts

    ssh = plan.spec.ssh
    timeouts = Timeouts(
        connect=ssh.connect_timeout_seconds,
        handshake=ssh.connect_timeout_seconds,
        auth=ssh.connect_timeout_seconds,
        command=ssh.command_timeout_seconds,
    )
    results = gather_all(plan, timeouts=timeouts, known_hosts=ssh.known_hosts_file, progress=ProgressLine())
    if save_dir is not None:
        save_facts(save_dir, results)
    return results


def context_for(plan: ClusterPlan, spec: Node, facts: FactsByNode) -> NodeContext:
    """The ``node`` argument of a node check; raises NodeUnavailable for a failed node."""
    found = facts.get(spec.name)
    if not isinstance(found, NodeFacts):
        raise NodeUnavailable(_failure_of(spec.name, facts))
    return NodeContext(spec=spec, facts=found, plan=plan)


def fleet_for(plan: ClusterPlan, facts: FactsByNode) -> Fleet:
    """The ``nodes`` argument of a cross-node check."""
    members = tuple(NodeContext(spec=n, facts=facts[n.name], plan=plan) for n in plan.spec.nodes if isinstance(facts.get(n.name), NodeFacts))
    failures = {n.name: _failure_of(n.name, facts) for n in plan.spec.nodes if not isinstance(facts.get(n.name), NodeFacts)}
    return Fleet(members=members, failures=failures, plan=plan)


def _failure_of(name: str, facts: FactsByNode) -> GatherFailure:
    found = facts.get(name)
    return found if isinstance(found, GatherFailure) else GatherFailure(name, "probe", "no facts were gathered for this node")


class ProgressLine:
    """`gathering facts: 37/100 nodes, 2 failed` on stderr; one line per failure."""

    def __init__(self, stream: object = None):
        self.failed = 0
        self.stream = stream or sys.stderr
        self.is_tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def __call__(self, done: int, total: int, node: str, ok: bool) -> None:
        if not ok:
            self.failed += 1
        end = "\n" if done == total or not self.is_tty else ""
        failed = f", {self.failed} failed" if self.failed else ""
        if self.is_tty or not ok or done == total:
            print(f"\rgathering facts: {done}/{total} nodes{failed}" + (f" ({node} failed)" if not ok else ""), end=end, file=self.stream, flush=True)  # type: ignore[call-overload]
