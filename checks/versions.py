"""Version checks: Kubernetes, container runtime, network plugin and upgrade path against the ACP matrix.

Every number comes from ``acpcheck/matrix/kubernetes.yaml`` through ``release()``:
supporting a new ACP release is a data change, and each FAIL message cites the
page the matrix row was read from for the plan's own ACP version.

How a plan is read here: without ``spec.acp.upgradeFrom`` it describes a cluster
to create (or, for imported/registered clusters, to connect); with it, an existing
cluster whose platform goes from ``upgradeFrom`` to ``acp.version``, and
``kubernetesVersion`` is what the cluster runs today.

ACP-VER-* say what the target release supports; ACP-UPG-* say what must be true
before the platform upgrade starts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from packaging.version import Version

from acpcheck import Severity, When, check, fail, skip, warn
from acpcheck.checks.support import HOSTED_CONTROL_PLANE, planned_network
from acpcheck.matrix import AcpRelease, acp_minor, kubernetes_minor, kubernetes_version, matrix, release, satisfies
from acpcheck.model.plan import PLATFORM_MANAGED, THIRD_PARTY

if TYPE_CHECKING:
    from acpcheck.model.plan import ClusterPlan


# ---------------------------------------------------------------------------
# Shared helpers


def _matrix_refs(source_of: Callable[[AcpRelease], str]) -> list[str]:
    """Every page the matrix cites for one rule, oldest ACP first, for a check's static ``refs``."""
    return list(dict.fromkeys(source_of(entry) for entry in matrix().versions.values()))


def _target(plan: ClusterPlan) -> AcpRelease:
    return release(plan.spec.acp.version)


def _listed(items: list[str] | tuple[str, ...]) -> str:
    return ", ".join(items) if items else "none"


def _cluster_kind(plan: ClusterPlan) -> str:
    """'imported workload cluster', for messages about one cluster."""
    return f"{plan.spec.cluster.type} {plan.spec.cluster.role} cluster"


def _incompatibility(plan: ClusterPlan, version: str | None = None) -> str | None:
    """The finding (without its source) when the cluster's Kubernetes minor (the plan's, or ``version``)
    is not in the target's compatible list."""
    target, acp = _target(plan), plan.spec.acp.version
    planned = version or plan.spec.cluster.kubernetes_version
    if kubernetes_minor(planned) in target.compatible:
        return None
    return (
        f"Kubernetes {planned} is not compatible with ACP {acp}: clusters under ACP {acp} run Kubernetes "
        f"{_listed(target.compatible)}"
    )


def _docker_note(target: AcpRelease) -> None:
    """WARN with the release's Docker note (e.g. images no longer shipped by default), if it has one."""
    docker = target.docker
    if docker.note:
        warn(
            f"{docker.note}: make sure the Docker runtime images are available for this cluster, or use "
            f"containerd (see {docker.source})",
            note=docker.note,
            source=docker.source,
        )


def _plugin_status(plan: ClusterPlan) -> str:
    """Status of the plan's network plugin on the target: available, maintenance or removed."""
    plugin, acp = planned_network(plan).plugin, plan.spec.acp.version
    status = _target(plan).plugins.get(plugin)
    if status is None:  # incomplete matrix data: an ERROR ("could not check"), never a verdict
        raise LookupError(f"the version matrix gives no status for network plugin {plugin} on ACP {acp}")
    return status


def _plugins_with(target: AcpRelease, *statuses: str) -> list[str]:
    return [plugin for plugin, status in target.plugins.items() if status in statuses]


# ---------------------------------------------------------------------------
# ACP-VER: what the target ACP release supports


