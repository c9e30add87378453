"""What a TLS failure was, in words: unknown CA, expired, hostname, client certificate or key.

Python reports every TLS failure as ``ssl.SSLError`` (or urllib3's wrapper around
one), and a message such as ``[SSL: CERTIFICATE_VERIFY_FAILED]`` or ``[SSL] PEM lib``
says little to someone fixing a kubeconfig: a CA that expired, a server certificate
for another name and a garbage client key all read alike, and the last was once
blamed on the CA. ``describe_tls_error`` turns one into a ``TlsProblem``: a kind a
program can branch on and a sentence that names the cause and what to check.

    try:
        context.load_cert_chain(cert_file, key_file)
    except ssl.SSLError as error:
        problem = describe_tls_error(error, cert_pem=cert, key_pem=key)
        raise SourceError("tls", f"{server}: {problem.message}")

It reads only what it is given (the error and, to be precise, the PEM text the
caller already holds): no file, no network. No secret reaches its message: a key is
parsed to tell whether it is usable, never quoted; certificates are named by their
subject, which is public.

Kinds (``TlsProblem.kind``):

==================  ================================================================
``unknown-ca``      the server's certificate is not signed by a CA the client trusts
``expired``         a certificate has expired (the CA's, when the given CA has)
``not-yet-valid``   a certificate is not valid yet (a clock, or a certificate from the future)
``hostname``        the server's certificate is not valid for the name or address used
``ca-unusable``     the CA certificate(s) given to trust cannot be read
``client-certificate``  the client certificate cannot be read, or the server refused it
``client-key``      the client key cannot be read, or does not belong to the certificate
``protocol``        not TLS on that port, no TLS version in common, closed mid-handshake
``tls``             anything else (the OpenSSL message is kept)
==================  ================================================================
"""

from __future__ import annotations

import datetime as dt
import re
import ssl
from dataclasses import dataclass
from typing import Any

# OpenSSL X509_V_ERR_* codes (x509_vfy.h), as ssl.SSLCertVerificationError.verify_code.
UNABLE_TO_GET_ISSUER_CERT = 2
CERT_NOT_YET_VALID = 9
CERT_HAS_EXPIRED = 10
DEPTH_ZERO_SELF_SIGNED_CERT = 18
SELF_SIGNED_CERT_IN_CHAIN = 19
UNABLE_TO_GET_ISSUER_CERT_LOCALLY = 20
UNABLE_TO_VERIFY_LEAF_SIGNATURE = 21
HOSTNAME_MISMATCH = 62
IP_ADDRESS_MISMATCH = 64
UNKNOWN_CA_CODES = frozenset(
    {
        UNABLE_TO_GET_ISSUER_CERT,
        DEPTH_ZERO_SELF_SIGNED_CERT,
        SELF_SIGNED_CERT_IN_CHAIN,
        UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
        UNABLE_TO_VERIFY_LEAF_SIGNATURE,
    }
)

#: TLS alerts a server sends when it will not take the client certificate (reason -> why).
CLIENT_REFUSED = {
    "CERTIFICATE_REQUIRED": "it requires a client certificate and none was sent",
    "UNKNOWN_CA": "it does not trust the CA that signed the client certificate",
    "CERTIFICATE_EXPIRED": "the client certificate has expired",
    "CERTIFICATE_REVOKED": "the client certificate is revoked",
    "BAD_CERTIFICATE": "it does not accept the client certificate",
    "CERTIFICATE_UNKNOWN": "it does not accept the client certificate",
    "UNSUPPORTED_CERTIFICATE": "it does not accept the client certificate's type",
    "DECRYPT_ERROR": "the client could not prove it holds the certificate's key",
    "ACCESS_DENIED": "the client certificate is valid but not allowed",
}


@dataclass(frozen=True)
class TlsProblem:
    kind: str
    message: str

    def __str__(self) -> str:
        return self.message


