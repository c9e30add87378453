"""A local TCP listener whose connections are piped through a transport's streams.

``Forwarder`` listens on 127.0.0.1:<ephemeral> on the runner. Each accepted
connection gets its own stream from ``connect()`` (an SSH direct-tcpip channel,
or a plain socket for ``LocalTransport``) and two threads that copy bytes each
way, passing half-closes on (EOF one way does not end the other). At most
``max_connections`` are piped at once; more are accepted and closed at once.
``close()`` stops listening and closes every connection; it is idempotent.

A connection whose stream cannot be opened (the target stopped listening, the
SSH connection died) is closed right away; the error is kept in ``errors``.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable

from acpcheck.transport.base import Stream
from acpcheck.transport.errors import TransportError

log = logging.getLogger("acpcheck.transport")

LOOPBACK = "127.0.0.1"
CHUNK = 65536


class Forwarder:
    """A ``LocalForward``: ``address`` is where clients connect."""

    def __init__(self, connect: Callable[[], Stream], *, name: str, max_connections: int = 64):
        self.name = name  # "node n1: 127.0.0.1:2379", for messages and thread names
        self.max_connections = max_connections
        self.errors: list[TransportError] = []  # the last few failures to open a stream
        self._connect = connect
        self._lock = threading.RLock()
        self._pipes: set[_Pipe] = set()
        self._closed = False
        self._listener = socket.create_server((LOOPBACK, 0), backlog=min(128, max_connections * 2))
        self._listener.settimeout(0.5)  # closing does not wake accept() everywhere: poll for it
        self.address: tuple[str, int] = (LOOPBACK, int(self._listener.getsockname()[1]))
        self._thread = threading.Thread(target=self._accept, name=f"forward {name}", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        return f"Forwarder({self.name!r}, {self.address[0]}:{self.address[1]}, {'closed' if self._closed else 'open'})"

    def __enter__(self) -> Forwarder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self._pipes)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            pipes, self._pipes = list(self._pipes), set()
        _shut(self._listener)
        for pipe in pipes:
            pipe.close()
        if self._thread is not threading.current_thread():
            self._thread.join(2.0)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._closed:
                    return
                continue  # e.g. EMFILE: try again; close() ends the loop
            client.settimeout(None)
            with self._lock:
                full = len(self._pipes) >= self.max_connections
                if self._closed or full:
                    pipe = None
                else:
                    pipe = _Pipe(self, client)
                    self._pipes.add(pipe)
            if pipe is None:
                if full:
                    log.warning("%s: %d connections already piped; closing a new one", self.name, self.max_connections)
                _shut(client)
                continue
            threading.Thread(target=pipe.run, name=f"forward {self.name} up", daemon=True).start()

    def _failed(self, error: TransportError) -> None:
        with self._lock:
            self.errors = [*self.errors[-9:], error]
        log.warning("%s: %s", self.name, error.message)

    def _done(self, pipe: _Pipe) -> None:
        with self._lock:
            self._pipes.discard(pipe)


class _Pipe:
    """One client connection and its stream."""

    def __init__(self, owner: Forwarder, client: socket.socket):
        self.owner = owner
        self.client = client
        self.stream: Stream | None = None
        self._lock = threading.RLock()
        self._closed = False
        self._open_ends = 2

    def run(self) -> None:
        try:
            stream = self.owner._connect()
        except TransportError as exc:
            self.owner._failed(exc)
            self.close()
            return
        except Exception as exc:  # noqa: BLE001 — a connector failing unexpectedly must not kill the listener
            self.owner._failed(TransportError("unreachable", f"{self.owner.name}: unexpected {type(exc).__name__}"))
            self.close()
            return
        with self._lock:
            if self._closed:
                _shut(stream)
                return
            self.stream = stream
        stream.settimeout(None)
        threading.Thread(
            target=self._copy, args=(stream, self.client), name=f"forward {self.owner.name} down", daemon=True
        ).start()
        self._copy(self.client, stream)

    def _copy(self, source: Stream | socket.socket, target: Stream | socket.socket) -> None:
        try:
            while True:
                data = source.recv(CHUNK)
                if not data:
                    break
                target.sendall(data)
            target.shutdown(socket.SHUT_WR)  # pass the EOF on; the other way may still carry data
        except Exception:  # noqa: BLE001 — a reset, or paramiko's own errors when the channel dies: end both ways
            self.close()
            return
        with self._lock:
            self._open_ends -= 1
            last = self._open_ends <= 0
        if last:
            self.close()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            stream = self.stream
        _shut(self.client)
        if stream is not None:
            _shut(stream)
        self.owner._done(self)


def _shut(endpoint: Stream | socket.socket) -> None:
    """Close, waking any thread blocked in recv()/accept() on it (close() alone does not on Linux)."""
    try:
        endpoint.shutdown(socket.SHUT_RDWR)
    except Exception:  # noqa: BLE001, S110 — already closed or never connected
        pass
    try:
        endpoint.close()
    except Exception:  # noqa: BLE001, S110
        pass
