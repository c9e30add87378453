"""The acpcheck **test API server**: a small stand-in for kube-apiserver, for tests and the lab.

It is not Kubernetes and never claims to be: its banner, its ``/version``
(``gitVersion: v1.34.5+acpcheck-test-apiserver``), its ``Server`` header and every
log line say "test API server". It exists so that acpcheck's live-cluster code is
exercised over the real protocol, with the official ``kubernetes`` client and
``kubectl`` unchanged:

- **TLS** (its own CA), **client-certificate** (CN = user, O = groups) and
  **bearer-token** authentication; no credentials or bad ones: 401. A small RBAC:
  per user/group rules of verbs × API groups × resources (× names); ``system:masters``
  may do anything; refusals are 403 with kube-apiserver's wording
  (``… is forbidden: User "x" cannot get resource "…" in API group "…"``).
- **Discovery**: ``/version``, ``/api``, ``/api/v1``, ``/apis``, ``/apis/<group>[/<version>]``,
  ``/openapi/v2`` (a minimal protobuf document, so kubectl's client-side validation
  runs), ``/healthz``, ``/livez``, ``/readyz``.
- **Objects**: get, list (label and field selectors, ``limit``/``continue``), create
  (``generateName``, 409 AlreadyExists, 404 for a missing namespace), update (409 on a
  stale ``resourceVersion``), delete and deletecollection, and PATCH as JSON merge
  patch, strategic merge patch (built-in types, with their merge keys) and JSON patch;
  a ``status`` subresource where the real type has one (its status changes only
  there). Every change bumps a global ``resourceVersion``. ``watch`` is refused (405).
  kubectl's Table requests get a Table (Name, Age).
- **Types**: namespaces, nodes, secrets, configmaps, services, ingresses
  (networking.k8s.io/v1), certificatesigningrequests (certificates.k8s.io/v1), cronjobs
  (batch/v1), daemonsets (apps/v1), customresourcedefinitions (apiextensions.k8s.io/v1), and any
  custom resource whose CRD is created (or loaded at start): its objects are validated
  against, and pruned to, the CRD's ``openAPIV3Schema`` (422 Invalid), like the real one.
  The CRDs of lab/acpcheck_lab/crds/ are loaded at start (each file names its source):
  ``etcdencryptionconfigs.cluster.alauda.io`` from ACP's published CRD; for hosted control planes
  the published Kamaji, Kamaji control-plane provider and Cluster API CRDs (crds/SOURCES.md);
  ClusterVersionShadow, EtcdBackupConfiguration, platform.tkestack.io Cluster, the SSH
  Infrastructure Provider's kinds and MetalLB's IPAddressPool as minimal structural ones.

- **Hostile answers** (``hostile = Hostile(mode, path, interval)``, or ``serve --hostile``):
  for the requests under a path, one of ``acpcheck_lab.tlsapi.HOSTILE_MODES`` instead of
  the real answer (a drip of one byte every few seconds, silence, an endless body, a body
  that is not JSON, a reset mid-answer), so tests prove a client's deadlines and limits.

Differences from the real thing: objects live in memory (no etcd behind it), deletion is
immediate (no finalizers, no graceful termination, a namespace takes its objects with
it), no watch, no admission webhooks, no server-side apply, no protobuf responses.

    python -m acpcheck_lab.apiserver init DIR [--host 127.0.0.1] [--version 1.34.5]
    python -m acpcheck_lab.apiserver serve DIR [--listen 127.0.0.1:6443] [--seed FILE ...]
        [--hostile MODE[:SECONDS]] [--hostile-path PREFIX]

``init`` writes a CA, a serving certificate, a config (users, tokens, rules: mode
0600) and one kubeconfig per user into DIR; ``serve`` serves until SIGTERM. From Python:
``TestApiServer(...).start()``; ``acpcheck_lab`` starts one for scenarios that ask for it.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import http.server
import ipaddress
import json
import os
import re
import secrets as secrets_module
import signal
import socket
import ssl
import sys
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import yaml

from acpcheck.transport.kube import group_version, qualified_name
from acpcheck_lab import protowire
from acpcheck_lab.tlsapi import DRIP_INTERVAL, HOSTILE_MODES, hostile_answer, parse_hostile

NAME = "acpcheck test API server"
BANNER = f"{NAME} (a stand-in for tests and the lab; not a Kubernetes API server)"
DEFAULT_VERSION = "1.34.5"
CRD_DIR = Path(__file__).with_name("crds")
STATUS_SUBRESOURCE = "status"
JSON = "application/json"

# ---------------------------------------------------------------------------
# Resource types


@dataclass
class ResourceType:
    group: str
    version: str
    resource: str  # plural
    kind: str
    namespaced: bool
    singular: str = ""
    short_names: tuple[str, ...] = ()
    status: bool = False  # has a status subresource
    #: strategic merge patch: list field path (dotted, "[]" for list items) -> merge key,
    #: or "" for a merged primitive list
    merge_keys: dict[str, str] = field(default_factory=dict)
    schema: dict[str, Any] | None = None  # CRD openAPIV3Schema (custom resources only)
    custom: bool = False
    categories: tuple[str, ...] = ()

    @property
    def group_version(self) -> str:
        return group_version(self.group, self.version)

    @property
    def qualified(self) -> str:
        return qualified_name(self.resource, self.group)

    def discovery(self) -> list[dict[str, Any]]:
        verbs = ["create", "delete", "deletecollection", "get", "list", "patch", "update"]
        entry: dict[str, Any] = {
            "name": self.resource,
            "singularName": self.singular or self.kind.lower(),
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": verbs,
        }
        if self.short_names:
            entry["shortNames"] = list(self.short_names)
        if self.categories:
            entry["categories"] = list(self.categories)
        found = [entry]
        if self.status:
            found.append(
                {
                    "name": f"{self.resource}/status",
                    "singularName": "",
                    "namespaced": self.namespaced,
                    "kind": self.kind,
                    "verbs": ["get", "patch", "update"],
                }
            )
        return found


_POD_SPEC_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "volumes": "name",
    "containers[].ports": "containerPort",
    "containers[].env": "name",
    "containers[].volumeMounts": "mountPath",
    "imagePullSecrets": "name",
}
_META_KEYS = {"metadata.ownerReferences": "uid", "metadata.finalizers": ""}


def _pod_template_keys(prefix: str) -> dict[str, str]:
    """The pod spec's merge keys under a workload's pod template (``spec.template.spec`` of a DaemonSet)."""
    return {f"{prefix}.{path}": key for path, key in _POD_SPEC_KEYS.items()}


def builtin_types() -> list[ResourceType]:
    """The built-in types the server serves (merge keys from k8s.io/api's patchMergeKey tags)."""
    return [
        ResourceType(
            "",
            "v1",
            "namespaces",
            "Namespace",
            False,
            "namespace",
            ("ns",),
            status=True,
            merge_keys={**_META_KEYS, "spec.finalizers": "", "status.conditions": "type"},
        ),
        ResourceType(
            "",
            "v1",
            "nodes",
            "Node",
            False,
            "node",
            ("no",),
            status=True,
            merge_keys={
                **_META_KEYS,
                "spec.taints": "key",
                "status.addresses": "type",
                "status.conditions": "type",
                "status.images": "",
                "spec.podCIDRs": "",
            },
        ),
        ResourceType("", "v1", "secrets", "Secret", True, "secret", merge_keys=dict(_META_KEYS)),
        ResourceType("", "v1", "configmaps", "ConfigMap", True, "configmap", ("cm",), merge_keys=dict(_META_KEYS)),
        ResourceType(
            "",
            "v1",
            "services",
            "Service",
            True,
            "service",
            ("svc",),
            status=True,
            merge_keys={**_META_KEYS, "spec.ports": "port", "status.conditions": "type"},
            categories=("all",),
        ),
        ResourceType(
            "networking.k8s.io",
            "v1",
            "ingresses",
            "Ingress",
            True,
            "ingress",
            ("ing",),
            status=True,
            merge_keys=dict(_META_KEYS),
        ),
        # Read by the upgrade-readiness checks (ACP-UPG-*): scopes and kinds as kube-apiserver serves them.
        ResourceType(
            "certificates.k8s.io",
            "v1",
            "certificatesigningrequests",
            "CertificateSigningRequest",
            False,
            "certificatesigningrequest",
            ("csr",),
            status=True,
            merge_keys={**_META_KEYS, "status.conditions": "type"},
        ),
        ResourceType(
            "batch",
            "v1",
            "cronjobs",
            "CronJob",
            True,
            "cronjob",
            ("cj",),
            status=True,
            merge_keys={**_META_KEYS, **_pod_template_keys("spec.jobTemplate.spec.template.spec")},
            categories=("all",),
        ),
        ResourceType(
            "apps",
            "v1",
            "daemonsets",
            "DaemonSet",
            True,
            "daemonset",
            ("ds",),
            status=True,
            merge_keys={**_META_KEYS, **_pod_template_keys("spec.template.spec"), "status.conditions": "type"},
            categories=("all",),
        ),
        ResourceType(
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            False,
            "customresourcedefinition",
            ("crd", "crds"),
            status=True,
            merge_keys=dict(_META_KEYS),
        ),
    ]


def crd_types(crd: dict[str, Any]) -> list[ResourceType]:
    """The served versions of a CustomResourceDefinition as resource types."""
    spec, names = crd.get("spec") or {}, (crd.get("spec") or {}).get("names") or {}
    found = []
    for version in spec.get("versions") or []:
        if not version.get("served", True):
            continue
        found.append(
            ResourceType(
                spec["group"],
                version["name"],
                names["plural"],
                names["kind"],
                spec.get("scope") == "Namespaced",
                names.get("singular", ""),
                tuple(names.get("shortNames") or ()),
                status="status" in (version.get("subresources") or {}),
                merge_keys={},
                schema=(version.get("schema") or {}).get("openAPIV3Schema"),
                custom=True,
                categories=tuple(names.get("categories") or ()),
            )
        )
    return found


#: The shipped CRDs as JSON, parsed once per process: they are hundreds of kB of YAML.
_SHIPPED_CRDS_JSON: list[str] = []


def shipped_crds() -> list[dict[str, Any]]:
    """The CRDs shipped with the lab (crds/*.yaml: the published definitions, crds/SOURCES.md), a
    fresh copy each call.

    Kamaji (DataStore, TenantControlPlane), its Cluster API control-plane provider
    (KamajiControlPlane) and Cluster API (Cluster, KubeadmConfig, KubeadmConfigTemplate) are
    the projects' own (descriptions removed by scripts/vendor_crds.py), so objects of those
    kinds are validated against their real schemas. Alauda's SSH Infrastructure Provider
    publishes no CRD: its three stay minimal structural ones. Like every schema here they are
    checked as JSON Schema (types, enums, patterns, bounds, required fields);
    ``x-kubernetes-validations`` (CEL rules, e.g. Kamaji's "tlsConfig is required when driver
    is etcd"), ``format`` and list-map key uniqueness are NOT evaluated by this test API
    server, which kube-apiserver does: an object it accepts may still be refused by a real one.
    """
    if not _SHIPPED_CRDS_JSON:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        parsed = [yaml.load(path.read_text(), Loader=loader) for path in sorted(CRD_DIR.glob("*.yaml"))]  # noqa: S506
        _SHIPPED_CRDS_JSON.append(json.dumps(parsed))
    crds: list[dict[str, Any]] = json.loads(_SHIPPED_CRDS_JSON[0])
    return crds


# ---------------------------------------------------------------------------
# Errors: metav1.Status like kube-apiserver's


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return body


def not_found(rtype: ResourceType, name: str) -> ApiError:
    return ApiError(
        404,
        "NotFound",
        f'{rtype.qualified} "{name}" not found',
        {"name": name, "group": rtype.group, "kind": rtype.resource},
    )


def conflict(rtype: ResourceType, name: str) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {rtype.qualified} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again",
        {"name": name, "group": rtype.group, "kind": rtype.resource},
    )


