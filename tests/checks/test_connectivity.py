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

from acpcheck.checks import connectivity as checks
from acpcheck.model.plan import Node
from acpcheck.sources.connectivity import ALL_PAIRS_UP_TO, ConnEvidence, FromNode, GlobalResult, GlobalTarget, Pair, global_targets, peers_of
from acpcheck.sources.nodeside import Target, connector_command, connector_input, listener_command, parse_connector, parse_listener
from acpcheck.testing import run_check
from nodes.conftest import node_context, plan_with

PLAN = plan_with()
WORKLOAD_WITH_GLOBAL = plan_with({"spec": {"cluster": {"annotations": {"cpaas.io/platform-url": "https://global.example.com"}}}})


def evidence(**nodes: FromNode) -> ConnEvidence:
    results = {name: FromNode(ok=20, targets=20) for name in ("cp1", "cp2", "cp3", "w1", "w2")}
    results.update(nodes)
    return ConnEvidence(mode="proof", nodes=results)


CONN_CASES = [
    ("w1", evidence(), "pass", []),
    ("w1", evidence(w1=FromNode(ok=18, targets=20, failed=[Pair(to="cp3", port=6443, protocol="tcp", outcome="timeout"),
                                                           Pair(to="cp3", port=2379, protocol="tcp", outcome="refused")])), "fail",
     ["w1 cannot reach cp3", "6443/tcp (apiserver) timeout", "2379/tcp (etcd-client) refused"]),
    ("cp1", evidence(cp1=FromNode(ok=19, targets=20, failed=[Pair(to="w2", port=6081, protocol="udp", outcome="timeout")])), "fail",
     ["cp1 cannot reach w2", "6081/udp (geneve) timeout"]),
    ("cp2", evidence(cp2=FromNode(ok=19, targets=20, failed=[Pair(to="cp3", port=6443, protocol="tcp", outcome="node", detail="cp1 answered instead")])),
     "fail", ["cp3", "cp1 answered instead"]),
    ("cp2", evidence(cp2=FromNode(ok=19, targets=19, unproven=[Pair(to="cp3", port=6443, protocol="tcp", outcome="busy", detail="kube-apiserver listens on 0.0.0.0")])),
     "manual", ["cp2 -> cp3", "6443/tcp", "busy", "kube-apiserver"]),
]


@pytest.mark.parametrize(("name", "given", "status", "words"), CONN_CASES, ids=["all-reached", "firewalled-cp", "udp-tunnel", "wrong-node", "busy-peer"])
def test_node_reaches_peers(name: str, given: ConnEvidence, status: str, words: list[str]) -> None:
    result = run_check(checks.check_node_reaches_peers, PLAN, node=node_context(name), connectivity=given)
    assert (result.status, result.target) == (status, f"node:{name}"), result.message
    assert all(word in result.message for word in words), result.message


def test_node_whose_connector_failed_is_an_error() -> None:
    given = evidence(w2=FromNode(error="unreachable: the connection was lost"))
    result = run_check(checks.check_node_reaches_peers, PLAN, node=node_context("w2"), connectivity=given)
    assert result.status == "error" and "connection was lost" in result.message


def test_connectivity_skips_in_post_install_mode() -> None:
    result = run_check(checks.check_node_reaches_peers, PLAN, node=node_context("w1"), connectivity=ConnEvidence(mode="live", reason="ACPCHECK_LIVE=1"))
    assert result.status == "skip" and "ACPCHECK_LIVE" in result.message


def global_evidence(outcomes: dict[str, str]) -> ConnEvidence:
    targets = [GlobalTarget(name="platform-url", host="global.example.com", port=443, source="annotation"),
               GlobalTarget(name="registry", host="global.example.com", port=11443, source="annotation")]
    results = {"w1": [GlobalResult(name=t.name, host=t.host, port=t.port, outcome=outcomes[t.name]) for t in targets]}
    return ConnEvidence(mode="proof", nodes={"w1": FromNode(ok=2, targets=2)}, global_targets=targets, global_results=results)


@pytest.mark.parametrize(("check", "outcomes", "status", "words"), [
    (checks.check_reaches_platform_url, {"platform-url": "connected", "registry": "connected"}, "pass", []),
    (checks.check_reaches_platform_url, {"platform-url": "timeout", "registry": "connected"}, "fail", ["w1", "global.example.com:443", "timeout"]),
    (checks.check_reaches_global_registry, {"platform-url": "connected", "registry": "connected"}, "pass", []),
    (checks.check_reaches_global_registry, {"platform-url": "connected", "registry": "refused"}, "fail", ["global.example.com:11443", "refused"]),
    (checks.check_reaches_global_registry, {"platform-url": "connected", "registry": "notool"}, "manual", ["nc -zv global.example.com 11443"]),
], ids=["platform-url", "platform-url-blocked", "registry", "registry-refused", "registry-no-tool"])
def test_global_targets(check: Any, outcomes: dict[str, str], status: str, words: list[str]) -> None:
    result = run_check(check, WORKLOAD_WITH_GLOBAL, node=node_context("w1", WORKLOAD_WITH_GLOBAL), connectivity=global_evidence(outcomes))
    assert result.status == status, result.message
    assert all(word in result.message for word in words), result.message