@check(
    id="ACP-VER-001",
    title="Kubernetes version is offered for new clusters on the target ACP",
    severity=Severity.HIGH,
    applies=When(cluster_types=PLATFORM_MANAGED, upgrade=False),
    refs=_matrix_refs(lambda entry: entry.source),
    remediation=(
        "Set spec.cluster.kubernetesVersion to a version the target ACP offers in the Create Cluster form (see the "
        "Kubernetes support matrix of that ACP version)."
    ),
)
def check_new_cluster_kubernetes_offered(plan: ClusterPlan) -> None:
    """ACP installs and manages Kubernetes on the clusters it creates, and each release
    only ships the Kubernetes minors in its support matrix ("Kubernetes versions for new
    clusters"; from ACP 4.1 on that is a single minor). A plan for any other version
    cannot be installed as written. Only the minor is compared: the patch build is
    whatever the ACP patch release ships.
    """
    target, acp, planned = _target(plan), plan.spec.acp.version, plan.spec.cluster.kubernetes_version
    if kubernetes_minor(planned) not in target.new_clusters:
        fail(
            f"Kubernetes {planned} is not offered for new clusters on ACP {acp}: "
            f"ACP {acp} creates clusters on Kubernetes {_listed(target.new_clusters)} (source: {target.source})",
            planned=planned,
            allowed=target.new_clusters,
            source=target.source,
            at=plan.where("spec", "cluster", "kubernetesVersion"),
        )


@check(
    id="ACP-VER-002",
    title="workload cluster Kubernetes version is compatible with the target ACP",
    severity=Severity.HIGH,
    applies=When(cluster_roles=frozenset({"workload"}), cluster_types=PLATFORM_MANAGED, upgrade=True),
    refs=_matrix_refs(lambda entry: entry.source),
    remediation=(
        "Upgrade the workload cluster's Kubernetes into the target ACP's compatible list (on its current ACP) before "
        "upgrading the global cluster."
    ),
)
def check_workload_kubernetes_compatible(plan: ClusterPlan) -> None:
    """Each ACP release manages workload clusters only on the Kubernetes minors in its
    "Compatible versions" column; the ACP 4.3 upgrade pages say any workload cluster
    outside the target's compatible range must be upgraded before the global cluster.

    This is the state after the platform upgrade. For targets up to ACP 4.2 the
    pre-upgrade pages ask for more (an exact Kubernetes version per source release);
    ACP-UPG-002 checks that prerequisite, so a cluster can pass here and still fail
    there. For an ACP 4.3 target both rules name the same range, and a cluster outside
    it fails both: one finding about the target, one about the upgrade path.
    """
    finding = _incompatibility(plan)
    if finding:
        target = _target(plan)
        fail(
            f"{finding} (source: {target.source})",
            planned=plan.spec.cluster.kubernetes_version,
            allowed=target.compatible,
            source=target.source,
            at=plan.where("spec", "cluster", "kubernetesVersion"),
        )


@check(
    id="ACP-VER-003",
    title="third-party cluster Kubernetes version is accepted by the target ACP",
    severity=Severity.HIGH,
    applies=When(cluster_types=THIRD_PARTY),
    refs=_matrix_refs(lambda entry: entry.source),
    remediation=(
        "Upgrade the cluster's Kubernetes (with its own distribution's tools) into the range the target ACP accepts for"
        " third-party clusters before importing or registering it, or before upgrading ACP."
    ),
)
def check_third_party_kubernetes_accepted(plan: ClusterPlan) -> None:
    """ACP does not install the Kubernetes of imported or registered clusters, but only
    manages versions it accepts. From ACP 4.3 the support matrix publishes an
    onboarding range for third-party clusters (4.3: >=1.19.0 <1.35.0); clusters outside
    it are blocked. That range is acceptance, not validation: the docs keep listing only
    the validated versions (the compatible list), so a version inside the range but
    outside that list is a WARN.

    ACP 4.0 to 4.2 publish no such range; their cluster overview says that both
    on-premises and managed (imported) clusters must keep version compatibility, so the
    compatible list applies. The check runs for imports and for upgrade plans alike,
    since an existing third-party cluster must still be accepted by the target release.
    """
    planned = plan.spec.cluster.kubernetes_version
    judge_third_party_version(plan, planned, planned=planned, at=plan.where("spec", "cluster", "kubernetesVersion"))


