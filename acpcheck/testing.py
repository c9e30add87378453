"""Test your own checks: run one check against a plan and hand-made evidence.

The result is graded by the same function that grades a real run
(``acpcheck.grading``): applicability, verdict, the profile's severity overrides
and ``fail_on``, waivers. So a table of cases written with it says what
``acpcheck run`` would report::

    from acpcheck.testing import load_plan_text, run_check

    PLAN = load_plan_text(open("examples/workload-kube-ovn.yaml").read())

    def test_swap_on_fails():
        node = node_context_for_my_test(...)           # a NodeContext with the facts you want
        result = run_check(check_swap_disabled, PLAN, node=node)
        assert result.status == "fail" and "swap" in result.message

Evidence is passed by the check's parameter names (``node``, ``nodes``, …);
``plan`` and ``params`` are filled in for you.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from acpcheck.grading import GradingPolicy, evaluate
from acpcheck.model.check import Severity
from acpcheck.model.plan import ClusterPlan
from acpcheck.model.profile import Profile, load_profile
from acpcheck.model.result import CheckResult
from acpcheck.model.waivers import Waivers, load_waivers

__all__ = ["load_plan_text", "run_check"]


def run_check(
    check: Callable[..., Any],
    plan: ClusterPlan,
    *,
    profile: Profile | str | None = None,
    waivers: Waivers | str | Path | None = None,
    params: dict[str, Any] | None = None,
    fail_on: Severity | str | None = None,
    target: str | None = None,
    **evidence: Any,
) -> CheckResult:
    """Grade ``check`` on ``plan`` with ``evidence`` (keyword arguments named like its parameters).

    ``profile``: a Profile, or a built-in name / profile file (default: every check,
    ``fail_on: medium``). ``params`` and ``fail_on`` override the profile's.
    ``waivers``: a Waivers object or a waivers file. ``target``: the result's target
    (default: ``node:<name>`` for ``node``, ``node:*`` for ``nodes``, else ``plan``).
    """
    chosen = load_profile(profile) if isinstance(profile, str) else profile
    policy = GradingPolicy.for_plan(
        plan, chosen, load_waivers(waivers) if isinstance(waivers, (str, Path)) else waivers
    )
    if params or fail_on is not None:
        resolved = dataclasses.replace(
            policy.profile,
            params={**policy.profile.params, **(params or {})},
            fail_on=policy.profile.fail_on
            if fail_on is None
            else fail_on
            if isinstance(fail_on, Severity)
            else Severity.parse(fail_on),
        )
        policy = GradingPolicy(plan, resolved, policy.waivers)
    return evaluate(check, policy, evidence, target)


def load_plan_text(text: str, file_name: str = "plan.yaml") -> ClusterPlan:
    """A plan from YAML text, through the real loader (schema errors raise InputError)."""
    from acpcheck.matrix import known_acp_versions
    from acpcheck.model.plan import plan_from_document
    from acpcheck.yamlsource import parse_yaml

    return plan_from_document(parse_yaml(text, file_name), known_acp_versions())