def invalid(rtype: ResourceType, name: str, causes: list[tuple[str, str]]) -> ApiError:
    message = f'{rtype.kind}.{rtype.group or "core"} "{name}" is invalid: ' + ", ".join(
        f"{path}: {why}" for path, why in causes
    )
    return ApiError(
        422,
        "Invalid",
        message,
        {
            "name": name,
            "group": rtype.group,
            "kind": rtype.kind,
            "causes": [{"reason": "FieldValueInvalid", "message": why, "field": path} for path, why in causes],
        },
    )


# ---------------------------------------------------------------------------
# Users and authorization


@dataclass
class Rule:
    verbs: tuple[str, ...]
    api_groups: tuple[str, ...]
    resources: tuple[str, ...]
    names: tuple[str, ...] = ()

    def allows(self, verb: str, group: str, resource: str, name: str | None) -> bool:
        def hit(values: tuple[str, ...], value: str) -> bool:
            return "*" in values or value in values

        return (
            hit(self.verbs, verb)
            and hit(self.api_groups, group)
            and hit(self.resources, resource)
            and (not self.names or (name or "") in self.names)
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Rule:
        return cls(
            tuple(data.get("verbs") or ()),
            tuple(data.get("apiGroups") or ()),
            tuple(data.get("resources") or ()),
            tuple(data.get("resourceNames") or ()),
        )


@dataclass
class User:
    """A user the server knows: by bearer token, or by a client certificate whose CN is ``name``."""

    name: str
    groups: tuple[str, ...] = ()
    token: str | None = field(default=None, repr=False)
    rules: tuple[Rule, ...] = ()

    def may(self, verb: str, group: str, resource: str, name: str | None) -> bool:
        return "system:masters" in self.groups or any(rule.allows(verb, group, resource, name) for rule in self.rules)


@dataclass
class Identity:
    name: str
    groups: tuple[str, ...]


# ---------------------------------------------------------------------------
# Patches


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge_patch(target: Any, patch: Any, merge_keys: dict[str, str], path: str = "") -> Any:
    """A strategic merge patch: like a merge patch, but lists with a merge key are merged
    by it (``$patch: delete`` removes an item), listed primitive lists are merged as sets,
    ``$patch: replace`` replaces a map, ``$deleteFromPrimitiveList/<f>`` removes values,
    and ``$setElementOrder``/``$retainKeys`` directives are accepted."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    result = dict(target) if isinstance(target, dict) else {}
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key.startswith("$setElementOrder/") or key in ("$retainKeys", "$patch"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            name = key.split("/", 1)[1]
            result[name] = [item for item in result.get(name) or [] if item not in value]
            continue
        child = f"{path}.{key}" if path else key
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list) and child in merge_keys:
            result[key] = _merge_list(result.get(key) or [], value, merge_keys[child], merge_keys, child)
        elif isinstance(value, dict):
            merged = strategic_merge_patch(result.get(key), value, merge_keys, child)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        else:
            result[key] = copy.deepcopy(value)
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _merge_list(current: list[Any], patch: list[Any], key: str, merge_keys: dict[str, str], path: str) -> list[Any]:
    if not key:  # a primitive list merged as a set, in order
        return current + [item for item in patch if item not in current]
    result = [copy.deepcopy(item) for item in current]
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            raise ApiError(400, "BadRequest", f"strategic merge patch: an item of {path} has no merge key {key!r}")
        index = next(
            (i for i, existing in enumerate(result) if isinstance(existing, dict) and existing.get(key) == item[key]),
            None,
        )
        if item.get("$patch") == "delete":
            if index is not None:
                result.pop(index)
            continue
        if index is None:
            result.append({k: copy.deepcopy(v) for k, v in item.items() if k != "$patch"})
        else:
            result[index] = strategic_merge_patch(result[index], item, merge_keys, path + "[]")
    return result


def json_patch(document: Any, operations: Any) -> Any:
    """RFC 6902 JSON patch (add, remove, replace, move, copy, test)."""
    if not isinstance(operations, list):
        raise ApiError(400, "BadRequest", "a JSON patch is a list of operations")
    doc = copy.deepcopy(document)

    def parts(pointer: str) -> list[str]:
        if pointer == "":
            return []
        if not pointer.startswith("/"):
            raise ApiError(422, "Invalid", f"JSON pointer {pointer!r} must start with /")
        return [p.replace("~1", "/").replace("~0", "~") for p in pointer[1:].split("/")]

    def parent(pointer: str) -> tuple[Any, str]:
        steps = parts(pointer)
        if not steps:
            raise ApiError(422, "Invalid", "cannot change the document root")
        node = doc
        for step in steps[:-1]:
            node = node[int(step)] if isinstance(node, list) else node[step]
        return node, steps[-1]

    def get(pointer: str) -> Any:
        node = doc
        for step in parts(pointer):
            node = node[int(step)] if isinstance(node, list) else node[step]
        return node

    for op in operations:
        try:
            kind, path = op["op"], op["path"]
            if kind in ("add", "replace"):
                container, last = parent(path)
                if isinstance(container, list):
                    index = len(container) if last == "-" else int(last)
                    if kind == "add":
                        container.insert(index, copy.deepcopy(op["value"]))
                    else:
                        container[index] = copy.deepcopy(op["value"])
                else:
                    if kind == "replace" and last not in container:
                        raise KeyError(last)
                    container[last] = copy.deepcopy(op["value"])
            elif kind == "remove":
                container, last = parent(path)
                del container[int(last) if isinstance(container, list) else last]
            elif kind in ("move", "copy"):
                value = copy.deepcopy(get(op["from"]))
                if kind == "move":
                    container, last = parent(op["from"])
                    del container[int(last) if isinstance(container, list) else last]
                container, last = parent(path)
                if isinstance(container, list):
                    container.insert(len(container) if last == "-" else int(last), value)
                else:
                    container[last] = value
            elif kind == "test":
                if get(path) != op.get("value"):
                    raise ApiError(422, "Invalid", f"JSON patch test failed at {path}")
            else:
                raise ApiError(400, "BadRequest", f"unknown JSON patch operation {kind!r}")
        except ApiError:
            raise
        except (KeyError, IndexError, ValueError, TypeError) as error:
            raise ApiError(
                422, "Invalid", f"JSON patch {op!r:.100} cannot be applied: {type(error).__name__}"
            ) from None
    return doc


# ---------------------------------------------------------------------------
# Custom resource schemas: validation and pruning like the real server's structural schemas


def prune(value: Any, schema: dict[str, Any] | None) -> Any:
    """Drop fields the structural schema does not know (unless it preserves unknown fields)."""
    if schema is None or not isinstance(value, (dict, list)):
        return value
    if isinstance(value, list):
        return [prune(item, schema.get("items")) for item in value]
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return value
    properties, extra = schema.get("properties"), schema.get("additionalProperties")
    if properties is None and isinstance(extra, dict):
        return {key: prune(item, extra) for key, item in value.items()}
    if properties is None:
        return value
    return {key: prune(item, properties[key]) for key, item in value.items() if key in properties}


def schema_problems(obj: dict[str, Any], schema: dict[str, Any]) -> list[tuple[str, str]]:
    """(field path, why) for every way ``obj`` breaks the CRD schema (jsonschema, OpenAPI's subset)."""
    try:
        import jsonschema
    except ImportError:  # the test extra is not installed: the types are still served, unchecked
        return []
    body = {key: value for key, value in obj.items() if key not in ("metadata", "apiVersion", "kind")}
    checked = {key: value for key, value in schema.items() if key != "required"}
    checked["properties"] = {
        key: value
        for key, value in (schema.get("properties") or {}).items()
        if key not in ("metadata", "apiVersion", "kind")
    }
    checked["required"] = [key for key in schema.get("required") or [] if key not in ("metadata", "apiVersion", "kind")]
    problems = []
    for error in jsonschema.Draft7Validator(checked).iter_errors(body):
        path = ".".join(str(part) for part in error.absolute_path) or "<root>"
        problems.append((path, error.message[:200]))
    return sorted(problems)


# ---------------------------------------------------------------------------
# The store

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


class Store:
    """Every object, by resource type and (namespace, name); one lock, one resourceVersion counter."""

    def __init__(self, types: Iterable[ResourceType]):
        self.lock = threading.RLock()
        self.types: dict[tuple[str, str, str], ResourceType] = {}
        self.objects: dict[tuple[str, str], dict[tuple[str, str], dict[str, Any]]] = {}
        self.revision = 1000
        for rtype in types:
            self.add_type(rtype)

    def add_type(self, rtype: ResourceType) -> None:
        with self.lock:
            self.types[(rtype.group, rtype.version, rtype.resource)] = rtype
            self.objects.setdefault((rtype.group, rtype.resource), {})

    def remove_types(self, group: str, resource: str) -> None:
        with self.lock:
            for key in [key for key in self.types if (key[0], key[2]) == (group, resource)]:
                del self.types[key]
            self.objects.pop((group, resource), None)

    def find(self, group: str, version: str, resource: str) -> ResourceType | None:
        return self.types.get((group, version, resource))

    def groups(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for group, version, _ in sorted(self.types):
            found.setdefault(group, [])
            if version not in found[group]:
                found[group].append(version)
        return found

    def bucket(self, rtype: ResourceType) -> dict[tuple[str, str], dict[str, Any]]:
        return self.objects[(rtype.group, rtype.resource)]

    def next_version(self) -> str:
        self.revision += 1
        return str(self.revision)

    # -- operations (callers hold no lock; each takes it) ---------------------

    def create(
        self, rtype: ResourceType, namespace: str | None, body: dict[str, Any], *, keep_status: bool = False
    ) -> dict[str, Any]:
        with self.lock:
            obj = copy.deepcopy(body)
            meta = obj.setdefault("metadata", {})
            if not isinstance(meta, dict):
                raise ApiError(400, "BadRequest", "metadata must be an object")
            if rtype.namespaced:
                if meta.get("namespace") and meta["namespace"] != namespace:
                    raise ApiError(
                        400,
                        "BadRequest",
                        "the namespace of the provided object does not match the namespace sent on the request",
                    )
                meta["namespace"] = namespace
                if not keep_status and ("", namespace) not in self.bucket(self._namespaces()):
                    raise ApiError(
                        404,
                        "NotFound",
                        f'namespaces "{namespace}" not found',
                        {"name": namespace, "kind": "namespaces"},
                    )
            else:
                meta.pop("namespace", None)
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = meta["generateName"] + secrets_module.token_hex(3)[:5]
            self._check_kind(rtype, obj)
            name = self._checked_name(rtype, meta.get("name"))
            key = (meta.get("namespace") or "", name)
            if key in self.bucket(rtype):
                raise ApiError(
                    409,
                    "AlreadyExists",
                    f'{rtype.qualified} "{name}" already exists',
                    {"name": name, "group": rtype.group, "kind": rtype.resource},
                )
            if rtype.status and rtype.custom and not keep_status:
                obj.pop("status", None)  # a CR's status is written through its subresource only
            self._defaults(rtype, obj)
            obj = self._validated(rtype, obj, name)
            meta = obj["metadata"]
            meta.update(
                {
                    "uid": str(uuid.uuid4()),
                    "resourceVersion": self.next_version(),
                    "creationTimestamp": meta.get("creationTimestamp") or _now(),
                }
            )
            if rtype.custom or rtype.kind in ("CustomResourceDefinition",):
                meta["generation"] = 1
            for transient in ("deletionTimestamp", "managedFields"):
                meta.pop(transient, None)
            self.bucket(rtype)[key] = obj
            if rtype.kind == "CustomResourceDefinition":
                self._register_crd(obj)
            return copy.deepcopy(obj)

    def _namespaces(self) -> ResourceType:
        rtype = self.find("", "v1", "namespaces")
        assert rtype is not None
        return rtype

    def get(self, rtype: ResourceType, namespace: str | None, name: str) -> dict[str, Any]:
        with self.lock:
            obj = self.bucket(rtype).get((namespace or "", name))
            if obj is None:
                raise not_found(rtype, name)
            return copy.deepcopy(obj)

    def list(
        self, rtype: ResourceType, namespace: str | None, selector: Callable[[dict[str, Any]], bool]
    ) -> tuple[list[dict[str, Any]], str]:
        with self.lock:
            items = [
                copy.deepcopy(obj)
                for key, obj in sorted(self.bucket(rtype).items())
                if (namespace is None or key[0] == namespace) and selector(obj)
            ]
            return items, str(self.revision)

    def replace(
        self, rtype: ResourceType, namespace: str | None, name: str, body: dict[str, Any], subresource: str | None
    ) -> dict[str, Any]:
        with self.lock:
            current = self.bucket(rtype).get((namespace or "", name))
            if current is None:
                raise not_found(rtype, name)
            metadata = body.get("metadata")
            meta: dict[str, Any] = metadata if isinstance(metadata, dict) else {}
            if meta.get("name") not in (None, name):
                raise ApiError(
                    400,
                    "BadRequest",
                    f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})",
                )
            wanted = meta.get("resourceVersion")
            if wanted and wanted != current["metadata"]["resourceVersion"]:
                raise conflict(rtype, name)
            return self._store_change(rtype, current, body, subresource)

    def patch(
        self,
        rtype: ResourceType,
        namespace: str | None,
        name: str,
        content_type: str,
        patch: Any,
        subresource: str | None,
    ) -> dict[str, Any]:
        with self.lock:
            current = self.bucket(rtype).get((namespace or "", name))
            if current is None:
                raise not_found(rtype, name)
            if content_type == "application/merge-patch+json":
                changed = merge_patch(current, patch)
            elif content_type == "application/strategic-merge-patch+json":
                if rtype.custom:
                    raise ApiError(
                        415,
                        "UnsupportedMediaType",
                        "the body of the request was in an unknown format - accepted media types "
                        "include: application/json-patch+json, application/merge-patch+json",
                    )
                changed = strategic_merge_patch(current, patch, rtype.merge_keys)
            elif content_type == "application/json-patch+json":
                changed = json_patch(current, patch)
            else:
                raise ApiError(
                    415,
                    "UnsupportedMediaType",
                    f"the body of the request was in an unknown format - accepted media types include: "
                    "application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json "
                    f"(this test API server does not do {content_type or 'that'})",
                )
            if not isinstance(changed, dict):
                raise ApiError(422, "Invalid", "the patch did not leave an object")
            wanted = (patch.get("metadata") or {}).get("resourceVersion") if isinstance(patch, dict) else None
            if wanted and wanted != current["metadata"]["resourceVersion"]:
                raise conflict(rtype, name)
            return self._store_change(rtype, current, changed, subresource)

    def _store_change(
        self, rtype: ResourceType, current: dict[str, Any], body: dict[str, Any], subresource: str | None
    ) -> dict[str, Any]:
        name = current["metadata"]["name"]
        new = copy.deepcopy(body)
        if subresource == STATUS_SUBRESOURCE:
            if not rtype.status:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            new = {**copy.deepcopy(current), "status": new.get("status")}
            if new["status"] is None:
                new.pop("status")
        elif rtype.status:
            new["status"] = copy.deepcopy(current.get("status"))  # status changes only through /status
            if new["status"] is None:
                new.pop("status")
        self._check_kind(rtype, new)
        meta = new.setdefault("metadata", {})
        for fixed in ("uid", "creationTimestamp", "namespace", "name", "generation"):
            if fixed in current["metadata"]:
                meta[fixed] = current["metadata"][fixed]
            else:
                meta.pop(fixed, None)
        meta["resourceVersion"] = current["metadata"]["resourceVersion"]
        if new == current:
            return copy.deepcopy(current)  # no change: no new resourceVersion (like the real server)
        new = self._validated(rtype, new, name)
        if "generation" in meta and new.get("spec") != current.get("spec"):
            new["metadata"]["generation"] = int(meta["generation"]) + 1
        new["metadata"]["resourceVersion"] = self.next_version()
        self.bucket(rtype)[(meta.get("namespace") or "", name)] = new
        if rtype.kind == "CustomResourceDefinition":
            self._register_crd(new)
        return copy.deepcopy(new)

    def delete(
        self, rtype: ResourceType, namespace: str | None, name: str, preconditions: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        with self.lock:
            bucket = self.bucket(rtype)
            current = bucket.get((namespace or "", name))
            if current is None:
                raise not_found(rtype, name)
            for field_name in ("uid", "resourceVersion"):
                wanted = (preconditions or {}).get(field_name)
                if wanted and wanted != current["metadata"].get(field_name):
                    raise conflict(rtype, name)
            del bucket[(namespace or "", name)]
            self.next_version()
            if rtype.kind == "Namespace":
                for other in list(self.types.values()):
                    if other.namespaced:
                        for key in [key for key in self.bucket(other) if key[0] == name]:
                            del self.bucket(other)[key]
            if rtype.kind == "CustomResourceDefinition":
                spec = current.get("spec") or {}
                self.remove_types(spec.get("group", ""), (spec.get("names") or {}).get("plural", ""))
            return current

    # -- rules of the types -----------------------------------------------------

    def _check_kind(self, rtype: ResourceType, obj: dict[str, Any]) -> None:
        kind, api_version = obj.get("kind"), obj.get("apiVersion")
        if kind not in (None, rtype.kind) or api_version not in (None, rtype.group_version):
            raise ApiError(
                400,
                "BadRequest",
                f"the API version in the data ({api_version}) and kind ({kind}) do not match "
                f"{rtype.group_version} {rtype.kind}",
            )
        obj["kind"], obj["apiVersion"] = rtype.kind, rtype.group_version

    def _checked_name(self, rtype: ResourceType, name: Any) -> str:
        """``name`` if it is a valid name for ``rtype`` (ApiError Invalid otherwise)."""
        if not isinstance(name, str) or not name:
            raise invalid(rtype, "", [("metadata.name", "Required value: name or generateName is required")])
        pattern = _DNS_LABEL if rtype.kind == "Namespace" else _DNS_SUBDOMAIN
        if len(name) > (63 if rtype.kind == "Namespace" else 253) or not pattern.match(name):
            raise invalid(
                rtype,
                name,
                [
                    (
                        "metadata.name",
                        f'Invalid value: "{name}": a lowercase RFC 1123 '
                        f"{'label' if rtype.kind == 'Namespace' else 'subdomain'} must consist of lower case "
                        'alphanumeric characters, "-" or "."',
                    )
                ],
            )
        return name

    def _defaults(self, rtype: ResourceType, obj: dict[str, Any]) -> None:
        if rtype.kind == "Secret":
            obj.setdefault("type", "Opaque")
        elif rtype.kind == "Namespace":
            obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
            obj.setdefault("status", {}).setdefault("phase", "Active")
        elif rtype.kind == "Service":
            spec = obj.setdefault("spec", {})
            spec.setdefault("type", "ClusterIP")
            spec.setdefault("sessionAffinity", "None")
            for port in spec.get("ports") or []:
                port.setdefault("protocol", "TCP")
                port.setdefault("targetPort", port.get("port"))
        elif rtype.kind == "CustomResourceDefinition":
            obj["status"] = {
                "conditions": [
                    {
                        "type": "Established",
                        "status": "True",
                        "reason": "InitialNamesAccepted",
                        "message": "the initial names have been accepted",
                        "lastTransitionTime": _now(),
                    }
                ],
                "acceptedNames": (obj.get("spec") or {}).get("names") or {},
                "storedVersions": [
                    v["name"] for v in (obj.get("spec") or {}).get("versions") or [] if v.get("storage")
                ],
            }

    def _validated(self, rtype: ResourceType, obj: dict[str, Any], name: str) -> dict[str, Any]:
        if rtype.kind == "Secret" and obj.get("stringData"):  # write-only: folded into data, as the real server does
            string_data = obj.pop("stringData")
            if not isinstance(string_data, dict):
                raise invalid(rtype, name, [("stringData", "Invalid value: must be a map of strings")])
            obj["data"] = {
                **(obj.get("data") or {}),
                **{k: base64.b64encode(str(v).encode()).decode() for k, v in string_data.items()},
            }
        if rtype.kind == "Secret":
            for key, value in (obj.get("data") or {}).items():
                try:
                    base64.b64decode(value, validate=True)
                except (ValueError, TypeError):
                    raise invalid(rtype, name, [(f"data[{key}]", "Invalid value: not base64")]) from None
        if rtype.schema is not None:
            obj = {
                **prune(obj, rtype.schema),
                "metadata": obj["metadata"],
                "apiVersion": obj["apiVersion"],
                "kind": obj["kind"],
            }
            problems = schema_problems(obj, rtype.schema)
            if problems:
                raise invalid(rtype, name, problems)
        return obj

    def _register_crd(self, crd: dict[str, Any]) -> None:
        spec = crd.get("spec") or {}
        self.remove_types(spec.get("group", ""), (spec.get("names") or {}).get("plural", ""))
        for rtype in crd_types(crd):
            self.add_type(rtype)


# ---------------------------------------------------------------------------
# Selectors


def label_selector(text: str) -> Callable[[dict[str, Any]], bool]:
    """``a=b,c!=d,e,!f,g in (x,y),h notin (z)``."""
    tests: list[Callable[[dict[str, str]], bool]] = []
    for term in re.findall(r"[^,(]+(?:\([^)]*\))?", text or ""):
        term = term.strip()
        if not term:
            continue
        match = re.match(r"^([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)$", term)
        if match:
            key, op, values = match.group(1), match.group(2), {v.strip() for v in match.group(3).split(",")}
            tests.append(
                (lambda k, vs: lambda labels: labels.get(k) in vs)(key, values)
                if op == "in"
                else (lambda k, vs: lambda labels: labels.get(k) not in vs)(key, values)
            )
        elif "!=" in term:
            key, value = (part.strip() for part in term.split("!=", 1))
            tests.append((lambda k, want: lambda labels: labels.get(k) != want)(key, value))
        elif "=" in term:
            key, value = (part.strip() for part in term.replace("==", "=").split("=", 1))
            tests.append((lambda k, want: lambda labels: labels.get(k) == want)(key, value))
        elif term.startswith("!"):
            tests.append((lambda k: lambda labels: k not in labels)(term[1:].strip()))
        else:
            tests.append((lambda k: lambda labels: k in labels)(term))
    return lambda obj: all(test((obj.get("metadata") or {}).get("labels") or {}) for test in tests)


def field_selector(text: str) -> Callable[[dict[str, Any]], bool]:
    """``metadata.name=x``, ``metadata.namespace!=y`` (and any other dotted field, compared as text)."""
    tests = []
    for term in filter(None, (t.strip() for t in (text or "").split(","))):
        negate = "!=" in term
        path, value = (part.strip() for part in term.replace("==", "=").split("!=" if negate else "=", 1))

        def read(obj: dict[str, Any], path: str = path) -> str:
            node: Any = obj
            for step in path.split("."):
                node = node.get(step) if isinstance(node, dict) else None
            return "" if node is None else str(node)

        tests.append((lambda r, v, n: lambda obj: (r(obj) != v) if n else (r(obj) == v))(read, value, negate))
    return lambda obj: all(test(obj) for test in tests)


# ---------------------------------------------------------------------------
# HTTP


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "acpcheck-test-apiserver"
    sys_version = ""
    server: _HttpServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 — the base class's name
        self.server.owner.log(f"{self.address_string()} {format % args}")

    def _send(self, code: int, body: bytes, content_type: str = JSON) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Audit-Id", str(uuid.uuid4()))
        self.send_header("X-Acpcheck-Test-Apiserver", "true")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, code: int, data: Any) -> None:
        self._send(code, json.dumps(data).encode())

    def _drain(self) -> None:
        if not getattr(self, "_body_read", False):
            self._body_read = True
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        self._body_read = True
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return None
        content_type = (self.headers.get("Content-Type") or JSON).split(";")[0].strip()
        try:
            if "yaml" in content_type:
                return yaml.safe_load(raw)
            return json.loads(raw)
        except (ValueError, yaml.YAMLError):
            raise ApiError(400, "BadRequest", "the request body is not valid JSON (or YAML)") from None

    def _handle(self, method: str) -> None:
        self._body_read = False
        owner = self.server.owner
        hostile = owner.hostile
        if hostile is not None and urllib.parse.urlsplit(self.path).path.startswith(hostile.path):
            owner.log(f"{self.address_string()} {method} {self.path}: a hostile answer ({hostile.mode})")
            hostile_answer(self, hostile.mode, owner.stopping, hostile.interval)
            return
        try:
            identity = self.server.owner.authenticate(self)
            if identity is None:
                raise ApiError(401, "Unauthorized", "Unauthorized")
            self.identity = identity
            self.server.owner.route(self, method, identity)
        except ApiError as error:
            self._drain()  # a body left unread would be taken for the next request on this connection
            self._json(error.code, error.status())
        except (ConnectionError, ssl.SSLError, TimeoutError):
            self.close_connection = True
        except Exception as error:  # noqa: BLE001 — a bug here must be a 500, not a dropped connection
            self._drain()
            self.server.owner.log(f"internal error: {type(error).__name__}: {error}")
            self._json(500, ApiError(500, "InternalError", f"{NAME}: internal error: {type(error).__name__}").status())

    def do_GET(self) -> None:  # noqa: N802
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._handle("PUT")

    def do_PATCH(self) -> None:  # noqa: N802
        self._handle("PATCH")

    def do_DELETE(self) -> None:  # noqa: N802
        self._handle("DELETE")


class _HttpServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: TestApiServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection that broke (a client gone mid-answer, a reset on purpose): a log line, not a traceback."""
        error = sys.exc_info()[1]
        self.owner.log(f"{client_address[0]} connection ended: {type(error).__name__}")

    def finish_request(self: Self, request: Any, client_address: Any) -> None:
        """TLS per connection, in the connection's own thread (a slow handshake never blocks accept)."""
        request.settimeout(30)
        # Answers go out in more than one write; with Nagle's algorithm the second waits for the
        # client's delayed ACK (~40 ms a request). kube-apiserver (Go) sets TCP_NODELAY too.
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            tls = self.owner.tls_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as error:
            self.owner.log(
                f"{client_address[0]} TLS handshake failed: {getattr(error, 'reason', None) or type(error).__name__}"
            )
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            try:
                tls.close()
            except OSError:
                pass


@dataclass(frozen=True)
class Hostile:
    """How the server misbehaves on purpose (``TestApiServer.hostile``): every request whose
    path starts with ``path`` gets the ``mode`` answer of ``acpcheck_lab.tlsapi.HOSTILE_MODES``
    (drip, silent, huge, malformed, reset) instead of its real one; ``interval``: seconds
    between two bytes of a drip."""

    mode: str
    path: str = "/"
    interval: float = DRIP_INTERVAL

    def __post_init__(self) -> None:
        if self.mode not in HOSTILE_MODES:
            raise ValueError(f"not a hostile mode: {self.mode!r} (one of {', '.join(HOSTILE_MODES)})")


@dataclass
class ServerTls:
    """The server's certificate and key, and the CA its clients' certificates must chain to (PEM files)."""

    cert_file: Path
    key_file: Path
    client_ca_file: Path


class TestApiServer:
    """One test API server. ``start()`` serves on a background thread; ``stop()`` ends it."""

    __test__ = False  # not a pytest test class, whatever its name

    def __init__(
        self,
        tls: ServerTls,
        users: Iterable[User],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        kubernetes_version: str = DEFAULT_VERSION,
        crds: Iterable[dict[str, Any]] | None = None,
        log: Callable[[str], None] | None = None,
    ):
        self.users = list(users)
        self.by_token = {user.token: user for user in self.users if user.token}
        self.by_name = {user.name: user for user in self.users}
        self.kubernetes_version = kubernetes_version.lstrip("v")
        self.store = Store(builtin_types())
        self._log = log
        for crd in shipped_crds() if crds is None else crds:
            self.store.create(self.store.find("apiextensions.k8s.io", "v1", "customresourcedefinitions"), None, crd)  # type: ignore[arg-type]
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(str(tls.cert_file), str(tls.key_file))
        context.load_verify_locations(str(tls.client_ca_file))
        context.verify_mode = ssl.CERT_OPTIONAL  # a client certificate is one way to authenticate, a token the other
        self.tls_context = context
        self.httpd = _HttpServer((host, port), _Handler, bind_and_activate=True)
        self.httpd.owner = self
        self.host, self.port = host, int(self.httpd.server_address[1])
        self._thread: threading.Thread | None = None
        #: Set to misbehave on purpose (tests of clients against hostile servers); None: a well-behaved server.
        self.hostile: Hostile | None = None
        #: Set by ``stop()``: hostile answers in progress end with it.
        self.stopping = threading.Event()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"

    def log(self, line: str) -> None:
        if self._log is not None:
            self._log(f"{NAME}: {line}")

    def start(self) -> TestApiServer:
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2}, name=NAME, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> TestApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- seeding (as a controller or kubectl would have left things) ---------------

    def put(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create ``obj`` with its status as given (seeding): the type from apiVersion/kind."""
        rtype = self._type_of(obj)
        namespace = (obj.get("metadata") or {}).get("namespace") if rtype.namespaced else None
        return self.store.create(rtype, namespace, obj, keep_status=True)

    def _type_of(self, obj: dict[str, Any]) -> ResourceType:
        api_version, kind = obj.get("apiVersion", ""), obj.get("kind")
        group, _, version = api_version.rpartition("/")
        found = next(
            (t for t in self.store.types.values() if t.group == group and t.version == version and t.kind == kind), None
        )
        if found is None:
            raise ValueError(f"{NAME} serves no {api_version} {kind}")
        return found

    # -- authentication and authorization ---------------------------------------

    def authenticate(self, handler: _Handler) -> Identity | None:
        header = handler.headers.get("Authorization") or ""
        if header.lower().startswith("bearer "):
            user = self.by_token.get(header[7:].strip())
            return Identity(user.name, (*user.groups, "system:authenticated")) if user else None
        try:
            peer = handler.connection.getpeercert()
        except (AttributeError, ValueError):
            peer = None
        if peer:
            subject = dict(item for part in peer.get("subject", ()) for item in part)
            groups = tuple(
                value for part in peer.get("subject", ()) for key, value in part if key == "organizationName"
            )
            name = subject.get("commonName")
            if name:
                return Identity(name, (*groups, "system:authenticated"))
        return None

    def authorize(
        self,
        identity: Identity,
        verb: str,
        rtype: ResourceType,
        namespace: str | None,
        name: str | None,
        subresource: str | None,
    ) -> None:
        user = self.by_name.get(identity.name) or User(identity.name, identity.groups)
        groups = set(identity.groups) | set(user.groups)
        resource = f"{rtype.resource}/{subresource}" if subresource else rtype.resource
        if "system:masters" in groups or user.may(verb, rtype.group, resource, name):
            return
        what = f'{rtype.qualified} "{name}"' if name else rtype.qualified
        scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
        raise ApiError(
            403,
            "Forbidden",
            f'{what} is forbidden: User "{identity.name}" cannot {verb} resource "{resource}" '
            f'in API group "{rtype.group}" {scope}',
            {"name": name, "group": rtype.group, "kind": rtype.resource},
        )

    # -- routing -------------------------------------------------------------

    def route(self, handler: _Handler, method: str, identity: Identity) -> None:
        url = urllib.parse.urlsplit(handler.path)
        query = {key: values[-1] for key, values in urllib.parse.parse_qs(url.query, keep_blank_values=True).items()}
        parts = [urllib.parse.unquote(part) for part in url.path.strip("/").split("/") if part]
        if method == "GET" and self._discovery(handler, parts):
            return
        if parts[:1] == ["api"] and len(parts) >= 3:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 4:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        namespace = None
        if rest[0] == "namespaces" and len(rest) >= 3 and self.store.find(group, version, rest[2]) is not None:
            namespace, rest = rest[1], rest[2:]
        rtype = self.store.find(group, version, rest[0])
        if rtype is None or len(rest) > 3 or (namespace is not None and not rtype.namespaced):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        name = rest[1] if len(rest) > 1 else None
        subresource = rest[2] if len(rest) > 2 else None
        if subresource is not None and (subresource != STATUS_SUBRESOURCE or not rtype.status):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if rtype.namespaced and name is not None and namespace is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        verb = {
            "GET": "get" if name else "list",
            "POST": "create",
            "PUT": "update",
            "PATCH": "patch",
            "DELETE": "delete" if name else "deletecollection",
        }[method]
        if method == "GET" and query.get("watch") in ("true", "1"):
            verb = "watch"
        if method == "POST" and name is not None:
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        self.authorize(identity, verb, rtype, namespace, name, subresource)
        self.log(f"{identity.name} {verb} {rtype.qualified}{' ' + namespace + '/' if namespace else ' '}{name or ''}")
        if verb == "watch":
            raise ApiError(405, "MethodNotAllowed", f"watch is not supported by the {NAME}")
        store = self.store
        if verb == "get":
            handler._json(200, store.get(rtype, namespace, name))  # type: ignore[arg-type]
        elif verb == "list":
            self._list(handler, rtype, namespace, query)
        elif verb == "create":
            body = handler._body()
            if not isinstance(body, dict):
                raise ApiError(400, "BadRequest", "the request body must be an object")
            if query.get("dryRun"):
                handler._json(201, body)
                return
            handler._json(201, store.create(rtype, namespace, body))
        elif verb == "update":
            body = handler._body()
            if not isinstance(body, dict):
                raise ApiError(400, "BadRequest", "the request body must be an object")
            handler._json(200, store.replace(rtype, namespace, name, body, subresource))  # type: ignore[arg-type]
        elif verb == "patch":
            content_type = (handler.headers.get("Content-Type") or "").split(";")[0].strip()
            handler._json(200, store.patch(rtype, namespace, name, content_type, handler._body(), subresource))  # type: ignore[arg-type]
        elif verb == "delete":
            assert name is not None  # "delete" is only chosen with a name (the verb table above)
            options = handler._body() or {}
            handler._json(
                200,
                store.delete(
                    rtype, namespace, name, options.get("preconditions") if isinstance(options, dict) else None
                ),
            )
        else:  # deletecollection
            selector = label_selector(query.get("labelSelector", ""))
            items, _ = store.list(rtype, namespace, selector)
            for item in items:
                store.delete(rtype, item["metadata"].get("namespace"), item["metadata"]["name"])
            handler._json(200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"})

    def _list(self, handler: _Handler, rtype: ResourceType, namespace: str | None, query: dict[str, str]) -> None:
        labels, fields = label_selector(query.get("labelSelector", "")), field_selector(query.get("fieldSelector", ""))
        items, revision = self.store.list(rtype, namespace, lambda obj: labels(obj) and fields(obj))
        start = 0
        if query.get("continue"):
            try:
                start = int(json.loads(base64.urlsafe_b64decode(query["continue"] + "==").decode())["start"])
            except (ValueError, KeyError, TypeError):
                raise ApiError(400, "BadRequest", "the continue token is not valid") from None
        limit = int(query.get("limit") or 0)
        page = items[start : start + limit] if limit > 0 else items[start:]
        meta: dict[str, Any] = {"resourceVersion": revision}
        if limit > 0 and start + limit < len(items):
            meta["continue"] = (
                base64.urlsafe_b64encode(json.dumps({"start": start + limit, "rv": revision}).encode())
                .decode()
                .rstrip("=")
            )
            meta["remainingItemCount"] = len(items) - start - limit
        accept = handler.headers.get("Accept") or ""
        if "as=Table" in accept:
            handler._send(200, json.dumps(self._table(page, meta)).encode(), JSON)
            return
        for item in page:  # list items carry no kind/apiVersion, as kube-apiserver sends them
            item.pop("kind", None)
            item.pop("apiVersion", None)
        handler._json(
            200, {"kind": f"{rtype.kind}List", "apiVersion": rtype.group_version, "metadata": meta, "items": page}
        )

    def _table(self, items: list[dict[str, Any]], meta: dict[str, Any]) -> dict[str, Any]:
        now = dt.datetime.now(dt.UTC)

        def age(obj: dict[str, Any]) -> str:
            created = (obj.get("metadata") or {}).get("creationTimestamp")
            if not created:
                return "<unknown>"
            seconds = int((now - dt.datetime.fromisoformat(created.replace("Z", "+00:00"))).total_seconds())
            return (
                f"{seconds}s"
                if seconds < 120
                else f"{seconds // 60}m"
                if seconds < 7200
                else f"{seconds // 3600}h"
                if seconds < 172800
                else f"{seconds // 86400}d"
            )

        return {
            "kind": "Table",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": meta,
            "columnDefinitions": [
                {
                    "name": "Name",
                    "type": "string",
                    "format": "name",
                    "description": "Name of the object",
                    "priority": 0,
                },
                {"name": "Age", "type": "string", "format": "", "description": "Time since creation", "priority": 0},
            ],
            "rows": [
                {
                    "cells": [item["metadata"]["name"], age(item)],
                    "object": {
                        "kind": "PartialObjectMetadata",
                        "apiVersion": "meta.k8s.io/v1",
                        "metadata": item["metadata"],
                    },
                }
                for item in items
            ],
        }

    def _discovery(self, handler: _Handler, parts: list[str]) -> bool:
        groups = self.store.groups()
        if parts in (["healthz"], ["livez"], ["readyz"]):
            handler._send(200, b"ok", "text/plain; charset=utf-8")
        elif parts == ["version"]:
            major, minor, *_ = self.kubernetes_version.split(".")
            handler._json(
                200,
                {
                    "major": major,
                    "minor": minor,
                    "gitVersion": f"v{self.kubernetes_version}+acpcheck-test-apiserver",
                    "gitCommit": "acpcheck-test-apiserver",
                    "gitTreeState": "clean",
                    "buildDate": "1970-01-01T00:00:00Z",
                    "goVersion": "none: the acpcheck test API server is Python",
                    "compiler": "gc",
                    "platform": "linux/amd64",
                },
            )
        elif parts == ["api"]:
            handler._json(
                200,
                {
                    "kind": "APIVersions",
                    "versions": ["v1"],
                    "serverAddressByClientCIDRs": [
                        {"clientCIDR": "0.0.0.0/0", "serverAddress": f"{self.host}:{self.port}"}
                    ],
                },
            )
        elif parts == ["apis"]:
            handler._json(
                200,
                {
                    "kind": "APIGroupList",
                    "apiVersion": "v1",
                    "groups": [self._group(g, vs) for g, vs in groups.items() if g],
                },
            )
        elif len(parts) == 2 and parts[0] == "apis" and parts[1] in groups:
            handler._json(200, {"kind": "APIGroup", "apiVersion": "v1", **self._group(parts[1], groups[parts[1]])})
        elif parts == ["api", "v1"] or (
            len(parts) == 3 and parts[0] == "apis" and parts[2] in groups.get(parts[1], [])
        ):
            group, version = ("", "v1") if parts[0] == "api" else (parts[1], parts[2])
            resources = [
                entry
                for rtype in sorted(self.store.types.values(), key=lambda t: t.resource)
                if rtype.group == group and rtype.version == version
                for entry in rtype.discovery()
            ]
            handler._json(
                200,
                {
                    "kind": "APIResourceList",
                    "apiVersion": "v1",
                    "groupVersion": f"{group}/{version}" if group else version,
                    "resources": resources,
                },
            )
        elif parts == ["openapi", "v2"]:
            handler._send(
                200,
                protowire.openapi_v2_document(NAME, f"v{self.kubernetes_version}"),
                "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
            )
        else:
            return False
        return True

    @staticmethod
    def _group(group: str, versions: list[str]) -> dict[str, Any]:
        entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {"name": group, "versions": entries, "preferredVersion": entries[0]}


# ---------------------------------------------------------------------------
# Certificates, users and kubeconfigs


def _key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _pem_cert(cert: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.PEM)


def issue(
    common_name: str,
    *,
    ca: tuple[Any, Any] | None = None,
    organizations: Iterable[str] = (),
    hosts: Iterable[str] = (),
    days: int = 365,
    is_ca: bool = False,
    client: bool = False,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> tuple[bytes, bytes, Any, Any]:
    """A certificate (PEM), its key (PEM) and both as objects; self-signed when ``ca`` is None.
    Valid from five minutes ago for ``days`` days, unless ``not_before``/``not_after`` say otherwise
    (an expired certificate, one not valid yet). ``hosts``: its SANs, IP addresses or DNS names."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = _key()
    name = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
        + [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
    )
    issuer_cert, issuer_key = ca if ca is not None else (None, key)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_cert.subject if issuer_cert is not None else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - dt.timedelta(minutes=5))
        .not_valid_after(not_after or now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
    )
    if is_ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    else:
        usage = (
            [ExtendedKeyUsageOID.CLIENT_AUTH]
            if client
            else [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
        )
        builder = builder.add_extension(x509.ExtendedKeyUsage(usage), critical=False)
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(issuer_key, hashes.SHA256())
    return _pem_cert(cert), _pem_key(key), cert, key


def kubeconfig(
    server: str,
    ca_pem: bytes,
    user: str,
    *,
    token: str | None = None,
    cert_pem: bytes | None = None,
    key_pem: bytes | None = None,
    exec_config: dict[str, Any] | None = None,
    context: str = "test-apiserver",
) -> str:
    """A kubeconfig (text) for one user of a test API server."""
    entry: dict[str, Any] = {}
    if token is not None:
        entry["token"] = token
    if cert_pem is not None and key_pem is not None:
        entry["client-certificate-data"] = base64.b64encode(cert_pem).decode()
        entry["client-key-data"] = base64.b64encode(key_pem).decode()
    if exec_config is not None:
        entry["exec"] = exec_config
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": context,
        "clusters": [
            {
                "name": "acpcheck-test-apiserver",
                "cluster": {"server": server, "certificate-authority-data": base64.b64encode(ca_pem).decode()},
            }
        ],
        "users": [{"name": user, "user": entry}],
        "contexts": [{"name": context, "context": {"cluster": "acpcheck-test-apiserver", "user": user}}],
    }
    return f"# kubeconfig for user {user} of the {NAME} (a stand-in, not Kubernetes)\n" + yaml.safe_dump(
        document, sort_keys=False
    )


