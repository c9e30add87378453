"""Fleets of **test API servers** (the project's stand-in for kube-apiserver, ``acpcheck_lab.apiserver``):
one server per cluster, each with its own CA and TLS, its own ``/version`` (the cluster's live
Kubernetes version), its nodes and objects, plus one kubeconfig per cluster and a ``kind: Fleet``
file naming them (docs/interfaces.md, the fleet file). What ``acpcheck run --fleet`` is tested and
benchmarked against.

A fleet is described as data (``FleetSpec`` of ``ClusterSpec`` of ``NodeSpec``; the issue's fleets:
``three_cluster_fleet()``, ``api_down_fleet()``, ``scale_fleet(n)``) and started with::

    with TestFleet(three_cluster_fleet(), directory, host="127.0.0.1") as fleet:
        subprocess.run(["acpcheck", "run", "--fleet", str(fleet.fleet_file), ...])
        fleet.stop_cluster("east")  # its port now refuses connections

The servers run in ``processes`` child processes (``python -m acpcheck_lab.fleet serve SPEC``), each
serving its share of the clusters on one port per cluster: the tests' and the runner's own CPU stay
apart from the servers', and a child whose parent is gone sees its standard input close and
exits (no server outlives the fleet, even when its owner is killed). ``stop()`` (or leaving the
``with``) ends every child, on error too.

Layout of the fleet directory::

    fleet.yaml                 kind: Fleet (kubeconfigs and plans by relative path)
    kube/<cluster>.yaml        the cluster's kubeconfig (mode 0600): a token, or a client certificate
    plans/<cluster>.yaml       the cluster's plan, when its spec has one
    servers/<cluster>/         the server's side (CA, keys and users: mode 0600; see apiserver.init_server_dir)
    servers/serve-<i>.json     what child i serves; servers/serve-<i>.log its log
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Self

import yaml

from acpcheck_lab.apiserver import (
    DEFAULT_VERSION,
    NAME,
    ServerDir,
    TestApiServer,
    init_server_dir,
    shipped_crds,
)

#: The user each cluster's kubeconfig authenticates as, per ``auth``: a reader by bearer token
#: (get/list on everything, as acpcheck needs no more), or an administrator by client certificate.
READER: dict[str, Any] = {
    "name": "acpcheck-reader",
    "auth": "token",
    "rules": [{"verbs": ["get", "list"], "apiGroups": ["*"], "resources": ["*"]}],
}
ADMIN: dict[str, Any] = {"name": "admin", "groups": ["system:masters"], "auth": "client-certificate"}
AUTH_USERS: dict[str, dict[str, Any]] = {"token": READER, "client-certificate": ADMIN}

STARTUP_TIMEOUT = 120.0  # seconds for every child to report its clusters served (50 x 3000 objects: a few)
STOP_TIMEOUT = 10.0


# ---------------------------------------------------------------------------
# What a fleet is made of (plain data)


@dataclass(frozen=True)
class NodeSpec:
    """A node as its kubelet reports it in the node's status."""

    name: str
    kubelet: str = f"v{DEFAULT_VERSION}"
    runtime: str = "containerd://2.2.1"
    ready: str | None = "True"  # the Ready condition's status; None: no Ready condition at all


@dataclass(frozen=True)
class ClusterSpec:
    """One cluster of a fleet, served by one test API server."""

    name: str
    role: str = "workload"  # global | workload (a fleet entry's role)
    type: str = "on-premise"
    version: str = DEFAULT_VERSION  # what its /version serves: the cluster's live Kubernetes version
    nodes: tuple[NodeSpec, ...] = ()
    #: Objects seeded as a controller would have left them (status included), CRDs among them.
    objects: tuple[dict[str, Any], ...] = ()
    #: Ordinary objects on top, for scale: namespaces, config maps, cron jobs, daemon sets, approved CSRs.
    population: int = 0
    upgrade_from: str | None = None  # the fleet entry's upgradeFrom
    plan: dict[str, Any] | None = None  # a plan document: written to plans/<name>.yaml and named by the entry
    down: bool = False  # its API is down: the kubeconfig names a port that refuses connections


