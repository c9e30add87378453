"""Live-cluster evidence: Kubernetes API objects, read once per run.

The ``cluster`` check parameter. The client (kubeconfig, authentication, deadlines,
bounded answers) is ``acpcheck.transport.kube``; without a kubeconfig the live-cluster
checks are SKIPped (``When`` in the checks asks ``kubeconfig_of``).

What is read is declared in ``READS`` (one row per object or list the checks need),
so the run reads exactly that, saves it as ``cluster/cluster.json`` (no credentials:
server URL, context and user *names*, the objects) and ``--facts`` replays it. Each
read ends as ``ok``, ``absent`` (404 for the object), ``not-served`` (the cluster does
not serve the resource type: a plugin is not installed), ``forbidden`` (403: the
verb and resource that were refused) or ``error``; failures before any read
(unreachable, TLS, 401, a broken kubeconfig) are one ``failure`` for the whole
cluster. A check reads them through ``ClusterView``, which raises
``TargetUnavailable`` (ERROR with the reason) for anything but ok/absent.

The ``kubernetes`` package is imported inside ``gather`` only: plan-only and node-only
runs never load it.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from acpcheck.matrix.removed_apis import RemovedApi, removed_apis
from acpcheck.sources.base import GatherContext, TargetUnavailable
from acpcheck.transport.deadline import REQUEST_TIMEOUT_ENV, request_timeout
from acpcheck.transport.kube import (
    ApiFailure,
    KubeClient,
    KubeconfigError,
    Read,
    kubeconfig_of,
    load_kubeconfig,
)

if TYPE_CHECKING:
    from acpcheck.model.plan import ClusterPlan

EVIDENCE_FILE = "cluster.json"
SCHEMA = "acpcheck/cluster/v1"
#: Control-plane node labels (kubeadm today, and the name it used before 1.24).
CONTROL_PLANE_LABELS = ("node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master")
#: Role labels: node-role.kubernetes.io/<role> (Cluster Node Planning).
ROLE_LABEL_PREFIX = "node-role.kubernetes.io/"


# ---------------------------------------------------------------------------
# What is read


def _node_summary(node: dict[str, Any]) -> dict[str, Any]:
    """What the checks need of a Node (a whole Node is tens of kB: 5,000 of them would not fit a report)."""
    metadata, status = node.get("metadata") or {}, node.get("status") or {}
    labels = metadata.get("labels") or {}
    ready: dict[str, Any] = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
    return {
        "name": metadata.get("name"),
        "controlPlane": any(label in labels for label in CONTROL_PLANE_LABELS),
        "addresses": [{"type": a.get("type"), "address": a.get("address")} for a in status.get("addresses") or []],
        # Node roles (ACP-ROLE-*) and what tells an EKS or immutable-OS node (the role refusals).
        "roleLabels": {key: value for key, value in labels.items() if key.startswith(ROLE_LABEL_PREFIX)},
        "taints": [
            {k: t.get(k) for k in ("key", "value", "effect") if t.get(k) is not None}
            for t in (node.get("spec") or {}).get("taints") or []
        ],
        "eks": any(key.startswith("eks.amazonaws.com/") for key in labels)
        or str((node.get("spec") or {}).get("providerID") or "").startswith("aws://"),
        "osImage": (status.get("nodeInfo") or {}).get("osImage"),
        # Upgrade readiness (ACP-UPG-012..014): the Ready condition, the kubelet and the runtime.
        "ready": ready.get("status"),
        "readyReason": ready.get("reason"),
        "kubeletVersion": (status.get("nodeInfo") or {}).get("kubeletVersion"),
        "containerRuntimeVersion": (status.get("nodeInfo") or {}).get("containerRuntimeVersion"),
        "providerID": (node.get("spec") or {}).get("providerID"),
    }


def _secret_summary(secret: dict[str, Any]) -> dict[str, Any]:
    """A Secret without its values: its type, labels and, per key, the length and sha256 of the value."""
    import hashlib

    metadata = secret.get("metadata") or {}
    keys = {}
    for key, value in sorted((secret.get("data") or {}).items()):
        raw = base64.b64decode(value or "")
        keys[key] = {"bytes": len(raw), "sha256": hashlib.sha256(raw).hexdigest()}
    return {
        "metadata": {
            "name": metadata.get("name"),
            "namespace": metadata.get("namespace"),
            "labels": metadata.get("labels") or {},
        },
        "type": secret.get("type"),
        "keys": keys,
    }


def _annotated_summary(obj: dict[str, Any]) -> dict[str, Any]:
    metadata = obj.get("metadata") or {}
    return {
        "name": metadata.get("name"),
        "namespace": metadata.get("namespace"),
        "annotations": metadata.get("annotations") or {},
    }


#: Longest message kept of a condition or a preflight check (they are for people; a page of text is not).
MESSAGE_MAX = 500


def _text(value: Any) -> Any:
    return value[:MESSAGE_MAX] if isinstance(value, str) else value


def _csr_summary(csr: dict[str, Any]) -> dict[str, Any]:
    """A CertificateSigningRequest without its request or certificate: who signs it, its age, its condition types."""
    metadata = csr.get("metadata") or {}
    return {
        "name": metadata.get("name"),
        "signerName": (csr.get("spec") or {}).get("signerName"),
        "created": metadata.get("creationTimestamp"),
        "conditions": [c.get("type") for c in (csr.get("status") or {}).get("conditions") or []],
    }


def _cronjob_summary(cronjob: dict[str, Any]) -> dict[str, Any]:
    metadata, spec = cronjob.get("metadata") or {}, cronjob.get("spec") or {}
    return {
        "name": metadata.get("name"),
        "namespace": metadata.get("namespace"),
        "labels": metadata.get("labels") or {},
        "schedule": spec.get("schedule"),
        "suspend": spec.get("suspend"),
    }


def _daemonset_summary(daemonset: dict[str, Any]) -> dict[str, Any]:
    """A DaemonSet's name and container images (what tells the network plugin in use)."""
    metadata = daemonset.get("metadata") or {}
    pod = ((daemonset.get("spec") or {}).get("template") or {}).get("spec") or {}
    containers = [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]
    return {
        "name": metadata.get("name"),
        "namespace": metadata.get("namespace"),
        "images": [c.get("image") for c in containers if c.get("image")],
    }


