"""etcd encryption at rest (ACP's etcd Encryption Manager), proven three ways.

1. What the plugin says: its ``EtcdEncryptionConfig`` named ``default`` (acp-facts §7,
   the etcd Encryption page): aesgcm, secrets and configmaps, one revision everywhere,
   every control-plane node Success, migration Success, keys rotated on time
   (ACP-ENC-001 … 007, target ``cluster:<name>``, parameter ``cluster``).
2. What each control-plane node has: the kube-apiserver manifest names an encryption
   config, the file is 0600 root, parses, encrypts with aesgcm first, keeps at most 8 keys,
   and is the same file on every control-plane node (ACP-ENC-008 … 012, ``node:<name>``
   and ``node:*``, parameter ``encryption``).
3. What etcd really holds: every value of every encrypted resource begins
   ``k8s:enc:aesgcm:v1:<key>:`` with a key of the node's config and decrypts with it
   (ACP-ENC-013, parameter ``etcd``). The status can say Success while the bytes say
   otherwise; this check reads the bytes.

The checks do not apply to clusters ACP does not build on-premises, to ACP before 4.1
(no Encryption Manager), to the ``global`` cluster of ACP 4.1–4.3 (not supported there),
to a plan that says ``spec.etcdEncryption.expected: false``, and — those that read the
API — to a run without a kubeconfig. Profiles: ``upgrade`` runs them; ``preinstall``
does not (the cluster does not exist yet).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Annotated, Any

from packaging.specifiers import SpecifierSet
from pydantic import Field

from acpcheck import Scope, Severity, When, check, fail, fail_if, manual, skip, warn
from acpcheck.constants import ACP_DOCS, ETCD_ENCRYPTION, GLOBAL_DR
from acpcheck.sources.base import TargetUnavailable
from acpcheck.sources.cluster import ETCD_ENCRYPTION_CONFIG, ClusterView
from acpcheck.sources.encryption_scan import FAILING, ScanResult
from acpcheck.transport.kube import kubeconfig_of

ENCRYPTION_PAGES = [
    f"{ACP_DOCS}/{version}/configure/clusters/etcd-encryption.html" for version in ("4.1", "4.2", "4.3")
]
CRD = (
    "https://github.com/alauda/acp-docs/blob/release-4.3/docs/shared/crds/cluster.alauda.io_etcdencryptionconfigs.yaml"
)
UPSTREAM = "https://kubernetes.io/docs/tasks/administer-cluster/encrypt-data/"
UPSTREAM_CONFIG = "https://kubernetes.io/docs/reference/config-api/apiserver-config.v1/"

#: The resources the Encryption Manager encrypts by default (its Default Configuration table).
DEFAULT_RESOURCES = ("secrets", "configmaps")
#: "The controller keeps the 8 most recent keys" (the etcd Encryption page).
MAX_KEYS = 8
#: Hours after rotationInterval before a rotation counts as overdue: ours (the docs give none).
DEFAULT_GRACE_HOURS = 24
#: The ACP versions whose Encryption Manager does not support the global cluster.
NO_GLOBAL = SpecifierSet(">=4.1,<4.4")

PARAMS: dict[str, Any] = {
    "requireEtcdEncryption": Annotated[bool, Field(strict=True)],
    "etcdKeyRotationGraceHours": Annotated[int, Field(strict=True, ge=0, le=24 * 365)],
}


@dataclass(frozen=True)
class EncryptionApplies(When):
    """``When`` plus the encryption-specific reasons a check does not apply."""

    live_api: bool = False  # reads the Kubernetes API: needs a kubeconfig

    def not_applicable(self, plan: Any) -> str | None:
        reason = super().not_applicable(plan)
        if reason:
            return reason
        if plan.spec.etcd_encryption.expected is False:
            return (
                "not applicable: the plan says this cluster does not encrypt etcd (spec.etcdEncryption.expected: false)"
            )
        if plan.spec.cluster.role == "global" and plan.spec.acp.version in NO_GLOBAL:
            return (
                "not applicable: the etcd Encryption Manager does not support the global cluster in ACP 4.1–4.3 "
                "(its documentation: supported on On-Premises and DCS clusters, not on global)"
            )
        if self.live_api and kubeconfig_of(plan)[0] is None:
            return "not applicable: no kubeconfig (spec.kubeconfig, or --kubeconfig): live-cluster checks need one"
        return None

    def describe(self) -> str:
        extra = ["not the global cluster (4.1–4.3)"]
        if self.live_api:
            extra.append("with a kubeconfig")
        return ", ".join([super().describe(), *extra])


ON_PREMISE = frozenset({"on-premise"})
LIVE = EncryptionApplies(acp=">=4.1", cluster_types=ON_PREMISE, live_api=True)
NODES = EncryptionApplies(acp=">=4.1", cluster_types=ON_PREMISE)
CONTROL_PLANE = frozenset({"control-plane"})
TAGS = frozenset({"encryption", "security"})


def status_check(**declared: Any) -> Any:
    """``@check`` for the EtcdEncryptionConfig rules: cluster scope, a kubeconfig, the profile parameters."""
    return check(scope=Scope.CLUSTER, applies=LIVE, tags=TAGS, params=PARAMS, **declared)


def node_config_check(**declared: Any) -> Any:
    """``@check`` for the rules about each control-plane node's manifest and config."""
    return check(scope=Scope.NODE, roles=CONTROL_PLANE, applies=NODES, tags=TAGS, **declared)


