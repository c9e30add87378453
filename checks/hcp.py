"""Hosted control planes (HCP), judged from the plan: what the Hosted Control Plane
concepts page requires of a cluster whose control plane runs as workloads of a
management cluster (Kamaji on Cluster API).

ACP-HCP-001..003 are the rules a plan can answer alone. Two more HCP rules live with their
kind: ACP-VER-007 (is HCP offered by the target ACP, from the version matrix) and ACP-NET-005
(the cluster's pod and service CIDRs against the management cluster's, with the other CIDR
rules).

ACP-HCP-004 and up read the **management cluster** through the Kubernetes API (the
``cluster`` source, one kubeconfig per run): for a hosted-control-plane plan, the run's
kubeconfig (``spec.kubeconfig`` or ``--kubeconfig``) IS the management cluster's. The hosted
cluster has no API of its own before it is created, and its control plane runs as workloads
of the management cluster, so a pre-create run of such a plan looks at the management
cluster. They check what the concepts page requires of it: the cluster plugins Kubeadm
Provider, Hosted Control Plane and SSH Infrastructure Provider, and LoadBalancer Services
(MetalLB with an address pool, the pools clear of the pod and Service CIDRs). The DataStore
object and its etcd are not checked here yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from netaddr import AddrFormatError, IPNetwork, IPRange

from acpcheck import Scope, Severity, When, check, fail, fail_if, manual, skip, warn
from acpcheck.addressing import Labelled, find_overlaps, parse_ip
from acpcheck.checks.support import HCP_CONCEPTS, HOSTED_CONTROL_PLANE, PlannedInCluster, planned_network
from acpcheck.constants import ACP_DOCS
from acpcheck.matrix.hcp_plugins import HCP_PLUGINS_FILE, hcp_plugins
from acpcheck.model.plan import ClusterPlan
from acpcheck.sources.cluster import CRDS, METALLB_POOLS, ClusterView

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


# ---------------------------------------------------------------------------
# The management cluster, read live (the run's kubeconfig is the management cluster's)

#: ACP's MetalLB page: address pools "must not overlap" the Cluster CIDR, Service CIDR or subnets.
METALLB_OPERATOR = f"{ACP_DOCS}/4.3/networking/operators/metallb_operator.html"
#: MetalLB's own reference for IPAddressPool (addresses as CIDRs or first-last ranges, autoAssign).
METALLB_POOLS_DOCS = (
    "https://metallb.universe.tf/configuration/#defining-the-ips-to-assign-to-the-load-balancer-services"
)
LIVE_TAGS = frozenset({"live"})


@dataclass(frozen=True)
class ManagementClusterLive(PlannedInCluster):
    """Applies to a hosted-control-plane plan whose run has a kubeconfig: the management cluster's."""

    def describe(self) -> str:
        return f"{When.describe(self)}, with the management cluster's kubeconfig"


MANAGEMENT = ManagementClusterLive(cluster_types=HOSTED_CONTROL_PLANE)
#: ACP-HCP-006 also reads the tenant's spec.network (its pod and Service CIDRs).
MANAGEMENT_AND_TENANT_NETWORK = ManagementClusterLive(cluster_types=HOSTED_CONTROL_PLANE, needs_network=True)


@check(
    id="ACP-HCP-004",
    title="the management cluster has the cluster plugins hosted control planes need",
    severity=Severity.HIGH,
    scope=Scope.CLUSTER,
    applies=MANAGEMENT,
    tags=LIVE_TAGS,
    refs=[HCP_CONCEPTS],
    remediation=(
        "Install the missing cluster plugins on the management cluster: Kubeadm Provider, Hosted Control Plane and "
        "SSH Infrastructure Provider, as the Hosted Control Plane docs require."
    ),
)
def check_management_cluster_plugins(plan: ClusterPlan, cluster: ClusterView) -> None:
    """The concepts page says the management cluster "requires cluster plugins: Kubeadm
    Provider, Hosted Control Plane, SSH Infrastructure Provider". A plugin is known here by
    the CustomResourceDefinitions it serves (acpcheck/matrix/hcp_plugins.yaml, each row with
    its source): it counts as installed when the cluster serves every one of them. One
    missing CRD is enough to FAIL, naming the plugin and the CRD: without it the plugin's
    objects (a TenantControlPlane, an SSHHost) cannot be created.
    """
    served = {str(crd.get("name")) for crd in cluster.items(CRDS) if crd.get("servedVersions")}
    findings, missing = [], []
    for row in hcp_plugins():
        absent = [name for name in row.crds if name not in served]
        if absent:
            missing.append(row.plugin)
            findings.append(
                f"cluster plugin {row.plugin} is not installed on the management cluster ({cluster.server}): it "
                f"serves no "
                f"{', '.join(absent)} (source: {row.source})"
            )
    fail_if(findings, missing=missing, data=str(HCP_PLUGINS_FILE.name), source=HCP_CONCEPTS)


