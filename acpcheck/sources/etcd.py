"""Reading etcd's raw values: what kube-apiserver really stored, and whether it is encrypted.

The client talks etcd's v3 gRPC-gateway JSON API (``POST /v3/kv/range``, ``/v3/kv/txn``)
over HTTPS on etcd's client port, which etcd serves next to gRPC: no extra dependency.
It connects through a ``LocalForward`` (an SSH channel from a control-plane node, where
etcd usually listens on 127.0.0.1:2379 only), verifies etcd's certificate against the CA
named by the kube-apiserver manifest (``--etcd-cafile``) for the host in
``--etcd-servers``, and presents the client certificate and key named there
(``--etcd-certfile``/``--etcd-keyfile``), held in memory: Python's ``ssl`` loads a
certificate only by path, so it reads them from a memfd (``/proc/self/fd/N``) that is
closed as soon as the context has them. Nothing is written to disk or logged.

Each call has a deadline on the whole exchange (``acpcheck.sources.deadline``: 60 s,
``ACPCHECK_REQUEST_TIMEOUT``) besides the 30 s bound on each read, and an answer is read
up to ``MAX_ANSWER_BYTES``: an etcd (or anything else on that port) that drips, stalls
or floods ends the scan from that node with ``timeout`` or ``error``.

The scan reads every resource prefix in pages pinned to the revision of its first
answer (one consistent snapshot; memory bounded by one page of about 8 MB). etcd counts
every key from a request's start to its range end, so a resource with more than 200 000
objects is cut at the cluster's namespaces (``/registry/namespaces/``) into sub-ranges,
each paged with its own tight range end. With a sample it walks the keys only and reads
evenly spaced windows of consecutive values, each with one tight range request.

Classification of one value (kube-apiserver writes ``k8s:enc:<provider>:v1:<key>:`` and
then the ciphertext; AES-GCM uses a 12-byte nonce and the etcd key as authenticated
data, so a value is checked by decrypting it with the named key of the node's config):

=================  ====================================================================
``encrypted``      the resource's first provider and its first key (what kube-apiserver writes now)
``stale-key``      a provider and key the config still lists, but not the current one (not re-encrypted yet)
``unknown-key``    encrypted, but with a provider or key the config does not have (unreadable by this node)
``undecryptable``  names a key of the config, but that key does not decrypt it (the same name, other key material)
``identity``       begins ``k8s:enc:identity`` (tools and some documents use this marker for unencrypted values)
``plaintext``      no ``k8s:enc:`` prefix: stored as written (the ``identity`` provider, or before encryption)
=================  ====================================================================

Only counts (per resource, per namespace) and a few object *names* leave this module;
values, keys and decrypted bytes never do.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from acpcheck.sources.deadline import REQUEST_TIMEOUT_ENV, Deadline, request_timeout, watch_current

ENC_PREFIX = b"k8s:enc:"
#: Categories that break the rule "every value is encrypted with a key of the current config".
FAILING = ("plaintext", "identity", "unknown-key", "undecryptable")
CATEGORIES = ("encrypted", "stale-key", *FAILING)
#: Default: every object up to this many, else an even sample of this many.
DEFAULT_LIMIT = 100_000
EXAMPLES = 3  # object names kept per category and resource
SAMPLE_ENV = "ACPCHECK_ETCD_SAMPLE"

#: etcd key prefixes of built-in resources whose prefix is not /registry/<resource>/.
SPECIAL_PREFIXES = {
    "services": "/registry/services/specs/",
    "endpoints": "/registry/services/endpoints/",
    "ingresses.networking.k8s.io": "/registry/ingress/",
    "ingresses.extensions": "/registry/ingress/",
    "podsecuritypolicies.policy": "/registry/podsecuritypolicy/",
    "nodes": "/registry/minions/",
    "deployments.apps": "/registry/deployments/",
    "customresourcedefinitions.apiextensions.k8s.io": "/registry/apiextensions.k8s.io/customresourcedefinitions/",
}
#: API groups whose resources are stored under /registry/<resource>/ (not /registry/<group>/<resource>/).
BUILTIN_GROUPS = frozenset(
    {
        "apps",
        "batch",
        "autoscaling",
        "policy",
        "networking.k8s.io",
        "rbac.authorization.k8s.io",
        "storage.k8s.io",
        "scheduling.k8s.io",
        "coordination.k8s.io",
        "discovery.k8s.io",
        "node.k8s.io",
        "certificates.k8s.io",
        "admissionregistration.k8s.io",
        "flowcontrol.apiserver.k8s.io",
        "events.k8s.io",
        "extensions",
        "resource.k8s.io",
    }
)


def etcd_prefix(resource: str) -> str:
    """The etcd key prefix kube-apiserver stores ``resource`` (``secrets``, ``x.group``) under."""
    if resource in SPECIAL_PREFIXES:
        return SPECIAL_PREFIXES[resource]
    name, _, group = resource.partition(".")
    if not group or group in BUILTIN_GROUPS:
        return f"/registry/{name}/"
    return f"/registry/{group}/{name}/"


def prefix_end(prefix: bytes) -> bytes:
    """etcd's range_end for "every key with this prefix"."""
    end = bytearray(prefix)
    for index in range(len(end) - 1, -1, -1):
        if end[index] < 0xFF:
            end[index] += 1
            return bytes(end[: index + 1])
    return b"\0"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# ---------------------------------------------------------------------------
