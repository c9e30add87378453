"""Hosted control planes, read live: the ``tenants`` source (ACP-HCP-007, -008, -020 and up).

For a hosted-control-plane plan the run's kubeconfig is the **management cluster's**
(checks/hcp.py says why). This source reads, through it:

- **the management cluster itself** (source ``hcp_management``, check parameter ``management``;
  pre-create): whether ACP manages it (the
  ``cpaas-system`` namespace; whether it serves the global cluster's registry of clusters,
  ``clusters.platform.tkestack.io``), and its own pod and Service CIDRs, from where the
  cluster keeps them (``Cidrs``): the ``kubeadm-config`` ConfigMap's
  ClusterConfiguration (``networking.podSubnet``/``serviceSubnet``: the ranges the cluster was
  created with), else the ``kube-proxy`` ConfigMap's ``clusterCIDR`` (pods only), else the
  Nodes' ``spec.podCIDRs`` (the per-node blocks cut from the pod CIDR: a lower bound);
- **the tenant control planes** it hosts (source and parameter ``tenants``; post-create): every
  Kamaji ``TenantControlPlane`` (``kamaji.clastix.io/v1alpha1``), the Cluster API ``Cluster``
  and ``KamajiControlPlane`` that lead to it, and the ``DataStore`` objects they reference. The field names are Kamaji's
  published API (``api/v1alpha1/tenantcontrolplane_types.go``, ``tenantcontrolplane_status.go``,
  ``datastore_types.go`` at github.com/clastix/kamaji; the CRD's printer columns name the same
  status fields: Status ``.status.kubernetesResources.version.status``, Control-Plane endpoint
  ``.status.controlPlaneEndpoint``, Kubeconfig ``.status.kubeconfig.admin.secretName``,
  Datastore ``.status.storage.dataStoreName``) and the Kamaji CAPI provider's (a
  KamajiControlPlane's TenantControlPlane has its name and namespace,
  ``controllers/kamajicontrolplane_controller_tcp.go`` at
  github.com/clastix/cluster-api-control-plane-provider-kamaji);

and, per tenant control plane, it **connects**: TLS to its control-plane endpoint (the
certificate it serves, with ``acpcheck.sources.api_tls.tls_probe``), and the tenant's **own
API** through the admin kubeconfig of its kubeconfig Secret (key ``admin.conf``, the name
kubeadm gives it and Kamaji keeps), read to find the Konnectivity agent (a DaemonSet,
``konnectivity-agent`` in ``kube-system`` unless the TenantControlPlane's status names
another).

The tenant's kubeconfig is a credential. It is held in memory only: parsed from the Secret's
bytes, handed to ``load_kubeconfig`` through an anonymous in-memory file (``memfd_file``, the
way the client already holds client keys), never written to disk, never kept in the evidence
(which says only which keys the Secret has) and never printed. A kubeconfig in a Secret is
data from the cluster, not the user's: one that names local files, an exec plugin or a
proxy is refused (it would make acpcheck read this machine's files or run a program).

Two sources, so that a pre-create run (ACP-HCP-007/008 only) never connects to a tenant with its
admin credentials. Saved as ``hcp_management/hcp_management.json`` and ``tenants/tenants.json``;
``--facts`` replays them.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import urllib.parse
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field

from acpcheck.sources.api_tls import TlsProbe
from acpcheck.sources.base import EvidenceDocument, GatherContext, JsonEvidenceSource
from acpcheck.transport.kube import (
    ApiFailure,
    KubeClient,
    KubeconfigError,
    Read,
    kubeconfig_of,
    load_kubeconfig,
    memfd_file,
    scrub,
)

if TYPE_CHECKING:
    from acpcheck.model.plan import ClusterPlan

#: Kamaji's API (kamaji.clastix.io/v1alpha1) and the Cluster API kinds around it.
TENANT_CONTROL_PLANES = Read("tenant-control-planes", "kamaji.clastix.io", "v1alpha1", "tenantcontrolplanes")
DATASTORES = Read("datastores", "kamaji.clastix.io", "v1alpha1", "datastores")
CAPI_CLUSTERS = Read("clusters", "cluster.x-k8s.io", "v1beta1", "clusters")
#: ACP's system namespace on the clusters it manages (docs: every platform component and the
#: DataStore example of the Hosted Control Plane concepts page live there).
ACP_NAMESPACE = "cpaas-system"
CPAAS_NAMESPACE = Read("cpaas-namespace", "", "v1", "namespaces", name=ACP_NAMESPACE)
#: The global cluster's registry of the clusters it manages (TKEStack's Cluster type).
PLATFORM_REGISTRY = Read("platform-clusters", "platform.tkestack.io", "v1", "clusters", limit=1)
KUBEADM_CONFIG = Read("kubeadm-config", "", "v1", "configmaps", name="kubeadm-config", namespace="kube-system")
KUBE_PROXY_CONFIG = Read("kube-proxy", "", "v1", "configmaps", name="kube-proxy", namespace="kube-system")
NODES = Read("nodes", "", "v1", "nodes")
#: The key of Kamaji's admin kubeconfig Secret that holds the kubeconfig (kubeadm's AdminKubeConfigFileName).
ADMIN_KUBECONFIG_KEY = "admin.conf"
#: Where the Konnectivity agent runs in the tenant when the TenantControlPlane's status names none
#: (Kamaji's internal/resources/konnectivity/constants.go: AgentName; namespace kube-system).
AGENT_NAME, AGENT_NAMESPACE = "konnectivity-agent", "kube-system"
#: Seconds for the TLS connection to a control-plane endpoint (our choice, as the api_tls source's).
ENDPOINT_TIMEOUT = 5.0
#: Tenants reached at once (endpoint TLS, tenant API): our choice, so that a management cluster with
#: many unreachable tenants costs their timeouts a few at a time, not one after the other.
TENANT_WORKERS = 8


class Cidrs(BaseModel):
    """The management cluster's pod and Service CIDRs as one place in the cluster gives them."""

    model_config = ConfigDict(extra="forbid")

    where: str  # e.g. "ConfigMap kube-system/kubeadm-config (ClusterConfiguration networking)"
    pod: list[str] = Field(default_factory=list)
    service: list[str] = Field(default_factory=list)
    partial: bool = False  # True: per-node pod blocks, only part of the pod CIDR


