"""etcd encryption as the control-plane nodes have it: the manifest, the config file, and etcd's bytes.

Source ``encryption`` (order 10: after node facts, whose failures it reuses), filling
two check parameters:

- ``encryption``: per control-plane node (plan order), over the run's SSH sessions:
  the kube-apiserver static pod manifest (``/etc/kubernetes/manifests/kube-apiserver.yaml``)
  and from it ``--encryption-provider-config``, ``--etcd-servers``, ``--etcd-cafile``,
  ``--etcd-certfile``, ``--etcd-keyfile``; then that config file: whether it exists, its
  mode and owner, whether it parses as an ``EncryptionConfiguration``, each resource
  rule's providers and key *names*, and a fingerprint (HMAC-SHA256 under a key made for
  this run, so files can be compared across nodes while nothing about the keys can be
  learnt from a report).
- ``etcd``: one scan of etcd's raw values (``acpcheck.sources.encryption_scan``, with
  the client ``acpcheck.transport.etcd``) through an SSH forward from the first
  control-plane node that gets one (the manifest's etcd address, as the node sees it),
  with the client certificate the manifest names, read over SSH into memory. Every
  resource the node's config lists is scanned, and always ``secrets`` and
  ``configmaps``; each against that node's config.

Key material exists only in this process's memory while it gathers: it is never
saved, printed or logged. How much is scanned: ``ACPCHECK_ETCD_SAMPLE`` (the command
line's ``--etcd-sample``), else the plan's ``spec.etcdEncryption.sample``, else every
object up to 100 000 and an even sample of 100 000 above that.
"""

from __future__ import annotations

import base64
import binascii
import concurrent.futures
import hashlib
import hmac
import json
import os
import secrets
import shlex
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from acpcheck.sources.base import GatherContext, TargetUnavailable
from acpcheck.sources.encryption_scan import (
    SAMPLE_ENV,
    Expectation,
    Provider,
    ScanResult,
    etcd_prefix,
)

if TYPE_CHECKING:
    from acpcheck.model.plan import ClusterPlan, Node
    from acpcheck.transport.base import NodeTransport

MANIFEST = "/etc/kubernetes/manifests/kube-apiserver.yaml"
FLAGS = ("encryption-provider-config", "etcd-servers", "etcd-cafile", "etcd-certfile", "etcd-keyfile")
PROVIDER_TYPES = ("aesgcm", "aescbc", "secretbox", "kms", "identity")
#: Always scanned, whatever the config lists (ACP's Encryption Manager encrypts these two).
ALWAYS_SCANNED = ("secrets", "configmaps")
EVIDENCE_FILE = "encryption.json"
SCHEMA = "acpcheck/encryption/v1"


# ---------------------------------------------------------------------------
# The manifest


def manifest_flags(text: str) -> tuple[dict[str, str], str | None]:
    """The kube-apiserver flags of a static pod manifest, and a problem (None when it parsed)."""
    import yaml

    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        return {}, f"not valid YAML{f' at line {mark.line + 1}' if mark else ''}"
    containers = ((document or {}).get("spec") or {}).get("containers") if isinstance(document, dict) else None
    if not isinstance(containers, list) or not containers:
        return {}, "no containers in the pod spec"
    container = next(
        (c for c in containers if isinstance(c, dict) and c.get("name") == "kube-apiserver"), containers[0]
    )
    words = [str(word) for word in (container.get("command") or []) + (container.get("args") or [])]
    flags: dict[str, str] = {}
    for index, word in enumerate(words):
        if not word.startswith("--"):
            continue
        name, equals, value = word[2:].partition("=")
        if not equals and index + 1 < len(words) and not words[index + 1].startswith("--"):
            value = words[index + 1]
        flags[name] = value
    return flags, None


# ---------------------------------------------------------------------------
# The EncryptionConfiguration


@dataclass
class ConfigSummary:
    """What may be said about a config file: everything but its keys."""

    path: str
    exists: bool = False
    mode: str | None = None  # "0600"
    owner: str | None = None
    group: str | None = None
    size: int | None = None
    fingerprint: str | None = None
    parse_error: str | None = None
    rules: list[dict[str, Any]] = field(
        default_factory=list
    )  # [{"resources": [...], "providers": [{"type", "keys": [names]}]}]
    key_problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "exists": self.exists,
            "mode": self.mode,
            "owner": self.owner,
            "group": self.group,
            "size": self.size,
            "fingerprint": self.fingerprint,
            "parseError": self.parse_error,
            "rules": self.rules,
            "keyProblems": self.key_problems,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConfigSummary:
        return cls(
            data["path"],
            bool(data["exists"]),
            data.get("mode"),
            data.get("owner"),
            data.get("group"),
            data.get("size"),
            data.get("fingerprint"),
            data.get("parseError"),
            list(data.get("rules") or []),
            list(data.get("keyProblems") or []),
        )


