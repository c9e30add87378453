"""Cluster steps: Kubernetes API objects created or patched, shown as a diff, journaled, undone.

A cluster step (``@cluster_step``, ``target = "cluster"``) reads a ``ClusterObjects``
view (live reads through the plan's kubeconfig, as the ``cluster`` source reads) and
returns ``Changes`` of ``ObjectChange`` actions:

- ``create``: the object must not exist yet (else ``Stale``). Its undo record holds the
  object's coordinates and the sha256 of what was created, never its body (a Secret's
  key stays out of the journal); the undo deletes it only while it is still what the
  run created.
- ``patch``: a JSON merge patch of a few fields (``fields``: path -> new value, None
  removes). ``prepare`` reads the object, refuses (``Stale``) when those fields no longer
  hold what the step read, and journals their values before the change; the
  undo patches them back (a field that was absent is removed again), and refuses to
  overwrite a field that changed after the run changed it.

``describe`` shows the exact ``kubectl`` equivalent and a YAML diff of the fields; a
Secret's values are shown only as their length, sha256 and the file they come from.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import yaml

from acpcheck.errors import visible
from acpcheck.remediation import records
from acpcheck.remediation.actions import (
    PLANNED,
    ActionContext,
    ActionFailed,
    DescribeAs,
    Stale,
    register_kind,
)
from acpcheck.remediation.changes import Changes

if TYPE_CHECKING:
    from acpcheck.model.plan import ClusterPlan
    from acpcheck.transport.kube import KubeClient

MERGE_PATCH = "application/merge-patch+json"
#: API kinds a cluster step may touch: resource -> (group, version, kind, namespaced, typed API, method stem).
TYPES: dict[str, tuple[str, str, str, bool, str, str]] = {
    "nodes": ("", "v1", "Node", False, "CoreV1Api", "node"),
    "secrets": ("", "v1", "Secret", True, "CoreV1Api", "secret"),
    "services": ("", "v1", "Service", True, "CoreV1Api", "service"),
    "ingresses": ("networking.k8s.io", "v1", "Ingress", True, "NetworkingV1Api", "ingress"),
    "clusters.cluster.x-k8s.io": ("cluster.x-k8s.io", "v1beta1", "Cluster", True, "", ""),
}

Path_ = tuple[str, ...]


class ObjectError(ActionFailed):
    """The API refused or failed a read or change of a cluster step."""


@dataclass(frozen=True)
class Ref:
    """Which object: its resource (a key of ``TYPES``), namespace and name."""

    resource: str
    name: str
    namespace: str | None = None

    @property
    def kind(self) -> str:
        return TYPES[self.resource][2]

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace + '/' if self.namespace else ''}{self.name}"

    def as_record(self) -> dict[str, Any]:
        return {"resource": self.resource, "name": self.name, "namespace": self.namespace}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Ref:
        return cls(record["resource"], record["name"], record.get("namespace"))


def get_path(obj: dict[str, Any] | None, path: Path_) -> Any:
    value: Any = obj
    for part in path:
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def merge_patch_of(fields: dict[Path_, Any]) -> dict[str, Any]:
    patch: dict[str, Any] = {}
    for path, value in fields.items():
        here = patch
        for part in path[:-1]:
            here = here.setdefault(part, {})
        here[path[-1]] = value
    return patch


def shape(value: Any) -> Any:
    """The keys of ``value`` without its values (what an undo record may hold of a Secret)."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(item) for item in value]
    return None


def project(value: Any, like: Any) -> Any:
    """``value`` cut down to the keys of ``like`` (fields the API server adds are left out)."""
    if isinstance(like, dict):
        return {key: project(value.get(key), item) for key, item in like.items()} if isinstance(value, dict) else value
    if isinstance(like, list):
        return (
            [project(v, s) for v, s in zip(value, like, strict=False)] + value[len(like) :]
            if isinstance(value, list)
            else value
        )
    return value


def created_shape(body: dict[str, Any]) -> Any:
    kept = {key: value for key, value in body.items() if key not in ("metadata", "apiVersion", "kind", "status")}
    meta = body.get("metadata") or {}
    kept["metadata"] = {key: meta[key] for key in ("labels", "annotations") if key in meta}
    return shape(kept)