# What a resource's values should look like


@dataclass(frozen=True)
class Provider:
    """One provider of a resource rule, with its keys in order (secrets in memory only)."""

    type: str  # aesgcm | aescbc | secretbox | kms | identity
    keys: tuple[tuple[str, bytes | None], ...] = field(default=(), repr=False)  # (name, key bytes); kms: (name, None)

    @property
    def key_names(self) -> list[str]:
        return [name for name, _ in self.keys]


@dataclass(frozen=True)
class Expectation:
    """How ``resource`` must be stored: its rule's providers, first one first (none: not encrypted at all)."""

    resource: str
    prefix: str
    providers: tuple[Provider, ...] = field(default=(), repr=False)

    @property
    def current(self) -> str:
        """``aesgcm:key3``: what kube-apiserver writes now, ``identity`` when it does not encrypt."""
        first = self.providers[0] if self.providers else None
        if first is None or first.type == "identity" or not first.keys:
            return "identity"
        return f"{first.type}:{first.keys[0][0]}"


class Classifier:
    """Sorts raw values of one resource into ``CATEGORIES``, checking AES-GCM ones by decrypting."""

    def __init__(self, expectation: Expectation, verify: bool = True):
        self.expectation = expectation
        self.verify = verify
        first = expectation.providers[0] if expectation.providers else None
        self.current = (
            (first.type, first.keys[0][0]) if first is not None and first.type != "identity" and first.keys else None
        )
        self.known: dict[tuple[str, str], bytes | None] = {}
        for provider in expectation.providers:
            for name, secret in provider.keys:
                self.known.setdefault((provider.type, name), secret)
        self._ciphers: dict[str, Any] = {}

    def _cipher(self, name: str, secret: bytes) -> Any:
        if name not in self._ciphers:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM

            self._ciphers[name] = AESGCM(secret)
        return self._ciphers[name]

    def classify(self, key: bytes, value: bytes) -> tuple[str, str]:
        """(category, provider:key or "") of one etcd value stored under ``key``."""
        if not value.startswith(ENC_PREFIX):
            return "plaintext", ""
        rest = value[len(ENC_PREFIX) :]
        if rest.startswith(b"identity"):
            return "identity", ""
        parts = rest.split(b":", 3)  # provider, version, key name, payload
        if len(parts) < 4:
            return "unknown-key", parts[0].decode(errors="replace")[:20]
        provider, name, payload = parts[0].decode(errors="replace"), parts[2].decode(errors="replace"), parts[3]
        label = f"{provider}:{name}"
        if (provider, name) not in self.known:
            return "unknown-key", label
        secret = self.known[(provider, name)]
        if self.verify and provider == "aesgcm" and secret is not None:
            try:
                self._cipher(name, secret).decrypt(payload[:12], payload[12:], key)
            except Exception:  # noqa: BLE001 — InvalidTag, or a payload too short to hold a nonce and tag
                return "undecryptable", label
        return ("encrypted" if (provider, name) == self.current else "stale-key"), label


# ---------------------------------------------------------------------------
# The client


