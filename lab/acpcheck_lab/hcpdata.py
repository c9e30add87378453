"""Hosted control planes in the lab: DataStore objects and their Secrets for a real etcd.

A Kamaji DataStore (``kamaji.clastix.io/v1alpha1``, cluster-scoped) names its etcd's endpoints
(bare ``host:port``, as Kamaji's ``net.SplitHostPort`` reads them) and, in ``spec.tlsConfig``,
Secret references (``secretReference``: name, namespace, ``keyPath``) for the etcd CA and the
client certificate Kamaji connects with. ``datastore_objects`` builds them the way Kamaji's own
sample does (config/samples/kamaji_v1alpha1_datastore_etcd.yaml: a CA Secret with ``ca.crt``
and ``ca.key``, a client Secret with ``tls.crt`` and ``tls.key``), for the test API server (a
stand-in for kube-apiserver) to serve, from an etcd's endpoints and certificate PEMs:

    objects = [namespace("kamaji-system"), *datastore_objects(
        "default-datastore", ["10.0.0.11:2379", "10.0.0.12:2379", "10.0.0.13:2379"],
        ca_pem=ca, client_cert_pem=cert, client_key_pem=key, ca_key_pem=ca_key)]

The planted defects of the ``hcp`` scenario come from its arguments: one endpoint and
``tls=False`` (no tlsConfig; Kamaji's current CRD refuses that for an etcd DataStore through a
CEL rule the test API server does not evaluate, an older Kamaji or an object created before the
rule did not), a client certificate from another CA (etcd refuses it), ``driver="PostgreSQL"``
(with ``basic_auth``), a client certificate that expires soon (``issue(days=…)``).

The PEMs go into the Secrets' ``data`` only: the caller keeps them in its lab state directory
(mode 0700), never in a plan or a report.
"""

from __future__ import annotations

import base64
from typing import Any

API_VERSION = "kamaji.clastix.io/v1alpha1"
#: Where Kamaji's sample keeps the etcd Secrets.
NAMESPACE = "kamaji-system"


def namespace(name: str = NAMESPACE) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def _secret(name: str, namespace_: str, data: dict[str, bytes | str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace_},
        "type": "Opaque",
        "data": {
            key: base64.b64encode(value.encode() if isinstance(value, str) else value).decode()
            for key, value in data.items()
        },
    }


def _ref(name: str, namespace_: str, key: str) -> dict[str, Any]:
    return {"secretReference": {"name": name, "namespace": namespace_, "keyPath": key}}


def datastore_objects(
    name: str,
    endpoints: list[str],
    *,
    ca_pem: bytes | str | None = None,
    client_cert_pem: bytes | str | None = None,
    client_key_pem: bytes | str | None = None,
    ca_key_pem: bytes | str | None = None,
    driver: str = "etcd",
    tls: bool = True,
    basic_auth: tuple[str, str] | None = None,
    secret_namespace: str = NAMESPACE,
) -> list[dict[str, Any]]:
    """The Secrets and the DataStore ``name`` for ``endpoints`` (``host:port`` each).

    With ``tls`` (the default) ``ca_pem``, ``client_cert_pem`` and ``client_key_pem`` are
    required: Secret ``<name>-etcd-certs`` holds ``ca.crt`` (and ``ca.key`` when ``ca_key_pem``
    is given), ``<name>-root-client-certs`` holds ``tls.crt`` and ``tls.key``, both in
    ``secret_namespace`` (which must exist: ``namespace()``). Without ``tls`` no Secret and no
    ``tlsConfig``. ``basic_auth`` (username, password) adds Secret ``<name>-basic-auth`` and
    ``spec.basicAuth`` (what Kamaji's SQL drivers use). The Secrets come first, the DataStore
    last, so the list can be created in order."""
    objects: list[dict[str, Any]] = []
    spec: dict[str, Any] = {"driver": driver, "endpoints": list(endpoints)}
    if tls:
        if ca_pem is None or client_cert_pem is None or client_key_pem is None:
            raise ValueError("a DataStore with TLS needs ca_pem, client_cert_pem and client_key_pem")
        ca_secret, client_secret = f"{name}-etcd-certs", f"{name}-root-client-certs"
        ca_data: dict[str, bytes | str] = {"ca.crt": ca_pem}
        if ca_key_pem is not None:
            ca_data["ca.key"] = ca_key_pem
        objects.append(_secret(ca_secret, secret_namespace, ca_data))
        objects.append(
            _secret(client_secret, secret_namespace, {"tls.crt": client_cert_pem, "tls.key": client_key_pem})
        )
        authority: dict[str, Any] = {"certificate": _ref(ca_secret, secret_namespace, "ca.crt")}
        if ca_key_pem is not None:
            authority["privateKey"] = _ref(ca_secret, secret_namespace, "ca.key")
        spec["tlsConfig"] = {
            "certificateAuthority": authority,
            "clientCertificate": {
                "certificate": _ref(client_secret, secret_namespace, "tls.crt"),
                "privateKey": _ref(client_secret, secret_namespace, "tls.key"),
            },
        }
    if basic_auth is not None:
        auth_secret = f"{name}-basic-auth"
        objects.append(_secret(auth_secret, secret_namespace, {"username": basic_auth[0], "password": basic_auth[1]}))
        spec["basicAuth"] = {
            "username": _ref(auth_secret, secret_namespace, "username"),
            "password": _ref(auth_secret, secret_namespace, "password"),
        }
    objects.append({"apiVersion": API_VERSION, "kind": "DataStore", "metadata": {"name": name}, "spec": spec})
    return objects
