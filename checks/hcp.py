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
(MetalLB with an address pool, the pools clear of the pod and Service CIDRs).

ACP-HCP-007 and -008 read what the management cluster says of itself (the ``tenants`` source,
acpcheck/sources/hcp_tenants.py): that ACP manages it, and its own pod and Service CIDRs
against this hosted cluster's. ACP-HCP-020..028 are **post-create** rules (tag
``hcp-postcreate``): every Kamaji TenantControlPlane the management cluster hosts — its
Kubernetes version, Ready, endpoint and certificate, kubeconfig Secret, DataStore reference,
replicas, Konnectivity server and, through the tenant's own API, the Konnectivity agent.
The profiles: ``hcp-precreate`` (plan, management cluster, DataStore, SSH hosts),
``hcp-postcreate`` (the tenant control planes) and ``hcp`` (both). The DataStore objects
and their etcd are ACP-HCP-010..019 (checks/hcp_datastore.py), the SSH hosts ACP-HCP-030..039.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from netaddr import AddrFormatError, IPNetwork, IPRange
from pydantic import Field

from acpcheck import Scope, Severity, When, check, fail, fail_if, manual, skip, warn
from acpcheck.addressing import Labelled, find_overlaps, parse_cidr, parse_ip
from acpcheck.checks.support import (
    HCP_CONCEPTS,
    HOSTED_CONTROL_PLANE,
    MANAGEMENT_CLUSTER,
    ManagementClusterLive,
    planned_network,
)
from acpcheck.constants import ACP_DOCS
from acpcheck.matrix import kubernetes_minor, matrix, release
from acpcheck.matrix.hcp_plugins import HCP_PLUGINS_FILE, hcp_plugins
from acpcheck.model.plan import ClusterPlan
from acpcheck.sources.base import TargetUnavailable
from acpcheck.sources.cluster import CRDS, METALLB_POOLS, ClusterView
from acpcheck.sources.hcp_tenants import (
    ACP_NAMESPACE,
    ADMIN_KUBECONFIG_KEY,
    DATASTORES,
    TENANT_CONTROL_PLANES,
    Cidrs,
    ManagementEvidence,
    TenantPlane,
    TenantsEvidence,
)

#: The only network plugin hosted control planes support ("Network Plugin: Currently
#: supports Calico"; the SSHCluster's network plugin selection is Calico).
HCP_NETWORK_PLUGIN = "calico"
#: Kamaji's status of a tenant control plane scaled to zero on purpose.
SLEEPING = "Sleeping"
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