class TenantApi(BaseModel):
    """What the tenant's own API said, through its admin kubeconfig (never kept)."""

    model_config = ConfigDict(extra="forbid")

    server: str = ""  # the kubeconfig's server URL (an address, no credential)
    error: str = ""  # why it could not be read
    agent: str = ""  # namespace/name of the Konnectivity agent looked for
    agent_mode: str = "DaemonSet"
    agent_found: bool | None = None
    desired: int | None = None
    ready: int | None = None
    available: int | None = None
    updated: int | None = None


class TenantPlane(BaseModel):
    """One TenantControlPlane, as the checks need it (no Secret value, ever)."""

    model_config = ConfigDict(extra="forbid")

    namespace: str
    name: str
    cluster: str | None = None  # the Cluster API Cluster that leads to it, when one does
    version: str | None = None  # spec.kubernetes.version
    installed_version: str | None = None  # status.kubernetesResources.version.version
    status: str | None = None  # status.kubernetesResources.version.status (Ready, NotReady, Provisioning, …)
    endpoint: str | None = None  # status.controlPlaneEndpoint ("host:port")
    service_type: str | None = None  # spec.controlPlane.service.serviceType
    load_balancer: list[str] = Field(default_factory=list)  # status.kubernetesResources.service.loadBalancer.ingress
    kubeconfig_secret: str | None = None  # status.kubeconfig.admin.secretName
    secret_found: bool | None = None  # None: not looked up (no name) or could not be read
    secret_keys: list[str] = Field(default_factory=list)  # the Secret's data keys, never their values
    secret_error: str = ""
    datastore_spec: str | None = None  # spec.dataStore
    datastore_status: str | None = None  # status.storage.dataStoreName
    replicas_declared: int | None = None  # spec.controlPlane.deployment.replicas (Kamaji's default: 2)
    replicas: int | None = None  # status.kubernetesResources.deployment.replicas
    ready_replicas: int | None = None
    available_replicas: int | None = None
    updated_replicas: int | None = None
    konnectivity_declared: bool = False  # spec.addons.konnectivity present
    konnectivity_enabled: bool | None = None  # status.addons.konnectivity.enabled
    probe: TlsProbe | None = None  # TLS to the endpoint
    tenant: TenantApi | None = None