KEY_SIZES = {"aesgcm": (16, 24, 32), "aescbc": (16, 24, 32), "secretbox": (32,)}


def parse_config(text: str, summary: ConfigSummary) -> list[tuple[list[str], tuple[Provider, ...]]]:
    """Fill ``summary`` from an EncryptionConfiguration; return its rules with their key
    material (for the scan, in memory). Messages never quote the file."""
    import yaml

    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        summary.parse_error = (
            f"not valid YAML{f' at line {mark.line + 1}' if mark else ''}: "
            f"{getattr(error, 'problem', None) or 'syntax error'}"
        )
        return []
    if not isinstance(document, dict) or document.get("kind") != "EncryptionConfiguration":
        summary.parse_error = (
            "not an EncryptionConfiguration (kind: EncryptionConfiguration, apiVersion: apiserver.config.k8s.io/v1)"
        )
        return []
    if document.get("apiVersion") not in ("apiserver.config.k8s.io/v1", "apiserver.config.k8s.io/v1alpha1"):
        summary.parse_error = f"apiVersion {str(document.get('apiVersion'))[:60]!r} is not apiserver.config.k8s.io/v1"
        return []
    rules = document.get("resources")
    if not isinstance(rules, list) or not rules:
        summary.parse_error = "it lists no resources"
        return []
    parsed = []
    for number, rule in enumerate(rules, 1):
        if (
            not isinstance(rule, dict)
            or not isinstance(rule.get("resources"), list)
            or not isinstance(rule.get("providers"), list)
        ):
            summary.parse_error = f"resources[{number - 1}] needs a resources list and a providers list"
            return []
        names = [str(resource) for resource in rule["resources"]]
        providers = []
        for entry in rule["providers"]:
            kind = next(iter(entry), None) if isinstance(entry, dict) and len(entry) == 1 else None
            if kind not in PROVIDER_TYPES:
                summary.parse_error = f"resources[{number - 1}]: a provider is not one of {', '.join(PROVIDER_TYPES)}"
                return []
            settings = entry[kind] or {}
            keys: list[tuple[str, bytes | None]] = []
            if kind == "kms":
                keys.append((str(settings.get("name", "")), None))
            elif kind != "identity":
                for key in settings.get("keys") or []:
                    name = str((key or {}).get("name", ""))
                    try:
                        secret = base64.b64decode(str((key or {}).get("secret", "")), validate=True)
                    except (binascii.Error, ValueError):
                        summary.key_problems.append(f"{kind} key {name!r} is not base64")
                        secret = b""
                    if len(secret) not in KEY_SIZES[kind]:
                        summary.key_problems.append(
                            f"{kind} key {name!r} is {len(secret)} bytes (wants "
                            f"{' or '.join(map(str, KEY_SIZES[kind]))})"
                        )
                    keys.append((name, secret))
            providers.append(Provider(kind, tuple(keys)))
        summary.rules.append(
            {"resources": names, "providers": [{"type": p.type, "keys": p.key_names} for p in providers]}
        )
        parsed.append((names, tuple(providers)))
    return parsed


def expectations_for(rules: list[tuple[list[str], tuple[Provider, ...]]]) -> tuple[list[Expectation], list[str]]:
    """One expectation per resource to scan (the first rule naming a resource wins, as in
    kube-apiserver), secrets and configmaps always; and what cannot be scanned, with why."""
    chosen: dict[str, tuple[Provider, ...]] = {}
    skipped = []
    for names, providers in rules:
        for name in names:
            if "*" in name:
                skipped.append(f"{name}: a wildcard rule; its resources are not scanned one by one")
                continue
            chosen.setdefault(name.removesuffix("."), providers)  # "secrets." is how some configs name core resources
    for wildcard in ("*.", "*.*"):
        for names, providers in rules:
            if wildcard in names:
                for name in ALWAYS_SCANNED:
                    chosen.setdefault(name, providers)
    for name in ALWAYS_SCANNED:
        chosen.setdefault(name, ())  # not in the config: stored unencrypted
    ordered = list(ALWAYS_SCANNED) + sorted(set(chosen) - set(ALWAYS_SCANNED))
    return [Expectation(name, etcd_prefix(name), chosen[name]) for name in ordered], skipped


# ---------------------------------------------------------------------------
# Evidence


