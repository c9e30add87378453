"""Connected clusters: imported and registered clusters, seen from the runner and from the global cluster.

The docs (Clusters Overview, Connected Clusters; Managed Clusters overview; Register Cluster):

- **Import**: "Cluster information submitted to global cluster"; "global cluster must have
  network access to the cluster".
- **Register**: "Specific plugins installed on the target cluster"; "Reverse proxy establishes a
  secure tunnel" — "a reverse proxy service in the managed cluster, where the managed cluster
  actively initiates registration requests to the platform".
- **Tunnel-Based Connectivity**: "When the Global cluster cannot directly access a Workload
  cluster, a Tunnel Server (global side) and Tunnel Agent (workload side) establish secure
  communication."
- **Version Compatibility**: "When importing or connecting existing clusters, validate the
  Kubernetes version against the current ACP compatibility policy" (ACP 4.3: >=1.19.0 <1.35.0).
- **On-premises clusters**: "global can access ports 6443, 11780, and 11781 on all control plane
  nodes".

What is read (``acpcheck.sources.connected``): the cluster's API from the runner (TLS,
``/version``); TCP from every control-plane node of the global cluster (over SSH, the plan's
``spec.globalCluster.controlPlane``) to that API and to 6443/11780/11781 on every control-plane
node of the cluster; global's record of the cluster (``clusters.platform.tkestack.io``); the
cluster's ``/version`` (the ``cluster`` source).

What the docs do NOT say: which objects the register-mode "plugins" and reverse proxy, the Tunnel
Server and the Tunnel Agent are (no namespace, workload, CRD or label is named anywhere in the
docs). ACP-CONN-014 and ACP-CONN-015 are therefore MANUAL with the commands to run; they never
guess an object name.
"""

from __future__ import annotations

from dataclasses import dataclass

from acpcheck import Scope, Severity, When, check, fail, manual, skip, warn
from acpcheck.checks.support import PlannedInCluster
from acpcheck.checks.versions import judge_third_party_version
from acpcheck.constants import ACP_DOCS, ON_PREMISES, PLATFORM_URL_PAGE
from acpcheck.matrix import kubernetes_version
from acpcheck.model.plan import THIRD_PARTY, ClusterPlan
from acpcheck.sources.base import TargetUnavailable
from acpcheck.sources.cluster import ClusterEvidence, ClusterView
from acpcheck.sources.connected import (
    ENDPOINT,
    ENDPOINT_TYPES,
    GLOBAL_PORTS,
    ConnectedEvidence,
    PortResult,
    record_read,
)

CLUSTERS_OVERVIEW = f"{ACP_DOCS}/4.3/configure/clusters/overview.html"
MANAGED_OVERVIEW = f"{ACP_DOCS}/4.3/configure/clusters/managed/overview.html"
IMPORT_PAGE = f"{ACP_DOCS}/4.3/configure/clusters/managed/import/standard-kubernetes.html"
REGISTER_PAGE = f"{ACP_DOCS}/4.3/configure/clusters/managed/register.html"
SUPPORT_MATRIX = f"{ACP_DOCS}/4.3/overview/kubernetes-support-matrix.html"
#: TKEStack's Cluster type, which ACP's global keeps for every cluster (its phases: Running,
#: Initializing, Failed, Terminating).
TKESTACK_CLUSTER = "https://github.com/tkestack/tke/blob/master/api/platform/v1/types.go"

IMPORTED = frozenset({"imported"})
REGISTERED = frozenset({"registered"})


def _has_global_nodes(plan: ClusterPlan) -> bool:
    return plan.spec.global_cluster is not None and bool(plan.spec.global_cluster.control_plane)


def _has_global_kubeconfig(plan: ClusterPlan) -> bool:
    return plan.spec.global_cluster is not None and bool(plan.spec.global_cluster.kubeconfig)


def _through_tunnel(plan: ClusterPlan) -> bool:
    return plan.spec.global_cluster is not None and plan.spec.global_cluster.reach == "tunnel"


@dataclass(frozen=True)
class Live(PlannedInCluster):
    """Applies with a kubeconfig (and, with ``wants``, what the plan must give); said without an empty "gives"."""

    def describe(self) -> str:
        if self.wants is None:
            return ", ".join([When.describe(self), "with a kubeconfig"])
        return super().describe()