class DataStoreState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    driver: str | None = None
    ready: bool | None = None  # status.ready (newer Kamaji) or the Ready condition; None: not published
    reason: str = ""


class ManagementClusterEvidence(EvidenceDocument):
    """Evidence read from a hosted control plane's management cluster through the run's
    kubeconfig (``read_management_cluster``). mode: live | off (no kubeconfig) | error."""

    server: str | None = None  # the management cluster's API server
    checked_at: str = ""  # ISO 8601 UTC, to the second: what expiry is judged against, so a replay agrees


class ManagementEvidence(ManagementClusterEvidence):
    """The ``hcp_management`` evidence: what the management cluster says of itself."""

    schema_: str = Field(default="acpcheck/hcp-management/v1", alias="schema")
    acp_namespace: bool | None = None  # cpaas-system exists; None: could not be read
    global_registry: bool | None = None  # serves clusters.platform.tkestack.io (the global cluster's registry)
    cidrs: list[Cidrs] = Field(default_factory=list)  # every place found, most authoritative first
    #: per Read key: why it failed (forbidden, error), said without secrets
    errors: dict[str, str] = Field(default_factory=dict)


class TenantsEvidence(ManagementClusterEvidence):
    """The ``tenants`` evidence: the tenant control planes the management cluster hosts."""

    schema_: str = Field(default="acpcheck/hcp-tenants/v1", alias="schema")
    #: whether the management cluster serves TenantControlPlanes (None: could not be read)
    kamaji_served: bool | None = None
    planes: list[TenantPlane] = Field(default_factory=list)
    datastores: dict[str, DataStoreState] = Field(default_factory=dict)
    #: per Read key: why it failed (forbidden, error); the checks reading it are ERROR
    errors: dict[str, str] = Field(default_factory=dict)

    def plane_of(self, cluster: str) -> TenantPlane | None:
        """The tenant control plane of the hosted cluster ``cluster`` (its Cluster API Cluster's name)."""
        return next((plane for plane in self.planes if plane.cluster == cluster), None)


# ---------------------------------------------------------------------------
# Reading objects


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _split(text: Any) -> list[str]:
    """``"10.3.0.0/16,fd00::/108"`` -> both; kubeadm and kube-proxy write dual-stack CIDRs comma-separated."""
    return [part.strip() for part in str(text or "").split(",") if part.strip()]


def _str(value: Any) -> str | None:
    """A non-empty string field as it is; anything else (absent, empty, not a string: a damaged object) None."""
    return value[:MESSAGE_MAX] if isinstance(value, str) and value else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


#: Longest string kept of an object's field (a field is a name, a version, an address: not a page of text).
MESSAGE_MAX = 500


def plane_summary(tcp: dict[str, Any]) -> TenantPlane:
    """A TenantControlPlane object as ``TenantPlane`` (Kamaji's field names, see the module docstring).
    A field of the wrong type reads as absent: the rules then say what is missing, never crash."""
    metadata, spec, status = _dict(tcp.get("metadata")), _dict(tcp.get("spec")), _dict(tcp.get("status"))
    deployment = _dict(_get(status, "kubernetesResources", "deployment"))
    ingress = _get(status, "kubernetesResources", "service", "loadBalancer", "ingress")
    enabled = _get(status, "addons", "konnectivity", "enabled")
    return TenantPlane(
        namespace=_str(metadata.get("namespace")) or "",
        name=_str(metadata.get("name")) or "",
        version=_str(_get(spec, "kubernetes", "version")),
        installed_version=_str(_get(status, "kubernetesResources", "version", "version")),
        status=_str(_get(status, "kubernetesResources", "version", "status")),
        endpoint=_str(status.get("controlPlaneEndpoint")),
        service_type=_str(_get(spec, "controlPlane", "service", "serviceType")),
        load_balancer=[
            address
            for entry in (ingress if isinstance(ingress, list) else [])
            if isinstance(entry, dict)
            for address in [_str(entry.get("ip")) or _str(entry.get("hostname"))]
            if address
        ],
        kubeconfig_secret=_str(_get(status, "kubeconfig", "admin", "secretName")),
        datastore_spec=_str(spec.get("dataStore")),
        datastore_status=_str(_get(status, "storage", "dataStoreName")),
        replicas_declared=_int(_get(spec, "controlPlane", "deployment", "replicas")),
        replicas=_int(deployment.get("replicas")),
        ready_replicas=_int(deployment.get("readyReplicas")),
        available_replicas=_int(deployment.get("availableReplicas")),
        updated_replicas=_int(deployment.get("updatedReplicas")),
        konnectivity_declared=isinstance(_get(spec, "addons", "konnectivity"), dict),
        konnectivity_enabled=enabled if isinstance(enabled, bool) else None,
    )


