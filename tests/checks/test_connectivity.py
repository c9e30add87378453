"""The connectivity checks (checks/connectivity.py) as tables over hand-made evidence,
a pass and a failing row for every check; which pairs are probed (all of them up to
100 nodes, a ring sample above); what the plan names of the global cluster; and the
node-side connector under each tool (loopback only)."""

from __future__ import annotations

import secrets
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from nodes.conftest import node_context, plan_with

from acpcheck.checks import connectivity as checks
from acpcheck.model.plan import Node
from acpcheck.sources.connectivity import (
    ALL_PAIRS_UP_TO,
    SAMPLED_PEERS,
    ConnEvidence,
    FromNode,
    GlobalResult,
    GlobalTarget,
    Pair,
    global_targets,
    peer_offsets,
    peers_of,
)
from acpcheck.sources.nodeside import (
    ListenerState,
    Target,
    connector_command,
    connector_input,
    listener_command,
    parse_connector,
    parse_listener,
)
from acpcheck.testing import run_check

PLAN = plan_with()
WORKLOAD_WITH_GLOBAL = plan_with(
    {"spec": {"cluster": {"annotations": {"cpaas.io/platform-url": "https://global.example.com"}}}}
)


NAMES = ("cp1", "cp2", "cp3", "w1", "w2")
CP_PORTS = {
    "tcp/6443": "ok",
    "tcp/2379": "ok",
    "tcp/2380": "ok",
    "tcp/10250": "ok",
    "tcp/6641": "ok",
    "tcp/6642": "ok",
    "udp/6081": "ok",
}
WORKER_PORTS = {"tcp/10250": "ok", "udp/6081": "ok"}


def evidence(listeners: dict[str, ListenerState] | None = None, **nodes: FromNode) -> ConnEvidence:
    results = {name: FromNode(ok=20, targets=20) for name in NAMES}
    results.update(nodes)
    states = {
        name: ListenerState(
            node=name,
            ident=name,
            state="ok",
            tool="python3",
            ports=dict(CP_PORTS if name.startswith("cp") else WORKER_PORTS),
        )
        for name in NAMES
    }
    states.update(listeners or {})
    return ConnEvidence(mode="proof", nodes=results, listeners=states)


BUSY_6443 = ListenerState(
    node="cp3",
    ident="cp3",
    state="ok",
    tool="python3",
    ports={**CP_PORTS, "tcp/6443": "busy kube-apiserver listens on 0.0.0.0, per the node's facts"},
)
NO_TOOL = ListenerState(
    node="w2", ident="w2", state="notool", detail="no python3, platform-python, perl, socat or nc on the node"
)
NC_ONLY = ListenerState(node="w2", ident="w2", state="ok", tool="nc", ports={"tcp/10250": "ok", "udp/6081": "notool"})
TO_BUSY_CP3 = [Pair(to="cp3", port=6443, protocol="tcp", outcome="busy", detail="kube-apiserver listens on 0.0.0.0")]
TO_W2 = [
    Pair(to="w2", port=10250, protocol="tcp", outcome="notool", detail=NO_TOOL.detail),
    Pair(to="w2", port=6081, protocol="udp", outcome="notool", detail=NO_TOOL.detail),
]
OWN_NO_TOOL = [
    Pair(
        to=peer,
        port=10250,
        protocol="tcp",
        outcome="notool",
        detail="no python3, platform-python, perl, socat or nc on the node",
    )
    for peer in ("cp1", "cp2", "cp3", "w1")
]

