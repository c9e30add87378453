"""The load balancer in front of the cluster: it forwards every required port to
every control-plane node (before install: proven with listeners on the nodes), a
self-built VIP is free and VRRP passes, and after install the API servers behind it
serve the right certificates and all answer.

The evidence is ``acpcheck.sources.lb`` (``lb`` before install) and
``acpcheck.sources.api_tls`` (``api_tls`` after); the required ports are data
(``acpcheck/matrix/ports.yaml``, overridable in ``spec.loadBalancer.ports``).

What makes each check FAIL (the lab scenarios in lab/acpcheck_lab/scenarios/lb-*.yaml):

- ACP-LB-001: a required port that the endpoint refuses (not forwarded), does not
  answer at all (endpoint down), or accepts without any control-plane node behind it.
- ACP-LB-002: a control-plane node that never answered on a port that others answered
  on (a backend missing from the LB), or a node the LB never sends anyone to.
- ACP-LB-003: an answer through the endpoint from something that is not a
  control-plane node of the plan (another service, a stale acpcheck listener).
- ACP-LB-004: a self-built VIP that something already holds (a node carries it, a
  host answers on it, it resolves in ARP).
- ACP-LB-005: VRRP packets from one control-plane node that another never receives.
- ACP-LB-006 … 010 (after install): a certificate without the endpoint or a
  publicAlternativeNames entry among its SANs; one expiring within 10 or 30 days; a
  control-plane node whose API server does not answer; an endpoint that never
  reaches some control-plane node.
"""

from __future__ import annotations

from collections.abc import Iterable

from netaddr import AddrFormatError, IPAddress

from acpcheck import NodeContext, Scope, Severity, When, check, fail, fail_if, manual, skip
from acpcheck.checks.support import conclude, listed, some_lines, some_names
from acpcheck.constants import ACP_DOCS, GLOBAL_DR, ON_PREMISES, PREREQUISITES
from acpcheck.model.plan import ClusterPlan
from acpcheck.sources.api_tls import ApiTlsEvidence, TlsProbe
from acpcheck.sources.base import TargetUnavailable
from acpcheck.sources.lb import VRRP_MANUAL, LbEvidence, PortProof, max_connections
from acpcheck.sources.nodeside import manual_listener

CERT_MONITORING = f"{ACP_DOCS}/4.3/security/cert/certificate-monitoring.html"
HEALTH_CHECK_KB = (
    "https://github.com/alauda/knowledge/blob/main/docs/en/solutions/How_to_add_healthcheck_for_acp_clusters.md"
)

#: Days before expiry at which ACP's certificate monitoring raises High and Medium
#: alerts (and Critical at 0): the certificate-monitoring page.
HIGH_ALERT_DAYS = 10
MEDIUM_ALERT_DAYS = 30

#: The pre-install proof needs an LB in front of nodes ACP installs itself.
EXTERNAL_LB = When(cluster_types=frozenset({"on-premise"}), self_built_vip=False, upgrade=False)
SELF_BUILT_VIP = When(cluster_types=frozenset({"on-premise"}), self_built_vip=True, upgrade=False)
LIVE = When(cluster_types=frozenset({"on-premise", "immutable"}))
CONTROL_PLANE = frozenset({"control-plane"})


def _proof(lb: LbEvidence) -> LbEvidence:
    """The evidence of an external-LB proof, or SKIP saying why there is none."""
    if lb.mode == "live":
        skip(f"{lb.reason}; the pre-install proof needs the ports free (ACP-LB-006 to 010 probe the live cluster)")
    if lb.mode == "vip":
        skip("not applicable: the endpoint is a self-built VIP (ACP-LB-004 and ACP-LB-005 check it)")
    if lb.mode != "proof":
        skip(lb.reason or f"no load-balancer proof ({lb.mode})")
    return lb


def _example(proof: PortProof, *kinds: str) -> str:
    for kind in kinds:
        if proof.details.get(kind):
            return f" (e.g. {proof.details[kind]})"
    return ""


