"""The control-plane parts of lab nodes: etcd, kube-apiserver's files, and the test API server.

A scenario node with ``controlPlane:`` gets what a kubeadm-style control-plane node has
on disk, for acpcheck's etcd-encryption checks to read over SSH:

- ``/etc/kubernetes/manifests/kube-apiserver.yaml``: a static pod manifest naming
  ``--encryption-provider-config``, ``--etcd-servers=https://127.0.0.1:2379`` and the
  etcd CA and client certificate (nothing runs it: the lab's API is the test API server);
- ``/etc/kubernetes/encryption-provider.conf``: an ``EncryptionConfiguration`` in one of
  the variants below, with the mode and owner asked for;
- ``/etc/kubernetes/pki/``: etcd's CA, server certificate, and the apiserver-etcd-client
  certificate (or, ``etcdClientCert: wrong-ca``, one from a CA etcd does not trust);
- with ``etcd: true``: Debian's etcd (package etcd-server) running on the node's
  127.0.0.1:2379 with client-certificate TLS, data on the node's disk, seeded by ``up``.

The scenario's ``liveCluster:`` section adds the cluster around them: the **test API
server** (``acpcheck_lab.apiserver``; a stand-in, not Kubernetes) in the namespace of the
node named by ``apiServer``, listening on its port 6443, serving the lab's Namespaces,
Nodes (control-plane ones labelled) and ``EtcdEncryptionConfig default`` in a chosen
state; and what etcd holds (``etcdData``). The plan ``up`` writes then names the
reader's kubeconfig and expects encryption.

Values in etcd are written the way kube-apiserver writes them: the object in its
protobuf storage encoding (``k8s\\x00`` + runtime.Unknown), and for encrypted ones
``k8s:enc:aesgcm:v1:<key>:`` + a 12-byte nonce + AES-GCM ciphertext with the etcd key as
authenticated data, made with the key of the lab's config. The ``realistic`` mix holds,
besides values under the current key: values under the previous key (still in the
config), plain protobuf values, values marked ``k8s:enc:identity:v1:`` (a marker some
tools and documents show; upstream's identity provider writes plain values), and values
under a retired key (no longer in the config). Secret values include canaries
(``material.json``) that tests look for in every output.

    python -m acpcheck_lab.etcd seed|migrate --state DIR   # run inside the etcd node's netns (``up`` does)

The scenario sections (``controlPlane:``, ``liveCluster:``) are in ``etcdmodel``.

Secret material (keys, CA keys, canaries) lives in ``<state>/controlplane/`` (mode 0700)
and in the nodes' files; never in ``lab.json`` or the plan.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import secrets
import shlex
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from acpcheck_lab import protowire
from acpcheck_lab.etcdmodel import ControlPlaneSpec, EtcdDataSpec

if TYPE_CHECKING:
    from acpcheck_lab.layout import StatePaths
    from acpcheck_lab.node import HostBase, NodeBuild
    from acpcheck_lab.scenario import Scenario

ETCD_BIN = "/usr/bin/etcd"
ETCD_PORT = 2379
API_PORT = 6443
MANIFEST = "/etc/kubernetes/manifests/kube-apiserver.yaml"
CONFIG = "/etc/kubernetes/encryption-provider.conf"
PKI = "/etc/kubernetes/pki"
NAMESPACES = ("default", "kube-system", "cpaas-system", "team-a", "team-b")
RESOURCES = ("secrets", "configmaps")
REVISION = 3  # the EtcdEncryptionConfig revision the lab's keys belong to
CURRENT, PREVIOUS, RETIRED = "key-3", "key-2", "key-1"
# ---------------------------------------------------------------------------
# Texts


def encryption_config(variant: str, keys: dict[str, str], other: dict[str, str], extra: dict[str, str]) -> str:
    """encryption-provider.conf in ``variant`` (keys: name -> base64 secret, current first)."""
    if variant == "unparsable":
        return (
            "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: "
            "[secrets, configmaps\n    providers:\n"
        )
    chosen = other if variant == "other-keys" else {**keys, **extra} if variant == "ten-keys" else keys
    aesgcm = {"aesgcm": {"keys": [{"name": name, "secret": secret} for name, secret in chosen.items()]}}
    providers = [{"identity": {}}, aesgcm] if variant == "identity-first" else [aesgcm, {"identity": {}}]
    resources = ["secrets"] if variant == "no-configmaps" else list(RESOURCES)
    document = {
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "EncryptionConfiguration",
        "resources": [{"resources": resources, "providers": providers}],
    }
    return "# written by the etcd Encryption Manager (lab: acpcheck lab up)\n" + yaml.safe_dump(
        document, sort_keys=False
    )


def apiserver_manifest(address: str, with_encryption: bool) -> str:
    """A kube-apiserver static pod manifest as kubeadm writes it."""
    flags = [
        f"--advertise-address={address}",
        "--allow-privileged=true",
        "--authorization-mode=Node,RBAC",
        f"--client-ca-file={PKI}/ca.crt",
        "--enable-admission-plugins=NodeRestriction",
        "--enable-bootstrap-token-auth=true",
        *([f"--encryption-provider-config={CONFIG}"] if with_encryption else []),
        f"--etcd-cafile={PKI}/etcd/ca.crt",
        f"--etcd-certfile={PKI}/apiserver-etcd-client.crt",
        f"--etcd-keyfile={PKI}/apiserver-etcd-client.key",
        f"--etcd-servers=https://127.0.0.1:{ETCD_PORT}",
        f"--secure-port={API_PORT}",
        "--service-cluster-ip-range=10.4.0.0/16",
        f"--tls-cert-file={PKI}/apiserver.crt",
        f"--tls-private-key-file={PKI}/apiserver.key",
    ]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "annotations": {"kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint": f"{address}:{API_PORT}"},
            "labels": {"component": "kube-apiserver", "tier": "control-plane"},
            "name": "kube-apiserver",
            "namespace": "kube-system",
        },
        "spec": {
            "containers": [
                {
                    "command": ["kube-apiserver", *flags],
                    "image": "registry.alauda.cn:60080/tkestack/kube-apiserver:v1.34.5",
                    "name": "kube-apiserver",
                    "volumeMounts": [{"mountPath": "/etc/kubernetes", "name": "k8s-certs", "readOnly": True}],
                }
            ],
            "hostNetwork": True,
            "priorityClassName": "system-node-critical",
            "volumes": [{"hostPath": {"path": "/etc/kubernetes", "type": "DirectoryOrCreate"}, "name": "k8s-certs"}],
        },
    }
    return (
        "# lab: the manifest kubeadm writes; nothing runs it here (the lab's API is the acpcheck test API server)\n"
        + yaml.safe_dump(pod, sort_keys=False)
    )


def etcd_command(name: str) -> str:
    """The node's etcd, started by its init.sh (inside the node, after pivot_root)."""
    return (
        f"mkdir -p -m 0700 /var/lib/etcd && {ETCD_BIN} --name {shlex.quote(name)} --data-dir /var/lib/etcd "
        f"--listen-client-urls https://127.0.0.1:{ETCD_PORT} --advertise-client-urls https://127.0.0.1:{ETCD_PORT} "
        "--listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 "
        f"--initial-cluster {shlex.quote(name)}=http://127.0.0.1:2380 --initial-cluster-state new "
        f"--cert-file {PKI}/etcd/server.crt --key-file {PKI}/etcd/server.key --client-cert-auth "
        f"--trusted-ca-file {PKI}/etcd/ca.crt "
        "--max-txn-ops 2048 --max-request-bytes 16777216 --quota-backend-bytes 8589934592 --log-level warn "
        "> /var/log/etcd.log 2>&1 &"
    )