LIVE_THIRD_PARTY = Live(cluster_roles=frozenset({"workload"}), cluster_types=THIRD_PARTY)
LIVE_IMPORTED_WITH_GLOBAL_NODES = PlannedInCluster(
    cluster_roles=frozenset({"workload"}),
    cluster_types=IMPORTED,
    wants=_has_global_nodes,
    what="global control-plane nodes (spec.globalCluster.controlPlane)",
)
LIVE_WITH_GLOBAL_KUBECONFIG = PlannedInCluster(
    cluster_roles=frozenset({"workload"}),
    cluster_types=THIRD_PARTY,
    wants=_has_global_kubeconfig,
    what="global kubeconfig (spec.globalCluster.kubeconfig)",
)
LIVE_REGISTERED = Live(cluster_roles=frozenset({"workload"}), cluster_types=REGISTERED)
LIVE_TUNNEL = PlannedInCluster(
    cluster_roles=frozenset({"workload"}),
    wants=_through_tunnel,
    what="reach through the Tunnel Server and Agent (spec.globalCluster.reach: tunnel)",
)
#: The on-premises page states the ports for clusters ACP builds; an imported cluster is held to them too
#: (our reading: the import page says only "global cluster must have network access to the cluster").
LIVE_GLOBAL_PORTS = PlannedInCluster(
    cluster_roles=frozenset({"workload"}),
    cluster_types=frozenset({"on-premise", "immutable", "imported"}),
    wants=_has_global_nodes,
    what="global control-plane nodes (spec.globalCluster.controlPlane)",
)


def _live(connected: ConnectedEvidence) -> ConnectedEvidence:
    if connected.mode != "live":
        skip(connected.reason or f"no connected-cluster evidence ({connected.mode})")
    return connected


def _runner_answer(connected: ConnectedEvidence) -> tuple[bool, str]:
    """Whether the cluster's API completed TLS and answered /version from the runner, and how (for messages)."""
    probe = connected.from_runner
    if probe is None:
        return False, "not probed"
    if probe.error:
        return False, probe.error
    if connected.runner_version_error:
        return False, f"TLS, but /version: {connected.runner_version_error}"
    return True, f"TLS, /version {connected.runner_version}"


def _node_errors(connected: ConnectedEvidence) -> None:
    """ERROR when no global node ran its connector (nothing proven either way)."""
    if connected.from_global and all(result.error for result in connected.from_global.values()):
        detail = "; ".join(f"{name}: {result.error}" for name, result in connected.from_global.items())
        raise TargetUnavailable(
            "global:control-plane", "unreachable", f"no global control-plane node answered: {detail}"
        )


def _outcome(result: PortResult) -> str:
    return f"{result.outcome} ({result.detail})" if result.detail else result.outcome


@check(
    id="ACP-CONN-010",
    title="the connected cluster's API server answers from this runner (TLS, /version)",
    severity=Severity.HIGH,
    scope=Scope.CLUSTER,
    applies=LIVE_THIRD_PARTY,
    refs=[MANAGED_OVERVIEW, IMPORT_PAGE, REGISTER_PAGE],
    remediation=(
        "Make the API server named in the cluster's kubeconfig reachable (address, port, firewall) and serving TLS; "
        "check with: kubectl --kubeconfig <cluster kubeconfig> version"
    ),
)
def check_api_answers_from_runner(plan: ClusterPlan, connected: ConnectedEvidence) -> None:
    """An imported or registered cluster is taken on through its API server: the import form takes
    its endpoint, CA and token, and its "Check connectivity" must pass; the registration command is
    run with kubectl against it. The runner stands where the person importing it stands: the API
    server the kubeconfig names must complete a TLS handshake and answer ``GET /version`` with a
    Kubernetes version (any HTTP status but 200 is a FAIL)."""
    connected = _live(connected)
    if connected.api is None:
        fail(f"the cluster's kubeconfig names no usable API server: {connected.api_error}")
    ok, how = _runner_answer(connected)
    if not ok:
        fail(
            f"the cluster's API {connected.api.server} does not answer from this runner: {how}",
            server=connected.api.server,
        )


