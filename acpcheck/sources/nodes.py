"""Node facts as an evidence source: ONE probe exec per node, all nodes in parallel.

The first source of every run that has node checks (``order`` 0): later sources
that open ports on nodes (load-balancer proof, connectivity) read which nodes
answered from it. Evidence is ``{node name: NodeFacts | GatherFailure}`` in plan
order; saved as one ``<node>.json`` per node (``acpcheck.facts.store``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from acpcheck.facts.model import GatherFailure, NodeContext, NodeFacts, NodeSet
from acpcheck.model.check import NotApplicable
from acpcheck.sources.base import GatherContext, TargetUnavailable

if TYPE_CHECKING:
    from acpcheck.model.plan import ClusterPlan, Node

FactsByNode = dict[str, "NodeFacts | GatherFailure"]


class NodeFactsSource:
    name: ClassVar[str] = "nodes"
    order: ClassVar[int] = 0

    def gather(self, context: GatherContext) -> FactsByNode:
        from acpcheck.facts.gather import gather_all  # paramiko: only when nodes are contacted

        progress = context.progress

        def report(done: int, total: int, node: str, ok: bool) -> None:
            if progress is not None:
                progress(self.name, done, total, node, ok)

        # Later sources (the LB proof, connectivity) reuse the node's session: one login
        # per node and run. Without them each connection closes right after its probe.
        pool = context.pool if context.later else None
        known_hosts = None if pool is not None else context.plan.spec.ssh.known_hosts_file
        return gather_all(context.plan, timeouts=context.timeouts, pool=pool, known_hosts=known_hosts, progress=report)

    def unavailable(self, plan: ClusterPlan, message: str) -> FactsByNode:
        return {node.name: GatherFailure(node.name, "probe", message) for node in plan.spec.nodes}

    def save(self, evidence: FactsByNode, directory: Path) -> None:
        from acpcheck.facts.store import save_facts

        save_facts(directory, evidence)

    def load(self, directory: Path, plan: ClusterPlan) -> FactsByNode:
        from acpcheck.facts.store import load_facts

        if not directory.is_dir() and any(directory.parent.glob("*.json")):
            # A facts directory from before evidence sources: <node>.json files
            # straight in the directory that --facts names. It still replays.
            directory = directory.parent
        return load_facts(directory, plan)

    def provide(self, parameter: str, evidence: FactsByNode, plan: ClusterPlan, param: Any) -> NodeContext | NodeSet:
        if parameter == "node":
            return node_context(plan, param, evidence)
        return node_set(plan, evidence)


def node_context(plan: ClusterPlan, spec: Node, facts: FactsByNode) -> NodeContext:
    """The ``node`` argument of a node check; TargetUnavailable for a node without facts."""
    found = facts.get(spec.name)
    if not isinstance(found, NodeFacts):
        failure = _failure_of(spec.name, facts)
        raise TargetUnavailable(spec.target, failure.kind, failure.message)
    # hosted control planes: an SSH host on an immutable OS is not judged by node preprocessing (SKIP)
    from acpcheck.sources.sshhosts import immutable_host_reason

    reason = immutable_host_reason(plan, spec.name, found.os_id, found.os_pretty_name)
    if reason is not None:
        raise NotApplicable(reason)
    return NodeContext(spec=spec, facts=found, plan=plan)


def node_set(plan: ClusterPlan, facts: FactsByNode) -> NodeSet:
    """The ``nodes`` argument of a cross-node check: the nodes with facts, and why the others have none."""
    members = tuple(
        NodeContext(spec=n, facts=found, plan=plan)
        for n in plan.spec.nodes
        if isinstance(found := facts.get(n.name), NodeFacts)
    )
    failures = {
        n.name: _failure_of(n.name, facts) for n in plan.spec.nodes if not isinstance(facts.get(n.name), NodeFacts)
    }
    return NodeSet(members=members, failures=failures, plan=plan)


def _failure_of(name: str, facts: FactsByNode) -> GatherFailure:
    found = facts.get(name)
    return (
        found
        if isinstance(found, GatherFailure)
        else GatherFailure(name, "probe", "no facts were gathered for this node")
    )