def describe_tls_error(
    error: BaseException,
    *,
    trusted: str = "",
    ca_pem: str | bytes | None = None,
    cert_pem: str | bytes | None = None,
    key_pem: str | bytes | None = None,
) -> TlsProblem:
    """The cause of a TLS failure (see the module's docstring).

    ``error``: an ``ssl.SSLError`` or an exception that holds one (urllib3's
    SSLError/MaxRetryError, requests', a ``raise … from``). ``trusted``: what the
    client trusted, for the message (``the kubeconfig's CA``); by default the given
    CA, else the system's CAs. ``ca_pem``, ``cert_pem``, ``key_pem``: the CA bundle,
    client certificate and client key the client used, when the caller has them: an
    expired CA is then named, and of a client certificate and key that cannot be
    loaded, the one at fault."""
    found = find_ssl_error(error)
    if found is None:  # only its text is left (a client that kept the words, not the ssl error)
        return TlsProblem("tls", f"TLS failed: {openssl_reason(str(error)) or type(error).__name__}")
    trust = trusted or ("the given CA" if ca_pem else "the system's CAs")
    if isinstance(found, ssl.SSLCertVerificationError):
        return _verification(found, trust, ca_pem)
    text = str(found)
    reason = str(found.reason or "")
    if "ALERT_" in reason:
        alert = reason.split("ALERT_", 1)[1]
        if alert in CLIENT_REFUSED:
            return TlsProblem(
                "client-certificate",
                f"the server refused the client certificate: {CLIENT_REFUSED[alert]} (TLS alert {alert.lower()})",
            )
        if alert in ("PROTOCOL_VERSION", "HANDSHAKE_FAILURE", "INSUFFICIENT_SECURITY"):
            return TlsProblem(
                "protocol",
                f"the server ended the TLS handshake: no TLS version or cipher in common (TLS alert {alert.lower()})",
            )
    if reason == "KEY_VALUES_MISMATCH":
        return TlsProblem(
            "client-key",
            "the client key does not belong to the client certificate (key values mismatch): give the key "
            "the certificate was issued for",
        )
    if "PEM lib" in text or reason in (
        "NO_START_LINE",
        "BAD_BASE64_DECODE",
        "BAD_END_LINE",
        "BAD_DECRYPT",
        "UNSUPPORTED_PRIVATE_KEY_ALGORITHM",
    ):
        return _unreadable_client(cert_pem, key_pem)
    if "does not contain a certificate" in text or reason == "NO_CERTIFICATE_OR_CRL_FOUND":
        return TlsProblem("ca-unusable", f"the CA to trust ({trust}) holds no readable PEM certificate")
    if reason == "WRONG_VERSION_NUMBER" or "wrong version number" in text:
        return TlsProblem(
            "protocol", "the server did not answer with TLS (plain HTTP, or another protocol, on that port?)"
        )
    if reason in ("UNSUPPORTED_PROTOCOL", "NO_PROTOCOLS_AVAILABLE", "TLSV1_ALERT_PROTOCOL_VERSION"):
        return TlsProblem(
            "protocol", "the server and acpcheck have no TLS version in common (acpcheck needs TLS 1.2 or later)"
        )
    if isinstance(found, ssl.SSLEOFError) or reason == "UNEXPECTED_EOF_WHILE_READING":
        return TlsProblem(
            "protocol",
            "the server closed the connection during the TLS handshake (a server that refuses the client "
            "certificate may do this too)",
        )
    return TlsProblem("tls", f"TLS failed: {openssl_reason(text)}")


#: OpenSSL's words in an ssl error's text, wherever it was quoted: ``[SSL: CODE] words (_ssl.c:N)``.
_OPENSSL_WORDS = re.compile(r"\[SSL(?:: \w+)?\] (?P<words>.+?)(?: \(_ssl\.c:\d+\)|'|\"|\)|$)", re.MULTILINE)


def openssl_reason(text: str) -> str:
    """What OpenSSL said in an error's text (``certificate verify failed: self-signed
    certificate in certificate chain``), also when a client quoted it inside its own
    wrapper (``SSLError(SSLCertVerificationError(1, '[SSL: …] …'))``); else the text's
    first line that is more than an exception's name (``SSLError`` alone says nothing)."""
    quoted = _OPENSSL_WORDS.search(text)
    if quoted:
        return quoted.group("words").strip()
    lines = [line for line in (_first_line(part) for part in text.splitlines()) if line]
    return next((line for line in lines if not re.fullmatch(r"[\w.]+", line)), lines[0] if lines else "")


def find_ssl_error(error: BaseException | None) -> ssl.SSLError | None:
    """The ``ssl.SSLError`` in ``error``: itself, or one it wraps (``__cause__``,
    ``__context__``, urllib3's ``reason``, an argument)."""
    seen: set[int] = set()
    pending: list[Any] = [error]
    while pending:
        current = pending.pop(0)
        if current is None or id(current) in seen or not isinstance(current, BaseException):
            continue
        seen.add(id(current))
        if isinstance(current, ssl.SSLError):
            return current
        pending += [current.__cause__, current.__context__, getattr(current, "reason", None), *current.args]
    return None