@dataclass
class NodeEncryption:
    node: str
    manifest: str = MANIFEST
    manifest_found: bool = False
    manifest_problem: str | None = None
    flags: dict[str, str] = field(default_factory=dict)  # the FLAGS present (paths and URLs; no secrets)
    config: ConfigSummary | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "manifest": self.manifest,
            "manifestFound": self.manifest_found,
            "manifestProblem": self.manifest_problem,
            "flags": self.flags,
            "config": self.config.as_dict() if self.config else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NodeEncryption:
        return cls(
            data["node"],
            data["manifest"],
            bool(data["manifestFound"]),
            data.get("manifestProblem"),
            dict(data.get("flags") or {}),
            ConfigSummary.from_dict(data["config"]) if data.get("config") else None,
        )


@dataclass
class EncryptionEvidence:
    target: str  # cluster:<name>, the target of the scan
    nodes: dict[str, NodeEncryption | tuple[str, str]] = field(
        default_factory=dict
    )  # node -> observations or (kind, message)
    scan: ScanResult | tuple[str, str] | None = None

    def as_dict(self) -> dict[str, Any]:
        def failure(value: tuple[str, str]) -> dict[str, str]:
            return {"kind": value[0], "message": value[1]}

        return {
            "schema": SCHEMA,
            "target": self.target,
            "nodes": {
                name: value.as_dict() if isinstance(value, NodeEncryption) else {"failure": failure(value)}
                for name, value in self.nodes.items()
            },
            "scan": None
            if self.scan is None
            else self.scan.as_dict()
            if isinstance(self.scan, ScanResult)
            else {"failure": failure(self.scan)},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EncryptionEvidence:
        if data.get("schema") != SCHEMA:
            raise ValueError(f"not {SCHEMA} evidence")

        def node(value: dict[str, Any]) -> NodeEncryption | tuple[str, str]:
            return (
                (value["failure"]["kind"], value["failure"]["message"])
                if "failure" in value
                else NodeEncryption.from_dict(value)
            )

        scan = data.get("scan")
        return cls(
            data["target"],
            {name: node(value) for name, value in data["nodes"].items()},
            None
            if scan is None
            else (scan["failure"]["kind"], scan["failure"]["message"])
            if "failure" in scan
            else ScanResult.from_dict(scan),
        )


class EncryptionView:
    """The ``encryption`` parameter: each control-plane node's manifest and config."""

    def __init__(self, evidence: EncryptionEvidence):
        self.evidence = evidence

    def node(self, name: str) -> NodeEncryption:
        found = self.evidence.nodes.get(name)
        if found is None:
            raise TargetUnavailable(f"node:{name}", "missing", "no encryption evidence was gathered for this node")
        if not isinstance(found, NodeEncryption):
            raise TargetUnavailable(f"node:{name}", *found)
        return found

    def observed(self) -> dict[str, NodeEncryption]:
        return {name: value for name, value in self.evidence.nodes.items() if isinstance(value, NodeEncryption)}

    def failures(self) -> dict[str, tuple[str, str]]:
        return {name: value for name, value in self.evidence.nodes.items() if not isinstance(value, NodeEncryption)}


# ---------------------------------------------------------------------------
# Gathering


@dataclass
class _NodeRead:
    """One node's observations, plus what the scan needs from it (in memory only)."""

    observed: NodeEncryption
    rules: list[tuple[list[str], tuple[Provider, ...]]] = field(default_factory=list, repr=False)


def _read_file(transport: NodeTransport, path: str, *, stat: bool = False) -> tuple[str | None, str | None]:
    """(stat line, content) of a root-only file; content None when it does not exist.
    A file that exists but cannot be read (no passwordless sudo …) is a TransportError
    ("permission"): that node's checks are ERROR, never FAIL. As acpcheck's loader does
    with local files, only a regular file within the input size limit is read (checked on
    the node, and at most one byte more is sent): a FIFO, a device or a huge file named by
    a manifest is that node's ERROR ("probe"), not a read without end."""
    from acpcheck.transport.errors import TransportError
    from acpcheck.yamlsource import max_input_bytes

    quoted, limit = shlex.quote(path), max_input_bytes()
    script = (
        f"if [ ! -e {quoted} ]; then echo acpcheck-missing; exit 0; fi\n"
        f"if [ ! -f {quoted} ]; then echo acpcheck-not-regular; exit 0; fi\n"
        f"stat -L -c '%a %U %G %s' -- {quoted} || exit 1\n"
        f"head -c {limit + 1} -- {quoted}"
    )
    result = transport.run_as_root(script)
    if not result.ok:
        first = (result.stderr.strip().splitlines() or [f"exit status {result.exit_status}"])[-1][:200]
        raise TransportError("permission", f"{transport.node}: cannot read {path}: {first}")
    if result.stdout.startswith("acpcheck-missing"):
        return None, None
    if result.stdout.startswith("acpcheck-not-regular"):
        raise TransportError(
            "probe",
            (
                f"{transport.node}: {path} is not a regular file (a FIFO, a device or a directory?); acpcheck "
                "reads regular files only"
            ),
        )
    head, _, body = result.stdout.partition("\n")
    size = head.split()[-1] if head.split() else ""
    if (size.isdigit() and int(size) > limit) or len(body) > limit:
        raise TransportError(
            "probe",
            (
                f"{transport.node}: {path} is larger than {limit:,} bytes, the input size limit "
                "(ACPCHECK_MAX_INPUT_BYTES raises it)"
            ),
        )
    return (head if stat else None), body


def read_node(transport: NodeTransport, salt: bytes) -> _NodeRead:
    """The manifest and encryption config of one control-plane node."""
    observed = NodeEncryption(transport.node)
    read = _NodeRead(observed)
    _, manifest = _read_file(transport, MANIFEST)
    if manifest is None:
        observed.manifest_problem = (
            f"{MANIFEST} does not exist (not a kubeadm-style control-plane node, or kube-apiserver runs otherwise)"
        )
        return read
    observed.manifest_found = True
    flags, problem = manifest_flags(manifest)
    observed.manifest_problem = problem
    observed.flags = {name: flags[name] for name in FLAGS if name in flags}
    path = flags.get("encryption-provider-config")
    if not path:
        return read
    summary = ConfigSummary(path)
    observed.config = summary
    head, text = _read_file(transport, path, stat=True)
    if text is None:
        return read
    summary.exists = True
    mode, owner, group, size = ((head or "").split() + ["", "", "", ""])[:4]
    summary.mode, summary.owner, summary.group = mode.zfill(4) if mode else None, owner or None, group or None
    summary.size = int(size) if size.isdigit() else None
    summary.fingerprint = hmac.new(salt, text.encode(), hashlib.sha256).hexdigest()[:16]
    read.rules = parse_config(text, summary)
    return read


def _credentials(transport: NodeTransport, flags: dict[str, str]) -> Any:
    from acpcheck.transport.etcd import ClientCredentials, EtcdError

    texts = []
    for flag in ("etcd-cafile", "etcd-certfile", "etcd-keyfile"):
        path = flags.get(flag)
        if not path:
            raise EtcdError("config", f"the kube-apiserver manifest has no --{flag}")
        _, content = _read_file(transport, path)
        if content is None:
            raise EtcdError("config", f"--{flag} {path} does not exist")
        texts.append(content)
    return ClientCredentials(*texts)


def scan_from(transport: NodeTransport, read: _NodeRead, sample: int | None) -> ScanResult:
    """Scan etcd through a forward from this node, with what its manifest names (EtcdError otherwise)."""
    from acpcheck.sources.encryption_scan import scan
    from acpcheck.transport.errors import TransportError
    from acpcheck.transport.etcd import EtcdClient, EtcdError

    flags = read.observed.flags
    servers = [url.strip() for url in flags.get("etcd-servers", "").split(",") if url.strip()]
    if not servers:
        raise EtcdError("config", "the kube-apiserver manifest has no --etcd-servers")
    credentials = _credentials(transport, flags)
    expectations, skipped = expectations_for(read.rules)
    errors: list[str] = []
    last_kind = "config"
    for url in servers:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme != "https" or not parsed.hostname:
            errors.append(f"{url}: not an https:// etcd address")
            continue
        port = parsed.port or 2379
        try:
            forward = transport.forward(parsed.hostname, port)
        except TransportError as error:
            errors.append(error.message)
            last_kind = error.kind
            continue
        try:
            with (
                forward,
                EtcdClient(forward.address, parsed.hostname, credentials, label=f"{transport.node}: {url}") as client,
            ):
                try:
                    result = scan(client, expectations, sample=sample, node=transport.node, endpoint=url)
                except (
                    KeyError,
                    TypeError,
                    ValueError,
                ) as error:  # JSON, but not etcd's (binascii.Error is a ValueError)
                    raise EtcdError(
                        "error",
                        f"{transport.node}: {url}: the answers are not what etcd sends ({type(error).__name__})",
                    ) from None
                result.skipped = skipped
                return result
        except EtcdError as error:
            errors.append(error.message)
            last_kind = error.kind
    raise EtcdError(last_kind, "; ".join(errors))


def sample_size(plan: ClusterPlan, environ: dict[str, str] | None = None) -> int | None:
    env = os.environ if environ is None else environ
    value = env.get(SAMPLE_ENV, "").strip()
    if value:
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"{SAMPLE_ENV}={value!r} is not a positive number")
        return int(value)
    return plan.spec.etcd_encryption.sample