def expected(plan: Any, params: dict[str, Any]) -> bool:
    """Whether encryption is required: the plan says so, or the profile's requireEtcdEncryption."""
    return plan.spec.etcd_encryption.expected is True or bool(params.get("requireEtcdEncryption", False))


def the_config(plan: Any, params: dict[str, Any], cluster: ClusterView) -> dict[str, Any]:
    """The EtcdEncryptionConfig ``default``; SKIP when it is not there and nobody expects it,
    ERROR (could not check) when it is expected but missing (ACP-ENC-001 FAILs then)."""
    served = cluster.served(ETCD_ENCRYPTION_CONFIG)
    found = cluster.get(ETCD_ENCRYPTION_CONFIG) if served else None
    if found is not None:
        return found
    what = (
        "the cluster does not serve etcdencryptionconfigs.cluster.alauda.io (the etcd Encryption Manager "
        "plugin is not installed)"
        if not served
        else "the cluster has no EtcdEncryptionConfig named default"
    )
    if expected(plan, params):
        raise TargetUnavailable(
            cluster.target, "not-served" if not served else "absent", f"{what}; ACP-ENC-001 reports it"
        )
    skip(
        f"{what}, and neither the plan (spec.etcdEncryption.expected) nor the profile "
        "(requireEtcdEncryption) expects etcd encryption"
    )


def _resource_name(name: str) -> str:
    return name.strip().removesuffix(".").removesuffix(".core")