def _write_private(path: Path, data: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "wb") as handle:
        handle.write(data.encode() if isinstance(data, str) else data)


#: Users every initialised server directory has: who they are and what they may do.
DEFAULT_USERS: list[dict[str, Any]] = [
    {"name": "admin", "groups": ["system:masters"], "auth": "client-certificate"},
    {
        "name": "acpcheck-reader",
        "auth": "token",
        "rules": [
            {
                "verbs": ["get", "list", "watch"],
                "apiGroups": [
                    "",
                    "cluster.alauda.io",
                    "networking.k8s.io",
                    "apiextensions.k8s.io",
                    # upgrade readiness (ACP-UPG-*): CSRs, CronJobs, DaemonSets, etcd backups, the CVO's
                    # ClusterVersionShadow, ACP's cluster registry, and the removed API versions it lists
                    "certificates.k8s.io",
                    "batch",
                    "apps",
                    "enhancement.cluster.alauda.io",
                    "config.cpaas.io",
                    "platform.tkestack.io",
                    "flowcontrol.apiserver.k8s.io",
                    "policy",
                    "autoscaling",
                    "storage.k8s.io",
                    # hosted control planes (ACP-HCP-*): MetalLB's address pools, Kamaji's DataStores and
                    # TenantControlPlanes, Cluster API's clusters, control planes and SSH hosts
                    "metallb.io",
                    "kamaji.clastix.io",
                    "cluster.x-k8s.io",
                    "controlplane.cluster.x-k8s.io",
                    "infrastructure.cluster.x-k8s.io",
                ],
                "resources": ["*"],
            },
        ],
    },
    {
        # may read DataStores but not the Secrets they reference
        "name": "datastore-only-reader",
        "auth": "token",
        "rules": [
            {"verbs": ["get", "list"], "apiGroups": ["kamaji.clastix.io"], "resources": ["datastores"]},
            {"verbs": ["get", "list"], "apiGroups": ["apiextensions.k8s.io"], "resources": ["*"]},
        ],
    },
    {
        "name": "no-eec-reader",
        "auth": "token",
        "rules": [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["*"]}],
    },
    {
        "name": "no-node-reader",
        "auth": "token",
        "rules": [
            {"verbs": ["get", "list"], "apiGroups": ["cluster.alauda.io"], "resources": ["etcdencryptionconfigs"]}
        ],
    },
]