CONN_CASES = [
    ("w1", evidence(), "pass", []),
    (
        "w1",
        evidence(
            w1=FromNode(
                ok=18,
                targets=20,
                failed=[
                    Pair(to="cp3", port=6443, protocol="tcp", outcome="timeout"),
                    Pair(to="cp3", port=2379, protocol="tcp", outcome="refused"),
                ],
            )
        ),
        "fail",
        ["w1 cannot reach cp3", "6443/tcp (apiserver) timeout", "2379/tcp (etcd-client) refused"],
    ),
    (
        "cp1",
        evidence(cp1=FromNode(ok=19, targets=20, failed=[Pair(to="w2", port=6081, protocol="udp", outcome="timeout")])),
        "fail",
        ["cp1 cannot reach w2", "6081/udp (geneve) timeout"],
    ),
    (
        "cp2",
        evidence(
            cp2=FromNode(
                ok=19,
                targets=20,
                failed=[Pair(to="cp3", port=6443, protocol="tcp", outcome="node", detail="cp1 answered instead")],
            )
        ),
        "fail",
        ["cp3", "cp1 answered instead"],
    ),
    # a busy port on cp3: the prober passes, cp3 itself says which port nobody could prove
    ("cp2", evidence({"cp3": BUSY_6443}, cp2=FromNode(ok=19, targets=20, unproven=TO_BUSY_CP3)), "pass", []),
    (
        "cp3",
        evidence({"cp3": BUSY_6443}),
        "manual",
        ["6443/tcp (apiserver) on cp3", "in use", "kube-apiserver", "ACP-NODE-019"],
    ),
    # a node without any listener tool: one MANUAL, on that node, never on the nodes that probed it
    ("w1", evidence({"w2": NO_TOOL}, w1=FromNode(ok=18, targets=20, unproven=TO_W2)), "pass", []),
    (
        "w2",
        evidence({"w2": NO_TOOL}, w2=FromNode(ok=0, targets=4, unproven=OWN_NO_TOOL)),
        "manual",
        ["w2 has no tool to connect with", "4 connections not proven", "no node could prove it reaches w2", "nc -l"],
    ),
    # nc serves TCP only: the UDP port is the listening node's to prove by hand
    ("w2", evidence({"w2": NC_ONLY}), "manual", ["6081/udp (geneve) on w2", "serves TCP only"]),
    # everything this node probes could not listen: nothing to say about it
    (
        "w1",
        evidence({"w2": NO_TOOL}, w1=FromNode(ok=0, targets=2, unproven=TO_W2)),
        "skip",
        ["nothing to prove from w1", "w2"],
    ),
]


@pytest.mark.parametrize(
    ("name", "given", "status", "words"),
    CONN_CASES,
    ids=[
        "all-reached",
        "firewalled-cp",
        "udp-tunnel",
        "wrong-node",
        "busy-peer-passes",
        "busy-node-is-manual",
        "prober-of-a-toolless-node-passes",
        "toolless-node-is-manual",
        "nc-only-udp",
        "nothing-to-prove",
    ],
)
def test_node_reaches_peers(name: str, given: ConnEvidence, status: str, words: list[str]) -> None:
    result = run_check(checks.check_node_reaches_peers, PLAN, node=node_context(name), connectivity=given)
    assert (result.status, result.target) == (status, f"node:{name}"), result.message
    assert all(word in result.message for word in words), result.message


def test_a_listener_that_ended_during_the_probe_is_its_own_nodes_result_not_its_probers() -> None:
    """At 1,000 lab nodes a node's connection was lost mid-probe; its listener went with
    it, and every node that probed it afterwards FAILed "refused" (94 false FAILs)."""
    from acpcheck.sources.connectivity import _discount_ended_listeners

    ended = ListenerState(
        node="w2",
        ident="w2",
        state="ok",
        tool="python3",
        ports=dict(WORKER_PORTS),
        ended="the connection was lost while the background command ran",
    )
    given = evidence(
        {"w2": ended},
        w1=FromNode(
            ok=17,
            targets=20,
            failed=[
                Pair(to="w2", port=10250, protocol="tcp", outcome="refused"),
                Pair(to="w2", port=6081, protocol="udp", outcome="refused"),
                Pair(to="cp3", port=2379, protocol="tcp", outcome="timeout"),
            ],
        ),
        cp1=FromNode(ok=19, targets=20, failed=[Pair(to="w2", port=10250, protocol="tcp", outcome="refused")]),
    )
    _discount_ended_listeners(given)

    prober = run_check(checks.check_node_reaches_peers, PLAN, node=node_context("cp1"), connectivity=given)
    assert prober.status == "pass", prober.message
    # w1's own failure towards cp3 (whose listener was up) still counts, and only that one
    mixed = run_check(checks.check_node_reaches_peers, PLAN, node=node_context("w1"), connectivity=given)
    assert mixed.status == "fail" and "2379/tcp" in mixed.message and "w2" not in mixed.message, mixed.message
    owner = run_check(checks.check_node_reaches_peers, PLAN, node=node_context("w2"), connectivity=given)
    assert owner.status == "manual", owner.message
    assert "3 connections towards w2 not proven" in owner.message and "connection was lost" in owner.message, (
        owner.message
    )