def datastore_summary(datastore: dict[str, Any]) -> DataStoreState:
    """A DataStore's readiness as it publishes it: ``status.ready`` (Kamaji since it has the field), else
    a ``Ready`` condition; neither: not published (older Kamaji keeps only ``status.usedBy``)."""
    status = _dict(datastore.get("status"))
    conditions = status.get("conditions")
    condition = next(
        (
            c
            for c in (conditions if isinstance(conditions, list) else [])
            if isinstance(c, dict) and c.get("type") == "Ready"
        ),
        None,
    )
    ready: bool | None = status.get("ready") if isinstance(status.get("ready"), bool) else None
    reason = ""
    if condition is not None:
        ready = condition.get("status") == "True" if ready is None else ready
        reason = str(condition.get("reason") or condition.get("message") or "")[:200]
    return DataStoreState(
        name=_str(_get(datastore, "metadata", "name")) or "",
        driver=_str(_get(datastore, "spec", "driver")),
        ready=ready,
        reason=reason,
    )


def _cluster_config_cidrs(configmap: dict[str, Any]) -> Cidrs | None:
    text = (configmap.get("data") or {}).get("ClusterConfiguration")
    try:
        networking = (yaml.safe_load(text) or {}).get("networking") or {} if isinstance(text, str) else {}
    except yaml.YAMLError:
        return None
    if not isinstance(networking, dict):
        return None
    pod, service = _split(networking.get("podSubnet")), _split(networking.get("serviceSubnet"))
    if not (pod or service):
        return None
    return Cidrs(
        where="ConfigMap kube-system/kubeadm-config (ClusterConfiguration networking)", pod=pod, service=service
    )


def _kube_proxy_cidrs(configmap: dict[str, Any]) -> Cidrs | None:
    text = (configmap.get("data") or {}).get("config.conf")
    try:
        config = yaml.safe_load(text) if isinstance(text, str) else None
    except yaml.YAMLError:
        return None
    pod = _split(config.get("clusterCIDR")) if isinstance(config, dict) else []
    return Cidrs(where="ConfigMap kube-system/kube-proxy (config.conf clusterCIDR)", pod=pod) if pod else None


def _node_cidrs(nodes: list[dict[str, Any]]) -> Cidrs | None:
    blocks: list[str] = []
    for node in nodes:
        spec = node.get("spec") or {}
        for cidr in spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else []):
            if isinstance(cidr, str) and cidr not in blocks:
                blocks.append(cidr)
    if not blocks:
        return None
    return Cidrs(where="the Nodes' spec.podCIDRs (per-node blocks of the pod CIDR)", pod=blocks, partial=True)


# ---------------------------------------------------------------------------
# The tenant's own API, through the kubeconfig of its Secret (in memory only)

#: Fields of a kubeconfig that make a client read local files, run a program or go through a proxy:
#: a kubeconfig found in a cluster's Secret may not use them.
_REFUSED = {
    "clusters": ("certificate-authority", "proxy-url"),
    "users": ("client-certificate", "client-key", "tokenFile", "exec", "auth-provider"),
}


