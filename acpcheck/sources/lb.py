"""Load-balancer evidence: proof that the endpoint forwards every port to every
control-plane node, and the self-built VIP's state (pre-install).

``LoadBalancerSource`` (``lb``, order 10: after node facts, which say which nodes
answer and which ports are already taken):

- **external load balancer** (``spec.endpoint.selfBuiltVIP.enabled`` false): on every
  control-plane node a listener (``nodeside``) answers on each required port
  (``acpcheck.matrix.ports``) with the node's name and this run's nonce; the runner
  connects to ``endpoint:port`` (through ``spec.ssh.proxy`` when set), per port in
  parallel, again and again until every listening node has answered or
  ``spec.loadBalancer.proofSeconds`` have passed; at most ``max_connections(n)``
  connections per port, spread over that time so that an LB whose health check
  needs a moment to see a new backend gets it. A port in use on a node (its facts)
  is never touched: that node/port pair is "not proven". Listeners are stopped
  when the proof ends, whatever the outcome; a runner that dies leaves them to the
  node, which ends them at their deadline (and as soon as it notices the runner's
  connection is gone).
- **self-built VIP**: whether anything holds the VIP yet (a node's own addresses
  in its facts; from a control-plane node: TCP to the VIP and its ARP entry), and
  whether VRRP packets pass between the control-plane nodes (a raw-socket probe as
  root with python3: VRRP's IP protocol 112 to 224.0.0.18, marked with the nonce
  and with version 0 so that no VRRP speaker acts on it).
- **post-install** (``live_reason(plan)``: ``spec.kubeconfig`` or
  ``ACPCHECK_KUBECONFIG`` set, or ``ACPCHECK_LIVE=1``): nothing here; the cluster's
  own listeners hold the ports. The ``api_tls`` source (``acpcheck.sources.api_tls``)
  takes over.
"""

from __future__ import annotations

import secrets
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from acpcheck.sources.base import EvidenceDocument, GatherContext, JsonEvidenceSource, nodes_to_probe
from acpcheck.sources.nodeside import (
    ListenerSet,
    ListenerState,
    Target,
    busy_ports,
    connector_command,
    connector_input,
    identity,
    node_program,
    parse_connector,
    probe,
)

if TYPE_CHECKING:
    from acpcheck.model.plan import ClusterPlan, Node

#: Seconds a listener may live beyond the proof itself (start, stop, a slow node).
LISTENER_MARGIN = 15.0
VRRP_GROUP = "224.0.0.18"


def max_connections(backends: int) -> int:
    """The count bound of one port's proof: enough that a random or least-connection LB
    misses a backend with probability below 1e-4 (n·(1-1/n)^k), at least 24."""
    return max(24, 16 * backends)


def _model_config() -> ConfigDict:
    return ConfigDict(extra="forbid")


class PortProof(BaseModel):
    """What the connections to ``endpoint:port`` brought back."""

    model_config = _model_config()

    name: str
    port: int
    source: str
    #: identities of the nodes that listened on this port (and so could answer)
    expected: list[str] = Field(default_factory=list)
    #: node name -> connections it answered
    answered: dict[str, int] = Field(default_factory=dict)
    #: what else came back: refused, timeout, unreachable, closed, silent, foreign, stale -> count
    outcomes: dict[str, int] = Field(default_factory=dict)
    #: one example message per outcome kind
    details: dict[str, str] = Field(default_factory=dict)
    connections: int = 0
    seconds: float = 0.0
    #: why the port was not probed at all (no node could listen on it)
    skipped: str = ""


class VipState(BaseModel):
    model_config = _model_config()

    address: str
    #: nodes that carry the VIP on an interface already (facts)
    holders: list[str] = Field(default_factory=list)
    #: the node that probed the VIP, and what each port gave ("refused", "timeout", …)
    probed_from: str = ""
    ports: dict[str, str] = Field(default_factory=dict)
    #: `ip neigh` line for the VIP on the probing node (a lladdr there: someone answers ARP)
    neighbour: str = ""
    error: str = ""


class VrrpState(BaseModel):
    model_config = _model_config()

    #: could not be proven: why (no python3, no root) and what to do by hand
    manual: str = ""
    #: sender -> receivers that got its packets
    received: dict[str, list[str]] = Field(default_factory=dict)
    #: nodes that took part (sent and listened)
    nodes: list[str] = Field(default_factory=list)
    #: node -> why it could not take part
    failed: dict[str, str] = Field(default_factory=dict)


