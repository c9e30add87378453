"""A hosted control plane's management cluster in the lab: the scenario section ``hcp:``
(``acpcheck_lab.hcpmodel``).

The management cluster is the **test API server** of ``liveCluster.apiServer``
(``acpcheck_lab.apiserver``: a stand-in for the management cluster's kube-apiserver, not
Kubernetes) holding what Alauda's Hosted Control Plane plugins and MetalLB would hold:

- the CRDs of the cluster plugins seed 003 requires (acpcheck/matrix/hcp_plugins.yaml), all
  but those of ``missingPlugins`` (the server starts without its shipped CRDs, ``--no-crds``,
  and this seeds the CRDs it is to serve; hence ``liveCluster.etcdEncryptionConfig:
  not-installed``);
- MetalLB IPAddressPools (``pools``);
- SSHHost objects (``sshHosts``), each at the address and port of a lab node (real sshd:
  the node checks run on it) or at an address of the lab network where nothing answers,
  with a credential Secret (a canary string as its key: never a real key, never used);
- DataStores (``dataStores``) backed by the lab's REAL etcd (a node with
  ``controlPlane: {etcd: true}``: Debian's etcd with client-certificate TLS on that node's
  loopback, ``acpcheck_lab.etcd``), their CA, client certificate and key in Secrets;
- TenantControlPlanes and KamajiControlPlanes (``tenants``), Ready or not, with the
  admin kubeconfig Secret Kamaji writes (a canary token).

``up`` calls ``prepare`` after writing the plan: it appends these objects to the test API
server's seed and rewrites the plan as a hosted-control-plane plan that lists no nodes
(``planNodes: false``): the run finds the workers as SSH hosts of the management cluster.
Canary strings go to ``<state>/hcp/canaries.json`` (mode 0600) for tests to look for in
every output.

The object builders are in ONE marked section below (``# -- builders``): the field names are
the published ones (Kamaji's api/v1alpha1 types at github.com/clastix/kamaji, MetalLB's
IPAddressPool; the SSHHost's are our reading, acpcheck/sources/sshhosts.py).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from acpcheck_lab.hcpmodel import HcpSpec, LabDataStore, LabSshHost, LabTenant
    from acpcheck_lab.info import LabInfo
    from acpcheck_lab.layout import StatePaths
    from acpcheck_lab.node import NodeBuild
    from acpcheck_lab.scenario import Scenario

ETCD_PORT = 2379
#: Host number of a direct-network address no lab node, proxy or endpoint has (.1 gateway,
#: .2 proxy, .10 endpoint, nodes from .11): an SSHHost there is unreachable.
UNREACHABLE_HOST = 9
METALLB_NAMESPACE = "metallb-system"
#: The plan's SSH connect timeout in an hcp lab: an unreachable host costs seconds, not the default 10.
CONNECT_TIMEOUT_SECONDS = 3


def check(scenario: Scenario) -> None:
    """LabError for an ``hcp:`` section the lab cannot build (before anything is built)."""
    from acpcheck.matrix.hcp_plugins import hcp_plugins
    from acpcheck_lab.host import LabError

    hcp = scenario.hcp
    if hcp is None:
        return
    live = scenario.live_cluster
    if live is None or live.api_server is None or live.etcd_encryption_config != "not-installed":
        raise LabError(
            "hcp: needs liveCluster.apiServer (the management cluster's test API server) and "
            "liveCluster.etcdEncryptionConfig: not-installed (the hcp section seeds the CRDs itself)"
        )
    names = {node.name for node in scenario.nodes}
    for host in hcp.ssh_hosts:
        if host.node is not None and host.node not in names:
            raise LabError(f"hcp.sshHosts: {host.name}: no node {host.node!r} in the scenario")
    if hcp.data_stores and not _etcd_node(scenario):
        raise LabError("hcp.dataStores: no node runs etcd (give one controlPlane: {etcd: true})")
    plugins = {row.plugin for row in hcp_plugins()}
    unknown = [name for name in hcp.missing_plugins if name not in plugins]
    if unknown:
        raise LabError(f"hcp.missingPlugins: unknown {', '.join(unknown)} (known: {', '.join(sorted(plugins))})")
    stores = {store.name for store in hcp.data_stores}
    for tenant in hcp.tenants:
        if tenant.data_store not in stores:
            raise LabError(f"hcp.tenants: {tenant.name}: no DataStore {tenant.data_store!r} in hcp.dataStores")


def _etcd_node(scenario: Scenario) -> str | None:
    return next(
        (node.name for node in scenario.nodes if node.control_plane is not None and node.control_plane.etcd), None
    )


def prepare(scenario: Scenario, paths: StatePaths, info: LabInfo, builds: list[NodeBuild]) -> None:
    """The management cluster's objects appended to the test API server's seed, and the plan rewritten."""
    hcp = scenario.hcp
    if hcp is None:
        return
    canaries = {
        "sshHostKey": f"acplab-canary-sshhost-{secrets.token_hex(8)}",
        "sshHostPassword": f"acplab-canary-sshpass-{secrets.token_hex(8)}",
        "tenantToken": f"acplab-canary-tenant-{secrets.token_hex(8)}",
    }
    _private(paths.root / "hcp" / "canaries.json", json.dumps(canaries, indent=1))
    addresses = {build.spec.name: str(build.address) for build in builds}
    unreachable = str(info.lab_subnets.direct.network_address + UNREACHABLE_HOST)
    pki = paths.root / "controlplane"
    endpoint = str(info.lab_subnets.endpoint_address)  # the plan's spec.endpoint.address
    objects = management_objects(hcp, addresses, unreachable, pki, canaries, endpoint)
    seed = paths.root / "apiserver" / "seed.yaml"
    with seed.open("a") as handle:
        handle.write("---\n" + yaml.safe_dump_all(objects, sort_keys=False))
    _rewrite_plan(paths.plan, hcp)


def _rewrite_plan(plan_file: Path, hcp: HcpSpec) -> None:
    text = plan_file.read_text()
    header = "".join(line + "\n" for line in text.splitlines() if line.startswith("#"))
    document = yaml.safe_load(text)
    spec = document["spec"]
    if not hcp.plan_nodes:
        spec["nodes"] = []  # the workers are the management cluster's SSH hosts: the run finds them
    spec["ssh"]["connectTimeoutSeconds"] = CONNECT_TIMEOUT_SECONDS
    if spec.get("network", {}).get("plugin") != "kube-ovn":
        spec["network"].pop("kubeOvn", None)  # the lab's base plan is Kube-OVN's; hosted control planes use Calico
    header += "# A hosted-control-plane plan: its kubeconfig is the management cluster's (the test API server).\n"
    plan_file.write_text(header + yaml.safe_dump(document, sort_keys=False, default_flow_style=None, width=120))


def _private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "w") as handle:
        handle.write(text)


def management_objects(
    hcp: HcpSpec,
    addresses: dict[str, str],
    unreachable: str,
    pki: Path,
    canaries: dict[str, str],
    endpoint: str = "203.0.113.80",
) -> list[dict[str, Any]]:
    """Every object of the management cluster, CRDs first. ``endpoint``: the plan's endpoint address,
    the control-plane endpoint of the Ready tenants (MetalLB's address for their API server); a pool
    address ``endpoint`` stands for it (as a /32)."""
    from acpcheck.matrix.hcp_plugins import hcp_plugins
    from acpcheck_lab.apiserver import shipped_crds

    left_out = {crd for row in hcp_plugins() if row.plugin in hcp.missing_plugins for crd in row.crds}
    crds = [crd for crd in shipped_crds() if crd["metadata"]["name"] not in left_out]
    scopes = {crd["metadata"]["name"]: crd["spec"].get("scope", "Namespaced") for crd in crds}
    ns = hcp.namespace
    objects: list[dict[str, Any]] = [
        *crds,
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "metallb-system"}},
    ]
    objects += [
        ip_address_pool(pool.name, [f"{endpoint}/32" if a == "endpoint" else a for a in pool.addresses])
        for pool in hcp.pools
    ]
    for host in hcp.ssh_hosts:
        address = addresses[host.node] if host.node is not None else unreachable
        objects += ssh_host(host, address, ns, canaries)
    pem = {
        name: (pki / name).read_text()
        for name in ("ca.crt", "client.crt", "client.key", "rogue-client.crt", "rogue-client.key")
    }
    # -- DataStore and tenant objects: the integrator may switch these two lines to the DataStore
    # -- helper's acpcheck_lab.hcpdata and the tenants helper's acpcheck_lab.hcptenants builders.
    objects += [obj for store in hcp.data_stores for obj in data_store(store, ns, pem, scopes)]
    objects += [obj for tenant in hcp.tenants for obj in tenant_control_plane(tenant, ns, canaries, endpoint)]
    return objects


# -- builders (published field names; one place) -------------------------------------------


def _secret(name: str, namespace: str, data: dict[str, str], kind: str = "Opaque") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": kind,
        "data": {key: base64.b64encode(value.encode()).decode() for key, value in data.items()},
    }


def ip_address_pool(name: str, addresses: list[str]) -> dict[str, Any]:
    """MetalLB's IPAddressPool (metallb.io/v1beta1: spec.addresses, CIDRs or first-last ranges)."""
    return {
        "apiVersion": "metallb.io/v1beta1",
        "kind": "IPAddressPool",
        "metadata": {"name": name, "namespace": METALLB_NAMESPACE},
        "spec": {"addresses": list(addresses), "autoAssign": True},
    }


def ssh_host(host: LabSshHost, address: str, namespace: str, canaries: dict[str, str]) -> list[dict[str, Any]]:
    """An SSHHost (field names: acpcheck.sources.sshhosts.SPEC_FIELDS) and its credential Secret."""
    from acpcheck.sources.sshhosts import SPEC_FIELDS

    secret_name = f"{host.name}-credentials"
    spec: dict[str, Any] = {SPEC_FIELDS["address"]: address, SPEC_FIELDS["port"]: host.port}
    if host.reuse_policy is not None:
        spec[SPEC_FIELDS["reuse"]] = host.reuse_policy
    made: list[dict[str, Any]] = []
    if host.credentials != "none":
        spec[SPEC_FIELDS["credentials"]] = {"name": secret_name, "namespace": namespace}
    if host.credentials == "ssh-auth":
        made.append(
            _secret(secret_name, namespace, {"ssh-privatekey": canaries["sshHostKey"]}, "kubernetes.io/ssh-auth")
        )
    elif host.credentials == "basic-auth":
        made.append(
            _secret(
                secret_name,
                namespace,
                {"username": "root", "password": canaries["sshHostPassword"]},
                "kubernetes.io/basic-auth",
            )
        )
    elif host.credentials == "no-login":
        made.append(_secret(secret_name, namespace, {"username": "root"}))
    host_object = {
        "apiVersion": "infrastructure.cluster.x-k8s.io/v1beta1",
        "kind": "SSHHost",
        "metadata": {"name": host.name, "namespace": namespace},
        "spec": spec,
    }
    return [*made, host_object]


def data_store(
    store: LabDataStore, namespace: str, pem: dict[str, str], scopes: dict[str, str]
) -> list[dict[str, Any]]:
    """Kamaji's DataStore (kamaji.clastix.io/v1alpha1, api/v1alpha1/datastore_types.go: spec.driver,
    spec.endpoints, spec.tlsConfig.certificateAuthority / clientCertificate, each a ContentRef with a
    secretReference {name, namespace, keyPath}) and the Secret its TLS material is in. The etcd is the
    lab's: one member on the etcd node's loopback, listed under ``endpoints`` names its certificate has."""
    endpoints = [f"127.0.0.1:{ETCD_PORT}", f"localhost:{ETCD_PORT}"][: store.endpoints]
    spec: dict[str, Any] = {"driver": "etcd", "endpoints": endpoints}
    made: list[dict[str, Any]] = []
    if store.tls:
        secret = f"{store.name}-etcd-certs"
        client = "rogue-client" if store.client_cert == "wrong-ca" else "client"
        made.append(
            _secret(
                secret,
                namespace,
                {"ca.crt": pem["ca.crt"], "tls.crt": pem[f"{client}.crt"], "tls.key": pem[f"{client}.key"]},
            )
        )

        def ref(key: str) -> dict[str, Any]:
            return {"secretReference": {"name": secret, "namespace": namespace, "keyPath": key}}

        spec["tlsConfig"] = {
            "certificateAuthority": {"certificate": ref("ca.crt")},
            "clientCertificate": {"certificate": ref("tls.crt"), "privateKey": ref("tls.key")},
        }
    metadata: dict[str, Any] = {"name": store.name}
    if scopes.get("datastores.kamaji.clastix.io", "Cluster") == "Namespaced":
        metadata["namespace"] = namespace  # the lab's minimal CRD; Kamaji's own DataStore is cluster-scoped
    made.append({"apiVersion": "kamaji.clastix.io/v1alpha1", "kind": "DataStore", "metadata": metadata, "spec": spec})
    return made


def tenant_control_plane(
    tenant: LabTenant, namespace: str, canaries: dict[str, str], endpoint: str
) -> list[dict[str, Any]]:
    """Kamaji's TenantControlPlane (api/v1alpha1/tenantcontrolplane_types.go: spec.dataStore,
    spec.controlPlane.deployment.replicas, spec.controlPlane.service.serviceType, spec.kubernetes.version,
    spec.networkProfile {podCidr, serviceCidr, port}, spec.addons.konnectivity; status.kubernetesResources
    .version.status, status.controlPlaneEndpoint, status.kubeconfig.admin.secretName, status.storage
    .dataStoreName), the KamajiControlPlane behind it, and the admin kubeconfig Secret Kamaji writes."""
    kubeconfig_secret = f"{tenant.name}-admin-kubeconfig"
    tcp: dict[str, Any] = {
        "apiVersion": "kamaji.clastix.io/v1alpha1",
        "kind": "TenantControlPlane",
        "metadata": {"name": tenant.name, "namespace": namespace},
        "spec": {
            "dataStore": tenant.data_store,
            "controlPlane": {
                "deployment": {"replicas": tenant.replicas},
                "service": {"serviceType": "LoadBalancer"},
            },
            "kubernetes": {"version": tenant.version},
            "networkProfile": {"port": 6443, "podCidr": tenant.pod_cidr, "serviceCidr": tenant.service_cidr},
            "addons": {"coreDNS": {}, "kubeProxy": {}, "konnectivity": {"server": {"port": 8132}}},
        },
        "status": {
            "kubernetesResources": {
                "version": {"version": tenant.version, "status": "Ready" if tenant.ready else "NotReady"}
            },
            "kubeconfig": {"admin": {"secretName": kubeconfig_secret}},
            "storage": {"dataStoreName": tenant.data_store, "driver": "etcd"},
        },
    }
    if tenant.ready:
        tcp["status"]["controlPlaneEndpoint"] = f"{endpoint}:6443"
    kcp = {
        "apiVersion": "controlplane.cluster.x-k8s.io/v1alpha1",
        "kind": "KamajiControlPlane",
        "metadata": {"name": tenant.name, "namespace": namespace},
        "spec": {"dataStoreName": tenant.data_store, "replicas": tenant.replicas, "version": tenant.version},
        "status": {"ready": tenant.ready, "initialized": tenant.ready},
    }
    kubeconfig = (
        "apiVersion: v1\nkind: Config\nusers:\n- name: admin\n  user:\n    token: " + canaries["tenantToken"] + "\n"
    )
    return [_secret(kubeconfig_secret, namespace, {"admin.conf": kubeconfig}), tcp, kcp]