def nobody_answered(proof: PortProof, where: str) -> str:
    """Why no control-plane node answered any connection to ``where`` (``address:port``) in ``proof``
    (ACP-LB-001, and ACP-REG-007 for the registry's external domain)."""
    kinds = set(proof.outcomes)
    if kinds <= {"refused"}:
        return (
            f"port {proof.port} ({proof.name}): {where} refused every connection: the endpoint does not forward "
            "this port"
        )
    if kinds <= {"timeout", "unreachable"}:
        return (
            f"port {proof.port} ({proof.name}): {where} did not answer (no TCP connection): the endpoint is down or "
            "filtered"
        )
    if kinds & {"foreign", "stale"}:
        return (
            f"port {proof.port} ({proof.name}): no control-plane node answered through {where}; something else did"
            + _example(proof, "foreign", "stale")
            + " (see ACP-LB-003)"
        )
    return (
        f"port {proof.port} ({proof.name}): {where} accepted connections but no control-plane node answered: "
        "the LB forwards this port to no live backend"
    )


@check(
    id="ACP-LB-001",
    title="the endpoint answers on every required port, with a control-plane node behind it",
    severity=Severity.CRITICAL,
    scope=Scope.NODE,
    applies=EXTERNAL_LB,
    refs=[ON_PREMISES, PREREQUISITES, GLOBAL_DR],
    remediation=(
        "Make the load balancer listen on every required port of the endpoint (workload: 6443, 11780, 11781; global: "
        "443, 6443, 11443, plus 2379 with DR) and forward each, over TCP, to the same port on every control-plane node."
    ),
    tags={"lb"},
)
def check_endpoint_answers(lb: LbEvidence) -> None:
    """The installer and every node reach the API server, the registry and the
    platform through the endpoint: a port the LB does not forward breaks the install.
    acpcheck connects to each port repeatedly while a listener on every control-plane
    node answers with its name; this check reports the ports where no node answered at
    all, and why (refused: not forwarded; no answer: the endpoint is down or filtered;
    accepted then closed: forwarded to no live backend). The number of connections and
    the time bound are ours, not ACP's (spec.loadBalancer.proofSeconds)."""
    lb = _proof(lb)
    findings, unproven = [], []
    for proof in lb.ports:
        where = f"{lb.endpoint}:{proof.port}"
        if proof.skipped:
            unproven.append(f"port {proof.port} ({proof.name}): not probed: {proof.skipped} (see ACP-LB-002)")
            continue
        if not proof.answered:
            findings.append(nobody_answered(proof, where))
    evidence = {
        "endpoint": lb.endpoint,
        "ports": {
            str(p.port): {"name": p.name, "answered": p.answered, "outcomes": p.outcomes, "details": p.details}
            for p in lb.ports
        },
    }
    conclude(findings, unknown=unproven, **evidence)