def eec_object(state: str, addresses: list[str], now: dt.datetime) -> dict[str, Any] | None:
    """EtcdEncryptionConfig default as the controller leaves it in ``state`` (None: absent)."""
    if state in ("absent", "not-installed"):
        return None

    def stamp(when: dt.datetime) -> str:
        return when.replace(microsecond=0).isoformat().replace("+00:00", "Z")

    revision = REVISION + (1 if state == "processing" else 0)
    deployed = {address: {"revision": revision, "state": "Success", "message": ""} for address in addresses}
    migration = {
        "revision": revision,
        "state": "Success",
        "message": "",
        "resources": list(RESOURCES),
        "completeTimestamp": stamp(now - dt.timedelta(days=2)),
    }
    if state == "processing" and addresses:
        for address in addresses[1:]:
            deployed[address] = {
                "revision": REVISION,
                "state": "Processing",
                "message": "waiting for kube-apiserver to reload",
            }
        migration = {**migration, "revision": REVISION, "completeTimestamp": stamp(now - dt.timedelta(days=7, hours=1))}
    elif state == "update-failed" and addresses:
        deployed[addresses[-1]] = {
            "revision": REVISION - 1,
            "state": "UpdateFailed",
            "message": f"write {CONFIG}: no space left on device",
        }
    elif state == "overdue":
        migration["completeTimestamp"] = stamp(now - dt.timedelta(days=11))
    return {
        "apiVersion": "cluster.alauda.io/v1alpha1",
        "kind": "EtcdEncryptionConfig",
        "metadata": {"name": "default"},
        "spec": {"resources": list(RESOURCES), "rotationInterval": "168h0m0s", "type": "aesgcm"},
        "status": {"revision": revision, "deployStatus": deployed, "migration": migration},
    }


