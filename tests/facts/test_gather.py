"""gather_all over real nodes: healthy and broken nodes side by side, progress, save/load of the result."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from realsshd import FAST, LOCALHOST, Lab, free_port

from acpcheck.facts import gather_all, load_facts, save_facts
from acpcheck.facts.model import GatherFailure, NodeFacts
from acpcheck.transport import KnownHosts, SshPool


def node(name: str, **ssh: Any) -> dict[str, Any]:
    return {"name": name, "role": "worker", "ipv4": LOCALHOST, **({"ssh": ssh} if ssh else {})}


def test_gather_all_mixed_nodes(lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wrong_password = "wrong-" + lab.plain.password
    monkeypatch.setenv("ACPT_WRONG_PASSWORD", wrong_password)
    nodes = [
        node("root"),
        node("plain", user=lab.plain.name),
        node("sudoer", user=lab.sudoer.name),
        node("closed", port=free_port()),
        node("bad-password", user=lab.plain.name, auth={"passwordEnv": "ACPT_WRONG_PASSWORD"}),
        node("missing-key", auth={"privateKeyFile": str(tmp_path / "no_such_key")}),
    ]
    if lab.proxy is not None:
        monkeypatch.setenv("ACPT_PROXY_PASSWORD", lab.proxy.password)
        nodes.append(
            node(
                "via-proxy",
                proxy={"url": lab.proxy.url, "username": lab.proxy.username, "passwordEnv": "ACPT_PROXY_PASSWORD"},
            )
        )
    plan = lab.plan(nodes)
    calls: list[tuple[int, int, str, bool]] = []

    started = time.monotonic()
    results = gather_all(
        plan, known_hosts=tmp_path / "known_hosts", timeouts=FAST, progress=lambda *call: calls.append(call)
    )
    elapsed = time.monotonic() - started

    assert list(results) == [n["name"] for n in nodes]  # plan order, whatever the completion order
    kinds = {name: (r.kind if isinstance(r, GatherFailure) else "ok") for name, r in results.items()}
    assert kinds == {
        "root": "ok",
        "plain": "ok",
        "sudoer": "ok",
        "closed": "unreachable",
        "bad-password": "auth",
        "missing-key": "permission",
        **({"via-proxy": "ok"} if lab.proxy is not None else {}),
    }
    assert [c[0] for c in calls] == list(range(1, len(nodes) + 1)) and {c[1] for c in calls} == {len(nodes)}
    assert {c[2]: c[3] for c in calls} == {name: kind == "ok" for name, kind in kinds.items()}
    failure = results["bad-password"]
    assert isinstance(failure, GatherFailure) and failure.extra == {
        "address": f"{lab.plain.name}@127.0.0.1:{lab.sshd.port}"
    }
    assert all(wrong_password not in str(r) and lab.plain.password not in str(r) for r in results.values())
    assert elapsed < 30  # every node bounded by its own timeouts, in parallel

    save_facts(tmp_path / "facts", results)
    assert load_facts(tmp_path / "facts", plan) == results


def test_selected_nodes_and_pool_keeps_connections(lab: Lab, tmp_path: Path) -> None:
    plan = lab.plan([node("a"), node("b")])
    with SshPool(plan, timeouts=FAST, known_hosts=KnownHosts(tmp_path / "known_hosts")) as pool:
        results = gather_all(plan, ["b"], pool=pool)
        assert list(results) == ["b"] and isinstance(results["b"], NodeFacts)
        session = pool.session("b")  # the probe's connection, still open for remediation
        assert session.is_active and session.run("true").ok
    with pytest.raises(KeyError):
        gather_all(plan, ["nope"])
