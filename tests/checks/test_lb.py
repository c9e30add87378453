"""The load-balancer checks (checks/lb.py) as tables over hand-made evidence, a pass
and a failing row for every check; and the parts of the proof that need no lab: the
ports data, the per-port proof against fake load balancers on loopback, and the
node-side listener under each tool it may find (POSIX sh plus python3, perl, socat,
OpenBSD nc or BusyBox nc), including its node-side deadline.

Everything here listens on and connects to 127.0.0.1 only.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from nodes.conftest import node_context, plan_with

from acpcheck.checks import lb as checks
from acpcheck.model.ports import lb_ports
from acpcheck.sources.api_tls import ApiTlsEvidence, TlsProbe
from acpcheck.sources.lb import (
    LbEvidence,
    PortProof,
    VipState,
    VrrpState,
    max_connections,
    prove_port,
)
from acpcheck.sources.nodeside import ListenerState, classify, listener_command, parse_listener, probe
from acpcheck.testing import run_check

PLAN = plan_with()  # examples/workload-kube-ovn.yaml: cp1-cp3, w1, w2; endpoint 192.0.2.100
ENDPOINT = "192.0.2.100"
NONCE = "0123456789abcdef"
SOURCE = "https://docs.alauda.io/container_platform/4.3/configure/clusters/on-premises.html"


def listeners(**ports: dict[str, str]) -> dict[str, ListenerState]:
    """cp1-cp3 listening on 6443/11780/11781, with per-node port states replaced."""
    states = {}
    for name in ("cp1", "cp2", "cp3"):
        base = {"tcp/6443": "ok", "tcp/11780": "ok", "tcp/11781": "ok"}
        base.update(ports.get(name, {}))
        states[name] = ListenerState(node=name, ident=name, state="ok", tool="python3", ports=base, cleaned=True)
    return states


def port(number: int, answered: dict[str, int] | None = None, **outcomes: int) -> PortProof:
    names = {6443: "apiserver", 11780: "alb-http", 11781: "alb-https"}
    details = {
        kind: {"foreign": "'SSH-2.0-OpenSSH_9.2'", "stale": "an acpcheck listener of another run (cp1)"}.get(kind, "")
        for kind in outcomes
    }
    return PortProof(
        name=names[number],
        port=number,
        source=SOURCE,
        expected=["cp1", "cp2", "cp3"],
        answered=answered or {},
        outcomes=outcomes,
        details={k: v for k, v in details.items() if v},
        connections=48,
    )


ALL = {"cp1": 16, "cp2": 16, "cp3": 16}


def proof(*ports: PortProof, states: dict[str, ListenerState] | None = None) -> LbEvidence:
    return LbEvidence(
        mode="proof", endpoint=ENDPOINT, ports=list(ports), listeners=states if states is not None else listeners()
    )


GOOD = proof(port(6443, ALL), port(11780, ALL), port(11781, ALL))


def grade(check: Callable[..., Any], plan: Any = PLAN, **evidence: Any) -> Any:
    return run_check(check, plan, **evidence)


# ---------------------------------------------------------------------------
# ACP-LB-001 … 003: the proof through an external LB


@pytest.mark.parametrize(
    ("evidence", "status", "words"),
    [
        (GOOD, "pass", []),
        (
            proof(port(6443, ALL), port(11780, ALL), port(11781, refused=48)),
            "fail",
            ["port 11781 (alb-https)", "refused every connection", "does not forward"],
        ),
        (
            proof(port(6443, timeout=3), port(11780, unreachable=3), port(11781, ALL)),
            "fail",
            ["port 6443", "port 11780", "did not answer", "down or filtered"],
        ),
        (
            proof(port(6443, ALL), port(11780, closed=40, silent=8), port(11781, ALL)),
            "fail",
            ["port 11780", "no live backend"],
        ),
        (
            proof(port(6443, ALL), port(11780, foreign=48), port(11781, ALL)),
            "fail",
            ["port 11780", "something else", "SSH-2.0", "ACP-LB-003"],
        ),
        (
            proof(
                port(6443, ALL),
                PortProof(
                    name="alb-http",
                    port=11780,
                    source=SOURCE,
                    skipped="no control-plane node could listen on this port",
                ),
                port(11781, ALL),
            ),
            "manual",
            ["port 11780", "not probed"],
        ),
    ],
    ids=["all-answer", "refused", "endpoint-down", "no-live-backend", "foreign-only", "not-probed"],
)
def test_endpoint_answers(evidence: LbEvidence, status: str, words: list[str]) -> None:
    result = grade(checks.check_endpoint_answers, lb=evidence)
    assert result.status == status, result.message
    assert all(word in result.message for word in words), result.message
    assert result.target == "node:*"


MISSING_CP2 = proof(port(6443, ALL), port(11780, {"cp1": 24, "cp3": 24}), port(11781, ALL))


@pytest.mark.parametrize(
    ("node", "evidence", "status", "words"),
    [
        ("cp2", GOOD, "pass", []),
        ("cp2", MISSING_CP2, "fail", ["port 11780 (alb-http)", "reached cp1, cp3, never cp2"]),
        ("cp1", MISSING_CP2, "pass", []),
        (
            "cp3",
            proof(port(6443, {"cp1": 48}), port(11780, {"cp1": 48}), port(11781, {"cp1": 48})),
            "fail",
            ["port 6443", "port 11781", "never cp3", "every connection went to cp1", "client address"],
        ),
        # one root cause, one FAIL: the port nobody answered on is ACP-LB-001's, not each node's
        (
            "cp2",
            proof(port(6443, ALL), port(11780, ALL), port(11781, refused=48)),
            "skip",
            ["port 11781", "no control-plane node answered", "ACP-LB-001 FAILs"],
        ),
        (
            "cp2",
            proof(port(6443, {"cp1": 24, "cp3": 24}), port(11780, ALL), port(11781, refused=48)),
            "fail",
            ["port 6443", "never cp2"],
        ),
        (
            "cp3",
            proof(
                port(6443, {"cp1": 24, "cp2": 24}),
                port(11780, ALL),
                port(11781, ALL),
                states=listeners(cp3={"tcp/6443": "busy python3 listens on 0.0.0.0, per the node's facts"}),
            ),
            "manual",
            ["port 6443", "in use on cp3", "python3", "ACP-NODE-019"],
        ),
        (
            "cp3",
            proof(
                port(6443, {"cp1": 24, "cp2": 24}),
                port(11780, {"cp1": 24, "cp2": 24}),
                port(11781, ALL),
                states=listeners(cp3={"tcp/6443": "busy python3 listens on 0.0.0.0, per the node's facts"}),
            ),
            "fail",
            ["port 11780", "never cp3", "(not verified) port 6443"],
        ),
    ],
    ids=[
        "reached",
        "missing-backend",
        "others-fine",
        "pinned",
        "port-not-forwarded-is-lb-001s",
        "own-miss-still-fails",
        "busy-port-is-manual",
        "fail-notes-unproven",
    ],
)
def test_lb_reaches_node(node: str, evidence: LbEvidence, status: str, words: list[str]) -> None:
    result = grade(checks.check_lb_reaches_node, node=node_context(node), lb=evidence)
    assert (result.status, result.target) == (status, f"node:{node}"), result.message
    assert all(word in result.message for word in words), result.message


def test_lb_reaches_node_without_any_listener_tool_is_manual_with_the_command() -> None:
    states = listeners()
    states["cp2"] = ListenerState(
        node="cp2", ident="cp2", state="notool", detail="no python3, platform-python, perl, socat or nc on the node"
    )
    result = grade(
        checks.check_lb_reaches_node,
        node=node_context("cp2"),
        lb=proof(port(6443, {"cp1": 24, "cp3": 24}), states=states),
    )
    assert result.status == "manual"
    assert "nc -l 6443" in result.message and "192.0.2.100:6443" in result.message


@pytest.mark.parametrize(("state", "kind"), [("unreachable", "unreachable"), ("error", "probe")])
def test_lb_reaches_node_without_a_listener_is_an_error(state: str, kind: str) -> None:
    states = listeners()
    states["cp1"] = ListenerState(node="cp1", ident="cp1", state=state, detail="auth: key refused")
    result = grade(checks.check_lb_reaches_node, node=node_context("cp1"), lb=proof(port(6443, ALL), states=states))
    assert result.status == "error" and kind in result.message and "key refused" in result.message


@pytest.mark.parametrize(
    ("evidence", "status", "words"),
    [
        (GOOD, "pass", []),
        (
            proof(port(6443, ALL, foreign=2), port(11780, ALL), port(11781, ALL)),
            "fail",
            ["port 6443", "not a control-plane node", "SSH-2.0"],
        ),
        (proof(port(6443, ALL), port(11780, ALL, stale=1), port(11781, ALL)), "fail", ["port 11780", "another run"]),
    ],
    ids=["only-plan-nodes", "foreign-backend", "stale-listener"],
)
def test_only_plan_nodes_answer(evidence: LbEvidence, status: str, words: list[str]) -> None:
    result = grade(checks.check_only_plan_nodes_answer, lb=evidence)
    assert result.status == status, result.message
    assert all(word in result.message for word in words), result.message


@pytest.mark.parametrize("check", [checks.check_endpoint_answers, checks.check_only_plan_nodes_answer])
def test_proof_checks_skip_in_post_install_mode(check: Callable[..., Any]) -> None:
    result = grade(check, lb=LbEvidence(mode="live", reason="the plan gives a kubeconfig"))
    assert result.status == "skip" and "kubeconfig" in result.message


def test_proof_checks_do_not_apply_to_a_self_built_vip() -> None:
    vip_plan = plan_with({"spec": {"endpoint": {"selfBuiltVIP": {"enabled": True, "vrid": 7}}}})
    assert grade(checks.check_endpoint_answers, vip_plan, lb=GOOD).status == "skip"


def test_missing_lb_evidence_is_an_error() -> None:
    from acpcheck.sources.lb import LoadBalancerSource

    source = LoadBalancerSource()
    with pytest.raises(Exception) as raised:
        source.provide("lb", source.unavailable(PLAN, "gathering lb failed: boom"), PLAN, None)
    assert "boom" in str(raised.value)


# ---------------------------------------------------------------------------
# ACP-LB-004/005: the self-built VIP

VIP_PLAN = plan_with({"spec": {"endpoint": {"address": "192.0.2.10", "selfBuiltVIP": {"enabled": True, "vrid": 7}}}})


def vip(**fields: Any) -> LbEvidence:
    state = VipState(
        address="192.0.2.10",
        probed_from="cp1",
        ports={"22": "timeout", "6443": "timeout"},
        neighbour="192.0.2.10 dev eth0 FAILED",
    )
    vrrp = VrrpState(
        nodes=["cp1", "cp2", "cp3"], received={"cp1": ["cp2", "cp3"], "cp2": ["cp1", "cp3"], "cp3": ["cp1", "cp2"]}
    )
    for key, value in fields.items():
        setattr(vrrp if key in VrrpState.model_fields else state, key, value)
    return LbEvidence(mode="vip", endpoint="192.0.2.10", vip=state, vrrp=vrrp)


@pytest.mark.parametrize(
    ("evidence", "status", "words"),
    [
        (vip(), "pass", []),
        (vip(ports={"22": "refused", "6443": "timeout"}), "fail", ["192.0.2.10", "port 22 refused", "from cp1"]),
        (
            vip(neighbour="192.0.2.10 dev eth0 lladdr 52:54:00:12:34:56 REACHABLE"),
            "fail",
            ["answers ARP", "52:54:00:12:34:56"],
        ),
        (vip(holders=["cp2"]), "fail", ["cp2 already carries the VIP 192.0.2.10"]),
        (vip(error="unreachable: no session", ports={}), "error", ["could not probe the VIP"]),
    ],
    ids=["free", "refused", "arp", "a-node-holds-it", "not-probed"],
)
def test_vip_free(evidence: LbEvidence, status: str, words: list[str]) -> None:
    result = grade(checks.check_vip_free, VIP_PLAN, lb=evidence)
    assert result.status == status, result.message
    assert all(word in result.message for word in words), result.message


@pytest.mark.parametrize(
    ("evidence", "status", "words"),
    [
        (vip(), "pass", []),
        (
            vip(received={"cp1": ["cp2"], "cp2": ["cp1"], "cp3": ["cp1", "cp2"]}),
            "fail",
            ["VRRP from cp1 never reached cp3", "VRRP from cp2 never reached cp3"],
        ),
        (
            vip(
                nodes=[],
                received={},
                failed={"cp1": "no python3 on the node", "cp2": "no python3 on the node"},
                manual="cp1: no python3",
            ),
            "manual",
            ["no python3", "tcpdump"],
        ),
    ],
    ids=["passes", "blocked-to-cp3", "cannot-prove"],
)
def test_vrrp_passes(evidence: LbEvidence, status: str, words: list[str]) -> None:
    result = grade(checks.check_vrrp_passes, VIP_PLAN, lb=evidence)
    assert result.status == status, result.message
    assert all(word in result.message for word in words), result.message


def test_vip_checks_skip_without_a_self_built_vip() -> None:
    assert grade(checks.check_vip_free, lb=GOOD).status == "skip"


# ---------------------------------------------------------------------------
# ACP-LB-006 … 010: after install

LIVE_PLAN = plan_with({"spec": {"apiServer": {"publicAlternativeNames": ["api.example.com"]}}})


def tls(name: str, days: float = 300, sans: tuple[str, ...] = (ENDPOINT, "api.example.com"), **fields: Any) -> TlsProbe:
    base = {
        "host": name,
        "fingerprint": f"fp-{name}",
        "subject": "CN=kube-apiserver",
        "sans": list(sans),
        "days_left": days,
        "not_after": (dt.datetime(2027, 1, 1, tzinfo=dt.UTC)).isoformat(),
        "version": "v1.34.5",
        "version_status": 200,
    }
    base.update(fields)
    return TlsProbe(**base)


def live(nodes: dict[str, TlsProbe] | None = None, through: list[TlsProbe] | None = None) -> ApiTlsEvidence:
    nodes = nodes if nodes is not None else {name: tls(name) for name in ("cp1", "cp2", "cp3")}
    if through is None:
        through = [
            nodes[name].model_copy(update={"host": ENDPOINT}) for name in ("cp1", "cp2", "cp3") * 4 if name in nodes
        ]
    return ApiTlsEvidence(mode="live", endpoint=ENDPOINT, nodes=nodes, through_endpoint=through)


LIVE_CASES = [
    (checks.check_api_certificate_names, live(), "pass", []),
    (
        checks.check_api_certificate_names,
        live({**{n: tls(n) for n in ("cp1", "cp3")}, "cp2": tls("cp2", sans=(ENDPOINT,))}),
        "fail",
        ["served by cp2", "lacks api.example.com"],
    ),
    (checks.check_api_certificate_not_expiring, live(), "pass", []),
    (
        checks.check_api_certificate_not_expiring,
        live({**{n: tls(n) for n in ("cp1", "cp3")}, "cp2": tls("cp2", days=-1.5)}),
        "fail",
        ["served by cp2 expired", "Critical"],
    ),
    (
        checks.check_api_certificate_not_expiring,
        live({**{n: tls(n) for n in ("cp1", "cp3")}, "cp2": tls("cp2", days=6)}),
        "fail",
        ["expires in 6.0 days", "High"],
    ),
    (
        checks.check_api_certificate_renewal_due,
        live({**{n: tls(n) for n in ("cp1", "cp3")}, "cp2": tls("cp2", days=40)}),
        "pass",
        [],
    ),
    (
        checks.check_api_certificate_renewal_due,
        live({**{n: tls(n) for n in ("cp1", "cp3")}, "cp2": tls("cp2", days=25)}),
        "fail",
        ["expires in 25.0 days", "Medium"],
    ),
    (checks.check_api_answers, live(), "pass", []),
    (
        checks.check_api_answers,
        live({**{n: tls(n) for n in ("cp1", "cp2")}, "cp3": TlsProbe(host="192.0.2.13", error="unreachable: refused")}),
        "fail",
        ["cp3", "does not answer", "refused"],
    ),
    (
        checks.check_api_answers,
        live({**{n: tls(n) for n in ("cp1", "cp2")}, "cp3": tls("cp3", version_status=403, version="")}),
        "pass",
        [],
    ),
    (checks.check_endpoint_spreads, live(), "pass", []),
    (
        checks.check_endpoint_spreads,
        live(through=[tls("cp1").model_copy(update={"host": ENDPOINT})] * 12),
        "fail",
        ["12 connections", "reached cp1 (12)", "never cp2, cp3"],
    ),
    (
        checks.check_endpoint_spreads,
        live({name: tls(name, fingerprint="shared") for name in ("cp1", "cp2", "cp3")}),
        "manual",
        ["same certificate"],
    ),
]


@pytest.mark.parametrize(
    ("check", "evidence", "status", "words"),
    LIVE_CASES,
    ids=[f"{c[0].__name__}-{c[2]}-{i}" for i, c in enumerate(LIVE_CASES)],
)
def test_live_checks(check: Callable[..., Any], evidence: ApiTlsEvidence, status: str, words: list[str]) -> None:
    result = grade(check, LIVE_PLAN, api_tls=evidence)
    assert (result.status, result.target) == (status, "cluster:prod-east"), result.message
    assert all(word in result.message for word in words), result.message


def test_live_checks_skip_before_install() -> None:
    result = grade(checks.check_api_answers, api_tls=ApiTlsEvidence(mode="off", reason="before install"))
    assert result.status == "skip" and "post-install mode only" in result.message


@pytest.mark.parametrize(
    ("sans", "name", "covered"),
    [
        (["192.0.2.100"], "192.0.2.100", True),
        (["192.0.2.101"], "192.0.2.100", False),
        (["*.example.com"], "api.example.com", True),
        (["*.example.com"], "a.api.example.com", False),
        (["API.example.com."], "api.example.com", True),
    ],
)
def test_certificate_name_matching(sans: list[str], name: str, covered: bool) -> None:
    assert checks.covers(sans, name) is covered


# ---------------------------------------------------------------------------
# The ports, from data


@pytest.mark.parametrize(
    ("edits", "ports"),
    [
        ({}, [6443, 11780, 11781]),
        ({"spec": {"cluster": {"role": "global"}}}, [443, 6443, 11443]),
        (
            {"spec": {"cluster": {"role": "global"}, "registry": {"type": "private", "address": "r.example.com"}}},
            [443, 6443],
        ),
        (
            {"spec": {"cluster": {"role": "global"}, "loadBalancer": {"disasterRecovery": True, "httpEnabled": True}}},
            [443, 6443, 11443, 2379, 80],
        ),
        (
            {"spec": {"cluster": {"role": "global"}, "loadBalancer": {"ports": {"https": 8443, "registry": None}}}},
            [8443, 6443],
        ),
    ],
    ids=["workload", "global", "global-external-registry", "global-dr-http", "customised-443"],
)
def test_required_lb_ports_come_from_data(edits: dict[str, Any], ports: list[int]) -> None:
    required = lb_ports(plan_with(edits))
    assert [p.port for p in required] == ports
    assert all(p.source.startswith("https://") for p in required)


def test_an_unknown_port_name_is_bad_input() -> None:
    from acpcheck.errors import InputError

    with pytest.raises(InputError, match="unknown LB port name"):
        plan_with({"spec": {"loadBalancer": {"ports": {"htps": 8443}}}})


# ---------------------------------------------------------------------------
# The per-port proof against fake load balancers on loopback


class FakeLb:
    """A TCP server on 127.0.0.1 that answers each connection as ``pick(n)`` says: an
    identity (a listener's hello), b"..." (raw bytes), or None (close at once)."""

    def __init__(self, pick: Callable[[int], str | bytes | None]):
        self.pick = pick
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.count = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            with connection:
                answer = self.pick(self.count)
                self.count += 1
                try:
                    connection.recv(64)
                    if isinstance(answer, str):
                        connection.sendall(f"acpcheck {NONCE} {answer}\n".encode())
                    elif isinstance(answer, bytes):
                        connection.sendall(answer)
                except OSError:
                    pass

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def fake_lb() -> Iterator[Callable[[Callable[[int], str | bytes | None]], FakeLb]]:
    made: list[FakeLb] = []

    def make(pick: Callable[[int], str | bytes | None]) -> FakeLb:
        made.append(FakeLb(pick))
        return made[-1]

    yield make
    for lb in made:
        lb.close()


NODES = ["cp1", "cp2", "cp3"]


def test_proof_stops_as_soon_as_every_backend_answered(fake_lb: Any) -> None:
    lb = fake_lb(lambda n: NODES[n % 3])
    started = time.monotonic()
    result = prove_port("127.0.0.1", "apiserver", lb.port, SOURCE, NODES, NONCE, proxy=None, seconds=5)
    assert result.answered == {"cp1": 1, "cp2": 1, "cp3": 1} and result.connections == 3
    assert time.monotonic() - started < 1


def test_proof_waits_for_a_backend_that_comes_up_late(fake_lb: Any) -> None:
    # an LB whose health check marks cp3 up only after its listener has run a while
    lb = fake_lb(lambda n: NODES[n % 3] if n >= 20 else NODES[n % 2])
    result = prove_port("127.0.0.1", "apiserver", lb.port, SOURCE, NODES, NONCE, proxy=None, seconds=2)
    assert set(result.answered) == set(NODES)


def test_proof_of_a_missing_backend_is_bounded_in_count_and_time(fake_lb: Any) -> None:
    lb = fake_lb(lambda n: NODES[n % 2])
    started = time.monotonic()
    result = prove_port("127.0.0.1", "apiserver", lb.port, SOURCE, NODES, NONCE, proxy=None, seconds=1.0)
    elapsed = time.monotonic() - started
    assert set(result.answered) == {"cp1", "cp2"}
    assert result.connections <= max_connections(3) and elapsed < 1.5


@pytest.mark.parametrize(
    ("pick", "kind"),
    [
        (lambda n: None, "closed"),
        (lambda n: b"SSH-2.0-OpenSSH_9.2\r\n", "foreign"),
    ],
)
def test_proof_records_what_else_came_back(fake_lb: Any, pick: Callable[[int], Any], kind: str) -> None:
    lb = fake_lb(pick)
    result = prove_port("127.0.0.1", "apiserver", lb.port, SOURCE, NODES, NONCE, proxy=None, seconds=0.5)
    assert not result.answered and kind in result.outcomes


def test_a_port_nobody_listens_on_is_refused() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        free = taken.getsockname()[1]
    result = prove_port("127.0.0.1", "apiserver", free, SOURCE, NODES, NONCE, proxy=None, seconds=0.4)
    assert set(result.outcomes) == {"refused"} and not result.answered


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (f"acpcheck {NONCE} cp2\n".encode(), "node"),
        (b"HTTP/1.0 200 OK\r\n\r\nacpcheck " + NONCE.encode() + b" cp2\n", "node"),
        (b"acpcheck ffffffffffffffff cp2\n", "stale"),
        (b"\x16\x03\x01", "foreign"),
        (b"", "closed"),
    ],
)
def test_answers_are_judged_by_the_nonce(data: bytes, kind: str) -> None:
    assert classify(data, NONCE).kind == kind