# ---------------------------------------------------------------------------
# Values as kube-apiserver writes them


def encrypt(etcd_key: bytes, plain: bytes, name: str, secret: bytes) -> bytes:
    """``k8s:enc:aesgcm:v1:<name>:`` + nonce + AES-GCM(plain), authenticated with the etcd key."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = os.urandom(12)
    return b"k8s:enc:aesgcm:v1:" + name.encode() + b":" + nonce + AESGCM(secret).encrypt(nonce, plain, etcd_key)


@dataclass(frozen=True)
class Stored:
    """One object of the lab's etcd: where, what, and how it is written."""

    key: bytes
    plain: bytes
    how: str  # current | previous | retired | plaintext | identity


def realistic_objects(canaries: list[str], extra: int = 0, mix: str = "realistic") -> Iterator[Stored]:
    """The lab's secrets and configmaps (``Stored.how`` says how each is written)."""
    created = int(time.time()) - 86400 * 30
    canary = iter(canaries)

    def secret(namespace: str, name: str, how: str, value: str | None = None) -> Stored:
        data = {"password": (value or secrets.token_urlsafe(12)).encode(), "username": b"app"}
        plain = protowire.secret(name, namespace, data, uid=str(uuid.uuid4()), creation_seconds=created)
        return Stored(f"/registry/secrets/{namespace}/{name}".encode(), plain, how if mix == "realistic" else "current")

    def config_map(namespace: str, name: str, how: str) -> Stored:
        plain = protowire.config_map(
            name,
            namespace,
            {"settings.yaml": f"logLevel: info\nnamespace: {namespace}\n"},
            uid=str(uuid.uuid4()),
            creation_seconds=created,
        )
        return Stored(
            f"/registry/configmaps/{namespace}/{name}".encode(), plain, how if mix == "realistic" else "current"
        )

    for namespace in NAMESPACES:
        for index in range(1, 7):
            yield secret(namespace, f"app-{index}", "current")
        for index in range(1, 5):
            yield config_map(namespace, f"app-config-{index}", "current")
    yield secret("kube-system", "bootstrap-token-7xk2pd", "previous")
    yield secret("kube-system", "sh.helm.release.v1.kube-ovn.v1", "previous")
    yield secret("team-a", "db-password", "plaintext", next(canary))
    yield secret("team-a", "api-token", "plaintext", next(canary))
    yield secret("team-a", "tls-bundle", "plaintext", next(canary))
    yield secret("team-b", "registry-auth", "plaintext", next(canary))
    yield secret("team-b", "legacy-credentials", "identity", next(canary))
    yield secret("cpaas-system", "old-webhook-cert", "retired")
    yield config_map("kube-system", "kube-proxy", "plaintext")
    yield config_map("team-b", "app-settings", "previous")
    for index in range(extra):
        yield secret(f"bench-{index % 50:02d}", f"secret-{index:07d}", "current")


@dataclass
class Material:
    """The lab's secret material, from ``<state>/controlplane/material.json`` (mode 0600)."""

    keys: dict[str, str]  # the config's keys, current first (base64)
    retired: dict[str, str]
    other: dict[str, str]
    extra: dict[str, str]
    canaries: list[str]

    @classmethod
    def create(cls) -> Material:
        def key() -> str:
            return base64.b64encode(os.urandom(32)).decode()

        return cls(
            {CURRENT: key(), PREVIOUS: key()},
            {RETIRED: key()},
            {CURRENT: key(), PREVIOUS: key()},
            {f"key-old-{i}": key() for i in range(1, 9)},
            [f"acplab-canary-{secrets.token_hex(10)}" for _ in range(5)],
        )

    @classmethod
    def load(cls, directory: Path) -> Material:
        return cls(**json.loads((directory / "material.json").read_text()))

    def save(self, directory: Path) -> None:
        _private(directory / "material.json", json.dumps(self.__dict__, indent=1))

    def all_keys(self) -> dict[str, bytes]:
        """Every key the lab ever made, by name (the retired one too): the lab can read anything it wrote."""
        return {name: base64.b64decode(value) for name, value in {**self.retired, **self.keys}.items()}

    def value(self, stored: Stored) -> bytes:
        keys = self.all_keys()
        if stored.how == "plaintext":
            return stored.plain
        if stored.how == "identity":
            return b"k8s:enc:identity:v1:" + stored.plain
        name = {"current": CURRENT, "previous": PREVIOUS, "retired": RETIRED}[stored.how]
        return encrypt(stored.key, stored.plain, name, keys[name])


