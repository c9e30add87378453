"""Plans without ``spec.network``: imported and registered clusters may leave it out.

Every check that reads the network section must SKIP on such a plan with one reason,
decided in one place (``When``), and no check may crash on it. Which checks read it is
worked out from the code itself (any ``….spec.network`` in the check, or in a helper
of its module or of ``checks/support.py`` that it calls), so a new check that reads
the network without saying so fails here rather than on a user's plan.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from types import ModuleType
from typing import Any

import pytest
from conftest import DELETE, make_plan, run_check

from acpcheck.catalog import load_catalog
from acpcheck.checks import support
from acpcheck.model.check import Scope, When
from acpcheck.model.plan import ClusterPlan

NO_NETWORK = "the plan has no network section (imported/registered clusters may omit it)"
CATALOG = load_catalog()


def without_network(acp: dict[str, str] | None = None, **cluster: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"cluster": cluster, "network": DELETE}
    if acp:
        spec["acp"] = acp
    return {"spec": spec}


#: Third-party plans without a network section, in the shapes that reach different When conditions.
PLANS: dict[str, dict[str, Any]] = {
    "imported": without_network(type="imported", kubernetesVersion="1.32.9"),
    "registered": without_network(type="registered", kubernetesVersion="v1.33.5-eks-1"),
    "imported-global-ipv6": without_network(
        type="imported", role="global", ipFamily="ipv6", kubernetesVersion="1.32.9"
    ),
    "registered-docker": without_network(type="registered", containerRuntime="docker", kubernetesVersion="1.32.9"),
    "imported-upgrade": without_network(
        {"version": "4.3", "upgradeFrom": "4.2"}, type="imported", kubernetesVersion="1.33.7"
    ),
}


def plan_named(name: str) -> ClusterPlan:
    plan = make_plan(PLANS[name])
    assert plan.spec.network is None
    return plan


# ---------------------------------------------------------------------------
# Which checks read spec.network, from their code


def _reads_spec_network(tree: ast.AST) -> bool:
    return any(
        isinstance(n, ast.Attribute)
        and n.attr == "network"
        and isinstance(n.value, ast.Attribute)
        and n.value.attr == "spec"
        for n in ast.walk(tree)
    )


def _functions(module: ModuleType) -> dict[str, ast.FunctionDef]:
    tree = ast.parse(inspect.getsource(module))
    return {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}


def network_readers(module: ModuleType) -> set[str]:
    """Names of the functions visible in ``module`` (its own and support's) that read
    spec.network, directly or through a helper."""
    functions = {**_functions(support), **_functions(module)}
    calls = {
        name: {n.func.id for n in ast.walk(f) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
        for name, f in functions.items()
    }
    readers = {name for name, f in functions.items() if _reads_spec_network(f)}
    while True:
        more = {name for name, called in calls.items() if called & readers} - readers
        if not more:
            return readers
        readers |= more


def _module_and_name(function: str) -> tuple[ModuleType, str]:
    module, name = function.rsplit(".", 1)
    return importlib.import_module(module), name


def _statically_reading() -> set[str]:
    found = set()
    for check_id, meta in CATALOG.items():
        module, name = _module_and_name(meta.function)
        if name in network_readers(module):
            found.add(check_id)
    return found


READING = _statically_reading()


def test_the_analysis_finds_known_readers() -> None:
    # Direct reads, reads through a helper of the module, and a node check.
    assert {"ACP-NET-001", "ACP-NET-003", "ACP-NET-010", "ACP-VER-005", "ACP-UPG-004", "ACP-NODE-020"} <= READING
    assert "ACP-NET-012" not in READING and "ACP-VER-003" not in READING


@pytest.mark.parametrize("check_id", sorted(CATALOG))
def test_a_check_that_reads_the_network_says_so(check_id: str) -> None:
    if check_id in READING:
        assert CATALOG[check_id].applies.reads_network, (
            f"{check_id} reads spec.network: give it When(needs_network=True)"
        )


# ---------------------------------------------------------------------------
# Applicability on plans without a network section


@pytest.mark.parametrize("name", sorted(PLANS))
def test_every_check_decides_applicability_without_crashing(name: str) -> None:
    plan = plan_named(name)
    for check_id, meta in CATALOG.items():
        reason = meta.applies.not_applicable(plan)
        if meta.applies.reads_network:
            assert reason is not None and NO_NETWORK in reason, check_id
        else:
            assert reason is None or NO_NETWORK not in reason, check_id


@pytest.mark.parametrize("name", sorted(PLANS))
def test_no_plan_check_errors_without_a_network(name: str) -> None:
    plan = plan_named(name)
    verdicts = {}
    for check_id, meta in CATALOG.items():
        if meta.scope is Scope.PLAN:
            module, function = _module_and_name(meta.function)
            verdicts[check_id] = run_check(getattr(module, function), plan)
    assert not {check_id: v.message for check_id, v in verdicts.items() if v.status == "error"}
    assert all(NO_NETWORK in verdicts[check_id].message for check_id in verdicts if check_id in READING)
    # The checks that do not need the network still judge the plan.
    assert verdicts["ACP-VER-003"].status in ("pass", "warn")


def test_the_reason_is_one_constant() -> None:
    assert When.NO_NETWORK == NO_NETWORK


@pytest.mark.parametrize(
    ("when", "reads"),
    [
        (When(), False),
        (When(needs_network=True), True),
        (When(plugins=frozenset({"kube-ovn"})), True),
        (When(transmit_modes=frozenset({"underlay"})), True),
        (When(cluster_types=frozenset({"imported"}), runtimes=frozenset({"docker"})), False),
    ],
)
def test_needs_network_is_said_or_implied(when: When, reads: bool) -> None:
    assert when.reads_network is reads
    plan = plan_named("imported")
    reason = when.not_applicable(plan)
    assert (reason is not None and NO_NETWORK in reason) is reads


def test_a_plan_with_a_network_is_judged_as_before() -> None:
    imported_with_network = make_plan({"spec": {"cluster": {"type": "imported", "kubernetesVersion": "1.32.9"}}})
    assert When(needs_network=True).not_applicable(imported_with_network) is None
    assert (
        When(plugins=frozenset({"calico"})).not_applicable(imported_with_network)
        == "not applicable: network plugin kube-ovn"
    )


def test_explain_mentions_the_network_only_where_it_limits_anything() -> None:
    assert When(needs_network=True).describe() == "plans with a network section"
    assert When(cluster_types=frozenset({"on-premise"}), needs_network=True).describe() == "cluster type on-premise"
    assert When(plugins=frozenset({"kube-ovn"}), needs_network=True).describe() == "network plugin kube-ovn"
    assert When().describe() == "always"