# ---------------------------------------------------------------------------
# The node-side listener, under each tool a node may have


def only_sh_and(tool: str, directory: Path) -> str:
    """A PATH with POSIX sh, the few utilities the scripts use, and one tool."""
    directory.mkdir()
    for name in ("sh", "sleep", "head", "od", "tr", "mktemp", "cat", "rm"):
        os.symlink(shutil.which(name) or f"/bin/{name}", directory / name)
    binary = {
        "python3": "/usr/bin/python3",
        "platform-python": "/usr/bin/python3",
        "perl": shutil.which("perl"),
        "socat": shutil.which("socat"),
        "nc": shutil.which("nc.openbsd"),
        "busybox-nc": shutil.which("busybox"),
    }[tool]
    if binary is None or not os.path.exists(binary):
        package = {"nc": "netcat-openbsd", "busybox-nc": "busybox"}.get(tool, tool)
        pytest.skip(f"no {tool} here (Debian's package {package}; scripts/setup-system.sh does not install busybox)")
    os.symlink(binary, directory / ("nc" if tool.endswith("nc") else tool))
    return str(directory)


def free_ports(count: int) -> list[int]:
    sockets = [socket.create_server(("127.0.0.1", 0)) for _ in range(count)]
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.parametrize("tool", ["python3", "platform-python", "perl", "socat", "nc", "busybox-nc"])
def test_listener_works_with_posix_sh_and_one_tool(tool: str, tmp_path: Path) -> None:
    from acpcheck.transport.local import LocalTransport

    path = only_sh_and(tool, tmp_path / "bin")
    free, busy_port, udp = free_ports(3)
    nonce = secrets.token_hex(8)
    with socket.create_server(("127.0.0.1", busy_port)) as busy, LocalTransport() as local:
        command = f"PATH={path}; export PATH\n" + listener_command(
            nonce, "cp1", [("tcp", free), ("tcp", busy_port), ("udp", udp)], bind="127.0.0.1"
        )
        handle = local.start(command, deadline=30)
        try:
            end = time.monotonic() + 10
            while "acpcheck-ready" not in handle.output()[0] and handle.running() and time.monotonic() < end:
                time.sleep(0.02)
            report = parse_listener(handle.output()[0])
            assert report.ready and report.tool == ("nc" if tool.endswith("nc") else tool)
            assert report.ports[f"tcp/{free}"] == "ok"
            assert report.ports[f"tcp/{busy_port}"].startswith("busy")  # reported, and left alone
            assert report.ports[f"udp/{udp}"] == ("ok" if tool in ("python3", "platform-python", "perl") else "notool")
            answer = probe("127.0.0.1", free, nonce, proxy=None, timeout=2)
            assert (answer.kind, answer.ident) == ("node", "cp1")
            assert busy.getsockname()[1] == busy_port  # the busy port still belongs to its owner
        finally:
            handle.stop()
    assert probe("127.0.0.1", free, nonce, proxy=None, timeout=1).kind == "refused"  # gone


