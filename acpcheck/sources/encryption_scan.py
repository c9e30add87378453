"""The scan of etcd's stored values: what kube-apiserver really stored, and whether it is encrypted.

Not a source of its own: the ``encryption`` source (``acpcheck.sources.encryption``) runs
it through the etcd client (``acpcheck.transport.etcd``) and saves its ``ScanResult``.
This module knows where kube-apiserver stores a resource (``etcd_prefix``), what its
values should look like (``Expectation``), how to sort one value (``Classifier``) and
how to read every value, or an even sample (``scan``).

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

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from acpcheck.transport.etcd import EtcdClient, prefix_end, range_keys, range_values

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
    for expectation, resource_scan in zip(expectations, scans, strict=True):
        classifier = Classifier(expectation, verify)
        prefix = expectation.prefix.encode()
        parts = [(prefix, prefix_end(prefix))]
        if resource_scan.total > SPLIT_ABOVE:  # a few long pages beat many short ones, up to here
            if namespaces is None:
                namespaces = [
                    key.rsplit(b"/", 1)[-1] for key in range_keys(client, NAMESPACES, prefix_end(NAMESPACES), revision)
                ]
            parts = subranges(prefix, namespaces)
        pairs: Iterator[tuple[bytes, bytes]]
        if mode == "all":
            pairs = (kv for start, end in parts for kv in range_values(client, start, end, revision))
        else:
            share = max(1, round(limit * resource_scan.total / total)) if resource_scan.total else 0
            pairs = _sampled(client, parts, revision, resource_scan.total, share)
        for key, value in pairs:
            category, label = classifier.classify(key, value)
            resource_scan.add(key, category, label)
    return ScanResult(node, endpoint, revision, mode, limit, scans)


#: Where kube-apiserver keeps Namespaces: their names split the namespaced prefixes into sub-ranges.
NAMESPACES = b"/registry/namespaces/"
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
        for key in range_keys(client, part_start, part_end, revision):
            if first is None and window < count and index >= starts[window]:
                first, taken = key, 0
            if first is not None:
                taken += 1
                if taken == size:
                    yield from range_values(client, first, key + b"\0", revision)
                    first, window = None, window + 1
            index += 1
        if first is not None:  # a window cut short by the end of a sub-range
            yield from range_values(client, first, part_end, revision)
            first, window = None, window + 1
