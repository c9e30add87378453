"""Hosted control planes for the **test API server** (``acpcheck_lab.apiserver``, a stand-in for
kube-apiserver, not Kubernetes): a management cluster's objects and a tenant's own API server.

Builders of the objects a management cluster holds once hosted clusters exist, in the shapes of
the published APIs (Kamaji ``kamaji.clastix.io/v1alpha1`` TenantControlPlane and DataStore:
github.com/clastix/kamaji api/v1alpha1; Cluster API ``cluster.x-k8s.io/v1beta1`` Cluster), so they
validate against the published CRD schemas as well as against the minimal structural ones
shipped in lab/acpcheck_lab/crds/:

- ``tenant_control_plane(name, …)``: a TenantControlPlane with the status Kamaji publishes
  (version and its status, control-plane endpoint, admin kubeconfig Secret, DataStore in use,
  Deployment replicas, Konnectivity addon); every defect the tenant rules look for is a
  keyword (``status="NotReady"``, ``ready=1``, ``datastore="missing"``, ``konnectivity=False``…);
- ``capi_cluster(name, …)``: the Cluster API Cluster whose controlPlaneRef (a KamajiControlPlane
  of the same name) leads to the tenant control plane;
- ``datastore(name, ready=…)``: a DataStore (driver etcd, endpoints, its ``status.ready``);
- ``admin_kubeconfig_secret(name, namespace, kubeconfig)``: the Secret Kamaji writes, with the
  kubeconfig under ``admin.conf``;
- ``konnectivity_agent(desired, ready)``: the tenant's ``kube-system/konnectivity-agent``
  DaemonSet with its status;
- ``acp_namespace()``, ``kubeadm_config(pod, service)``, ``kube_proxy_config(pod)``,
  ``node_with_pod_cidr(name, cidr)``: what a management cluster says of itself;
- ``MANAGEMENT_READER``: a user (for ``init_server_dir(users=…)``) that may get and list what
  the ``tenants`` source reads, and nothing else;
- ``TenantServer``: a **second** test API server, with its own CA, standing for one tenant's
  API (the address its control-plane endpoint gives), and the admin kubeconfig for it (a
  bearer token chosen by the caller, so a test can make it a canary);
- ``management_objects(…)``: a whole healthy management cluster for one tenant, ready to seed.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml

from acpcheck_lab.apiserver import (
    DEFAULT_VERSION,
    Rule,
    ServerDir,
    TestApiServer,
    User,
    init_server_dir,
    kubeconfig,
)

#: ACP's system namespace; where the examples put hosted clusters' objects too.
NAMESPACE = "cpaas-system"

#: A reader of the management cluster: get/list on what acpcheck.sources.hcp_tenants reads.
MANAGEMENT_READER: dict[str, Any] = {
    "name": "hcp-reader",
    "auth": "token",
    "rules": [
        {
            "verbs": ["get", "list"],
            "apiGroups": [
                "",
                "apps",
                "apiextensions.k8s.io",
                "metallb.io",
                "kamaji.clastix.io",
                "controlplane.cluster.x-k8s.io",
                "cluster.x-k8s.io",
                "infrastructure.cluster.x-k8s.io",
                "bootstrap.cluster.x-k8s.io",
                "platform.tkestack.io",
                "cluster.alauda.io",
                "networking.k8s.io",
                "certificates.k8s.io",
                "batch",
                "enhancement.cluster.alauda.io",
                "config.cpaas.io",
            ],
            "resources": ["*"],
        }
    ],
}
#: The same reader, refused Secrets (the kubeconfig Secret then cannot be read: ERROR, never PASS).
NO_SECRETS_READER: dict[str, Any] = {
    "name": "hcp-no-secrets",
    "auth": "token",
    "rules": [
        {
            "verbs": ["get", "list"],
            "apiGroups": [group for group in MANAGEMENT_READER["rules"][0]["apiGroups"] if group],
            "resources": ["*"],
        },
        {"verbs": ["get", "list"], "apiGroups": [""], "resources": ["namespaces", "nodes", "configmaps"]},
    ],
}


def acp_namespace() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}


def kubeadm_config(pod: str, service: str) -> dict[str, Any]:
    """kube-system/kubeadm-config with a ClusterConfiguration whose networking gives the cluster's CIDRs."""
    configuration = (
        "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\n"
        f"networking:\n  dnsDomain: cluster.local\n  podSubnet: {pod}\n  serviceSubnet: {service}\n"
    )
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "kubeadm-config", "namespace": "kube-system"},
        "data": {"ClusterConfiguration": configuration},
    }


