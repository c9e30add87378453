"""Connectivity between the nodes, and from a workload cluster to the global cluster.

Node preprocessing X1: no network firewall restrictions between the nodes of a
cluster; firewalls between nodes are among the most common install failures. Before
install, every node listens on the ports others must reach on it and connects to
every other node (``acpcheck.sources.connectivity``; ports from
``acpcheck/matrix/ports.yaml``).

What makes each check FAIL (the lab scenario ``lb-firewall``):

- ACP-CONN-001: a node whose connection to another node's control-plane or CNI port
  times out or is refused (e.g. an nftables rule on the other node that drops it).
- ACP-CONN-002: a workload node that cannot open a TCP connection to the global
  cluster's ``cpaas.io/platform-url`` address.
- ACP-CONN-003: a workload node that cannot reach the global registry on 11443.
"""

from __future__ import annotations

from collections import defaultdict

from acpcheck import NodeContext, Scope, Severity, When, check, fail, manual, skip
from acpcheck.checks.support import before_install, conclude, listed
from acpcheck.constants import ACP_DOCS, ON_PREMISES, PLATFORM_URL_PAGE, PREPROCESSING, PREREQUISITES
from acpcheck.sources.base import TargetUnavailable
from acpcheck.sources.connectivity import (
    ALL_PAIRS_UP_TO,
    SAMPLED_PEERS,
    ConnEvidence,
    GlobalResult,
    Pair,
)
from acpcheck.sources.nodeside import manual_listener

REGISTRY_ADDRESS_PAGE = f"{ACP_DOCS}/4.3/configure/clusters/how-to/add-external-address-for-built-in-registry.html"


def _proof(connectivity: ConnEvidence) -> ConnEvidence:
    if connectivity.mode == "live":
        skip(f"{connectivity.reason}; the pre-install proof needs the ports free")
    if connectivity.mode != "proof":
        skip(connectivity.reason or f"no connectivity proof ({connectivity.mode})")
    return connectivity


def _port_names(node: NodeContext) -> dict[tuple[int, str], str]:
    from acpcheck.model.ports import connectivity_ports

    return {(port.port, port.protocol): port.name for port in connectivity_ports(node.plan)}


def _grouped(pairs: list[Pair], names: dict[tuple[int, str], str]) -> list[str]:
    """One line per peer: ``cp3: 6443/tcp (apiserver) timeout, 2379/tcp (etcd-client) timeout``,
    ports in the order of the port matrix (each node probes in its own shuffled order)."""
    rank = {key: index for index, key in enumerate(names)}
    by_peer: dict[str, list[str]] = defaultdict(list)
    for pair in sorted(pairs, key=lambda pair: (rank.get((pair.port, pair.protocol), len(rank)), pair.port)):
        label = f"{pair.port}/{pair.protocol}"
        if (pair.port, pair.protocol) in names:
            label += f" ({names[(pair.port, pair.protocol)]})"
        detail = (
            f" ({pair.detail})"
            if pair.detail and pair.outcome in ("foreign", "stale", "node", "unreachable", "busy", "error", "notool")
            else ""
        )
        by_peer[pair.to].append(f"{label} {pair.outcome}{detail}")
    return [f"{peer}: {', '.join(items)}" for peer, items in sorted(by_peer.items())]


