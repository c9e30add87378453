"""The etcd client: etcd's v3 gRPC-gateway JSON API over client TLS, one request at a time.

The client talks ``POST /v3/kv/range`` (and ``/v3/maintenance/status``) over HTTPS on
etcd's client port, which etcd serves next to gRPC: no extra dependency. It connects
to an address it is given (in a run: a ``LocalForward``, an SSH channel from a
control-plane node, where etcd usually listens on 127.0.0.1:2379 only), verifies
etcd's certificate against the CA it is given for the real etcd host, and presents
the client certificate and key (``ClientCredentials``), held in memory: Python's
``ssl`` loads a certificate only by path, so it reads them from a memfd
(``/proc/self/fd/N``) that is closed as soon as the context has them. Nothing is
written to disk or logged.

Each call has a deadline on the whole exchange (``acpcheck.transport.deadline``: 60 s,
``ACPCHECK_REQUEST_TIMEOUT``) besides the 30 s bound on each read, and an answer is read
up to ``MAX_ANSWER_BYTES``: an etcd (or anything else on that port) that drips, stalls
or floods ends as an ``EtcdError`` of kind ``timeout`` or ``error``.

Reading a range: ``range_values`` and ``range_keys`` page through ``[start, end)`` as
of one revision (one consistent snapshot); a page's size adapts so that it is about
``PAGE_BYTES`` of JSON, which bounds memory. ``prefix_end`` is etcd's range end for
"every key with this prefix". The encryption source's scan of stored values
(``acpcheck.sources.encryption_scan``) and the lab's etcd read through these.
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

from acpcheck.tlserrors import openssl_reason
from acpcheck.transport.deadline import REQUEST_TIMEOUT_ENV, Deadline, request_timeout, watch_current


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
        super()._send_output(message_body, encode_chunked)  # type: ignore[misc]  # private in http.client, not in typeshed


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
                (
                    "the CA, certificate or key named in the kube-apiserver manifest cannot be used "
                    f"({error.reason or error})"
                ),
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
            words = openssl_reason(str(error)) or reason
            raise EtcdError("tls", f"{self.label}: the handshake with etcd failed ({words})") from None
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
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = response.read(1 << 20)
        if not chunk:
            if declared.isdigit() and size < int(declared):
                # read(amt) returns short at a connection that ended early, where read() would
                # raise: a body cut off is the connection's end, not an answer that is not JSON.
                raise http.client.IncompleteRead(b"".join(chunks), int(declared) - size)
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise _TooLarge(f"is more than the {limit:,} bytes acpcheck reads")
        chunks.append(chunk)


# ---------------------------------------------------------------------------
# Reading a range

#: A page aims at this many bytes of JSON: its size adapts between MIN_PAGE and MAX_PAGE (keys only: MAX_KEYS_PAGE).
PAGE_BYTES = 8 << 20
MIN_PAGE, MAX_PAGE, MAX_KEYS_PAGE = 100, 10_000, 50_000


def _pages(
    client: EtcdClient, start: bytes, end: bytes, revision: int, keys_only: bool
) -> Iterator[list[dict[str, Any]]]:
    """The kvs of [start, end) as of ``revision``, a page at a time; the page size adapts so
    a page is about PAGE_BYTES."""
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


def range_keys(client: EtcdClient, start: bytes, end: bytes, revision: int) -> Iterator[bytes]:
    """The keys of [start, end) as of ``revision``, a page at a time (values not read)."""
    for kvs in _pages(client, start, end, revision, keys_only=True):
        yield from (base64.b64decode(kv["key"]) for kv in kvs)


def range_values(client: EtcdClient, start: bytes, end: bytes, revision: int) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) of every key in [start, end) as of ``revision``, a page at a time."""
    for kvs in _pages(client, start, end, revision, keys_only=False):
        yield from ((base64.b64decode(kv["key"]), base64.b64decode(kv.get("value", ""))) for kv in kvs)