def _verification(error: ssl.SSLCertVerificationError, trust: str, ca_pem: str | bytes | None) -> TlsProblem:
    code = error.verify_code
    # OpenSSL's own words ("certificate verify failed: self-signed certificate in certificate chain"):
    # what a search for the error finds.
    said = f"certificate verify failed: {error.verify_message}" if error.verify_message else openssl_reason(str(error))
    if code in UNKNOWN_CA_CODES:
        self_signed = " (it is self-signed)" if code == DEPTH_ZERO_SELF_SIGNED_CERT else ""
        return TlsProblem(
            "unknown-ca",
            f"unknown CA: the server's certificate{self_signed} is not signed by a CA in {trust} ({said}); "
            "give the CA that issued it, or check that this is the right server",
        )
    if code in (HOSTNAME_MISMATCH, IP_ADDRESS_MISMATCH):
        return TlsProblem(
            "hostname",
            f"hostname mismatch: {_first_line(error.verify_message or said).rstrip('.')}; connect by a name or "
            "address the certificate lists (its SANs), or reissue it with this one",
        )
    if code in (CERT_HAS_EXPIRED, CERT_NOT_YET_VALID):
        kind, state = ("expired", "expired") if code == CERT_HAS_EXPIRED else ("not-yet-valid", "not valid yet")
        ca = _out_of_date_ca(ca_pem)
        if ca:
            return TlsProblem(
                kind,
                f"{state}: the CA certificate {ca}; renew the CA (and the certificates it signs), then update {trust}",
            )
        return TlsProblem(
            kind,
            f"{state}: the server's certificate, or a CA certificate of its chain, is {state} ({said}); "
            + ("check this machine's clock, then " if kind == "not-yet-valid" else "")
            + "renew it",
        )
    return TlsProblem("tls", f"the server's certificate was not accepted: {said}")


def _out_of_date_ca(ca_pem: str | bytes | None) -> str | None:
    """'CN=x expired on 2025-01-01' for the first certificate of ``ca_pem`` outside its validity now."""
    for certificate in _certificates(ca_pem):
        now = dt.datetime.now(dt.UTC)
        if certificate.not_valid_after_utc < now:
            return (
                f"{certificate.subject.rfc4514_string()} expired on "
                f"{certificate.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
            )
        if certificate.not_valid_before_utc > now:
            return (
                f"{certificate.subject.rfc4514_string()} is valid only from "
                f"{certificate.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"
            )
    return None


def _certificates(pem: str | bytes | None) -> list[Any]:
    if not pem:
        return []
    from cryptography import x509

    try:
        return list(x509.load_pem_x509_certificates(pem.encode() if isinstance(pem, str) else pem))
    except ValueError:
        return []


def _unreadable_client(cert_pem: str | bytes | None, key_pem: str | bytes | None) -> TlsProblem:
    """Which of the client certificate and key cannot be loaded (both tried when given)."""
    if cert_pem is not None and not _certificates(cert_pem):
        return TlsProblem("client-certificate", "the client certificate cannot be used: it is not a PEM certificate")
    if key_pem is not None:
        why = _key_problem(key_pem)
        if why:
            return TlsProblem("client-key", f"the client key cannot be used: {why}")
    if cert_pem is not None and key_pem is not None:
        return TlsProblem(
            "client-key", "the client key does not belong to the client certificate, or cannot be used with it"
        )
    return TlsProblem(
        "client-key",
        "the client certificate or key cannot be used: not PEM, encrypted, or not each other's (OpenSSL: PEM lib)",
    )


def _key_problem(key_pem: str | bytes) -> str | None:
    from cryptography.hazmat.primitives import serialization

    data = key_pem.encode() if isinstance(key_pem, str) else key_pem
    try:
        serialization.load_pem_private_key(data, password=None)
    except TypeError:
        return "it is encrypted (acpcheck reads unencrypted keys only)"
    except Exception:  # noqa: BLE001 — cryptography raises ValueError and others for garbage
        return "it is not a PEM private key"
    return None


def _first_line(text: str) -> str:
    text = re.sub(r"\s*\(_ssl\.c:\d+\)", "", text)
    return next((line.strip() for line in text.splitlines() if line.strip()), "")
