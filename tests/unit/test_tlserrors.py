"""acpcheck.tlserrors on real certificates and real TLS handshakes (issue 22, item 8).

Every case is a handshake over a socket pair between a server thread and a client,
with certificates made by the lab's certificate helper (acpcheck_lab.apiserver.issue):
the describer must tell an unknown CA, an expired CA or certificate, a wrong host
name, and an unusable or refused client certificate or key apart, where Python says
"SSLError" to all of them.
"""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from acpcheck.tlserrors import describe_tls_error, find_ssl_error
from acpcheck_lab.apiserver import issue

HOST = "api.example.test"


@dataclass
class Pki:
    ca: bytes
    ca_cert: object
    ca_key: object

    def leaf(self, name: str = HOST, *, expired: bool = False, client: bool = False) -> tuple[bytes, bytes]:
        cert, key, cert_object, _ = issue(
            name, ca=(self.ca_cert, self.ca_key), hosts=[name] if not client else [], client=client
        )
        return (expired_copy(cert_object, self.ca_key) if expired else cert), key


def new_pki(name: str, expired: bool = False) -> Pki:
    ca, _, ca_cert, ca_key = issue(name, is_ca=True)
    if expired:
        ca = expired_copy(ca_cert, ca_key)
        ca_cert = x509_of(ca)
    return Pki(ca, ca_cert, ca_key)


def expired_copy(certificate: object, signing_key: object) -> bytes:
    """``certificate`` (PEM) as it was issued, but valid only from 400 to 10 days ago:
    issue() makes certificates valid from now on."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    assert isinstance(certificate, x509.Certificate)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(certificate.subject)
        .issuer_name(certificate.issuer)
        .public_key(certificate.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=400))
        .not_valid_after(now - dt.timedelta(days=10))
    )
    for extension in certificate.extensions:
        builder = builder.add_extension(extension.value, extension.critical)
    return builder.sign(signing_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)  # type: ignore[arg-type]


def x509_of(pem: bytes) -> object:
    from cryptography import x509

    return x509.load_pem_x509_certificate(pem)


@pytest.fixture(scope="module")
def pki() -> Pki:
    return new_pki("acpcheck-test-ca")


def write(directory: Path, name: str, data: bytes) -> str:
    path = directory / name
    path.write_bytes(data)
    return str(path)


def handshake(
    tmp_path: Path,
    server_chain: tuple[bytes, bytes],
    client: ssl.SSLContext,
    *,
    host: str = HOST,
    client_ca: bytes | None = None,
) -> BaseException:
    """Connect ``client`` to a server presenting ``server_chain`` (and, with ``client_ca``,
    requiring a client certificate signed by it); the exception the client got."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(
        write(tmp_path, "server.crt", server_chain[0]), write(tmp_path, "server.key", server_chain[1])
    )
    if client_ca is not None:
        server.verify_mode = ssl.CERT_REQUIRED
        server.load_verify_locations(cadata=client_ca.decode())
    left, right = socket.socketpair()
    left.settimeout(10)
    right.settimeout(10)

    def serve() -> None:
        try:
            with server.wrap_socket(right, server_side=True) as tls:
                tls.sendall(b"y")  # only after a handshake it accepted
        except (OSError, ssl.SSLError):
            pass
        finally:
            right.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with client.wrap_socket(left, server_hostname=host) as tls:
            # TLS 1.3: a refused client certificate is reported after the handshake, as
            # the server's alert, read here. Not a write first: the server may have closed
            # by then, and the write's broken pipe would hide the alert.
            tls.recv(1)
    except (OSError, ssl.SSLError) as error:
        return error
    finally:
        left.close()
        thread.join(10)
    raise AssertionError("the handshake succeeded")


def client_context(ca: bytes) -> ssl.SSLContext:
    return ssl.create_default_context(cadata=ca.decode())


def test_a_server_signed_by_another_ca_is_an_unknown_ca(tmp_path: Path, pki: Pki) -> None:
    other = new_pki("some-other-ca")
    error = handshake(tmp_path, pki.leaf(), client_context(other.ca))
    problem = describe_tls_error(error, trusted="the kubeconfig's CA")
    assert problem.kind == "unknown-ca"
    assert problem.message.startswith(
        "unknown CA: the server's certificate is not signed by a CA in the kubeconfig's CA"
    )


def test_an_expired_ca_is_named_as_the_expired_one(tmp_path: Path) -> None:
    expired = new_pki("expired-ca", expired=True)
    error = handshake(tmp_path, expired.leaf(), client_context(expired.ca))
    problem = describe_tls_error(error, ca_pem=expired.ca)
    assert problem.kind == "expired"
    assert problem.message.startswith("expired: the CA certificate CN=expired-ca expired on ")
    # Without the CA at hand it still says "expired", never "unknown CA".
    assert describe_tls_error(error).kind == "expired"


def test_an_expired_server_certificate_is_expired(tmp_path: Path, pki: Pki) -> None:
    error = handshake(tmp_path, pki.leaf(expired=True), client_context(pki.ca))
    problem = describe_tls_error(error, ca_pem=pki.ca)
    assert problem.kind == "expired"
    assert "the server's certificate, or a CA certificate of its chain, is expired" in problem.message


