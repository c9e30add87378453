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
- TenantControlPlanes and their Cluster API Clusters (``tenants``), Ready or not, with the
  admin kubeconfig Secret Kamaji writes. A Ready tenant's own API is a **second test API
  server** (its own CA; a stand-in for the tenant's kube-apiserver) in the management node's
  namespace on port 16443 and up: its control-plane endpoint, with the Konnectivity agent
  DaemonSet on its workers; the admin kubeconfig's token is a canary.

``up`` calls ``prepare`` after writing the plan: it appends these objects to the test API
server's seed and rewrites the plan as a hosted-control-plane plan that lists no nodes
(``planNodes: false``): the run finds the workers as SSH hosts of the management cluster.
Canary strings go to ``<state>/hcp/canaries.json`` (mode 0600) for tests to look for in
every output.

The DataStore and tenant objects come from the builders the checks' own tests use
(``acpcheck_lab.hcpdata``, ``acpcheck_lab.hcptenants``: the published Kamaji and Cluster API
field names); the SSHHost's field names are our reading (acpcheck/sources/sshhosts.py).
Every worker no ``sshHosts`` entry names becomes an SSH host too (``lab up --nodes N``).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import sys
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from acpcheck_lab.hcpmodel import HcpSpec, LabSshHost, LabTenant
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
#: The global cluster's registry of the clusters it manages: what tells global from a workload cluster.
GLOBAL_REGISTRY_CRD = "clusters.platform.tkestack.io"
#: A Ready tenant's own test API server listens on the management node from this port on.
TENANT_API_PORT = 16443


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
    """The management cluster's objects appended to the test API server's seed, each Ready tenant's
    own test API server made ready to start (``processes``), and the plan rewritten."""
    hcp = scenario.hcp
    if hcp is None:
        return
    addresses = {build.spec.name: str(build.address) for build in builds}
    management = addresses[_api_node(scenario)]
    workers = [build.spec.name for build in builds if build.spec.role == "worker"]
    canaries = {
        "sshHostKey": f"acplab-canary-sshhost-{secrets.token_hex(8)}",
        "sshHostPassword": f"acplab-canary-sshpass-{secrets.token_hex(8)}",
    }
    tenant_apis = {}
    for tenant, directory, port in tenant_servers(hcp, paths):
        tenant_apis[tenant.name] = _tenant_server(directory, management, port, agents=len(workers))
        canaries[f"tenantToken-{tenant.name}"] = yaml.safe_load(tenant_apis[tenant.name])["users"][0]["user"]["token"]
    _private(paths.root / "hcp" / "canaries.json", json.dumps(canaries, indent=1))
    unreachable = str(info.lab_subnets.direct.network_address + UNREACHABLE_HOST)
    pki = paths.root / "controlplane"
    plan = yaml.safe_load(paths.plan.read_text())["spec"]
    objects = management_objects(
        hcp, addresses, workers, unreachable, pki, canaries, tenant_apis, plan.get("managementCluster") or {}
    )
    seed = paths.root / "apiserver" / "seed.yaml"
    with seed.open("a") as handle:
        handle.write("---\n" + yaml.safe_dump_all(objects, sort_keys=False))
    _rewrite_plan(paths.plan, hcp, management)


def _api_node(scenario: Scenario) -> str:
    assert scenario.live_cluster is not None and scenario.live_cluster.api_server is not None  # check() said so
    return scenario.live_cluster.api_server


def tenant_servers(hcp: HcpSpec, paths: StatePaths) -> list[tuple[LabTenant, Path, int]]:
    """Each Ready tenant's own test API server: its directory and port on the management node."""
    ready = [tenant for tenant in hcp.tenants if tenant.ready]
    return [
        (tenant, paths.root / "hcp" / f"tenant-{tenant.name}", TENANT_API_PORT + n) for n, tenant in enumerate(ready)
    ]


def _tenant_server(directory: Path, host: str, port: int, agents: int) -> str:
    """Initialise a tenant's test API server (its seed: the Konnectivity agent DaemonSet, ready on
    ``agents`` workers); its admin kubeconfig (a bearer token, as Kamaji's admin.conf gives one)."""
    from acpcheck_lab.apiserver import init_server_dir
    from acpcheck_lab.hcptenants import konnectivity_agent

    # its token is a canary: the tests look for it in every output
    token = f"acplab-canary-tenant-{secrets.token_hex(8)}"
    admin = {"name": "kubernetes-admin", "groups": ["system:masters"], "auth": "token", "token": token}
    server_dir = init_server_dir(directory, host=host, port=port, users=[admin])
    seed = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-system"}}, konnectivity_agent(agents)]
    (directory / "seed.yaml").write_text(yaml.safe_dump_all(seed, sort_keys=False))
    return server_dir.kubeconfig("kubernetes-admin").read_text()


def processes(
    scenario: Scenario, paths: StatePaths, builds: list[NodeBuild], env: dict[str, str]
) -> list[tuple[str, list[str], Path, dict[str, str]]]:
    """The keeper's requests for the tenants' test API servers (in the management node's namespace)."""
    if scenario.hcp is None:
        return []
    netns = next(build.netns for build in builds if build.spec.name == _api_node(scenario))
    return [
        (
            netns,
            [
                sys.executable,
                "-m",
                "acpcheck_lab.apiserver",
                "serve",
                str(directory),
                "--listen",
                f"0.0.0.0:{port}",
                "--seed",
                str(directory / "seed.yaml"),
                "--no-crds",
            ],
            directory / "apiserver.log",
            env,
        )
        for _, directory, port in tenant_servers(scenario.hcp, paths)
    ]


def wait_ready(scenario: Scenario, paths: StatePaths, builds: list[NodeBuild], timeout: float = 30.0) -> None:
    """Until every tenant's test API server answers (LabError with the end of its log otherwise)."""
    from acpcheck_lab.apiserver import wait_ready as server_ready
    from acpcheck_lab.host import LabError

    if scenario.hcp is None:
        return
    host = next(str(build.address) for build in builds if build.spec.name == _api_node(scenario))
    for tenant, directory, port in tenant_servers(scenario.hcp, paths):
        try:
            server_ready(f"https://{host}:{port}", directory / "ca.crt", timeout)
        except TimeoutError as error:
            log = (directory / "apiserver.log").read_text(errors="replace")[-800:]
            raise LabError(f"tenant {tenant.name}: {error}; end of its log:\n{log}") from None


def _rewrite_plan(plan_file: Path, hcp: HcpSpec, management: str) -> None:
    text = plan_file.read_text()
    header = "".join(line + "\n" for line in text.splitlines() if line.startswith("#"))
    document = yaml.safe_load(text)
    spec = document["spec"]
    if not hcp.plan_nodes:
        spec["nodes"] = []  # the workers are the management cluster's SSH hosts: the run finds them
    spec["ssh"]["connectTimeoutSeconds"] = CONNECT_TIMEOUT_SECONDS
    # the DataStores' etcd listens on the management node's loopback: reached through that node
    spec.setdefault("managementCluster", {})["sshNodes"] = [management]
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
    workers: list[str],
    unreachable: str,
    pki: Path,
    canaries: dict[str, str],
    tenant_apis: dict[str, str],
    management_cidrs: dict[str, Any],
) -> list[dict[str, Any]]:
    """Every object of the management cluster, CRDs first. ``tenant_apis``: each Ready tenant's
    admin kubeconfig (its server is its control-plane endpoint); ``management_cidrs``: the plan's
    ``managementCluster`` (its podCIDR and serviceCIDR, published in kubeadm-config)."""
    from acpcheck.matrix.hcp_plugins import hcp_plugins
    from acpcheck_lab.apiserver import shipped_crds
    from acpcheck_lab.hcpdata import datastore_objects
    from acpcheck_lab.hcpmodel import LabSshHost
    from acpcheck_lab.hcptenants import admin_kubeconfig_secret, capi_cluster, kubeadm_config, tenant_control_plane

    left_out = {crd for row in hcp_plugins() if row.plugin in hcp.missing_plugins for crd in row.crds}
    left_out.add(GLOBAL_REGISTRY_CRD)  # a management cluster is a workload cluster, not global (ACP-HCP-007)
    ns = hcp.namespace
    objects: list[dict[str, Any]] = [
        *(crd for crd in shipped_crds() if crd["metadata"]["name"] not in left_out),
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "metallb-system"}},
    ]
    pod, service = management_cidrs.get("podCIDR"), management_cidrs.get("serviceCIDR")
    if pod and service:
        objects.append(kubeadm_config(_first(pod), _first(service)))
    objects += [
        ip_address_pool(pool.name, [_pool_address(a, tenant_apis) for a in pool.addresses]) for pool in hcp.pools
    ]
    named = {host.node for host in hcp.ssh_hosts}
    hosts = [*hcp.ssh_hosts, *(LabSshHost(name=node, node=node) for node in workers if node not in named)]
    for host in hosts:
        address = addresses[host.node] if host.node is not None else unreachable
        objects += ssh_host(host, address, ns, canaries)
    pem = {
        name: (pki / name).read_text()
        for name in ("ca.crt", "client.crt", "client.key", "rogue-client.crt", "rogue-client.key")
    }
    for store in hcp.data_stores:
        client = "rogue-client" if store.client_cert == "wrong-ca" else "client"
        objects += datastore_objects(
            store.name,
            [f"127.0.0.1:{ETCD_PORT}", f"localhost:{ETCD_PORT}"][: store.endpoints],
            ca_pem=pem["ca.crt"],
            client_cert_pem=pem[f"{client}.crt"],
            client_key_pem=pem[f"{client}.key"],
            tls=store.tls,
            secret_namespace=ns,
        )
    for tenant in hcp.tenants:
        kubeconfig = tenant_apis.get(tenant.name)
        endpoint = (
            urllib.parse.urlsplit(yaml.safe_load(kubeconfig)["clusters"][0]["cluster"]["server"]).netloc
            if kubeconfig
            else None
        )
        objects.append(
            tenant_control_plane(
                tenant.name,
                ns,
                version=tenant.version,
                status="Ready" if tenant.ready else "NotReady",
                endpoint=endpoint,
                replicas=tenant.replicas,
                datastore=tenant.data_store,
            )
        )
        objects.append(capi_cluster(tenant.name, ns, pods=(tenant.pod_cidr,), services=(tenant.service_cidr,)))
        if kubeconfig:
            objects.append(admin_kubeconfig_secret(f"{tenant.name}-admin-kubeconfig", ns, kubeconfig))
    return objects


def _first(cidrs: str | list[str]) -> str:
    return cidrs if isinstance(cidrs, str) else cidrs[0]


def _pool_address(address: str, tenant_apis: dict[str, str]) -> str:
    """A pool's address; ``endpoint``: the first Ready tenant's control-plane endpoint host (a /32), as
    MetalLB gave it to that tenant's LoadBalancer Service."""
    if address != "endpoint":
        return address
    if not tenant_apis:
        return "203.0.113.80/32"  # no tenant is Ready: an address no lab part has
    server = yaml.safe_load(next(iter(tenant_apis.values())))["clusters"][0]["cluster"]["server"]
    return f"{urllib.parse.urlsplit(server).hostname}/32"


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