class EtcdError(Exception):
    """``kind``: unreachable, tls, auth (client certificate refused), timeout, error."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class ClientCredentials:
    """PEM text read from the node into memory (repr hides it)."""

    ca: str = field(repr=False)
    cert: str = field(repr=False)
    key: str = field(repr=False)


def tls_context(credentials: ClientCredentials) -> ssl.SSLContext:
    """A client context that trusts ``credentials.ca`` and presents the client certificate,
    loaded from a memfd that is closed before this returns."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=credentials.ca)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    fd = os.memfd_create("acpcheck-etcd-client", os.MFD_CLOEXEC)
    try:
        os.write(fd, (credentials.cert.rstrip("\n") + "\n" + credentials.key).encode())
        context.load_cert_chain(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)
    return context


class _Connection(http.client.HTTPSConnection):
    """HTTPS to a forward's local address, verifying the certificate for the real etcd host."""

    def __init__(self, address: tuple[str, int], server_hostname: str, context: ssl.SSLContext, timeout: float):
        super().__init__(address[0], address[1], context=context, timeout=timeout)
        self._server_hostname = server_hostname
        self._tls = context

    def connect(self) -> None:
        raw = socket.create_connection((self.host, self.port), self.timeout)
        watch_current(raw)  # before the TLS handshake: the read's deadline covers it too
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self.sock = self._tls.wrap_socket(raw, server_hostname=self._server_hostname)
        except BaseException:
            raw.close()
            raise

    def _send_output(self, message_body: Any = None, encode_chunked: bool = False) -> None:
        """Headers and body in ONE write. http.client sends them in two, and the second
        waits for the peer's delayed ACK of the first (Nagle): 40 ms on every request."""
        if isinstance(message_body, bytes):
            self._buffer.extend((b"", b""))  # type: ignore[attr-defined]
            request = b"\r\n".join(self._buffer) + message_body  # type: ignore[attr-defined]
            del self._buffer[:]  # type: ignore[attr-defined]
            self.send(request)
            return
        super()._send_output(message_body, encode_chunked)


#: The largest answer read from etcd, in bytes. Our choice: pages aim at ``PAGE_BYTES``
#: (8 MB), but a page holds at least ``MIN_PAGE`` values and etcd stores values of up to
#: 1.5 MiB: 100 of them are 200 MB in base64.
MAX_ANSWER_BYTES = 256 << 20