class RegistryAddressProof(BaseModel):
    """The same proof for the built-in registry's external domain (ACP-REG-007): its address
    (the plan's ``spec.registry.externalAddress.address``, else the domain as the runner resolves
    it) forwarding the platform's HTTPS port to every control-plane node, with the endpoint's
    listeners."""

    model_config = _model_config()

    domain: str
    address: str = ""
    #: plan (externalAddress.address) | literal (the domain is an IP) | dns (resolved by the runner)
    resolved_by: str = ""
    #: why there is no proof (the domain does not resolve, the HTTPS port is dropped)
    error: str = ""
    ports: list[PortProof] = Field(default_factory=list)


class LbEvidence(EvidenceDocument):
    """The ``lb`` evidence. mode: proof (external LB) | vip (self-built VIP) | live
    (post-install: nothing gathered) | none (nothing to prove) | error."""

    schema_: str = Field(default="acpcheck/lb/v1", alias="schema")
    endpoint: str | None = None
    ports: list[PortProof] = Field(default_factory=list)
    listeners: dict[str, ListenerState] = Field(default_factory=dict)
    vip: VipState | None = None
    vrrp: VrrpState | None = None
    seconds: float = 0.0
    #: the registry external address's proof (a global plan with spec.registry.externalAddress)
    registry: RegistryAddressProof | None = None

    @property
    def connections(self) -> int:
        return sum(port.connections for port in self.ports)

    def node_of(self, ident: str) -> str:
        """The plan node name behind a listener identity."""
        for state in self.listeners.values():
            if state.ident == ident:
                return state.node
        return ident


# ---------------------------------------------------------------------------


class LoadBalancerSource(JsonEvidenceSource):
    name: ClassVar[str] = "lb"
    order: ClassVar[int] = 10
    model = LbEvidence
    what = "load-balancer evidence"

    def idle_fields(self, plan: ClusterPlan) -> dict[str, Any]:
        return {"endpoint": plan.spec.endpoint.address}

    def collect(self, context: GatherContext, reason: str | None) -> LbEvidence:
        plan = context.plan
        endpoint = plan.spec.endpoint.address
        if not endpoint:
            return LbEvidence(mode="none", reason="the plan gives no endpoint address (spec.endpoint.address)")
        if not plan.control_plane:
            return LbEvidence(mode="none", reason="the plan lists no control-plane node", endpoint=endpoint)
        facts = context.gathered.get("nodes")  # None when the selected checks needed no node facts
        if plan.spec.endpoint.self_built_vip.enabled:
            evidence = _gather_vip(context, endpoint, facts)
        else:
            evidence = _gather_proof(context, endpoint, facts)
        return evidence


def _gather_proof(context: GatherContext, endpoint: str, facts: dict[str, Any] | None) -> LbEvidence:
    from acpcheck.model.ports import lb_ports
    from acpcheck.transport.settings import proxy_for

    plan = context.plan
    ports = lb_ports(plan)
    nonce = secrets.token_hex(8)
    seconds = plan.spec.load_balancer.proof_seconds
    nodes, failed = nodes_to_probe(context, plan.control_plane)
    index = {node.name: i for i, node in enumerate(plan.spec.nodes)}
    evidence = LbEvidence(mode="proof", endpoint=endpoint)
    for name, why in failed.items():
        evidence.listeners[name] = ListenerState(
            node=name, ident=identity(name, index[name]), state="unreachable", detail=why
        )

    wanted = []
    for node in nodes:
        specs = [("tcp", port.port) for port in ports]
        known = busy_ports((facts or {}).get(node.name), specs)
        wanted.append(
            (
                node,
                identity(node.name, index[node.name]),
                [spec for spec in specs if f"{spec[0]}/{spec[1]}" not in known],
                known,
            )
        )
    proxy = proxy_for(plan)
    connect_timeout = min(plan.spec.ssh.connect_timeout_seconds, 3.0)
    registry = registry_address_proof(plan)  # resolved before any listener starts
    with ListenerSet(context.pool, nonce, seconds + LISTENER_MARGIN) as listeners:
        states = listeners.start(wanted)
        if context.progress is not None:
            for done, state in enumerate(states.values(), 1):
                context.progress("lb", done, len(states), state.node, state.state == "ok")

        def prove(port: Any, address: str = endpoint) -> PortProof:
            expected = [s.ident for s in states.values() if s.state == "ok" and s.port_state("tcp", port.port) == "ok"]
            return prove_port(
                address,
                port.name,
                port.port,
                port.source,
                expected,
                nonce,
                proxy=proxy,
                seconds=seconds,
                connect_timeout=connect_timeout,
                cancelled=listeners.lost,
            )

        # The registry external domain's address (ACP-REG-007) is proven at the same time, on the same listeners.
        extra = [port for port in ports if port.name == "https"] if registry is not None and registry.address else []
        with ThreadPoolExecutor(max_workers=max(1, len(ports) + len(extra)), thread_name_prefix="acpcheck-lb") as pool:
            at_registry = [pool.submit(prove, port, registry.address) for port in extra] if registry else []
            evidence.ports = list(pool.map(prove, ports))
            if registry is not None:
                registry.ports = [future.result() for future in at_registry]
                if registry.address and not extra:
                    registry.error = "the plan drops the https port (spec.loadBalancer.ports)"
        evidence.registry = registry
    evidence.listeners.update(listeners.states)
    evidence.listeners = {
        node.name: evidence.listeners[node.name] for node in plan.control_plane if node.name in evidence.listeners
    }
    return evidence