def _private(path: Path, text: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "wb") as handle:
        handle.write(text.encode() if isinstance(text, str) else text)


# ---------------------------------------------------------------------------
# The lab's side: ``up`` calls LabParts


class LabParts:
    """The control-plane parts of one ``up``: material, node files, processes, readiness.

    Created right after the nodes' builds (it adds files and an etcd start line to them);
    ``scenario`` is the scenario with the plan additions (kubeconfig, expected encryption);
    ``processes`` adds the test API server to the keeper's requests; ``ready`` waits for
    it and for etcd, then seeds etcd. A scenario without control-plane parts costs nothing.
    """

    def __init__(self, scenario: Scenario, paths: StatePaths, builds: list[NodeBuild], host: HostBase):
        from acpcheck_lab.host import LabError

        self.paths = paths
        self.root = paths.root / "controlplane"
        self.api_dir = paths.root / "apiserver"
        self.builds = {build.spec.name: build for build in builds}
        self.live = scenario.live_cluster
        self.scenario = scenario
        parts = {
            name: build.spec.control_plane
            for name, build in self.builds.items()
            if build.spec.control_plane is not None
        }
        self.etcd_nodes = [name for name, spec in parts.items() if spec.etcd]
        if not parts and self.live is None:
            return
        if self.etcd_nodes and not os.path.exists(ETCD_BIN):
            raise LabError(
                f"{ETCD_BIN} is missing: the scenario runs etcd (apt-get install etcd-server, or run "
                "scripts/setup-system.sh)"
            )
        if self.live is not None and self.live.api_server is not None and self.live.api_server not in self.builds:
            raise LabError(f"liveCluster.apiServer: no node {self.live.api_server!r} in the scenario")
        if (
            self.live is not None
            and self.live.api_server
            and getattr(getattr(scenario, "load_balancer", None), "api_servers", None)
        ):
            raise LabError(
                "liveCluster.apiServer and loadBalancer.apiServers both listen on port 6443 of the "
                "control-plane nodes: choose one"
            )
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.material = Material.create()
        self.material.save(self.root)
        self._pki()
        for name, spec in parts.items():
            self._node(self.builds[name], spec, host)
        if self.live is not None and self.live.api_server is not None:
            self._api_server()

    # -- material ------------------------------------------------------------

    def _pki(self) -> None:
        from acpcheck_lab.apiserver import issue

        ca_pem, ca_key_pem, ca, ca_key = issue("etcd-ca", is_ca=True, days=3650)
        server_pem, server_key, _, _ = issue("etcd-server", ca=(ca, ca_key), hosts=["localhost", "127.0.0.1", "::1"])
        client_pem, client_key, _, _ = issue(
            "kube-apiserver-etcd-client", ca=(ca, ca_key), organizations=["system:masters"], client=True
        )
        _, _, rogue_ca, rogue_key = issue("not-the-etcd-ca", is_ca=True)
        rogue_pem, rogue_key_pem, _, _ = issue("kube-apiserver-etcd-client", ca=(rogue_ca, rogue_key), client=True)
        for name, data in (
            ("ca.crt", ca_pem),
            ("ca.key", ca_key_pem),
            ("server.crt", server_pem),
            ("server.key", server_key),
            ("client.crt", client_pem),
            ("client.key", client_key),
            ("rogue-client.crt", rogue_pem),
            ("rogue-client.key", rogue_key_pem),
        ):
            _private(self.root / name, data)

    def _read(self, name: str) -> str:
        return (self.root / name).read_text()

    def _node(self, build: NodeBuild, spec: ControlPlaneSpec, host: HostBase) -> None:
        view, m = build.view, self.material
        if spec.manifest:
            view.file(MANIFEST, apiserver_manifest(str(build.address), spec.encryption_config != "not-set"), mode=0o600)
        if spec.encryption_config not in ("missing", "not-set"):
            uid = host.lab_uid if spec.config_owner == "acplab" else 0
            view.file(
                CONFIG,
                encryption_config(spec.encryption_config, m.keys, m.other, m.extra),
                mode=int(spec.config_mode, 8),
                uid=uid,
                gid=uid,
            )
        view.file(f"{PKI}/etcd/ca.crt", self._read("ca.crt"))
        view.file(f"{PKI}/etcd/server.crt", self._read("server.crt"))
        view.file(f"{PKI}/etcd/server.key", self._read("server.key"), mode=0o600)
        client = "rogue-client" if spec.etcd_client_cert == "wrong-ca" else "client"
        view.file(f"{PKI}/apiserver-etcd-client.crt", self._read(f"{client}.crt"))
        view.file(f"{PKI}/apiserver-etcd-client.key", self._read(f"{client}.key"), mode=0o600)
        if spec.etcd:
            build.services.append("# etcd (Debian's etcd-server) on this node's loopback, client certificates required")
            build.services.append(etcd_command(build.spec.name))

    def _api_server(self) -> None:
        from acpcheck_lab.apiserver import init_server_dir

        assert self.live is not None and self.live.api_server is not None
        address = str(self.builds[self.live.api_server].address)
        init_server_dir(self.api_dir, host=address, port=API_PORT)
        control_plane = [build for build in self.builds.values() if build.spec.role == "control-plane"]
        now = dt.datetime.now(dt.UTC)
        objects: list[dict[str, Any]] = [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}} for ns in NAMESPACES
        ]
        for build in self.builds.values():
            labels = {"kubernetes.io/hostname": build.spec.hostname, "kubernetes.io/os": "linux"}
            if build.spec.role == "control-plane":
                labels["node-role.kubernetes.io/control-plane"] = ""
            objects.append(
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {"name": build.spec.name, "labels": labels},
                    "status": {
                        "addresses": [
                            {"type": "InternalIP", "address": str(build.address)},
                            {"type": "Hostname", "address": build.spec.hostname},
                        ],
                        "conditions": [
                            {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "lab node"}
                        ],
                    },
                }
            )
        eec = eec_object(self.live.etcd_encryption_config, [str(build.address) for build in control_plane], now)
        if eec is not None:
            objects.append(eec)
        (self.api_dir / "seed.yaml").write_text(yaml.safe_dump_all(objects, sort_keys=False))
        plan = {"kubeconfig": str(self.api_dir / "acpcheck-reader.kubeconfig"), "etcdEncryption": {"expected": True}}
        from acpcheck_lab.outputs import merge

        self.scenario = self.scenario.model_copy(update={"plan": merge(plan, self.scenario.plan)})

    # -- processes -----------------------------------------------------------

    def processes(self, env: dict[str, str]) -> list[tuple[str, list[str], Path, dict[str, str]]]:
        """The keeper's request for the test API server (in its node's network namespace)."""
        if self.live is None or self.live.api_server is None:
            return []
        command = [
            sys.executable,
            "-m",
            "acpcheck_lab.apiserver",
            "serve",
            str(self.api_dir),
            "--listen",
            f"0.0.0.0:{API_PORT}",
            "--seed",
            str(self.api_dir / "seed.yaml"),
        ]
        if self.live.etcd_encryption_config == "not-installed":
            command.append("--no-crds")
        return [(self.builds[self.live.api_server].netns, command, self.api_dir / "apiserver.log", env)]

    def ready(self, timeout: float = 30.0) -> None:
        """Wait for the test API server, then wait for and seed each etcd (LabError otherwise)."""
        from acpcheck_lab.apiserver import wait_ready
        from acpcheck_lab.host import LabError

        if self.live is not None and self.live.api_server is not None:
            url = f"https://{self.builds[self.live.api_server].address}:{API_PORT}"
            try:
                wait_ready(url, self.api_dir / "ca.crt", timeout)
            except TimeoutError as error:
                log = (self.api_dir / "apiserver.log").read_text(errors="replace")[-800:]
                raise LabError(f"{error}; end of its log:\n{log}") from None
        data = self.live.etcd_data if self.live is not None else EtcdDataSpec()
        for name in self.etcd_nodes:
            node_command(
                self.paths.root,
                self.builds[name].netns,
                "seed",
                "--mix",
                data.mix,
                "--objects",
                str(data.objects),
                timeout=timeout + data.objects / 1000,
            )


