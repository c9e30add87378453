"""Just enough of the protobuf wire format to write what the lab's real parts need.

kube-apiserver stores objects in etcd as ``k8s\\x00`` + a ``runtime.Unknown`` message
(its storage protobuf encoding), and kubectl fetches the OpenAPI v2 document as a
protobuf ``openapi_v2.Document``. The lab writes both with these few functions
(field numbers are the ones of k8s.io/api and gnostic's openapi_v2 .proto files):
varints, length-delimited fields and messages. Nothing here decodes.
"""

from __future__ import annotations

from collections.abc import Iterable

#: The magic prefix of kube-apiserver's protobuf storage encoding (runtime/serializer/protobuf).
K8S_PROTOBUF_MAGIC = b"k8s\x00"


def varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def tag(number: int, wire_type: int) -> bytes:
    return varint((number << 3) | wire_type)


def blob(number: int, data: bytes) -> bytes:
    """A length-delimited field (bytes, string, embedded message)."""
    return tag(number, 2) + varint(len(data)) + data


def text(number: int, value: str | None) -> bytes:
    """A string field; None or "" is left out (proto3 default)."""
    return blob(number, value.encode()) if value else b""


def integer(number: int, value: int | None) -> bytes:
    return tag(number, 0) + varint(value) if value else b""


def boolean(number: int, value: bool | None) -> bytes:
    return tag(number, 0) + varint(1) if value else b""


def message(number: int, *parts: bytes) -> bytes:
    return blob(number, b"".join(parts))


def string_map(number: int, entries: dict[str, str] | None) -> bytes:
    """map<string, string>: one entry message (key 1, value 2) per item, in key order."""
    return b"".join(blob(number, text(1, key) + text(2, value)) for key, value in sorted((entries or {}).items()))


def bytes_map(number: int, entries: dict[str, bytes] | None) -> bytes:
    """map<string, bytes>."""
    return b"".join(blob(number, text(1, key) + blob(2, value)) for key, value in sorted((entries or {}).items()))


def repeated_text(number: int, values: Iterable[str]) -> bytes:
    return b"".join(blob(number, value.encode()) for value in values)


# ---------------------------------------------------------------------------
# Kubernetes objects as kube-apiserver stores them


def object_meta(
    name: str,
    namespace: str | None = None,
    uid: str | None = None,
    resource_version: str | None = None,
    creation_seconds: int | None = None,
    labels: dict[str, str] | None = None,
) -> bytes:
    """k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta (name 1, namespace 3, uid 5,
    resourceVersion 6, creationTimestamp 8 {seconds 1}, labels 11)."""
    timestamp = message(8, integer(1, creation_seconds)) if creation_seconds else b""
    return (
        text(1, name)
        + text(3, namespace)
        + text(5, uid)
        + text(6, resource_version)
        + timestamp
        + string_map(11, labels)
    )


def stored_object(api_version: str, kind: str, raw: bytes) -> bytes:
    """``k8s\\x00`` + runtime.Unknown{typeMeta 1 {apiVersion 1, kind 2}, raw 2, contentEncoding 3, contentType 4}."""
    unknown = message(1, text(1, api_version), text(2, kind)) + blob(2, raw) + text(3, "") + text(4, "")
    return K8S_PROTOBUF_MAGIC + unknown


def secret(name: str, namespace: str, data: dict[str, bytes], secret_type: str = "Opaque", **meta: object) -> bytes:
    """A v1 Secret in kube-apiserver's storage encoding (Secret: metadata 1, data 2, type 3)."""
    raw = message(1, object_meta(name, namespace, **meta)) + bytes_map(2, data) + text(3, secret_type)  # type: ignore[arg-type]
    return stored_object("v1", "Secret", raw)


def config_map(name: str, namespace: str, data: dict[str, str], **meta: object) -> bytes:
    """A v1 ConfigMap in kube-apiserver's storage encoding (ConfigMap: metadata 1, data 2)."""
    raw = message(1, object_meta(name, namespace, **meta)) + string_map(2, data)  # type: ignore[arg-type]
    return stored_object("v1", "ConfigMap", raw)


def namespace(name: str, **meta: object) -> bytes:
    """A v1 Namespace in kube-apiserver's storage encoding (Namespace: metadata 1, spec 2, status 3 {phase 1})."""
    raw = message(1, object_meta(name, **meta)) + message(3, text(1, "Active"))  # type: ignore[arg-type]
    return stored_object("v1", "Namespace", raw)


def openapi_v2_document(title: str, version: str) -> bytes:
    """A minimal openapi_v2.Document (swagger 1, info 2 {title 1, version 4}, paths 8 {}):
    what kubectl downloads from /openapi/v2 before it validates an object it sends."""
    return text(1, "2.0") + message(2, text(1, title), text(4, version)) + message(8)
