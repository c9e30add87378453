"""Post-install TLS probes of the API servers: the ``api_tls`` source.

``ApiTlsSource`` (``api_tls``, order 11), once the cluster exists (``live_reason``): TLS
to ``endpoint:6443`` several times and to each control-plane node's own ``:6443``,
recording the certificate each one serves (SANs, expiry, fingerprint) and whether
``/version`` answers, so a check can tell which node each LB connection reached.
Saved as ``api_tls/api_tls.json``; an evidence directory saved before the source had
this name (``lb_live/lb_live.json``) still loads.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import ssl
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from acpcheck.sources.base import EvidenceDocument, GatherContext, JsonEvidenceSource

if TYPE_CHECKING:
    from acpcheck.model.plan import ClusterPlan, Node


class TlsProbe(BaseModel):
    """One TLS connection to an API server: the certificate it served and /version."""

    model_config = ConfigDict(extra="forbid")

    host: str
    port: int = 6443
    error: str = ""
    fingerprint: str = ""  # sha256 of the DER certificate
    subject: str = ""
    sans: list[str] = Field(default_factory=list)
    not_after: str = ""  # ISO 8601 UTC
    days_left: float | None = None
    version: str = ""  # gitVersion from /version
    version_status: int | None = None
    version_error: str = ""


class ApiTlsEvidence(EvidenceDocument):
    """The ``api_tls`` evidence. mode: live | off (before install: nothing gathered) | error."""

    schema_: str = Field(default="acpcheck/api-tls/v1", alias="schema")
    endpoint: str | None = None
    #: connections to endpoint:6443, in order
    through_endpoint: list[TlsProbe] = Field(default_factory=list)
    #: control-plane node name -> its own :6443
    nodes: dict[str, TlsProbe] = Field(default_factory=dict)
    checked_at: str = ""

    def node_of(self, probe_: TlsProbe) -> str | None:
        """The control-plane node that served this certificate (by fingerprint), if one did."""
        if not probe_.fingerprint:
            return None
        owners = [name for name, own in self.nodes.items() if own.fingerprint == probe_.fingerprint]
        return owners[0] if len(owners) == 1 else None

    @property
    def certificates_differ(self) -> bool:
        """Whether every reachable node serves its own certificate (else the LB's spread cannot be seen)."""
        prints = [p.fingerprint for p in self.nodes.values() if p.fingerprint]
        return len(prints) >= 2 and len(set(prints)) == len(prints)


API_PORT = 6443


def endpoint_connections(control_plane: int) -> int:
    """TLS connections made to the endpoint: enough to see a round-robin LB reach every node."""
    return min(60, max(6, 4 * control_plane))


class ApiTlsSource(JsonEvidenceSource):
    name: ClassVar[str] = "api_tls"
    order: ClassVar[int] = 11
    phase: ClassVar[str] = "live"
    #: its registry name (and evidence directory and file) until issue 17
    former_names: ClassVar[tuple[str, ...]] = ("lb_live",)
    model = ApiTlsEvidence
    what = "API server TLS evidence"

    def idle_fields(self, plan: ClusterPlan) -> dict[str, Any]:
        return {"endpoint": plan.spec.endpoint.address}

    def collect(self, context: GatherContext, reason: str | None) -> ApiTlsEvidence:
        from acpcheck.transport.settings import proxy_for

        plan = context.plan
        endpoint = plan.spec.endpoint.address
        evidence = ApiTlsEvidence(
            mode="live",
            reason=reason or "",
            endpoint=endpoint,
            checked_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        )
        timeout = min(plan.spec.ssh.connect_timeout_seconds, 5.0)

        def node_probe(node: Node) -> tuple[str, TlsProbe]:
            host = str(node.ipv4 if node.ipv4 is not None else node.ipv6)
            return node.name, tls_probe(
                host, API_PORT, proxy=proxy_for(plan, node), timeout=timeout, server_name=endpoint
            )

        with ThreadPoolExecutor(max_workers=max(1, min(32, len(plan.control_plane)))) as executor:
            evidence.nodes = dict(executor.map(node_probe, plan.control_plane))
        if endpoint:
            proxy = proxy_for(plan)
            for count in range(endpoint_connections(len(plan.control_plane))):
                evidence.through_endpoint.append(
                    tls_probe(
                        endpoint, API_PORT, proxy=proxy, timeout=timeout, server_name=endpoint, version=count == 0
                    )
                )
        return evidence

    def target(self, plan: ClusterPlan) -> str:
        return f"cluster:{plan.metadata.name}"


def tls_probe(
    host: str,
    port: int,
    *,
    proxy: Any,
    timeout: float,
    server_name: str | None = None,
    version: bool = True,
    now: dt.datetime | None = None,
) -> TlsProbe:
    """One TLS handshake with ``host:port`` (no verification: we read the certificate,
    we do not trust it), then ``GET /version`` when ``version``."""
    from cryptography import x509

    from acpcheck.addressing import is_ip
    from acpcheck.tlserrors import describe_tls_error
    from acpcheck.transport.errors import TransportError
    from acpcheck.transport.net import open_tcp

    result = TlsProbe(host=host, port=port)
    try:
        raw = open_tcp(host, port, proxy=proxy, timeout=timeout)
    except TransportError as error:
        result.error = f"{error.kind}: {error.message}"
        return result
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        sni = server_name if server_name and not is_ip(server_name) else None
        with context.wrap_socket(raw, server_hostname=sni) as tls:
            der = tls.getpeercert(binary_form=True) or b""
            result.fingerprint = hashlib.sha256(der).hexdigest()
            cert = x509.load_der_x509_certificate(der)
            result.subject = cert.subject.rfc4514_string()
            try:
                names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
                result.sans = [str(value) for value in names.get_values_for_type(x509.DNSName)]
                result.sans += [str(value) for value in names.get_values_for_type(x509.IPAddress)]
            except x509.ExtensionNotFound:
                pass
            expiry = cert.not_valid_after_utc
            result.not_after = expiry.isoformat(timespec="seconds")
            result.days_left = round(((expiry - (now or dt.datetime.now(dt.UTC))).total_seconds()) / 86400, 2)
            if version:
                _version(tls, host, result)
    except ssl.SSLError as error:  # before OSError, which it is: said the way every TLS failure is
        result.error = describe_tls_error(error).message
    except (OSError, ValueError) as error:
        result.error = f"TLS: {error}"
    return result


def _version(tls: ssl.SSLSocket, host: str, result: TlsProbe) -> None:
    try:
        tls.settimeout(5.0)
        tls.sendall(
            f"GET /version HTTP/1.0\r\nHost: {host}\r\nAccept: application/json\r\nConnection: close\r\n\r\n".encode()
        )
        data = b""
        while len(data) < 65536:
            chunk = tls.recv(65536)
            if not chunk:
                break
            data += chunk
    except (OSError, ssl.SSLError) as error:
        result.version_error = f"no answer to GET /version: {error}"
        return
    head, _, body = data.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    try:
        result.version_status = int(status_line.split()[1])
    except (IndexError, ValueError):
        result.version_error = f"not an HTTP answer to GET /version: {status_line[:60]!r}"
        return
    if result.version_status == 200:
        try:
            result.version = str(json.loads(body.decode("utf-8", errors="replace")).get("gitVersion", ""))
        except (ValueError, AttributeError):
            result.version_error = "GET /version answered 200 without the JSON of a Kubernetes API server"