@check(
    id="ACP-CONN-001",
    title="this node reaches every control-plane node on the control-plane ports and every node on the CNI's ports",
    severity=Severity.HIGH,
    scope=Scope.NODE,
    applies=before_install(),
    refs=[PREPROCESSING, PREREQUISITES],
    remediation=(
        "Open the ports named between these nodes (host firewalls, security groups, ACLs): ACP requires no firewall "
        "restrictions between the nodes of a cluster."
    ),
    tags={"connectivity"},
)
def check_node_reaches_peers(node: NodeContext, connectivity: ConnEvidence) -> None:
    """Node preprocessing requires 'no network firewall restrictions between nodes of
    the cluster'. Every node listens on the ports others must reach on it (6443, 2379,
    2380 and the CNI's control-plane ports on control-plane nodes; the kubelet's 10250
    and the CNI's tunnel or BGP port on every node) and answers with its name, and
    every node connects to the others: all of them up to 50 nodes; above that every
    control-plane node and 24 peers, each node probed by as many. A pair that gave no
    answer is tried once more before it counts, and a connector that ran out of time
    runs once more after the others (the numbers, the 2 s connect timeout and the
    second tries are ours).

    One root cause, one result: a pair that could not be proven because of the *peer*
    (its listener did not start or ended during the probe, it has no listener tool,
    the port is in use there)
    says nothing about this node and is left to the peer's own result, which names
    the ports others could not prove and why (MANUAL; a busy port also FAILs
    ACP-NODE-019/020 there). This node is MANUAL only for what it could not prove
    itself (no connector tool here). Never FAIL for what was not proven."""
    connectivity = _proof(connectivity)
    result = connectivity.nodes.get(node.name)
    if result is None:
        state = connectivity.listeners.get(node.name)
        raise TargetUnavailable(
            node.spec.target, "unreachable", state.detail if state else "no connection was made from this node"
        )
    if result.error:
        raise TargetUnavailable(node.spec.target, "probe", f"the connections could not be made: {result.error}")
    names = _port_names(node)
    findings = [f"{node.name} cannot reach {line}" for line in _grouped(result.failed, names)]
    own = [pair for pair in result.unproven if not _peer_is_why(connectivity, pair)]
    unknown = _own_unproven(node.name, own, names) + _not_proven_towards(node.name, connectivity, names)
    left_to_peers = len(result.unproven) - len(own)
    sampled = (
        f" (sampled: above {ALL_PAIRS_UP_TO} nodes each node probes the control plane and {SAMPLED_PEERS} peers)"
        if connectivity.sampled
        else ""
    )
    evidence = {
        "node": node.name,
        "proven": result.ok,
        "failed": len(result.failed),
        "unproven": len(own),
        "left_to_peers": left_to_peers,
        "sampled": connectivity.sampled,
    }
    if not findings and not unknown and not result.ok and left_to_peers:
        peers = sorted({pair.to for pair in result.unproven})
        skip(
            f"nothing to prove from {node.name}: no peer it probes could listen ({listed(peers)}; see "
            "ACP-CONN-001 on them)"
        )
    conclude([line + sampled for line in findings], unknown=unknown, **evidence)


def _peer_is_why(connectivity: ConnEvidence, pair: Pair) -> bool:
    """Whether an unproven pair is explained by the peer: its listener was not up on that port."""
    state = connectivity.listeners.get(pair.to)
    return (
        state is None
        or state.state != "ok"
        or state.port_state(pair.protocol, pair.port) != "ok"
        or pair.outcome == "ended"
    )


def _own_unproven(name: str, pairs: list[Pair], names: dict[tuple[int, str], str]) -> list[str]:
    """What this node could not prove itself: its connector had no tool (one line), or anything else per peer."""
    notool = [pair for pair in pairs if pair.outcome == "notool"]
    lines = []
    if notool:
        peer = next((pair for pair in notool if pair.protocol == "tcp"), notool[0])
        lines.append(
            f"{name} has no tool to connect with ({notool[0].detail or 'no python3, perl, socat or nc'}): "
            f"{len(notool)} "
            f"connections not proven; from {name} run e.g. `nc -zv{'u' if peer.protocol == 'udp' else ''} "
            f"{peer.to} {peer.port}` for each peer and port"
        )
    rest = [pair for pair in pairs if pair.outcome != "notool"]
    lines += [f"{name} -> {line} (not proven)" for line in _grouped(rest, names)]
    return lines


