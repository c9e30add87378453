"""Hosted control planes: the management cluster's DataStores and their etcd, the ``datastores`` source.

For a hosted-control-plane plan the run's kubeconfig is the management cluster's (checks/hcp.py
says why). ``DataStoreSource`` (``datastore``, order 6, once a kubeconfig is given) reads every
Kamaji DataStore (``datastores.kamaji.clastix.io/v1alpha1``, cluster-scoped) and, for each etcd
DataStore with a TLS configuration, connects to each endpoint as Kamaji would:

- the CA (``spec.tlsConfig.certificateAuthority.certificate``), the client certificate and its
  key (``spec.tlsConfig.clientCertificate``) are read from the Secrets the DataStore references
  (``secretReference``: name, namespace, ``keyPath``) or from its inline ``content``, **into
  memory only**: the Secret is read through the API, only the referenced key is kept, and the
  PEM texts live in a ``ClientCredentials`` while this source gathers. They are never saved,
  printed or logged; the etcd client loads the client certificate through a memfd (memory,
  ``acpcheck.transport.etcd.tls_context``; Python's ``ssl`` takes a certificate by path only)
  that is closed as soon as the TLS context has it. The CA's private key is never read.
- each endpoint (``host:port``, as Kamaji's ``net.SplitHostPort`` reads it) gets etcd's
  ``/v3/maintenance/status`` over TLS (``acpcheck.transport.etcd.EtcdClient``): the CA must
  verify the server's certificate for that host name, and etcd must accept the client
  certificate (an answer proves both).

Where from (decided per endpoint by its host, ``cluster_internal``): an endpoint is
**cluster-internal** when its host is a Service DNS name (a name with a ``.svc`` label, as
``etcd-0.etcd.kamaji-system.svc.cluster.local``), a name of one label (resolved through the pods'
search domains), a loopback address or ``localhost`` when the plan lists management-cluster nodes
(their own etcd; without them the runner is taken to be such a node), or an address inside the
management cluster's pod or Service CIDR (``spec.managementCluster.podCIDR``/``serviceCIDR``). Those
are reached through a management-cluster node over SSH when the plan lists such nodes
(``spec.managementCluster.sshNodes``: the first that gives a session, with ``spec.ssh``'s port, user
and key; an SSH direct-tcpip forward, ``acpcheck.transport.forward``, as the encryption source
reaches etcd; the node's sshd resolves the name), the server's certificate still verified for the
endpoint's own host name; without such a node they are not probed (MANUAL, with why). Every other
endpoint is reached directly from the runner; one whose name the runner cannot resolve is not probed
either (it may resolve in the management cluster).

Saved as ``datastore/datastore.json``: the DataStores' specs (Secret *references*; inline
``content`` only as its size), each certificate's subject, issuer, expiry and SHA-256
fingerprint, and each endpoint's outcome. No key, certificate body or Secret value.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import re
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from acpcheck.sources.base import GatherContext, JsonEvidenceSource
from acpcheck.sources.hcp_tenants import ManagementClusterEvidence, read_management_cluster

if TYPE_CHECKING:
    from acpcheck.model.plan import ClusterPlan
    from acpcheck.transport.etcd import ClientCredentials
    from acpcheck.transport.kube import KubeClient

GROUP, VERSION, RESOURCE = "kamaji.clastix.io", "v1alpha1", "datastores"
QUALIFIED = f"{RESOURCE}.{GROUP}"
#: The TLS material a DataStore names, as (field path under spec.tlsConfig, what it is).
TLS_PARTS = (
    ("certificateAuthority.certificate", "CA certificate"),
    ("clientCertificate.certificate", "client certificate"),
    ("clientCertificate.privateKey", "client key"),
)
#: Largest Secret value read (a CA bundle or a key is a few kB).
MAX_VALUE_BYTES = 1 << 20


class Certificate(BaseModel):
    """What may be said of a certificate: no body, no key."""

    model_config = ConfigDict(extra="forbid")

    subject: str
    issuer: str
    not_after: str  # ISO 8601 UTC
    days_left: float
    sha256: str  # of the DER certificate (public)


class Endpoint(BaseModel):
    """One endpoint of a DataStore and what connecting to it said."""

    model_config = ConfigDict(extra="forbid")

    endpoint: str  # as the DataStore writes it
    host: str | None = None
    port: int | None = None
    #: ok | tls (the CA does not verify the server, or no TLS) | auth (etcd refused the client
    #: certificate) | unreachable | timeout | error | format (not host:port) | not-probed
    outcome: str = "not-probed"
    message: str = ""
    route: str = ""  # "direct from the runner", or why it was not probed
    server_certificate: Certificate | None = None
    etcd_version: str | None = None


class DataStore(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    driver: str | None = None
    endpoints: list[str] = Field(default_factory=list)
    #: TLS_PARTS label -> "secret <ns>/<name> key <keyPath>", "inline (<n> bytes)", or absent
    tls: dict[str, str] = Field(default_factory=dict)
    tls_config: bool = False  # spec.tlsConfig present
    basic_auth: bool = False
    ready: bool | None = None  # status.ready (Kamaji's own validation)
    #: why the TLS material could not be read or used ("" when it was)
    credentials_problem: str = ""
    #: why acpcheck could not read the TLS material (refused, timed out: not the DataStore's fault)
    credentials_unread: str = ""
    ca_certificates: list[Certificate] = Field(default_factory=list)
    client_certificate: Certificate | None = None
    probes: list[Endpoint] = Field(default_factory=list)


class DataStoreEvidence(ManagementClusterEvidence):
    """The ``datastores`` evidence. mode: live | off (no kubeconfig) | error (the API could not be read)."""

    schema_: str = Field(default="acpcheck/datastore/v1", alias="schema")
    served: bool = True  # whether it serves datastores.kamaji.clastix.io
    planned: str | None = None  # spec.managementCluster.dataStore
    datastores: list[DataStore] = Field(default_factory=list)

    def find(self, name: str) -> DataStore | None:
        return next((store for store in self.datastores if store.name == name), None)


# ---------------------------------------------------------------------------
# Reading a DataStore


def _dig(data: Any, path: str) -> Any:
    for part in path.split("."):
        data = data.get(part) if isinstance(data, dict) else None
    return data


def _describe_ref(ref: Any) -> str | None:
    """How a ContentRef names its value (never the value)."""
    if not isinstance(ref, dict):
        return None
    content = ref.get("content")
    if isinstance(content, str) and content:
        return f"inline content ({len(content)} base64 characters)"
    secret = ref.get("secretReference")
    if isinstance(secret, dict):
        return f"Secret {secret.get('namespace') or '<no namespace>'}/{secret.get('name')} key {secret.get('keyPath')}"
    return None


def summarise(obj: dict[str, Any]) -> DataStore:
    """A DataStore object as evidence: its spec without any inline content."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    tls_config = spec.get("tlsConfig")
    store = DataStore(
        name=str((obj.get("metadata") or {}).get("name")),
        driver=spec.get("driver") if isinstance(spec.get("driver"), str) else None,
        endpoints=[str(e) for e in spec.get("endpoints") or [] if isinstance(e, (str, int))],
        tls_config=isinstance(tls_config, dict),
        basic_auth=isinstance(spec.get("basicAuth"), dict),
        ready=status.get("ready") if isinstance(status.get("ready"), bool) else None,
    )
    for path, label in TLS_PARTS:
        described = _describe_ref(_dig(tls_config, path))
        if described:
            store.tls[label] = described
    return store