def _pools(cluster: ClusterView) -> list[dict[str, Any]]:
    """MetalLB's address pools; FAIL when MetalLB is not installed (the cluster does not serve them)."""
    if not cluster.served(METALLB_POOLS):
        fail(
            f"The management cluster ({cluster.server}) serves no {METALLB_POOLS.qualified}: MetalLB is not "
            "installed, so nothing gives "
            "LoadBalancer Services an address, and each hosted control plane's API server is exposed through one "
            f"(source: {HCP_CONCEPTS}). A LoadBalancer implementation other than MetalLB is not recognised here",
            source=HCP_CONCEPTS,
        )
    return cluster.items(METALLB_POOLS)


def _pool_name(pool: dict[str, Any]) -> str:
    return f"{pool.get('namespace')}/{pool.get('name')}" if pool.get("namespace") else str(pool.get("name"))


@check(
    id="ACP-HCP-005",
    title="the management cluster supports LoadBalancer Services (MetalLB with a free address pool)",
    severity=Severity.HIGH,
    scope=Scope.CLUSTER,
    applies=MANAGEMENT,
    tags=LIVE_TAGS,
    refs=[HCP_CONCEPTS, METALLB_OPERATOR],
    remediation=(
        "Install MetalLB on the management cluster (ACP's MetalLB operator) and create an IPAddressPool of free "
        "addresses on the nodes' network, outside every pod and Service CIDR; add addresses when the pools run out."
    ),
)
def check_management_cluster_load_balancer(plan: ClusterPlan, cluster: ClusterView) -> None:
    """The concepts page says the management cluster "must support LoadBalancer service type
    (e.g., MetalLB)": every hosted control plane's API server is exposed through a
    LoadBalancer Service. MetalLB is the implementation ACP ships (its MetalLB operator), and
    the one recognised here: the cluster must serve its IPAddressPool type (else FAIL: not
    installed) and hold at least one pool (else FAIL: no Service would get an address).

    Whether the pools are used up cannot be told from the pools' spec alone (it needs every
    LoadBalancer Service's status). MetalLB 0.14 and later count the free addresses in each
    pool's status (``availableIPv4``/``availableIPv6``); when every pool gives those counts and
    they are all zero, this WARNs (a new control plane would wait for an address). When a pool
    does not give them, nothing is said about exhaustion: it is not known.
    """
    pools = _pools(cluster)
    if not pools:
        fail(
            f"MetalLB is installed on the management cluster ({cluster.server}) but has no IPAddressPool: no "
            "LoadBalancer Service can get an "
            f"address, so no hosted control plane's API server can be exposed (source: {HCP_CONCEPTS})",
            source=HCP_CONCEPTS,
        )
    counted = [pool for pool in pools if pool.get("available")]
    if len(counted) == len(pools) and all(sum(pool["available"].values()) == 0 for pool in counted):
        warn(
            f"Every MetalLB address pool of the management cluster ({cluster.server}) reports no free address "
            f"({', '.join(_pool_name(pool) for pool in pools)}: status availableIPv4/availableIPv6 0): the "
            "LoadBalancer Service of the next hosted control plane would wait for an address",
            pools=[_pool_name(pool) for pool in pools],
        )


def _pool_range(label: str, text: str) -> Labelled | None:
    """One entry of a pool's ``spec.addresses``: a CIDR or a ``first-last`` range; None when it is neither."""
    try:
        if "-" in text:
            first, _, last = text.partition("-")
            return Labelled(label, IPRange(parse_ip(first), parse_ip(last)))
        address, slash, prefix = text.partition("/")
        parse_ip(address)  # refuses the legacy forms netaddr would accept
        return Labelled(label, IPNetwork(text.strip()).cidr if slash else IPNetwork(address.strip()))
    except (ValueError, AddrFormatError):
        return None