@dataclass(frozen=True)
class FleetSpec:
    name: str
    clusters: tuple[ClusterSpec, ...]
    target: str = "4.3"  # spec.acp.version: the target ACP version
    upgrade_from: str | None = "4.2"
    discover: bool = False

    def __post_init__(self) -> None:
        names = [cluster.name for cluster in self.clusters]
        if len(set(names)) != len(names):
            raise ValueError(f"fleet {self.name}: cluster names repeat: {names}")


# ---------------------------------------------------------------------------
# Objects, as the real API server would serve them


def node_object(node: NodeSpec) -> dict[str, Any]:
    kubelet = node.kubelet if node.kubelet.startswith("v") else f"v{node.kubelet}"
    status: dict[str, Any] = {
        "addresses": [{"type": "InternalIP", "address": "192.0.2.11"}, {"type": "Hostname", "address": node.name}],
        # Every field of NodeSystemInfo: the official client refuses a Node without one.
        "nodeInfo": {
            "kubeletVersion": kubelet,
            "kubeProxyVersion": kubelet,
            "containerRuntimeVersion": node.runtime,
            "osImage": "Ubuntu 22.04.4 LTS",
            "kernelVersion": "5.15.0-56-generic",
            "operatingSystem": "linux",
            "architecture": "amd64",
            "machineID": "0" * 32,
            "systemUUID": "0" * 32,
            "bootID": "0" * 32,
        },
    }
    if node.ready is not None:
        reason = "KubeletReady" if node.ready == "True" else "KubeletNotReady"
        status["conditions"] = [{"type": "Ready", "status": node.ready, "reason": reason}]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": node.name, "labels": {"kubernetes.io/hostname": node.name}},
        "spec": {"providerID": f"acp://{node.name}"},
        "status": status,
    }


def nodes(prefix: str, count: int, **fields: Any) -> tuple[NodeSpec, ...]:
    """``count`` nodes named ``<prefix>-1`` … with the same ``fields``."""
    return tuple(NodeSpec(f"{prefix}-{index}", **fields) for index in range(1, count + 1))


def daemonset(name: str, image: str, namespace: str = "kube-system") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": image}]},
            },
        },
    }