def _etcd_backup_summary(config: dict[str, Any]) -> dict[str, Any]:
    metadata, spec = config.get("metadata") or {}, config.get("spec") or {}
    return {
        "name": metadata.get("name"),
        "namespace": metadata.get("namespace"),
        "paused": spec.get("paused"),
        "schedule": spec.get("schedule"),
    }


def _cluster_version_shadow_summary(cvsh: dict[str, Any]) -> dict[str, Any]:
    """What the upgrade pages tell to look at in ``cvsh.status``: conditions, preflight, current; and the request."""
    metadata, status = cvsh.get("metadata") or {}, cvsh.get("status") or {}
    preflight = status.get("preflight")
    return {
        "name": metadata.get("name"),
        "namespace": metadata.get("namespace"),
        "conditions": [
            {k: _text(c.get(k)) for k in ("type", "status", "reason", "message")}
            for c in status.get("conditions") or []
        ],
        "preflight": None
        if not isinstance(preflight, dict)
        else {
            "observedAt": preflight.get("observedAt"),
            "checks": [
                {k: _text(c.get(k)) for k in ("name", "policy", "state", "reason", "message")}
                for c in preflight.get("checks") or []
                if isinstance(c, dict)
            ],
        },
        "current": status.get("current"),
        "desiredUpdate": (cvsh.get("spec") or {}).get("desiredUpdate"),
    }


def _removed_api_summary(row: RemovedApi) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """An object seen through a removed API version: its name, and whether the API server keeps it itself."""
    annotation, _, value = (row.api_server_managed or "").partition("=")

    def summarise(obj: dict[str, Any]) -> dict[str, Any]:
        metadata = obj.get("metadata") or {}
        summary = {"name": metadata.get("name"), "namespace": metadata.get("namespace")}
        if annotation:
            summary["apiServerManaged"] = (metadata.get("annotations") or {}).get(annotation) == value
        return summary

    return summarise


def _removed_api_read(row: RemovedApi) -> Read:
    """Whether the cluster still serves ``row`` and holds anything there: one object is enough to know
    (``limit=1``); where the API server keeps objects of its own there, all of them (a handful), to tell
    those from the ones someone created."""
    return Read(
        row.key,
        row.group,
        row.version,
        row.resource,
        summarise=_removed_api_summary(row),
        limit=None if row.api_server_managed else 1,
    )


