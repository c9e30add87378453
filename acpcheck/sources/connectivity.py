"""Connectivity evidence: every node reaches the other nodes on the cluster's ports,
and a workload cluster's nodes reach the global cluster.

``ConnectivitySource`` (``connectivity``, order 20: after node facts and the LB
proof, whose listeners are gone by then):

1. every node listens (``nodeside``) on the ports other nodes must reach on it:
   the control-plane ports on control-plane nodes, the CNI's ports on every node
   (``acpcheck.matrix.ports``, ``connectivity:`` rows). A port the node's facts show
   in use is left alone (the pair is "not proven");
2. every node runs one connector over all its targets in parallel (a timeout each):
   every control-plane node on the control-plane ports, every other node on the
   all-node ports, and for a workload cluster the ``cpaas.io/platform-url``
   address and the global registry (``spec.registry.address``, else the platform
   URL's host, on 11443) when the plan names them;
3. the listeners are stopped, whatever happened (and end themselves at their
   deadline, or as soon as the runner's connection is gone).

Which pairs (``peers_of``): all of them up to ``ALL_PAIRS_UP_TO`` nodes. Above that,
the nodes in name order form a ring, and each node probes the nodes at
``SAMPLED_PEERS`` fixed offsets along it (its next neighbour and offsets spread
evenly around the ring, so nearby and distant nodes both), plus every
control-plane node on all its ports. Because every node uses the same offsets,
every node is also probed by exactly ``SAMPLED_PEERS`` others (plus, for a
control-plane node, by every node): the coverage guarantee of docs/architecture.md.
The work grows linearly with the cluster, on the nodes and in the runner.
"""

from __future__ import annotations

import math
import random
import secrets
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, ClassVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from acpcheck.constants import PLATFORM_URL_ANNOTATION
from acpcheck.sources.base import EvidenceDocument, GatherContext, JsonEvidenceSource, nodes_to_probe
from acpcheck.sources.nodeside import (
    NODES_AT_ONCE,
    READY_TIMEOUT,
    ListenerSet,
    ListenerState,
    Target,
    busy_ports,
    connector_command,
    connector_input,
    identity,
    parse_connector,
)

if TYPE_CHECKING:
    from acpcheck.model.plan import ClusterPlan, Node
    from acpcheck.model.ports import ConnPort

#: Every pair is probed up to this many nodes; above it, a sample (module docstring).
#: Both numbers are ours, not ACP's: all pairs at 50 nodes are 50 x 49 pairs, the
#: work of 100 sampled nodes.
ALL_PAIRS_UP_TO = 50
#: Above ALL_PAIRS_UP_TO, each node probes (and is probed by) this many peers, besides
#: every control-plane node.
SAMPLED_PEERS = 24
#: Seconds each connection may take, and connections a node runs at once.
CONNECT_TIMEOUT = 2.0
PARALLEL = 64
#: Attempts for a pair that gave no answer at all, before it counts as blocked: one
#: lost SYN on a busy network is not a firewall (ours; a dropping firewall drops every try).
TRIES = 2
#: A connector that timed out (or lost its connection) runs once more, after the
#: others, with this many times its time budget (ours).
RETRY_BUDGET_FACTOR = 2
REGISTRY_PORT = 11443


class Pair(BaseModel):
    """A connection from one node that did not prove anything good."""

    model_config = ConfigDict(extra="forbid")

    to: str  # a node name, or a host for the global targets
    port: int
    protocol: str
    # refused | timeout | unreachable | closed | silent | foreign | stale | node (another one) | busy … | notool …
    outcome: str
    detail: str = ""


class FromNode(BaseModel):
    """What one node's connections showed."""

    model_config = ConfigDict(extra="forbid")

    ok: int = 0  # pairs proven: the right node answered
    failed: list[Pair] = Field(default_factory=list)
    unproven: list[Pair] = Field(default_factory=list)
    error: str = ""  # the connector itself could not run
    targets: int = 0
    attempts: int = 1  # 2: the first run timed out or lost its connection, and it ran once more


