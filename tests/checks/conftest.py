"""Helpers for check tables: build a plan from the base example plus edits, run one check.

    def test_pod_service_overlap():
        plan = make_plan({"spec": {"network": {"serviceCIDR": "10.3.128.0/17"}}})
        assert run_check(check_pod_service_disjoint, plan).status == "fail"

``make_plan`` deep-merges the edits into ``BASE`` (a valid 4.3 Kube-OVN workload
plan); a value of ``DELETE`` removes the key. The plan goes through the real loader,
so every test plan is also schema-valid.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from acpcheck import testing
from acpcheck.matrix import known_acp_versions
from acpcheck.model.check import Severity
from acpcheck.model.plan import ClusterPlan, plan_from_document
from acpcheck.model.result import CheckResult
from acpcheck.yamlsource import parse_yaml

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
BASE: dict[str, Any] = yaml.safe_load((EXAMPLES / "workload-kube-ovn.yaml").read_text())
DELETE = object()


def merge(base: Any, edits: Any) -> Any:
    if isinstance(edits, dict):
        result = dict(base) if isinstance(base, dict) else {}
        for key, value in edits.items():
            if value is DELETE:
                result.pop(key, None)
            else:
                result[key] = merge(result.get(key), value)
        return result
    return copy.deepcopy(edits)


def make_plan(edits: dict[str, Any] | None = None, base: dict[str, Any] | None = None) -> ClusterPlan:
    data = merge(base if base is not None else BASE, edits or {})
    return plan_from_document(parse_yaml(yaml.safe_dump(data), "test-plan.yaml"), known_acp_versions())


def run_check(
    function: Callable[..., Any],
    plan: ClusterPlan,
    params: dict[str, Any] | None = None,
    fail_on: Severity = Severity.MEDIUM,
) -> CheckResult:
    """Grade one plan check exactly as a run does (acpcheck.testing)."""
    return testing.run_check(function, plan, params=params, fail_on=fail_on)


@pytest.fixture
def base_plan() -> ClusterPlan:
    return make_plan()
