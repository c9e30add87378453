"""Fleet rules: what must hold across all clusters of a platform before the global cluster is upgraded.

ACP upgrades the global cluster first and its workload clusters afterwards, and the
Kubernetes support matrix makes the order a rule: before ``global`` goes to the target,
every workload cluster must already run a Kubernetes version the target manages
(acp-facts §4.3, §4.4). That is a rule about the whole fleet, so these checks have
``scope=Scope.FLEET`` (target ``fleet:<name>``) and run once, on the global member: their
``plan`` and ``cluster`` are the global cluster's.

Where the versions come from:

- a cluster's **Kubernetes version**: the global cluster's registry of the clusters it
  manages (the ``platform-clusters`` read: ``status.version``, else ``spec.version``), so
  that clusters acpcheck cannot reach itself are judged too;
- a cluster's **current ACP version**: the fleet file (``upgradeFrom`` of the entry or of
  the fleet) or the cluster's plan file.

A version nobody states is MANUAL, saying what to run by hand, never a PASS. Every
number comes from the version matrix (``acpcheck/matrix/kubernetes.yaml``), read with the
same functions as ACP-UPG-001 and ACP-UPG-002.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from packaging.version import Version

from acpcheck import Scope, Severity, check, fail, manual, skip, warn
from acpcheck.checks.versions import _matrix_refs, _releases_between
from acpcheck.matrix import AcpRelease, acp_minor, kubernetes_version, release, satisfies
from acpcheck.model.fleet import GLOBAL_CLUSTER_NAME, registry_cluster_type
from acpcheck.model.plan import THIRD_PARTY
from acpcheck.sources.cluster import PLATFORM_CLUSTERS

if TYPE_CHECKING:
    from acpcheck.model.fleet import Fleet
    from acpcheck.model.plan import ClusterPlan
    from acpcheck.sources.cluster import ClusterView

#: The pages that state the order of a platform upgrade: global first, and what the workload
#: clusters must run before it (acp-facts §4.3).
SEQUENCING_REFS = [
    "https://docs.alauda.io/container_platform/4.3/overview/kubernetes-support-matrix.html",
    "https://docs.alauda.io/container_platform/4.3/upgrade/overview.html",
    "https://docs.alauda.io/container_platform/4.3/upgrade/pre-upgrade.html",
]

#: Why a cluster's Kubernetes version is not known when the registry could be read.
NOT_LISTED = "the global cluster's registry does not list it with a version"


@dataclass(frozen=True)
class JudgedCluster:
    """One cluster as the fleet rules see it."""

    name: str
    role: str
    type: str
    #: Kubernetes version as the global cluster's registry records it; None: not listed there
    kubernetes: str | None
    #: current ACP version (fleet file or plan file); None: nobody says
    acp: str | None


def fleet_clusters(fleet: Fleet, cluster: ClusterView) -> list[JudgedCluster]:
    """The fleet's members and every other cluster the global cluster lists, with the
    Kubernetes version the global cluster records for each. A listed cluster the fleet does
    not name (``discover: false``) is a workload cluster of the type its record gives."""
    listed = {item["name"]: item for item in cluster.items(PLATFORM_CLUSTERS) if isinstance(item.get("name"), str)}
    global_names = {GLOBAL_CLUSTER_NAME} | {m.name for m in fleet.members if m.role == "global"}
    clusters = [
        JudgedCluster(
            name=member.name,
            role=member.role,
            type=member.type,
            kubernetes=_version_text(listed.get(member.name)),
            acp=member.upgrade_from,
        )
        for member in fleet.members
    ]
    named = {c.name for c in clusters} | global_names
    clusters += [
        JudgedCluster(
            name=name,
            role="workload",
            type=registry_cluster_type(item.get("type")),
            kubernetes=_version_text(item),
            acp=fleet.spec.acp.upgrade_from,
        )
        for name, item in listed.items()
        if name not in named
    ]
    return clusters


def _version_text(item: dict[str, Any] | None) -> str | None:
    version = (item or {}).get("version")
    return version if isinstance(version, str) and version else None


def _readable(version: str | None) -> bool:
    if version is None:
        return False
    try:
        kubernetes_version(version)
    except ValueError:
        return False
    return True


def _listed(names: list[str]) -> str:
    return ", ".join(names)


def _by_hand(clusters: list[JudgedCluster]) -> str:
    """What to run to read the Kubernetes version of ``clusters`` by hand."""
    names = " ".join(c.name for c in clusters)
    return (
        f"on the global cluster: kubectl get clusters.platform.tkestack.io {names} "
        "-o custom-columns=NAME:.metadata.name,VERSION:.status.version; or, with each cluster's kubeconfig: "
        "kubectl version"
    )


def _registry_unknown(cluster: ClusterView) -> str | None:
    """Why the global cluster's registry gives no versions at all, or None when it does."""
    if not cluster.served(PLATFORM_CLUSTERS):
        return (
            "the global cluster does not serve clusters.platform.tkestack.io (is this ACP's global cluster, and the "
            "fleet's global entry's kubeconfig its own?)"
        )
    return None