class GlobalTarget(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str  # platform-url | registry
    host: str
    port: int
    source: str  # the plan field it comes from


class GlobalResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    host: str
    port: int
    outcome: str  # connected | refused | timeout | unreachable | notool
    detail: str = ""


class ConnEvidence(EvidenceDocument):
    """The ``connectivity`` evidence. mode: proof | live (the cluster exists: its ports are held) | none | error."""

    schema_: str = Field(default="acpcheck/connectivity/v1", alias="schema")
    listeners: dict[str, ListenerState] = Field(default_factory=dict)
    nodes: dict[str, FromNode] = Field(default_factory=dict)
    global_targets: list[GlobalTarget] = Field(default_factory=list)
    global_results: dict[str, list[GlobalResult]] = Field(default_factory=dict)
    sampled: bool = False
    connections: int = 0
    seconds: float = 0.0


def global_targets(plan: ClusterPlan) -> list[GlobalTarget]:
    """What a workload cluster's nodes must reach of the global cluster, as far as the plan names it."""
    if plan.spec.cluster.role != "workload":
        return []
    targets = []
    url = plan.spec.cluster.annotations.get(PLATFORM_URL_ANNOTATION)
    host = None
    if url:
        parts = urlsplit(url if "://" in url else f"https://{url}")
        host = parts.hostname
        if host:
            port = parts.port or (80 if parts.scheme == "http" else 443)
            targets.append(
                GlobalTarget(
                    name="platform-url",
                    host=host,
                    port=port,
                    source=f"spec.cluster.annotations[{PLATFORM_URL_ANNOTATION}]",
                )
            )
    registry = plan.spec.registry
    if registry.type == "platform":
        if registry.address:
            parts = urlsplit(f"//{registry.address.split('://')[-1]}")
            if parts.hostname:
                targets.append(
                    GlobalTarget(
                        name="registry",
                        host=parts.hostname,
                        port=parts.port or REGISTRY_PORT,
                        source="spec.registry.address",
                    )
                )
        elif host:
            targets.append(
                GlobalTarget(
                    name="registry",
                    host=host,
                    port=REGISTRY_PORT,
                    source=f"spec.cluster.annotations[{PLATFORM_URL_ANNOTATION}] (its host)",
                )
            )
    return targets


def ports_on(node: Node, ports: list[ConnPort]) -> list[ConnPort]:
    """The ports other nodes must reach on ``node``."""
    return [port for port in ports if port.to == "all" or node.role == "control-plane"]


def peer_offsets(count: int) -> list[int]:
    """The ring offsets each of ``count`` nodes probes: every other node up to
    ALL_PAIRS_UP_TO nodes; above it 1 and SAMPLED_PEERS - 1 offsets spread evenly."""
    if count <= ALL_PAIRS_UP_TO:
        return list(range(1, count))
    return sorted({1, *(round(step * count / SAMPLED_PEERS) for step in range(1, SAMPLED_PEERS))})


def peers_of(
    position: int, ordered: list[Node], offsets: list[int] | None = None, control_plane: list[Node] | None = None
) -> list[Node]:
    """The nodes the node at ``position`` of ``ordered`` (sorted by name) probes: those at
    ``peer_offsets`` along the ring, and every control-plane node. Give ``offsets`` and
    ``control_plane`` when calling for every node: the runner's work per node then
    depends on the peers, not on the size of the cluster."""
    me = ordered[position]
    count = len(ordered)
    chosen = [
        ordered[(position + offset) % count] for offset in (offsets if offsets is not None else peer_offsets(count))
    ]
    names = {node.name for node in chosen}
    cps = control_plane if control_plane is not None else [node for node in ordered if node.role == "control-plane"]
    return chosen + [node for node in cps if node is not me and node.name not in names]


def _discount_ended_listeners(evidence: ConnEvidence) -> None:
    """A listener that ended during the probe (its node's connection was lost, it
    was killed) answers nothing from then on: a failed connection towards it proves
    nothing about the node that made it. Such pairs become "not proven" (outcome
    ``ended``), left to the ended node's own result. One pass over the failures."""
    ended = {name for name, state in evidence.listeners.items() if state.ended}
    if not ended:
        return
    for result in evidence.nodes.values():
        towards_ended = [pair for pair in result.failed if pair.to in ended]
        if not towards_ended:
            continue
        result.failed = [pair for pair in result.failed if pair.to not in ended]
        for pair in towards_ended:
            evidence.listeners[pair.to].unproven_after_end += 1
            result.unproven.append(
                pair.model_copy(update={"outcome": "ended", "detail": f"{pair.outcome} {pair.detail}".strip()})
            )


class ConnectivitySource(JsonEvidenceSource):
    name: ClassVar[str] = "connectivity"
    order: ClassVar[int] = 20
    model = ConnEvidence
    what = "connectivity evidence"

    def collect(self, context: GatherContext, reason: str | None) -> ConnEvidence:
        from acpcheck.model.ports import connectivity_ports
        from acpcheck.transport.errors import (
            unexpected,
        )  # lazily, as every source: the transport package loads paramiko

        plan = context.plan
        ports = connectivity_ports(plan)
        if not plan.spec.nodes:
            return ConnEvidence(mode="none", reason="the plan lists no nodes")
        facts = context.gathered.get("nodes")  # None when the selected checks needed no node facts
        reachable, failed = nodes_to_probe(context, plan.spec.nodes)
        index = {node.name: i for i, node in enumerate(plan.spec.nodes)}
        idents = {node.name: identity(node.name, index[node.name]) for node in plan.spec.nodes}
        ordered = sorted(plan.spec.nodes, key=lambda node: node.name)
        evidence = ConnEvidence(
            mode="proof", sampled=len(ordered) > ALL_PAIRS_UP_TO, global_targets=global_targets(plan)
        )
        for name, why in failed.items():
            evidence.listeners[name] = ListenerState(node=name, ident=idents[name], state="unreachable", detail=why)

        plans: dict[str, list[tuple[Node, ConnPort]]] = {}
        offsets = peer_offsets(len(ordered))
        control_plane = [node for node in ordered if node.role == "control-plane"]
        for position, node in enumerate(ordered):
            pairs = [
                (peer, port)
                for peer in peers_of(position, ordered, offsets, control_plane)
                for port in ports_on(peer, ports)
            ]
            # Each node in its own (reproducible) order: were every list to start with
            # cp1, every node's first connections would arrive at cp1 at once.
            random.Random(node.name).shuffle(pairs)
            plans[node.name] = pairs
        largest = max((len(pairs) for pairs in plans.values()), default=0) + len(evidence.global_targets)
        # The node-side deadlines grow with the work: a connector's with its own
        # targets; a listener's with the time every listener and every connector
        # (and each one's second attempt) may take in batches of NODES_AT_ONCE (a
        # connector starts only once all listeners are up, and the listeners stop
        # once all connectors are done).
        budget = math.ceil(largest / PARALLEL) * (CONNECT_TIMEOUT + 1.5) * TRIES + 10
        batches = math.ceil(len(reachable) / NODES_AT_ONCE)
        listener_deadline = batches * (READY_TIMEOUT + budget * (1 + RETRY_BUDGET_FACTOR)) + 30
        nonce = secrets.token_hex(8)

        wanted = []
        for node in reachable:
            specs = [(port.protocol, port.port) for port in ports_on(node, ports)]
            known = busy_ports((facts or {}).get(node.name), specs)
            wanted.append(
                (node, idents[node.name], [spec for spec in specs if f"{spec[0]}/{spec[1]}" not in known], known)
            )
        with ListenerSet(context.pool, nonce, listener_deadline) as listeners:
            states = {**evidence.listeners, **listeners.start(wanted)}

            def run_from(node: Node, seconds: float) -> tuple[str, FromNode, list[GlobalResult], bool]:
                try:
                    return (
                        node.name,
                        *self._connect_from(
                            context, node, plans[node.name], states, idents, evidence.global_targets, nonce, seconds
                        ),
                    )
                except Exception as error:  # noqa: BLE001 - one node's surprise is that node's ERROR, never every node's
                    return node.name, FromNode(error=f"probe: {unexpected(error)}"[:300]), [], True

            def run_all(nodes: list[Node], seconds: float, attempt: int) -> list[Node]:
                """Run the connectors of ``nodes``; return those worth another attempt."""
                again = []
                with ThreadPoolExecutor(
                    max_workers=max(1, min(NODES_AT_ONCE, len(nodes))), thread_name_prefix="acpcheck-conn"
                ) as executor:
                    for done, (name, result, global_results, retry) in enumerate(
                        executor.map(lambda node: run_from(node, seconds), nodes), 1
                    ):
                        result.attempts = attempt
                        evidence.nodes[name] = result
                        if global_results:
                            evidence.global_results[name] = global_results
                        if retry:
                            again.append(by_name[name])
                        if context.progress is not None:
                            context.progress(
                                "connectivity" if attempt == 1 else "connectivity, again",
                                done,
                                len(nodes),
                                name,
                                not result.error,
                            )
                return again

            by_name = {node.name: node for node in reachable}
            # A connector that ran out of time, lost its connection or failed in a way
            # nobody expected runs once more, after all the others and with twice the
            # time: a node that was slow to start python while 63 others did is not a
            # node that cannot connect.
            again = run_all(reachable, budget, 1)
            if again:
                run_all(again, budget * RETRY_BUDGET_FACTOR, 2)
        evidence.listeners.update(listeners.states)
        _discount_ended_listeners(evidence)
        evidence.listeners = {
            node.name: evidence.listeners[node.name] for node in plan.spec.nodes if node.name in evidence.listeners
        }
        evidence.connections = sum(result.targets for result in evidence.nodes.values())
        return evidence

    @staticmethod
    def _connect_from(
        context: GatherContext,
        node: Node,
        pairs: list[tuple[Node, ConnPort]],
        states: dict[str, ListenerState],
        idents: dict[str, str],
        globals_: list[GlobalTarget],
        nonce: str,
        budget: float,
    ) -> tuple[FromNode, list[GlobalResult], bool]:
        """The connections from ``node``, and whether another attempt is worth it (the connector
        timed out or its connection was lost)."""
        from acpcheck.transport.errors import TransportError

        result = FromNode()
        targets: list[Target] = []
        about: list[tuple[Node, ConnPort]] = []
        for peer, port in pairs:
            state = states.get(peer.name)
            port_state = state.port_state(port.protocol, port.port) if state is not None else ""
            if state is None or state.state != "ok" or port_state != "ok":
                if state is not None and state.state != "ok":
                    kind, why = state.state, state.detail
                else:
                    kind, _, why = (port_state or "unreachable no listener").partition(" ")
                result.unproven.append(
                    Pair(to=peer.name, port=port.port, protocol=port.protocol, outcome=kind, detail=why)
                )
                continue
            host = str(peer.ipv4 if peer.ipv4 is not None else peer.ipv6)
            targets.append(Target(port.protocol, host, port.port, "id"))
            about.append((peer, port))
        targets += [Target("tcp", target.host, target.port, "tcp") for target in globals_]
        result.targets = len(targets)
        if not targets:
            return result, [], False
        try:
            run = context.pool.session(node).run(
                connector_command(CONNECT_TIMEOUT, PARALLEL, TRIES), timeout=budget, stdin=connector_input(targets)
            )
        except TransportError as error:
            result.error = f"{error.kind}: {error.message}"
            return result, [], error.kind in ("timeout", "unreachable")
        except ValueError as error:
            result.error = f"probe: {error}"
            return result, [], False
        answers = parse_connector(run.stdout, len(targets), nonce)
        # answers holds one answer per target: the node pairs (about) first, then the global targets
        for (peer, port), answer in zip(about, answers, strict=False):
            if answer.kind == "node" and answer.ident == idents[peer.name]:
                result.ok += 1
            elif answer.kind == "notool":
                result.unproven.append(
                    Pair(to=peer.name, port=port.port, protocol=port.protocol, outcome="notool", detail=answer.detail)
                )
            else:
                detail = f"{answer.ident} answered instead" if answer.kind == "node" else answer.detail
                result.failed.append(
                    Pair(to=peer.name, port=port.port, protocol=port.protocol, outcome=answer.kind, detail=detail)
                )
        global_results = [
            GlobalResult(
                name=target.name,
                host=target.host,
                port=target.port,
                outcome="connected" if answer.reached else answer.kind,
                detail=answer.detail,
            )
            for target, answer in zip(globals_, answers[len(about) :], strict=True)
        ]
        return result, global_results, False
