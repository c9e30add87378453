"""Connected-cluster evidence: a workload cluster seen from the runner and from the global cluster.

``ConnectedSource`` (``connected``, order 25, once the cluster exists: ``live_reason``)
gathers, for a workload plan (ACP-CONN-010 and up, ACP-CLOUD-003 and up):

1. the cluster's API server as the cluster's kubeconfig names it, probed **from the
   runner**: TLS, then ``GET /version`` (``api_tls.tls_probe``, the same probe the LB
   checks use);
2. the cluster's control-plane nodes: the plan's, else the live Nodes with a
   control-plane role label (their InternalIP, else ExternalIP), read through the
   cluster's kubeconfig (``cluster.gather_cluster``, reusing the ``cluster`` source's
   evidence when the run gathered it);
3. **from every control-plane node of the global cluster** (``spec.globalCluster.controlPlane``,
   logged in over SSH with the plan's ``spec.ssh``): one connector
   (``nodeside.connector_command``, the connectivity proof's program, TCP mode) to
   the API server's host:port and to 6443, 11780 and 11781 on every control-plane
   node of the cluster, and (an on-premise or immutable cluster behind an external load balancer) to the
   same ports of ``spec.endpoint.address``. Only when ``spec.globalCluster.reach`` is ``direct``: with
   ``tunnel`` global is not expected to reach the cluster itself;
4. the global cluster's record of this cluster, read through
   ``spec.globalCluster.kubeconfig``: ``clusters.platform.tkestack.io/<metadata.name>``
   (name, type, version, phase; no credential is read).

Saved as ``connected/connected.json``: addresses, outcomes, certificate facts and the
record's summary; never a kubeconfig's contents or a credential.
"""

from __future__ import annotations

import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from acpcheck.sources.api_tls import TlsProbe
from acpcheck.sources.base import EvidenceDocument, GatherContext, JsonEvidenceSource
from acpcheck.sources.cluster import _platform_cluster_summary
from acpcheck.transport.kube import Read

if TYPE_CHECKING:
    from acpcheck.model.plan import ClusterPlan, Node

#: What global must reach on every control-plane node of a workload cluster (the on-premises
#: page: "global can access ports 6443, 11780, and 11781 on all control plane nodes").
GLOBAL_PORTS: tuple[int, ...] = (6443, 11780, 11781)
#: The target name of the cluster's endpoint (spec.endpoint.address, the load balancer), and the cluster
#: types whose endpoint is the LB in front of their control plane (an imported cluster's is its API only).
ENDPOINT = "endpoint"
ENDPOINT_TYPES = frozenset({"on-premise", "immutable"})
#: Seconds per connection from a global node, and tries for a target that gave no answer (ours,
#: as the connectivity proof's: one lost SYN is not a firewall).
CONNECT_TIMEOUT = 2.0
TRIES = 2
#: The key of the global cluster's record of this cluster in the saved ClusterEvidence.
RECORD_KEY = "platform-cluster-record"


def record_read(name: str) -> Read:
    """The global cluster's record of cluster ``name``: TKEStack's Cluster (platform.tkestack.io/v1,
    cluster-scoped), which ACP keeps for every cluster it manages (``kubectl get
    clusters.platform.tkestack.io``, the ACP download and public-credential pages)."""
    return Read(RECORD_KEY, "platform.tkestack.io", "v1", "clusters", name=name, summarise=_platform_cluster_summary)


class ApiTarget(BaseModel):
    """The cluster's API server as its kubeconfig names it (the URL only)."""

    model_config = ConfigDict(extra="forbid")

    server: str
    host: str
    port: int


class PortResult(BaseModel):
    """One connection from a global control-plane node."""

    model_config = ConfigDict(extra="forbid")

    to: str  # "api" (the kubeconfig's server), "endpoint" (spec.endpoint.address), or a control-plane node's name
    host: str
    port: int
    outcome: str  # connected | refused | timeout | unreachable … | notool
    detail: str = ""


class FromGlobalNode(BaseModel):
    """What one global control-plane node's connections showed (``error``: it could not run them)."""

    model_config = ConfigDict(extra="forbid")

    address: str
    error: str = ""
    results: list[PortResult] = Field(default_factory=list)