ETCD_ENCRYPTION_CONFIG = Read(
    "etcdencryptionconfig", "cluster.alauda.io", "v1alpha1", "etcdencryptionconfigs", name="default"
)
NODES = Read("nodes", "", "v1", "nodes", summarise=_node_summary)
#: The built-in registry's external address (ACP-REG-*): kept without the Secret's values.
REGISTRY_TLS_SECRET = Read(
    "registry-tls-secret",
    "",
    "v1",
    "secrets",
    name="registry-address.tls",
    namespace="kube-system",
    summarise=_secret_summary,
)
REGISTRY_INGRESS = Read(
    "registry-ingress", "networking.k8s.io", "v1", "ingresses", name="registry-address", namespace="kube-system"
)
REGISTRY_SERVICE = Read("registry-service", "", "v1", "services", name="registry", namespace="kube-system")
#: The global cluster's Cluster objects (cpaas.io/platform-url of a workload cluster), name and annotations only.
CAPI_CLUSTERS = Read(
    "capi-clusters", "cluster.x-k8s.io", "v1beta1", "clusters", namespace="cpaas-system", summarise=_annotated_summary
)


def _platform_cluster_summary(obj: dict[str, Any]) -> dict[str, Any]:
    """A cluster as ACP's registry on the global cluster records it: TKEStack's Cluster type
    (platform.tkestack.io/v1, cluster-scoped; spec.type, spec.version, status.version,
    status.phase: https://github.com/tkestack/tke/blob/master/api/platform/v1/types.go), which
    ACP keeps for every cluster it manages (``kubectl get clusters.platform.tkestack.io``,
    https://docs.alauda.io/container_platform/4.3/install/prepare/download.html).
    ``version`` is the cluster's Kubernetes version: the observed one, else the desired one."""
    metadata, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    return {
        "name": metadata.get("name"),
        "version": status.get("version") or spec.get("version") or None,
        "type": spec.get("type"),
        "phase": status.get("phase"),
        "annotations": metadata.get("annotations") or {},
    }


#: The global cluster's registry of the clusters it manages (fleet rules, discovery).
PLATFORM_CLUSTERS = Read(
    "platform-clusters", "platform.tkestack.io", "v1", "clusters", summarise=_platform_cluster_summary
)
#: Upgrade readiness (ACP-UPG-010 and up): pending CSRs, CronJobs and DaemonSets of every namespace.
CSRS = Read("csrs", "certificates.k8s.io", "v1", "certificatesigningrequests", summarise=_csr_summary)
CRONJOBS = Read("cronjobs", "batch", "v1", "cronjobs", summarise=_cronjob_summary)
DAEMONSETS = Read("daemonsets", "apps", "v1", "daemonsets", summarise=_daemonset_summary)
#: The Cluster Enhancer's etcd backup tasks ("etcd backup", ACP 4.2+ docs); cluster-scoped there, but
#: listed without a namespace it is read whatever its scope.
ETCD_BACKUP_CONFIGS = Read(
    "etcd-backup-configs",
    "enhancement.cluster.alauda.io",
    "v1",
    "etcdbackupconfigurations",
    summarise=_etcd_backup_summary,
)
#: ACP 4.3's upgrade resource, ClusterVersionShadow ``cvsh`` ``global`` in ``cpaas-system``
#: (https://docs.alauda.io/container_platform/4.3/upgrade/upgrade_global_cluster.html: kind, short
#: name, namespace, fields). The docs never give its API group: config.cpaas.io/v1 is our reading —
#: the CVO's own exemption annotation is ``config.cpaas.io/exempt-for-ver`` (same page), as OpenShift's
#: ClusterVersion, whose fields (desiredUpdate, history) it mirrors, is config.openshift.io/v1. A cluster
#: that serves it elsewhere reads as not-served, which ACP-UPG-019 reports as MANUAL, never as PASS.
CVSH_GROUP, CVSH_VERSION = "config.cpaas.io", "v1"
CLUSTER_VERSION_SHADOW = Read(
    "cluster-version-shadow",
    CVSH_GROUP,
    CVSH_VERSION,
    "clusterversionshadows",
    name="global",
    namespace="cpaas-system",
    summarise=_cluster_version_shadow_summary,
)
# Hosted control planes: the management cluster (ACP-HCP-004 and up). For an HCP plan the run's
# kubeconfig is the management cluster's (checks/hcp.py says why).


