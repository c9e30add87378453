"""Deadlines on whole exchanges with a live source: one Kubernetes API request, one etcd
read, one run of an exec credential plugin.

A socket timeout bounds one read. A server that sends one byte every few seconds never
trips it, and a request to it lasts for days. A ``Deadline`` bounds the whole exchange:
the sockets the exchange opens or reuses are registered with it (``watch``), and when it
passes a timer thread shuts them down. That wakes the blocked read at once; the caller
sees an error, asks ``expired`` and reports "no complete answer within N s" for that
target, and the run goes on.

How long: ``REQUEST_TIMEOUT`` seconds, unless ``ACPCHECK_REQUEST_TIMEOUT`` (seconds) says
otherwise; ``request_timeout()`` reads it. One setting for every exchange of the
Kubernetes API client, the etcd client and exec credential plugins.

Sockets are shut down by file descriptor, because a TLS socket is a new Python object
over the same descriptor and the one being read may not be reachable from here (during
the TLS handshake, urllib3 holds neither). A descriptor is recorded with the inode of
its socket and shut down only if it still refers to that socket, so a descriptor that
was closed and reused for something else in the meantime is never touched.
"""

from __future__ import annotations

import functools
import os
import socket
import stat
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from urllib3 import HTTPConnectionPool

#: The environment variable that sets the deadline of one exchange, in seconds.
REQUEST_TIMEOUT_ENV = "ACPCHECK_REQUEST_TIMEOUT"
#: Seconds one exchange may take by default. Our choice (Kubernetes sets none): a page of
#: 500 Nodes, an 8 MB page of etcd values through an SSH forward or a cloud login of an
#: exec plugin take a few seconds; a minute leaves room for a slow link and still ends a
#: run that meets a server which stalls on purpose.
REQUEST_TIMEOUT = 60.0
#: The largest value ``ACPCHECK_REQUEST_TIMEOUT`` may take (a day): above it, a typo.
MAX_REQUEST_TIMEOUT = 86_400.0

_current = threading.local()


def request_timeout(environ: dict[str, str] | None = None) -> float:
    """The deadline of one exchange in seconds; ValueError (what to give) when the variable is not one."""
    env = os.environ if environ is None else environ
    text = env.get(REQUEST_TIMEOUT_ENV, "").strip()
    if not text:
        return REQUEST_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value <= MAX_REQUEST_TIMEOUT:  # also false for NaN
        # The value is not quoted: whatever was typed there is not shown anywhere.
        raise ValueError(f"give a number of seconds above 0, at most {MAX_REQUEST_TIMEOUT:,.0f}")
    return value


class Deadline:
    """``with Deadline(seconds) as deadline:`` one exchange; sockets registered with
    ``watch`` (or opened by a connection class that calls ``watch_current``) are shut
    down when it passes. Deadlines nest per thread; the innermost one is current."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self._lock = threading.Lock()
        self._sockets: list[tuple[int, int]] = []  # (descriptor, inode)
        self._expired = False
        self._over = False
        self._timer: threading.Timer | None = None
        self._outer: Deadline | None = None

    def __enter__(self) -> Deadline:
        self._outer = getattr(_current, "deadline", None)
        _current.deadline = self
        self._timer = threading.Timer(self.seconds, self._expire)
        self._timer.daemon = True
        self._timer.name = "acpcheck-deadline"
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._timer is not None
        self._timer.cancel()
        with self._lock:
            self._over = True
            self._sockets.clear()
        _current.deadline = self._outer

    @property
    def expired(self) -> bool:
        """Whether the deadline passed while the exchange was under way."""
        return self._expired

    @staticmethod
    def current() -> Deadline | None:
        """The innermost deadline in force on this thread."""
        return getattr(_current, "deadline", None)

    def watch(self, sock: socket.socket) -> None:
        """Shut ``sock`` down when the deadline passes (at once if it already has)."""
        try:
            descriptor = sock.fileno()
            inode = os.fstat(descriptor).st_ino if descriptor >= 0 else -1
        except OSError:
            return
        if descriptor < 0:
            return
        with self._lock:
            if self._over:
                return
            if self._expired:
                _shut_down(descriptor, inode)
            elif (descriptor, inode) not in self._sockets:
                self._sockets.append((descriptor, inode))

    def _expire(self) -> None:
        with self._lock:  # the exchange cannot end (and its descriptors be closed and reused) meanwhile
            if self._over:
                return
            self._expired = True
            for descriptor, inode in self._sockets:
                _shut_down(descriptor, inode)


def watch_current(sock: socket.socket) -> None:
    """Register ``sock`` with the deadline in force on this thread, if any."""
    deadline = Deadline.current()
    if deadline is not None:
        deadline.watch(sock)


def _shut_down(descriptor: int, inode: int) -> None:
    """Shut down the socket behind ``descriptor`` if it is still the one with ``inode``."""
    try:
        duplicate = os.dup(descriptor)
    except OSError:
        return  # closed since
    try:
        status = os.fstat(duplicate)
        if not stat.S_ISSOCK(status.st_mode) or status.st_ino != inode:
            return  # the descriptor was reused for something else
        with socket.socket(fileno=duplicate) as sock:  # closing it closes the duplicate only
            duplicate = -1
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # not connected (any more)
    except OSError:
        pass
    finally:
        if duplicate >= 0:
            os.close(duplicate)


def watch_connections(pool_manager: Any) -> None:
    """Make every connection a urllib3 ``PoolManager`` (or ``ProxyManager``) opens or
    reuses register its socket with the deadline in force on the requesting thread."""
    pool_manager.pool_classes_by_scheme = {
        scheme: _watched_pool(cls) for scheme, cls in pool_manager.pool_classes_by_scheme.items()
    }


@functools.cache
def _watched_pool(pool_class: type[HTTPConnectionPool]) -> type[HTTPConnectionPool]:
    """``pool_class`` whose connections call ``watch_current`` on their socket: when it is
    created (before the TLS handshake) and before each request (a kept-alive connection)."""
    base: Any = pool_class.ConnectionCls

    class WatchedConnection(base):
        def _new_conn(self) -> socket.socket:
            sock = super()._new_conn()
            watch_current(sock)
            return sock

        def request(self, *args: Any, **kwargs: Any) -> Any:
            if self.sock is not None:
                watch_current(self.sock)
            return super().request(*args, **kwargs)

    WatchedConnection.__name__ = WatchedConnection.__qualname__ = f"Watched{base.__name__}"
    return type(f"Watched{pool_class.__name__}", (pool_class,), {"ConnectionCls": WatchedConnection})