def split_endpoint(endpoint: str) -> tuple[str, int] | None:
    """(host, port) of ``host:port`` / ``[v6]:port`` as Go's net.SplitHostPort reads it; None otherwise."""
    match = re.fullmatch(r"\[([^\]]+)\]:(\d{1,5})|([^:\[\]]+):(\d{1,5})", endpoint.strip())
    if not match:
        return None
    host, port = (match.group(1), match.group(2)) if match.group(1) else (match.group(3), match.group(4))
    return (host, int(port)) if 0 < int(port) < 65536 else None


def cluster_internal(host: str, plan: ClusterPlan) -> str | None:
    """Why ``host`` is reachable only inside the management cluster, or None (then: directly)."""
    # A loopback endpoint is a management node's own etcd. Through a listed node when the plan lists
    # any; otherwise the runner is taken to be such a node (acpcheck run on the management cluster).
    node_local = bool(plan.spec.management_cluster.ssh_nodes)
    if host.rstrip(".") == "localhost" and node_local:
        return f"{host} is the loopback of a management-cluster node"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        labels = host.rstrip(".").split(".")
        if "svc" in labels:
            return f"{host} is a Kubernetes Service name, resolvable inside the management cluster only"
        if len(labels) == 1 and host.rstrip(".") != "localhost":
            return f"{host} is a one-label name, resolved through the management cluster's pod search domains"
        return None
    management = plan.spec.management_cluster
    for label, cidrs in (("pod", management.pod_cidr), ("Service", management.service_cidr)):
        for cidr in cidrs or []:
            if address in ipaddress.ip_network(str(cidr), strict=False):
                return f"{host} is inside the management cluster's {label} CIDR {cidr}"
    if address.is_loopback and node_local:
        return f"{host} is the loopback of a management-cluster node"
    return None