def judge_third_party_version(plan: ClusterPlan, version: str, prefix: str = "", **evidence: object) -> None:
    """ACP-VER-003's rule for any version of a third-party cluster (the plan's, or the one its API
    server reports: ACP-CONN-012): FAIL outside the onboarding range of the plan's target ACP, WARN
    inside it but outside the validated list; ``prefix`` opens each message, ``evidence`` joins each
    finding's."""
    target, acp = _target(plan), plan.spec.acp.version
    evidence = {"source": target.source, **evidence}
    if target.third_party is None:
        finding = _incompatibility(plan, version)
        if finding:
            fail(
                f"{prefix}{finding}; ACP {acp} publishes no separate range for third-party clusters, "
                f"so the compatible list applies to this {_cluster_kind(plan)} too (source: {target.source})",
                allowed=target.compatible,
                **evidence,
            )
        return
    if not satisfies(version, target.third_party):
        fail(
            f"{prefix}Kubernetes {version} is outside the range ACP {acp} accepts for third-party clusters "
            f"({target.third_party}); ACP {acp} will not manage this {_cluster_kind(plan)} (source: {target.source})",
            allowed=target.third_party,
            **evidence,
        )
    if kubernetes_minor(version) not in target.compatible:
        warn(
            f"{prefix}Kubernetes {version} is inside the range ACP {acp} accepts for third-party clusters "
            f"({target.third_party}) "
            f"but not among the versions ACP {acp} validated ({_listed(target.compatible)}); "
            f"operators and cluster plugins may not have been tested on it (source: {target.source})",
            validated=target.compatible,
            **evidence,
        )


@check(
    id="ACP-VER-004",
    title="Docker runtime can be selected for a new cluster on the target ACP",
    severity=Severity.HIGH,
    applies=When(cluster_types=PLATFORM_MANAGED, runtimes=frozenset({"docker"}), upgrade=False),
    refs=_matrix_refs(lambda entry: entry.docker.source),
    remediation=(
        "Use containerd, the default and recommended runtime. Where the target ACP still offers Docker and needs a "
        "feature gate for it, enable that gate first (<platform address>/console-platform/feature-gate) and list it in "
        "spec.cluster.featureGates."
    ),
)
def check_new_cluster_docker_selectable(plan: ClusterPlan) -> None:
    """ACP 4.0 and 4.1 let a new cluster use Docker (through cri-dockerd), but from
    Kubernetes 1.24 only after the cri-docker feature gate is enabled ("Choosing a
    Container Runtime"); ACP 4.1 also stopped shipping Docker runtime images by
    default, which is reported as a WARN. From ACP 4.2 the Docker option is gone.
    Clusters ACP does not build (imported, registered) bring their own runtime and are
    not checked here.
    """
    target, acp, planned = _target(plan), plan.spec.acp.version, plan.spec.cluster.kubernetes_version
    docker = target.docker
    if not docker.available:
        fail(
            f"ACP {acp} does not offer the Docker runtime for new clusters (spec.cluster.containerRuntime: docker); "
            f"new clusters use containerd (source: {docker.source})",
            planned="docker",
            allowed=["containerd"],
            source=docker.source,
            at=plan.where("spec", "cluster", "containerRuntime"),
        )
    gates, gate, gate_from = plan.spec.cluster.feature_gates, docker.gate, docker.gate_from_kubernetes
    if gate and gate_from and kubernetes_version(planned) >= kubernetes_version(gate_from) and gate not in gates:
        fail(
            f"Docker on Kubernetes {planned} needs the '{gate}' feature gate, which ACP {acp} requires from "
            f"Kubernetes {gate_from}; spec.cluster.featureGates lists {_listed(gates)} (source: {docker.source})",
            planned=gates,
            allowed=[gate],
            source=docker.source,
            at=plan.where("spec", "cluster", "featureGates"),
        )
    _docker_note(target)


@check(
    id="ACP-VER-005",
    title="network plugin is offered for new clusters on the target ACP",
    severity=Severity.HIGH,
    applies=When(cluster_types=PLATFORM_MANAGED, upgrade=False, needs_network=True),
    refs=_matrix_refs(lambda entry: entry.plugins_source),
    remediation="Choose a network plugin the target ACP still offers; Kube-OVN is the default and recommended one.",
)
def check_new_cluster_network_plugin_offered(plan: ClusterPlan) -> None:
    """ACP installs the network plugin of the clusters it creates and only offers the
    plugins of its release: Flannel was removed in ACP 4.2 (release notes), so a plan
    on a removed plugin cannot be installed as written.
    """
    target, acp, plugin = _target(plan), plan.spec.acp.version, planned_network(plan).plugin
    if _plugin_status(plan) == "removed":
        offered = _plugins_with(target, "available", "maintenance")
        fail(
            f"ACP {acp} no longer offers network plugin {plugin}; new clusters on ACP {acp} use "
            f"{_listed(offered)} (source: {target.plugins_source})",
            planned=plugin,
            allowed=offered,
            source=target.plugins_source,
            at=plan.where("spec", "network", "plugin"),
        )