def kube_proxy_config(pod: str) -> dict[str, Any]:
    """kube-system/kube-proxy with a KubeProxyConfiguration whose clusterCIDR is ``pod``."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "kube-proxy", "namespace": "kube-system"},
        "data": {
            "config.conf": f"apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n"
            f"clusterCIDR: {pod}\nmode: ipvs\n"
        },
    }


def node_with_pod_cidr(name: str, cidr: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name},
        "spec": {"podCIDR": cidr, "podCIDRs": [cidr]},
    }


def datastore(
    name: str = "default-datastore", *, ready: bool | None = True, endpoints: tuple[str, ...] = ()
) -> dict[str, Any]:
    """A DataStore (driver etcd); ``ready`` None: a status without ``ready`` (Kamaji before the field)."""
    obj: dict[str, Any] = {
        "apiVersion": "kamaji.clastix.io/v1alpha1",
        "kind": "DataStore",
        "metadata": {"name": name},
        "spec": {
            "driver": "etcd",
            "endpoints": list(endpoints or (f"etcd-{n}.etcd.{NAMESPACE}.svc.cluster.local:2379" for n in range(3))),
        },
    }
    if ready is not None:
        obj["status"] = {"ready": ready, "usedBy": []}
    return obj


def tenant_control_plane(
    name: str,
    namespace: str = NAMESPACE,
    *,
    version: str = "v1.33.3",
    installed: str | None = None,
    status: str | None = "Ready",
    endpoint: str | None = "192.0.2.200:6443",
    load_balancer: str | None = "",
    replicas: int | None = 2,
    ready: int | None = None,
    datastore: str | None = "default-datastore",
    konnectivity: bool = True,
    konnectivity_enabled: bool = True,
    secret: str | None = "",
    agent_mode: str | None = None,
    service_type: str = "LoadBalancer",
) -> dict[str, Any]:
    """A Kamaji TenantControlPlane as Kamaji leaves it. Defaults: healthy, Ready, 2 of 2 replicas ready.

    ``status``: status.kubernetesResources.version.status (None: no version status at all);
    ``endpoint``: status.controlPlaneEndpoint; ``load_balancer``: the Service's LoadBalancer address
    ("" = the endpoint's host; None = none given); ``ready``: ready replicas (default: ``replicas``);
    ``datastore``: spec.dataStore and status.storage.dataStoreName; ``secret``: the admin kubeconfig
    Secret's name ("" = ``<name>-admin-kubeconfig``, Kamaji's; None = status names none)."""
    replicas_ready = (replicas if replicas is not None else 2) if ready is None else ready
    host = endpoint.rpartition(":")[0].strip("[]") if endpoint else None
    address = host if load_balancer == "" else load_balancer
    spec: dict[str, Any] = {
        "controlPlane": {
            "deployment": {} if replicas is None else {"replicas": replicas},
            "service": {"serviceType": service_type},
        },
        "kubernetes": {"version": version, "kubelet": {"cgroupfs": "systemd"}},
    }
    if datastore:
        spec["dataStore"] = datastore
    if konnectivity:
        spec["addons"] = {"konnectivity": {"server": {"port": 8132}}}
        if agent_mode:
            spec["addons"]["konnectivity"]["agent"] = {"mode": agent_mode}
    version_status: dict[str, Any] = {"version": installed or version}
    if status is not None:
        version_status["status"] = status
    kube_status: dict[str, Any] = {
        "version": version_status,
        "deployment": {
            "name": name,
            "namespace": namespace,
            "selector": f"kamaji.clastix.io/name={name}",
            "replicas": replicas_ready,
            "readyReplicas": replicas_ready,
            "availableReplicas": replicas_ready,
            "updatedReplicas": replicas_ready,
        },
        "service": {
            "name": name,
            "namespace": namespace,
            "port": 6443,
            "loadBalancer": {"ingress": [{"ip": address}]} if address and service_type == "LoadBalancer" else {},
        },
    }
    tcp_status: dict[str, Any] = {
        "kubernetesResources": kube_status,
        "kubeconfig": {"admin": {"secretName": f"{name}-admin-kubeconfig" if secret == "" else secret}}
        if secret is not None
        else {},
        "addons": {
            "coreDNS": {"enabled": True},
            "kubeProxy": {"enabled": True},
            "konnectivity": {
                "enabled": konnectivity and konnectivity_enabled,
                "agent": {"name": "konnectivity-agent", "namespace": "kube-system"},
            },
        },
    }
    if endpoint:
        tcp_status["controlPlaneEndpoint"] = endpoint
    if datastore:
        tcp_status["storage"] = {"driver": "etcd", "dataStoreName": datastore}
    return {
        "apiVersion": "kamaji.clastix.io/v1alpha1",
        "kind": "TenantControlPlane",
        "metadata": {"name": name, "namespace": namespace, "labels": {"cluster.x-k8s.io/cluster-name": name}},
        "spec": spec,
        "status": tcp_status,
    }


def capi_cluster(
    name: str,
    namespace: str = NAMESPACE,
    *,
    control_plane: str | None = None,
    pods: tuple[str, ...] = ("10.13.0.0/16",),
    services: tuple[str, ...] = ("10.14.0.0/16",),
) -> dict[str, Any]:
    """A Cluster API Cluster whose control plane is the KamajiControlPlane ``control_plane`` (default: ``name``)."""
    return {
        "apiVersion": "cluster.x-k8s.io/v1beta1",
        "kind": "Cluster",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "clusterNetwork": {"pods": {"cidrBlocks": list(pods)}, "services": {"cidrBlocks": list(services)}},
            "controlPlaneRef": {
                "apiVersion": "controlplane.cluster.x-k8s.io/v1alpha2",  # the provider serves only v1alpha2
                "kind": "KamajiControlPlane",
                "name": control_plane or name,
                "namespace": namespace,
            },
        },
    }


def admin_kubeconfig_secret(name: str, namespace: str, text: str, key: str = "admin.conf") -> dict[str, Any]:
    """The admin kubeconfig Secret Kamaji writes (``<tcp>-admin-kubeconfig``), the kubeconfig under ``key``."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace, "labels": {"kamaji.clastix.io/name": name}},
        "type": "Opaque",
        "data": {key: base64.b64encode(text.encode()).decode()},
    }