def certificate_of(der: bytes, now: dt.datetime) -> Certificate:
    from cryptography import x509

    cert = x509.load_der_x509_certificate(der)
    expiry = cert.not_valid_after_utc
    return Certificate(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        not_after=expiry.isoformat(timespec="seconds"),
        days_left=round((expiry - now).total_seconds() / 86400, 2),
        sha256=hashlib.sha256(der).hexdigest(),
    )


def pem_certificates(pem: str, now: dt.datetime) -> list[Certificate]:
    """The certificates of a PEM text (ValueError when there is none)."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    found = x509.load_pem_x509_certificates(pem.encode())
    return [certificate_of(cert.public_bytes(Encoding.DER), now) for cert in found]


class _Unusable(Exception):
    """The DataStore's TLS material cannot be read or used (the message names it, never its value)."""


class _Unread(Exception):
    """acpcheck could not read a Secret the DataStore references (403, timeout …): no finding about it."""


def _read_value(api: KubeClient, ref: dict[str, Any], what: str) -> str:
    """One ContentRef's value, in memory: the inline content, else the Secret's key."""
    import base64
    import binascii

    from acpcheck.transport.kube import ApiFailure, Read

    content = ref.get("content")
    if isinstance(content, str) and content:  # Kamaji: inline content has precedence
        try:
            return base64.b64decode(content, validate=True).decode()
        except (binascii.Error, ValueError):
            raise _Unusable(f"the {what}'s inline content is not base64 PEM text") from None
    secret = ref.get("secretReference") or {}
    name, namespace, key = secret.get("name"), secret.get("namespace"), secret.get("keyPath")
    if not name or not key:
        raise _Unusable(f"the {what} has neither inline content nor a Secret reference with a name and keyPath")
    if not namespace:
        raise _Unusable(f"the {what}'s Secret reference {name} names no namespace (Kamaji reads none)")

    def only_the_key(obj: dict[str, Any]) -> dict[str, Any]:
        # only the referenced key's value is kept, and only here
        return {"value": (obj.get("data") or {}).get(key), "has": key in (obj.get("data") or {})}

    read = Read("datastore-secret", "", "v1", "secrets", name=name, namespace=namespace, summarise=only_the_key)
    where = f"Secret {namespace}/{name}"
    try:
        found = api.get_object(read)
    except ApiFailure as failure:
        if failure.kind == "absent":
            raise _Unusable(f"the {what}'s {where} does not exist") from None
        raise _Unread(f"acpcheck could not read the {what}'s {where}: {failure.message}") from None
    if not found.get("has") or not found.get("value"):
        raise _Unusable(f"the {what}'s {where} has no key {key}")
    raw = base64.b64decode(str(found["value"]))
    if len(raw) > MAX_VALUE_BYTES:
        raise _Unusable(f"the {what}'s {where} key {key} is larger than {MAX_VALUE_BYTES:,} bytes")
    try:
        return raw.decode()
    except UnicodeDecodeError:
        raise _Unusable(f"the {what}'s {where} key {key} is not PEM text") from None


def credentials_of(api: KubeClient, obj: dict[str, Any]) -> ClientCredentials:
    """The CA, client certificate and key a DataStore references, in memory (_Unusable otherwise)."""
    from acpcheck.transport.etcd import ClientCredentials

    tls_config = (obj.get("spec") or {}).get("tlsConfig") or {}
    texts = []
    for path, label in TLS_PARTS:
        ref = _dig(tls_config, path)
        if not isinstance(ref, dict):
            raise _Unusable(f"spec.tlsConfig.{path} is not set: no {label}")
        texts.append(_read_value(api, ref, label))
    return ClientCredentials(*texts)


_REASON = re.compile(r"\(([^()]*)\)\s*$")
_ENDED = re.compile(r"the connection to etcd ended \((\w+)\)")