def _crd_summary(crd: dict[str, Any]) -> dict[str, Any]:
    """A CustomResourceDefinition's name and the versions it serves (its schema is tens of kB: never kept)."""
    spec = crd.get("spec") or {}
    return {
        "name": (crd.get("metadata") or {}).get("name"),
        "servedVersions": [
            v.get("name") for v in spec.get("versions") or [] if isinstance(v, dict) and v.get("served")
        ],
    }


def _ip_address_pool_summary(pool: dict[str, Any]) -> dict[str, Any]:
    """A MetalLB IPAddressPool: its addresses (CIDRs or ``first-last`` ranges), whether MetalLB hands them out
    unasked (``autoAssign``, default true), and the address counts MetalLB's newer releases keep in status
    (``availableIPv4``/``availableIPv6``; absent before them)."""
    metadata, spec, status = pool.get("metadata") or {}, pool.get("spec") or {}, pool.get("status") or {}
    return {
        "name": metadata.get("name"),
        "namespace": metadata.get("namespace"),
        "addresses": [a for a in spec.get("addresses") or [] if isinstance(a, str)],
        "autoAssign": spec.get("autoAssign", True),
        "available": {k: status[k] for k in ("availableIPv4", "availableIPv6") if isinstance(status.get(k), int)},
    }


#: Every CRD of the cluster, name and served versions: which cluster plugins are installed.
CRDS = Read("crds", "apiextensions.k8s.io", "v1", "customresourcedefinitions", summarise=_crd_summary)
#: MetalLB's address pools (https://metallb.universe.tf/configuration/#defining-the-ips-to-assign-to-the-load-balancer-services),
#: every namespace; not-served when MetalLB is not installed.
METALLB_POOLS = Read("metallb-pools", "metallb.io", "v1beta1", "ipaddresspools", summarise=_ip_address_pool_summary)
#: One read per row of acpcheck/matrix/removed_apis.yaml, by the row's key.
REMOVED_API_READS: dict[str, Read] = {row.key: _removed_api_read(row) for row in removed_apis()}
# ---------------------------------------------------------------------------
# Image sources: the registry external address's certificate (ACP-REG-005) and the
# public registry's Cloud Credential (ACP-IMG-020). Neither keeps a secret value: the first only
# the public certificate's names and dates and whether the key matches it (compared in memory),
# the second only the shape of each value.


def _tls_certificate_summary(secret: dict[str, Any]) -> dict[str, Any]:
    """A TLS Secret's certificate (public: names, dates, fingerprint) and whether its key is the
    certificate's; the key is parsed in memory and forgotten, nothing of it is kept."""
    from acpcheck.sources.certificates import describe_certificate, key_matches

    data = secret.get("data") or {}
    try:
        cert = base64.b64decode(data.get("tls.crt") or "")
        key = base64.b64decode(data.get("tls.key") or "")
    except ValueError:
        return {"type": secret.get("type"), "certificate": {"error": "a value is not base64"}, "keyMatches": None}
    return {
        "type": secret.get("type"),
        "certificate": describe_certificate(cert) if cert else None,
        "keyMatches": key_matches(cert, key) if cert and key else None,
    }


REGISTRY_AUTH_FIELDS = ("auth", "username", "password", "identitytoken")


def _auth_entry_usable(entry: Any) -> bool:
    """A registry auth entry as container clients write it (docker's config.json ``auths``): a
    base64 ``auth`` of ``user:password``, a username and a password, or an identity token."""
    if not isinstance(entry, dict):
        return False
    auth = entry.get("auth")
    if isinstance(auth, str) and auth:
        try:
            user, colon, password = base64.b64decode(auth, validate=True).partition(b":")
        except ValueError:
            return False
        return bool(colon and user and password)
    if entry.get("identitytoken"):
        return True
    return bool(entry.get("username") and entry.get("password"))


def _credential_value_shape(raw: bytes) -> dict[str, Any]:
    """The shape of one Secret value, never the value: empty, text, json, or registry auth
    entries (``docker-config``: ``{"auths": {registry: entry}}``; ``dockercfg``: ``{registry: entry}``)
    with how many entries there are and how many are usable."""
    shape: dict[str, Any] = {"bytes": len(raw)}
    if not raw.strip():
        return {**shape, "shape": "empty"}
    try:
        document = json.loads(raw)
    except ValueError:
        return {**shape, "shape": "text"}
    if isinstance(document, dict) and isinstance(document.get("auths"), dict):
        kind, entries = "docker-config", document["auths"]
    elif (
        isinstance(document, dict)
        and document
        and all(isinstance(v, dict) and any(f in v for f in REGISTRY_AUTH_FIELDS) for v in document.values())
    ):
        kind, entries = "dockercfg", document
    else:
        return {**shape, "shape": "json"}
    usable = sum(1 for entry in entries.values() if _auth_entry_usable(entry))
    return {**shape, "shape": kind, "entries": len(entries), "usable": usable}