def tenant_target_refusal(document: Any) -> str | None:
    """Why a kubeconfig read from a Secret may not be used (None: it may)."""
    if not isinstance(document, dict):
        return "it is not a kubeconfig (a YAML mapping)"
    for section, fields in _REFUSED.items():
        for entry in document.get(section) or []:
            inner = entry.get(section.rstrip("s")) if isinstance(entry, dict) else None
            if isinstance(inner, dict):
                used = [name for name in fields if inner.get(name)]
                if used:
                    return (
                        f"its {section} entry uses {', '.join(used)}: a kubeconfig from a Secret must carry its "
                        "certificates and token inline (acpcheck reads no local file, runs no program and uses no "
                        "proxy a cluster object names)"
                    )
            if isinstance(inner, dict) and section == "clusters":
                server = str(inner.get("server") or "")
                if not server.lower().startswith("https://"):
                    return "its cluster's server is not https: the tenant's admin credential would travel in clear"
                if inner.get("insecure-skip-tls-verify"):
                    return "it skips TLS verification: the tenant's admin credential could go to any server"
    return None


def read_tenant(kubeconfig_bytes: bytes, plane: TenantPlane, agent: tuple[str, str], deadline: float) -> TenantApi:
    """The Konnectivity agent through the tenant's own API; the kubeconfig lives in memory only."""
    namespace, name = agent
    result = TenantApi(agent=f"{namespace}/{name}")
    secrets: list[str] = []
    try:
        document = yaml.safe_load(kubeconfig_bytes.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError):
        result.error = f"the {ADMIN_KUBECONFIG_KEY} of Secret {plane.namespace}/{plane.kubeconfig_secret} is not YAML"
        return result
    refusal = tenant_target_refusal(document)
    if refusal:
        result.error = f"the {ADMIN_KUBECONFIG_KEY} of Secret {plane.namespace}/{plane.kubeconfig_secret}: {refusal}"
        return result
    fd, path = memfd_file("acpcheck-tenant-kubeconfig", kubeconfig_bytes)
    try:
        target = load_kubeconfig(path)
        secrets = target.secrets()
        parts = urllib.parse.urlsplit(target.server)
        result.server = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()  # never a userinfo
        daemonset = Read("konnectivity-agent", "apps", "v1", "daemonsets", name=name, namespace=namespace)
        with KubeClient(target, deadline=deadline) as api:
            try:
                found = api.get_object(daemonset)
            except ApiFailure as failure:
                if failure.kind != "absent":
                    raise
                result.agent_found = False
                return result
        status = found.get("status") or {}
        result.agent_found = True
        result.desired = _int(status.get("desiredNumberScheduled"))
        result.ready = _int(status.get("numberReady"))
        result.available = _int(status.get("numberAvailable"))
        result.updated = _int(status.get("updatedNumberScheduled"))
    except KubeconfigError as error:
        # The problems name the in-memory file and a field, never a value; said about the Secret instead.
        fields = "; ".join(f"{problem.field}: {problem.message}" for problem in error.problems)
        result.error = f"the {ADMIN_KUBECONFIG_KEY} of Secret {plane.namespace}/{plane.kubeconfig_secret}: {fields}"
    except ApiFailure as failure:
        result.error = scrub(f"{failure.kind}: {failure.message}", secrets)
    finally:
        os.close(fd)
    return result


def endpoint_host_port(endpoint: str) -> tuple[str, int] | None:
    """``"192.0.2.10:6443"``, ``"[fd00::1]:6443"`` or ``"api.example:6443"`` -> (host, port)."""
    text = endpoint.strip()
    if text.startswith("https://"):
        text = text.removeprefix("https://").split("/", 1)[0]
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


# ---------------------------------------------------------------------------
# The source


class _ManagementClusterSource(JsonEvidenceSource):
    """A source that reads the management cluster through the run's kubeconfig, once it exists."""

    order: ClassVar[int] = 6  # after the cluster source; opens no port on any node
    phase: ClassVar[str] = "live"

    def target(self, plan: ClusterPlan) -> str:
        return f"cluster:{plan.metadata.name}"


class ManagementSource(_ManagementClusterSource):
    name: ClassVar[str] = "hcp_management"
    model = ManagementEvidence
    what = "management cluster evidence"

    def collect(self, context: GatherContext, reason: str | None) -> ManagementEvidence:
        return gather_management(context.plan)


