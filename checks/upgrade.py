"""Upgrade readiness from the live cluster: what the Kubernetes API says, not what a plan declares.

ACP-VER-* and ACP-UPG-001..004 judge the plan's ``kubernetesVersion``, ``containerRuntime``
and ``network.plugin``. These checks read the same facts from the cluster itself through
the ``cluster`` evidence source (``acpcheck.sources.cluster``): the API server's
``/version``, the Nodes' Ready condition, kubelet and runtime versions, the DaemonSets
that tell the network plugin, API versions the target's Kubernetes no longer serves
(``acpcheck/matrix/removed_apis.yaml``), pending CertificateSigningRequests, etcd backup
tasks, and ACP 4.3's own preflight results (ClusterVersionShadow ``cvsh``).

Every number comes from the matrices (``acpcheck/matrix/kubernetes.yaml`` through
``release()``, ``removed_apis.yaml``), as in checks/versions.py. A fact the API did not
give is never a PASS: it is MANUAL (with the command that shows it) or ERROR (the read
failed: ``TargetUnavailable``, with the reason).

Most of these checks read of the plan only the target ACP version, the cluster's role
and type and its current ACP version (``plan_free=True``): they run for every cluster of
a fleet, with or without a plan file. They need a kubeconfig (``LIVE``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from packaging.version import Version

from acpcheck import Scope, Severity, When, check, fail, fail_if, manual, skip, warn
from acpcheck.checks.support import PlannedInCluster, listed, some_lines, some_names
from acpcheck.constants import ACP_DOCS
from acpcheck.matrix import AcpRelease, acp_minor, kubernetes_minor, kubernetes_version, release, satisfies
from acpcheck.matrix.removed_apis import GUIDE, removed_apis
from acpcheck.model.plan import PLATFORM_MANAGED, THIRD_PARTY, ClusterPlan
from acpcheck.sources.cluster import (
    CLUSTER_VERSION_SHADOW,
    CRONJOBS,
    CSRS,
    DAEMONSETS,
    ETCD_BACKUP_CONFIGS,
    NODES,
    REMOVED_API_READS,
    ClusterView,
)

SUPPORT_MATRIX = f"{ACP_DOCS}/4.3/overview/kubernetes-support-matrix.html"
PRE_UPGRADE = {minor: f"{ACP_DOCS}/{minor}/upgrade/pre-upgrade.html" for minor in ("4.0", "4.1", "4.2", "4.3")}
UPGRADE_GLOBAL = f"{ACP_DOCS}/4.3/upgrade/upgrade_global_cluster.html"
UPGRADE_WORKLOAD = f"{ACP_DOCS}/4.3/upgrade/upgrade_workload_cluster.html"
AC_UPGRADING = f"{ACP_DOCS}/4.3/ui/cli_tools/ac/upgrading-clusters.html"
RELEASE_NOTES_42 = f"{ACP_DOCS}/4.2/overview/release_notes.html"
ETCD_BACKUP = f"{ACP_DOCS}/4.3/configure/backup/etcd.html"
HEALTH_KB = "https://github.com/alauda/knowledge/blob/main/docs/en/solutions/Checking_ACP_Cluster_Health_From_the_Command_Line.md"
NODE_STATUS = "https://kubernetes.io/docs/reference/node/node-status/"
SKEW_POLICY = "https://kubernetes.io/releases/version-skew-policy/#kubelet"
CSR_DOCS = "https://kubernetes.io/docs/reference/access-authn-authz/certificate-signing-requests/"

TAGS = frozenset({"upgrade", "live"})
#: The upstream version-skew policy: a kubelet may be up to three minors older than
#: kube-apiserver, and never newer (https://kubernetes.io/releases/version-skew-policy/#kubelet).
KUBELET_MAX_MINORS_OLDER = 3
#: The etcd backup task every ACP 4.x cluster keeps; every other one must go before an upgrade.
DEFAULT_ETCD_BACKUP = "etcd-backup-default"
#: The state of a 4.3 preflight check that lets the upgrade go on (the AC CLI page: Passed, Retry, Failed).
PREFLIGHT_PASSED = "Passed"
#: DaemonSets that tell each network plugin, by the names and images of the plugins' upstream
#: manifests (kube-flannel-ds / flannel, calico-node / calico/node, kube-ovn-cni / kube-ovn).
#: ACP's docs do not name them: a cluster where none matches is MANUAL.
PLUGIN_MARKERS = {
    "flannel": ("flannel",),
    "calico": ("calico-node", "calico/node"),
    "kube-ovn": ("kube-ovn",),
}


@dataclass(frozen=True)
class LiveCluster(PlannedInCluster):
    """Applies when the run has a kubeconfig to look with (and the ``When`` conditions hold)."""

    def describe(self) -> str:
        conditions = When.describe(self)
        return "with a kubeconfig" if conditions == "always" else f"{conditions}, with a kubeconfig"


LIVE = LiveCluster()


def _target(plan: ClusterPlan) -> AcpRelease:
    return release(plan.spec.acp.version)


def _target_kubernetes(target: AcpRelease) -> str:
    """The Kubernetes minor the target ACP ships (the one it creates clusters on; an upgraded
    cluster ends on it: from ACP 4.2 the Kubernetes upgrade goes with the platform's)."""
    return max(target.new_clusters, key=Version)


def _live_version(cluster: ClusterView) -> str:
    """The API server's version, or MANUAL when /version did not give one."""
    version = cluster.server_version
    if version is None:
        manual(f"{cluster.target}: the API server's /version gave no gitVersion; run `kubectl version` to read it")
    return version


def _nodes(cluster: ClusterView) -> list[dict[str, Any]]:
    nodes = cluster.items(NODES)
    if not nodes:
        manual(f"{cluster.target}: the API lists no Node; run `kubectl get nodes -o wide` to see why")
    return nodes


def _unknown(nodes: list[dict[str, Any]], key: str) -> list[str]:
    """The nodes whose summary has no ``key`` (evidence from an older acpcheck, or a node that did not say)."""
    return [str(node.get("name")) for node in nodes if not node.get(key)]


# ---------------------------------------------------------------------------
# The Kubernetes version the cluster really runs


@check(
    id="ACP-UPG-010",
    title="the cluster runs the Kubernetes version its plan declares",
    severity=Severity.HIGH,
    scope=Scope.CLUSTER,
    applies=LIVE,
    tags=TAGS,
    refs=[SUPPORT_MATRIX, PRE_UPGRADE["4.3"]],
    remediation=(
        "Correct spec.cluster.kubernetesVersion to what `kubectl version` reports for the cluster, then read the "
        "version findings (ACP-VER-*, ACP-UPG-*) again: they were judged on the declared version."
    ),
)
def check_live_kubernetes_matches_plan(plan: ClusterPlan, cluster: ClusterView) -> None:
    """Every version verdict of a plan (ACP-VER-001..003, ACP-UPG-002) trusts the
    ``kubernetesVersion`` typed into it; the API server's ``/version`` says what runs. A
    plan that declares another version gives verdicts about a cluster that does not
    exist. A plan that gives only a minor (``1.34``) is compared on the minor; one that
    gives a patch (``1.34.5``) on the patch, ignoring distribution build suffixes
    (``v1.34.5-acp.1`` is 1.34.5). Plans made from a fleet entry (no plan file) declare
    nothing and are not judged (the run SKIPs this check for them).
    """
    live, planned = _live_version(cluster), plan.spec.cluster.kubernetes_version
    exact = planned.count(".") >= 2
    same = (
        kubernetes_version(live) == kubernetes_version(planned)
        if exact
        else kubernetes_minor(live) == kubernetes_minor(planned)
    )
    if not same:
        fail(
            f"The API server of {cluster.target} runs Kubernetes {live}; the plan declares {planned} "
            "(spec.cluster.kubernetesVersion): the version checks judged the declared one",
            live=live,
            planned=planned,
            at=plan.where("spec", "cluster", "kubernetesVersion"),
        )


@check(
    id="ACP-UPG-011",
    title="the cluster's live Kubernetes version is inside the target ACP's range",
    severity=Severity.HIGH,
    scope=Scope.CLUSTER,
    applies=LIVE,
    tags=TAGS,
    refs=[SUPPORT_MATRIX, *PRE_UPGRADE.values()],
    remediation=(
        "Upgrade the cluster's Kubernetes (on its current ACP) into the range the target ACP requires before the "
        "global cluster is upgraded."
    ),
    plan_free=True,
)
def check_live_kubernetes_in_target_range(plan: ClusterPlan, cluster: ClusterView) -> None:
    """ACP-VER-002/003 and ACP-UPG-002, on the version the API server reports. The rule
    is the matrix's, chosen as those checks choose it: a third-party (imported,
    registered) cluster against the range the target accepts for them where it
    publishes one (4.3: >=1.19.0 <1.35.0); with a known current ACP version, the
    Kubernetes the target's pre-upgrade page requires of every cluster coming from it
    (4.3: 1.31-1.34; up to 4.2: the source release's newest minor); otherwise the
    target's compatible list. A current ACP version the target cannot be upgraded from
    is ACP-UPG-001's finding, not this one's.
    """
    target, acp, live = _target(plan), plan.spec.acp.version, _live_version(cluster)
    source = plan.spec.acp.upgrade_from
    if plan.spec.cluster.type in THIRD_PARTY and target.third_party is not None:
        ok, rule, page = (
            satisfies(live, target.third_party),
            f"{target.third_party} (third-party clusters)",
            target.source,
        )
    elif source is not None:
        requirement = target.upgrade.from_.get(acp_minor(source))
        if requirement is None:
            skip(f"the docs list no upgrade from ACP {acp_minor(source)} to {acp} (see ACP-UPG-001)")
        ok, page = satisfies(live, requirement.kubernetes), target.upgrade.source
        rule = f"{requirement.kubernetes} (required of every cluster upgrading from ACP {acp_minor(source)})"
    else:
        ok, page = kubernetes_minor(live) in target.compatible, target.source
        rule = f"{listed(target.compatible)} (the compatible list)"
    if not ok:
        fail(
            f"{cluster.target} runs Kubernetes {live}, outside what ACP {acp} requires: {rule} (source: {page})",
            live=live,
            allowed=rule,
            source=page,
        )


# ---------------------------------------------------------------------------
# Nodes: Ready, kubelet skew, runtime


@check(
    id="ACP-UPG-012",
    title="every node is Ready",
    severity=Severity.HIGH,
    scope=Scope.CLUSTER,
    applies=LIVE,
    tags=TAGS,
    refs=[HEALTH_KB, f"{NODE_STATUS}#condition"],
    remediation=(
        "Bring every node back to Ready (kubectl describe node <node>: the condition's reason and message; the "
        "kubelet's journal on the node) or remove it from the cluster, before the upgrade."
    ),
    plan_free=True,
)
def check_nodes_ready(cluster: ClusterView) -> None:
    """An upgrade drains, replaces or restarts components on every node; a node that is
    not Ready cannot take part, and its workloads are already displaced. ACP's cluster
    health check (knowledge base) starts with "all nodes Ready". Ready is the Node's
    ``Ready`` condition: ``False`` (the kubelet says it is unhealthy) and ``Unknown``
    (the node controller lost the kubelet) both FAIL; a node without the condition is
    MANUAL.
    """
    nodes = _nodes(cluster)
    not_ready = [
        f"{node.get('name')}: Ready={node.get('ready')}"
        + (f" ({node['readyReason']})" if node.get("readyReason") else "")
        for node in nodes
        if node.get("ready") not in (None, "True")
    ]
    fail_if(some_lines(not_ready, "nodes"), not_ready=len(not_ready), nodes=len(nodes))
    unknown = [str(node.get("name")) for node in nodes if node.get("ready") is None]
    if unknown:
        manual(
            f"The evidence gives no Ready condition for {some_names(unknown)}; run `kubectl get nodes` and check that "
            "every node is Ready"
        )


@check(
    id="ACP-UPG-013",
    title="kubelet versions are within the version skew policy of the API server",
    severity=Severity.HIGH,
    scope=Scope.CLUSTER,
    applies=LIVE,
    tags=TAGS,
    refs=[SKEW_POLICY],
    remediation=(
        "Upgrade (or, if newer, downgrade) the kubelet of the listed nodes to within three minors below the API "
        "server, and never above it, before the upgrade."
    ),
    plan_free=True,
)
def check_kubelet_skew(cluster: ClusterView) -> None:
    """The upstream version skew policy: a kubelet must not be newer than kube-apiserver
    and may be up to three minor versions older. A cluster outside it is unsupported
    before the upgrade starts, and upgrading the control plane only widens the gap.
    Compared on the minor, from the API server's /version and each Node's
    ``nodeInfo.kubeletVersion``.
    """
    server = kubernetes_version(_live_version(cluster))
    nodes = _nodes(cluster)
    findings = []
    for node in nodes:
        kubelet_text = node.get("kubeletVersion")
        if not kubelet_text:
            continue
        kubelet = kubernetes_version(str(kubelet_text))
        behind = server.minor - kubelet.minor
        if kubelet.major != server.major:
            findings.append(f"{node.get('name')}: kubelet {kubelet_text} is of another major version")
        elif behind < 0:
            findings.append(f"{node.get('name')}: kubelet {kubelet_text} is newer than the API server")
        elif behind > KUBELET_MAX_MINORS_OLDER:
            findings.append(
                f"{node.get('name')}: kubelet {kubelet_text} is {behind} minors older than the API server "
                f"(at most {KUBELET_MAX_MINORS_OLDER})"
            )
    if findings:
        fail(
            f"API server {cluster.server_version}: "
            + "; ".join(some_lines(findings, "nodes"))
            + f" (source: {SKEW_POLICY})",
            findings=findings,
            source=SKEW_POLICY,
        )
    unknown = _unknown(nodes, "kubeletVersion")
    if unknown:
        manual(f"The evidence gives no kubelet version for {some_names(unknown)}; read them with `kubectl get nodes`")


@check(
    id="ACP-UPG-014",
    title="no node runs the Docker runtime where the target ACP blocks it",
    severity=Severity.HIGH,
    scope=Scope.CLUSTER,
    applies=LiveCluster(cluster_types=PLATFORM_MANAGED),
    tags=TAGS,
    refs=[UPGRADE_GLOBAL, RELEASE_NOTES_42, f"{NODE_STATUS}#info"],
    remediation=(
        "Move the listed nodes from Docker to containerd before the platform upgrade. The public docs describe no "
        "in-place runtime switch, so agree the procedure with Alauda support."
    ),
    plan_free=True,
)
def check_live_docker_runtime(plan: ClusterPlan, cluster: ClusterView) -> None:
    """ACP-UPG-003 on what the nodes report (``nodeInfo.containerRuntimeVersion``,
    ``docker://…``), not on the plan's ``containerRuntime``: the ACP 4.3 preflight
    (DockerRuntimeUnsupported) blocks clusters that run Docker, which FAILs. ACP 4.2 no
    longer offers Docker without saying what happens to existing Docker clusters: a
    WARN. Earlier targets still support it.
    """
    target, acp = _target(plan), plan.spec.acp.version
    nodes = _nodes(cluster)
    docker = [
        f"{node.get('name')} ({node.get('containerRuntimeVersion')})"
        for node in nodes
        if str(node.get("containerRuntimeVersion") or "").startswith("docker://")
    ]
    evidence = {"nodes": docker, "source": target.docker.source}
    if docker and target.docker.blocks_upgrade:
        fail(
            f"ACP {acp} blocks the upgrade of clusters that run Docker; these nodes do: {some_names(docker)} "
            f"(source: {target.docker.source})",
            **evidence,
        )
    if docker and not target.docker.available:
        warn(
            f"ACP {acp} no longer offers the Docker runtime and its docs do not say how existing Docker clusters are "
            f"treated after an upgrade; these nodes run Docker: {some_names(docker)} (source: {target.docker.source})",
            **evidence,
        )
    unknown = _unknown(nodes, "containerRuntimeVersion")
    if unknown:
        manual(
            f"The evidence gives no container runtime for {some_names(unknown)}; read it with "
            "`kubectl get nodes -o wide`"
        )


# ---------------------------------------------------------------------------
# The network plugin in use


def _plugins_in_use(daemonsets: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Network plugin -> the DaemonSets (namespace/name) that show it runs."""
    found: dict[str, list[str]] = {}
    for daemonset in daemonsets:
        words = [str(daemonset.get("name") or ""), *(str(image) for image in daemonset.get("images") or [])]
        for plugin, markers in PLUGIN_MARKERS.items():
            if any(marker in word for marker in markers for word in words):
                found.setdefault(plugin, []).append(f"{daemonset.get('namespace')}/{daemonset.get('name')}")
    return found


@check(
    id="ACP-UPG-015",
    title="the network plugin in use is not removed in the target ACP",
    severity=Severity.HIGH,
    scope=Scope.CLUSTER,
    applies=LiveCluster(cluster_types=PLATFORM_MANAGED),
    tags=TAGS,
    refs=[RELEASE_NOTES_42],
    remediation=(
        "Migrate the cluster's network to a plugin the target ACP supports (Kube-OVN for Flannel clusters, as the "
        "ACP 4.2 release notes require) before the platform upgrade."
    ),
    plan_free=True,
)
def check_live_network_plugin(plan: ClusterPlan, cluster: ClusterView) -> None:
    """ACP-UPG-004 on what runs, not on the plan's ``network.plugin``: Flannel was
    removed in ACP 4.2, and Flannel clusters must move to Kube-OVN before the platform
    is upgraded to 4.2 or later. The plugin is told by its DaemonSets (the names and
    images of the plugins' upstream manifests: ``PLUGIN_MARKERS``); ACP's docs name
    none, so a cluster where no DaemonSet matches is MANUAL (a custom CNI, or names
    acpcheck does not know).
    """
    target, acp = _target(plan), plan.spec.acp.version
    in_use = _plugins_in_use(cluster.items(DAEMONSETS))
    if not in_use:
        manual(
            f"No DaemonSet of {cluster.target} looks like Kube-OVN, Calico or Flannel; run `kubectl get ds -A` and "
            f"check that its network plugin is supported on ACP {acp} (source: {target.plugins_source})"
        )
    removed = {
        plugin: in_use[plugin] for plugin, status in target.plugins.items() if status == "removed" and plugin in in_use
    }
    if removed:
        supported = [plugin for plugin, status in target.plugins.items() if status == "available"]
        fail(
            "; ".join(
                f"{cluster.target} runs network plugin {plugin} (DaemonSets {some_names(where)}), which ACP {acp} "
                "no longer supports"
                for plugin, where in removed.items()
            )
            + f"; migrate it to {listed(supported)} before the upgrade (source: {target.plugins_source})",
            in_use=in_use,
            source=target.plugins_source,
        )


# ---------------------------------------------------------------------------
# APIs the target's Kubernetes no longer serves


@check(
    id="ACP-UPG-016",
    title="no API version removed by the target's Kubernetes is still served and in use",
    severity=Severity.HIGH,
    scope=Scope.CLUSTER,
    applies=LIVE,
    tags=TAGS,
    refs=[GUIDE, SUPPORT_MATRIX],
    remediation=(
        "Move every manifest, chart and controller that writes the listed kinds to the replacement API version "
        "(kubectl-convert helps), then check with the API server's apiserver_requested_deprecated_apis metric "
        "that nothing requests the old version."
    ),
    plan_free=True,
)
def check_removed_apis(plan: ClusterPlan, cluster: ClusterView) -> None:
    """Each row of ``acpcheck/matrix/removed_apis.yaml`` (the upstream Deprecated API
    Migration Guide) names an API version that a Kubernetes minor stops serving. The
    target is the Kubernetes the target ACP ships (its version for new clusters, where
    an upgraded cluster ends). A removed version the cluster still serves AND that holds
    objects FAILs: whatever created them (manifests, Helm charts, controllers) may still
    write them in that version and will break after the upgrade. The guide says the
    stored objects themselves stay readable through the new version; a served version
    with nothing in it is no finding. Objects the API server keeps itself (the
    flow-control defaults, annotated ``apf.kubernetes.io/autoupdate-spec: "true"``) are
    on every cluster and are not counted. Listing through the old version shows objects
    whatever version wrote them, so the finding says where to look, not who wrote them.
    """
    kubernetes = _target_kubernetes(_target(plan))
    findings, still_served = [], []
    for row in removed_apis():
        if not row.removed_by(kubernetes):
            continue
        read = REMOVED_API_READS[row.key]
        if not cluster.served(read):
            continue
        still_served.append(row.group_version + "/" + row.resource)
        objects = [item for item in cluster.items(read) if not item.get("apiServerManaged")]
        if objects:
            first = objects[0]
            example = "/".join(str(part) for part in (first.get("namespace"), first.get("name")) if part)
            findings.append(
                f"{row.kind} {row.group_version} (removed in Kubernetes {row.removed_in}; use {row.replacement}): "
                f"still served, with objects such as {example} (source: {row.source})"
            )
    if findings:
        fail(
            f"Kubernetes {kubernetes} (ACP {plan.spec.acp.version}) no longer serves API versions that "
            f"{cluster.target} still uses:\n" + "\n".join(findings),
            findings=findings,
            target_kubernetes=kubernetes,
        )


# ---------------------------------------------------------------------------
# Pending certificate signing requests


def _pending(csr: dict[str, Any]) -> bool:
    """A CSR nobody approved, denied or failed (its conditions name none of those)."""
    return not {"Approved", "Denied", "Failed"} & set(csr.get("conditions") or [])


@check(
    id="ACP-UPG-017",
    title="no certificate signing request is left pending",
    severity=Severity.MEDIUM,
    scope=Scope.CLUSTER,
    applies=LIVE,
    tags=TAGS,
    refs=[HEALTH_KB, CSR_DOCS],
    remediation=(
        "Find what requested each pending CSR (kubectl get csr; kubectl describe csr <name>): approve the ones of "
        "your own nodes' kubelets (kubectl certificate approve <name>), deny the others."
    ),
    plan_free=True,
)
def check_pending_csrs(cluster: ClusterView) -> None:
    """ACP's cluster health check (knowledge base) lists "kubectl get csr: no Pending".
    A pending kubelet-serving CSR is a kubelet without its serving certificate (logs,
    exec and metrics of that node fail), and node certificate rotation during the
    upgrade goes through the same approval. This is a WARN, never a FAIL: CSRs are
    pending for a few seconds in a healthy cluster too, the API server deletes pending
    ones after 24 hours, and the upgrade pages name no rule about them; a person should
    look, not be blocked.
    """
    pending = [csr for csr in cluster.items(CSRS) if _pending(csr)]
    if pending:
        lines = [f"{csr.get('name')} ({csr.get('signerName')}, created {csr.get('created')})" for csr in pending]
        warn(
            f"{len(pending)} certificate signing request(s) pending: " + "; ".join(some_lines(lines, "requests")),
            pending=lines,
        )


# ---------------------------------------------------------------------------
# Custom etcd backup tasks


@check(
    id="ACP-UPG-018",
    title="no etcd backup task other than etcd-backup-default",
    severity=Severity.HIGH,
    scope=Scope.CLUSTER,
    applies=LIVE,
    tags=TAGS,
    refs=[PRE_UPGRADE["4.0"], PRE_UPGRADE["4.1"], ETCD_BACKUP, UPGRADE_GLOBAL],
    remediation=(
        "Back up the settings of, then delete, every etcd backup task except etcd-backup-default (deleting a task "
        "keeps the snapshots it made); reconfigure etcd-backup-default after the upgrade if needed."
    ),
    plan_free=True,
)
def check_custom_etcd_backups(cluster: ClusterView) -> None:
    """From ACP 4.0 periodic etcd backup tasks other than ``etcd-backup-default`` are
    deprecated, and the pre-upgrade pages ask to delete them before upgrading; ACP 4.3's
    preflight checks the same (CustomEtcdBackupCronJobsAbsent). A task is an
    EtcdBackupConfiguration of the Cluster Enhancer (etcd backup page), or a CronJob
    named ``etcd-backup…`` (our reading of the preflight's name: the docs give no
    semantics for it). A cluster without the Cluster Enhancer (the resource is not
    served) is judged on its CronJobs only.
    """
    custom = []
    if cluster.served(ETCD_BACKUP_CONFIGS):
        custom += [
            f"EtcdBackupConfiguration {'/'.join(str(p) for p in (item.get('namespace'), item.get('name')) if p)}"
            for item in cluster.items(ETCD_BACKUP_CONFIGS)
            if item.get("name") != DEFAULT_ETCD_BACKUP
        ]
    custom += [
        f"CronJob {item.get('namespace')}/{item.get('name')}"
        for item in cluster.items(CRONJOBS)
        if str(item.get("name") or "").startswith("etcd-backup") and item.get("name") != DEFAULT_ETCD_BACKUP
    ]
    if custom:
        fail(
            f"{cluster.target} has etcd backup tasks besides {DEFAULT_ETCD_BACKUP}: {some_names(custom)}; the "
            f"pre-upgrade pages ask to delete them before upgrading (source: {PRE_UPGRADE['4.0']})",
            tasks=custom,
        )


# ---------------------------------------------------------------------------
# ACP 4.3's own preflight


def _preflight_commands(plan: ClusterPlan) -> str:
    if plan.spec.cluster.role == "global":
        return "run `bash upgrade.sh --preflight` from the core package on the global cluster"
    name = plan.metadata.name
    return (
        f"run `bash upgrade.sh --cluster={name} --preflight`, then read the results on the global cluster with "
        f"`kubectl -n cpaas-system get cvsh {name} -o yaml`"
    )


def _age(observed_at: Any, now: dt.datetime) -> str:
    try:
        then = dt.datetime.fromisoformat(str(observed_at).replace("Z", "+00:00"))
    except ValueError:
        return ""
    return f", {(now - then).days} day(s) before this reading"


@check(
    id="ACP-UPG-019",
    title="ACP 4.3 upgrade preflight has run and every check passed",
    severity=Severity.HIGH,
    scope=Scope.CLUSTER,
    applies=LiveCluster(acp=">=4.3"),
    tags=TAGS,
    refs=[UPGRADE_GLOBAL, UPGRADE_WORKLOAD, AC_UPGRADING],
    remediation=(
        "Run `upgrade.sh --preflight` (1-2 weeks before the window), resolve every check that is not Passed (the "
        "upgrade page's 'Handle preflight blocks'), and run it again."
    ),
    plan_free=True,
)
def check_preflight(plan: ClusterPlan, cluster: ClusterView) -> None:
    """From ACP 4.3 the upgrade runs through the cluster version operator, and
    ``upgrade.sh --preflight`` writes its checks into the ClusterVersionShadow
    (``cvsh global`` in ``cpaas-system``): ``status.preflight.checks[]`` with a state of
    Passed, Retry or Failed. Any check not Passed FAILs, named with its reason and
    message. No ClusterVersionShadow, or one without preflight results, is no result:
    MANUAL with the command to run, never a PASS. A workload cluster's
    ClusterVersionShadow lives on the global cluster under the workload cluster's name,
    which this check (reading the cluster's own API) does not see: there it is MANUAL
    with the commands to run on global. The age of the results is reported; the docs
    ask for the preflight 1-2 weeks ahead and give no expiry, so age is no finding.
    """
    how = _preflight_commands(plan)
    if not cluster.served(CLUSTER_VERSION_SHADOW):
        manual(
            f"{cluster.target} does not serve ClusterVersionShadow ({CLUSTER_VERSION_SHADOW.qualified}: the CVO is not "
            f"deployed yet, or serves it in another API group: `kubectl api-resources | grep -i cvsh`); {how}"
        )
    shadow = cluster.get(CLUSTER_VERSION_SHADOW)
    preflight = (shadow or {}).get("preflight") or {}
    checks = preflight.get("checks") or []
    if shadow is None or not checks:
        what = "no ClusterVersionShadow global in cpaas-system" if shadow is None else "no preflight results"
        manual(f"{cluster.target} has {what}: there is no preflight result to judge; {how}")
    observed = preflight.get("observedAt")
    blocked = [
        f"{item.get('name')}: {item.get('state')}"
        + (f" ({item.get('reason')})" if item.get("reason") else "")
        + (f": {item.get('message')}" if item.get("message") else "")
        for item in checks
        if item.get("state") != PREFLIGHT_PASSED
    ]
    if blocked:
        fail(
            f"The upgrade preflight of {cluster.target} (observed {observed}{_age(observed, cluster.observed_at)}) "
            f"did not pass:\n" + "\n".join(some_lines(blocked, "checks")) + f"\n(source: {UPGRADE_GLOBAL})",
            blocked=blocked,
            observed_at=observed,
            source=UPGRADE_GLOBAL,
        )