def go_duration(text: str) -> dt.timedelta:
    """A Go duration (``168h0m0s``, ``1h30m``, ``90s``); ValueError otherwise."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|µs|ns|h|m|s)", text or "")
    if not parts or "".join(number + unit for number, unit in parts) != text:
        raise ValueError(f"{text!r} is not a duration like 168h0m0s")
    return dt.timedelta(seconds=sum(float(number) * units[unit] for number, unit in parts))


# ---------------------------------------------------------------------------
# 1. What the plugin says


@status_check(
    id="ACP-ENC-001",
    title="the EtcdEncryptionConfig named default exists where etcd encryption is expected",
    severity=Severity.HIGH,
    refs=[ETCD_ENCRYPTION, CRD],
    remediation="Install the etcd Encryption Manager cluster plugin (Administrator > Clusters > Cluster Plugins); it "
    "creates "
    "EtcdEncryptionConfig default. Check with: kubectl get etcdencryptionconfig default -o yaml",
)
def check_config_exists(plan: Any, params: dict[str, Any], cluster: ClusterView) -> None:
    """The etcd Encryption Manager (ACP 4.1+, On-Premises and DCS clusters) rotates the
    etcd encryption keys, writes the encryption config to every control-plane node and
    re-encrypts secrets and configmaps; its state is the cluster-scoped
    ``EtcdEncryptionConfig`` named ``default`` (cluster.alauda.io/v1alpha1). When the plan
    (``spec.etcdEncryption.expected: true``) or the profile (``requireEtcdEncryption``)
    expects encryption, that object must exist. Otherwise an installed plugin passes and a
    missing one is SKIPped."""
    served = cluster.served(ETCD_ENCRYPTION_CONFIG)
    found = cluster.get(ETCD_ENCRYPTION_CONFIG) if served else None
    if found is not None:
        return
    why = (
        "the cluster does not serve etcdencryptionconfigs.cluster.alauda.io: the etcd Encryption Manager "
        "plugin is not installed"
        if not served
        else "the etcd Encryption Manager's CRD is there, but EtcdEncryptionConfig default is not"
    )
    if expected(plan, params):
        source = (
            "the plan (spec.etcdEncryption.expected: true)"
            if plan.spec.etcd_encryption.expected
            else "the profile (requireEtcdEncryption)"
        )
        fail(f"{why}, and {source} expects etcd encryption", served=served)
    if served:
        warn(f"{why}: nothing is encrypted by it")
    skip(f"{why}; neither the plan nor the profile expects etcd encryption")


@status_check(
    id="ACP-ENC-002",
    title="EtcdEncryptionConfig default encrypts with aesgcm",
    severity=Severity.HIGH,
    refs=[ETCD_ENCRYPTION, CRD],
    remediation="Set spec.type: aesgcm in EtcdEncryptionConfig default (the only type the plugin supports): "
    'kubectl patch etcdencryptionconfig default --type merge -p \'{"spec":{"type":"aesgcm"}}\'',
)
def check_type_aesgcm(plan: Any, params: dict[str, Any], cluster: ClusterView) -> None:
    """The plugin's algorithm is 256-bit AES-GCM; ``spec.type`` is an enum with the one
    value ``aesgcm`` (its CRD). Anything else is a config the controller cannot act on."""
    config = the_config(plan, params, cluster)
    kind = (config.get("spec") or {}).get("type")
    if kind != "aesgcm":
        fail(f"spec.type is {kind!r}; the etcd Encryption Manager encrypts with aesgcm only", type=kind)


@status_check(
    id="ACP-ENC-003",
    title="EtcdEncryptionConfig default covers secrets and configmaps",
    severity=Severity.HIGH,
    refs=[ETCD_ENCRYPTION],
    remediation="List both in spec.resources: kubectl patch etcdencryptionconfig default --type merge "
    '-p \'{"spec":{"resources":["secrets","configmaps"]}}\'',
)
def check_resources(plan: Any, params: dict[str, Any], cluster: ClusterView) -> None:
    """The plugin's default encrypts ``secrets`` and ``configmaps``: Secrets hold credentials
    and tokens, and ConfigMaps often hold connection strings. A config that drops one leaves
    it in etcd in plain text (and in every etcd snapshot and backup)."""
    config = the_config(plan, params, cluster)
    listed = {_resource_name(str(name)) for name in (config.get("spec") or {}).get("resources") or []}
    missing = [name for name in DEFAULT_RESOURCES if name not in listed]
    if missing:
        fail(f"spec.resources {sorted(listed)} leaves out {', '.join(missing)}: stored unencrypted", missing=missing)


@status_check(
    id="ACP-ENC-004",
    title="the encryption status has one revision: status, every node and the migration",
    severity=Severity.MEDIUM,
    refs=[ETCD_ENCRYPTION, CRD],
    remediation="Wait for the rotation to finish; if the revisions stay apart, read the etcd-encryption-manager logs "
    "(kubectl -n kube-system logs deploy/etcd-encryption-manager) and the nodes' deployStatus messages.",
)
def check_revisions(plan: Any, params: dict[str, Any], cluster: ClusterView) -> None:
    """A rotation bumps ``status.revision``; each control-plane node reports the revision
    of the config it runs (``deployStatus[<ip>].revision``) and the migration the revision
    it re-encrypted to (``migration.revision``). They agree only when the rotation has
    reached every node and every object: the docs' pass criterion is status.revision ==
    deployStatus[*].revision == migration.revision."""
    status = the_config(plan, params, cluster).get("status")
    if not status:
        fail("the EtcdEncryptionConfig has no status: the controller has not reported yet")
    revision = status.get("revision")
    findings = [
        f"deployStatus[{address}].revision is {entry.get('revision')}, status.revision is {revision}"
        for address, entry in sorted((status.get("deployStatus") or {}).items())
        if entry.get("revision") != revision
    ]
    if not status.get("deployStatus"):
        findings.append("status.deployStatus is empty: no node has reported")
    migration = status.get("migration")
    if not migration:
        findings.append("status.migration is missing: no migration has been reported")
    elif migration.get("revision") != revision:
        findings.append(f"migration.revision is {migration.get('revision')}, status.revision is {revision}")
    fail_if(findings, revision=revision)


@status_check(
    id="ACP-ENC-005",
    title="every control-plane node reports the encryption config deployed (Success)",
    severity=Severity.HIGH,
    refs=[ETCD_ENCRYPTION, CRD],
    remediation="On a node in UpdateFailed/RestartFailed, compare /etc/kubernetes/encryption-provider.conf with "
    "another control-plane node's and check that kube-apiserver restarted; then let the controller retry.",
)
def check_nodes_deployed(plan: Any, params: dict[str, Any], cluster: ClusterView) -> None:
    """``status.deployStatus`` is keyed by control-plane node IP; its ``state`` is one of
    Processing, Updated, Success, UpdateFailed, RestartFailed. Only Success means the node's
    kube-apiserver runs the current config. A control-plane node missing from the map is
    one the controller never reached. The control-plane nodes are the cluster's Nodes with
    the ``node-role.kubernetes.io/control-plane`` (or ``master``) label, matched by any of
    their addresses; without such labels, the plan's control-plane nodes."""
    config = the_config(plan, params, cluster)
    deployed = (config.get("status") or {}).get("deployStatus") or {}
    members: list[tuple[str, set[str]]] = [
        (n["name"], {a["address"] for a in n.get("addresses") or [] if a.get("address")})
        for n in cluster.control_plane_nodes()
    ]
    source = "the cluster's control-plane Nodes"
    if not members:
        members = [(n.name, {str(a) for a in (n.ipv4, n.ipv6) if a}) for n in plan.control_plane]
        source = "the plan's control-plane nodes (no Node has a control-plane role label)"
    if not members:
        manual(
            "neither the cluster nor the plan names the control-plane nodes: compare status.deployStatus "
            "with them by hand"
        )
    findings = []
    for name, addresses in members:
        address = next((a for a in sorted(addresses) if a in deployed), None)
        if address is None:
            findings.append(
                f"{name} ({', '.join(sorted(addresses)) or 'no address'}) is not in status.deployStatus: "
                "the controller has not deployed to it"
            )
            continue
        entry = deployed[address]
        if entry.get("state") != "Success":
            message = str(entry.get("message") or "")[:200]
            findings.append(f"{name} ({address}) is {entry.get('state')}" + (f": {message}" if message else ""))
    fail_if(findings, nodes=source)