def digest(obj: dict[str, Any], like: Any) -> str:
    """sha256 of ``obj`` cut down to ``like`` (what a step set on an object it created)."""
    return hashlib.sha256(json.dumps(project(obj, like), sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class ObjectChange:
    """Create one object, or merge-patch a few of its fields."""

    ref: Ref
    op: Literal["create", "patch"]
    why: str = ""
    #: create: the whole object.
    body: dict[str, Any] | None = field(default=None, repr=False)
    #: patch: field path -> (value the step read, new value); None: absent / remove.
    fields: dict[Path_, tuple[Any, Any]] = field(default_factory=dict)
    #: create: what the diff shows instead of the body (a Secret's values as digests).
    shown: dict[str, Any] | None = None
    kind: Literal["object"] = field(default="object", init=False)

    @property
    def display(self) -> dict[str, Any]:
        return self.shown if self.shown is not None else (self.body or {})


def redacted_secret(body: dict[str, Any], sources: dict[str, str]) -> dict[str, Any]:
    """``body`` with each data value replaced by its length, sha256 and the file it comes from."""
    import base64

    shown = copy.deepcopy(body)
    for key, value in (shown.get("data") or {}).items():
        raw = base64.b64decode(value)
        shown["data"][key] = (
            f"<{len(raw)} bytes from {sources.get(key, '?')}, sha256 {hashlib.sha256(raw).hexdigest()[:16]}…>"
        )
    return shown


def _yaml(value: Any) -> list[str]:
    return (
        yaml.safe_dump(value, sort_keys=False, default_flow_style=False, allow_unicode=False).splitlines()
        if value is not None
        else []
    )


class ObjectKind:
    def describe(self, action: ObjectChange, how: DescribeAs = PLANNED) -> list[str]:
        ref = action.ref
        if action.op == "create":
            lines = [
                f"{'created' if how.done else 'create'} {ref}" + (f": {action.why}" if action.why else ""),
                f"  $ kubectl create -f - <<EOF  # {ref.kind}",
            ]
            lines += [f"  + {visible(line)}" for line in _yaml(action.display)]
            lines.append("  undo: delete it (only while it is still what this run created)")
            return lines
        patch = merge_patch_of({path: after for path, (_, after) in action.fields.items()})
        lines = [f"{'patched' if how.done else 'patch'} {ref}" + (f": {action.why}" if action.why else "")]
        namespace = f" -n {ref.namespace}" if ref.namespace else ""
        lines.append(
            f"  $ kubectl patch {ref.resource} {ref.name}{namespace} --type merge -p "
            f"'{json.dumps(patch, separators=(',', ':'))}'"
        )
        for path, (before, after) in action.fields.items():
            where = ".".join(path)
            old = _yaml({path[-1]: before}) if before is not None else []
            new = _yaml({path[-1]: after}) if after is not None else []
            lines.append(f"  --- {visible(where, one_line=True)}\t({'absent' if before is None else 'now'})")
            state = "removed" if after is None else ("written" if how.done else "planned")
            lines.append(f"  +++ {visible(where, one_line=True)}\t({state})")
            lines += [
                "  " + visible(line)
                for line in difflib.unified_diff(old, new, lineterm="", n=3)
                if not line.startswith(("---", "+++"))
            ]
        lines.append("  undo: patch these fields back to their values before the change")
        return lines

    def prepare(self, action: ObjectChange, ctx: ActionContext) -> dict[str, Any]:
        kube = _kube(ctx)
        current = read_object(kube, action.ref)
        if action.op == "create":
            if current is not None:
                raise Stale(f"{action.ref} exists now (the step read it when it did not); nothing done")
            assert action.body is not None
            like = created_shape(action.body)
            return {"op": "create", "ref": action.ref.as_record(), "shape": like, "sha256": digest(action.body, like)}
        if current is None:
            raise Stale(f"{action.ref} does not exist any more; nothing done")
        fields = []
        for path, (before, after) in action.fields.items():
            now = get_path(current, path)
            if now != before:
                raise Stale(f"{action.ref}: {'.'.join(path)} changed since the step read it; nothing done")
            entry: dict[str, Any] = {"path": list(path), "before": now, "after": after}
            absent_from = next((path[:i] for i in range(1, len(path)) if get_path(current, path[:i]) is None), None)
            if now is None and absent_from is not None:
                entry["absentFrom"] = list(absent_from)  # the undo removes it again when it holds nothing else
            fields.append(entry)
        return {"op": "patch", "ref": action.ref.as_record(), "fields": fields}

    def perform(self, action: ObjectChange, ctx: ActionContext) -> None:
        kube = _kube(ctx)
        if action.op == "create":
            assert action.body is not None
            create_object(kube, action.ref, action.body)
            return
        patch_object(kube, action.ref, merge_patch_of({path: after for path, (_, after) in action.fields.items()}))
        now = read_object(kube, action.ref)
        wrong = [".".join(path) for path, (_, after) in action.fields.items() if get_path(now, path) != after]
        if wrong:
            raise ActionFailed(f"{action.ref}: {', '.join(wrong)} do not hold the planned values after the patch")

    def undo(self, record: dict[str, Any], ctx: ActionContext) -> str:
        kube = _kube(ctx)
        ref = Ref.from_record(record["ref"])
        current = read_object(kube, ref)
        if record["op"] == "create":
            if current is None:
                return f"{ref}: already absent"
            if digest(current, record["shape"]) != record["sha256"]:
                raise ObjectError(
                    f"{ref} changed after this run created it; not deleted: delete it by hand if it should go"
                )
            delete_object(kube, ref)
            return f"{ref}: deleted (this run created it)"
        if current is None:
            raise ObjectError(f"{ref} is gone; nothing to restore")
        restore: dict[Path_, Any] = {}
        for entry in record["fields"]:
            path = tuple(entry["path"])
            now = get_path(current, path)
            if now == entry["before"]:
                continue
            if now != entry["after"]:
                raise ObjectError(
                    f"{ref}: {'.'.join(path)} changed after this run changed it; not overwritten: restore it by hand"
                )
            absent_from = tuple(entry.get("absentFrom") or ())
            if absent_from and _empty_without(get_path(current, absent_from), path[len(absent_from) :]):
                restore[absent_from] = None
            else:
                restore[path] = entry["before"]
        if not restore:
            return f"{ref}: already as before"
        patch_object(kube, ref, merge_patch_of(restore))
        return f"{ref}: restored {', '.join('.'.join(path) for path in restore)}"

    def verify(self, record: Any, backup_dir: str) -> list[tuple[str, str]]:
        found = records.problems(
            record,
            {
                "op": lambda value: None if value in ("create", "patch") else "is not create or patch",
                "ref": _ref_problem,
            },
        )
        if found:
            return found
        if record["op"] == "create":
            return records.problems(record, {"shape": lambda value: None, "sha256": records.sha256})
        found = records.problems(
            record, {"fields": lambda value: None if isinstance(value, list) and value else "is not a list of fields"}
        )
        for index, entry in enumerate(record.get("fields") or (), start=1):
            problems = records.problems(
                entry,
                {
                    "path": _field_path,
                    "before": lambda value: None,
                    "after": lambda value: None,
                    "absentFrom": _field_path,
                },
                optional=frozenset({"absentFrom"}),
            )
            if (
                not problems
                and "absentFrom" in entry
                and entry["path"][: len(entry["absentFrom"])] != entry["absentFrom"]
            ):
                problems = [("absentFrom", "is not a part of the field's path")]
            found += [(f"fields[{index}].{name}", message) for name, message in problems]
        return found


#: Names of Kubernetes objects and namespaces (DNS subdomains, and Node names that are addresses).
_OBJECT_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._:-]{0,251}[A-Za-z0-9])?")