# ---------------------------------------------------------------------------
# ACP-UPG-030: the workload clusters' Kubernetes before the global cluster's upgrade


def _requirement(target: AcpRelease, source: str | None) -> tuple[str | None, str | None]:
    """(the Kubernetes specifier a workload cluster on ACP ``source`` must satisfy before the
    global cluster is upgraded to ``target``, why a person must decide instead). One specifier
    for every documented source (ACP 4.3: ``>=1.31,<1.35``) needs no source; up to 4.2 it is
    the source release's own. (None, None): no documented path, which ACP-UPG-031 reports."""
    requirements = {requirement.kubernetes for requirement in target.upgrade.from_.values()}
    if len(requirements) == 1:
        return next(iter(requirements)), None
    if source is None:
        return None, "its current ACP version is not known (give upgradeFrom in the fleet file or its plan)"
    requirement = target.upgrade.from_.get(acp_minor(source))
    return (requirement.kubernetes if requirement is not None else None), None


@check(
    id="ACP-UPG-030",
    title="every workload cluster runs the Kubernetes the target requires before the global cluster is upgraded",
    severity=Severity.HIGH,
    scope=Scope.FLEET,
    plan_free=True,
    refs=[*SEQUENCING_REFS, *_matrix_refs(lambda entry: entry.upgrade.source)],
    remediation=(
        "Upgrade the Kubernetes of each workload cluster named (on its current ACP) into the range the target "
        "requires, then upgrade the global cluster."
    ),
)
def check_fleet_workloads_in_target_range(plan: ClusterPlan, fleet: Fleet, cluster: ClusterView) -> None:
    """The global cluster is upgraded first, and from then on it manages its workload
    clusters only on the Kubernetes versions of the target. For ACP 4.3 and later a
    workload cluster must be inside the target's compatible range (4.3: 1.31-1.34) before
    ``global`` is upgraded; for 4.2 and earlier it must be on the version the target's
    pre-upgrade page requires for its source release (e.g. 4.0 -> 4.1: 1.31). Both come
    from the version matrix's ``upgrade.from`` rows (acp-facts §4.3, §4.4).

    Every workload cluster counts: those in the fleet file, those discovered, and any
    other the global cluster lists. Imported and registered clusters are judged here only
    where the target publishes no separate range for them (ACP-UPG-032 judges them
    otherwise), as ACP-UPG-002 does. Versions are those the global cluster records; a
    cluster it does not list, or lists without a version, is MANUAL.
    """
    target = release(fleet.target)
    unknown_registry = _registry_unknown(cluster)
    workloads = [
        c
        for c in (fleet_clusters(fleet, cluster) if unknown_registry is None else _members_only(fleet))
        if c.role == "workload" and not (c.type in THIRD_PARTY and target.third_party is not None)
    ]
    if not workloads:
        skip("the fleet has no workload clusters (the fleet file names none, the global cluster lists none)")
    offenders, unknown, undecided = [], [], []
    for c in workloads:
        required, undecidable = _requirement(target, c.acp)
        if undecidable is not None:
            undecided.append(f"{c.name}: {undecidable}")
        if required is None:
            continue
        if not _readable(c.kubernetes):
            unknown.append(c)
            continue
        assert c.kubernetes is not None
        if not satisfies(c.kubernetes, required):
            offenders.append(f"{c.name} runs Kubernetes {c.kubernetes}, needs {required}")
    source = target.upgrade.source
    not_known = (
        f"; not known: {_listed([c.name for c in unknown])} ({unknown_registry or NOT_LISTED})" if unknown else ""
    )
    if offenders:
        fail(
            f"Before the global cluster is upgraded to ACP {fleet.target}, every workload cluster must run the "
            f"Kubernetes it requires: {'; '.join(offenders)}{not_known} (source: {source})",
            offenders=offenders,
            unknown=[c.name for c in unknown],
            source=source,
        )
    if unknown or undecided:
        parts = []
        if unknown:
            why = unknown_registry or NOT_LISTED
            parts.append(
                f"the Kubernetes version of {_listed([c.name for c in unknown])} is not known ({why}); read it by "
                f"hand: {_by_hand(unknown)}"
            )
        parts += undecided
        manual(
            f"Check by hand that every workload cluster runs the Kubernetes ACP {fleet.target} requires before the "
            f"global cluster is upgraded: {'; '.join(parts)} (source: {source})"
        )