MANAGEMENT = MANAGEMENT_CLUSTER
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
def check_management_cluster_pools_clear_of_cidrs(
    plan: ClusterPlan, cluster: ClusterView, management: ManagementEvidence
) -> None:
    """ACP's MetalLB page says the address pools must not overlap the Cluster CIDR or the
    Service CIDR: an address handed to a LoadBalancer Service that is also a pod's or a
    ClusterIP is routed to the wrong place. A hosted cluster's pods and Services are reached
    from the management cluster too (its control plane runs there), so a pool must also stay
    out of this hosted cluster's CIDRs (spec.network clusterCIDR and serviceCIDR).

    The management cluster's CIDRs come from the plan (spec.managementCluster podCIDR and
    serviceCIDR, as ACP-NET-005 reads them); where the plan leaves one out, from the
    management cluster itself (the ``hcp_management`` source, as ACP-HCP-008 reads them:
    kubeadm-config, kube-proxy, the Nodes' pod blocks). Any overlap FAILs; a pool address that
    is neither a CIDR nor a range FAILs too (MetalLB would refuse it). A management cluster
    CIDR known from neither (or only as per-node blocks) and no overlap found leaves the
    comparison incomplete: MANUAL, naming the fields to set. Without MetalLB or a pool there is
    nothing to compare (ACP-HCP-005 says so).
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
    cidrs, where, planned_unset = _planned_cidrs(plan)
    unset = []
    for path in planned_unset:  # the management cluster's own, read from it
        kind = "pod" if path.endswith("podCIDR") else "service"
        ranges, shown, bad = _live_ranges(management.cidrs if management.mode == "live" else [], kind)
        findings += bad
        cidrs += ranges
        for labelled in ranges:
            where[labelled.label] = f"read from {shown.where}" if shown else ""
        if shown is None or shown.partial:
            unset.append(path)
    for pool_range, cidr in find_overlaps(pools, cidrs):
        findings.append(
            f"{pool_range} overlaps {cidr} ({where[cidr.label]}): a LoadBalancer address must not be a pod or "
            "Service address"
        )
    fail_if(findings, source=METALLB_OPERATOR)
    if unset:
        manual(
            f"{' and '.join(unset)} not set, and the management cluster does not show it whole (ACP-HCP-008), so "
            "its MetalLB pools were compared with this cluster's CIDRs only: check that no pool overlaps the "
            "management cluster's pod and Service CIDRs "
            f"(`kubectl get ipaddresspools -A -o yaml`; source: {METALLB_OPERATOR}), or set the fields"
        )


# ---------------------------------------------------------------------------
# The management cluster, read by the ``tenants`` source (acpcheck/sources/hcp_tenants.py):
# what it says of itself (ACP-HCP-007, -008; pre-create) and the tenant control planes it hosts
# (ACP-HCP-020 and up; post-create, tagged ``hcp-postcreate``).

#: ACP's architecture page: the global cluster and the workload clusters it manages, kept apart.
ARCHITECTURE = f"{ACP_DOCS}/4.3/overview/architecture.html"
#: Kamaji's published API, whose field names the tenant rules read (see acpcheck/sources/hcp_tenants.py).
KAMAJI_API = "https://github.com/clastix/kamaji/blob/master/api/v1alpha1/tenantcontrolplane_status.go"
KAMAJI_DATASTORE_API = "https://github.com/clastix/kamaji/blob/master/api/v1alpha1/datastore_types.go"
#: The tag of the rules about tenant control planes, which exist only once a hosted cluster is created
#: (the hcp-postcreate profile selects them; hcp-precreate leaves them out).
POSTCREATE = "hcp-postcreate"
POSTCREATE_TAGS = frozenset({"live", POSTCREATE})
#: Kamaji's default for spec.controlPlane.deployment.replicas (its CRD's ``default: 2``).
KAMAJI_DEFAULT_REPLICAS = 2
#: Profile parameter: the plan's hosted cluster is expected to exist (hcp-postcreate sets it).
TENANT_EXPECTED = "hcpTenantExpected"


E = TypeVar("E", ManagementEvidence, TenantsEvidence)


def _live(evidence: E) -> E:
    if evidence.mode != "live":
        skip(f"not applicable: the management cluster was not read ({evidence.reason})")
    return evidence


def _management_target(plan: ClusterPlan) -> str:
    return f"cluster:{plan.metadata.name}"


def _planes(plan: ClusterPlan, tenants: TenantsEvidence) -> list[TenantPlane]:
    """The tenant control planes of the management cluster; SKIP when there is none (before any hosted
    cluster is created), ERROR when they could not be read."""
    tenants = _live(tenants)
    if TENANT_CONTROL_PLANES.key in tenants.errors:
        raise TargetUnavailable(_management_target(plan), "forbidden", tenants.errors[TENANT_CONTROL_PLANES.key])
    if not tenants.kamaji_served:
        skip(
            f"not applicable: the management cluster ({tenants.server}) serves no "
            f"{TENANT_CONTROL_PLANES.qualified} (ACP-HCP-004 reports the missing Hosted Control Plane plugin)"
        )
    if not tenants.planes:
        skip(
            f"not applicable: the management cluster ({tenants.server}) hosts no TenantControlPlane yet (a "
            "post-create rule)"
        )
    return tenants.planes


def _name(plane: TenantPlane) -> str:
    return f"TenantControlPlane {plane.namespace}/{plane.name}" + (
        f" (cluster {plane.cluster})" if plane.cluster else ""
    )


@check(
    id="ACP-HCP-007",
    title="the management cluster is a workload cluster of ACP",
    severity=Severity.HIGH,
    scope=Scope.CLUSTER,
    applies=MANAGEMENT,
    tags=LIVE_TAGS,
    refs=[HCP_CONCEPTS, ARCHITECTURE],
    remediation=(
        "Use a workload cluster that ACP manages (created or imported through the platform) as the management "
        "cluster, and give its kubeconfig in spec.kubeconfig."
    ),
)
def check_management_cluster_is_acp_workload(plan: ClusterPlan, management: ManagementEvidence) -> None:
    """The concepts page says a management cluster is a "workload cluster hosted in Alauda
    Container Platform". The docs give no marker that a cluster shows of itself to say ACP
    manages it; what they do say is that ACP's components live in the ``cpaas-system``
    namespace of the clusters it manages (the upgrade, registry and DataStore examples all
    name it). So the marker here is **ours**: a cluster without a ``cpaas-system`` namespace
    is not managed by ACP (FAIL). The architecture page separates the global cluster (the
    platform's own control plane, kept apart from workloads) from the workload clusters; a
    cluster that serves ``clusters.platform.tkestack.io`` (the global cluster's registry of the
    clusters it manages) is the global cluster, not a workload cluster: WARN, as the docs
    say a management cluster is a workload cluster but do not forbid the other.
    To confirm by hand: ``kubectl get clusters.platform.tkestack.io`` on the global cluster
    lists the management cluster.
    """
    management = _live(management)
    if management.acp_namespace is None:
        raise TargetUnavailable(_management_target(plan), "forbidden", "; ".join(management.errors.values()))
    if not management.acp_namespace:
        fail(
            f"The management cluster ({management.server}) has no namespace {ACP_NAMESPACE}: ACP does not manage it, "
            "and a management cluster is a workload cluster hosted in ACP (source: "
            f"{HCP_CONCEPTS})",
            source=HCP_CONCEPTS,
        )
    if management.global_registry:
        warn(
            f"The management cluster ({management.server}) serves clusters.platform.tkestack.io, the global cluster's "
            "registry of the clusters it manages: it is the global cluster, not a workload cluster as the Hosted "
            f"Control Plane docs describe (sources: {HCP_CONCEPTS}, {ARCHITECTURE})",
            source=HCP_CONCEPTS,
        )


def _live_ranges(cidrs: list[Cidrs], kind: str) -> tuple[list[Labelled], Cidrs | None, list[str]]:
    """The management cluster's ``kind`` ("pod"/"service") ranges from the first place that gives them."""
    for found in cidrs:
        texts = found.pod if kind == "pod" else found.service
        if texts:
            ranges, bad = [], []
            for text in texts:
                try:
                    ranges.append(Labelled(f"the management cluster's {kind} CIDR", parse_cidr(text)))
                except ValueError:
                    bad.append(f"{text!r} ({found.where}) is not a CIDR")
            return ranges, found, bad
    return [], None, []


@check(
    id="ACP-HCP-008",
    title="the hosted cluster's pod and Service CIDRs stay out of the management cluster's, as the cluster says",
    severity=Severity.HIGH,
    scope=Scope.CLUSTER,
    applies=MANAGEMENT_AND_TENANT_NETWORK,
    tags=LIVE_TAGS,
    refs=[HCP_CONCEPTS],
    remediation=(
        "Choose pod and Service CIDRs for the hosted cluster (spec.network clusterCIDR and serviceCIDR) outside the "
        "management cluster's own, and write the management cluster's in spec.managementCluster."
    ),
)
def check_hosted_cidrs_clear_of_live_management(plan: ClusterPlan, management: ManagementEvidence) -> None:
    """The concepts page: a hosted cluster's pod CIDR "must not overlap with management
    cluster's pod CIDR", its Service CIDR not with the management cluster's Service CIDR.
    ACP-NET-005 compares the plan's spec.managementCluster; this rule reads the management
    cluster's CIDRs **from the management cluster**, so the plan need not give them, and a
    plan that gives other values than the cluster has is caught.

    Where they are read (acpcheck/sources/hcp_tenants.py), first found wins: the
    ``kubeadm-config`` ConfigMap in ``kube-system`` (ClusterConfiguration
    ``networking.podSubnet``/``serviceSubnet``, what the cluster was created with), else
    the ``kube-proxy`` ConfigMap's ``clusterCIDR`` (pods only), else the Nodes'
    ``spec.podCIDRs`` (per-node blocks of the pod CIDR: an overlap found with them is real,
    but none found does not prove the whole pod CIDR clear: MANUAL). An overlap FAILs (the
    overlap logic of acpcheck/addressing.py, as ACP-NET-005). A CIDR the cluster does not
    show, or a plan whose spec.managementCluster differs from what the cluster says, is
    said (MANUAL, WARN) with the command to look.
    """
    from acpcheck.checks.network import clash, pod_cidrs, service_cidrs

    evidence = _live(management)
    cidrs = evidence.cidrs
    planned_cluster = plan.spec.management_cluster
    findings: list[str] = []
    unknown: list[str] = []
    differs: list[str] = []
    for kind, ours, planned in (
        ("pod", pod_cidrs(plan), planned_cluster.pod_cidr),
        ("service", service_cidrs(plan), planned_cluster.service_cidr),
    ):
        ranges, found, bad = _live_ranges(cidrs, kind)
        findings += bad
        if found is None:
            unknown.append(kind)
            continue
        for hosted, theirs in find_overlaps(ours, ranges):
            findings.append(
                f"{clash(hosted, theirs)} (read from {found.where}): a hosted cluster's {kind} CIDR must not overlap "
                "the management cluster's"
            )
        if found.partial:
            unknown.append(f"{kind} (only per-node blocks are known)")
        elif planned and sorted(map(str, planned)) != sorted(str(r.network) for r in ranges):
            differs.append(
                f"spec.managementCluster.{kind}CIDR is {', '.join(map(str, planned))} but the management cluster's is "
                f"{', '.join(str(r.network) for r in ranges)} ({found.where})"
            )
    fail_if(findings, source=HCP_CONCEPTS)
    if unknown:
        manual(
            f"The management cluster ({evidence.server}) does not show its {' and '.join(unknown)} CIDR where acpcheck "
            "looks: compare it with this cluster's spec.network by hand (`kubectl -n kube-system get configmap "
            "kubeadm-config -o yaml`, `kubectl get nodes -o jsonpath='{.items[*].spec.podCIDRs}'`, the API server's "
            f"--service-cluster-ip-range; source: {HCP_CONCEPTS})"
        )
    if differs:
        warn(
            "; ".join(differs) + ": ACP-NET-005 judged the plan's values, so correct them",
            source=HCP_CONCEPTS,
        )


def _tenant_rule(
    id: str, title: str, severity: Severity, refs: list[str], remediation: str, params: dict[str, Any] | None = None
) -> Any:
    """The metadata every tenant control plane rule shares: a post-create cluster rule on the management cluster."""
    return check(
        id=id,
        title=title,
        severity=severity,
        scope=Scope.CLUSTER,
        applies=MANAGEMENT,
        tags=POSTCREATE_TAGS,
        refs=refs,
        remediation=remediation,
        params=params,
    )


def _kubernetes_refs() -> list[str]:
    return list(dict.fromkeys(entry.source for entry in matrix().versions.values()))


@_tenant_rule(
    "ACP-HCP-020",
    "every tenant control plane runs a Kubernetes version the management cluster's ACP supports",
    Severity.HIGH,
    [HCP_CONCEPTS, *_kubernetes_refs()],
    "Upgrade (or recreate) the tenant control plane to a Kubernetes minor in the compatible list of the management "
    "cluster's ACP version (the KamajiControlPlane's spec.version).",
)
def check_tenant_kubernetes_supported(plan: ClusterPlan, tenants: TenantsEvidence) -> None:
    """A hosted cluster is a workload cluster of ACP: its Kubernetes minor must be one the
    management cluster's ACP supports for workload clusters (the "compatible" column of the
    Kubernetes support matrix, acpcheck/matrix/kubernetes.yaml). The management cluster's
    ACP version is the plan's ``spec.acp.version`` (the cluster cannot be asked for it: an
    ACP workload cluster publishes no ACP version of its own that the docs name). Both the
    declared version (``spec.kubernetes.version``) and the installed one (``status.
    kubernetesResources.version.version``) are judged: during an upgrade they differ.
    """
    target = release(plan.spec.acp.version)
    findings = []
    for plane in _planes(plan, tenants):
        for what, version in (("declares", plane.version), ("runs", plane.installed_version)):
            if not version:
                continue
            try:
                minor = kubernetes_minor(version)
            except ValueError:
                findings.append(f"{_name(plane)} {what} Kubernetes {version!r}, which is not a Kubernetes version")
                continue
            if minor not in target.compatible:
                findings.append(
                    f"{_name(plane)} {what} Kubernetes {version}: ACP {plan.spec.acp.version} supports workload "
                    f"clusters on {', '.join(target.compatible)} only (source: {target.source})"
                )
    fail_if(findings, allowed=target.compatible, source=target.source)


@_tenant_rule(
    "ACP-HCP-021",
    "every tenant control plane is Ready",
    Severity.HIGH,
    [HCP_CONCEPTS, KAMAJI_API],
    "Look at the TenantControlPlane's status and its Deployment's pods in the management cluster "
    "(`kubectl -n <namespace> describe tenantcontrolplane <name>`) and fix what keeps it from Ready.",
)
def check_tenant_ready(plan: ClusterPlan, tenants: TenantsEvidence) -> None:
    """The concepts page lists "Ready status" among what a TenantControlPlane reports. Kamaji
    publishes it as ``status.kubernetesResources.version.status`` (the CRD's Status column):
    ``Ready``, or Provisioning, Upgrading, Migrating, CertificateAuthorityRotating,
    WriteLimited, Sleeping, NotReady, Unknown. Anything but Ready FAILs, naming it: the
    hosted cluster's API is not (fully) serving. Sleeping (a control plane scaled to zero on
    purpose) only WARNs: it is the owner's choice, not a fault.
    """
    planes = [plane for plane in _planes(plan, tenants) if plane.status != "Ready"]
    fail_if(
        [
            f"{_name(plane)} is {plane.status or 'without a status'} (status.kubernetesResources.version.status), "
            "not Ready"
            for plane in planes
            if plane.status != SLEEPING
        ],
        source=KAMAJI_API,
    )
    if planes:
        warn(
            "; ".join(f"{_name(plane)} is Sleeping (scaled to zero): its API does not serve" for plane in planes),
            source=KAMAJI_API,
        )


@_tenant_rule(
    "ACP-HCP-022",
    "every tenant control plane's endpoint answers TLS with a certificate that names it",
    Severity.HIGH,
    [HCP_CONCEPTS, KAMAJI_API],
    "Check the tenant control plane's LoadBalancer Service has an address (MetalLB pool) and that the API server "
    "certificate's SANs include it (spec.networkProfile.certSANs, spec.networkProfile.address); Kamaji renews the "
    "certificate when they change.",
)
def check_tenant_endpoint(plan: ClusterPlan, tenants: TenantsEvidence) -> None:
    """The concepts page: a hosted control plane's API server is "exposed via LoadBalancer
    service", and the TenantControlPlane reports its "control plane endpoint (LoadBalancer
    IP)" (``status.controlPlaneEndpoint``, ``host:port``). Each endpoint must be present,
    its Service must be of type LoadBalancer (``spec.controlPlane.service.serviceType``) and
    have an address (``status.kubernetesResources.service.
    loadBalancer.ingress``, when the service type is LoadBalancer), and a TLS connection to
    it must get a certificate whose SANs name the endpoint's host (the SAN match of
    ACP-LB-006): else every client that verifies the server (kubelets, kubectl) is refused.
    The connection is made from the runner, directly; whether ``/version`` answers is not
    judged (an anonymous request may rightly be refused).
    """
    from acpcheck.checks.lb import covers
    from acpcheck.sources.hcp_tenants import endpoint_host_port

    findings = []
    for plane in _planes(plan, tenants):
        if not plane.endpoint:
            findings.append(f"{_name(plane)} has no control-plane endpoint (status.controlPlaneEndpoint is empty)")
            continue
        if plane.service_type and plane.service_type != "LoadBalancer":
            findings.append(
                f"{_name(plane)}: its API server is exposed as a {plane.service_type} Service "
                "(spec.controlPlane.service.serviceType), not through a LoadBalancer Service"
            )
        elif plane.service_type == "LoadBalancer" and not plane.load_balancer:
            findings.append(f"{_name(plane)}: its LoadBalancer Service has no address (no MetalLB address given)")
        probe, where = plane.probe, endpoint_host_port(plane.endpoint)
        if probe is None or where is None:
            findings.append(f"{_name(plane)}: its endpoint {plane.endpoint!r} is not host:port")
        elif probe.error:
            findings.append(f"{_name(plane)}: its endpoint {plane.endpoint} does not answer TLS: {probe.error}")
        elif not covers(probe.sans, where[0]):
            findings.append(
                f"{_name(plane)}: the certificate served at {plane.endpoint} ({probe.subject}) does not name "
                f"{where[0]} among its SANs ({', '.join(probe.sans) or 'none'})"
            )
    fail_if(findings, source=HCP_CONCEPTS)


@_tenant_rule(
    "ACP-HCP-023",
    "every tenant control plane's admin kubeconfig Secret exists",
    Severity.HIGH,
    [HCP_CONCEPTS, KAMAJI_API],
    "Let Kamaji recreate the admin kubeconfig Secret (it reconciles the TenantControlPlane); until then nobody can "
    "reach the hosted cluster with it.",
)
def check_tenant_kubeconfig_secret(plan: ClusterPlan, tenants: TenantsEvidence) -> None:
    """The concepts page lists the "kubeconfig secret reference" in a TenantControlPlane's
    status (``status.kubeconfig.admin.secretName``); the Secret it names, in the tenant
    control plane's namespace, must exist and hold the kubeconfig under ``admin.conf``
    (kubeadm's name, which Kamaji keeps). Only the Secret's key names are looked at here;
    its contents never reach any output.
    """
    findings, unreadable = [], []
    for plane in _planes(plan, tenants):
        if not plane.kubeconfig_secret:
            findings.append(f"{_name(plane)} names no admin kubeconfig Secret (status.kubeconfig.admin.secretName)")
        elif plane.secret_error:
            unreadable.append(f"Secret {plane.namespace}/{plane.kubeconfig_secret}: {plane.secret_error}")
        elif plane.secret_found is False:
            findings.append(f"{_name(plane)}: its admin kubeconfig Secret {plane.kubeconfig_secret} does not exist")
        elif ADMIN_KUBECONFIG_KEY not in plane.secret_keys:
            findings.append(
                f"{_name(plane)}: its admin kubeconfig Secret {plane.kubeconfig_secret} has no {ADMIN_KUBECONFIG_KEY} "
                f"key (keys: {', '.join(plane.secret_keys) or 'none'})"
            )
    fail_if(findings, source=KAMAJI_API)
    if unreadable:
        raise TargetUnavailable(_management_target(plan), "forbidden", "; ".join(unreadable))


@_tenant_rule(
    "ACP-HCP-024",
    "every tenant control plane's DataStore reference resolves to a ready DataStore",
    Severity.HIGH,
    [HCP_CONCEPTS, KAMAJI_DATASTORE_API],
    "Create the DataStore the tenant control plane references (or point it to an existing one) and make the "
    "DataStore ready; ACP-HCP-010 and up check the DataStore itself.",
)
def check_tenant_datastore_resolves(plan: ClusterPlan, tenants: TenantsEvidence) -> None:
    """A hosted control plane keeps its data in the external etcd of the DataStore it
    references ("Associated DataStore" in the TenantControlPlane's status, the concepts
    page). The DataStore named by ``status.storage.dataStoreName`` (the one in use) and by
    ``spec.dataStore`` (the one asked for; they differ during a migration) must exist, and
    must not report itself not ready (``status.ready`` false, or a Ready condition that is
    not True; a DataStore that publishes neither, as Kamaji releases before ``status.ready``,
    is not judged). Whether its etcd really answers is the DataStore rules' business
    (ACP-HCP-010 and up), not this one's.
    """
    planes = _planes(plan, tenants)
    if DATASTORES.key in tenants.errors:
        raise TargetUnavailable(_management_target(plan), "forbidden", tenants.errors[DATASTORES.key])
    findings = []
    for plane in planes:
        names = list(dict.fromkeys(name for name in (plane.datastore_status, plane.datastore_spec) if name))
        if not names:
            findings.append(f"{_name(plane)} references no DataStore (spec.dataStore, status.storage.dataStoreName)")
        for name in names:
            datastore = tenants.datastores.get(name)
            if datastore is None:
                findings.append(f"{_name(plane)} references DataStore {name}, which does not exist")
            elif datastore.ready is False:
                findings.append(
                    f"{_name(plane)} references DataStore {name}, which is not ready"
                    + (f" ({datastore.reason})" if datastore.reason else "")
                )
    fail_if(findings, source=HCP_CONCEPTS)


@_tenant_rule(
    "ACP-HCP-025",
    "every tenant control plane runs the replicas it declares",
    Severity.MEDIUM,
    [HCP_CONCEPTS, KAMAJI_API],
    "Find why control-plane pods are missing or not ready in the management cluster (`kubectl -n <namespace> get "
    "deployment,pods -l kamaji.clastix.io/name=<name>`): capacity, scheduling constraints, image pulls.",
)
def check_tenant_replicas(plan: ClusterPlan, tenants: TenantsEvidence) -> None:
    """The concepts page: a TenantControlPlane manages its "control plane deployment
    replicas", declared in ``spec.controlPlane.deployment.replicas`` (Kamaji's default 2 when
    unset). The control plane's Deployment status, which Kamaji copies to ``status.
    kubernetesResources.deployment``, must show that many ready replicas: fewer means less
    (or no) redundancy for the hosted cluster's API server. Fewer ready than declared FAILs
    at medium (the API may still answer through the others).
    """
    findings = []
    for plane in _planes(plan, tenants):
        declared = plane.replicas_declared if plane.replicas_declared is not None else KAMAJI_DEFAULT_REPLICAS
        ready = plane.ready_replicas or 0
        if ready < declared:
            findings.append(
                f"{_name(plane)} declares {declared} control-plane replicas, {ready} ready "
                f"(status.kubernetesResources.deployment: replicas {plane.replicas}, ready {plane.ready_replicas}, "
                f"available {plane.available_replicas})"
            )
    fail_if(findings, source=KAMAJI_API)


@_tenant_rule(
    "ACP-HCP-026",
    "every tenant control plane runs the Konnectivity server",
    Severity.HIGH,
    [HCP_CONCEPTS, KAMAJI_API],
    "Enable the Konnectivity addon of the KamajiControlPlane (spec.addons.konnectivity), then check the tenant "
    "control plane's pods are ready.",
)
def check_tenant_konnectivity_server(plan: ClusterPlan, tenants: TenantsEvidence) -> None:
    """The concepts page: each hosted control plane consists of the API server, controller
    manager, scheduler and the **Konnectivity server**, which the API server uses to reach
    the kubelets of the workers (exec, logs, port-forward). In Kamaji the server is the
    Konnectivity addon (``spec.addons.konnectivity``), run as a container of the control
    plane's pods; ``status.addons.konnectivity.enabled`` says Kamaji has set it up. A control
    plane without the addon, with the addon not enabled, or with no ready control-plane pod
    to run it in, FAILs.
    """
    findings = []
    for plane in _planes(plan, tenants):
        if not plane.konnectivity_declared:
            findings.append(f"{_name(plane)} has no Konnectivity addon (spec.addons.konnectivity is not set)")
        elif plane.konnectivity_enabled is not True:
            findings.append(
                f"{_name(plane)}: Kamaji has not enabled its Konnectivity server (status.addons.konnectivity.enabled "
                f"is {plane.konnectivity_enabled})"
            )
        elif not plane.ready_replicas and plane.status != SLEEPING:  # asleep: ACP-HCP-021 says so
            findings.append(f"{_name(plane)}: no control-plane pod is ready, so no Konnectivity server runs")
    fail_if(findings, source=HCP_CONCEPTS)


@_tenant_rule(
    "ACP-HCP-027",
    "every tenant cluster's Konnectivity agent DaemonSet is ready on its workers, seen through the tenant's own API",
    Severity.HIGH,
    [HCP_CONCEPTS, KAMAJI_API],
    "In the hosted cluster, look at the konnectivity-agent DaemonSet in kube-system (`kubectl --kubeconfig <tenant> "
    "-n kube-system describe daemonset konnectivity-agent`): pods not scheduled, not ready, or unable to reach the "
    "control-plane endpoint.",
)
def check_tenant_konnectivity_agent(plan: ClusterPlan, tenants: TenantsEvidence) -> None:
    """The concepts page: the Konnectivity agent "runs as DaemonSet on worker nodes" and
    keeps the tunnel the control plane reaches the workers through. It is read through the
    **tenant's own API** (the admin kubeconfig of the tenant control plane's Secret, held in
    memory only): the DaemonSet Kamaji names in ``status.addons.konnectivity.agent`` (else
    ``kube-system/konnectivity-agent``) must exist, be scheduled on at least one node, and
    have every scheduled pod ready. A tenant whose API could not be reached is not judged
    here (ERROR, or listed with the failures); an agent in Deployment mode is left to a
    person.
    """
    findings, unchecked = [], []
    for plane in _planes(plan, tenants):
        tenant = plane.tenant
        if tenant is None:
            unchecked.append(f"{_name(plane)}: no admin kubeconfig to reach the tenant's API (ACP-HCP-023)")
        elif tenant.agent_mode != "DaemonSet":
            unchecked.append(
                f"{_name(plane)}: the agent runs as a {tenant.agent_mode}, not a DaemonSet; check it by hand "
                f"(`kubectl -n {tenant.agent.split('/')[0]} get deployment {tenant.agent.split('/')[-1]}`)"
            )
        elif tenant.error:
            unchecked.append(f"{_name(plane)}: the tenant's API could not be read: {tenant.error}")
        elif not tenant.agent_found:
            findings.append(f"{_name(plane)}: the tenant ({tenant.server}) has no DaemonSet {tenant.agent}")
        elif not tenant.desired:
            findings.append(
                f"{_name(plane)}: DaemonSet {tenant.agent} of the tenant ({tenant.server}) is scheduled on no node "
                "(the hosted cluster has no worker the agent runs on)"
            )
        elif (tenant.ready or 0) < tenant.desired:
            findings.append(
                f"{_name(plane)}: DaemonSet {tenant.agent} of the tenant ({tenant.server}) has {tenant.ready or 0} of "
                f"{tenant.desired} pods ready"
            )
    if findings:
        fail_if([*findings, *(f"not checked: {line}" for line in unchecked)], source=HCP_CONCEPTS)
    if unchecked:
        raise TargetUnavailable(_management_target(plan), "unchecked", "; ".join(unchecked))


@_tenant_rule(
    "ACP-HCP-028",
    "the plan's hosted cluster has its tenant control plane in the management cluster",
    Severity.HIGH,
    [HCP_CONCEPTS],
    "Create the hosted cluster (its Cluster, KamajiControlPlane and SSHCluster) in the management cluster, or "
    "check that metadata.name is the Cluster API Cluster's name.",
    params={TENANT_EXPECTED: Annotated[bool, Field(strict=True)]},
)
def check_planned_tenant_exists(plan: ClusterPlan, tenants: TenantsEvidence, params: dict[str, Any]) -> None:
    """After a hosted cluster is created, the management cluster holds its Cluster API
    ``Cluster`` (named as the plan's ``metadata.name``), whose control-plane reference is a
    KamajiControlPlane, and the TenantControlPlane of the same name that Kamaji's CAPI
    provider creates from it (the concepts page: the TenantControlPlane "is automatically
    created when you create a KamajiControlPlane"). Whether the cluster should exist yet is
    the profile's to say: ``params.hcpTenantExpected`` (true in the hcp-postcreate profile);
    without it the rule is SKIPped, so a pre-create run is not failed for a cluster it is
    about to create.
    """
    if not params.get(TENANT_EXPECTED, False):
        skip(f"not applicable: the hosted cluster is not expected to exist yet (params.{TENANT_EXPECTED} is not set)")
    tenants = _live(tenants)
    if TENANT_CONTROL_PLANES.key in tenants.errors:
        raise TargetUnavailable(_management_target(plan), "forbidden", tenants.errors[TENANT_CONTROL_PLANES.key])
    if tenants.plane_of(plan.metadata.name) is None:
        fail(
            f"The management cluster ({tenants.server}) holds no TenantControlPlane for cluster {plan.metadata.name} "
            f"(a Cluster API Cluster of that name whose control plane is a KamajiControlPlane); it has "
            f"{', '.join(f'{p.namespace}/{p.name}' for p in tenants.planes) or 'none'} (source: {HCP_CONCEPTS})",
            source=HCP_CONCEPTS,
        )