def test_listener_without_any_tool_says_so(tmp_path: Path) -> None:
    from acpcheck.transport.local import LocalTransport

    directory = tmp_path / "bin"
    directory.mkdir()
    for name in ("sh", "sleep"):
        os.symlink(shutil.which(name) or f"/bin/{name}", directory / name)
    with LocalTransport() as local:
        result = local.run(
            f"PATH={directory}; export PATH\n"
            + listener_command(NONCE, "cp1", [("tcp", free_ports(1)[0])], bind="127.0.0.1"),
            timeout=10,
        )
    assert parse_listener(result.stdout).notool and result.exit_status == 3


def test_listener_ends_at_its_node_side_deadline_when_nobody_stops_it(tmp_path: Path) -> None:
    """The runner's end (killed, frozen) never stops it: the node's watchdog does."""
    from acpcheck.transport.local import LocalTransport

    free = free_ports(1)[0]
    with LocalTransport() as local:
        # 3 s: the node-side deadline counts from the start, and a loaded runner (the
        # suite beside a lab) has taken over a second to see it ready.
        handle = local.start(listener_command(NONCE, "cp1", [("tcp", free)], bind="127.0.0.1"), deadline=3)
        end = time.monotonic() + 5
        while "acpcheck-ready" not in handle.output()[0] and time.monotonic() < end:
            time.sleep(0.02)
        assert probe("127.0.0.1", free, NONCE, proxy=None, timeout=1).kind == "node"
        handle.wait(8)  # never stopped: the watchdog ends it after 3 s (+ 2 s grace at most)
    assert probe("127.0.0.1", free, NONCE, proxy=None, timeout=1).kind == "refused"
