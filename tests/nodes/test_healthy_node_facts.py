"""``acpcheck.testing``'s healthy node, used the way a third-party check pack would use
it: every first-party node check, run on it through ``run_check``, finds nothing."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from acpcheck import NodeSet, Scope
from acpcheck.catalog import load_catalog
from acpcheck.testing import healthy_node, healthy_node_facts, load_plan_text, run_check

PLAN = load_plan_text((Path(__file__).resolve().parents[2] / "examples" / "workload-kube-ovn.yaml").read_text())


def node_checks() -> list[Callable[..., Any]]:
    """Every first-party check whose evidence is node facts alone: one node's, or every node's."""
    found = []
    for meta in load_catalog().values():
        evidence = meta.needs - {"plan", "params"}
        if meta.scope is Scope.NODE and evidence in ({"node"}, {"nodes"}):
            module, _, name = meta.function.rpartition(".")
            found.append(getattr(importlib.import_module(module), name))
    return found


@pytest.mark.parametrize("check_function", node_checks(), ids=lambda function: function.__acpcheck__.id)
def test_no_node_check_fails_on_the_healthy_node(check_function: Callable[..., Any]) -> None:
    meta = check_function.__acpcheck__
    if "nodes" in meta.needs:
        members = tuple(healthy_node(PLAN, node.name) for node in PLAN.spec.nodes)
        results = [run_check(check_function, PLAN, nodes=NodeSet(members=members, failures={}, plan=PLAN))]
    else:
        results = [run_check(check_function, PLAN, node=healthy_node(PLAN, node.name)) for node in PLAN.spec.nodes]
    wrong = [f"{r.target}: {r.status}: {r.message}" for r in results if r.status in ("fail", "warn", "error")]
    assert not wrong, wrong


def test_overrides_replace_single_facts() -> None:
    node = healthy_node(PLAN, "w1", swaps=("/swap.img",))
    assert node.facts.swaps == ("/swap.img",) and node.facts.node == "w1" and node.role == "worker"
    assert node.facts.kernel_release == healthy_node_facts().kernel_release
    with pytest.raises(TypeError):
        healthy_node_facts(no_such_fact=1)
    with pytest.raises(ValueError, match="no node 'nope'"):
        healthy_node(PLAN, "nope")


def test_the_node_address_is_on_eth0_with_its_route() -> None:
    facts = healthy_node_facts("cp2", "192.0.2.12")
    assert [(a.interface, a.address, a.prefix_length) for a in facts.addresses][-1] == ("eth0", "192.0.2.12", 24)
    assert facts.routes == (
        "default via 192.0.2.1 dev eth0 proto static",
        "192.0.2.0/24 dev eth0 proto kernel scope link src 192.0.2.12",
    )
    six = healthy_node_facts("cp1", "2001:db8::11")
    assert six.addresses[-1].family == 6 and six.routes[0] == "default via 2001:db8::1 dev eth0 proto static"
    assert "2001:db8::11 cp1" in (six.etc_hosts or "")