def prove_port(
    endpoint: str,
    name: str,
    port: int,
    source: str,
    expected: list[str],
    nonce: str,
    *,
    proxy: Any,
    seconds: float,
    connect_timeout: float = 3.0,
    cancelled: Callable[[], bool] = lambda: False,
) -> PortProof:
    """Connect to ``endpoint:port`` until every ``expected`` identity answered, the count
    bound is reached or ``seconds`` have passed. Connections that reveal nothing new
    are spread evenly over ``seconds``; failures back off (50 ms doubling to 0.5 s).
    ``cancelled`` ends it early (the listeners are gone: the run was interrupted)."""
    proof = PortProof(name=name, port=port, source=source, expected=sorted(expected))
    if not expected:
        proof.skipped = "no control-plane node could listen on this port"
        return proof
    cap = max_connections(len(expected))
    spacing = seconds / cap
    started = time.monotonic()
    end = started + seconds
    seen: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    backoff = 0.05
    while proof.connections < cap and time.monotonic() < end and not set(expected) <= set(seen) and not cancelled():
        answer = probe(
            endpoint, port, nonce, proxy=proxy, timeout=max(0.2, min(connect_timeout, end - time.monotonic()))
        )
        proof.connections += 1
        pause = 0.0
        if answer.kind == "node":
            pause = 0.0 if seen[answer.ident] == 0 else spacing
            seen[answer.ident] += 1
            backoff = 0.05
        else:
            outcomes[answer.kind] += 1
            proof.details.setdefault(answer.kind, answer.detail)
            pause, backoff = backoff, min(0.5, backoff * 2)
        if pause:
            time.sleep(max(0.0, min(pause, end - time.monotonic())))
    proof.answered = dict(sorted(seen.items()))
    proof.outcomes = dict(sorted(outcomes.items()))
    proof.seconds = round(time.monotonic() - started, 3)
    return proof


