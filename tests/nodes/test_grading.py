"""Grading in one place (acpcheck.grading), through the public acpcheck.testing API:
applicability, verdict, the profile's severity and fail_on, waivers, and the target
grammar — on real first-party checks and hand-made evidence."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from acpcheck import Severity
from acpcheck.checks.network import check_pod_service_cidrs_disjoint
from acpcheck.checks.node_cluster import check_hostnames_unique
from acpcheck.checks.node_kernel import check_swap_disabled
from acpcheck.facts.model import GatherFailure, NodeContext
from acpcheck.grading import GradingPolicy, grade
from acpcheck.model.profile import Profile
from acpcheck.model.waivers import Waiver, Waivers
from acpcheck.sources.base import TargetUnavailable
from acpcheck.sources.nodes import node_context, node_set
from acpcheck.testing import load_plan_text, run_check
from nodes.conftest import healthy_facts

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "workload-kube-ovn.yaml"
PLAN = load_plan_text(EXAMPLE.read_text(), str(EXAMPLE))
OVERLAPPING = load_plan_text(
    EXAMPLE.read_text().replace("serviceCIDR: 10.4.0.0/16", "serviceCIDR: 10.3.128.0/17"), "overlap.yaml"
)
TODAY = dt.date(2026, 12, 1)


def waivers(*entries: tuple[str, str, str]) -> Waivers:
    """(check, target, expires) -> Waivers as of TODAY."""
    return Waivers(
        [Waiver(check=c, target=t, reason="r", owner="o", expires=dt.date.fromisoformat(e)) for c, t, e in entries],
        TODAY,
    )


def node(name: str, **facts: object) -> NodeContext:
    return node_context(
        PLAN, next(n for n in PLAN.spec.nodes if n.name == name), {name: healthy_facts(name, PLAN, **facts)}
    )


def test_plan_check_passes_and_fails_with_the_values_seen() -> None:
    assert run_check(check_pod_service_cidrs_disjoint, PLAN).status == "pass"
    result = run_check(check_pod_service_cidrs_disjoint, OVERLAPPING)
    assert (result.status, result.target, result.severity) == ("fail", "plan", "critical")
    assert "10.3.128.0/17" in result.message and result.refs and result.remediation


def test_severity_override_and_fail_on_turn_a_failure_into_a_warning() -> None:
    lenient = Profile(name="lenient", include=["*"], overrides={"ACP-NET-001": Severity.LOW})
    result = run_check(check_pod_service_cidrs_disjoint, OVERLAPPING, profile=lenient)
    assert (result.status, result.severity) == ("warn", "low")
    assert run_check(check_pod_service_cidrs_disjoint, OVERLAPPING, profile=lenient, fail_on="low").status == "fail"


def test_live_waiver_waives_and_expired_waiver_says_so() -> None:
    live = run_check(
        check_pod_service_cidrs_disjoint, OVERLAPPING, waivers=waivers(("ACP-NET-*", "plan", "2027-01-01"))
    )
    assert live.status == "waived" and live.waiver == {
        "check": "ACP-NET-*",
        "target": "plan",
        "reason": "r",
        "owner": "o",
        "expires": "2027-01-01",
    }
    expired = run_check(
        check_pod_service_cidrs_disjoint, OVERLAPPING, waivers=waivers(("ACP-NET-001", "*", "2026-11-30"))
    )
    assert expired.status == "fail" and "expired on 2026-11-30" in expired.message


def test_node_check_targets_its_node_and_skips_other_roles() -> None:
    failing = run_check(check_swap_disabled, PLAN, node=node("w1", swaps=("/swap.img",)))
    assert (failing.status, failing.target) == ("fail", "node:w1")
    assert run_check(check_swap_disabled, PLAN, node=node("cp1")).status == "pass"


def test_cross_node_target_is_node_star_and_a_node_star_waiver_matches_it() -> None:
    facts = {n.name: healthy_facts(n.name, PLAN, hostname="same") for n in PLAN.spec.nodes}
    result = run_check(check_hostnames_unique, PLAN, nodes=node_set(PLAN, facts))
    assert (result.status, result.target) == ("fail", "node:*")
    waived = run_check(
        check_hostnames_unique,
        PLAN,
        nodes=node_set(PLAN, facts),
        waivers=waivers(("ACP-NODE-033", "node:*", "2027-01-01")),
    )
    assert waived.status == "waived"
    # A waiver for one node does not waive a finding about all of them.
    assert (
        run_check(
            check_hostnames_unique,
            PLAN,
            nodes=node_set(PLAN, facts),
            waivers=waivers(("ACP-NODE-033", "node:cp1", "2027-01-01")),
        ).status
        == "fail"
    )


def test_missing_evidence_is_error_for_that_target_never_fail() -> None:
    facts = {"w1": GatherFailure("w1", "timeout", "192.0.2.21:22: command did not finish within 60 s")}
    with pytest.raises(TargetUnavailable) as raised:
        node_context(PLAN, next(n for n in PLAN.spec.nodes if n.name == "w1"), facts)
    result = grade(
        check_swap_disabled.__acpcheck__, "node:w1", raised.value, GradingPolicy.for_plan(PLAN), phase="setup"
    )
    assert (result.status, result.evidence) == ("error", {"target": "node:w1", "kind": "timeout"})
    assert result.message == "could not check: timeout: 192.0.2.21:22: command did not finish within 60 s"
    # An ERROR is never waived into compliance.
    policy = GradingPolicy(PLAN, Profile(name="p", include=["*"]), waivers(("*", "*", "2027-01-01")))
    assert grade(check_swap_disabled.__acpcheck__, "node:w1", raised.value, policy, phase="setup").status == "error"


def test_a_bug_in_a_check_is_error() -> None:
    broken = check_swap_disabled.__acpcheck__
    result = grade(broken, "node:w1", KeyError("swaps"), GradingPolicy.for_plan(PLAN))
    assert result.status == "error" and "KeyError" in result.message


def test_evidence_the_check_needs_must_be_given() -> None:
    with pytest.raises(TypeError, match="needs evidence node"):
        run_check(check_swap_disabled, PLAN)