@check(
    id="ACP-CONN-011",
    title="every control-plane node of the global cluster reaches the imported cluster's API server",
    severity=Severity.HIGH,
    scope=Scope.CLUSTER,
    applies=LIVE_IMPORTED_WITH_GLOBAL_NODES,
    refs=[MANAGED_OVERVIEW, IMPORT_PAGE, CLUSTERS_OVERVIEW, PLATFORM_URL_PAGE],
    remediation=(
        "Open the path from the global cluster's control-plane nodes to the imported cluster's API server (routes, "
        "firewalls, security groups), or give the cluster an address global can reach; where global can never "
        "reach it, register the cluster instead (its reverse tunnel needs no inbound path) or use the Tunnel "
        "Server/Agent, and set spec.globalCluster.reach: tunnel. Check from a global node: "
        "curl -k https://<api host>:<port>/version"
    ),
)
def check_global_reaches_api(plan: ClusterPlan, connected: ConnectedEvidence) -> None:
    """Importing "submits cluster information to the global cluster" and requires that the "global
    cluster must have network access to the cluster" (Managed Clusters overview): ACP's controllers
    on global talk to the imported cluster's API server. The runner reaching the API proves nothing
    about that path, so this check logs in to every control-plane node of global
    (``spec.globalCluster.controlPlane``, over SSH) and opens a TCP connection from there to the host
    and port the cluster's kubeconfig names (the connectivity proof's connector, TCP mode: an
    accepted connection is an answer). Any global node that cannot is a FAIL, and the message says
    whether the runner itself reached the API (the usual trap: it works from the admin's laptop).
    With ``spec.globalCluster.reach: tunnel`` the plan says global cannot reach the cluster and uses
    the tunnel: SKIP (ACP-CONN-015)."""
    connected = _live(connected)
    if connected.reach == "tunnel":
        skip("not applicable: the plan says global reaches this cluster only through the tunnel (ACP-CONN-015)")
    if connected.api is None:
        skip(f"the cluster's kubeconfig names no usable API server: {connected.api_error} (ACP-CONN-010)")
    _node_errors(connected)
    blocked, unproven = [], []
    for name, result in connected.from_global.items():
        if result.error:
            unproven.append(f"{name}: {result.error}")
            continue
        answer = next((r for r in result.results if r.to == "api"), None)
        if answer is None:
            unproven.append(f"{name}: not probed")
        elif answer.outcome == "notool":
            unproven.append(f"{name}: {_outcome(answer)}")
        elif answer.outcome != "connected":
            blocked.append(f"{name} ({result.address}): {_outcome(answer)}")
    target = f"{connected.api.host}:{connected.api.port}"
    if blocked:
        ok, how = _runner_answer(connected)
        runner = f"answers from this runner ({how})" if ok else f"does not answer from this runner either ({how})"
        fail(
            f"the imported cluster's API {target} {runner} but is not reachable from global control-plane node "
            f"{', '.join(blocked)}: ACP reaches an imported cluster from the global cluster, which must have network "
            "access to it",
            server=connected.api.server,
            blocked=blocked,
            reached_from_runner=ok,
        )
    if unproven:
        manual(
            f"not proven from every global control-plane node: {'; '.join(unproven)}. From each, run: "
            f"curl -k https://{target}/version"
        )


@check(
    id="ACP-CONN-012",
    title="the connected cluster's live Kubernetes version is accepted by the target ACP",
    severity=Severity.HIGH,
    scope=Scope.CLUSTER,
    applies=LIVE_THIRD_PARTY,
    refs=[CLUSTERS_OVERVIEW, SUPPORT_MATRIX],
    remediation=(
        "Upgrade the cluster's Kubernetes (with its own distribution's tools) into the range the target ACP accepts "
        "for third-party clusters before importing or registering it; keep spec.cluster.kubernetesVersion equal to "
        "what kubectl version reports."
    ),
)
def check_live_kubernetes_accepted(plan: ClusterPlan, cluster: ClusterView) -> None:
    """ACP-VER-003 judges the version typed into the plan; this judges the version the cluster's
    API server reports (``/version`` gitVersion), by the same rule and data (ACP-VER-003's
    ``judge_third_party_version``): outside the onboarding range for
    third-party clusters (ACP 4.3: >=1.19.0 <1.35.0) is a FAIL, inside it but outside the validated
    list a WARN; for ACP 4.0-4.2, which publish no such range, the compatible list applies. A plan
    whose typed version differs from the live one is a WARN (the plan-only check judged the wrong
    version)."""
    live = cluster.server_version
    if not live:
        skip("the cluster's /version gave no gitVersion")
    judge_third_party_version(
        plan, live, prefix=f"the cluster's API server reports Kubernetes {live} (/version): ", live=live
    )
    typed = plan.spec.cluster.kubernetes_version
    if kubernetes_version(typed).release != kubernetes_version(live).release:
        at = plan.where("spec", "cluster", "kubernetesVersion")
        warn(
            f"the plan says Kubernetes {typed} (spec.cluster.kubernetesVersion, {at}) "
            f"but the cluster reports {live}: ACP-VER-003 judged the plan's",
            live=live,
            planned=typed,
        )