@check(
    id="ACP-LB-002",
    title="the load balancer forwards every required port to this control-plane node",
    severity=Severity.HIGH,
    scope=Scope.NODE,
    roles=CONTROL_PLANE,
    applies=EXTERNAL_LB,
    refs=[ON_PREMISES, PREREQUISITES, HEALTH_CHECK_KB],
    remediation=(
        "Add this node to the load balancer's backends of the ports named (the same port on the node), and check the "
        "LB's health check (TCP on the port, as the ACP knowledge base recommends) marks it up."
    ),
    tags={"lb"},
)
def check_lb_reaches_node(node: NodeContext, lb: LbEvidence) -> None:
    """ACP requires the LB to forward each port to all control-plane nodes: one left
    out passes every health page and fails the day another node goes down. Before
    install, a listener on this node answers on each required port with the node's
    name and this run's nonce; the runner connects to the endpoint repeatedly (at most
    max(24, 16 x nodes) connections per port, spread over proofSeconds, stopping once
    every node answered: both bounds are ours). A port already in use here cannot be
    proven (it must be free anyway: ACP-NODE-019) and is MANUAL, never FAIL. A port on
    which no node answered at all is ACP-LB-001's FAIL, not this node's: this check
    then SKIPs naming it (one root cause, one FAIL)."""
    lb = _proof(lb)
    state = lb.listeners.get(node.name)
    if state is None or state.state == "unreachable":
        raise TargetUnavailable(
            node.spec.target, "unreachable", state.detail if state else "no listener was started on this node"
        )
    if state.state == "error":
        raise TargetUnavailable(node.spec.target, "probe", f"the listener did not start: {state.detail}")
    missed, by_hand, explained = [], [], []
    for proof in lb.ports:
        label = f"port {proof.port} ({proof.name})"
        if state.state == "notool":
            by_hand.append(
                f"{label}: {manual_listener(node.name, 'tcp', proof.port)}, then connect to {lb.endpoint}:{proof.port} "
                f"about {max_connections(3)} times and see {node.name} answer"
            )
            continue
        port_state = state.port_state("tcp", proof.port)
        if port_state != "ok":
            kind, _, why = port_state.partition(" ")
            seen = (
                f"in use on {node.name} ({why})"
                if kind == "busy"
                else f"not listened on by {node.name} ({port_state or 'no listener'})"
            )
            by_hand.append(
                f"{label}: not proven: the port is {seen}; it must be free before install (ACP-NODE-019): "
                "free it and run again"
            )
            continue
        if state.ident in proof.answered:
            continue
        if not proof.answered:
            explained.append(label)  # one root cause, one FAIL: ACP-LB-001's
            continue
        others = sorted(lb.node_of(ident) for ident in proof.answered)
        pinned = ""
        if len(others) == 1 and len(proof.expected) > 1:
            pinned = (
                f"; every connection went to {others[0]}: an LB that balances by client address sends one "
                "client to one node (check its algorithm)"
            )
        missed.append(
            f"{label}: connections to {lb.endpoint}:{proof.port} reached {listed(others)}, never {node.name}{pinned}"
        )
    evidence = {
        "endpoint": lb.endpoint,
        "node": node.name,
        "tool": state.tool,
        "listener": state.ports,
        "answered": {str(p.port): {lb.node_of(ident): count for ident, count in p.answered.items()} for p in lb.ports},
        "connections": {str(p.port): p.connections for p in lb.ports},
        "ports_nobody_answered": explained,  # ACP-LB-001 FAILs for these
    }
    if explained and not missed and not by_hand:
        skip(
            f"no control-plane node answered through {lb.endpoint} at all on {listed(explained)}: "
            "ACP-LB-001 FAILs for that; "
            f"nothing about {node.name} alone can be told"
        )
    conclude(missed, unknown=by_hand, **evidence)


@check(
    id="ACP-LB-003",
    title="only the plan's control-plane nodes answer behind the endpoint",
    severity=Severity.HIGH,
    scope=Scope.NODE,
    applies=EXTERNAL_LB,
    refs=[ON_PREMISES, PREREQUISITES],
    remediation="Remove every backend from the LB that is not one of this cluster's control-plane nodes (old servers, "
    "another cluster's nodes).",
    tags={"lb"},
)
def check_only_plan_nodes_answer(lb: LbEvidence) -> None:
    """An LB that still forwards some connections to a decommissioned server or to
    another cluster sends a share of the API traffic to the wrong place. During the
    proof only this run's listeners know its nonce, so any other answer through the
    endpoint (another service's bytes, a stale acpcheck listener of an earlier run)
    comes from a backend that is not a control-plane node of this plan."""
    lb = _proof(lb)
    findings = []
    plan_idents = {state.ident for state in lb.listeners.values()}
    for proof in lb.ports:
        strangers = {kind: count for kind, count in proof.outcomes.items() if kind in ("foreign", "stale")}
        for ident, count in proof.answered.items():
            if ident not in plan_idents:
                strangers[f"listener {ident}"] = count
        if strangers:
            findings.append(
                f"port {proof.port} ({proof.name}): connections through {lb.endpoint}:{proof.port} were "
                "answered by something "
                "that is not a control-plane node of this plan" + _example(proof, "foreign", "stale")
            )
    fail_if(findings, endpoint=lb.endpoint)


def _vip(lb: LbEvidence) -> LbEvidence:
    if lb.mode == "live":
        skip(f"{lb.reason}; the VIP is in use by the cluster by now")
    if lb.mode == "proof":
        skip("not applicable: the endpoint is an external load balancer, not a self-built VIP")
    if lb.mode != "vip" or lb.vip is None:
        skip(lb.reason or "no self-built VIP evidence")
    return lb