class TenantsSource(_ManagementClusterSource):
    name: ClassVar[str] = "tenants"
    model = TenantsEvidence
    what = "tenant control plane evidence"

    def collect(self, context: GatherContext, reason: str | None) -> TenantsEvidence:
        return gather_tenants(context.plan)


E = TypeVar("E", bound=ManagementClusterEvidence)


def read_management_cluster(
    model: type[E], plan: ClusterPlan, environ: dict[str, str] | None, read: Callable[[KubeClient, E, float], None]
) -> E:
    """``model`` evidence filled by ``read`` through the run's kubeconfig, the management cluster's
    (never raises for a cluster's sake: an unusable kubeconfig or a failed read is ``mode: error``)."""
    from acpcheck.transport.deadline import request_timeout

    evidence = model(mode="live", checked_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
    path, context = kubeconfig_of(plan, environ)
    if path is None:
        return model(mode="error", reason="no kubeconfig: the management cluster cannot be read")
    try:
        deadline = request_timeout(environ)
        target = load_kubeconfig(path, context)
    except (ValueError, KubeconfigError) as error:
        return model(mode="error", reason=f"the management cluster's kubeconfig: {error}")
    evidence.server = target.server
    try:
        with KubeClient(target, deadline=deadline) as api:
            read(api, evidence, deadline)
    except ApiFailure as failure:
        return model(
            mode="error", server=target.server, reason=f"the management cluster ({target.server}): {failure.message}"
        )
    return evidence


def gather_management(plan: ClusterPlan, environ: dict[str, str] | None = None) -> ManagementEvidence:
    """Read what the management cluster says of itself."""
    return read_management_cluster(ManagementEvidence, plan, environ, _read_management)


def gather_tenants(plan: ClusterPlan, environ: dict[str, str] | None = None) -> TenantsEvidence:
    """Read the management cluster's tenant control planes, and connect to each."""
    return read_management_cluster(TenantsEvidence, plan, environ, _read_planes)


def _try(evidence: ManagementEvidence | TenantsEvidence, read: Read, call: Any) -> Any:
    """``call()``; None when the read is refused or fails (recorded in ``evidence.errors``), or when absent."""
    try:
        return call()
    except ApiFailure as failure:
        if failure.kind == "absent":
            return None
        if failure.kind in ("forbidden", "error"):
            evidence.errors[read.key] = failure.message
            return None
        raise


def _read_management(api: KubeClient, evidence: ManagementEvidence, deadline: float) -> None:
    cache: dict[str, set[str] | None] = {}
    namespace = _try(evidence, CPAAS_NAMESPACE, lambda: api.get_object(CPAAS_NAMESPACE))
    evidence.acp_namespace = None if CPAAS_NAMESPACE.key in evidence.errors else namespace is not None
    evidence.global_registry = api.served(PLATFORM_REGISTRY, cache)
    for read, parse in ((KUBEADM_CONFIG, _cluster_config_cidrs), (KUBE_PROXY_CONFIG, _kube_proxy_cidrs)):
        found = _try(evidence, read, lambda read=read: api.get_object(read))
        cidrs = parse(found) if found else None
        if cidrs is not None:
            evidence.cidrs.append(cidrs)
    if not any(found.pod for found in evidence.cidrs):  # the Nodes only when nothing better gave the pod CIDR
        cidrs = _node_cidrs(_try(evidence, NODES, lambda: list(api.list_objects(NODES))) or [])
        if cidrs is not None:
            evidence.cidrs.append(cidrs)


def _read_planes(api: KubeClient, evidence: TenantsEvidence, deadline: float) -> None:
    cache: dict[str, set[str] | None] = {}
    evidence.kamaji_served = api.served(TENANT_CONTROL_PLANES, cache)
    if not evidence.kamaji_served:
        return
    tcps = _try(evidence, TENANT_CONTROL_PLANES, lambda: list(api.list_objects(TENANT_CONTROL_PLANES))) or []
    if api.served(DATASTORES, cache):
        for item in _try(evidence, DATASTORES, lambda: list(api.list_objects(DATASTORES))) or []:
            state = datastore_summary(item)
            evidence.datastores[state.name] = state
    # The Cluster API Cluster -> its controlPlaneRef (a KamajiControlPlane) -> the TenantControlPlane of that name.
    owners: dict[tuple[str, str], str] = {}
    if api.served(CAPI_CLUSTERS, cache):
        for cluster in _try(evidence, CAPI_CLUSTERS, lambda: list(api.list_objects(CAPI_CLUSTERS))) or []:
            ref = _get(cluster, "spec", "controlPlaneRef") or {}
            if ref.get("kind") == "KamajiControlPlane" and ref.get("name"):
                namespace = ref.get("namespace") or _get(cluster, "metadata", "namespace") or ""
                owners[(str(namespace), str(ref["name"]))] = str(_get(cluster, "metadata", "name"))
    # First, from the management cluster and one at a time: each plane's kubeconfig Secret (in memory).
    work: list[tuple[TenantPlane, tuple[str, str], bytes | None]] = []
    for tcp in tcps:
        plane = plane_summary(tcp)
        labels = _get(tcp, "metadata", "labels") or {}
        plane.cluster = owners.get((plane.namespace, plane.name)) or labels.get("cluster.x-k8s.io/cluster-name")
        evidence.planes.append(plane)
        agent = (
            _get(tcp, "status", "addons", "konnectivity", "agent", "namespace") or AGENT_NAMESPACE,
            _get(tcp, "status", "addons", "konnectivity", "agent", "name") or AGENT_NAME,
        )
        mode = str(_get(tcp, "spec", "addons", "konnectivity", "agent", "mode") or "DaemonSet")
        kubeconfig = _read_secret(api, plane)
        if mode != "DaemonSet" and plane.secret_found:
            plane.tenant = TenantApi(agent=f"{agent[0]}/{agent[1]}", agent_mode=mode)
            kubeconfig = None
        work.append((plane, agent, kubeconfig))

    # Then, in parallel, what is reached outside the management cluster's API: each endpoint and each tenant's API.
    def reach(item: tuple[TenantPlane, tuple[str, str], bytes | None]) -> None:
        plane, agent, kubeconfig = item
        _probe_endpoint(plane)
        if kubeconfig is not None:
            plane.tenant = read_tenant(kubeconfig, plane, agent, deadline)

    with ThreadPoolExecutor(max_workers=max(1, min(TENANT_WORKERS, len(work)))) as executor:
        list(executor.map(reach, work))


def _probe_endpoint(plane: TenantPlane) -> None:
    """TLS to the plane's control-plane endpoint, straight from the runner: the certificate it serves."""
    from acpcheck.sources.api_tls import tls_probe

    if not plane.endpoint:
        return
    where = endpoint_host_port(plane.endpoint)
    if where is None:
        plane.probe = TlsProbe(host=plane.endpoint, port=0, error="not host:port")
        return
    host, port = where
    plane.probe = tls_probe(host, port, proxy=None, timeout=ENDPOINT_TIMEOUT, server_name=host)


def _read_secret(api: KubeClient, plane: TenantPlane) -> bytes | None:
    """The admin kubeconfig of the plane's Secret (bytes, in memory; None when there is none to use).
    Only the Secret's key names are kept in the evidence."""
    if not plane.kubeconfig_secret:
        return None
    secret_read = Read(
        "kubeconfig-secret", "", "v1", "secrets", name=plane.kubeconfig_secret, namespace=plane.namespace
    )
    try:
        secret = api.get_object(secret_read)
    except ApiFailure as failure:
        if failure.kind == "absent":
            plane.secret_found = False
        elif failure.kind in ("forbidden", "error"):
            plane.secret_error = f"{failure.kind}: {failure.message}"
        else:
            raise
        return None
    data = secret.get("data") or {}
    plane.secret_found = True
    plane.secret_keys = sorted(str(key) for key in data)
    encoded = data.get(ADMIN_KUBECONFIG_KEY)
    del secret, data
    if not isinstance(encoded, str):
        return None
    try:
        return base64.b64decode(encoded, validate=True)
    except ValueError:
        plane.tenant = TenantApi(error=f"Secret {plane.namespace}/{plane.kubeconfig_secret}: not base64")
        return None