def test_node_whose_connector_failed_is_an_error() -> None:
    given = evidence(w2=FromNode(error="unreachable: the connection was lost"))
    result = run_check(checks.check_node_reaches_peers, PLAN, node=node_context("w2"), connectivity=given)
    assert result.status == "error" and "connection was lost" in result.message


def test_connectivity_skips_in_post_install_mode() -> None:
    result = run_check(
        checks.check_node_reaches_peers,
        PLAN,
        node=node_context("w1"),
        connectivity=ConnEvidence(mode="live", reason="ACPCHECK_LIVE=1"),
    )
    assert result.status == "skip" and "ACPCHECK_LIVE" in result.message


def global_evidence(outcomes: dict[str, str]) -> ConnEvidence:
    targets = [
        GlobalTarget(name="platform-url", host="global.example.com", port=443, source="annotation"),
        GlobalTarget(name="registry", host="global.example.com", port=11443, source="annotation"),
    ]
    results = {"w1": [GlobalResult(name=t.name, host=t.host, port=t.port, outcome=outcomes[t.name]) for t in targets]}
    return ConnEvidence(
        mode="proof", nodes={"w1": FromNode(ok=2, targets=2)}, global_targets=targets, global_results=results
    )


@pytest.mark.parametrize(
    ("check", "outcomes", "status", "words"),
    [
        (checks.check_reaches_platform_url, {"platform-url": "connected", "registry": "connected"}, "pass", []),
        (
            checks.check_reaches_platform_url,
            {"platform-url": "timeout", "registry": "connected"},
            "fail",
            ["w1", "global.example.com:443", "timeout"],
        ),
        (checks.check_reaches_global_registry, {"platform-url": "connected", "registry": "connected"}, "pass", []),
        (
            checks.check_reaches_global_registry,
            {"platform-url": "connected", "registry": "refused"},
            "fail",
            ["global.example.com:11443", "refused"],
        ),
        (
            checks.check_reaches_global_registry,
            {"platform-url": "connected", "registry": "notool"},
            "manual",
            ["nc -zv global.example.com 11443"],
        ),
    ],
    ids=["platform-url", "platform-url-blocked", "registry", "registry-refused", "registry-no-tool"],
)
def test_global_targets(check: Any, outcomes: dict[str, str], status: str, words: list[str]) -> None:
    result = run_check(
        check,
        WORKLOAD_WITH_GLOBAL,
        node=node_context("w1", WORKLOAD_WITH_GLOBAL),
        connectivity=global_evidence(outcomes),
    )
    assert result.status == status, result.message
    assert all(word in result.message for word in words), result.message


def test_global_targets_skip_when_the_plan_names_none() -> None:
    given = ConnEvidence(mode="proof", nodes={"w1": FromNode(ok=1, targets=1)})
    assert (
        run_check(checks.check_reaches_platform_url, PLAN, node=node_context("w1"), connectivity=given).status == "skip"
    )