@check(
    id="ACP-LB-004",
    title="the self-built VIP is free before install: nothing holds or answers on it",
    severity=Severity.HIGH,
    scope=Scope.NODE,
    applies=SELF_BUILT_VIP,
    refs=[ON_PREMISES],
    remediation="Choose a VIP that no machine uses (not a node's address, not another cluster's VIP), or free it.",
    tags={"lb", "vip"},
)
def check_vip_free(lb: LbEvidence) -> None:
    """keepalived claims the VIP during install; if another machine already has it,
    the two answer ARP for the same address and the API endpoint flaps. Before install
    nobody may hold it: no node carries it (facts), and probed from a control-plane
    node (same subnet: ACP-NODE-038) nothing answers TCP on it and it does not resolve
    in ARP. A refused connection counts as an answer: a host sent the reset."""
    lb = _vip(lb)
    vip = lb.vip
    assert vip is not None
    findings = [f"{name} already carries the VIP {vip.address} on an interface" for name in vip.holders]
    answered = {port: kind for port, kind in vip.ports.items() if kind not in ("timeout", "unreachable", "notool")}
    if answered:
        said = ", ".join(
            f"{port} {'refused (a host sent a reset)' if kind == 'refused' else 'accepted'}"
            for port, kind in sorted(answered.items(), key=lambda i: int(i[0]))
        )
        findings.append(f"something answers on {vip.address}, probed from {vip.probed_from}: port {said}")
    if "lladdr" in vip.neighbour.split():
        mac = vip.neighbour.split()[vip.neighbour.split().index("lladdr") + 1]
        findings.append(f"{vip.address} answers ARP on {vip.probed_from}'s network (lladdr {mac})")
    fail_if(findings, vip=vip.address, ports=vip.ports, neighbour=vip.neighbour)
    if vip.error:
        raise TargetUnavailable("node:*", "probe", f"could not probe the VIP: {vip.error}")


@check(
    id="ACP-LB-005",
    title="VRRP packets pass between every pair of control-plane nodes",
    severity=Severity.HIGH,
    scope=Scope.NODE,
    applies=SELF_BUILT_VIP,
    refs=[ON_PREMISES],
    remediation=(
        "Allow IP protocol 112 (VRRP) to multicast group 224.0.0.18 between the control-plane nodes: in the "
        "node firewalls, "
        "security groups and switches (some clouds drop multicast altogether: use an external LB there)."
    ),
    tags={"lb", "vip"},
)
def check_vrrp_passes(lb: LbEvidence) -> None:
    """A self-built VIP needs 'the host network to permit VRRP': keepalived on each
    control-plane node sends VRRP advertisements (IP protocol 112, to 224.0.0.18); a
    node that does not hear the master makes itself master too, and two nodes answer
    for the VIP. acpcheck sends such packets from every control-plane node (version 0,
    which every VRRP speaker discards, so no real group is disturbed) and listens on
    all of them, as root with python3; without those it is MANUAL with instructions."""
    lb = _vip(lb)
    vrrp = lb.vrrp
    if vrrp is None or (not vrrp.nodes and not vrrp.failed):
        skip("fewer than two control-plane nodes: VRRP has nobody to talk to")
    findings = []
    for sender in vrrp.nodes:
        # A set per sender: each pair is looked at once (the evidence holds every pair heard).
        heard = set(vrrp.received.get(sender, ()))
        missing = [receiver for receiver in vrrp.nodes if receiver != sender and receiver not in heard]
        if missing:
            findings.append(f"VRRP from {sender} never reached {some_names(missing)}")
    unproven = [f"not proven for {name}: {why}" for name, why in sorted(vrrp.failed.items())]
    conclude(
        some_lines(findings, "senders not heard by every node"),
        unknown=[*unproven, VRRP_MANUAL] if unproven else [],
        received=vrrp.received,
    )


# ---------------------------------------------------------------------------
# After install: TLS to the API servers


def _live(api_tls: ApiTlsEvidence) -> ApiTlsEvidence:
    if api_tls.mode != "live":
        skip(f"post-install mode only: {api_tls.reason or 'the cluster does not exist yet'}")
    return api_tls