@status_check(
    id="ACP-ENC-006",
    title="the re-encryption (migration) of the current revision succeeded",
    severity=Severity.HIGH,
    refs=[ETCD_ENCRYPTION, CRD],
    remediation="Read status.migration.message and the etcd-encryption-manager logs; objects not migrated stay "
    "encrypted "
    "with an older key (or unencrypted) until the migration succeeds.",
)
def check_migration(plan: Any, params: dict[str, Any], cluster: ClusterView) -> None:
    """After a new key is deployed the controller rewrites every object of the encrypted
    resources so it is stored under the new key; ``status.migration.state`` (Processing,
    Success, Failed) says how that went. Until Success, old ciphertext (or plain text)
    remains in etcd."""
    migration = (the_config(plan, params, cluster).get("status") or {}).get("migration")
    if not migration:
        fail("status.migration is missing: no migration has been reported")
    if migration.get("state") != "Success":
        message = str(migration.get("message") or "")[:200]
        fail(
            f"migration of revision {migration.get('revision')} is {migration.get('state')}"
            + (f": {message}" if message else ""),
            state=migration.get("state"),
        )


@status_check(
    id="ACP-ENC-007",
    title="the etcd encryption key was rotated within its rotation interval",
    severity=Severity.MEDIUM,
    refs=[ETCD_ENCRYPTION, CRD],
    remediation="Find out why the controller stopped rotating (kubectl -n kube-system get pods | grep "
    "etcd-encryption-manager; "
    "its logs); a stuck rotation usually shows in deployStatus or migration as well.",
)
def check_rotation(plan: Any, params: dict[str, Any], cluster: ClusterView) -> None:
    """The controller rotates the key every ``spec.rotationInterval`` (default 168h0m0s, 7
    days) and then migrates; the last completed rotation is ``status.migration
    .completeTimestamp``. It is overdue when that is older than the interval plus a grace
    period: ours, 24 hours by default (profile parameter ``etcdKeyRotationGraceHours``),
    for the time a rotation and its migration take. Judged against when the cluster was
    read, so a replayed run agrees."""
    config = the_config(plan, params, cluster)
    interval_text = str((config.get("spec") or {}).get("rotationInterval") or "")
    try:
        interval = go_duration(interval_text)
    except ValueError as error:
        fail(f"spec.rotationInterval: {error}")
    migration = (config.get("status") or {}).get("migration") or {}
    completed = migration.get("completeTimestamp")
    if not completed:
        manual(
            "status.migration has no completeTimestamp: when the key was last rotated cannot be told from the status"
        )
    last = dt.datetime.fromisoformat(str(completed).replace("Z", "+00:00"))
    grace = dt.timedelta(hours=int(params.get("etcdKeyRotationGraceHours", DEFAULT_GRACE_HOURS)))
    age = cluster.observed_at - last
    if age > interval + grace:
        fail(
            f"the last rotation completed {completed}, {_days(age)} before the cluster was read; "
            f"rotationInterval is {interval_text} "
            f"(+{grace.total_seconds() / 3600:g} h grace): overdue by {_days(age - interval)}",
            completed=completed,
            interval=interval_text,
        )