def _members_only(fleet: Fleet) -> list[JudgedCluster]:
    """The fleet's members without versions (the global cluster's registry could not be read)."""
    return [JudgedCluster(m.name, m.role, m.type, None, m.upgrade_from) for m in fleet.members]


# ---------------------------------------------------------------------------
# ACP-UPG-031: the upgrade path of every cluster


@check(
    id="ACP-UPG-031",
    title="every cluster of the fleet has a supported upgrade path to the target",
    severity=Severity.CRITICAL,
    scope=Scope.FLEET,
    plan_free=True,
    refs=_matrix_refs(lambda entry: entry.upgrade.source),
    remediation=(
        "Upgrade the clusters named through an intermediate ACP release that the target's pre-upgrade page lists as a "
        "source, or correct upgradeFrom in the fleet file (or the cluster's plan)."
    ),
)
def check_fleet_upgrade_paths(plan: ClusterPlan, fleet: Fleet, cluster: ClusterView) -> None:
    """The target's pre-upgrade page lists the releases it can be upgraded from (ACP 4.3:
    from 4.0, 4.1 or 4.2); a cluster on any other release needs an intermediate upgrade
    first, and an upgrade only goes forward. This is ACP-UPG-001 for every cluster of the
    fleet at once, each from its own current ACP version (``upgradeFrom`` of its entry, of
    its plan, else of the fleet). A cluster already on the target has nothing to do. As in
    ACP-UPG-001, a patch upgrade within the target's minor that the page does not list is a
    WARN (the docs say nothing about it), not a FAIL. A cluster whose current version
    nobody states is MANUAL.
    """
    target = release(fleet.target)
    sources = list(target.upgrade.from_)
    blocked, patch, unknown = [], [], []
    for member in fleet.members:
        current = member.upgrade_from
        if current is None:
            unknown.append(member.name)
            continue
        if Version(current) == Version(fleet.target):
            continue
        if Version(current) > Version(fleet.target):
            blocked.append(f"{member.name} is on ACP {current}, newer than the target (an upgrade only goes forward)")
            continue
        minor = acp_minor(current)
        if minor in sources:
            continue
        if minor == acp_minor(fleet.target):
            patch.append(f"{member.name} ({current} -> {fleet.target})")
            continue
        hops = _releases_between(minor, target)
        via = f"; upgrade it through ACP {' or '.join(hops)} first" if hops else ""
        blocked.append(f"{member.name} is on ACP {current}, which is not a documented source{via}")
    source = target.upgrade.source
    if blocked:
        fail(
            f"ACP {fleet.target} is reached from ACP {', '.join(sources)} only: {'; '.join(blocked)} "
            f"(source: {source})",
            blocked=blocked,
            allowed=sources,
            source=source,
        )
    if unknown:
        manual(
            f"The current ACP version of {_listed(unknown)} is not known: give upgradeFrom for them in the fleet file "
            f"({fleet.where('spec', 'acp')}) or in their plans, or read it on the platform (Administrator > Clusters, "
            f"or on the global cluster: kubectl get clusterversionshadow global -n cpaas-system). ACP "
            f"{fleet.target} is reached from ACP {', '.join(sources)} (source: {source})"
        )
    if patch:
        warn(
            f"The ACP {fleet.target} pre-upgrade page documents no patch upgrade for {'; '.join(patch)}; confirm that "
            f"the platform offers {fleet.target} as an update (source: {source})",
            source=source,
        )


