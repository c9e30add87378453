"""Check metadata, the ``@check`` decorator, and how a check reports a finding.

A check is a plain function whose metadata is static data (ansible-lint style):
``acpcheck list`` and ``acpcheck explain`` read it without running anything, and
the pytest plugin reads it to select, parametrise, skip and grade items.
"""

from __future__ import annotations

import enum
import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from packaging.specifiers import SpecifierSet

from acpcheck.model.result import Status

if TYPE_CHECKING:
    from acpcheck.model.plan import ClusterPlan

AREAS = ("NODE", "VER", "NET", "LB", "ENC", "ROLE", "REG", "CONN", "HCP", "UPG", "CLOUD", "IMG")
ID_PATTERN = re.compile(rf"^ACP-({'|'.join(AREAS)})-\d{{3}}$")


class Severity(enum.IntEnum):
    """How bad a failure is; the profile's ``fail_on`` turns lower ones into WARN."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.upper()]
        except KeyError:
            raise ValueError(f"{text!r} is not a severity ({', '.join(s.name.lower() for s in cls)})") from None

    def __str__(self) -> str:
        return self.name.lower()


class Scope(enum.StrEnum):
    """What a check needs: the plan alone, one node over SSH, or a live cluster."""

    PLAN = "plan"
    NODE = "node"
    CLUSTER = "cluster"
    #: a rule about a whole fleet (``acpcheck run --fleet``), judged on its global cluster: target ``fleet:<name>``
    FLEET = "fleet"


@dataclass(frozen=True)
class When:
    """Conditions under which a check applies; otherwise it is SKIPped with the reason.

    Every field left empty means "any". ``acp`` is a PEP 440 specifier on the
    target ACP version (``">=4.2"``); ``upgrade`` True/False limits the check to
    plans that do / do not describe an upgrade (``spec.acp.upgradeFrom``).

    ``needs_network`` marks a check that reads ``spec.network``, which plans of
    imported and registered clusters may leave out; ``plugins`` and
    ``transmit_modes`` imply it. Such a check is SKIPped on a plan without one
    (and this is the only place that looks at ``spec.network`` to decide).
    """

    acp: str | None = None
    cluster_roles: frozenset[str] = frozenset()
    cluster_types: frozenset[str] = frozenset()
    plugins: frozenset[str] = frozenset()
    transmit_modes: frozenset[str] = frozenset()
    ip_families: frozenset[str] = frozenset()
    runtimes: frozenset[str] = frozenset()
    upgrade: bool | None = None
    self_built_vip: bool | None = None
    needs_network: bool = False

    #: The SKIP reason on a plan without ``spec.network`` (not a dataclass field: no annotation).
    NO_NETWORK = "the plan has no network section (imported/registered clusters may omit it)"

    @property
    def reads_network(self) -> bool:
        """Whether the check reads ``spec.network``: said so, or implied by a plugin or Kube-OVN mode condition."""
        return self.needs_network or bool(self.plugins) or bool(self.transmit_modes)

    def not_applicable(self, plan: ClusterPlan) -> str | None:
        """Why the check does not apply to ``plan``, or None when it does."""
        spec = plan.spec
        network = spec.network
        if network is None:
            network_tests = [(not self.reads_network, self.NO_NETWORK)]
        else:
            network_tests = [
                (not self.plugins or network.plugin in self.plugins, f"network plugin {network.plugin}"),
                (
                    not self.transmit_modes
                    or (network.plugin == "kube-ovn" and network.kube_ovn.transmit_mode in self.transmit_modes),
                    f"not Kube-OVN {'/'.join(sorted(self.transmit_modes))}",
                ),
            ]
        tests: list[tuple[bool, str]] = [
            (
                self.acp is None or spec.acp.version in SpecifierSet(self.acp),
                f"ACP {spec.acp.version} (applies to ACP {self.acp})",
            ),
            (not self.cluster_roles or spec.cluster.role in self.cluster_roles, f"{spec.cluster.role} cluster"),
            (not self.cluster_types or spec.cluster.type in self.cluster_types, f"cluster type {spec.cluster.type}"),
            *network_tests,
            (not self.ip_families or spec.cluster.ip_family in self.ip_families, f"IP family {spec.cluster.ip_family}"),
            (
                not self.runtimes or spec.cluster.container_runtime in self.runtimes,
                f"runtime {spec.cluster.container_runtime}",
            ),
            (
                self.upgrade is None or plan.is_upgrade == self.upgrade,
                "not an upgrade plan" if self.upgrade else "an upgrade plan",
            ),
            (
                self.self_built_vip is None or spec.endpoint.self_built_vip.enabled == self.self_built_vip,
                "self-built VIP " + ("disabled" if self.self_built_vip else "enabled"),
            ),
        ]
        reasons = [reason for ok, reason in tests if not ok]
        return "not applicable: " + "; ".join(reasons) if reasons else None

    def describe(self) -> str:
        """Human summary for ``acpcheck explain``."""
        from acpcheck.model.plan import THIRD_PARTY  # the cluster types whose plans may omit spec.network

        parts = []
        if self.acp:
            parts.append(f"ACP {self.acp}")
        for label, values in (
            ("cluster role", self.cluster_roles),
            ("cluster type", self.cluster_types),
            ("network plugin", self.plugins),
            ("Kube-OVN mode", self.transmit_modes),
            ("IP family", self.ip_families),
            ("runtime", self.runtimes),
        ):
            if values:
                parts.append(f"{label} {'/'.join(sorted(values))}")
        # Said only where it limits anything: a plugin or mode condition implies it, and
        # the cluster types ACP builds always have a network section.
        if (
            self.needs_network
            and not (self.plugins or self.transmit_modes)
            and (not self.cluster_types or self.cluster_types & THIRD_PARTY)
        ):
            parts.append("plans with a network section")
        if self.upgrade is not None:
            parts.append("upgrade plans" if self.upgrade else "new clusters")
        if self.self_built_vip is not None:
            parts.append("self-built VIP " + ("on" if self.self_built_vip else "off"))
        return ", ".join(parts) or "always"


ALWAYS = When()
NODE_ROLES = frozenset({"control-plane", "worker"})


@dataclass(frozen=True)
class CheckMeta:
    """Everything known about a check without running it."""

    id: str
    title: str
    severity: Severity
    scope: Scope
    refs: tuple[str, ...]
    remediation: str
    rationale: str
    function: str
    roles: frozenset[str] = NODE_ROLES
    applies: When = ALWAYS
    tags: frozenset[str] = frozenset()
    #: The body's parameters: the evidence it reads (``node``, ``nodes``, …) and
    #: ``plan``/``params``. Decides which evidence sources a run gathers.
    needs: frozenset[str] = frozenset()
    #: The profile ``params`` the check reads: name -> type (pydantic), e.g.
    #: ``{"defaultMaxPods": Annotated[int, Field(strict=True, ge=1)]}``. A profile's
    #: params are validated against the union of these when it is loaded.
    params: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)
    #: The body reads of the plan only what a fleet file gives for a cluster without a
    #: plan file (``metadata.name``, ``spec.acp``, ``spec.cluster.role``/``type``, the
    #: kubeconfig): it runs for such a cluster too. Every other check is SKIPped there.
    plan_free: bool = False

    @property
    def area(self) -> str:
        return self.id.split("-")[1]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "area": self.area,
            "severity": str(self.severity),
            "scope": str(self.scope),
            "roles": sorted(self.roles) if self.scope is Scope.NODE else [],
            "applies": self.applies.describe(),
            "tags": sorted(self.tags),
            "refs": list(self.refs),
            "remediation": self.remediation,
            "rationale": self.rationale,
        }


class CatalogError(Exception):
    """A check was declared wrongly (a bug in a check pack, found at import)."""


#: Every check imported so far, by id.
REGISTRY: dict[str, CheckMeta] = {}

F = TypeVar("F", bound=Callable[..., Any])


def check(
    *,
    id: str,
    title: str,
    severity: Severity,
    refs: list[str] | tuple[str, ...],
    remediation: str,
    scope: Scope = Scope.PLAN,
    roles: frozenset[str] | set[str] = NODE_ROLES,
    applies: When = ALWAYS,
    tags: frozenset[str] | set[str] = frozenset(),
    params: Mapping[str, Any] | None = None,
    plan_free: bool = False,
) -> Callable[[F], F]:
    """Declare a check. The function's docstring is its rationale; ``params`` the
    schema of the profile parameters it reads (see ``CheckMeta.params``)."""

    def decorate(function: F) -> F:
        origin = f"{function.__module__}.{function.__qualname__}"
        rationale = inspect.getdoc(function) or ""
        problems = []
        if not ID_PATTERN.match(id):
            problems.append(f"id {id!r} does not match ACP-<AREA>-<NNN> with AREA in {', '.join(AREAS)}")
        if not refs or not all(str(r).startswith("https://") for r in refs):
            problems.append("every check cites at least one https:// source in refs")
        if not rationale:
            problems.append("a check needs a docstring (its rationale)")
        if not title or not remediation:
            problems.append("title and remediation are required")
        if not set(roles) <= NODE_ROLES:
            problems.append(f"roles must be within {sorted(NODE_ROLES)}")
        if params and "params" not in inspect.signature(function).parameters:
            problems.append("a check that declares params takes a `params` argument")
        existing = REGISTRY.get(id)
        if existing is not None and existing.function != origin:
            problems.append(f"id {id} is already used by {existing.function}")
        if problems:
            raise CatalogError(f"{origin}: " + "; ".join(problems))
        meta = CheckMeta(
            id=id,
            title=title,
            severity=severity,
            scope=scope,
            refs=tuple(refs),
            remediation=remediation,
            rationale=rationale,
            function=origin,
            roles=frozenset(roles),
            applies=applies,
            tags=frozenset(tags),
            needs=frozenset(inspect.signature(function).parameters),
            params=dict(params or {}),
            plan_free=plan_free,
        )
        REGISTRY[id] = meta
        function.__acpcheck__ = meta  # type: ignore[attr-defined]
        return function

    return decorate


# ---------------------------------------------------------------------------
# How a check body reports. A plain ``assert`` also works (it becomes a FAIL).


class CheckFailed(AssertionError):
    """The target does not meet the rule (FAIL, or WARN below ``fail_on``)."""

    def __init__(self, message: str, evidence: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.evidence = evidence or {}


class CheckWarning(Exception):
    """Not a violation, but worth a person's attention (always WARN)."""

    def __init__(self, message: str, evidence: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.evidence = evidence or {}


class NotApplicable(Exception):
    """The rule does not apply to this target (SKIP), decided inside the check.

    Prefer ``When`` (static, shown by ``acpcheck explain``); use ``skip()`` when
    applicability depends on data, such as a matrix row.
    """

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class ManualCheck(Exception):
    """The rule cannot be verified automatically here (MANUAL)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def fail(message: str, **evidence: Any) -> NoReturn:
    """Report a violation: say what was seen and what the rule expects."""
    raise CheckFailed(message, evidence)


def fail_if(findings: list[str], **evidence: Any) -> None:
    """FAIL with every finding at once (one per line) when there are any."""
    if findings:
        raise CheckFailed("\n".join(findings), {"findings": findings, **evidence})


def warn(message: str, **evidence: Any) -> NoReturn:
    """Report something a person should look at that is not a violation."""
    raise CheckWarning(message, evidence)


def skip(reason: str) -> NoReturn:
    """Say the rule does not apply here, and why."""
    raise NotApplicable(reason)


def manual(message: str) -> NoReturn:
    """Say the rule needs a person to verify it, and how."""
    raise ManualCheck(message)


@dataclass(frozen=True)
class Verdict:
    """What one run of a check body came to, before waivers."""

    status: Status
    message: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)


def verdict_of(error: BaseException | None, severity: Severity, fail_on: Severity) -> Verdict:
    """Grade how a check body ended: returned, failed, warned, needs a person, or broke.

    A failure below the profile's ``fail_on`` is a WARN. Anything that is not a
    finding (a bug, a missing fact, a lost connection) is an ERROR: "could not
    check" must never read as "non-compliant".
    """
    if error is None:
        return Verdict(Status.PASS)
    if isinstance(error, CheckWarning):
        return Verdict(Status.WARN, error.message, error.evidence)
    if isinstance(error, ManualCheck):
        return Verdict(Status.MANUAL, error.message)
    if isinstance(error, NotApplicable):
        return Verdict(Status.SKIP, error.message)
    if isinstance(error, AssertionError):
        message = (
            error.message
            if isinstance(error, CheckFailed)
            else (str(error).split("\nassert ")[0] or "assertion failed")
        )
        evidence = error.evidence if isinstance(error, CheckFailed) else {}
        return Verdict(Status.FAIL if severity >= fail_on else Status.WARN, message, evidence)
    return Verdict(Status.ERROR, f"could not check: {type(error).__name__}: {error}")