def node_command(state: Path, netns: str, *args: str, timeout: float = 60.0) -> str:
    """Run ``python -m acpcheck_lab.etcd ARGS`` inside a node's network namespace ``netns`` (its etcd's loopback)."""
    from acpcheck_lab.host import LabError

    command = [
        "ip",
        "netns",
        "exec",
        netns,
        sys.executable,
        "-m",
        "acpcheck_lab.etcd",
        *args,
        "--state",
        str(state),
    ]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise LabError(f"etcd in {netns}: {' '.join(args[:1])} did not finish within {timeout:.0f} s") from None
    if result.returncode != 0:
        raise LabError(f"etcd in {netns}: {' '.join(args[:1])} failed: {result.stderr.strip()[-600:]}")
    return result.stdout


# ---------------------------------------------------------------------------
# Inside the node's namespace: seed and migrate


def _client(state: Path, wait: float = 20.0) -> Any:
    from acpcheck.transport.etcd import ClientCredentials, EtcdClient, EtcdError

    root = state / "controlplane"
    credentials = ClientCredentials(
        (root / "ca.crt").read_text(), (root / "client.crt").read_text(), (root / "client.key").read_text()
    )
    deadline = time.monotonic() + wait
    while True:
        client = EtcdClient(("127.0.0.1", ETCD_PORT), "127.0.0.1", credentials, label="lab etcd")
        try:
            client.status()
            return client
        except EtcdError:
            client.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def put_all(client: Any, pairs: Iterator[tuple[bytes, bytes]], batch: int = 1000) -> int:
    """Write (key, value) pairs in transactions of ``batch`` puts; return how many."""
    written, ops = 0, []
    for key, value in pairs:
        ops.append({"request_put": {"key": base64.b64encode(key).decode(), "value": base64.b64encode(value).decode()}})
        if len(ops) >= batch:
            client.call("/v3/kv/txn", {"success": ops})
            written, ops = written + len(ops), []
    if ops:
        client.call("/v3/kv/txn", {"success": ops})
        written += len(ops)
    return written


