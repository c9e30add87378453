"""Connected clusters in the lab: the test API server (a stand-in for kube-apiserver, not a real
one) as the global cluster and as an imported or registered cluster, and the plans that connect
them (ACP-CONN-010 and up, checks/connected.py).

- ``serve_cluster(root, objects, host=…)``: a test API server holding ``objects`` on ``host``,
  with a reader kubeconfig. Where it listens decides who reaches it: on ``127.0.0.1`` only this
  machine (the runner) does, never a lab node (each has its own loopback); on the lab's
  ``controller_address`` (``acpcheck_lab.workers``) the lab nodes on the direct network do too.
- ``platform_cluster``: global's record of a cluster as ACP keeps it (TKEStack's Cluster,
  ``clusters.platform.tkestack.io``); ``control_plane_node``: a Node with the control-plane role
  label and an InternalIP; ``canary_secret``: a Secret whose value must reach no output.
- ``PortListeners``: plain TCP listeners (accept, close) standing in for a control-plane node's
  11780/11781 (the platform ALB) where the test API server stands in for its 6443.
- ``connected_plan``: an imported/registered plan whose global control-plane nodes are lab nodes.

The scenario ``connected`` (two control-plane nodes, ``g1`` and ``g2``) gives the global nodes.
"""

from __future__ import annotations

import copy
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from acpcheck_lab.apiserver import DEFAULT_VERSION, TestApiServer, init_server_dir, kubeconfig, shipped_crds

#: The lab scenario whose nodes play the global cluster's control plane.
SCENARIO = "connected"
READER = "acpcheck-reader"


@dataclass
class ServedCluster:
    """A started test API server and its reader's kubeconfig (``token``: that reader's bearer token,
    a real credential of this server: the canary tests look for it in every artifact)."""

    server: TestApiServer
    kubeconfig: Path
    token: str

    def stop(self) -> None:
        self.server.stop()


def serve_cluster(
    root: Path,
    objects: list[dict[str, Any]],
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    version: str = DEFAULT_VERSION,
    extra_user_token: str | None = None,
    without: tuple[str, ...] = (),
) -> ServedCluster:
    """A test API server on ``host:port`` holding ``objects``, started; its reader kubeconfig in ``root``.
    ``extra_user_token``: a second, unused user entry in the kubeconfig holding that token (a canary);
    ``without``: shipped CRDs it does not serve (a cluster without their plugins)."""
    server_dir = init_server_dir(root / "dir", host=host, port=port)
    users = server_dir.users()
    token = next(user.token for user in users if user.name == READER and user.token)
    crds = [crd for crd in shipped_crds() if crd["metadata"]["name"] not in without]
    server = TestApiServer(server_dir.tls(), users, host=host, port=port, kubernetes_version=version, crds=crds).start()
    for obj in objects:
        server.put(copy.deepcopy(obj))
    document = yaml.safe_load(kubeconfig(server.url, server_dir.ca.read_bytes(), READER, token=token))
    if extra_user_token is not None:
        document["users"].append({"name": "unused-admin", "user": {"token": extra_user_token}})
    path = root / "kubeconfig"
    path.write_text(yaml.safe_dump(document))
    path.chmod(0o600)
    return ServedCluster(server, path, token)


def platform_cluster(
    name: str, *, phase: str = "Running", cluster_type: str = "Imported", version: str = "1.32.9"
) -> dict[str, Any]:
    """Global's record of cluster ``name``: TKEStack's Cluster (platform.tkestack.io/v1, cluster-scoped)."""
    return {
        "apiVersion": "platform.tkestack.io/v1",
        "kind": "Cluster",
        "metadata": {"name": name},
        "spec": {"type": cluster_type, "version": version},
        "status": {"phase": phase, "version": version},
    }


def control_plane_node(name: str, address: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"node-role.kubernetes.io/control-plane": ""}},
        "status": {"addresses": [{"type": "InternalIP", "address": address}]},
    }


def canary_secret(value: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "cloud-account", "namespace": "cpaas-system"},
        "type": "Opaque",
        "stringData": {"secretAccessKey": value},
    }


class PortListeners:
    """TCP listeners on ``host`` for ``ports`` that accept and close each connection, until ``close()``."""

    def __init__(self, host: str, ports: list[int]):
        self.sockets: list[socket.socket] = []
        for port in ports:
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((host, port))
            listener.listen(64)
            listener.settimeout(0.2)
            self.sockets.append(listener)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="acpcheck-lab-ports", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            for listener in self.sockets:
                try:
                    connection, _ = listener.accept()
                except (TimeoutError, OSError):
                    continue
                connection.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for listener in self.sockets:
            listener.close()

    def __enter__(self) -> PortListeners:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connected_plan(
    lab_plan: dict[str, Any],
    *,
    name: str,
    cluster_type: str = "imported",
    kubernetes_version: str = "1.32.9",
    kubeconfig_file: Path,
    global_kubeconfig: Path | None = None,
    reach: str = "direct",
    global_nodes: list[str] | None = None,
) -> dict[str, Any]:
    """A plan for an imported/registered workload cluster whose global control-plane nodes are the lab's
    nodes (``global_nodes``: their names; default every control-plane node), reached with the lab's SSH."""
    nodes = [
        dict(node)
        for node in lab_plan["spec"]["nodes"]
        if node["role"] == "control-plane" and (global_nodes is None or node["name"] in global_nodes)
    ]
    global_cluster: dict[str, Any] = {"reach": reach, "controlPlane": nodes}
    if global_kubeconfig is not None:
        global_cluster["kubeconfig"] = str(global_kubeconfig)
    return {
        "apiVersion": "acpcheck/v1",
        "kind": "ClusterPlan",
        "metadata": {"name": name},
        "spec": {
            "acp": {"version": "4.3"},
            "cluster": {
                "role": "workload",
                "type": cluster_type,
                "kubernetesVersion": kubernetes_version,
                "containerRuntime": "containerd",
                "ipFamily": "ipv4",
            },
            "ssh": lab_plan["spec"]["ssh"],
            "kubeconfig": str(kubeconfig_file),
            "globalCluster": global_cluster,
            "nodes": [],
        },
    }