def _unreachable(where: str, message: str) -> str:
    """The etcd client's "unreachable" said for a DataStore endpoint: a refused connection apart."""
    found = _ENDED.search(message)
    if found and found.group(1) == "ConnectionRefusedError":
        return f"{where} refused the connection (is its etcd member running?)"
    if found:
        return (
            f"the connection to {where} ended ({found.group(1)}); etcd ends it like this too when it refuses a "
            "client certificate"
        )
    return message.removeprefix(where + ": ")


def _unresolved(host: str, port: int) -> str | None:
    """Why ``host`` does not resolve here, or None when it does (a name the runner cannot resolve may
    still resolve in the management cluster: left to a person, not a FAIL)."""
    import socket

    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        return error.strerror or type(error).__name__
    except UnicodeError:
        return "not a valid host name"
    return None


def probe(
    host: str,
    port: int,
    credentials: ClientCredentials,
    *,
    timeout: float,
    now: dt.datetime,
    address: tuple[str, int] | None = None,
) -> tuple[str, str, Certificate | None, str | None]:
    """(outcome, message, server certificate, etcd version) of etcd's status at ``host:port``,
    connecting to ``address`` (an SSH forward's local end) when given; the server's certificate
    is verified for ``host`` either way."""
    from acpcheck.transport.etcd import EtcdClient, EtcdError

    where = f"{host}:{port}"
    try:
        client = EtcdClient(
            address or (host, port), host, credentials, timeout=timeout, label=where, deadline=timeout * 2
        )
    except EtcdError as error:
        found = _REASON.search(error.message)
        return (
            "tls",
            f"the CA, client certificate or key cannot be used ({found.group(1) if found else error.kind})",
            None,
            None,
        )
    with client:
        try:
            status = client.status()
        except EtcdError as error:
            found = _REASON.search(error.message)
            reason = found.group(1) if found else ""
            messages = {
                "auth": f"etcd refused the client certificate ({reason})",
                "tls": f"the TLS handshake failed: the CA does not verify etcd's certificate for {host} ({reason})",
                "timeout": "etcd gave no complete answer within the deadline",
                "unreachable": _unreachable(where, error.message),
            }
            return error.kind, messages.get(error.kind, error.message), None, None
        sock = getattr(client._connection, "sock", None)  # noqa: SLF001 — the verified connection's certificate
        der = sock.getpeercert(binary_form=True) if sock is not None else None
        server = certificate_of(der, now) if der else None
        version = status.get("version")
        return "ok", f"etcd {version or '(no version)'} answered over TLS", server, str(version) if version else None


# ---------------------------------------------------------------------------
# The source