class ControlPlaneTarget(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    address: str


class ConnectedEvidence(EvidenceDocument):
    """The ``connected`` evidence. mode: live | off (before install) | none (nothing to look at) | error."""

    schema_: str = Field(default="acpcheck/connected/v1", alias="schema")
    reach: str | None = None  # spec.globalCluster.reach
    api: ApiTarget | None = None
    api_error: str = ""  # why the kubeconfig named no API server
    from_runner: TlsProbe | None = None  # the TLS handshake (certificate facts)
    runner_version: str = ""  # /version's gitVersion, read with the kubeconfig's credentials
    runner_version_error: str = ""
    control_plane: list[ControlPlaneTarget] = Field(default_factory=list)
    control_plane_source: str = ""  # plan | live Nodes
    control_plane_error: str = ""
    #: global control-plane node name -> its connections (empty: no global node was named, or reach is tunnel)
    from_global: dict[str, FromGlobalNode] = Field(default_factory=dict)
    #: ClusterEvidence.as_dict() of the global cluster's record of this cluster (None: no global kubeconfig)
    global_record: dict[str, Any] | None = None
    seconds: float = 0.0


def _api_target(plan: ClusterPlan) -> tuple[ApiTarget | None, str]:
    from acpcheck.transport.kube import KubeconfigError, kubeconfig_of, load_kubeconfig

    path, context = kubeconfig_of(plan)
    if path is None:
        return None, "no kubeconfig for the cluster (spec.kubeconfig or --kubeconfig)"
    try:
        kube = load_kubeconfig(path, context)
    except KubeconfigError as error:
        return None, str(error)
    parts = urlsplit(kube.server)
    if not parts.hostname:
        return None, "the kubeconfig's server has no host"
    return ApiTarget(server=kube.server, host=parts.hostname, port=parts.port or 443), ""


def _runner_version(context: GatherContext) -> tuple[str, str]:
    """``/version`` as the cluster's kubeconfig reads it (its credentials: an API server may refuse anonymous
    requests): the ``cluster`` source's reading when the run made one, else one request of our own."""
    from acpcheck.sources.cluster import ClusterEvidence, gather_cluster

    evidence = context.gathered.get("cluster")
    if not isinstance(evidence, ClusterEvidence):
        evidence = gather_cluster(context.plan, reads=())
    if evidence.failure is not None:
        return "", f"{evidence.failure[0]}: {evidence.failure[1]}"
    version = (evidence.version or {}).get("gitVersion")
    return (str(version), "") if version else ("", "GET /version gave no gitVersion")


def _node_address(node: dict[str, Any]) -> str | None:
    addresses = {a.get("type"): a.get("address") for a in node.get("addresses") or []}
    return addresses.get("InternalIP") or addresses.get("ExternalIP")


def _control_plane(context: GatherContext) -> tuple[list[ControlPlaneTarget], str, str]:
    """The cluster's control-plane nodes: the plan's, else the live ones (targets, source, error)."""
    from acpcheck.sources.cluster import NODES, ClusterEvidence, gather_cluster

    plan = context.plan
    if plan.control_plane:
        return (
            [
                ControlPlaneTarget(name=n.name, address=str(n.ipv4 if n.ipv4 is not None else n.ipv6))
                for n in plan.control_plane
            ],
            "plan",
            "",
        )
    evidence = context.gathered.get("cluster")
    if not isinstance(evidence, ClusterEvidence) or NODES.key not in evidence.reads:
        evidence = gather_cluster(plan, reads=(NODES,))
    if evidence.failure is not None:
        return [], "live Nodes", f"{evidence.failure[0]}: {evidence.failure[1]}"
    read = evidence.reads.get(NODES.key)
    if read is None or read.status != "ok":
        return [], "live Nodes", f"the Nodes could not be listed: {read.message if read else 'not read'}"
    targets = []
    for node in read.items or []:
        address = _node_address(node)
        if node.get("controlPlane") and address:
            targets.append(ControlPlaneTarget(name=str(node.get("name")), address=str(address)))
    return targets, "live Nodes", ""


def global_plan(plan: ClusterPlan) -> ClusterPlan:
    """The plan with the global cluster's control-plane nodes as its nodes (for the SSH pool: the
    plan's ``spec.ssh`` settings, each node's own override)."""
    assert plan.spec.global_cluster is not None
    nodes: list[Node] = list(plan.spec.global_cluster.control_plane)
    derived = plan.model_copy(update={"spec": plan.spec.model_copy(update={"nodes": nodes})})
    derived._source = plan._source
    return derived


def _from_global_node(pool: Any, node: Node, targets: list[tuple[str, str, int]], budget: float) -> FromGlobalNode:
    from acpcheck.sources.nodeside import Target, connector_command, connector_input, parse_connector
    from acpcheck.transport.errors import TransportError, unexpected

    result = FromGlobalNode(address=str(node.ssh_host or (node.ipv4 if node.ipv4 is not None else node.ipv6)))
    wire = [Target("tcp", host, port, "tcp") for _, host, port in targets]
    nonce = secrets.token_hex(8)
    try:
        run = pool.session(node).run(
            connector_command(CONNECT_TIMEOUT, 64, TRIES), timeout=budget, stdin=connector_input(wire)
        )
    except TransportError as error:
        result.error = f"{error.kind}: {error.message}"
        return result
    except Exception as error:  # noqa: BLE001 - one node's surprise is that node's ERROR
        result.error = f"probe: {unexpected(error)}"[:300]
        return result
    for (to, host, port), answer in zip(targets, parse_connector(run.stdout, len(wire), nonce), strict=True):
        outcome = "connected" if answer.reached else answer.kind
        result.results.append(PortResult(to=to, host=host, port=port, outcome=outcome, detail=answer.detail))
    return result


def _global_record(plan: ClusterPlan) -> dict[str, Any] | None:
    from acpcheck.sources.cluster import gather_cluster
    from acpcheck.transport.deadline import REQUEST_TIMEOUT_ENV

    connected = plan.spec.global_cluster
    if connected is None or not connected.kubeconfig:
        return None
    path = str(plan.relative_file(connected.kubeconfig))
    spec = plan.spec.model_copy(update={"kubeconfig": path, "kubeconfig_context": connected.kubeconfig_context})
    derived = plan.model_copy(update={"spec": spec})
    # Only this plan's global kubeconfig: the command line's --kubeconfig names the workload cluster's.
    environ = {key: value for key, value in os.environ.items() if key == REQUEST_TIMEOUT_ENV}
    evidence = gather_cluster(derived, reads=(record_read(plan.metadata.name),), environ=environ)
    evidence.target = f"global:{plan.metadata.name}"
    return evidence.as_dict()


class ConnectedSource(JsonEvidenceSource):
    name: ClassVar[str] = "connected"
    order: ClassVar[int] = 25
    phase: ClassVar[str] = "live"
    model = ConnectedEvidence
    what = "connected-cluster evidence"

    def idle_fields(self, plan: ClusterPlan) -> dict[str, Any]:
        connected = plan.spec.global_cluster
        return {"reach": connected.reach if connected is not None else None}

    def collect(self, context: GatherContext, reason: str | None) -> ConnectedEvidence:
        from acpcheck.sources.api_tls import tls_probe

        plan = context.plan
        connected = plan.spec.global_cluster
        if plan.spec.cluster.role != "workload":
            return ConnectedEvidence(mode="none", reason="the global cluster is not connected to another global")
        evidence = ConnectedEvidence(
            mode="live", reason=reason or "", reach=connected.reach if connected is not None else None
        )
        evidence.api, evidence.api_error = _api_target(plan)
        timeout = min(plan.spec.ssh.connect_timeout_seconds, 5.0)
        if evidence.api is not None:
            evidence.from_runner = tls_probe(
                evidence.api.host,
                evidence.api.port,
                proxy=None,
                timeout=timeout,
                server_name=evidence.api.host,
                version=False,
            )
            evidence.runner_version, evidence.runner_version_error = _runner_version(context)
        if connected is None:
            return evidence
        evidence.global_record = _global_record(plan)
        if connected.reach != "direct" or not connected.control_plane:
            return evidence
        evidence.control_plane, evidence.control_plane_source, evidence.control_plane_error = _control_plane(context)
        targets: list[tuple[str, str, int]] = []
        if evidence.api is not None:
            targets.append(("api", evidence.api.host, evidence.api.port))
        targets += [(cp.name, cp.address, port) for cp in evidence.control_plane for port in GLOBAL_PORTS]
        endpoint = plan.spec.endpoint.address
        if endpoint and plan.spec.cluster.type in ENDPOINT_TYPES and not plan.spec.endpoint.self_built_vip.enabled:
            targets += [(ENDPOINT, endpoint, port) for port in GLOBAL_PORTS]
        if not targets:
            return evidence
        self._probe_from_global(context, evidence, targets)
        return evidence

    @staticmethod
    def _probe_from_global(
        context: GatherContext, evidence: ConnectedEvidence, targets: list[tuple[str, str, int]]
    ) -> None:
        from acpcheck.transport.hostkeys import KnownHosts
        from acpcheck.transport.ssh import SshPool

        plan = global_plan(context.plan)
        budget = (len(targets) // 64 + 1) * (CONNECT_TIMEOUT + 1.5) * TRIES + 10
        pool = SshPool(plan, context.timeouts, KnownHosts(plan.spec.ssh.known_hosts_file))
        try:
            with ThreadPoolExecutor(max_workers=max(1, min(16, len(plan.spec.nodes)))) as executor:
                done = executor.map(
                    lambda node: (node.name, _from_global_node(pool, node, targets, budget)), plan.spec.nodes
                )
                for count, (name, result) in enumerate(done, 1):
                    evidence.from_global[name] = result
                    if context.progress is not None:
                        context.progress("connected", count, len(plan.spec.nodes), name, not result.error)
        finally:
            pool.close()

    def target(self, plan: ClusterPlan) -> str:
        return f"cluster:{plan.metadata.name}"