@check(
    id="ACP-CONN-013",
    title="the global cluster records the connected cluster, in phase Running",
    severity=Severity.HIGH,
    scope=Scope.CLUSTER,
    applies=LIVE_WITH_GLOBAL_KUBECONFIG,
    refs=[
        MANAGED_OVERVIEW,
        REGISTER_PAGE,
        f"{ACP_DOCS}/4.3/configure/clusters/how-to/update_public_repository_credentials.html",
        TKESTACK_CLUSTER,
    ],
    remediation=(
        "Import or register the cluster under the plan's name (metadata.name); for a registered cluster run the "
        "registration command (valid 24 hours) on the cluster, and check the cluster's status on global: "
        "kubectl get clusters.platform.tkestack.io <name> -o jsonpath='{.status.phase}'"
    ),
)
def check_global_records_cluster(plan: ClusterPlan, connected: ConnectedEvidence) -> None:
    """ACP's global cluster keeps every cluster it manages as a TKEStack Cluster
    (``clusters.platform.tkestack.io``, cluster-scoped; the ACP docs tell to list them with
    ``kubectl get cluster.platform.tkestack.io``), whose ``status.phase`` is Running in the normal
    state (TKEStack: Running, Initializing, Failed, Terminating). A registered cluster appears there
    once its registration command ran and its reverse tunnel reached global; an imported one once
    global reached it. This reads the record named like the plan (``metadata.name``) through
    ``spec.globalCluster.kubeconfig``: absent, or in any phase but Running, is a FAIL. A global
    cluster that does not serve the type at all is not an ACP global cluster: FAIL."""
    connected = _live(connected)
    if connected.global_record is None:
        skip("not applicable: no global kubeconfig (spec.globalCluster.kubeconfig)")
    view = ClusterView(ClusterEvidence.from_dict(connected.global_record))
    if view.evidence.failure is not None:
        raise TargetUnavailable(view.target, *view.evidence.failure)
    read = record_read(plan.metadata.name)
    if not view.served(read):
        fail(
            f"the global cluster ({view.server}) serves no {read.qualified}: the kubeconfig in "
            "spec.globalCluster.kubeconfig is not an ACP global cluster's"
        )
    record = view.get(read)
    if record is None:
        fail(
            f"the global cluster ({view.server}) has no {read.qualified} {plan.metadata.name!r}: the cluster is not "
            f"{'registered' if plan.spec.cluster.type == 'registered' else 'imported'} (under this name) yet",
            cluster=plan.metadata.name,
        )
    phase = record.get("phase")
    if phase != "Running":
        waiting = (
            " (a registered cluster waits for its registration command and reverse tunnel)"
            if plan.spec.cluster.type == "registered"
            else ""
        )
        fail(
            f"the global cluster records {plan.metadata.name!r} in phase {phase or 'none'} (not Running): global is "
            f"not connected to it{waiting}",
            phase=phase,
            cluster=plan.metadata.name,
        )