@dataclass
class ServerDir:
    """An initialised server directory: certificates, ``config.yaml`` (0600) and ``<user>.kubeconfig`` files."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    def kubeconfig(self, user: str) -> Path:
        return self.root / f"{user}.kubeconfig"

    @property
    def ca(self) -> Path:
        return self.root / "ca.crt"

    def tls(self) -> ServerTls:
        return ServerTls(self.root / "server.crt", self.root / "server.key", self.ca)

    def load(self) -> dict[str, Any]:
        return yaml.safe_load(self.config.read_text())

    def users(self) -> list[User]:
        return [
            User(
                u["name"],
                tuple(u.get("groups") or ()),
                u.get("token"),
                tuple(Rule.from_dict(r) for r in u.get("rules") or ()),
            )
            for u in self.load()["users"]
        ]


def init_server_dir(
    root: Path | str,
    *,
    host: str = "127.0.0.1",
    port: int = 6443,
    users: list[dict[str, Any]] | None = None,
    hosts: Iterable[str] = (),
) -> ServerDir:
    """Write a CA, a serving certificate for ``host`` (and ``hosts``), the users' credentials
    (config.yaml, mode 0600) and one kubeconfig per user (mode 0600) into ``root``. A token user's
    token is made up unless its entry gives one (``"token"``: a canary a test looks for)."""
    server_dir = ServerDir(Path(root))
    server_dir.root.mkdir(parents=True, exist_ok=True)
    ca_pem, ca_key_pem, ca_cert, ca_key = issue(f"{NAME} CA", is_ca=True, days=3650)
    cert_pem, key_pem, _, _ = issue(NAME, ca=(ca_cert, ca_key), hosts=["localhost", "127.0.0.1", host, *hosts])
    server_dir.ca.write_bytes(ca_pem)
    _write_private(server_dir.root / "ca.key", ca_key_pem)
    (server_dir.root / "server.crt").write_bytes(cert_pem)
    _write_private(server_dir.root / "server.key", key_pem)
    server = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
    written = []
    for spec in users if users is not None else DEFAULT_USERS:
        entry = {key: value for key, value in spec.items() if key != "auth"}
        if spec.get("auth", "token") == "token":
            entry["token"] = spec.get("token") or secrets_module.token_urlsafe(24)
            text = kubeconfig(server, ca_pem, spec["name"], token=entry["token"])
        else:
            user_cert, user_key, _, _ = issue(
                spec["name"], ca=(ca_cert, ca_key), organizations=spec.get("groups") or (), client=True
            )
            text = kubeconfig(server, ca_pem, spec["name"], cert_pem=user_cert, key_pem=user_key)
        _write_private(server_dir.kubeconfig(spec["name"]), text)
        written.append(entry)
    _write_private(
        server_dir.config,
        yaml.safe_dump({"server": server, "kubernetesVersion": DEFAULT_VERSION, "users": written}, sort_keys=False),
    )
    return server_dir


def serve_dir(
    root: Path | str,
    *,
    listen: str | None = None,
    seeds: Iterable[Path] = (),
    log: Callable[[str], None] | None = None,
    with_crds: bool = True,
) -> TestApiServer:
    """A started server for an initialised directory, with the objects of ``seeds`` (YAML files) created
    (``with_crds`` False: without the shipped CRDs, as a cluster without their plugins)."""
    server_dir = ServerDir(Path(root))
    config = server_dir.load()
    parsed = urllib.parse.urlsplit(config["server"])
    host, port = (parsed.hostname or "127.0.0.1"), int(parsed.port or 6443)
    if listen:
        host, _, port_text = listen.rpartition(":")
        host, port = host.strip("[]") or "0.0.0.0", int(port_text)  # noqa: S104 — a lab address; the caller chooses
    server = TestApiServer(
        server_dir.tls(),
        server_dir.users(),
        host=host,
        port=port,
        kubernetes_version=config.get("kubernetesVersion", DEFAULT_VERSION),
        crds=None if with_crds else [],
        log=log,
    )
    if port == 0:  # an ephemeral port: point the directory's kubeconfigs at the one bound
        url_host = parsed.hostname if ":" not in (parsed.hostname or "") else "[" + str(parsed.hostname) + "]"
        bound = f"{parsed.scheme}://{url_host}:{server.port}"
        for path in [server_dir.config, *server_dir.root.glob("*.kubeconfig")]:
            _write_private(path, path.read_text().replace(f"server: {config['server']}", f"server: {bound}"))
    for seed in seeds:
        for document in yaml.safe_load_all(Path(seed).read_text()):
            if document:
                server.put(document)
    return server.start()


def wait_ready(url: str, ca_file: Path, timeout: float = 10.0) -> None:
    """Until the server at ``url`` answers a TLS handshake (TimeoutError otherwise)."""
    parsed = urllib.parse.urlsplit(url)
    context = ssl.create_default_context(cafile=str(ca_file))
    deadline = time.monotonic() + timeout
    while True:
        try:
            with (
                socket.create_connection((parsed.hostname, parsed.port), timeout=1) as sock,
                context.wrap_socket(sock, server_hostname=parsed.hostname),
            ):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the {NAME} at {url} did not answer within {timeout:g} s") from None
            time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m acpcheck_lab.apiserver", description=f"the {BANNER}")
    sub = parser.add_subparsers(dest="command", required=True)
    init = sub.add_parser("init", help="write certificates, users and kubeconfigs into DIR")
    init.add_argument("dir")
    init.add_argument("--host", default="127.0.0.1")
    init.add_argument("--port", type=int, default=6443)
    serve = sub.add_parser("serve", help="serve DIR until SIGTERM")
    serve.add_argument("dir")
    serve.add_argument("--listen", help="HOST:PORT (default: the address in DIR/config.yaml)")
    serve.add_argument(
        "--seed", action="append", default=[], help="YAML file of objects to create first (status included)"
    )
    serve.add_argument(
        "--no-crds",
        action="store_true",
        help="without the shipped CRDs (a cluster without the etcd Encryption Manager)",
    )
    serve.add_argument(
        "--hostile",
        metavar="MODE[:SECONDS]",
        help=f"misbehave on purpose: {', '.join(HOSTILE_MODES)} (SECONDS: between two bytes of a drip)",
    )
    serve.add_argument(
        "--hostile-path",
        default="/",
        metavar="PREFIX",
        help="only for requests whose path starts with PREFIX (default: all)",
    )
    args = parser.parse_args(argv)
    if args.command == "init":
        server_dir = init_server_dir(args.dir, host=args.host, port=args.port)
        print(
            f"{NAME}: wrote {server_dir.root} (kubeconfigs: "
            f"{', '.join(sorted(p.name for p in server_dir.root.glob('*.kubeconfig')))})"
        )
        return 0
    hostile = None
    if args.hostile:
        try:
            mode, interval = parse_hostile(args.hostile)
        except ValueError as error:
            parser.error(str(error))
        hostile = Hostile(mode, args.hostile_path, interval)
    server = serve_dir(
        args.dir,
        listen=args.listen,
        seeds=[Path(s) for s in args.seed],
        with_crds=not args.no_crds,
        log=lambda line: print(line, file=sys.stderr, flush=True),
    )
    server.hostile = hostile
    print(f"{BANNER}: listening on {server.url}", flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    stopped.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