def _days(delta: dt.timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.1f} hours"


# ---------------------------------------------------------------------------
# 2. What each control-plane node has


@node_config_check(
    id="ACP-ENC-008",
    title="kube-apiserver's static pod manifest names an encryption provider config",
    severity=Severity.HIGH,
    refs=[ETCD_ENCRYPTION, UPSTREAM],
    remediation="kube-apiserver needs --encryption-provider-config=/etc/kubernetes/encryption-provider.conf in "
    "/etc/kubernetes/manifests/kube-apiserver.yaml; the etcd Encryption Manager sets it when it deploys to the node.",
)
def check_manifest_flag(node: Any, encryption: Any) -> None:
    """kube-apiserver encrypts only what ``--encryption-provider-config`` tells it to; the
    flag lives in the static pod manifest ``/etc/kubernetes/manifests/kube-apiserver.yaml``.
    Without it, every new secret goes to etcd in plain text whatever the plugin's status
    says. The manifest also names the etcd endpoints and client certificate acpcheck uses
    to read etcd (ACP-ENC-013)."""
    seen = encryption.node(node.spec.name)
    if not seen.manifest_found:
        fail(f"no kube-apiserver manifest: {seen.manifest_problem}")
    if seen.manifest_problem:
        fail(f"{seen.manifest}: {seen.manifest_problem}")
    if "encryption-provider-config" not in seen.flags:
        fail(
            f"{seen.manifest} runs kube-apiserver without --encryption-provider-config: etcd is not "
            "encrypted on this node"
        )