@check(
    id="ACP-CONN-014",
    title="a registered cluster runs the register-mode components and its reverse tunnel is connected",
    severity=Severity.HIGH,
    scope=Scope.CLUSTER,
    applies=LIVE_REGISTERED,
    refs=[MANAGED_OVERVIEW, REGISTER_PAGE],
    remediation=(
        "Run the registration command (Clusters > Clusters > Managed Clusters > View Registration Command; valid 24 "
        "hours) on the cluster again, and make sure the cluster can reach the platform address."
    ),
)
def check_register_components(plan: ClusterPlan, connected: ConnectedEvidence) -> None:
    """Registering "deploys a reverse proxy service in the managed cluster, where the managed cluster
    actively initiates registration requests to the platform" (Register Cluster), with "specific
    plugins installed on the target cluster" (Managed Clusters overview). The docs name none of
    these components' objects (no namespace, workload, label or CRD), and the registration command
    is generated per cluster by the platform: acpcheck cannot tell them from the cluster's other
    workloads without inventing names. MANUAL with the commands; the global side of the connection
    is checked by ACP-CONN-013 (global's record of the cluster must be Running)."""
    _live(connected)
    name = plan.metadata.name
    manual(
        "the docs name no object of the register-mode components or the reverse proxy, so they cannot be recognised "
        "from the API. On the registered cluster, list what the registration command created and confirm it is "
        "Running: kubectl get deployments,daemonsets,pods -A -o wide (compare with the manifest the registration "
        f"command applied); on global, confirm the tunnel connected: kubectl get clusters.platform.tkestack.io {name} "
        "-o jsonpath='{.status.phase}' (Running; ACP-CONN-013 reads it when spec.globalCluster.kubeconfig is given)"
    )


@check(
    id="ACP-CONN-015",
    title="where global cannot reach the cluster: the Tunnel Server (global) and the Tunnel Agent are connected",
    severity=Severity.HIGH,
    scope=Scope.CLUSTER,
    applies=LIVE_TUNNEL,
    refs=[CLUSTERS_OVERVIEW],
    remediation=(
        "Deploy the Tunnel Server on the global cluster and the Tunnel Agent on the workload cluster, and let the "
        "agent reach the server; or give global direct access to the cluster (spec.globalCluster.reach: direct)."
    ),
)
def check_tunnel_components(plan: ClusterPlan, connected: ConnectedEvidence) -> None:
    """ "When the Global cluster cannot directly access a Workload cluster, a Tunnel Server (global
    side) and Tunnel Agent (workload side) establish secure communication" (Clusters Overview,
    Tunnel-Based Connectivity). The docs give no object by which either is recognised (no
    namespace, workload, CRD or label): MANUAL with the commands. Global's record of the cluster
    (ACP-CONN-013, Running) is the only object that shows the connection works."""
    _live(connected)
    manual(
        "the docs name the Tunnel Server (global) and the Tunnel Agent (workload) but no object to recognise them by. "
        "On global: kubectl get deployments,daemonsets,pods -A -o wide and confirm the Tunnel Server runs; on this "
        "cluster: the same, for the Tunnel Agent; then on global: kubectl get clusters.platform.tkestack.io "
        f"{plan.metadata.name} -o jsonpath='{{.status.phase}}' must say Running (ACP-CONN-013)"
    )


@check(
    id="ACP-CONN-016",
    title="every global control-plane node reaches 6443, 11780 and 11781 on every control-plane node of the cluster",
    severity=Severity.HIGH,
    scope=Scope.CLUSTER,
    applies=LIVE_GLOBAL_PORTS,
    refs=[ON_PREMISES, MANAGED_OVERVIEW],
    remediation=(
        "Open 6443, 11780 and 11781 on every control-plane node of the cluster to the global cluster's control-plane "
        "nodes (or provide External Access); check from a global node: nc -zv <node> 6443 11780 11781"
    ),
)
def check_global_reaches_control_plane_ports(plan: ClusterPlan, connected: ConnectedEvidence) -> None:
    """The on-premises page: "Network requirements must ensure global can access ports 6443, 11780
    and 11781 on all control plane nodes" (6443 the API server; 11780/11781 the platform ALB, through
    which global reads the cluster's logs and metrics). After install, from every control-plane
    node of global (over SSH), a TCP connection to each of these ports on each control-plane node of
    the cluster (the plan's, else the live Nodes with a control-plane role label, InternalIP first)
    must be accepted. An imported cluster is held to the same ports: that is our reading (its page
    says only that global must have network access to the cluster)."""
    connected = _live(connected)
    if connected.reach == "tunnel":
        skip("not applicable: the plan says global reaches this cluster only through the tunnel (ACP-CONN-015)")
    if connected.control_plane_error:
        raise TargetUnavailable(f"cluster:{plan.metadata.name}", "nodes", connected.control_plane_error)
    if not connected.control_plane:
        skip(f"no control-plane node found ({connected.control_plane_source or 'plan'}): nothing to reach")
    _node_errors(connected)
    blocked: list[str] = []
    unproven: list[str] = []
    for name, result in connected.from_global.items():
        if result.error:
            unproven.append(f"{name}: {result.error}")
            continue
        wanted = [r for r in result.results if r.to not in ("api", ENDPOINT) and r.port in GLOBAL_PORTS]
        bad = [f"{r.to} {r.host}:{r.port} {_outcome(r)}" for r in wanted if r.outcome not in ("connected", "notool")]
        notool = [r for r in wanted if r.outcome == "notool"]
        if bad:
            blocked.append(f"{name} cannot reach " + ", ".join(bad))
        if notool:
            unproven.append(f"{name}: {_outcome(notool[0])}")
    if blocked:
        fail("; ".join(blocked), blocked=blocked, source=connected.control_plane_source)
    if unproven:
        manual(
            f"not proven from every global control-plane node: {'; '.join(unproven)}. From each, run: "
            "nc -zv <control-plane node> 6443 11780 11781"
        )