@check(
    id="ACP-VER-006",
    title="network plugin of a new cluster is not in maintenance mode on the target ACP",
    severity=Severity.LOW,
    # Not hosted control planes: they support Calico only (ACP-HCP-001), so the advice would be wrong there.
    applies=When(cluster_types=PLATFORM_MANAGED - HOSTED_CONTROL_PLANE, upgrade=False, needs_network=True),
    refs=_matrix_refs(lambda entry: entry.plugins_source),
    remediation="Prefer Kube-OVN (the default) for new clusters; keep a maintenance-mode plugin only where an existing "
    "design depends on it.",
)
def check_new_cluster_network_plugin_not_in_maintenance(plan: ClusterPlan) -> None:
    """Calico is in maintenance mode from ACP 4.2 (release notes) and is not recommended
    for new clusters. It still works, which is why this is LOW: a WARN under the
    default profile, a FAIL only for profiles with fail_on: low.

    Hosted control plane clusters are left out: the Hosted Control Plane concepts page
    says they support only Calico, so advising another plugin would be wrong there;
    ACP-HCP-001 checks their plugin instead.
    """
    target, acp, plugin = _target(plan), plan.spec.acp.version, planned_network(plan).plugin
    if _plugin_status(plan) == "maintenance":
        recommended = _plugins_with(target, "available")
        fail(
            f"Network plugin {plugin} is in maintenance mode on ACP {acp} and not recommended for new clusters; "
            f"fully supported plugins on ACP {acp}: {_listed(recommended)} (source: {target.plugins_source})",
            planned=plugin,
            allowed=recommended,
            source=target.plugins_source,
            at=plan.where("spec", "network", "plugin"),
        )


@check(
    id="ACP-VER-007",
    title="hosted control plane clusters are available on the target ACP",
    severity=Severity.HIGH,
    applies=When(cluster_types=frozenset({"hosted-control-plane"})),
    refs=_matrix_refs(lambda entry: entry.hosted_control_plane_source),
    remediation="Use an ACP release that offers hosted control planes, or create an on-premise cluster instead.",
)
def check_hosted_control_plane_available(plan: ClusterPlan) -> None:
    """Hosted control planes (Kamaji-based, run on a management cluster) first appear in
    ACP 4.3, as a Technology Preview that is not supported for production; that state
    is a WARN, so production plans get a person's attention without being blocked.
    """
    target, acp = _target(plan), plan.spec.acp.version
    status = target.hosted_control_plane
    if status == "unavailable":
        offering = [
            version for version, entry in matrix().versions.items() if entry.hosted_control_plane != "unavailable"
        ]
        fail(
            f"Cluster type {plan.spec.cluster.type} is not available on ACP {acp}; ACP releases that offer "
            "hosted control planes: "
            f"{_listed(offering)} (source: {target.hosted_control_plane_source})",
            planned=plan.spec.cluster.type,
            allowed=offering,
            source=target.hosted_control_plane_source,
            at=plan.where("spec", "cluster", "type"),
        )
    if status == "preview":
        warn(
            f"Hosted control plane clusters are a Technology Preview on ACP {acp}, not supported for production "
            f"(source: {target.hosted_control_plane_source})",
            source=target.hosted_control_plane_source,
        )


# ---------------------------------------------------------------------------
# ACP-UPG: what must hold before the platform goes from upgradeFrom to acp.version


def _upgrade_source(plan: ClusterPlan) -> str:
    source = plan.spec.acp.upgrade_from
    if source is None:  # When(upgrade=True) keeps this out; an assert here would read as a FAIL
        raise ValueError("ACP-UPG checks apply to upgrade plans only")
    return source


def _releases_between(source_minor: str, target: AcpRelease) -> list[str]:
    """ACP releases that can be reached from ``source_minor`` and upgraded to ``target``."""
    versions = matrix().versions
    return [
        hop
        for hop in target.upgrade.from_
        if hop != source_minor and hop in versions and source_minor in versions[hop].upgrade.from_
    ]