def _ref_problem(value: Any) -> str | None:
    found = records.problems(
        value,
        {
            "resource": lambda resource: None if resource in TYPES else f"is not one of {', '.join(sorted(TYPES))}",
            "name": lambda name: (
                None if isinstance(name, str) and _OBJECT_NAME.fullmatch(name) else "is not an object name"
            ),
            "namespace": lambda namespace: (
                None
                if namespace is None or isinstance(namespace, str) and _OBJECT_NAME.fullmatch(namespace)
                else "is not a namespace"
            ),
        },
    )
    return f"{found[0][0]} {found[0][1]}" if found else None


def _field_path(value: Any) -> str | None:
    return (
        None
        if isinstance(value, list) and value and all(isinstance(part, str) and part for part in value)
        else "is not a field path"
    )


def _empty_without(value: Any, rest: Path_) -> bool:
    """Whether ``value`` holds nothing but ``rest`` (and empty mappings on the way to it)."""
    if not rest:
        return True
    if not isinstance(value, dict):
        return False
    return all(key == rest[0] and _empty_without(item, rest[1:]) for key, item in value.items())


def _kube(ctx: ActionContext) -> KubeClient:
    kube = getattr(ctx, "kube", None)
    if kube is None:
        raise ActionFailed("no Kubernetes API access for a cluster step")
    return kube