LIVE_GLOBAL_TO_ENDPOINT = PlannedInCluster(
    cluster_roles=frozenset({"workload"}),
    cluster_types=ENDPOINT_TYPES,
    self_built_vip=False,
    wants=lambda plan: _has_global_nodes(plan) and bool(plan.spec.endpoint.address),
    what="global control-plane nodes (spec.globalCluster.controlPlane) and an endpoint (spec.endpoint.address)",
)


@check(
    id="ACP-CONN-017",
    title="every global control-plane node reaches the cluster's load balancer on 6443, 11780 and 11781",
    severity=Severity.HIGH,
    scope=Scope.CLUSTER,
    applies=LIVE_GLOBAL_TO_ENDPOINT,
    refs=[ON_PREMISES],
    remediation=(
        "Make the load balancer listen on 6443, 11780 and 11781 and forward them to every control-plane node, and "
        "let the global cluster's control-plane nodes reach it; check from a global node: "
        "nc -zv <endpoint> 6443 11780 11781"
    ),
)
def check_global_reaches_endpoint_ports(plan: ClusterPlan, connected: ConnectedEvidence) -> None:
    """The on-premises page: "The load balancer must correctly forward traffic to ports 6443, 11780,
    and 11781 on all control plane nodes in the cluster", and global must reach those ports. The LB
    proof (ACP-LB-001..003) shows before install which node answers behind each port; after install
    the live LB checks (ACP-LB-006..010) probe 6443 only, from the runner. This check covers the
    three ports after install from where ACP uses them: from every control-plane node of global
    (over SSH), a TCP connection to each port of ``spec.endpoint.address`` must be accepted. Which
    node accepted it is not seen here (the platform ALB answers HTTP, not acpcheck's hello)."""
    connected = _live(connected)
    if connected.reach == "tunnel":
        skip("not applicable: the plan says global reaches this cluster only through the tunnel (ACP-CONN-015)")
    _node_errors(connected)
    blocked: list[str] = []
    unproven: list[str] = []
    for name, result in connected.from_global.items():
        if result.error:
            unproven.append(f"{name}: {result.error}")
            continue
        wanted = [r for r in result.results if r.to == ENDPOINT]
        bad = [f"{r.port} {_outcome(r)}" for r in wanted if r.outcome not in ("connected", "notool")]
        if bad:
            blocked.append(f"{name} cannot reach the endpoint {plan.spec.endpoint.address} on " + ", ".join(bad))
        if not wanted or any(r.outcome == "notool" for r in wanted):
            unproven.append(f"{name}: not probed" if not wanted else f"{name}: {_outcome(wanted[0])}")
    if blocked:
        fail("; ".join(blocked), blocked=blocked)
    if unproven:
        manual(
            f"not proven from every global control-plane node: {'; '.join(unproven)}. From each, run: "
            f"nc -zv {plan.spec.endpoint.address} 6443 11780 11781"
        )