def _no_kubernetes_prerequisite(plan: ClusterPlan) -> str | None:
    """Why ACP-UPG-002 has nothing to check for this plan, or None when it has."""
    target, acp = _target(plan), plan.spec.acp.version
    source = acp_minor(_upgrade_source(plan))
    if source not in target.upgrade.from_:
        return f"the docs list no upgrade from ACP {source} to {acp} (see ACP-UPG-001)"
    if plan.spec.cluster.type in THIRD_PARTY and target.third_party is not None:
        return f"ACP {acp} judges third-party clusters by its accepted range (ACP-VER-003)"
    return None


@check(
    id="ACP-UPG-001",
    title="upgrade path from the current ACP version to the target is supported",
    severity=Severity.CRITICAL,
    applies=When(upgrade=True),
    refs=_matrix_refs(lambda entry: entry.upgrade.source),
    remediation=(
        "Upgrade through an intermediate ACP release that the target's pre-upgrade page lists as a source, or correct "
        "spec.acp.upgradeFrom / spec.acp.version."
    ),
)
def check_upgrade_path_supported(plan: ClusterPlan) -> None:
    """Each release's pre-upgrade page lists the releases it can be upgraded from (e.g.
    ACP 4.3 from 4.0, 4.1 or 4.2); any other source needs an intermediate upgrade, and
    an upgrade only goes forward. Where the matrix has a row for the target's own minor
    (4.0 and 4.1 document patch upgrades), a patch upgrade is a supported path; for
    other releases the docs say nothing about patch upgrades, which is a WARN rather
    than a FAIL.
    """
    target, acp, source = _target(plan), plan.spec.acp.version, _upgrade_source(plan)
    sources = list(target.upgrade.from_)
    evidence = {
        "planned": source,
        "allowed": sources,
        "source": target.upgrade.source,
        "at": plan.where("spec", "acp", "upgradeFrom"),
    }
    if Version(source) >= Version(acp):
        fail(
            f"spec.acp.upgradeFrom {source} is not older than spec.acp.version {acp}: an upgrade goes to a "
            "newer release "
            f"(ACP {acp} is reached from ACP {_listed(sources)}; source: {target.upgrade.source})",
            **evidence,
        )
    source_minor = acp_minor(source)
    if source_minor in sources:
        return
    if source_minor == acp_minor(acp):
        warn(
            f"The ACP {source_minor} pre-upgrade page lists upgrades from ACP {_listed(sources)} and "
            "documents no patch "
            f"upgrade from {source} to {acp}; confirm that the platform offers {acp} as an update for {source} "
            f"(source: {target.upgrade.source})",
            **evidence,
        )
    hops = _releases_between(source_minor, target)
    via = f"; upgrade through ACP {' or '.join(hops)} first" if hops else ""
    fail(
        f"Upgrading from ACP {source} to {acp} is not a documented path: ACP {acp} is reached from ACP "
        f"{_listed(sources)} only{via} "
        f"(source: {target.upgrade.source})",
        **evidence,
    )


@check(
    id="ACP-UPG-002",
    title="cluster runs the Kubernetes version the upgrade path requires",
    severity=Severity.HIGH,
    applies=When(upgrade=True),
    refs=_matrix_refs(lambda entry: entry.upgrade.source),
    remediation=(
        "Upgrade the cluster's Kubernetes to the version the target's pre-upgrade page requires, on the current ACP, "
        "before upgrading the global cluster."
    ),
)
def check_upgrade_kubernetes_prerequisite(plan: ClusterPlan) -> None:
    """Each pre-upgrade page states the Kubernetes every cluster must run before the
    platform upgrade starts, per source release: up to ACP 4.2 that is the source
    release's newest minor (e.g. 4.0 -> 4.1 needs 1.31 everywhere), for ACP 4.3 the
    compatible range 1.31-1.34.

    Third-party clusters: the pages up to ACP 4.2 say "all clusters" and publish no
    separate rule for imported or registered ones, so the prerequisite applies to them
    too. ACP 4.3 states the range for workload clusters and a separate accepted range
    for third-party clusters, so those are judged by that range (ACP-VER-003) and
    skipped here. That split follows the docs' wording; it is our reading, not an
    explicit statement about imported clusters in the upgrade pages.
    """
    not_applicable = _no_kubernetes_prerequisite(plan)
    if not_applicable:
        skip(not_applicable)
    target, acp, source = _target(plan), plan.spec.acp.version, _upgrade_source(plan)
    required = target.upgrade.from_[acp_minor(source)].kubernetes
    planned = plan.spec.cluster.kubernetes_version
    if not satisfies(planned, required):
        scope = (
            f"; ACP {acp} publishes no separate rule for third-party clusters, so this "
            f"{_cluster_kind(plan)} is included"
            if plan.spec.cluster.type in THIRD_PARTY
            else ""
        )
        fail(
            f"Upgrading from ACP {source} to {acp} requires every cluster to run Kubernetes {required} first; "
            f"this cluster runs {planned}{scope} (source: {target.upgrade.source})",
            planned=planned,
            allowed=required,
            source=target.upgrade.source,
            at=plan.where("spec", "cluster", "kubernetesVersion"),
        )