def test_global_targets_skip_when_the_plan_names_none() -> None:
    given = ConnEvidence(mode="proof", nodes={"w1": FromNode(ok=1, targets=1)})
    assert run_check(checks.check_reaches_platform_url, PLAN, node=node_context("w1"), connectivity=given).status == "skip"


@pytest.mark.parametrize(("edits", "expected"), [
    ({}, []),
    ({"cluster": {"annotations": {"cpaas.io/platform-url": "https://global.example.com"}}},
     [("platform-url", "global.example.com", 443), ("registry", "global.example.com", 11443)]),
    ({"cluster": {"annotations": {"cpaas.io/platform-url": "https://global.example.com:8443"}}, "registry": {"type": "platform", "address": "reg.example.com"}},
     [("platform-url", "global.example.com", 8443), ("registry", "reg.example.com", 11443)]),
    ({"cluster": {"annotations": {"cpaas.io/platform-url": "https://g.example.com"}}, "registry": {"type": "private", "address": "harbor.example.com"}},
     [("platform-url", "g.example.com", 443)]),
    ({"cluster": {"role": "global", "annotations": {"cpaas.io/platform-url": "https://g.example.com"}}}, []),
])
def test_what_the_plan_names_of_the_global_cluster(edits: dict[str, Any], expected: list[tuple[str, str, int]]) -> None:
    targets = global_targets(plan_with({"spec": edits}))
    assert [(t.name, t.host, t.port) for t in targets] == expected


def nodes(count: int, control_plane: int = 3) -> list[Node]:
    return [Node(name=f"n{i:04d}", role="control-plane" if i < control_plane else "worker", ipv4=f"10.0.{i // 250}.{i % 250 + 1}") for i in range(count)]


def test_all_pairs_up_to_the_limit() -> None:
    ordered = nodes(ALL_PAIRS_UP_TO)
    for position, node in enumerate(ordered):
        assert {peer.name for peer in peers_of(position, ordered)} == {n.name for n in ordered} - {node.name}


def test_above_the_limit_every_node_is_probed_by_as_many_as_at_the_limit() -> None:
    ordered = nodes(250)
    probed_by: Counter[str] = Counter()
    for position, node in enumerate(ordered):
        peers = peers_of(position, ordered)
        assert node not in peers and {"n0000", "n0001", "n0002"} - {node.name} <= {p.name for p in peers}  # every control-plane node
        assert len(peers) <= ALL_PAIRS_UP_TO + 2
        probed_by.update(peer.name for peer in peers)
    assert min(probed_by.values()) >= ALL_PAIRS_UP_TO - 1


# ---------------------------------------------------------------------------
# The node-side connector, under each tool


@pytest.mark.parametrize("tool", ["python3", "perl", "socat", "nc", "busybox-nc"])
def test_connector_reports_each_target_with_one_tool(tool: str, tmp_path: Path) -> None:
    from acpcheck.transport.local import LocalTransport

    from test_lb import free_ports, only_sh_and  # the tools' PATH, shared with the listener tests

    path = only_sh_and(tool, tmp_path / "bin")
    nonce = secrets.token_hex(8)
    listening, refused, udp = free_ports(3)
    with LocalTransport() as local:
        handle = local.start(listener_command(nonce, "cp2", [("tcp", listening), ("udp", udp)], bind="127.0.0.1"), deadline=30)
        try:
            while "acpcheck-ready" not in handle.output()[0] and handle.running():
                time.sleep(0.02)
            assert parse_listener(handle.output()[0]).ready
            targets = [Target("tcp", "127.0.0.1", listening), Target("tcp", "127.0.0.1", refused), Target("tcp", "127.0.0.1", listening, "tcp"),
                       Target("udp", "127.0.0.1", udp)]
            result = local.run(f"PATH={path}; export PATH\n" + connector_command(1.0), stdin=connector_input(targets), timeout=30)
        finally:
            handle.stop()
    answers = parse_connector(result.stdout, len(targets), nonce)
    assert (answers[0].kind, answers[0].ident) == ("node", "cp2")
    assert answers[1].kind == "refused"
    assert answers[2].kind in ("connected", "node")
    assert answers[3].kind == ("node" if tool in ("python3", "perl") else "notool")


def test_connector_input_refuses_anything_but_a_host() -> None:
    with pytest.raises(ValueError):
        connector_input([Target("tcp", "a; rm -rf /", 1)])
