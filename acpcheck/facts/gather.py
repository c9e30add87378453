"""Gather node facts: one connection and ONE probe exec per node, all nodes in parallel.

Each node costs at most its own timeouts (connect, handshake, auth, probe) and
never delays the others beyond that: nodes run in a thread pool, and every
failure becomes a ``GatherFailure`` for that node instead of an exception.

Clock skew: the probe prints the node's clock (``date +%s.%N``) before anything
else. The controller notes when it finished sending the probe and when those
first bytes arrived; the node read its clock between the two, so
``clock_read_at_epoch`` is their midpoint and ``round_trip_seconds`` their
distance (the uncertainty of the skew estimate, about one network round trip).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import TYPE_CHECKING

from acpcheck.facts.model import GatherFailure, NodeFacts, assemble, probe_script
from acpcheck.facts.parse import ProbeOutputError, decode_probe_output
from acpcheck.transport.errors import TransportError
from acpcheck.transport.hostkeys import KnownHosts
from acpcheck.transport.settings import resolve_ssh
from acpcheck.transport.ssh import DEFAULT_TIMEOUTS, SshPool, SshSession, Timeouts, connect

if TYPE_CHECKING:
    from acpcheck.model.plan import ClusterPlan, Node

#: ``progress(done, total, node, ok)`` after each node finishes, in completion order.
Progress = Callable[[int, int, str, bool], None]
FactsResult = NodeFacts | GatherFailure

PROBE_COMMAND = "sh -s"  # the script comes on stdin: no quoting through the login shell


def _iso_utc(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def probe_session(session: SshSession, *, timeout: float | None = None) -> NodeFacts:
    """Run the probe over an open session and parse it; raise TransportError on failure."""
    result = session.run(PROBE_COMMAND, timeout, stdin=probe_script())
    try:
        raw = decode_probe_output(result.stdout, result.stderr, result.exit_status)
    except ProbeOutputError as exc:
        raise TransportError("probe", f"{session.settings.address}: {exc}") from None
    first_output = result.first_output_at if result.first_output_at is not None else result.finished_at
    clock_read_at = (result.input_sent_at + first_output) / 2
    return assemble(
        session.settings.node,
        raw,
        gathered_at=_iso_utc(clock_read_at),
        round_trip_seconds=max(0.0, first_output - result.input_sent_at),
        clock_read_at_epoch=clock_read_at,
    )


def gather_node(
    plan: ClusterPlan,
    node: Node,
    *,
    timeouts: Timeouts = DEFAULT_TIMEOUTS,
    known_hosts: KnownHosts | None = None,
    pool: SshPool | None = None,
) -> FactsResult:
    """One node's facts, or why they could not be gathered. Never raises for a node problem."""
    try:
        settings = resolve_ssh(plan, node)
    except TransportError as exc:
        return GatherFailure(node.name, exc.kind, exc.message)
    # Where we tried to go, for the report (no secrets: settings hold only references).
    extra = {"address": settings.address, **({"proxy": settings.proxy.address} if settings.proxy else {})}
    try:
        if pool is not None:
            return probe_session(pool.session(node), timeout=timeouts.command)
        with connect(settings, timeouts=timeouts, known_hosts=known_hosts) as session:
            return probe_session(session, timeout=timeouts.command)
    except TransportError as exc:
        return GatherFailure(node.name, exc.kind, exc.message, extra)
    except Exception as exc:  # noqa: BLE001 — a bug must cost one node, not the run; the type says where to look
        return GatherFailure(node.name, "probe", f"internal error while gathering: {type(exc).__name__}: {exc}")


def _select(plan: ClusterPlan, nodes: Iterable[str | Node] | None) -> list[Node]:
    if nodes is None:
        return list(plan.spec.nodes)
    by_name = {spec.name: spec for spec in plan.spec.nodes}
    chosen = []
    for node in nodes:
        if isinstance(node, str):
            if node not in by_name:
                raise KeyError(f"no node {node!r} in plan {plan.metadata.name!r}")
            chosen.append(by_name[node])
        else:
            chosen.append(node)
    return chosen


def gather_all(
    plan: ClusterPlan,
    nodes: Iterable[str | Node] | None = None,
    *,
    max_parallel: int = 64,
    timeouts: Timeouts = DEFAULT_TIMEOUTS,
    known_hosts: KnownHosts | str | Path | None = None,
    progress: Progress | None = None,
    pool: SshPool | None = None,
) -> dict[str, FactsResult]:
    """Facts of ``nodes`` (default: every plan node), keyed by node name in plan order.

    ``known_hosts``: a KnownHosts, a path, or None for the default file (see
    acpcheck.transport.hostkeys). ``pool``: keep the connections open in it for
    later use (remediation); without one each connection is closed after its probe.
    """
    specs = _select(plan, nodes)
    if not specs:
        return {}
    if pool is not None:
        known = pool.known_hosts
    else:
        known = known_hosts if isinstance(known_hosts, KnownHosts) else KnownHosts(known_hosts)
    results: dict[str, FactsResult] = {}
    with ThreadPoolExecutor(
        max_workers=max(1, min(max_parallel, len(specs))), thread_name_prefix="acpcheck-gather"
    ) as executor:
        futures = {
            executor.submit(gather_node, plan, spec, timeouts=timeouts, known_hosts=known, pool=pool): spec.name
            for spec in specs
        }
        for done, future in enumerate(as_completed(futures), start=1):
            name = futures[future]
            results[name] = future.result()
            if progress is not None:
                progress(done, len(specs), name, isinstance(results[name], NodeFacts))
    return {spec.name: results[spec.name] for spec in specs}