@check(
    id="ACP-UPG-003",
    title="Docker-runtime cluster can be upgraded to the target ACP",
    severity=Severity.HIGH,
    applies=When(cluster_types=PLATFORM_MANAGED, runtimes=frozenset({"docker"}), upgrade=True),
    refs=_matrix_refs(lambda entry: entry.docker.source),
    remediation=(
        "Move the cluster from Docker to containerd before the platform upgrade. The public docs describe no in-place "
        "runtime switch, so agree the procedure with Alauda support."
    ),
)
def check_upgrade_docker_runtime(plan: ClusterPlan) -> None:
    """The ACP 4.3 upgrade preflight (DockerRuntimeUnsupported) blocks clusters that
    run Docker. ACP 4.2 dropped the Docker option without documenting what happens to
    existing Docker clusters, and ACP 4.1 no longer ships Docker runtime images by
    default: both are WARNs, since the docs state no blocking rule for them.
    """
    target, acp, source = _target(plan), plan.spec.acp.version, _upgrade_source(plan)
    docker = target.docker
    if docker.blocks_upgrade:
        fail(
            f"ACP {acp} blocks the upgrade of clusters that use the Docker runtime "
            "(spec.cluster.containerRuntime: docker); "
            f"move this cluster to containerd before upgrading from ACP {source} (source: {docker.source})",
            planned="docker",
            allowed=["containerd"],
            source=docker.source,
            at=plan.where("spec", "cluster", "containerRuntime"),
        )
    if not docker.available:
        warn(
            f"ACP {acp} no longer offers the Docker runtime and its docs do not say how existing Docker clusters are "
            f"treated after an upgrade from ACP {source}; plan the move to containerd (source: {docker.source})",
            source=docker.source,
        )
    _docker_note(target)


@check(
    id="ACP-UPG-004",
    title="cluster network plugin is not removed in the target ACP",
    severity=Severity.HIGH,
    applies=When(cluster_types=PLATFORM_MANAGED, upgrade=True, needs_network=True),
    refs=_matrix_refs(lambda entry: entry.plugins_source),
    remediation=(
        "Migrate the cluster's network to a plugin the target ACP supports (Kube-OVN for Flannel clusters, as the "
        "release notes require) before the platform upgrade."
    ),
)
def check_upgrade_network_plugin_not_removed(plan: ClusterPlan) -> None:
    """Flannel was removed in ACP 4.2, and the release notes require Flannel clusters to
    migrate to Kube-OVN before the platform is upgraded to 4.2 or later.
    """
    target, acp, plugin = _target(plan), plan.spec.acp.version, planned_network(plan).plugin
    if _plugin_status(plan) == "removed":
        supported = _plugins_with(target, "available")
        fail(
            f"This cluster uses network plugin {plugin}, which ACP {acp} no longer supports; migrate it to "
            f"a plugin ACP {acp} "
            f"supports ({_listed(supported)}) before upgrading from ACP {_upgrade_source(plan)} (source: "
            f"{target.plugins_source})",
            planned=plugin,
            allowed=supported,
            source=target.plugins_source,
            at=plan.where("spec", "network", "plugin"),
        )