def _served(api_tls: ApiTlsEvidence) -> list[tuple[str, TlsProbe]]:
    """Every distinct certificate seen, with who served it ("cp1", or "the endpoint")."""
    seen: dict[str, tuple[str, TlsProbe]] = {}
    for name, probe in api_tls.nodes.items():
        if probe.fingerprint:
            seen.setdefault(probe.fingerprint, (name, probe))
    for probe in api_tls.through_endpoint:
        if probe.fingerprint and probe.fingerprint not in seen:
            seen[probe.fingerprint] = (f"the endpoint {api_tls.endpoint}", probe)
    return list(seen.values())


def covers(sans: Iterable[str], name: str) -> bool:
    """Whether a certificate with these SANs is valid for ``name`` (an IP or a DNS name, wildcards allowed)."""
    try:
        wanted = IPAddress(name)
    except (AddrFormatError, ValueError):
        wanted = None
    for san in sans:
        if wanted is not None:
            try:
                if IPAddress(san) == wanted:
                    return True
            except (AddrFormatError, ValueError):
                continue
        else:
            san, host = san.lower().rstrip("."), name.lower().rstrip(".")
            if san == host or (san.startswith("*.") and host.count(".") == san.count(".") and host.endswith(san[1:])):
                return True
    return False


@check(
    id="ACP-LB-006",
    title="the API server certificates cover the endpoint and every publicAlternativeNames entry",
    severity=Severity.HIGH,
    scope=Scope.CLUSTER,
    applies=LIVE,
    refs=[ON_PREMISES],
    remediation="Add the missing names to the cluster's APIServer URL (publicAlternativeNames) and renew the API "
    "server certificates.",
    tags={"lb", "live"},
)
def check_api_certificate_names(plan: ClusterPlan, api_tls: ApiTlsEvidence) -> None:
    """Clients reach the API server through the endpoint and the addresses in
    publicAlternativeNames (the form's APIServer URL); each must be among the SANs of
    the certificate that every API server serves, or clients that verify it fail on
    whichever node the LB picks."""
    api_tls = _live(api_tls)
    wanted = [name for name in [api_tls.endpoint, *plan.spec.api_server.public_alternative_names] if name]
    findings = []
    for who, probe in _served(api_tls):
        missing = [name for name in wanted if not covers(probe.sans, name)]
        if missing:
            findings.append(
                f"the certificate served by {who} ({probe.subject}) lacks {listed(missing)} among its SANs "
                f"({listed(probe.sans)})"
            )
    if not _served(api_tls):
        raise TargetUnavailable(
            f"cluster:{plan.metadata.name}", "unreachable", "no API server served a certificate (see ACP-LB-009)"
        )
    fail_if(findings, wanted=wanted)


def _expiring(api_tls: ApiTlsEvidence, days: int) -> list[str]:
    lines = []
    for who, probe in _served(api_tls):
        if probe.days_left is None or probe.days_left > days:
            continue
        state = "expired" if probe.days_left <= 0 else f"expires in {probe.days_left:.1f} days"
        level = "Critical" if probe.days_left <= 0 else "High" if probe.days_left <= HIGH_ALERT_DAYS else "Medium"
        lines.append(
            f"the API server certificate served by {who} {state} ({probe.not_after}; ACP's certificate "
            f"monitoring: {level})"
        )
    return lines


@check(
    id="ACP-LB-007",
    title="API server certificates are more than 10 days from expiry",
    severity=Severity.HIGH,
    scope=Scope.CLUSTER,
    applies=LIVE,
    refs=[CERT_MONITORING],
    remediation="Renew the API server certificates now (the Automated Kubernetes Certificate Rotation plugin, or "
    "cert-renew).",
    tags={"lb", "live", "certificates"},
)
def check_api_certificate_not_expiring(api_tls: ApiTlsEvidence) -> None:
    """ACP's certificate monitoring raises a High alert 10 days before a certificate
    expires and a Critical one when it has: an expired API server certificate takes
    the cluster down for every client that verifies it."""
    api_tls = _live(api_tls)
    fail_if(_expiring(api_tls, HIGH_ALERT_DAYS))