def test_a_certificate_for_another_name_is_a_hostname_mismatch(tmp_path: Path, pki: Pki) -> None:
    error = handshake(tmp_path, pki.leaf("other.example.test"), client_context(pki.ca))
    problem = describe_tls_error(error, ca_pem=pki.ca)
    assert problem.kind == "hostname"
    assert HOST in problem.message and "SANs" in problem.message


def test_a_garbage_client_key_is_the_key_not_the_ca(tmp_path: Path, pki: Pki) -> None:
    cert, _ = pki.leaf("acpcheck-client", client=True)
    context = client_context(pki.ca)
    with pytest.raises(ssl.SSLError) as raised:
        context.load_cert_chain(
            write(tmp_path, "client.crt", cert),
            write(tmp_path, "client.key", b"-----BEGIN PRIVATE KEY-----\nnot a key\n"),
        )
    problem = describe_tls_error(
        raised.value, ca_pem=pki.ca, cert_pem=cert, key_pem=b"-----BEGIN PRIVATE KEY-----\nnot a key\n"
    )
    assert (problem.kind, problem.message) == (
        "client-key",
        "the client key cannot be used: it is not a PEM private key",
    )
    assert "not a key" not in problem.message
    # Without the PEM text: still the client's certificate or key, never the CA.
    assert describe_tls_error(raised.value).kind == "client-key"


def test_a_garbage_client_certificate_is_the_certificate(tmp_path: Path, pki: Pki) -> None:
    _, key = pki.leaf("acpcheck-client", client=True)
    with pytest.raises(ssl.SSLError) as raised:
        client_context(pki.ca).load_cert_chain(
            write(tmp_path, "client.crt", b"garbage"), write(tmp_path, "client.key", key)
        )
    assert describe_tls_error(raised.value, cert_pem=b"garbage", key_pem=key).kind == "client-certificate"


def test_a_key_of_another_certificate_does_not_belong(tmp_path: Path, pki: Pki) -> None:
    cert, _ = pki.leaf("acpcheck-client", client=True)
    _, other_key = pki.leaf("someone-else", client=True)
    with pytest.raises(ssl.SSLError) as raised:
        client_context(pki.ca).load_cert_chain(
            write(tmp_path, "client.crt", cert), write(tmp_path, "client.key", other_key)
        )
    problem = describe_tls_error(raised.value, cert_pem=cert, key_pem=other_key)
    assert problem.kind == "client-key" and "does not belong to the client certificate" in problem.message


def test_a_client_certificate_the_server_does_not_trust_is_refused(tmp_path: Path, pki: Pki) -> None:
    stranger = new_pki("stranger-ca")
    cert, key = stranger.leaf("acpcheck-client", client=True)
    context = client_context(pki.ca)
    context.load_cert_chain(write(tmp_path, "client.crt", cert), write(tmp_path, "client.key", key))
    error = handshake(tmp_path, pki.leaf(), context, client_ca=pki.ca)
    problem = describe_tls_error(error, ca_pem=pki.ca)
    assert problem.kind == "client-certificate"
    assert problem.message.startswith("the server refused the client certificate: it does not trust the CA that signed")


def test_no_client_certificate_where_one_is_required(tmp_path: Path, pki: Pki) -> None:
    error = handshake(tmp_path, pki.leaf(), client_context(pki.ca), client_ca=pki.ca)
    problem = describe_tls_error(error)
    assert problem.kind == "client-certificate" and "requires a client certificate" in problem.message


def test_an_unreadable_ca_is_the_ca() -> None:
    with pytest.raises(ssl.SSLError) as raised:
        ssl.create_default_context(cadata="-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    assert (
        describe_tls_error(raised.value, trusted="--etcd-cafile").message
        == "the CA to trust (--etcd-cafile) holds no readable PEM certificate"
    )


def test_a_wrapped_error_is_found(tmp_path: Path, pki: Pki) -> None:
    other = new_pki("some-other-ca")
    error = handshake(tmp_path, pki.leaf(), client_context(other.ca))

    class Wrapper(Exception):  # urllib3's MaxRetryError holds its cause as ``reason``
        def __init__(self, reason: BaseException):
            super().__init__("max retries exceeded")
            self.reason = reason

    assert find_ssl_error(Wrapper(RuntimeError("x"))) is None
    assert find_ssl_error(Wrapper(error)) is error
    assert describe_tls_error(Wrapper(error)).kind == "unknown-ca"
    assert describe_tls_error(RuntimeError("no TLS here")).kind == "tls"


def iter_kinds() -> Iterator[str]:  # keeps the docstring's table honest
    import acpcheck.tlserrors as module

    for line in (module.__doc__ or "").splitlines():
        if line.startswith("``"):
            yield line.split("``")[1]


def test_every_kind_is_documented() -> None:
    kinds = set(iter_kinds())
    assert {
        "unknown-ca",
        "expired",
        "not-yet-valid",
        "hostname",
        "ca-unusable",
        "client-certificate",
        "client-key",
        "protocol",
        "tls",
    } == kinds