class DataStoreSource(JsonEvidenceSource):
    name: ClassVar[str] = "datastore"
    order: ClassVar[int] = 6  # after the cluster source; opens nothing on nodes
    phase: ClassVar[str] = "live"
    model = DataStoreEvidence
    what = "DataStore evidence"

    def idle_fields(self, plan: ClusterPlan) -> dict[str, Any]:
        return {"planned": plan.spec.management_cluster.data_store}

    def target(self, plan: ClusterPlan) -> str:
        return f"cluster:{plan.metadata.name}"

    def collect(self, context: GatherContext, reason: str | None) -> DataStoreEvidence:
        from acpcheck.transport.kube import Read

        plan = context.plan
        timeout = min(plan.spec.ssh.connect_timeout_seconds, 10.0)
        read = Read("datastores", GROUP, VERSION, RESOURCE)

        def datastores(api: KubeClient, evidence: DataStoreEvidence, deadline: float) -> None:
            now = dt.datetime.fromisoformat(evidence.checked_at)
            if not api.served(read, {}):
                evidence.served = False
                return
            for obj in api.list_objects(read):
                evidence.datastores.append(self._one(api, obj, context, now, timeout))

        evidence = read_management_cluster(DataStoreEvidence, plan, None, datastores)
        evidence.planned = plan.spec.management_cluster.data_store
        if evidence.mode == "live":
            evidence.reason = reason or ""
        if context.progress is not None:
            context.progress(self.name, 1, 1, f"{len(evidence.datastores)} DataStore(s)", evidence.mode == "live")
        return evidence

    def _one(
        self, api: KubeClient, obj: dict[str, Any], context: GatherContext, now: dt.datetime, timeout: float
    ) -> DataStore:
        plan = context.plan
        store = summarise(obj)
        parsed = {endpoint: split_endpoint(endpoint) for endpoint in store.endpoints}
        for endpoint, where in parsed.items():
            result = Endpoint(endpoint=endpoint)
            if where is None:
                result.outcome, result.message = "format", "not host:port (Kamaji splits each endpoint into both)"
            else:
                result.host, result.port = where
            store.probes.append(result)
        if store.driver != "etcd" or not store.tls_config:
            reason = "the driver is not etcd" if store.driver != "etcd" else "the DataStore has no TLS configuration"
            for result in store.probes:
                if result.outcome == "not-probed":
                    result.route = f"not probed: {reason}"
            return store
        try:
            credentials = credentials_of(api, obj)
            store.ca_certificates = pem_certificates(credentials.ca, now)
            clients = pem_certificates(credentials.cert, now)
            store.client_certificate = clients[0] if clients else None
        except _Unusable as error:
            store.credentials_problem = str(error)
        except _Unread as error:
            store.credentials_unread = str(error)
        except ValueError:
            store.credentials_problem = "the CA or client certificate is not a PEM certificate"
        if store.credentials_problem or store.credentials_unread:
            for result in store.probes:
                if result.outcome == "not-probed":
                    result.route = "not probed: the TLS material cannot be read"
            return store
        try:
            for result in store.probes:
                if result.host is None or result.port is None:
                    continue
                internal = cluster_internal(result.host, plan)
                if internal:
                    through_node(context, result, credentials, internal, timeout=timeout, now=now)
                    continue
                unresolved = _unresolved(result.host, result.port)
                if unresolved:
                    result.route = f"not probed: {result.host} does not resolve from the runner ({unresolved})"
                    continue
                result.route = "direct from the runner"
                result.outcome, result.message, result.server_certificate, result.etcd_version = probe(
                    result.host, result.port, credentials, timeout=timeout, now=now
                )
                if result.outcome == "unreachable" and not _is_loopback(result.host):
                    # The runner need not reach etcd; the management cluster must. No answer from here
                    # may be this runner's network path (a pod or Service address the plan's CIDRs do
                    # not cover, a firewall): unknown, not a defect of the DataStore.
                    result.outcome = "not-probed"
                    result.route = (
                        f"not probed: {result.message} from the runner, which may not be on the management "
                        "cluster's network; list a management node in spec.managementCluster.sshNodes (and the "
                        "management cluster's CIDRs) to reach it from there"
                    )
        finally:
            del credentials  # the key goes with it
        return store


def _is_loopback(host: str) -> bool:
    try:
        return host.rstrip(".") == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def through_node(
    context: GatherContext,
    result: Endpoint,
    credentials: ClientCredentials,
    internal: str,
    *,
    timeout: float,
    now: dt.datetime,
) -> None:
    """Probe a cluster-internal endpoint through an SSH forward from the first management-cluster node of
    ``spec.managementCluster.sshNodes`` that gives a session (the run's pool, spec.ssh's port, user and key;
    the node's sshd opens the connection, so the node resolves the name). No such node: not probed."""
    from acpcheck.model.plan import Node
    from acpcheck.transport.errors import TransportError

    assert result.host is not None and result.port is not None
    addresses = context.plan.spec.management_cluster.ssh_nodes
    if not addresses:
        result.route = (
            f"not probed: {internal}; list management-cluster nodes in spec.managementCluster.sshNodes to reach it "
            "through one over SSH"
        )
        return
    failures = []
    for address in addresses:
        family = "ipv6" if ":" in address else "ipv4"
        node = Node.model_validate({"name": f"management-node-{address}", "role": "worker", family: address})
        try:
            session = context.pool.session(node)
        except TransportError as error:
            failures.append(f"{address}: {error.message}")
            continue
        result.route = f"through management-cluster node {address} over SSH ({internal})"
        try:
            forward = session.forward(result.host, result.port)
        except TransportError as error:
            result.outcome = "unreachable"
            result.message = (
                f"management-cluster node {address} could not connect to {result.host}:{result.port} "
                f"({error.message}; is the etcd member up, and does the node resolve the name?)"
            )
            return
        with forward:
            result.outcome, result.message, result.server_certificate, result.etcd_version = probe(
                result.host, result.port, credentials, timeout=timeout, now=now, address=forward.address
            )
        return
    result.route = f"not probed: {internal}, and no management-cluster node gave an SSH session: {'; '.join(failures)}"