def seed(state: Path, mix: str, objects: int) -> int:
    """The namespaces (stored as kube-apiserver stores them: not encrypted), then the secrets and configmaps."""
    material = Material.load(state / "controlplane")
    names = [*NAMESPACES, *(f"bench-{index:02d}" for index in range(min(objects, 50)))]
    namespaces = (
        (f"/registry/namespaces/{name}".encode(), protowire.namespace(name, uid=str(uuid.uuid4()))) for name in names
    )
    with _client(state) as client:
        return put_all(client, namespaces) + put_all(
            client,
            ((stored.key, material.value(stored)) for stored in realistic_objects(material.canaries, objects, mix)),
        )


def migrate(state: Path) -> int:
    """Rewrite every secret and configmap under the current key, as ``kubectl replace`` makes kube-apiserver do."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from acpcheck.transport.etcd import prefix_end, range_values

    material = Material.load(state / "controlplane")
    keys = material.all_keys()

    def plain(key: bytes, value: bytes) -> bytes:
        if value.startswith(b"k8s:enc:identity:v1:"):
            return value[len(b"k8s:enc:identity:v1:") :]
        if value.startswith(b"k8s:enc:aesgcm:v1:"):
            name, _, payload = value[len(b"k8s:enc:aesgcm:v1:") :].partition(b":")
            return AESGCM(keys[name.decode()]).decrypt(payload[:12], payload[12:], key)
        return value

    with _client(state) as client:
        rewritten = []
        for resource in RESOURCES:
            prefix = f"/registry/{resource}/".encode()
            revision = int(client.range(prefix, prefix_end(prefix), count_only=True)["header"]["revision"])
            rewritten += [
                (key, encrypt(key, plain(key, value), CURRENT, keys[CURRENT]))
                for key, value in range_values(client, prefix, prefix_end(prefix), revision)
            ]
        return put_all(client, iter(rewritten))


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m acpcheck_lab.etcd", description="seed or migrate a lab node's etcd (run inside its netns)"
    )
    parser.add_argument("command", choices=("seed", "migrate"))
    parser.add_argument("--state", required=True)
    parser.add_argument("--mix", default="realistic", choices=("realistic", "encrypted"))
    parser.add_argument("--objects", type=int, default=0)
    args = parser.parse_args(argv)
    state = Path(args.state)
    count = seed(state, args.mix, args.objects) if args.command == "seed" else migrate(state)
    print(f"{args.command}: {count} objects written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