def _config_of(node: Any, encryption: Any) -> Any:
    seen = encryption.node(node.spec.name)
    if seen.config is None:
        skip("kube-apiserver names no encryption config on this node (ACP-ENC-008 reports it)")
    return seen.config


@node_config_check(
    id="ACP-ENC-009",
    title="the encryption config file exists, mode 0600, owned by root",
    severity=Severity.HIGH,
    refs=[GLOBAL_DR, ETCD_ENCRYPTION, UPSTREAM],
    remediation="chown root:root /etc/kubernetes/encryption-provider.conf && chmod 600 "
    "/etc/kubernetes/encryption-provider.conf",
)
def check_config_file(node: Any, encryption: Any) -> None:
    """The file holds the keys that decrypt every secret in etcd: anyone who can read it and
    an etcd snapshot can read every secret. ACP's DR procedure copies it with mode 600 and
    owner root, and kube-apiserver (root) is its only reader; a stricter mode (0400) is fine."""
    config = _config_of(node, encryption)
    if not config.exists:
        fail(
            f"{config.path} (named by --encryption-provider-config) "
            + (config.parse_error or "does not exist: kube-apiserver cannot start with it")
        )
    findings = []
    mode = int(config.mode or "0", 8)
    if mode & 0o077 or mode & 0o7000:
        findings.append(f"{config.path} has mode {config.mode}; it must be 0600 (no access for group and others)")
    if config.owner != "root":
        findings.append(f"{config.path} is owned by {config.owner}; it must be owned by root")
    fail_if(findings, mode=config.mode, owner=config.owner)


@node_config_check(
    id="ACP-ENC-010",
    title="the encryption config encrypts every listed resource with aesgcm first, identity never first",
    severity=Severity.HIGH,
    refs=[ETCD_ENCRYPTION, UPSTREAM, UPSTREAM_CONFIG],
    remediation="Let the etcd Encryption Manager rewrite the file (it writes aesgcm first, identity last), or restore "
    "it from "
    "another control-plane node; then restart kube-apiserver. Never put identity first.",
)
def check_config_content(node: Any, encryption: Any) -> None:
    """kube-apiserver writes with the *first* provider of a resource's rule and its first key,
    and reads with any. ``identity`` first means new objects are stored unencrypted; a
    provider without keys cannot encrypt. The file must parse as an
    ``EncryptionConfiguration`` (apiserver.config.k8s.io/v1), cover secrets and
    configmaps (the plugin's resources), and start each rule with aesgcm and at least one
    well-formed key (16, 24 or 32 bytes, base64)."""
    config = _config_of(node, encryption)
    if not config.exists:
        skip(f"{config.path} does not exist (ACP-ENC-009 reports it)")
    if config.parse_error:
        fail(f"{config.path}: {config.parse_error}")
    findings = list(config.key_problems)
    listed = set()
    for rule in config.rules:
        names = ", ".join(rule["resources"])
        listed |= {_resource_name(name) for name in rule["resources"]}
        first = rule["providers"][0] if rule["providers"] else None
        if first is None:
            findings.append(f"{names}: no provider")
        elif first["type"] == "identity":
            findings.append(f"{names}: identity is the first provider: new objects are stored unencrypted")
        elif first["type"] != "aesgcm":
            findings.append(f"{names}: the first provider is {first['type']}, not aesgcm")
        elif not first["keys"]:
            findings.append(f"{names}: the aesgcm provider has no key")
    wildcard = listed & {"*", "*.*"}
    findings += [
        f"{name} is in no rule: stored unencrypted" for name in DEFAULT_RESOURCES if name not in listed and not wildcard
    ]
    fail_if(findings, path=config.path)


