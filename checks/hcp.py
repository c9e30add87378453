"""Hosted control planes (HCP), judged from the plan: what the Hosted Control Plane
concepts page requires of a cluster whose control plane runs as workloads of a
management cluster (Kamaji on Cluster API).

These are the rules a plan can answer alone. Two more HCP rules live with their kind:
ACP-VER-007 (is HCP offered by the target ACP, from the version matrix) and ACP-NET-005
(the cluster's pod and service CIDRs against the management cluster's, with the other
CIDR rules). What only the management cluster can show (its plugins, LoadBalancer
pools, the DataStore object and its etcd) is not checked here.
"""

from __future__ import annotations

from acpcheck import Severity, When, check, fail, manual
from acpcheck.checks.support import HCP_CONCEPTS, HOSTED_CONTROL_PLANE, planned_network
from acpcheck.model.plan import ClusterPlan

#: The only network plugin hosted control planes support ("Network Plugin: Currently
#: supports Calico"; the SSHCluster's network plugin selection is Calico).
HCP_NETWORK_PLUGIN = "calico"
#: The only container runtime hosted control planes support, as the concepts page
#: writes it ("Container Runtime ... currently supports: Containerd 1.7.27-4",
#: specified in the SSHMachineTemplate and installed on the workers).
HCP_RUNTIME, HCP_RUNTIME_VERSION = "containerd", "1.7.27-4"

HOSTED = When(cluster_types=HOSTED_CONTROL_PLANE)


@check(
    id="ACP-HCP-001",
    title="a hosted control plane cluster uses the Calico network plugin",
    severity=Severity.HIGH,
    applies=When(cluster_types=HOSTED_CONTROL_PLANE, needs_network=True),
    refs=[HCP_CONCEPTS],
    remediation="Set spec.network.plugin to calico: it is the only network plugin hosted control planes support.",
)
def check_hosted_network_plugin_calico(plan: ClusterPlan) -> None:
    """The Hosted Control Plane concepts page says the network plugin of a hosted cluster
    "currently supports Calico", and the SSHCluster that provisions it selects Calico.
    Kube-OVN, Flannel or a custom CNI are not supported there, whatever the target ACP
    recommends for on-premise clusters (which is why ACP-VER-006's maintenance-mode
    advice does not apply to hosted control planes).
    """
    plugin = planned_network(plan).plugin
    if plugin != HCP_NETWORK_PLUGIN:
        fail(
            f"Network plugin {plugin} is not supported for a hosted control plane cluster: hosted control planes "
            f"support only {HCP_NETWORK_PLUGIN} (source: {HCP_CONCEPTS})",
            planned=plugin,
            allowed=[HCP_NETWORK_PLUGIN],
            source=HCP_CONCEPTS,
            at=plan.where("spec", "network", "plugin"),
        )


@check(
    id="ACP-HCP-002",
    title=f"the workers of a hosted control plane cluster get {HCP_RUNTIME} {HCP_RUNTIME_VERSION}",
    severity=Severity.HIGH,
    applies=HOSTED,
    refs=[HCP_CONCEPTS],
    remediation=(
        f"Specify {HCP_RUNTIME} {HCP_RUNTIME_VERSION} in the cluster's SSHMachineTemplate and set "
        f"spec.cluster.containerRuntime: {HCP_RUNTIME} and spec.cluster.containerRuntimeVersion: "
        f'"{HCP_RUNTIME_VERSION}" in the plan.'
    ),
)
def check_hosted_container_runtime(plan: ClusterPlan) -> None:
    """The concepts page says hosted control planes currently support one container runtime,
    containerd 1.7.27-4, which the SSHMachineTemplate specifies and ACP installs on the
    worker nodes while provisioning them. Another runtime or version is not supported.

    The plan states the version in spec.cluster.containerRuntimeVersion (optional); when it
    does not, the version cannot be judged here and is left to a person (MANUAL), with
    the template to look at.
    """
    cluster = plan.spec.cluster
    wanted = f"{HCP_RUNTIME} {HCP_RUNTIME_VERSION}"
    if cluster.container_runtime != HCP_RUNTIME:
        fail(
            f"Container runtime {cluster.container_runtime} is not supported for a hosted control plane cluster: "
            f"its workers run {wanted} (source: {HCP_CONCEPTS})",
            planned=cluster.container_runtime,
            allowed=[HCP_RUNTIME],
            source=HCP_CONCEPTS,
            at=plan.where("spec", "cluster", "containerRuntime"),
        )
    version = cluster.container_runtime_version
    if version is None:
        manual(
            f"spec.cluster.containerRuntimeVersion is not set: check that the SSHMachineTemplate of this cluster's "
            f"workers specifies {wanted}, the only runtime hosted control planes support (source: {HCP_CONCEPTS}); "
            "set the field to let acpcheck check it"
        )
    if version.removeprefix("v") != HCP_RUNTIME_VERSION:
        fail(
            f"{HCP_RUNTIME} {version} is not supported for a hosted control plane cluster: hosted control planes "
            f"support {wanted} only (source: {HCP_CONCEPTS})",
            planned=version,
            allowed=[HCP_RUNTIME_VERSION],
            source=HCP_CONCEPTS,
            at=plan.where("spec", "cluster", "containerRuntimeVersion"),
        )


@check(
    id="ACP-HCP-003",
    title="a hosted control plane cluster names the DataStore that keeps its control-plane data",
    severity=Severity.MEDIUM,
    applies=HOSTED,
    refs=[HCP_CONCEPTS],
    remediation=(
        "Set spec.managementCluster.dataStore to the name of the DataStore (kamaji.clastix.io) in the management "
        "cluster that the KamajiControlPlane will reference, e.g. default-datastore."
    ),
)
def check_hosted_data_store_named(plan: ClusterPlan) -> None:
    """A hosted control plane keeps all its Kubernetes objects in an external etcd that a
    DataStore configures, and the KamajiControlPlane that defines the control plane carries
    the DataStore reference (concepts page: DataStore, KamajiControlPlane). The docs say
    nothing of a control plane without one, so a plan that names none leaves open where
    the cluster's data lives: a FAIL at medium. (Upstream Kamaji falls back to a default
    DataStore configured on its controller; the Alauda docs do not describe that.)

    The name itself is checked for form when the plan is loaded (a Kubernetes object
    name); whether that DataStore exists in the management cluster, uses etcd and TLS
    can only be read there.
    """
    if plan.spec.management_cluster.data_store is None:
        fail(
            "spec.managementCluster.dataStore is not set: a hosted control plane keeps its data in the external etcd "
            f"of the DataStore its KamajiControlPlane references, and the plan names none (source: {HCP_CONCEPTS})",
            source=HCP_CONCEPTS,
            at=plan.where("spec", "managementCluster"),
        )