class EncryptionSource:
    name: ClassVar[str] = "encryption"
    order: ClassVar[int] = 10  # after node facts: reuses their failures and their SSH sessions

    def gather(self, context: GatherContext) -> EncryptionEvidence:
        from acpcheck.facts.model import GatherFailure
        from acpcheck.transport.errors import TransportError
        from acpcheck.transport.etcd import EtcdError

        plan = context.plan
        evidence = EncryptionEvidence(target=f"cluster:{plan.metadata.name}")
        control_plane = plan.control_plane
        if not control_plane:
            evidence.scan = (
                "config",
                "the plan lists no control-plane nodes to read the encryption config and etcd from",
            )
            return evidence
        facts = context.gathered.get("nodes") or {}
        salt = secrets.token_bytes(32)  # fingerprints compare within this run, and say nothing else
        reads: dict[str, _NodeRead] = {}

        def one(node: Node) -> tuple[str, _NodeRead | tuple[str, str]]:
            failure = facts.get(node.name)
            if isinstance(failure, GatherFailure):
                return node.name, (failure.kind, failure.message)
            try:
                return node.name, read_node(context.pool.session(node), salt)
            except TransportError as error:
                return node.name, (error.kind, error.message)

        done = 0
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(16, len(control_plane))) as pool:
            for name, outcome in pool.map(one, control_plane):
                done += 1
                if isinstance(outcome, _NodeRead):
                    reads[name] = outcome
                    evidence.nodes[name] = outcome.observed
                else:
                    evidence.nodes[name] = outcome
                if context.progress is not None:
                    context.progress(self.name, done, len(control_plane), name, isinstance(outcome, _NodeRead))
        try:
            sample = sample_size(plan)
        except ValueError as error:
            evidence.scan = ("config", str(error))
            return evidence
        attempts: list[str] = []
        kind = "config"
        for node in control_plane:
            read = reads.get(node.name)
            if read is None:
                failure = evidence.nodes[node.name]
                attempts.append(f"{node.name}: {failure[1] if isinstance(failure, tuple) else 'not read'}")
                continue
            if not read.observed.flags.get("etcd-servers"):
                attempts.append(
                    f"{node.name}: "
                    f"{read.observed.manifest_problem or 'its kube-apiserver manifest names no --etcd-servers'}"
                )
                continue
            try:
                evidence.scan = scan_from(context.pool.session(node), read, sample)
                break
            except (EtcdError, TransportError) as error:
                attempts.append(f"{node.name}: {error.message}")
                kind = error.kind
        else:
            evidence.scan = (kind, "etcd could not be read from any control-plane node: " + " | ".join(attempts))
        reads.clear()  # the keys go with them
        return evidence

    def unavailable(self, plan: ClusterPlan, message: str) -> EncryptionEvidence:
        return EncryptionEvidence(
            f"cluster:{plan.metadata.name}",
            {node.name: ("error", message) for node in plan.control_plane},
            ("error", message),
        )

    def save(self, evidence: EncryptionEvidence, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / EVIDENCE_FILE).write_text(json.dumps(evidence.as_dict(), indent=1) + "\n")

    def load(self, directory: Path, plan: ClusterPlan) -> EncryptionEvidence:
        from acpcheck.errors import InputError, Problem

        path = directory / EVIDENCE_FILE
        if not path.exists():
            missing = ("missing", f"no encryption evidence in {directory}")
            return EncryptionEvidence(
                f"cluster:{plan.metadata.name}", {node.name: missing for node in plan.control_plane}, missing
            )
        try:
            return EncryptionEvidence.from_dict(json.loads(path.read_text()))
        except (ValueError, KeyError, TypeError) as error:
            raise InputError(
                [Problem(str(path), None, "", f"damaged encryption evidence: {type(error).__name__}: {error}")]
            ) from None

    def provide(self, parameter: str, evidence: EncryptionEvidence, plan: ClusterPlan, param: Any) -> Any:
        if parameter == "etcd":
            if evidence.scan is None:
                raise TargetUnavailable(evidence.target, "missing", "etcd was not scanned")
            if not isinstance(evidence.scan, ScanResult):
                raise TargetUnavailable(evidence.target, *evidence.scan)
            return evidence.scan
        return EncryptionView(evidence)
