"""Builders for node-check tables: healthy facts, a node or a node set on the example
plan, and grading the way the plugin grades.

    verdict = grade(check_swap_disabled, node_context("w1", swaps=("/swap.img",)))

``healthy_facts`` describes a node that passes every node check, at its plan IP: the
public ``acpcheck.testing.healthy_node_facts`` (Ubuntu 22.04, kernel 5.15, the required
modules loaded, no swap, …). Keyword arguments replace single fields.

The plan is examples/workload-kube-ovn.yaml (ACP 4.3, Kube-OVN overlay, cp1-cp3 at
192.0.2.11-13, w1/w2 at 192.0.2.21-22); ``plan_with`` deep-merges edits into it.

Tables are lists of ``case(...)``; ``run_case`` builds the target, grades it and
checks the status and the message. tests/nodes is a package (``nodes``) so that
these helpers import as ``nodes.conftest`` whatever else is collected.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from acpcheck import testing
from acpcheck.facts.model import DiskSpace, GatherFailure, Mount, NodeContext, NodeFacts, NodeSet
from acpcheck.matrix import known_acp_versions
from acpcheck.model.check import Severity
from acpcheck.model.plan import ClusterPlan, load_plan, plan_from_document
from acpcheck.model.result import CheckResult
from acpcheck.yamlsource import parse_yaml

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "workload-kube-ovn.yaml"
EXAMPLE_DATA: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
EXAMPLE_PLAN = load_plan(EXAMPLE)

KIB_PER_GIB = 1024 * 1024
#: The controller's clock when the healthy probe ran (2026-01-01T00:00:00Z).
PROBE_EPOCH = testing.HEALTHY_CLOCK
# What the healthy node has (acpcheck.testing), named as the tables use them.
REQUIRED_BINARIES = testing.HEALTHY_BINARIES
LOADED_MODULES = testing.HEALTHY_MODULES
HEALTHY_MOUNTS = testing.HEALTHY_MOUNTS
HEALTHY_DISKS = testing.HEALTHY_DISKS


def disk(path: str, size_gib: float, free_gib: float, mount: str | None = None) -> DiskSpace:
    """Space for ``path``; by default the path is its own (dedicated) mount."""
    return DiskSpace(
        path=path, mount=mount or path, size_kib=int(size_gib * KIB_PER_GIB), available_kib=int(free_gib * KIB_PER_GIB)
    )


def mount(target: str, fstype: str = "xfs", *options: str, source: str = "/dev/sdb1") -> Mount:
    return Mount(source=source, target=target, fstype=fstype, options=options or ("rw", "relatime"))


def plan_ip(name: str, plan: ClusterPlan | None = None) -> str:
    node = next(n for n in (plan or EXAMPLE_PLAN).spec.nodes if n.name == name)
    return str(node.ipv4 or node.ipv6)


def healthy_facts(name: str = "cp1", plan: ClusterPlan | None = None, **overrides: Any) -> NodeFacts:
    """Facts of a node that passes every node check (``acpcheck.testing``), at its IP
    in ``plan`` (default: the example plan), with ``overrides`` replacing fields."""
    return testing.healthy_node_facts(name, plan_ip(name, plan), **overrides)


# ---------------------------------------------------------------------------
# Plans, nodes and node sets


def merge(base: Any, edits: Any) -> Any:
    """``edits`` deep-merged into ``base`` (dicts merge, anything else replaces)."""
    if isinstance(edits, dict) and isinstance(base, dict):
        return {**base, **{key: merge(base.get(key), value) for key, value in edits.items()}}
    return copy.deepcopy(edits)


def plan_with(edits: dict[str, Any] | None = None) -> ClusterPlan:
    """The example plan with ``edits`` (a partial plan document) merged in, through the real loader."""
    if not edits:
        return EXAMPLE_PLAN
    data = merge(EXAMPLE_DATA, edits)
    return plan_from_document(parse_yaml(yaml.safe_dump(data), "test-plan.yaml"), known_acp_versions())


def node_context(name: str = "cp1", plan: ClusterPlan | None = None, **overrides: Any) -> NodeContext:
    """What a node check gets as ``node``: the plan's entry for ``name`` and its facts."""
    return testing.healthy_node(plan or EXAMPLE_PLAN, name, **overrides)


def node_set(
    plan: ClusterPlan | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
    failures: dict[str, str] | None = None,
) -> NodeSet:
    """What a cross-node check gets as ``nodes``: every plan node, each with its own
    ``overrides``, except those in ``failures`` (name -> failure kind)."""
    plan = plan or EXAMPLE_PLAN
    overrides, failures = overrides or {}, failures or {}
    members = tuple(
        node_context(n.name, plan, **overrides.get(n.name, {})) for n in plan.spec.nodes if n.name not in failures
    )
    lost = {name: GatherFailure(name, kind, f"{kind} (test)") for name, kind in failures.items()}
    return NodeSet(members=members, failures=lost, plan=plan)


def grade(
    check_fn: Callable[..., Any], target: NodeContext | NodeSet, fail_on: Severity = Severity.MEDIUM
) -> CheckResult:
    """Grade one node or cross-node check exactly as a run does (acpcheck.testing)."""
    argument = "node" if isinstance(target, NodeContext) else "nodes"
    assert argument in check_fn.__acpcheck__.needs, f"{check_fn.__acpcheck__.id} does not take {argument!r}"
    return testing.run_check(check_fn, target.plan, fail_on=fail_on, **{argument: target})


# ---------------------------------------------------------------------------
# Tables


@dataclasses.dataclass(frozen=True)
class Case:
    """One row of a check table."""

    check: Callable[..., Any]
    expect: str  # pass | fail | warn | skip | manual
    facts: dict[str, Any] = dataclasses.field(default_factory=dict)  # overrides of the node's facts
    plan: dict[str, Any] = dataclasses.field(default_factory=dict)  # edits to the example plan
    node: str = "cp1"
    node_set: dict[str, dict[str, Any]] | None = None  # cross-node: overrides per node
    failures: dict[str, str] = dataclasses.field(default_factory=dict)  # cross-node: nodes not gathered
    mentions: tuple[str, ...] = ()  # text the message must contain (the values seen)
    fail_on: Severity = Severity.MEDIUM

    @property
    def check_id(self) -> str:
        return str(self.check.__acpcheck__.id)

    @property
    def is_cross_node(self) -> bool:
        return next(iter(inspect.signature(self.check).parameters)) == "nodes"


def case(check_fn: Callable[..., Any], expect: str, label: str, **fields: Any) -> Any:
    """A table row as a pytest parameter with a readable id."""
    return pytest.param(Case(check_fn, expect, **fields), id=f"{check_fn.__acpcheck__.id}-{expect}-{label}")


def run_case(row: Case) -> CheckResult:
    """Grade a table row; assert its status, and that a FAIL/WARN names the node and the values."""
    plan = plan_with(row.plan)
    target = (
        node_set(plan, row.node_set or {}, row.failures)
        if row.is_cross_node
        else node_context(row.node, plan, **row.facts)
    )
    verdict = grade(row.check, target, row.fail_on)
    assert verdict.status == row.expect, (
        f"{row.check_id}: expected {row.expect}, got {verdict.status}: {verdict.message}"
    )
    if row.expect in ("fail", "warn") and not row.is_cross_node:
        assert f"{row.node}:" in verdict.message, f"the message does not name the node {row.node}: {verdict.message}"
    for text in row.mentions:
        assert text in verdict.message, f"{text!r} not in: {verdict.message}"
    return verdict