# ---------------------------------------------------------------------------
# ACP-UPG-032: imported and registered clusters in the target's third-party range


@check(
    id="ACP-UPG-032",
    title="imported and registered clusters are inside the target's range for third-party clusters",
    severity=Severity.HIGH,
    scope=Scope.FLEET,
    plan_free=True,
    refs=_matrix_refs(lambda entry: entry.source),
    remediation=(
        "Upgrade the Kubernetes of each third-party cluster named (with its own distribution's tools) into the range "
        "the target accepts before upgrading the platform."
    ),
)
def check_fleet_third_party_in_range(plan: ClusterPlan, fleet: Fleet, cluster: ClusterView) -> None:
    """ACP 4.3 accepts imported and registered (third-party) clusters on Kubernetes
    ``>=1.19.0 <1.35.0`` and blocks those outside (support matrix, acp-facts §4.1); the
    range is separate from the compatible list of the clusters ACP builds. The docs of ACP
    4.0-4.2 publish no such range, so for those targets the check is MANUAL and says so.
    Versions are those the global cluster records for each cluster; one it does not list
    with a version is MANUAL.
    """
    target = release(fleet.target)
    unknown_registry = _registry_unknown(cluster)
    clusters = fleet_clusters(fleet, cluster) if unknown_registry is None else _members_only(fleet)
    third_party = [c for c in clusters if c.type in THIRD_PARTY]
    if not third_party:
        skip("the fleet has no imported or registered clusters")
    names = _listed([c.name for c in third_party])
    if target.third_party is None:
        manual(
            f"The ACP {fleet.target} docs publish no accepted Kubernetes range for third-party clusters; check "
            f"{names} against the ACP {fleet.target} Kubernetes support matrix by hand (source: {target.source})"
        )
    accepted = target.third_party
    outside = [
        f"{c.name} runs Kubernetes {c.kubernetes}"
        for c in third_party
        if _readable(c.kubernetes) and not satisfies(c.kubernetes or "", accepted)
    ]
    unknown = [c for c in third_party if not _readable(c.kubernetes)]
    if outside:
        fail(
            f"ACP {fleet.target} accepts third-party clusters on Kubernetes {accepted} only: {'; '.join(outside)} "
            f"(source: {target.source})",
            outside=outside,
            allowed=accepted,
            source=target.source,
        )
    if unknown:
        why = unknown_registry or NOT_LISTED
        manual(
            f"The Kubernetes version of {_listed([c.name for c in unknown])} is not known ({why}); read it by hand "
            f"({_by_hand(unknown)}) and check it is inside {accepted} (source: {target.source})"
        )