def cronjob(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {
            "schedule": "0 * * * *",
            "jobTemplate": {
                "spec": {
                    "template": {
                        "spec": {"restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "busybox"}]}
                    }
                }
            },
        },
    }


#: A CSR's request (base64 of a short PEM-looking text): no key material, never meant to be signed.
CSR_REQUEST = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURSBSRVFVRVNULS0tLS0KYWNwY2hlY2stZmxlZXQKLS0tLS1FTkQtLS0tLQo="


def csr(name: str, approved: bool = True) -> dict[str, Any]:
    return {
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {"name": name},
        "spec": {"signerName": "kubernetes.io/kubelet-serving", "request": CSR_REQUEST, "usages": ["server auth"]},
        "status": {"conditions": [{"type": "Approved", "status": "True"}]} if approved else {},
    }


def etcd_backup(name: str = "etcd-backup-default") -> dict[str, Any]:
    return {
        "apiVersion": "enhancement.cluster.alauda.io/v1",
        "kind": "EtcdBackupConfiguration",
        "metadata": {"name": name},
        "spec": {"schedule": "0 0 * * *", "paused": False, "localStorage": {"path": "/cpaas/backup", "ttl": "7776000"}},
    }


#: The ACP 4.3 preflight checks a healthy cluster's ClusterVersionShadow reports as passed.
PREFLIGHT_CHECKS = ("VersionUpgradePath", "KubernetesVersionSupported", "DockerRuntimeUnsupported")


def cluster_version_shadow(
    current: str = "4.2.5", desired: str = "4.3.0", failed: Iterable[str] = ()
) -> dict[str, Any]:
    """The ClusterVersionShadow ``global`` of ``cpaas-system`` with the 4.3 preflight's results."""
    failing = set(failed)
    checks = [
        {
            "name": name,
            "policy": "Block",
            "state": "Failed" if name in failing else "Passed",
            "reason": "Blocked" if name in failing else "",
            "message": "",
        }
        for name in PREFLIGHT_CHECKS
    ]
    return {
        "apiVersion": "config.cpaas.io/v1",
        "kind": "ClusterVersionShadow",
        "metadata": {"name": "global", "namespace": "cpaas-system"},
        "spec": {"desiredUpdate": {"version": desired}},
        "status": {
            "conditions": [{"type": "PreflightReady", "status": "True"}],
            "current": {"version": current},
            "preflight": {"observedAt": "2026-11-30T08:00:00Z", "checks": checks},
        },
    }


def platform_cluster(name: str, version: str, cluster_type: str = "Baremetal") -> dict[str, Any]:
    """A platform.tkestack.io Cluster (ACP's registry on global): a workload cluster and its Kubernetes version."""
    return {
        "apiVersion": "platform.tkestack.io/v1",
        "kind": "Cluster",
        "metadata": {"name": name},
        "spec": {"type": cluster_type, "version": version},
        "status": {"phase": "Running", "version": version},
    }


def removed_api_crd(group: str, version: str, plural: str, kind: str, scope: str = "Cluster") -> dict[str, Any]:
    """An API version Kubernetes removed, served as the real API server served it before (a CRD here)."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "names": {"kind": kind, "plural": plural, "singular": kind.lower(), "listKind": f"{kind}List"},
            "scope": scope,
            "versions": [
                {
                    "name": version,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                }
            ],
        },
    }


def healthy_objects() -> tuple[dict[str, Any], ...]:
    """What a 4.2 cluster ready for 4.3 shows besides its nodes: Kube-OVN (not Flannel), only the default
    etcd backup, no pending CSR, a 4.3 preflight that passed."""
    return (
        daemonset("kube-ovn-cni", "registry.alauda.cn:60080/acp/kube-ovn:v4.3.3"),
        etcd_backup(),
        csr("csr-approved"),
        cluster_version_shadow(),
    )


#: How ``population`` objects are shared out: per namespace, config maps and cron jobs; one daemon set
#: per 10 namespaces; approved CSRs (a tenth of the total).
_PER_NAMESPACE = 100


def population(count: int, cluster: str) -> list[dict[str, Any]]:
    """``count`` ordinary objects of a busy cluster (deterministic), the kinds an upgrade run lists among them."""
    objects: list[dict[str, Any]] = []
    csrs = count // 10
    for index in range(csrs):
        objects.append(csr(f"csr-{cluster}-{index}"))
    namespace_index = 0
    while len(objects) < count:
        namespace = f"team-{namespace_index}"
        objects.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        if namespace_index % 10 == 0:
            objects.append(daemonset(f"agent-{namespace_index}", "registry.example/agent:1.0", namespace))
        for job in range(3):
            objects.append(cronjob(f"report-{job}", namespace))
        for item in range(min(_PER_NAMESPACE, count - len(objects))):
            objects.append(
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": f"settings-{item}", "namespace": namespace, "labels": {"team": namespace}},
                    "data": {"mode": "standard", "replicas": str(item % 5 + 1)},
                }
            )
        namespace_index += 1
    return objects[:count]


# ---------------------------------------------------------------------------
# The fleets

#: ACP 4.3's Kubernetes (docs/acp-facts §4.3): the live version of a cluster that is ready.
K8S_OF_4_3 = "1.34.5"
#: ACP 4.2's: the version a 4.2 cluster runs before its upgrade.
K8S_OF_4_2 = "1.33.7"
#: What ``east`` of the three-cluster fleet really runs (its plan claims K8S_OF_4_2).
EAST_LIVE = "1.31.14"


def _plan(name: str, role: str, kubernetes_version: str, upgrade_from: str = "4.2") -> dict[str, Any]:
    """A plan for the fleet entry ``name`` (its kubeconfig comes from the fleet entry): the plan checks
    and the comparison of its declared Kubernetes version with the live one. It lists no nodes (the
    test API servers have no machines behind them), so the checks over SSH do not apply."""
    return {
        "apiVersion": "acpcheck/v1",
        "kind": "ClusterPlan",
        "metadata": {"name": name},
        "spec": {
            "acp": {"version": "4.3", "upgradeFrom": upgrade_from},
            "cluster": {
                "role": role,
                "type": "on-premise",
                "kubernetesVersion": kubernetes_version,
                "containerRuntime": "containerd",
            },
            "network": {
                "plugin": "kube-ovn",
                "clusterCIDR": "10.3.0.0/16",
                "serviceCIDR": "10.4.0.0/16",
                "kubeOvn": {"transmitMode": "overlay", "joinCIDR": "100.64.0.0/16"},
                "nic": "eth0",
            },
        },
    }


def three_cluster_fleet() -> FleetSpec:
    """The issue's fleet (item 7), on ACP 4.2 going to 4.3 (Kubernetes 1.34):

    - ``global``: ready. Live 1.33 (inside 4.3's range), nodes Ready on containerd, Kube-OVN, the default
      etcd backup only, a passed preflight; its registry lists ``east`` and ``west`` with their versions.
    - ``east`` (workload): blocked by its live Kubernetes version: it serves 1.31 while its plan file
      claims 1.33 (ACP-UPG-010). 1.31 is inside 4.3's range (1.31-1.34), so the fleet rule that holds
      ``global`` back until every workload cluster is in range (ACP-UPG-030) passes: with a version
      outside it ``global`` would be blocked too, and rightly.
    - ``west`` (workload): blocked by a removed API still in use: it serves
      flowcontrol.apiserver.k8s.io/v1beta3 flowschemas (removed in Kubernetes 1.32, so gone in 1.34,
      acpcheck/matrix/removed_apis.yaml) and stores one FlowSchema that is no API server's own.
    """
    healthy = healthy_objects()
    flowcontrol = removed_api_crd("flowcontrol.apiserver.k8s.io", "v1beta3", "flowschemas", "FlowSchema")
    flowschema = {
        "apiVersion": "flowcontrol.apiserver.k8s.io/v1beta3",
        "kind": "FlowSchema",
        "metadata": {"name": "legacy-batch-jobs"},
        "spec": {"priorityLevelConfiguration": {"name": "workload-low"}, "matchingPrecedence": 1000},
    }
    return FleetSpec(
        name="prod",
        clusters=(
            ClusterSpec(
                "global",
                role="global",
                version=K8S_OF_4_2,
                nodes=nodes("global-m", 3, kubelet=f"v{K8S_OF_4_2}"),
                objects=(
                    *healthy,
                    platform_cluster("global", K8S_OF_4_2),
                    platform_cluster("east", EAST_LIVE),
                    platform_cluster("west", K8S_OF_4_2),
                ),
            ),
            ClusterSpec(
                "east",
                version=EAST_LIVE,
                nodes=nodes("east-w", 2, kubelet=f"v{EAST_LIVE}"),
                objects=healthy,
                plan=_plan("east", "workload", "1.33.7"),
            ),
            ClusterSpec(
                "west",
                version=K8S_OF_4_2,
                nodes=nodes("west-w", 2, kubelet=f"v{K8S_OF_4_2}"),
                objects=(*healthy, flowcontrol, flowschema),
            ),
        ),
    )


def api_down_fleet() -> FleetSpec:
    """The three-cluster fleet with ``west``'s API down (its port closed): ERROR for it, verdicts for the rest."""
    spec = three_cluster_fleet()
    return replace(spec, clusters=tuple(replace(c, down=True) if c.name == "west" else c for c in spec.clusters))


def scale_fleet(count: int, nodes_per_cluster: int = 20, objects_per_cluster: int = 3000) -> FleetSpec:
    """``count`` healthy clusters (one global, the rest workload), each with ``nodes_per_cluster`` Ready
    nodes and ``objects_per_cluster`` ordinary objects: the benchmark's fleet."""
    names = ["global", *(f"wl-{index:03d}" for index in range(1, count))]
    registry = tuple(platform_cluster(name, K8S_OF_4_2) for name in names)  # global lists every cluster
    clusters = [
        ClusterSpec(
            name,
            role="global" if name == "global" else "workload",
            version=K8S_OF_4_2,
            nodes=nodes(f"{name}-n", nodes_per_cluster, kubelet=f"v{K8S_OF_4_2}"),
            objects=(*healthy_objects(), *(registry if name == "global" else ())),
            population=objects_per_cluster,
        )
        for name in names
    ]
    return FleetSpec(f"scale-{count}", tuple(clusters))


# ---------------------------------------------------------------------------
# Starting and stopping


@dataclass
class RunningCluster:
    spec: ClusterSpec
    server_dir: ServerDir
    kubeconfig: Path  # kube/<name>.yaml, mode 0600
    url: str = ""
    child: int = 0  # which child process serves it
    served: bool = False


class FleetError(RuntimeError):
    """A fleet that could not start (a child's own message, and its log's path)."""


@dataclass
class _Child:
    process: subprocess.Popen[str]
    log: Path
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: The child's answer lines, read by a thread of their own (None once its output ends).
    lines: queue.Queue[str | None] = field(default_factory=queue.Queue)

    def __post_init__(self) -> None:
        threading.Thread(target=self._read, name=f"{NAME} fleet reader", daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        with self.process.stdout:
            for line in self.process.stdout:
                self.lines.put(line.strip())
        self.lines.put(None)


class TestFleet:
    """A fleet of test API servers and the files that name them. ``start()`` (or ``with``) serves every
    cluster; ``stop()`` ends every server process; ``stop_cluster(name)`` closes one cluster's port."""

    __test__ = False  # not a pytest test class, whatever its name

    def __init__(
        self,
        spec: FleetSpec,
        directory: Path | str,
        *,
        host: str = "127.0.0.1",
        auth: str = "token",
        processes: int = 1,
        startup_timeout: float = STARTUP_TIMEOUT,
    ):
        if auth not in AUTH_USERS:
            raise ValueError(f"auth must be one of {', '.join(AUTH_USERS)}, not {auth!r}")
        self.spec = spec
        self.directory = Path(directory)
        self.host = host
        self.auth = auth
        self.processes = max(1, min(processes, len(spec.clusters)))
        self.startup_timeout = startup_timeout
        self.fleet_file = self.directory / "fleet.yaml"
        self.clusters: dict[str, RunningCluster] = {}
        self._children: list[_Child] = []
        #: Seconds the last ``start()`` took: certificates and files, then the children serving.
        self.timings: dict[str, float] = {}

    # -- life cycle -------------------------------------------------------------

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Self:
        try:
            began = time.monotonic()
            self._prepare()
            prepared = time.monotonic()
            self._spawn()
            self._await_ready()
            self._write_kubeconfigs()
            self._write_fleet_file()
            for cluster in self.clusters.values():
                if cluster.spec.down:
                    self.stop_cluster(cluster.spec.name)
            self.timings = {"files": prepared - began, "serve": time.monotonic() - prepared}
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """End every child: standard input closed (it stops its servers and exits), then SIGTERM, then SIGKILL."""
        children, self._children = self._children, []
        for child in children:
            if child.process.stdin is not None:
                try:
                    child.process.stdin.close()
                except OSError:
                    pass
        for child in children:
            for sig in (None, signal.SIGTERM, signal.SIGKILL):
                if sig is not None and child.process.poll() is None:
                    child.process.send_signal(sig)
                try:
                    child.process.wait(STOP_TIMEOUT)
                    break
                except subprocess.TimeoutExpired:
                    continue
        for cluster in self.clusters.values():
            cluster.served = False

    def stop_cluster(self, name: str) -> None:
        """Stop one cluster's server: its port refuses connections from now on (nothing to do if it is not served)."""
        cluster = self.clusters[name]
        if not cluster.served:
            return
        child = self._children[cluster.child]
        with child.lock:
            self._send(child, f"stop {name}")
            self._expect(child, f"stopped {name}", STOP_TIMEOUT)
        cluster.served = False

    @property
    def pids(self) -> list[int]:
        """The server processes' ids (while the fleet runs)."""
        return [child.process.pid for child in self._children]

    def kubeconfig(self, name: str) -> Path:
        return self.clusters[name].kubeconfig

    def url(self, name: str) -> str:
        return self.clusters[name].url

    # -- steps ------------------------------------------------------------------

    def _prepare(self) -> None:
        """Certificates, users and plan files: everything but the ports."""
        for sub in ("kube", "plans", "servers"):
            (self.directory / sub).mkdir(parents=True, exist_ok=True)
        user = AUTH_USERS[self.auth]
        for index, cluster in enumerate(self.spec.clusters):
            server_dir = init_server_dir(
                self.directory / "servers" / cluster.name, host=self.host, port=0, users=[user]
            )
            self.clusters[cluster.name] = RunningCluster(
                cluster,
                server_dir,
                self.directory / "kube" / f"{cluster.name}.yaml",
                child=index % self.processes,
            )
            if cluster.plan is not None:
                (self.directory / "plans" / f"{cluster.name}.yaml").write_text(
                    yaml.safe_dump(cluster.plan, sort_keys=False)
                )

    def _spawn(self) -> None:
        shares: list[list[dict[str, Any]]] = [[] for _ in range(self.processes)]
        for cluster in self.clusters.values():
            spec = cluster.spec
            shares[cluster.child].append(
                {
                    "name": spec.name,
                    "dir": str(cluster.server_dir.root),
                    "host": self.host,
                    "version": spec.version,
                    "nodes": [node_object(node) for node in spec.nodes],
                    "objects": list(spec.objects),
                    "population": spec.population,
                }
            )
        for index, share in enumerate(shares):
            seed = self.directory / "servers" / f"serve-{index}.json"
            seed.write_text(json.dumps(share))
            log = self.directory / "servers" / f"serve-{index}.log"
            with open(log, "w") as log_file:
                process = subprocess.Popen(
                    [sys.executable, "-m", "acpcheck_lab.fleet", "serve", str(seed)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=log_file,
                    text=True,
                    bufsize=1,
                    start_new_session=True,  # a Ctrl-C in the terminal reaches the owner, who stops it
                )
            self._children.append(_Child(process, log))

    def _await_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        for child in self._children:
            while True:
                line = self._read_line(child, deadline)
                word, _, rest = line.partition(" ")
                if word == "ready":
                    name, port = rest.split()
                    cluster = self.clusters[name]
                    host = f"[{self.host}]" if ":" in self.host else self.host
                    cluster.url, cluster.served = f"https://{host}:{port}", True
                elif word == "all-ready":
                    break
                else:
                    raise FleetError(f"{NAME} fleet: {line} (log: {child.log})")

    def _write_kubeconfigs(self) -> None:
        """kube/<name>.yaml: the server directory's kubeconfig for the fleet's user, at the bound port."""
        user = AUTH_USERS[self.auth]["name"]
        for cluster in self.clusters.values():
            text = cluster.server_dir.kubeconfig(user).read_text()
            unbound = yaml.safe_load(text)["clusters"][0]["cluster"]["server"]
            text = text.replace(f"server: {unbound}", f"server: {cluster.url}")
            fd = os.open(cluster.kubeconfig, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with open(fd, "w") as handle:
                handle.write(text)

    def _write_fleet_file(self) -> None:
        acp: dict[str, Any] = {"version": self.spec.target}
        if self.spec.upgrade_from:
            acp["upgradeFrom"] = self.spec.upgrade_from
        entries = []
        for cluster in self.clusters.values():
            spec = cluster.spec
            entry: dict[str, Any] = {
                "name": spec.name,
                "role": spec.role,
                "type": spec.type,
                "kubeconfig": f"kube/{spec.name}.yaml",
            }
            if spec.plan is not None:
                entry["plan"] = f"plans/{spec.name}.yaml"
            if spec.upgrade_from:
                entry["upgradeFrom"] = spec.upgrade_from
            entries.append(entry)
        document = {
            "apiVersion": "acpcheck/v1",
            "kind": "Fleet",
            "metadata": {"name": self.spec.name},
            "spec": {"acp": acp, "discover": self.spec.discover, "clusters": entries},
        }
        header = f"# A fleet of {NAME}s (stand-ins for kube-apiserver), written by acpcheck_lab.fleet\n"
        self.fleet_file.write_text(header + yaml.safe_dump(document, sort_keys=False))

    # -- the children's protocol: one line each way -------------------------------

    @staticmethod
    def _send(child: _Child, line: str) -> None:
        assert child.process.stdin is not None
        child.process.stdin.write(line + "\n")
        child.process.stdin.flush()

    def _expect(self, child: _Child, wanted: str, timeout: float) -> None:
        line = self._read_line(child, time.monotonic() + timeout)
        if line != wanted:
            raise FleetError(f"{NAME} fleet: expected {wanted!r}, got {line!r} (log: {child.log})")

    @staticmethod
    def _read_line(child: _Child, deadline: float) -> str:
        try:
            line = child.lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise FleetError(f"{NAME} fleet: no answer in time (log: {child.log})") from None
        if line is None:
            code = child.process.wait(STOP_TIMEOUT)
            tail = child.log.read_text(errors="replace").strip().splitlines()[-3:]
            raise FleetError(
                f"{NAME} fleet: a server process ended (exit {code}): {' | '.join(tail)} (log: {child.log})"
            )
        return line


# ---------------------------------------------------------------------------
# The child: serves its share until its standard input closes


def _logger(cluster: str) -> Callable[[str], None]:
    """The server's log lines, named by cluster, on the child's standard error (the fleet's serve-<i>.log)."""

    def log(line: str) -> None:
        print(f"[{cluster}] {line}", file=sys.stderr, flush=True)

    return log


def serve(seed_file: Path) -> int:
    share = json.loads(Path(seed_file).read_text())
    servers: dict[str, TestApiServer] = {}
    crds = shipped_crds()
    try:
        for entry in share:
            server_dir = ServerDir(Path(entry["dir"]))
            server = TestApiServer(
                server_dir.tls(),
                server_dir.users(),
                host=entry["host"],
                port=0,
                kubernetes_version=entry["version"],
                crds=crds,
                log=_logger(entry["name"]),
            )
            try:
                for obj in [*entry["nodes"], *entry["objects"], *population(entry["population"], entry["name"])]:
                    server.put(obj)
            except Exception as error:  # noqa: BLE001 — told to the owner as its message, then exit
                server.httpd.server_close()  # never served: nothing to shut down
                print(f"error seeding {entry['name']}: {error}", flush=True)
                return 1
            servers[entry["name"]] = server.start()
            print(f"ready {entry['name']} {server.port}", flush=True)
        print("all-ready", flush=True)
        for line in sys.stdin:
            command, _, name = line.strip().partition(" ")
            if command == "stop" and name in servers:
                servers.pop(name).stop()
                print(f"stopped {name}", flush=True)
            else:
                print(f"error unknown command {line.strip()!r}", flush=True)
        return 0
    finally:
        # In parallel: each stop waits up to the server's poll interval for its loop to end.
        stopping = [threading.Thread(target=server.stop) for server in servers.values()]
        for thread in stopping:
            thread.start()
        for thread in stopping:
            thread.join(STOP_TIMEOUT)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] != "serve":
        print("usage: python -m acpcheck_lab.fleet serve SHARE.json (started by acpcheck_lab.fleet.TestFleet)")
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    return serve(Path(args[1]))


if __name__ == "__main__":
    sys.exit(main())
