"""Public-cloud clusters (EKS, AKS, GKE): which cloud the live nodes say they run on, and what the
global cluster needs to manage such clusters.

"Clusters Overview", Connected Clusters > Public Cloud Kubernetes (ACP 4.0-4.3): ACP "connects to
managed Kubernetes services such as EKS, AKS, and GKE through cloud-specific providers (e.g., Alauda
Container Platform EKS Provider)" and "cloud credentials can be securely stored in the platform".
The provider-specific import pages (aws-eks, azure-aks, gcp-gke) import such a cluster as a
third-party cluster whose nodes the provider manages ("Adding nodes through the platform interface
is not supported").

How each thing is recognised:

- the cloud: a Node's ``spec.providerID``, "<ProviderName>://<ProviderSpecificNodeID>" (Kubernetes
  Node API), whose scheme each cloud's own cloud provider sets (``PROVIDER_SCHEMES``, with sources);
- the provider cluster plugin and the Cloud Credentials: the docs name them (and the UI page
  Clusters > Cloud Credential, and the built-in ``public-registry-credential``) but give no API
  object of either — no CRD, no ModuleInfo module name, no kind for a Cloud Credential. So ACP-CLOUD-002
  is MANUAL with the commands to run, and never reads a credential.

A plan says a cluster is public-cloud with ``spec.cluster.cloudProvider``; the node checks (run over
SSH) are then SKIPped with that reason (``acpcheck.grading.not_applicable``).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from acpcheck import Scope, Severity, check, fail, manual, skip, warn
from acpcheck.constants import ACP_DOCS
from acpcheck.model.check import When
from acpcheck.model.plan import PLATFORM_MANAGED, ClusterPlan
from acpcheck.sources.cluster import NODES, ClusterView

CLUSTERS_OVERVIEW = f"{ACP_DOCS}/4.3/configure/clusters/overview.html"
IMPORT_PAGES = {
    "eks": f"{ACP_DOCS}/4.3/configure/clusters/managed/import/aws-eks.html",
    "aks": f"{ACP_DOCS}/4.3/configure/clusters/managed/import/azure-aks.html",
    "gke": f"{ACP_DOCS}/4.3/configure/clusters/managed/import/gcp-gke.html",
}
NODE_PLANNING_43 = f"{ACP_DOCS}/4.3/configure/clusters/acp-node-planning.html"
CLOUD_CREDENTIALS_PAGE = f"{ACP_DOCS}/4.3/configure/clusters/how-to/update_public_repository_credentials.html"
MODULE_INFO_API = f"{ACP_DOCS}/4.3/apis/kubernetes_apis/moduleplugin/moduleinfo.html"
NODE_PROVIDER_ID = "https://kubernetes.io/docs/reference/kubernetes-api/cluster-resources/node-v1/#NodeSpec"

#: providerID scheme -> the plan's cloudProvider value. Each scheme is the one the cloud's own
#: cloud-controller-manager writes: aws:///<zone>/<instance-id>
#: (https://github.com/kubernetes/cloud-provider-aws, pkg/providers/v1/aws.go, ProviderName "aws"),
#: azure:///subscriptions/... (https://github.com/kubernetes-sigs/cloud-provider-azure, CloudProviderName
#: "azure"), gce://<project>/<zone>/<name> (https://github.com/kubernetes/cloud-provider-gcp, ProviderName "gce").
PROVIDER_SCHEMES: dict[str, str] = {"aws": "eks", "azure": "aks", "gce": "gke"}
#: What the docs call each cloud's managed Kubernetes (Clusters Overview, Public Cloud Kubernetes).
PROVIDER_NAMES: dict[str, str] = {"eks": "Amazon EKS", "aks": "Azure AKS", "gke": "Google GKE"}


def cloud_of(provider_id: str | None) -> str | None:
    """The plan's cloudProvider value a Node's providerID names, or None (no providerID, or another scheme)."""
    scheme, separator, _ = (provider_id or "").partition("://")
    return PROVIDER_SCHEMES.get(scheme) if separator else None


def _live_clouds(cluster: ClusterView) -> Counter[str | None]:
    """How many nodes report each cloud (None: a node with no public-cloud providerID)."""
    nodes: list[dict[str, Any]] = cluster.items(NODES)
    if not nodes:
        skip("the cluster has no Node objects to read a providerID from")
    return Counter(cloud_of(node.get("providerID")) for node in nodes)


@check(
    id="ACP-CLOUD-001",
    title="the cloud the nodes run on (providerID) agrees with the plan",
    severity=Severity.HIGH,
    scope=Scope.CLUSTER,
    refs=[CLUSTERS_OVERVIEW, *IMPORT_PAGES.values(), NODE_PROVIDER_ID],
    remediation=(
        "Make the plan say what the cluster is: for EKS/AKS/GKE nodes set spec.cluster.cloudProvider (eks, aks, gke) "
        "and spec.cluster.type imported or registered (ACP imports them as third-party clusters); a cluster ACP is "
        "to build on-premise must not run on a cloud's managed nodes. See: kubectl get nodes "
        "-o custom-columns=NAME:.metadata.name,PROVIDER:.spec.providerID"
    ),
)
def check_cloud_provider_matches_plan(plan: ClusterPlan, cluster: ClusterView) -> None:
    """A public-cloud cluster is taken on differently from one ACP builds: ACP imports or registers
    it as a third-party cluster and never reaches its nodes (the import pages: "Adding nodes through
    the platform interface is not supported"; node planning: its operations are "not supported on
    cloud clusters (such as EKS managed clusters ...)"). The nodes tell the cloud by their
    ``providerID`` (aws://, azure://, gce://). A plan that calls such a cluster on-premise,
    immutable or hosted-control-plane, or names another cloud, is judged by the wrong rules: FAIL.
    A plan that does not say the cloud the nodes show is a WARN: its node checks are not skipped."""
    counts = _live_clouds(cluster)
    clouds = sorted(cloud for cloud in counts if cloud is not None)
    planned = plan.spec.cluster.cloud_provider
    kind = plan.spec.cluster.type
    seen = ", ".join(f"{PROVIDER_NAMES[cloud]} ({counts[cloud]} nodes)" for cloud in clouds)
    if len(clouds) > 1:
        fail(f"the nodes report more than one cloud: {seen}", clouds=clouds)
    live = clouds[0] if clouds else None
    if live is not None and kind in PLATFORM_MANAGED:
        fail(
            f"the plan says cluster type {kind}, but the nodes run on {seen}: ACP does not build clusters on a "
            "cloud's managed nodes (import or register it, with spec.cluster.cloudProvider)",
            cloud=live,
            planned_type=kind,
        )
    if planned is not None and live != planned:
        found = seen or "no public cloud (no aws://, azure:// or gce:// providerID)"
        fail(f"the plan says cloudProvider {planned} ({PROVIDER_NAMES[planned]}), the nodes say {found}", cloud=live)
    if live is not None and planned is None:
        warn(
            f"the nodes run on {seen}; the plan does not say spec.cluster.cloudProvider: {live}, so the node checks "
            "are not skipped",
            cloud=live,
        )
    if live is not None and counts[None]:
        warn(f"the nodes run on {seen} and {counts[None]} nodes have no {live} providerID", cloud=live)
    # PASS: the plan and the nodes agree (the cloud both name, or no public cloud at all).


@check(
    id="ACP-CLOUD-002",
    title="the global cluster has the cloud's provider cluster plugin and a Cloud Credential for it",
    severity=Severity.MEDIUM,
    scope=Scope.PLAN,
    applies=When(cluster_roles=frozenset({"workload"})),
    refs=[CLUSTERS_OVERVIEW, NODE_PLANNING_43, CLOUD_CREDENTIALS_PAGE, MODULE_INFO_API],
    remediation=(
        "On the global cluster, install the cloud's provider cluster plugin (Administrator > Marketplace > Cluster "
        "Plugins, e.g. Alauda Container Platform EKS Provider) and add a Cloud Credential for the cloud account "
        "(Administrator > Clusters > Cloud Credential)."
    ),
)
def check_cloud_provider_plugin_and_credential(plan: ClusterPlan) -> None:
    """ACP "connects to managed Kubernetes services such as EKS, AKS, and GKE through cloud-specific
    providers (e.g., Alauda Container Platform EKS Provider)", a Cluster Plugin on global, and keeps
    the cloud account's "cloud credentials" in the platform (Clusters Overview). The docs give no
    API object that identifies either: no CRD and no ModuleInfo module name for a provider plugin
    (installed cluster plugins are ModuleInfo objects, labelled ``cpaas.io/module-name``), and no
    kind for a Cloud Credential. So this check does not guess: it is MANUAL with the commands to
    run on global, and never reads a credential (whose values must stay out of every report)."""
    cloud = plan.spec.cluster.cloud_provider
    if cloud is None:
        skip("not applicable: the plan names no public cloud (spec.cluster.cloudProvider)")
    name = PROVIDER_NAMES[cloud]
    manual(
        f"the docs name the {name} provider cluster plugin and Cloud Credentials but no API object to recognise "
        "them by (no CRD, no ModuleInfo module name, no Cloud Credential kind). On the global cluster, run: "
        r"kubectl get moduleinfo -o custom-columns=NAME:.metadata.name,MODULE:.metadata.labels.cpaas\.io/module-name"
        f" and confirm the {name} provider is installed; then check Administrator > Clusters > Cloud Credential "
        f"lists a credential for the {name} account (the import of an existing cluster does not use it: "
        f"{IMPORT_PAGES[cloud]})"
    )