# ---------------------------------------------------------------------------
# The API, through acpcheck's own client (the cluster source's TLS, auth and timeouts)


def _call(kube: KubeClient, ref: Ref, verb: str, *extra: Any, **kwargs: Any) -> Any:
    from acpcheck.transport.kube import ApiFailure

    group, version, _, namespaced, api_name, stem = TYPES[ref.resource]
    what = f"{verb} {ref}"
    try:
        if not api_name:  # a custom resource
            custom = kube.client.CustomObjectsApi(kube.api)
            plural = ref.resource.split(".")[0]
            suffix = "namespaced_custom_object" if namespaced else "cluster_custom_object"
            scope = (ref.namespace,) if namespaced else ()
            if verb == "create":
                return kube.call(
                    what, getattr(custom, f"create_{suffix}"), group, version, *scope, plural, *extra, **kwargs
                )
            return kube.call(
                what, getattr(custom, f"{verb}_{suffix}"), group, version, *scope, plural, ref.name, *extra, **kwargs
            )
        api = getattr(kube.client, api_name)(kube.api)
        method = getattr(api, f"{verb}_namespaced_{stem}" if namespaced else f"{verb}_{stem}")
        scope = (ref.namespace,) if namespaced else ()
        if verb == "create":
            return kube.call(what, method, *scope, *extra, **kwargs)
        return kube.call(what, method, ref.name, *scope, *extra, **kwargs)
    except ApiFailure as failure:
        if failure.kind == "absent":
            raise
        raise ObjectError(failure.message) from None


def read_object(kube: KubeClient, ref: Ref) -> dict[str, Any] | None:
    from acpcheck.transport.kube import ApiFailure

    try:
        # The raw JSON: the client's typed models refuse objects a real server may well hold.
        found = _call(kube, ref, "read" if TYPES[ref.resource][4] else "get", _preload_content=False)
    except ApiFailure:
        return None
    return json.loads(found.data)


def create_object(kube: KubeClient, ref: Ref, body: dict[str, Any]) -> None:
    _call(kube, ref, "create", body, _preload_content=False)


def patch_object(kube: KubeClient, ref: Ref, patch: dict[str, Any]) -> None:
    _call(kube, ref, "patch", patch, _content_type=MERGE_PATCH, _preload_content=False)


def delete_object(kube: KubeClient, ref: Ref) -> None:
    from acpcheck.transport.kube import ApiFailure

    try:
        _call(kube, ref, "delete", _preload_content=False)
    except ApiFailure:
        pass  # already gone


class ClusterObjects:
    """What a cluster step's function reads: the plan, and live objects (cached per run)."""

    def __init__(self, kube: KubeClient, plan: ClusterPlan):
        self.kube = kube
        self.plan = plan
        self._cache: dict[Ref, dict[str, Any] | None] = {}

    def get(self, resource: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        ref = Ref(resource, name, namespace)
        if ref not in self._cache:
            self._cache[ref] = read_object(self.kube, ref)
        return copy.deepcopy(self._cache[ref])

    def forget(self) -> None:
        self._cache.clear()

    def assume(self, changes: Changes) -> None:
        """Later reads see ``changes`` as made (a dry-run shows each step on top of the ones before)."""
        for action in changes.actions:
            if not isinstance(action, ObjectChange):
                continue
            if action.op == "create":
                self._cache[action.ref] = copy.deepcopy(action.body)
                continue
            current = self.get(action.ref.resource, action.ref.name, action.ref.namespace) or {}
            for path, (_, after) in action.fields.items():
                here = current
                for part in path[:-1]:
                    here = here.setdefault(part, {})
                if after is None:
                    here.pop(path[-1], None)
                else:
                    here[path[-1]] = copy.deepcopy(after)
            self._cache[action.ref] = current


register_kind("object", ObjectKind())