@pytest.mark.parametrize(
    ("edits", "expected"),
    [
        ({}, []),
        (
            {"cluster": {"annotations": {"cpaas.io/platform-url": "https://global.example.com"}}},
            [("platform-url", "global.example.com", 443), ("registry", "global.example.com", 11443)],
        ),
        (
            {
                "cluster": {"annotations": {"cpaas.io/platform-url": "https://global.example.com:8443"}},
                "registry": {"type": "platform", "address": "reg.example.com"},
            },
            [("platform-url", "global.example.com", 8443), ("registry", "reg.example.com", 11443)],
        ),
        (
            {
                "cluster": {"annotations": {"cpaas.io/platform-url": "https://g.example.com"}},
                "registry": {"type": "private", "address": "harbor.example.com"},
            },
            [("platform-url", "g.example.com", 443)],
        ),
        ({"cluster": {"role": "global", "annotations": {"cpaas.io/platform-url": "https://g.example.com"}}}, []),
    ],
)
def test_what_the_plan_names_of_the_global_cluster(edits: dict[str, Any], expected: list[tuple[str, str, int]]) -> None:
    targets = global_targets(plan_with({"spec": edits}))
    assert [(t.name, t.host, t.port) for t in targets] == expected


def nodes(count: int, control_plane: int = 3) -> list[Node]:
    return [
        Node(
            name=f"n{i:04d}",
            role="control-plane" if i < control_plane else "worker",
            ipv4=f"10.0.{i // 250}.{i % 250 + 1}",
        )
        for i in range(count)
    ]


def test_all_pairs_up_to_the_limit() -> None:
    ordered = nodes(ALL_PAIRS_UP_TO)
    for position, node in enumerate(ordered):
        assert {peer.name for peer in peers_of(position, ordered)} == {n.name for n in ordered} - {node.name}


@pytest.mark.parametrize("count", [ALL_PAIRS_UP_TO + 1, 60, 100, 300, 1000])
def test_above_the_limit_every_node_probes_and_is_probed_by_the_same_number_of_peers(count: int) -> None:
    """The coverage guarantee (docs/architecture.md): each node is a source and a
    destination for SAMPLED_PEERS peers on every port class, reaches every
    control-plane node, and near and distant nodes of the ring are both probed."""
    ordered = nodes(count)
    control_plane = {n.name for n in ordered if n.role == "control-plane"}
    offsets = peer_offsets(count)
    assert len(offsets) == SAMPLED_PEERS and offsets[0] == 1 and offsets[-1] > count // 2
    probed_by: Counter[str] = Counter()
    for position, node in enumerate(ordered):
        peers = peers_of(position, ordered)
        names = [peer.name for peer in peers]
        assert node.name not in names and len(names) == len(set(names))
        assert control_plane - {node.name} <= set(names)
        assert len(peers) <= SAMPLED_PEERS + len(control_plane)
        probed_by.update(names)
    workers = [n.name for n in ordered if n.name not in control_plane]
    assert {probed_by[name] for name in workers} <= {
        SAMPLED_PEERS,
        SAMPLED_PEERS + 1,
        SAMPLED_PEERS + 2,
        SAMPLED_PEERS + 3,
    }
    assert min(probed_by[name] for name in workers) >= SAMPLED_PEERS
    assert all(probed_by[name] == count - 1 for name in control_plane)


# ---------------------------------------------------------------------------
# The node-side connector, under each tool


@pytest.mark.parametrize("tool", ["python3", "perl", "socat", "nc", "busybox-nc"])
def test_connector_reports_each_target_with_one_tool(tool: str, tmp_path: Path) -> None:
    from test_lb import free_ports, only_sh_and  # the tools' PATH, shared with the listener tests

    from acpcheck.transport.local import LocalTransport

    path = only_sh_and(tool, tmp_path / "bin")
    nonce = secrets.token_hex(8)
    listening, refused, udp = free_ports(3)
    with LocalTransport() as local:
        handle = local.start(
            listener_command(nonce, "cp2", [("tcp", listening), ("udp", udp)], bind="127.0.0.1"), deadline=30
        )
        try:
            while "acpcheck-ready" not in handle.output()[0] and handle.running():
                time.sleep(0.02)
            assert parse_listener(handle.output()[0]).ready
            targets = [
                Target("tcp", "127.0.0.1", listening),
                Target("tcp", "127.0.0.1", refused),
                Target("tcp", "127.0.0.1", listening, "tcp"),
                Target("udp", "127.0.0.1", udp),
            ]
            result = local.run(
                f"PATH={path}; export PATH\n" + connector_command(1.0), stdin=connector_input(targets), timeout=30
            )
        finally:
            handle.stop()
    answers = parse_connector(result.stdout, len(targets), nonce)
    assert (answers[0].kind, answers[0].ident) == ("node", "cp2")
    assert answers[1].kind == "refused"
    assert answers[2].kind in ("connected", "node")
    assert answers[3].kind == ("node" if tool in ("python3", "perl") else "notool")