@check(
    id="ACP-LB-008",
    title="API server certificates are more than 30 days from expiry",
    severity=Severity.MEDIUM,
    scope=Scope.CLUSTER,
    applies=LIVE,
    refs=[CERT_MONITORING],
    remediation="Plan the renewal of the API server certificates (the rotation plugin renews below 30 days or 20 % "
    "validity).",
    tags={"lb", "live", "certificates"},
)
def check_api_certificate_renewal_due(api_tls: ApiTlsEvidence) -> None:
    """ACP's certificate monitoring raises a Medium alert 30 days before a
    certificate expires, the point at which its rotation plugin renews."""
    api_tls = _live(api_tls)
    fail_if(_expiring(api_tls, MEDIUM_ALERT_DAYS))


def _answers(probe: TlsProbe) -> str | None:
    """Why this API server does not answer, or None when it does (401/403 to /version still is an answer)."""
    if probe.error:
        return probe.error
    if probe.version_status is None:
        return probe.version_error or "no answer to GET /version"
    if probe.version_status not in (200, 401, 403):
        return f"GET /version answered HTTP {probe.version_status}"
    return None


@check(
    id="ACP-LB-009",
    title="the API answers /version at the endpoint and on every control-plane node",
    severity=Severity.HIGH,
    scope=Scope.CLUSTER,
    applies=LIVE,
    refs=[ON_PREMISES],
    remediation="Bring the API server back on the nodes named (kubelet and the kube-apiserver static pod), or repair "
    "the endpoint.",
    tags={"lb", "live"},
)
def check_api_answers(api_tls: ApiTlsEvidence) -> None:
    """A healthy endpoint hides a dead API server behind it until the next one dies.
    Each control-plane node's own :6443 is asked for /version (anonymous access to it
    is Kubernetes' default; 401 or 403 still proves the server answers), and so is the
    endpoint."""
    api_tls = _live(api_tls)
    findings = [
        f"{name}: {probe.host}:{probe.port} does not answer: {why}"
        for name, probe in sorted(api_tls.nodes.items())
        if (why := _answers(probe))
    ]
    if api_tls.through_endpoint and (why := _answers(api_tls.through_endpoint[0])):
        findings.insert(0, f"the endpoint {api_tls.endpoint}:6443 does not answer: {why}")
    fail_if(findings, versions={name: probe.version for name, probe in api_tls.nodes.items()})


@check(
    id="ACP-LB-010",
    title="connections to the endpoint reach every control-plane node",
    severity=Severity.HIGH,
    scope=Scope.CLUSTER,
    applies=LIVE,
    refs=[ON_PREMISES, PREREQUISITES],
    remediation="Balance the endpoint's 6443 over every control-plane node (round robin or least connections, TCP "
    "health checks) instead of pinning clients.",
    tags={"lb", "live"},
)
def check_endpoint_spreads(api_tls: ApiTlsEvidence) -> None:
    """An LB that pins every client to one node, or leaves a node out, concentrates
    the API load and fails over only when that node dies. Every API server serves its
    own certificate, so the certificate of each connection through the endpoint says
    which node took it. The number of connections (4 per node, 6 to 60) is ours."""
    api_tls = _live(api_tls)
    up = sorted(name for name, probe in api_tls.nodes.items() if probe.fingerprint)
    if len(up) < 2:
        skip("fewer than two control-plane nodes answer on their own: nothing to spread over (see ACP-LB-009)")
    if not api_tls.certificates_differ:
        manual(
            "the control-plane nodes serve the same certificate, so a connection does not tell which node took it: "
            "check the LB's statistics for the spread over the nodes"
        )
    reached: dict[str, int] = {}
    for probe in api_tls.through_endpoint:
        owner = api_tls.node_of(probe)
        if owner is not None:
            reached[owner] = reached.get(owner, 0) + 1
    never = [name for name in up if name not in reached]
    if never:
        got = ", ".join(f"{name} ({count})" for name, count in sorted(reached.items())) or "no control-plane node"
        fail(
            f"{len(api_tls.through_endpoint)} connections to {api_tls.endpoint}:6443 reached {got}, never "
            f"{listed(never)} "
            "(which answer on their own :6443)",
            reached=reached,
            never=never,
        )
