"""A real OCI registry in the lab: Debian's ``docker-registry`` (the CNCF distribution
registry, 2.8) with TLS and htpasswd auth, each instance in its own network namespace
on the lab's direct network, all instances serving one storage directory that ``up``
seeds with small hand-made images through the registry's own HTTP API.

Scenario key (see lab/README.md, "Private registry")::

    ociRegistry:
      seed: [acp/pause:3.10, acp/kube-apiserver:v1.34.5]   # repository:tag, pushed at up
      multiArch: [acp/pause:3.10]                           # those pushed as an OCI index (amd64 + arm64)
      instances:                                            # one docker-registry each, on <direct>.4, .5, …:5000
        - {name: good}                                      # certificate: valid (default) | expired | wrong-san
        - {name: expired, certificate: expired}
      planInstance: good                                    # the one spec.registry.address names
      wrongPassword: true                                   # the plan's passwordFile holds a wrong password
      planImages: [acp/pause:3.10, acp/coredns:v1.12.0]     # spec.registry.images (default: the seeded ones)

What ``up`` writes under ``<state>/registry/``: ``ca.crt`` (the lab CA: the plan's
``caFile``), one certificate and key per instance, ``htpasswd`` (bcrypt, made by
``htpasswd -niB`` with the password on stdin), ``password`` (the account's password, new
for every ``up``) and ``password-wrong`` (what the plan's ``credential.passwordFile`` names
with ``wrongPassword``), and one plan per other case, next to the lab's own plan:
``plan-<instance>.yaml`` (pointed at that instance), ``plan-wrong-password.yaml`` and
``plan-healthy.yaml`` (the plan's instance, the right password, only seeded images, the
CA): the healthy variant in which every ACP-IMG check passes.

Every process runs under the lab's keeper in a namespace named with the lab's prefix
(``acplab<N>-reg-<name>``), so ``acpcheck lab down`` finds and removes it, its
namespace and its link like every other part of that lab.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import hashlib
import io
import json
import secrets
import shlex
import shutil
import ssl
import tarfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from acpcheck_lab.host import LabError, disable_ipv6, ip_batch, listening, namespace_on_bridge, pid_alive, run
from acpcheck_lab.layout import StatePaths

if TYPE_CHECKING:
    from acpcheck_lab.layout import LabNetwork
    from acpcheck_lab.ocimodel import LabOciRegistry, LabRegistryInstance
    from acpcheck_lab.scenario import Scenario

#: Host number of the first instance on the direct network (see ocimodel.MAX_INSTANCES).
FIRST_HOST = 4
#: The name and address a ``wrong-san`` certificate is for (TEST-NET-1: never anyone's).
WRONG_NAME, WRONG_ADDRESS = "registry.elsewhere.invalid", "192.0.2.10"
REALM = "acplab-registry"

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def required_tools(scenario: Scenario) -> list[str]:
    return ["docker-registry", "htpasswd"] if scenario.oci_registry is not None else []


@dataclass
class OciLab:
    """What ``up`` adds for the scenario's registry: directories, processes, seeds."""

    paths: StatePaths
    direct: LabNetwork
    spec: LabOciRegistry
    password: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    addresses: dict[str, str] = field(default_factory=dict)  # instance -> address

    @property
    def directory(self) -> Path:
        return self.paths.root / "registry"

    @property
    def storage(self) -> Path:
        return self.directory / "storage"

    def netns(self, instance: str) -> str:
        return self.direct.lab.netns(f"reg-{instance}")

    def veth(self, index: int) -> str:
        return f"{self.direct.lab.prefix}r{index}"

    def address(self, instance: str) -> str:
        """host:port of an instance (host alone on 443)."""
        port = self.instance(instance).port
        return self.addresses[instance] if port == 443 else f"{self.addresses[instance]}:{port}"

    def password_file(self, wrong: bool = False) -> Path:
        return self.directory / ("password-wrong" if wrong else "password")

    def instance(self, name: str) -> LabRegistryInstance:
        return next(instance for instance in self.spec.instances if instance.name == name)

    # --- files ----------------------------------------------------------------------

    def write_files(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.directory.chmod(0o700)
        self.storage.mkdir(exist_ok=True)
        for index, instance in enumerate(self.spec.instances):
            self.addresses[instance.name] = str(self.direct.cidr.network_address + FIRST_HOST + index)
        write_certificates(self.directory, self.spec.instances, self.addresses)
        hashed = run(["htpasswd", "-niB", self.spec.username], stdin=self.password + "\n", timeout=30).stdout
        _private(self.directory / "htpasswd", hashed.strip() + "\n")
        _private(self.directory / "password", self.password + "\n")
        _private(self.directory / "password-wrong", "wrong-" + secrets.token_urlsafe(12) + "\n")
        for instance in self.spec.instances:
            config = {
                "version": 0.1,
                "log": {"level": "info", "formatter": "text"},
                "storage": {"filesystem": {"rootdirectory": str(self.storage)}, "delete": {"enabled": True}},
                "http": {
                    "addr": f"{self.addresses[instance.name]}:{instance.port}",
                    "secret": secrets.token_hex(16),
                    "tls": {
                        "certificate": str(self.directory / f"{instance.name}.crt"),
                        "key": str(self.directory / f"{instance.name}.key"),
                    },
                },
                "auth": {"htpasswd": {"realm": REALM, "path": str(self.directory / "htpasswd")}},
            }
            _private(self.directory / f"{instance.name}.yml", yaml.safe_dump(config, sort_keys=False))

    def plan_registry(self) -> dict[str, Any]:
        """spec.registry of the lab's plan."""
        images = self.spec.plan_images if self.spec.plan_images is not None else list(self.spec.seed)
        return {
            "type": "private",
            "address": self.address(self.spec.planned),
            "caFile": str(self.directory / "ca.crt"),
            "credential": {
                "username": self.spec.username,
                "passwordFile": str(self.password_file(self.spec.wrong_password)),
            },
            "images": images,
        }

    # --- network and processes ------------------------------------------------------------

    def create_network(self) -> None:
        lines, links = [], []
        for index, instance in enumerate(self.spec.instances):
            netns, veth = self.netns(instance.name), self.veth(index)
            lines += namespace_on_bridge(netns, veth, self.direct.bridge)
            links.append(veth)
        ip_batch(lines)
        disable_ipv6(links)

    def requests(self, env: dict[str, str]) -> list[tuple[str, list[str], Path, dict[str, str]]]:
        requests = []
        prefix = self.direct.cidr.prefixlen
        for instance in self.spec.instances:
            name = instance.name
            script = self.directory / f"{name}.sh"
            script.write_text(
                "#!/bin/sh\n# the lab's OCI registry (generated by `acpcheck lab up`, "
                "lab/acpcheck_lab/ociregistry.py)\n"
                f"set -eu\necho $$ > {shlex.quote(str(self.directory / f'{name}.pid'))}\n"
                "ip link set lo up\nip link set eth0 up\n"
                f"ip address add {self.addresses[name]}/{prefix} dev eth0\n"
                f"exec docker-registry serve {shlex.quote(str(self.directory / f'{name}.yml'))}\n"
            )
            requests.append((self.netns(name), ["/bin/sh", str(script)], self.directory / f"{name}.log", env))
        return requests

    def wait_ready(self, timeout: float = 20.0) -> None:
        waiting = {instance.name for instance in self.spec.instances}
        deadline = time.monotonic() + timeout
        while waiting:
            for name in sorted(waiting):
                pid_file = self.directory / f"{name}.pid"
                if listening(pid_file, self.instance(name).port):
                    waiting.discard(name)
                elif pid_alive(pid_file, verify=False) is False:
                    log = self.directory / f"{name}.log"
                    tail = log.read_text(errors="replace").strip().splitlines()[-6:] if log.exists() else []
                    raise LabError(f"the lab's registry {name} did not start:\n" + "\n".join("  " + t for t in tail))
            if time.monotonic() > deadline:
                raise LabError(f"registry not ready after {timeout:.0f} s: {', '.join(sorted(waiting))}")
            if waiting:
                time.sleep(0.05)

    # --- seeding ------------------------------------------------------------------------

    def seed(self) -> None:
        """Push every seeded image through the first instance's API (the storage is shared).
        The lab's own connection to its own registry: the certificate is not verified,
        since an instance may serve an expired or wrong-name one on purpose."""
        client = RegistryClient(self.address(self.spec.instances[0].name), self.spec.username, self.password)
        for image in self.spec.seed:
            repository, tag = image.rsplit(":", 1)
            if image in self.spec.multi_arch:
                client.push_index(repository, tag, ["amd64", "arm64"])
            else:
                client.push_image(repository, tag)

    def write_variants(self) -> None:
        """Plans next to the lab's own, each with one defect or none: ``plan-<instance>.yaml`` per
        other instance, ``plan-wrong-password.yaml`` and ``plan-healthy.yaml`` (the right password,
        the seeded images only)."""
        text = self.paths.plan.read_text()
        header = "".join(line + "\n" for line in text.splitlines() if line.startswith("#"))
        plan = yaml.safe_load(text)

        def variant(name: str, instance: str, wrong: bool, what: str) -> None:
            edited = json.loads(json.dumps(plan))
            edited["spec"]["registry"].update(
                {
                    "address": self.address(instance),
                    "images": list(self.spec.seed),
                    "credential": {"username": self.spec.username, "passwordFile": str(self.password_file(wrong))},
                }
            )
            edited["metadata"]["name"] += f"-{name}"
            self._write_plan(f"plan-{name}.yaml", header, edited, what)

        for instance in self.spec.instances:
            if instance.name != self.spec.planned:
                variant(
                    instance.name, instance.name, False, f"registry instance {instance.name} ({instance.certificate})"
                )
        variant("wrong-password", self.spec.planned, True, "a wrong password in the credential's passwordFile")
        variant("healthy", self.spec.planned, False, "the healthy variant: every ACP-IMG check passes")

    def _write_plan(self, name: str, header: str, plan: dict[str, Any], what: str) -> None:
        body = yaml.safe_dump(plan, sort_keys=False, default_flow_style=None, width=120)
        (self.directory / name).write_text(f"{header}# {what} (lab/acpcheck_lab/ociregistry.py)\n{body}")


def prepare(scenario: Scenario, paths: StatePaths, networks: dict[str, LabNetwork]) -> tuple[Scenario, OciLab | None]:
    """Write the registry's files; return the scenario with spec.registry filled in for the plan."""
    from acpcheck_lab.outputs import merge

    if scenario.oci_registry is None:
        return scenario, None
    missing = [tool for tool in required_tools(scenario) if shutil.which(tool) is None]
    if missing:
        raise LabError(f"missing on this machine: {', '.join(missing)} (run scripts/setup-system.sh as root)")
    lab = OciLab(paths, networks["direct"], scenario.oci_registry)
    shutil.rmtree(lab.directory, ignore_errors=True)
    lab.write_files()
    plan = merge(scenario.plan, {"registry": lab.plan_registry()})
    return scenario.model_copy(update={"plan": plan}), lab


# ---------------------------------------------------------------------------
# Certificates


def write_certificates(
    directory: Path, instances: list[LabRegistryInstance], addresses: dict[str, str], *, now: dt.datetime | None = None
) -> None:
    """A lab CA (``ca.crt``) and one serving certificate per instance, as its ``certificate`` says."""
    from acpcheck_lab.apiserver import issue

    now = now or dt.datetime.now(dt.UTC)
    ca_pem, _, ca, ca_key = issue("acplab-registry-ca", is_ca=True, days=3650, not_before=now - dt.timedelta(days=400))
    (directory / "ca.crt").write_bytes(ca_pem)
    for instance in instances:
        wrong_san = instance.certificate == "wrong-san"
        expired = instance.certificate == "expired"
        cert_pem, key_pem, _, _ = issue(
            f"acplab-registry-{instance.name}",
            ca=(ca, ca_key),
            hosts=[WRONG_NAME, WRONG_ADDRESS] if wrong_san else [addresses[instance.name]],
            not_before=now - dt.timedelta(days=91 if expired else 1),
            not_after=now - dt.timedelta(days=1) if expired else now + dt.timedelta(days=365),
        )
        (directory / f"{instance.name}.crt").write_bytes(cert_pem)
        _private(directory / f"{instance.name}.key", key_pem.decode())


def _private(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o600)


# ---------------------------------------------------------------------------
# Pushing images through the registry API (the distribution spec's push: blobs, then manifests)


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _layer(repository: str, arch: str) -> tuple[bytes, str]:
    """A gzipped tar with one small file, reproducible; and the uncompressed tar's digest (diff_id)."""
    raw = io.BytesIO()
    content = f"acpcheck lab image {repository} ({arch})\n".encode()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        member = tarfile.TarInfo(f"acplab/{repository.replace('/', '_')}")
        member.size, member.mtime, member.mode = len(content), 0, 0o644
        tar.addfile(member, io.BytesIO(content))
    tar_bytes = raw.getvalue()
    return gzip.compress(tar_bytes, mtime=0), _digest(tar_bytes)


class RegistryClient:
    """The few registry API calls the lab needs to push (Basic auth, certificate not verified)."""

    def __init__(self, address: str, username: str, password: str, timeout: float = 10.0):
        self.base = f"https://{address}"
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        self.auth = f"Basic {token}"
        self.context = ssl.create_default_context()
        self.context.check_hostname = False
        self.context.verify_mode = ssl.CERT_NONE
        self.timeout = timeout

    def request(
        self, method: str, url: str, data: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        full = url if url.startswith("https://") else self.base + url
        req = urllib.request.Request(
            full, data=data, method=method, headers={"Authorization": self.auth, **(headers or {})}
        )
        try:
            with urllib.request.urlopen(req, context=self.context, timeout=self.timeout) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    def push_blob(self, repository: str, data: bytes) -> tuple[str, int]:
        digest = _digest(data)
        status, headers, body = self.request("POST", f"/v2/{repository}/blobs/uploads/", b"")
        if status != 202:
            raise LabError(f"registry: starting an upload to {repository} gave {status}: {body[:200]!r}")
        location = headers.get("Location", "")
        separator = "&" if "?" in location else "?"
        status, _, body = self.request(
            "PUT",
            f"{location}{separator}digest={digest}",
            data,
            {"Content-Type": "application/octet-stream", "Content-Length": str(len(data))},
        )
        if status != 201:
            raise LabError(f"registry: uploading a blob to {repository} gave {status}: {body[:200]!r}")
        return digest, len(data)

    def push_manifest(self, repository: str, reference: str, media_type: str, document: dict[str, Any]) -> str:
        data = json.dumps(document, separators=(",", ":")).encode()
        status, _, body = self.request(
            "PUT", f"/v2/{repository}/manifests/{reference}", data, {"Content-Type": media_type}
        )
        if status != 201:
            raise LabError(f"registry: pushing the manifest {repository}:{reference} gave {status}: {body[:300]!r}")
        return _digest(data)

    def _manifest(self, repository: str, arch: str, oci: bool) -> dict[str, Any]:
        layer, diff_id = _layer(repository, arch)
        config = json.dumps(
            {"architecture": arch, "os": "linux", "config": {}, "rootfs": {"type": "layers", "diff_ids": [diff_id]}},
            separators=(",", ":"),
        ).encode()
        config_digest, config_size = self.push_blob(repository, config)
        layer_digest, layer_size = self.push_blob(repository, layer)
        return {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST if oci else DOCKER_MANIFEST,
            "config": {"mediaType": OCI_CONFIG if oci else DOCKER_CONFIG, "size": config_size, "digest": config_digest},
            "layers": [{"mediaType": OCI_LAYER if oci else DOCKER_LAYER, "size": layer_size, "digest": layer_digest}],
        }

    def push_image(self, repository: str, tag: str) -> str:
        """A Docker schema2 image (one config, one layer) under ``tag``."""
        return self.push_manifest(repository, tag, DOCKER_MANIFEST, self._manifest(repository, "amd64", oci=False))

    def push_index(self, repository: str, tag: str, architectures: list[str]) -> str:
        """An OCI image index of one OCI image per architecture, under ``tag``."""
        entries = []
        for arch in architectures:
            manifest = self._manifest(repository, arch, oci=True)
            data = json.dumps(manifest, separators=(",", ":")).encode()
            digest = self.push_manifest(repository, _digest(data), OCI_MANIFEST, manifest)
            entries.append(
                {
                    "mediaType": OCI_MANIFEST,
                    "size": len(data),
                    "digest": digest,
                    "platform": {"architecture": arch, "os": "linux"},
                }
            )
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
        return self.push_manifest(repository, tag, OCI_INDEX, index)