def test_a_target_that_answers_only_on_the_second_try_is_reached_and_one_that_never_does_times_out(
    tmp_path: Path,
) -> None:
    """TRIES: a pair that gave no answer is tried again after the others, so one lost
    SYN on a busy network is not a FAIL, while a port that never answers still is."""
    import socket
    import threading

    from acpcheck.transport.local import LocalTransport

    nonce = secrets.token_hex(8)
    late = socket.socket()
    late.bind(("127.0.0.1", 0))
    late.listen(0)  # a full backlog: further SYNs are dropped, the connector times out
    stuffed = [socket.create_connection(late.getsockname(), timeout=1)]
    never = socket.socket()
    never.bind(("127.0.0.1", 0))
    never.listen(0)
    stuffed.append(socket.create_connection(never.getsockname(), timeout=1))

    # Timeout 1.5 s: the first attempt's SYN (0 s) and its retransmission (1 s) are
    # dropped; the server frees its queue at 1.7 s; the second attempt (from 1.5 s)
    # gets through with its retransmission at 2.5 s.
    def serve_late() -> None:
        time.sleep(1.7)
        while True:
            try:
                conn = late.accept()[0]
            except OSError:
                return
            conn.sendall(f"acpcheck {nonce} w7\n".encode())
            conn.close()

    threading.Thread(target=serve_late, daemon=True).start()
    targets = [Target("tcp", "127.0.0.1", late.getsockname()[1]), Target("tcp", "127.0.0.1", never.getsockname()[1])]
    try:
        with LocalTransport() as local:
            result = local.run(connector_command(1.5, 4, tries=2), stdin=connector_input(targets), timeout=30)
    finally:
        for sock in [*stuffed, late, never]:
            sock.close()
    answers = parse_connector(result.stdout, len(targets), nonce)
    assert (answers[0].kind, answers[0].ident) == ("node", "w7"), result.stdout
    assert answers[1].kind == "timeout", result.stdout
    assert result.stdout.count("acpcheck-conn 1 ") == 1  # only the final attempt is reported


def test_connector_input_refuses_anything_but_a_host() -> None:
    with pytest.raises(ValueError):
        connector_input([Target("tcp", "a; rm -rf /", 1)])


def test_the_python_listener_ends_as_soon_as_nobody_reads_its_output() -> None:
    """It sends no heartbeat while it waits (1,000 of them kept the runner busy): the
    closed reading end of its stdout pipe is how it learns the runner is gone."""
    import select
    import subprocess

    from test_lb import free_ports

    (port,) = free_ports(1)
    command = listener_command(secrets.token_hex(8), "w1", [("tcp", port)], bind="127.0.0.1")
    process = subprocess.Popen(
        ["sh", "-c", command], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL
    )
    try:
        assert process.stdout is not None
        seen = b""
        while b"acpcheck-ready" not in seen:
            seen += process.stdout.read1(4096)
        assert b"acpcheck-tool python3" in seen
        assert select.select([process.stdout], [], [], 1.5)[0] == []  # quiet while it waits: no heartbeat
        process.stdout.close()  # the runner is gone
        process.wait(timeout=5)  # far sooner than any heartbeat (10 s) would notice
    finally:
        process.kill()
