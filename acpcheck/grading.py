"""Grading: how one check on one target becomes a ``CheckResult``, in one place.

    applicability  →  verdict  →  severity / fail_on  →  waiver

- **applicability**: a check whose ``When`` does not match the plan is SKIP with
  the reason (the plugin asks before it creates items, ``evaluate`` before it calls
  the body);
- **verdict**: how the body ended — returned (PASS), ``fail()``/``assert``
  (FAIL), ``warn()`` (WARN), ``manual()`` (MANUAL), ``skip()`` (SKIP), evidence
  that could not be gathered for its target (ERROR), anything else (ERROR:
  "could not check" never reads as "non-compliant");
- **severity / fail_on**: the profile may override a check's severity, and a
  failure below the profile's ``fail_on`` is a WARN;
- **waiver**: a FAIL or WARN matched by a live waiver is WAIVED; an expired
  waiver waives nothing and says so in the message (and fails the run).

Three callers, one logic: the pytest plugin (pytest ran the body; ``grade``),
``acpcheck.testing.run_check`` and remediation's verify step (``evaluate`` runs
the body itself).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from acpcheck.model.check import CheckMeta, NotApplicable, Scope, verdict_of
from acpcheck.model.result import ALL_NODES, CheckResult, Status
from acpcheck.sources.base import TargetUnavailable

if TYPE_CHECKING:
    from acpcheck.model.plan import ClusterPlan
    from acpcheck.model.profile import Profile
    from acpcheck.model.waivers import Waivers


@dataclass(frozen=True)
class GradingPolicy:
    """The parts of a run's settings that grading reads."""

    plan: ClusterPlan
    profile: Profile
    waivers: Waivers

    @classmethod
    def for_plan(
        cls, plan: ClusterPlan, profile: Profile | None = None, waivers: Waivers | None = None
    ) -> GradingPolicy:
        """A policy with the defaults of a plain run: no waivers, and a profile that
        selects everything with ``fail_on: medium`` and the default parameters."""
        from acpcheck.model.profile import Profile
        from acpcheck.model.waivers import Waivers

        return cls(plan, profile or Profile(name="default", include=["*"]), waivers or Waivers([]))


def not_applicable(meta: CheckMeta, plan: ClusterPlan) -> str | None:
    """Why ``meta`` does not apply to ``plan`` (SKIP with this reason), or None."""
    if not plan.declared and not meta.plan_free:
        return (
            f"not applicable: cluster {plan.metadata.name} has no plan file in the fleet (only live-state "
            "checks run; give its entry a plan: for the others)"
        )
    cloud = plan.spec.cluster.cloud_provider
    if meta.scope is Scope.NODE and cloud is not None:
        # The one rule that is about where a check runs, not about the plan's contents: a node check
        # runs over SSH, and the nodes of a public-cloud cluster are the provider's ("Adding nodes
        # through the platform interface is not supported": the EKS/AKS/GKE import pages).
        return (
            f"not applicable: a public-cloud cluster ({cloud.upper()}): its nodes are managed by the cloud "
            "provider, not reached by ACP over SSH"
        )
    return meta.applies.not_applicable(plan)


def grade(
    meta: CheckMeta,
    target: str,
    ending: BaseException | None,
    policy: GradingPolicy,
    *,
    phase: str = "call",
    duration: float = 0.0,
) -> CheckResult:
    """The result of ``meta`` on ``target`` whose body ended with ``ending`` (None: it returned).

    ``phase`` is where ``ending`` was raised: "call" for the body itself; "setup" or
    "teardown" for what pytest ran around it (a fixture), which can only be an ERROR
    or a SKIP, never a finding.
    """
    severity = policy.profile.severity_of(meta)
    if isinstance(ending, TargetUnavailable):
        status, message, evidence = (
            Status.ERROR,
            f"could not check: {ending.kind}: {ending.message}",
            {"target": ending.target, "kind": ending.kind},
        )
    elif phase != "call" and not _is_skip(ending):
        status, message, evidence = (
            Status.ERROR,
            f"could not check ({phase} failed): {type(ending).__name__}: {ending}",
            {},
        )
    else:
        verdict = verdict_of(ending, severity, policy.profile.fail_on)
        status, message, evidence = verdict.status, verdict.message, verdict.evidence
    waiver = None
    if status in (Status.FAIL, Status.WARN):
        found = policy.waivers.find(meta.id, target)
        if found is not None and not found.is_expired(policy.waivers.today):
            status, waiver = Status.WAIVED, found.as_dict()
        elif found is not None:
            message += f"\n(waiver owned by {found.owner} expired on {found.expires.isoformat()}; it no longer applies)"
    return CheckResult(
        check=meta.id,
        title=meta.title,
        area=meta.area,
        severity=str(severity),
        status=status,
        target=target,
        message=message,
        evidence=_jsonable(evidence),
        remediation=meta.remediation,
        refs=list(meta.refs),
        waiver=waiver,
        duration=round(duration, 4),
        cluster=policy.plan.metadata.name,
    )


def skipped(meta: CheckMeta, target: str, reason: str, policy: GradingPolicy) -> CheckResult:
    """The SKIP result of a check that does not apply (the body never ran)."""
    return grade(meta, target, NotApplicable(reason), policy)


def evaluate(
    check: Callable[..., Any], policy: GradingPolicy, evidence: Mapping[str, Any], target: str | None = None
) -> CheckResult:
    """Run one check body against ``evidence`` and grade it: applicability first.

    ``evidence`` maps the body's parameter names to values (``node``, ``nodes``,
    and whatever other sources provide); ``plan`` and ``params`` come from the
    policy when the body asks for them. ``target`` defaults to what the evidence
    is about (see ``target_of``).
    """
    meta: CheckMeta = check.__acpcheck__  # type: ignore[attr-defined]
    target = target or target_of(meta, policy.plan, evidence)
    reason = not_applicable(meta, policy.plan)
    node = evidence.get("node")
    if (
        reason is None
        and meta.scope is Scope.NODE
        and node is not None
        and getattr(node, "role", None) not in meta.roles
    ):
        reason = f"not applicable: runs on {'/'.join(sorted(meta.roles))} nodes only"  # the plugin makes no item for it
    if reason:
        return skipped(meta, target, reason, policy)
    supplied = {"plan": policy.plan, "params": policy.profile.params, **evidence}
    wanted = inspect.signature(check).parameters
    missing = [name for name in wanted if name not in supplied]
    if missing:
        raise TypeError(f"{meta.id} needs evidence {', '.join(missing)} (give it as keyword arguments)")
    try:
        check(**{name: supplied[name] for name in wanted})
    except Exception as error:  # noqa: BLE001 — every ending is graded, exactly as the plugin does
        return grade(meta, target, error, policy)
    return grade(meta, target, None, policy)


def target_of(meta: CheckMeta, plan: ClusterPlan, evidence: Mapping[str, Any]) -> str:
    """The target grammar (docs/interfaces.md): ``plan``, ``node:<name>``, ``node:*``
    for a check about all nodes at once, ``cluster:<name>``, ``fleet:<name>``."""
    if meta.scope is Scope.FLEET:
        fleet = evidence.get("fleet")
        return f"fleet:{fleet.name}" if fleet is not None else "fleet:*"
    if meta.scope is Scope.NODE:
        node = evidence.get("node")
        return f"node:{node.name}" if node is not None else ALL_NODES
    if meta.scope is Scope.CLUSTER:
        return f"cluster:{plan.metadata.name}"
    return "plan"


def _is_skip(ending: BaseException | None) -> bool:
    return isinstance(ending, NotApplicable)


def _jsonable(evidence: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(evidence, default=str))