def konnectivity_agent(desired: int = 2, ready: int | None = None, name: str = "konnectivity-agent") -> dict[str, Any]:
    """The tenant's Konnectivity agent DaemonSet in kube-system: scheduled on ``desired`` nodes, ``ready`` ready."""
    ready = desired if ready is None else ready
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": name, "namespace": "kube-system"},
        "spec": {
            "selector": {"matchLabels": {"k8s-app": name}},
            "template": {
                "metadata": {"labels": {"k8s-app": name}},
                "spec": {
                    "containers": [{"name": name, "image": "registry.k8s.io/kas-network-proxy/proxy-agent:v0.33.0"}]
                },
            },
        },
        "status": {
            "currentNumberScheduled": desired,
            "desiredNumberScheduled": desired,
            "numberMisscheduled": 0,
            "numberReady": ready,
            "numberAvailable": ready,
            "updatedNumberScheduled": desired,
        },
    }


class TenantServer:
    """A tenant's own API: a second test API server with its own CA (``init_server_dir`` in ``directory``),
    serving on ``host`` (its certificate names 127.0.0.1 and localhost: serve on 127.0.0.2 for a certificate
    that does not name the endpoint), and the admin kubeconfig for it: with a bearer ``token``, or, without
    one, with a client certificate (CN kubernetes-admin, O system:masters), as kubeadm's admin.conf has."""

    __test__ = False

    def __init__(
        self, directory: Path, token: str | None = None, *, host: str = "127.0.0.1", version: str = DEFAULT_VERSION
    ):
        self.token = token
        spec: dict[str, Any] = {"name": "kubernetes-admin", "groups": ["system:masters"], "auth": "client-certificate"}
        self.dir: ServerDir = init_server_dir(directory, host="127.0.0.1", port=0, users=[] if token else [spec])
        users = [User("kubernetes-admin", ("system:masters",), token, (Rule(("*",), ("*",), ("*",)),))]
        self.server = TestApiServer(
            self.dir.tls(), users if token else self.dir.users(), host=host, port=0, kubernetes_version=version
        )

    @property
    def endpoint(self) -> str:
        return f"{self.server.host}:{self.server.port}"

    def kubeconfig(self) -> str:
        """The tenant's admin kubeconfig (what Kamaji puts under ``admin.conf``)."""
        if self.token:
            return kubeconfig(self.server.url, self.dir.ca.read_bytes(), "kubernetes-admin", token=self.token)
        document = yaml.safe_load(self.dir.kubeconfig("kubernetes-admin").read_text())
        document["clusters"][0]["cluster"]["server"] = self.server.url  # written before the port was known
        return yaml.safe_dump(document, sort_keys=False)

    def client_key(self) -> str:
        """The client key's base64 (as in ``client-key-data``), for a test to look for where it must not be."""
        document = yaml.safe_load(self.dir.kubeconfig("kubernetes-admin").read_text())
        return str(document["users"][0]["user"]["client-key-data"])

    def start(self) -> TenantServer:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self) -> TenantServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def management_objects(
    name: str, endpoint: str, tenant_kubeconfig: str, *, pod: str = "10.3.0.0/16", service: str = "10.4.0.0/16"
) -> list[dict[str, Any]]:
    """A healthy management cluster for one hosted cluster ``name`` whose control plane answers at ``endpoint``:
    ACP's namespace, its CIDRs (kubeadm-config), a ready DataStore, the Cluster, the TenantControlPlane and
    its admin kubeconfig Secret holding ``tenant_kubeconfig``."""
    return [
        acp_namespace(),
        kubeadm_config(pod, service),
        datastore(),
        capi_cluster(name),
        tenant_control_plane(name, endpoint=endpoint),
        admin_kubeconfig_secret(f"{name}-admin-kubeconfig", NAMESPACE, tenant_kubeconfig),
    ]