class EtcdClient:
    """One keep-alive HTTPS connection to etcd's JSON gateway.

    ``timeout`` bounds the connect and each read; ``deadline`` (default
    ``request_timeout()``) the whole of one call, so an etcd (or a forward) that drips
    its answer ends as ``timeout``; an answer is read up to ``MAX_ANSWER_BYTES``."""

    def __init__(
        self,
        address: tuple[str, int],
        host: str,
        credentials: ClientCredentials,
        *,
        timeout: float = 30.0,
        label: str = "etcd",
        deadline: float | None = None,
    ):
        self.label = label
        self.host = host
        try:
            self.deadline = request_timeout() if deadline is None else deadline
        except ValueError as error:
            raise EtcdError("config", f"{REQUEST_TIMEOUT_ENV}: {error}") from None
        try:
            context = tls_context(credentials)
        except ssl.SSLError as error:
            raise EtcdError(
                "tls",
                f"the CA, certificate or key named in the kube-apiserver manifest cannot be used ({error.reason or error})",
            ) from None
        self._connection = _Connection(address, host, context, timeout)
        self.last_size = 0

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> EtcdClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST ``body`` to ``path`` within the deadline; ``last_size`` is then the answer's size in bytes."""
        with Deadline(self.deadline) as deadline:
            try:
                return self._call(path, body, deadline)
            except EtcdError:
                if deadline.expired:  # whatever broke, it broke because the deadline shut the connection
                    self._connection.close()
                    raise EtcdError(
                        "timeout",
                        f"{self.label}: etcd gave no complete answer to {path} within {self.deadline:g} s "
                        f"(the deadline of one read; {REQUEST_TIMEOUT_ENV} sets it)",
                    ) from None
                raise

    def _call(self, path: str, body: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
        data = json.dumps(body).encode()
        if self._connection.sock is not None:  # kept alive from an earlier call
            deadline.watch(self._connection.sock)
        try:
            self._connection.request("POST", path, body=data, headers={"Content-Type": "application/json"})
            response = self._connection.getresponse()
            payload = _read_bounded(response, MAX_ANSWER_BYTES)
        except _TooLarge as error:
            self._connection.close()
            raise EtcdError("error", f"{self.label}: etcd's answer to {path} {error}") from None
        except ssl.SSLCertVerificationError as error:
            self._connection.close()
            raise EtcdError(
                "tls",
                f"{self.label}: etcd's certificate is not trusted for {self.host} by the CA of --etcd-cafile "
                f"({error.verify_message or error.reason})",
            ) from None
        except ssl.SSLError as error:
            self._connection.close()
            reason = error.reason or type(error).__name__
            if any(
                word in str(reason).upper()
                for word in (
                    "BAD_CERTIFICATE",
                    "UNKNOWN_CA",
                    "CERTIFICATE_UNKNOWN",
                    "CERTIFICATE_REQUIRED",
                    "DECRYPT_ERROR",
                    "ACCESS_DENIED",
                )
            ):
                raise EtcdError(
                    "auth", f"{self.label}: etcd refused the client certificate of --etcd-certfile ({reason})"
                ) from None
            raise EtcdError("tls", f"{self.label}: TLS with etcd failed ({reason})") from None
        except TimeoutError:
            self._connection.close()
            raise EtcdError(
                "timeout", f"{self.label}: etcd did not answer {path} within {self._connection.timeout:g} s (one read)"
            ) from None
        except (ConnectionError, http.client.HTTPException, OSError) as error:
            self._connection.close()
            raise EtcdError(
                "unreachable",
                f"{self.label}: the connection to etcd ended ({type(error).__name__}); "
                "a client certificate etcd does not accept ends it like this too",
            ) from None
        self.last_size = len(payload)
        if response.status != 200:
            try:
                found = json.loads(payload)
                message = str(found.get("message") or found.get("error") or "")[:200] if isinstance(found, dict) else ""
            except (ValueError, RecursionError):
                message = payload[:200].decode(errors="replace")
            kind = "auth" if response.status in (401, 403) else "error"
            raise EtcdError(kind, f"{self.label}: etcd answered {path} with HTTP {response.status}: {message}")
        try:
            answer = json.loads(payload)
        except (ValueError, RecursionError):
            raise EtcdError(
                "error", f"{self.label}: etcd's answer to {path} is not JSON (is this etcd's client port?)"
            ) from None
        if not isinstance(answer, dict):
            raise EtcdError(
                "error", f"{self.label}: etcd's answer to {path} is not a JSON object (is this etcd's client port?)"
            )
        return answer

    def range(
        self,
        key: bytes,
        end: bytes,
        *,
        limit: int = 0,
        revision: int = 0,
        keys_only: bool = False,
        count_only: bool = False,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"key": _b64(key), "range_end": _b64(end)}
        if limit:
            body["limit"] = str(limit)
        if revision:
            body["revision"] = str(revision)
        if keys_only:
            body["keys_only"] = True
        if count_only:
            body["count_only"] = True
        return self.call("/v3/kv/range", body)

    def status(self) -> dict[str, Any]:
        return self.call("/v3/maintenance/status", {})


class _TooLarge(Exception):
    pass


def _read_bounded(response: http.client.HTTPResponse, limit: int) -> bytes:
    """The body of ``response``, at most ``limit`` bytes (_TooLarge otherwise, the rest unread)."""
    declared = response.getheader("Content-Length") or ""
    if declared.isdigit() and int(declared) > limit:
        raise _TooLarge(f"is {int(declared):,} bytes, more than the {limit:,} acpcheck reads")
    chunks, size = [], 0
    while True:
        chunk = response.read(1 << 20)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise _TooLarge(f"is more than the {limit:,} bytes acpcheck reads")
        chunks.append(chunk)


# ---------------------------------------------------------------------------
# The scan


@dataclass
class ResourceScan:
    resource: str
    prefix: str
    expected: str  # Expectation.current
    total: int = 0
    examined: int = 0
    counts: dict[str, int] = field(default_factory=lambda: {category: 0 for category in CATEGORIES})
    namespaces: dict[str, dict[str, int]] = field(
        default_factory=dict
    )  # namespace -> {category: n} for the non-encrypted ones
    examples: dict[str, list[str]] = field(default_factory=dict)  # category -> a few object names ("ns/name")
    found_keys: dict[str, int] = field(default_factory=dict)  # provider:key -> values written with it

    def add(self, key: bytes, category: str, label: str) -> None:
        self.examined += 1
        self.counts[category] += 1
        if label:
            self.found_keys[label] = self.found_keys.get(label, 0) + 1
        if category == "encrypted":
            return
        rest = key.decode(errors="replace")[len(self.prefix) :]
        namespace, _, name = rest.rpartition("/")
        per = self.namespaces.setdefault(namespace or "(cluster)", {})
        per[category] = per.get(category, 0) + 1
        examples = self.examples.setdefault(category, [])
        if len(examples) < EXAMPLES:
            examples.append(f"{namespace}/{name}" if namespace else name)

    def as_dict(self) -> dict[str, Any]:
        return {
            "resource": self.resource,
            "prefix": self.prefix,
            "expected": self.expected,
            "total": self.total,
            "examined": self.examined,
            "counts": self.counts,
            "namespaces": self.namespaces,
            "examples": self.examples,
            "keysSeen": self.found_keys,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ResourceScan:
        return cls(
            data["resource"],
            data["prefix"],
            data["expected"],
            int(data["total"]),
            int(data["examined"]),
            {category: int(data["counts"].get(category, 0)) for category in CATEGORIES},
            {ns: dict(c) for ns, c in data["namespaces"].items()},
            {k: list(v) for k, v in data["examples"].items()},
            dict(data.get("keysSeen") or {}),
        )


@dataclass
class ScanResult:
    node: str
    endpoint: str
    revision: int
    mode: str  # all | sample
    limit: int  # the sample size asked for (or the default limit)
    resources: list[ResourceScan]
    skipped: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(r.total for r in self.resources)

    @property
    def examined(self) -> int:
        return sum(r.examined for r in self.resources)

    def as_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "endpoint": self.endpoint,
            "revision": self.revision,
            "mode": self.mode,
            "limit": self.limit,
            "total": self.total,
            "examined": self.examined,
            "resources": [r.as_dict() for r in self.resources],
            "skipped": self.skipped,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScanResult:
        return cls(
            data["node"],
            data["endpoint"],
            int(data["revision"]),
            data["mode"],
            int(data["limit"]),
            [ResourceScan.from_dict(r) for r in data["resources"]],
            list(data.get("skipped") or []),
        )


def scan(
    client: EtcdClient,
    expectations: list[Expectation],
    *,
    sample: int | None = None,
    node: str = "",
    endpoint: str = "",
    verify: bool = True,
) -> ScanResult:
    """Classify every value (or an even sample of ``sample``) under each expectation's prefix."""
    revision = 0
    scans: list[ResourceScan] = []
    for expectation in expectations:
        prefix = expectation.prefix.encode()
        answer = client.range(prefix, prefix_end(prefix), count_only=True, revision=revision)
        revision = revision or int(answer["header"]["revision"])
        scans.append(
            ResourceScan(
                expectation.resource, expectation.prefix, expectation.current, total=int(answer.get("count") or 0)
            )
        )
    total = sum(s.total for s in scans)
    limit = sample if sample is not None else DEFAULT_LIMIT
    mode = "all" if total <= limit else "sample"
    namespaces: list[bytes] | None = None
    for expectation, resource_scan in zip(expectations, scans):
        classifier = Classifier(expectation, verify)
        prefix = expectation.prefix.encode()
        parts = [(prefix, prefix_end(prefix))]
        if resource_scan.total > SPLIT_ABOVE:  # a few long pages beat many short ones, up to here
            if namespaces is None:
                namespaces = [
                    key.rsplit(b"/", 1)[-1] for key in _keys(client, NAMESPACES, prefix_end(NAMESPACES), revision)
                ]
            parts = subranges(prefix, namespaces)
        if mode == "all":
            pairs = (kv for start, end in parts for kv in _values(client, start, end, revision))
        else:
            share = max(1, round(limit * resource_scan.total / total)) if resource_scan.total else 0
            pairs = _sampled(client, parts, revision, resource_scan.total, share)
        for key, value in pairs:
            category, label = classifier.classify(key, value)
            resource_scan.add(key, category, label)
    return ScanResult(node, endpoint, revision, mode, limit, scans)


#: Where kube-apiserver keeps Namespaces: their names split the namespaced prefixes into sub-ranges.
NAMESPACES = b"/registry/namespaces/"
#: A page aims at this many bytes of JSON: its size adapts between MIN_PAGE and MAX_PAGE (keys only: MAX_KEYS_PAGE).
PAGE_BYTES = 8 << 20
MIN_PAGE, MAX_PAGE, MAX_KEYS_PAGE = 100, 10_000, 50_000
#: A resource with more objects than this is read namespace by namespace (``subranges``): each
#: request to etcd costs about 1 µs per key left in its range, and about 20 ms through SSH.
SPLIT_ABOVE = 200_000
#: A sample is read in windows of up to this many consecutive objects.
WINDOW = 500


def subranges(prefix: bytes, namespaces: list[bytes]) -> list[tuple[bytes, bytes]]:
    """``prefix``'s key range cut after each namespace (``<prefix><ns>/…``), so the ranges
    cover it exactly, each holding (at most) one namespace and the usually empty gap before
    it. etcd counts every key from a request's start to its range end, so a page of a small
    range is cheap where a page of the whole prefix would count all that follows."""
    cuts, position = [], prefix
    for name in sorted(set(namespaces)):
        end = prefix + name + b"0"  # just past "<prefix><name>/…" ("/" + 1)
        if end > position:
            cuts.append((position, end))
            position = end
    cuts.append((position, prefix_end(prefix)))
    return cuts


def _pages(
    client: EtcdClient, start: bytes, end: bytes, revision: int, keys_only: bool
) -> Iterator[list[dict[str, Any]]]:
    """The kvs of [start, end) as of ``revision``, a page at a time; the page size adapts so a page is about PAGE_BYTES."""
    limit = MIN_PAGE * 10
    while True:
        answer = client.range(start, end, limit=limit, revision=revision, keys_only=keys_only)
        kvs = answer.get("kvs") or []
        if kvs:
            yield kvs
        if not answer.get("more") or not kvs:
            return
        start = base64.b64decode(kvs[-1]["key"]) + b"\0"
        limit = max(
            MIN_PAGE, min(MAX_KEYS_PAGE if keys_only else MAX_PAGE, int(limit * PAGE_BYTES / max(client.last_size, 1)))
        )


def _keys(client: EtcdClient, start: bytes, end: bytes, revision: int) -> Iterator[bytes]:
    for kvs in _pages(client, start, end, revision, keys_only=True):
        yield from (base64.b64decode(kv["key"]) for kv in kvs)


def _values(client: EtcdClient, start: bytes, end: bytes, revision: int) -> Iterator[tuple[bytes, bytes]]:
    for kvs in _pages(client, start, end, revision, keys_only=False):
        yield from ((base64.b64decode(kv["key"]), base64.b64decode(kv.get("value", ""))) for kv in kvs)


def _sampled(
    client: EtcdClient, parts: list[tuple[bytes, bytes]], revision: int, total: int, wanted: int
) -> Iterator[tuple[bytes, bytes]]:
    """About ``wanted`` values in evenly spaced windows of consecutive keys: a keys-only walk
    finds each window's first and last key, then one tight range request reads it."""
    if wanted <= 0 or total <= 0:
        return
    size = min(WINDOW, wanted)
    count = max(1, round(wanted / size))
    starts = [j * total // count for j in range(count)]
    index, window = 0, 0
    for part_start, part_end in parts:
        first: bytes | None = None
        taken = 0
        for key in _keys(client, part_start, part_end, revision):
            if first is None and window < count and index >= starts[window]:
                first, taken = key, 0
            if first is not None:
                taken += 1
                if taken == size:
                    yield from _values(client, first, key + b"\0", revision)
                    first, window = None, window + 1
            index += 1
        if first is not None:  # a window cut short by the end of a sub-range
            yield from _values(client, first, part_end, revision)
            first, window = None, window + 1