def _planned_cidrs(plan: ClusterPlan) -> tuple[list[Labelled], dict[str, str], list[str]]:
    """The ranges a pool must stay out of, as the plan gives them: the management cluster's pod and
    Service CIDRs (spec.managementCluster) and this hosted cluster's (spec.network); where the plan
    gives each (by label); and the management cluster's fields the plan leaves unset."""
    management, network = plan.spec.management_cluster, plan.spec.network
    ranges: list[Labelled] = []
    where: dict[str, str] = {}
    unset: list[str] = []
    for label, path, cidrs in (
        ("management cluster pod CIDR", ("spec", "managementCluster", "podCIDR"), management.pod_cidr),
        ("management cluster Service CIDR", ("spec", "managementCluster", "serviceCIDR"), management.service_cidr),
        ("this cluster's pod CIDR", ("spec", "network", "clusterCIDR"), network and network.cluster_cidr),
        ("this cluster's Service CIDR", ("spec", "network", "serviceCIDR"), network and network.service_cidr),
    ):
        if cidrs:
            ranges.extend(Labelled(label, cidr) for cidr in cidrs)
            where[label] = f"{'.'.join(path)}, {plan.where(*path)}"
        elif path[1] == "managementCluster":
            unset.append(".".join(path))
    return ranges, where, unset


@check(
    id="ACP-HCP-006",
    title="the management cluster's MetalLB address pools stay out of the pod and Service CIDRs",
    severity=Severity.HIGH,
    scope=Scope.CLUSTER,
    applies=MANAGEMENT_AND_TENANT_NETWORK,
    tags=LIVE_TAGS,
    refs=[METALLB_OPERATOR, HCP_CONCEPTS, METALLB_POOLS_DOCS],
    remediation=(
        "Change the listed IPAddressPool's spec.addresses to free addresses outside the management cluster's and "
        "every hosted cluster's pod and Service CIDRs (or choose other CIDRs for the hosted cluster)."
    ),
)
def check_management_cluster_pools_clear_of_cidrs(plan: ClusterPlan, cluster: ClusterView) -> None:
    """ACP's MetalLB page says the address pools must not overlap the Cluster CIDR or the
    Service CIDR: an address handed to a LoadBalancer Service that is also a pod's or a
    ClusterIP is routed to the wrong place. A hosted cluster's pods and Services are reached
    from the management cluster too (its control plane runs there), so a pool must also stay
    out of this hosted cluster's CIDRs (spec.network clusterCIDR and serviceCIDR).

    The management cluster's CIDRs come from the plan (spec.managementCluster podCIDR and
    serviceCIDR, as ACP-NET-005 reads them). Any overlap FAILs; a pool address that is neither
    a CIDR nor a range FAILs too (MetalLB would refuse it). Without the management cluster's
    CIDRs in the plan and no overlap found, the comparison is incomplete: MANUAL, naming the
    fields to set. Without MetalLB or a pool there is nothing to compare (ACP-HCP-005 says so).
    """
    if not cluster.served(METALLB_POOLS) or not cluster.items(METALLB_POOLS):
        skip("not applicable: the management cluster has no MetalLB address pool (ACP-HCP-005 reports it)")
    pools: list[Labelled] = []
    findings: list[str] = []
    for pool in cluster.items(METALLB_POOLS):
        for text in pool.get("addresses") or []:
            found = _pool_range(f"MetalLB pool {_pool_name(pool)}", text)
            if found is None:
                findings.append(f"MetalLB pool {_pool_name(pool)}: {text!r} is neither a CIDR nor a first-last range")
            else:
                pools.append(found)
    cidrs, where, unset = _planned_cidrs(plan)
    for pool_range, cidr in find_overlaps(pools, cidrs):
        findings.append(
            f"{pool_range} overlaps {cidr} ({where[cidr.label]}): a LoadBalancer address must not be a pod or "
            "Service address"
        )
    fail_if(findings, source=METALLB_OPERATOR)
    if unset:
        manual(
            f"{' and '.join(unset)} not set, so the management cluster's MetalLB pools were compared with this "
            "cluster's CIDRs only: check that no pool overlaps the management cluster's pod and Service CIDRs "
            f"(`kubectl get ipaddresspools -A -o yaml`; source: {METALLB_OPERATOR}), or set the fields"
        )