def registry_address_proof(plan: ClusterPlan) -> RegistryAddressProof | None:
    """Where the registry external domain's proof connects: the plan's address for the domain,
    the domain itself when it is an IP, else what the runner's resolver gives for it (the first
    address); None when the plan has no external address for the registry."""
    import socket

    from acpcheck.addressing import is_ip

    external = plan.spec.registry.external_address
    if external is None or plan.spec.cluster.role != "global":
        return None
    proof = RegistryAddressProof(domain=external.domain)
    if external.address:
        proof.address, proof.resolved_by = external.address, "plan"
    elif is_ip(external.domain):
        proof.address, proof.resolved_by = external.domain, "literal"
    else:
        try:
            found = socket.getaddrinfo(external.domain, 443, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as error:
            proof.error = f"{external.domain} does not resolve on the runner ({error})"
            return proof
        proof.address, proof.resolved_by = str(found[0][4][0]), "dns"
    return proof


# ---------------------------------------------------------------------------
# Self-built VIP


def _gather_vip(context: GatherContext, vip: str, facts: dict[str, Any] | None) -> LbEvidence:
    from acpcheck.model.ports import lb_ports
    from acpcheck.transport.errors import TransportError

    plan = context.plan
    nodes, failed = nodes_to_probe(context, plan.control_plane)
    state = VipState(address=vip)
    for name, node_facts in (facts or {}).items():
        for address in getattr(node_facts, "addresses", None) or ():
            if address.address == vip:
                state.holders.append(name)
    nonce = secrets.token_hex(8)
    if nodes:
        prober = nodes[0]
        state.probed_from = prober.name
        ports = sorted({22, *(port.port for port in lb_ports(plan))})
        targets = [Target("tcp", vip, port, "tcp") for port in ports]
        try:
            session = context.pool.session(prober)
            result = session.run(connector_command(2.0), timeout=30, stdin=connector_input(targets))
            answers = parse_connector(result.stdout, len(targets), nonce)
            state.ports = {str(port): answer.kind for port, answer in zip(ports, answers, strict=True)}
            neighbour = session.run(f"ip -4 neigh show to {vip} 2>/dev/null || ip neigh show {vip}", timeout=10)
            state.neighbour = neighbour.stdout.strip()
        except TransportError as error:
            state.error = f"{error.kind}: {error.message}"
    else:
        state.error = "no control-plane node could be reached to probe the VIP from"
    vrrp = _gather_vrrp(context, nodes, failed, nonce)
    return LbEvidence(mode="vip", endpoint=vip, vip=state, vrrp=vrrp)


VRRP_MANUAL = (
    "prove it by hand: on each control-plane node run `tcpdump -ni <nic> vrrp` (or `ip protocol 112`) while keepalived "
    "runs on another with a spare VRID (or send any IP protocol 112 packet to 224.0.0.18); every node must "
    "see every other one"
)


def _python_line(code: str, *args: str) -> str:
    import shlex

    quoted = " ".join(shlex.quote(arg) for arg in args)
    return (
        f"C={shlex.quote(code)}\n"
        "for P in python3 platform-python /usr/libexec/platform-python; do\n"
        '  case $P in /*) [ -x "$P" ] || continue ;; *) command -v "$P" >/dev/null 2>&1 || continue ;; esac\n'
        f'  exec "$P" -c "$C" {quoted}\n'
        "done\n"
        "echo acpcheck-notool; exit 3"
    )


def _gather_vrrp(context: GatherContext, nodes: list[Node], failed: dict[str, str], nonce: str) -> VrrpState:
    """Every control-plane node listens for VRRP (as root), then each sends three packets."""
    from acpcheck.transport.errors import TransportError

    state = VrrpState(failed=dict(failed))
    if len(nodes) + len(failed) < 2:
        return state  # one node: nothing to pass between
    index = {node.name: i for i, node in enumerate(context.plan.spec.nodes)}
    idents = {node.name: identity(node.name, index[node.name]) for node in nodes}
    handles: dict[str, Any] = {}

    def start(node: Node) -> tuple[str, Any, str]:
        ip = str(node.ipv4) if node.ipv4 is not None else ""
        if not ip:
            return node.name, None, "VRRP over IPv6 is not probed"
        try:
            handle = context.pool.session(node).start(
                _python_line(node_program("vrrp_receiver.py"), nonce, ip), deadline=20, as_root=True
            )
        except TransportError as error:
            return node.name, None, f"{error.kind}: {error.message}"
        end = time.monotonic() + READY_SECONDS
        while handle.running() and time.monotonic() < end and "acpcheck-ready" not in handle.output()[0]:
            time.sleep(0.02)
        out, err = handle.output()
        if "acpcheck-ready" in out:
            return node.name, handle, ""
        handle.stop()
        why = (
            "no python3 on the node"
            if "acpcheck-notool" in out
            else (err.strip().splitlines() or ["the receiver did not start"])[-1][:200]
        )
        return node.name, None, why

    try:
        with ThreadPoolExecutor(max_workers=max(1, len(nodes))) as executor:
            for name, handle, why in executor.map(start, nodes):
                if handle is not None:
                    handles[name] = handle
                else:
                    state.failed[name] = why

        def send(node: Node) -> tuple[str, str]:
            try:
                result = context.pool.session(node).run_as_root(
                    _python_line(node_program("vrrp_sender.py"), nonce, idents[node.name], str(node.ipv4)), timeout=15
                )
            except TransportError as error:
                return node.name, f"{error.kind}: {error.message}"
            return node.name, "" if "acpcheck-sent" in result.stdout else (
                result.stderr.strip().splitlines() or ["could not send"]
            )[-1][:200]

        senders = [node for node in nodes if node.name in handles]
        with ThreadPoolExecutor(max_workers=max(1, len(senders))) as executor:
            for name, why in executor.map(send, senders):
                if why:
                    state.failed[name] = why
        time.sleep(0.3)
    finally:
        outputs = {}
        for name, handle in handles.items():
            try:
                handle.stop()
            except TransportError:
                pass
            outputs[name] = handle.output()[0]
    by_ident = {ident: name for name, ident in idents.items()}
    state.nodes = sorted(name for name in handles if name not in state.failed)
    received: dict[str, set[str]] = {name: set() for name in state.nodes}
    for receiver, out in outputs.items():
        for line in out.splitlines():
            words = line.split()
            if len(words) == 3 and words[0] == "acpcheck-vrrp-from" and by_ident.get(words[2]) in received:
                received[by_ident[words[2]]].add(receiver)
    state.received = {sender: sorted(receivers) for sender, receivers in received.items()}
    if len(state.nodes) < 2 and state.failed:
        state.manual = "; ".join(f"{name}: {why}" for name, why in sorted(state.failed.items()))
    return state


READY_SECONDS = 10.0