@node_config_check(
    id="ACP-ENC-011",
    title="the encryption config retains at most 8 keys",
    severity=Severity.LOW,
    refs=[ETCD_ENCRYPTION],
    remediation="Let the etcd Encryption Manager prune old keys (it keeps the 8 most recent); make sure its migrations "
    "succeed first (ACP-ENC-006), or objects still under a pruned key become unreadable.",
)
def check_key_count(node: Any, encryption: Any) -> None:
    """The controller retains the 8 most recent keys for rollback. More means it stopped
    pruning (usually a stuck migration), and every extra key is one more that decrypts
    old copies of the data (snapshots, backups)."""
    config = _config_of(node, encryption)
    if not config.exists or config.parse_error:
        skip(f"{config.path} cannot be read as a config (ACP-ENC-009/010 report it)")
    findings = []
    for rule in config.rules:
        keys = sum(len(provider["keys"]) for provider in rule["providers"] if provider["type"] != "kms")
        if keys > MAX_KEYS:
            findings.append(f"{', '.join(rule['resources'])}: {keys} keys retained (the controller keeps {MAX_KEYS})")
    fail_if(findings)


@node_config_check(
    id="ACP-ENC-012",
    title="every control-plane node has the same encryption config",
    severity=Severity.HIGH,
    refs=[ETCD_ENCRYPTION, GLOBAL_DR],
    remediation="Copy /etc/kubernetes/encryption-provider.conf from a node whose kube-apiserver reads the cluster's "
    "data "
    "(mode 600, owner root) to the others, or let the etcd Encryption Manager redeploy it; restart kube-apiserver.",
)
def check_same_config(encryption: Any) -> None:
    """Every kube-apiserver must be able to read what any other wrote: a node with a different
    key set writes secrets the others cannot decrypt (errors on reads that land on them) or
    reads with keys the others dropped. The files are compared by fingerprint (an HMAC made
    for this run; the keys themselves are never shown or saved)."""
    observed = encryption.observed()
    groups: dict[str, list[str]] = {}
    for name, seen in observed.items():
        if seen.config is None:
            key = "(no --encryption-provider-config)"
        elif not seen.config.exists:
            key = f"(missing: {seen.config.path})"
        else:
            key = f"{seen.config.path} fingerprint {seen.config.fingerprint}"
        groups.setdefault(key, []).append(name)
    unread = [f"{name} ({kind}: {message})" for name, (kind, message) in encryption.failures().items()]
    if len(groups) > 1:
        lines = [
            f"{', '.join(sorted(names))}: {key}"
            for key, names in sorted(groups.items(), key=lambda item: -len(item[1]))
        ]
        fail(
            "the control-plane nodes have different encryption configs:\n"
            + "\n".join(lines)
            + (f"\nnot read: {'; '.join(unread)}" if unread else ""),
            groups={k: sorted(v) for k, v in groups.items()},
        )
    if unread:
        agree = f"the {len(observed)} read agree; " if observed else ""
        raise TargetUnavailable(
            "node:*",
            "unreachable",
            f"{agree}not every control-plane node could be read to compare: {'; '.join(unread)}",
        )


# ---------------------------------------------------------------------------
# 3. What etcd holds


#: Namespaces named in a FAIL message, worst first (the evidence has them all).
NAMESPACES_SHOWN = 20


def _summary(counts: dict[str, int]) -> str:
    return ", ".join(f"{counts[c]} {c}" for c in FAILING if counts.get(c))


