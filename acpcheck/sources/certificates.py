"""What a PEM certificate says, and whether a private key belongs to it, without keeping the key.

Used for the built-in registry's external address (ACP-REG-005, ACP-REG-008): the certificate of
Secret ``kube-system/registry-address.tls`` as the ``cluster`` source reads it, and the plan's
``spec.registry.externalAddress.certFile``. Everything returned is public (names, dates, the
certificate's fingerprint); a private key is parsed in memory only to compare its public half with
the certificate's, and nothing of it (not even its length) is returned. Error texts never quote
the input.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any


def describe_certificate(pem: bytes) -> dict[str, Any]:
    """The first (leaf) certificate of a PEM bundle: ``subject``, ``sans`` (DNS names and IP
    addresses), ``notBefore``/``notAfter`` (ISO 8601 UTC), ``fingerprint`` (sha256 of the DER),
    ``chain`` (how many certificates the bundle holds); or ``{"error": ...}``."""
    from cryptography import x509

    try:
        certificates = x509.load_pem_x509_certificates(pem)
    except ValueError:
        return {"error": "not a PEM certificate (no parsable CERTIFICATE block)"}
    leaf = certificates[0]
    sans: list[str] = []
    try:
        names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        sans = [str(value) for value in names.get_values_for_type(x509.DNSName)]
        sans += [str(value) for value in names.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        pass
    from cryptography.hazmat.primitives.serialization import Encoding

    return {
        "subject": leaf.subject.rfc4514_string(),
        "sans": sans,
        "notBefore": leaf.not_valid_before_utc.isoformat(timespec="seconds"),
        "notAfter": leaf.not_valid_after_utc.isoformat(timespec="seconds"),
        "fingerprint": hashlib.sha256(leaf.public_bytes(Encoding.DER)).hexdigest(),
        "chain": len(certificates),
    }


def key_matches(certificate_pem: bytes, key_pem: bytes) -> bool | None:
    """Whether the (unencrypted PEM) private key is the certificate's: their public keys are equal.
    None when either cannot be read (an encrypted or unknown key, no certificate)."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_private_key

    try:
        certificate = x509.load_pem_x509_certificates(certificate_pem)[0]
        key = load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        return None
    public = key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return public == certificate.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def days_left(info: dict[str, Any], now: dt.datetime) -> float | None:
    """Days from ``now`` until the described certificate expires (negative: expired)."""
    if not info.get("notAfter"):
        return None
    expiry = dt.datetime.fromisoformat(info["notAfter"])
    return round((expiry - now).total_seconds() / 86400, 2)


__all__ = ["days_left", "describe_certificate", "key_matches"]