def _registry_credential_summary(secret: dict[str, Any]) -> dict[str, Any]:
    metadata = secret.get("metadata") or {}
    status = (metadata.get("annotations") or {}).get("cpaas.io/status") or (metadata.get("labels") or {}).get(
        "cpaas.io/status"
    )
    keys: dict[str, Any] = {}
    for key, value in sorted((secret.get("data") or {}).items()):
        try:
            keys[key] = _credential_value_shape(base64.b64decode(value or ""))
        except ValueError:
            keys[key] = {"shape": "not-base64"}
    return {
        "metadata": {"name": metadata.get("name"), "namespace": metadata.get("namespace")},
        "type": secret.get("type"),
        "status": status if isinstance(status, str) else None,
        "keys": keys,
    }


#: The registry external address's certificate (ACP-REG-005), read apart from REGISTRY_TLS_SECRET's summary.
REGISTRY_TLS_CERTIFICATE = Read(
    "registry-tls-certificate",
    "",
    "v1",
    "secrets",
    name="registry-address.tls",
    namespace="kube-system",
    summarise=_tls_certificate_summary,
)
#: The built-in Cloud Credential public-registry-credential (ACP-IMG-020): a Secret of that name in
#: cpaas-system (checks/registry.py says why), kept as the shape of its values only.
PUBLIC_REGISTRY_CREDENTIAL = Read(
    "public-registry-credential",
    "",
    "v1",
    "secrets",
    name="public-registry-credential",
    namespace="cpaas-system",
    summarise=_registry_credential_summary,
)
# --- end of the image-source block -------------------------------------------------------------

#: Everything a run reads from the API (later issues add rows here).
READS: tuple[Read, ...] = (
    NODES,
    ETCD_ENCRYPTION_CONFIG,
    REGISTRY_TLS_SECRET,
    REGISTRY_INGRESS,
    REGISTRY_SERVICE,
    CAPI_CLUSTERS,
    PLATFORM_CLUSTERS,
    CSRS,
    CRONJOBS,
    DAEMONSETS,
    ETCD_BACKUP_CONFIGS,
    CLUSTER_VERSION_SHADOW,
    CRDS,
    METALLB_POOLS,
    *REMOVED_API_READS.values(),
    REGISTRY_TLS_CERTIFICATE,
    PUBLIC_REGISTRY_CREDENTIAL,
)


# ---------------------------------------------------------------------------
# Evidence


@dataclass
class ReadResult:
    status: str  # ok | absent | not-served | forbidden | error
    object: dict[str, Any] | None = None
    items: list[dict[str, Any]] | None = None
    message: str = ""

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"status": self.status}
        if self.object is not None:
            data["object"] = self.object
        if self.items is not None:
            data["items"] = self.items
        if self.message:
            data["message"] = self.message
        return data