def _not_proven_towards(name: str, connectivity: ConnEvidence, names: dict[tuple[int, str], str]) -> list[str]:
    """What no other node could prove about reaching this one, because of this node: its listener."""
    state = connectivity.listeners.get(name)
    if state is None or state.state == "unreachable":
        return []
    if state.state == "notool":
        example = (
            10250
            if (10250, "tcp") in names
            else next((port for port, protocol in sorted(names) if protocol == "tcp"), 10250)
        )  # the kubelet's: every node's
        return [
            f"no node could prove it reaches {name}: {state.detail}; prove it by hand, port by port: "
            f"{manual_listener(name, 'tcp', example)}, then connect from another node"
        ]
    if state.state != "ok":
        return [f"no node could prove it reaches {name}: its listener did not start ({state.detail})"]
    lines = []
    if state.unproven_after_end:
        lines.append(
            f"{state.unproven_after_end} connections towards {name} not proven: its listener ended during the probe "
            f"({state.ended}); run again"
        )
    for spec, port_state in sorted(state.ports.items()):
        if port_state == "ok":
            continue
        protocol, port = spec.split("/")
        label = f"{port}/{protocol}" + (f" ({names[(int(port), protocol)]})" if (int(port), protocol) in names else "")
        kind, _, why = port_state.partition(" ")
        if kind == "busy":
            lines.append(
                f"{label} on {name}: not proven: the port is in use ({why}); it must be free before install "
                "(ACP-NODE-019/020)"
            )
        elif kind == "notool":
            lines.append(
                f"{label} on {name}: not proven: its listener tool ({state.tool}) serves TCP only; "
                f"{manual_listener(name, protocol, int(port))}"
            )
        else:
            lines.append(f"{label} on {name}: not proven: the listener could not bind it ({port_state})")
    return lines


def _global(node: NodeContext, connectivity: ConnEvidence, name: str, what: str) -> GlobalResult:
    connectivity = _proof(connectivity)
    target = next((t for t in connectivity.global_targets if t.name == name), None)
    if target is None:
        skip(f"the plan names no {what} (spec.cluster.annotations[cpaas.io/platform-url], spec.registry.address)")
    results = [r for r in connectivity.global_results.get(node.name, []) if r.name == name]
    if not results:
        result = connectivity.nodes.get(node.name)
        why = result.error if result is not None and result.error else "no connection was made from this node"
        raise TargetUnavailable(node.spec.target, "unreachable", why)
    found = results[0]
    if found.outcome == "notool":
        manual(f"no connector tool on {node.name}: run `nc -zv {found.host} {found.port}` there (from {target.source})")
    return found


#: The global targets: a workload cluster that ACP builds, before install.
WORKLOAD_BEFORE_INSTALL = When(
    cluster_roles=frozenset({"workload"}),
    cluster_types=frozenset({"on-premise", "hosted-control-plane"}),
    upgrade=False,
)


def _require_connected(node: NodeContext, connectivity: ConnEvidence, name: str, what: str) -> None:
    """FAIL unless this node opened a TCP connection to the global target ``name``."""
    found = _global(node, connectivity, name, what)
    if found.outcome != "connected":
        fail(
            f"{node.name} cannot open a TCP connection to the {what} {found.host}:{found.port}: {found.outcome}"
            + (f" ({found.detail})" if found.detail else ""),
            host=found.host,
            port=found.port,
        )


@check(
    id="ACP-CONN-002",
    title="this node reaches the global cluster's platform address (cpaas.io/platform-url)",
    severity=Severity.HIGH,
    scope=Scope.NODE,
    applies=WORKLOAD_BEFORE_INSTALL,
    refs=[PLATFORM_URL_PAGE, ON_PREMISES],
    remediation="Route and open HTTPS from every workload node to the cpaas.io/platform-url address; its port must "
    "forward to all global control-plane nodes.",
    tags={"connectivity", "global"},
)
def check_reaches_platform_url(node: NodeContext, connectivity: ConnEvidence) -> None:
    """Workload clusters reach the global cluster through the address in the
    cluster's cpaas.io/platform-url annotation (access from workload to global must
    work both ways). Every node of the workload cluster opens a TCP connection to it
    (2 s timeout, ours)."""
    _require_connected(node, connectivity, "platform-url", "platform URL")


@check(
    id="ACP-CONN-003",
    title="this node reaches the global registry on port 11443",
    severity=Severity.HIGH,
    scope=Scope.NODE,
    applies=WORKLOAD_BEFORE_INSTALL,
    refs=[PREREQUISITES, REGISTRY_ADDRESS_PAGE],
    remediation="Route and open TCP 11443 from every workload node to the global registry address, or give the "
    "registry an external address workload nodes can reach.",
    tags={"connectivity", "global"},
)
def check_reaches_global_registry(node: NodeContext, connectivity: ConnEvidence) -> None:
    """Workload nodes pull images from the global cluster's built-in registry
    (<host>:11443): a node that cannot reach it cannot start a single platform pod.
    The address is spec.registry.address when set, else the host of the platform URL."""
    _require_connected(node, connectivity, "registry", "global registry")