@check(
    id="ACP-ENC-013",
    title="etcd stores every secret and configmap encrypted with a key of the current config",
    severity=Severity.CRITICAL,
    scope=Scope.CLUSTER,
    applies=NODES,
    refs=[UPSTREAM, ETCD_ENCRYPTION],
    remediation="Rewrite the objects so kube-apiserver stores them with the current key: "
    "kubectl get secrets,configmaps -A -o json | kubectl replace -f -  (after fixing the config on every "
    "control-plane node: ACP-ENC-008..012); objects under an unknown key need that key back in the config first.",
    tags=TAGS,
)
def check_etcd_values(etcd: ScanResult) -> None:
    """The ground truth: the raw values in etcd, read through an SSH forward from a
    control-plane node with the client certificate its kube-apiserver uses. kube-apiserver
    prefixes every encrypted value with ``k8s:enc:<provider>:v1:<key>:``; each value must
    begin with ``k8s:enc:aesgcm:v1:<key>:`` for a key of that node's config, and decrypt
    with it (AES-GCM, the etcd key as authenticated data). Plain values (no prefix, as the
    ``identity`` provider writes them), values marked ``k8s:enc:identity``, and values under
    a key the config does not have (or that the named key does not decrypt) FAIL, counted
    per namespace with a few object names, never values. Values under an older key that the
    config still lists are readable but not yet migrated: a WARN. A status of Success
    (ACP-ENC-004..006) does not prove any of this."""
    scope = (
        f"all {etcd.examined} objects"
        if etcd.mode == "all"
        else f"an even sample of {etcd.examined} of {etcd.total} objects"
    )
    where = f"read from {etcd.node} via {etcd.endpoint} at etcd revision {etcd.revision}: {scope}"
    lines, stale, bad_total = [], [], 0
    for resource in etcd.resources:
        bad = sum(resource.counts.get(c, 0) for c in FAILING)
        bad_total += bad
        if bad:
            failing = sorted(
                ((ns, c) for ns, c in resource.namespaces.items() if any(c.get(x) for x in FAILING)),
                key=lambda item: (-sum(item[1].get(x, 0) for x in FAILING), item[0]),
            )
            per_namespace = "; ".join(f"{ns}: {_summary(c)}" for ns, c in failing[:NAMESPACES_SHOWN])
            if len(failing) > NAMESPACES_SHOWN:
                per_namespace += f"; … {len(failing) - NAMESPACES_SHOWN} more namespaces (all in the evidence)"
            examples = "; ".join(
                f"{category}: {', '.join(names)}"
                for category, names in sorted(resource.examples.items())
                if category in FAILING
            )
            lines.append(
                f"{resource.resource}: {_summary(resource.counts)} of {resource.examined} (written now as "
                f"{resource.expected}) "
                f"— per namespace: {per_namespace} — e.g. {examples}"
            )
        if resource.counts.get("stale-key"):
            stale.append(
                f"{resource.resource}: {resource.counts['stale-key']} of {resource.examined} under an older "
                "key of the config "
                f"(now {resource.expected}; keys seen: "
                f"{', '.join(f'{k} ×{n}' for k, n in sorted(resource.found_keys.items()))})"
            )
    evidence = {
        "node": etcd.node,
        "endpoint": etcd.endpoint,
        "revision": etcd.revision,
        "mode": etcd.mode,
        "examined": etcd.examined,
        "total": etcd.total,
        "resources": {r.resource: {"counts": r.counts, "namespaces": r.namespaces} for r in etcd.resources},
        "notScanned": etcd.skipped,
    }
    if bad_total:
        fail(
            f"etcd holds {bad_total} of {etcd.examined} objects not encrypted with a key of {etcd.node}'s "
            f"config ({where}):\n" + "\n".join(lines + stale),
            **evidence,
        )
    if stale:
        warn(
            f"every object is encrypted with a key of the config, but not all with the current one ({where}):\n"
            + "\n".join(stale),
            **evidence,
        )