@dataclass
class ClusterEvidence:
    """What the API said, without credentials. ``failure`` (kind, message): nothing could be read."""

    target: str
    kubeconfig: str | None = None
    context: str | None = None
    server: str | None = None
    user: str | None = None  # the kubeconfig's user entry name, never its credentials
    auth: str | None = None  # token | client-certificate | exec | none
    tls_verify: bool = True
    observed_at: str | None = None  # ISO 8601 UTC: time-based rules judge against this, so a replay agrees
    version: dict[str, Any] | None = None
    failure: tuple[str, str] | None = None
    reads: dict[str, ReadResult] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "target": self.target,
            "kubeconfig": self.kubeconfig,
            "context": self.context,
            "server": self.server,
            "user": self.user,
            "auth": self.auth,
            "tlsVerify": self.tls_verify,
            "observedAt": self.observed_at,
            "version": self.version,
            "failure": {"kind": self.failure[0], "message": self.failure[1]} if self.failure else None,
            "reads": {key: result.as_dict() for key, result in self.reads.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClusterEvidence:
        if data.get("schema") != SCHEMA:
            raise ValueError(f"not {SCHEMA} evidence")
        failure = data.get("failure")
        return cls(
            target=data["target"],
            kubeconfig=data.get("kubeconfig"),
            context=data.get("context"),
            server=data.get("server"),
            user=data.get("user"),
            auth=data.get("auth"),
            tls_verify=bool(data.get("tlsVerify", True)),
            observed_at=data.get("observedAt"),
            version=data.get("version"),
            failure=(failure["kind"], failure["message"]) if failure else None,
            reads={
                key: ReadResult(value["status"], value.get("object"), value.get("items"), value.get("message", ""))
                for key, value in data["reads"].items()
            },
        )


@dataclass(frozen=True)
class LiveProvenance:
    """Where a run's live-cluster evidence came from, for every report to say: the API
    server, the kubeconfig context and user *names* (never a credential), the API
    server's version as its ``/version`` said, and when it was read. A run that
    replayed saved evidence (``--facts``) keeps the original reading's time and says
    that it replayed it, from where and when. ``as_dict`` is results.json's
    ``run.liveEvidence`` (reports/results.schema.json)."""

    server: str
    context: str | None
    user: str | None
    server_version: str | None  # /version's gitVersion; None when the API could not be read
    read_at: str | None  # ISO 8601 UTC
    replayed_from: str | None = None  # the evidence directory this run replayed, else None
    replayed_at: str | None = None  # when this run replayed it (the run's start)

    def as_dict(self) -> dict[str, str | None]:
        return {
            "server": self.server,
            "context": self.context,
            "user": self.user,
            "serverVersion": self.server_version,
            "readAt": self.read_at,
            "replayedFrom": self.replayed_from,
            "replayedAt": self.replayed_at,
        }


def live_provenance(
    evidence: ClusterEvidence, replayed_from: str | None = None, replayed_at: str | None = None
) -> LiveProvenance | None:
    """The provenance of ``evidence``; None when no API server was named (no kubeconfig,
    or one that could not be read): then no cluster was read, and the reports say nothing."""
    if evidence.server is None:
        return None
    version = (evidence.version or {}).get("gitVersion")
    return LiveProvenance(
        server=evidence.server,
        context=evidence.context,
        user=evidence.user,
        server_version=str(version) if version else None,
        read_at=evidence.observed_at,
        replayed_from=replayed_from,
        replayed_at=replayed_at if replayed_from is not None else None,
    )


class ClusterView:
    """What a check receives as ``cluster``: the objects read, by ``Read``."""

    def __init__(self, evidence: ClusterEvidence):
        self.evidence = evidence
        self.target = evidence.target

    @property
    def observed_at(self) -> dt.datetime:
        """When the cluster was read (time-based rules compare with this, not with "now")."""
        assert self.evidence.observed_at is not None
        return dt.datetime.fromisoformat(self.evidence.observed_at.replace("Z", "+00:00"))

    @property
    def server(self) -> str | None:
        return self.evidence.server

    @property
    def server_version(self) -> str | None:
        """The API server's ``/version`` gitVersion (``v1.34.5``); None when it did not say."""
        version = (self.evidence.version or {}).get("gitVersion")
        return str(version) if version else None

    def _result(self, read: Read) -> ReadResult:
        result = self.evidence.reads.get(read.key)
        if result is None:
            raise TargetUnavailable(
                self.target, "missing", f"the evidence holds no {read.describe()} (gathered by an older acpcheck?)"
            )
        return result

    def served(self, read: Read) -> bool:
        """Whether the cluster serves ``read``'s resource type (False: e.g. its plugin is not installed)."""
        result = self._result(read)
        if result.status == "not-served":
            return False
        if result.status in ("ok", "absent"):
            return True
        raise TargetUnavailable(self.target, result.status, result.message)

    def get(self, read: Read) -> dict[str, Any] | None:
        """The object, or None when it does not exist; ERROR (TargetUnavailable) for any other outcome."""
        result = self._result(read)
        if result.status == "ok":
            return result.object
        if result.status == "absent":
            return None
        raise TargetUnavailable(self.target, result.status, result.message)

    def items(self, read: Read) -> list[dict[str, Any]]:
        result = self._result(read)
        if result.status == "ok":
            return list(result.items or [])
        raise TargetUnavailable(self.target, result.status, result.message)

    def control_plane_nodes(self) -> list[dict[str, Any]]:
        """The cluster's control-plane Nodes (by their role label), as ``_node_summary`` keeps them."""
        return [node for node in self.items(NODES) if node.get("controlPlane")]


# ---------------------------------------------------------------------------
# The source


def fetch(api: KubeClient, read: Read) -> ReadResult:
    """One ``Read`` as a ``ReadResult``; auth/TLS/unreachable failures propagate (they are about the whole cluster)."""
    try:
        if read.name is not None:
            return ReadResult("ok", object=api.get_object(read))
        return ReadResult("ok", items=list(api.list_objects(read)))
    except ApiFailure as failure:
        if failure.kind == "absent" and read.name is not None:
            return ReadResult("absent", message=failure.message)
        if failure.kind in ("forbidden", "error", "absent"):
            return ReadResult(failure.kind if failure.kind != "absent" else "error", message=failure.message)
        raise


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def gather_cluster(
    plan: ClusterPlan, reads: tuple[Read, ...] = READS, environ: dict[str, str] | None = None
) -> ClusterEvidence:
    """Read ``reads`` from the cluster the run's kubeconfig names (never raises for the cluster's sake)."""
    target = f"cluster:{plan.metadata.name}"
    path, context = kubeconfig_of(plan, environ)
    evidence = ClusterEvidence(target=target, kubeconfig=path, context=context, observed_at=_now())
    if path is None:
        evidence.failure = (
            "config",
            "no kubeconfig: give spec.kubeconfig in the plan (or --kubeconfig) for live-cluster checks",
        )
        return evidence
    try:
        deadline = request_timeout(environ)
    except ValueError as error:
        evidence.failure = ("config", f"{REQUEST_TIMEOUT_ENV}: {error}")
        return evidence
    try:
        kube = load_kubeconfig(path, context)
    except KubeconfigError as error:
        evidence.failure = ("config", str(error))
        return evidence
    evidence.context, evidence.server, evidence.user, evidence.auth, evidence.tls_verify = (
        kube.context,
        kube.server,
        kube.user,
        kube.auth,
        not kube.insecure,
    )
    try:
        with KubeClient(kube, deadline=deadline) as api:
            evidence.version = api.version()
            discovered: dict[str, set[str] | None] = {}
            for read in reads:
                if not api.served(read, discovered):
                    evidence.reads[read.key] = ReadResult(
                        "not-served",
                        message=(
                            f"the cluster does not serve {read.qualified}/{read.version} (is the plugin that "
                            "defines it installed?)"
                        ),
                    )
                    continue
                evidence.reads[read.key] = fetch(api, read)
    except ApiFailure as failure:
        kind = {"forbidden": "permission"}.get(failure.kind, failure.kind)
        evidence.failure = (kind, failure.message)
        evidence.reads = {}
    return evidence


class ClusterSource:
    name: ClassVar[str] = "cluster"
    order: ClassVar[int] = 5  # no node access: may run before sources that open ports on nodes

    def gather(self, context: GatherContext) -> ClusterEvidence:
        evidence = gather_cluster(context.plan)
        if context.progress is not None:
            context.progress(self.name, 1, 1, evidence.target, evidence.failure is None)
        return evidence

    def unavailable(self, plan: ClusterPlan, message: str) -> ClusterEvidence:
        return ClusterEvidence(target=f"cluster:{plan.metadata.name}", failure=("error", message), observed_at=_now())

    def save(self, evidence: ClusterEvidence, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / EVIDENCE_FILE).write_text(json.dumps(evidence.as_dict(), indent=1, sort_keys=False) + "\n")

    def load(self, directory: Path, plan: ClusterPlan) -> ClusterEvidence:
        from acpcheck.errors import InputError, Problem

        path = directory / EVIDENCE_FILE
        if not path.exists():
            return ClusterEvidence(
                target=f"cluster:{plan.metadata.name}", failure=("missing", f"no cluster evidence in {directory}")
            )
        try:
            return ClusterEvidence.from_dict(json.loads(path.read_text()))
        except (ValueError, KeyError, TypeError) as error:
            raise InputError(
                [Problem(str(path), None, "", f"damaged cluster evidence: {type(error).__name__}: {error}")]
            ) from None

    def provide(self, parameter: str, evidence: ClusterEvidence, plan: ClusterPlan, param: Any) -> ClusterView:
        if evidence.failure is not None:
            raise TargetUnavailable(evidence.target, *evidence.failure)
        return ClusterView(evidence)
