"""What every way of reaching a node offers: the transport protocol.

``NodeTransport`` is implemented by ``SshSession`` (a node over SSH) and
``LocalTransport`` (this machine, for tests and dry-runs). Callers — the facts
probe, load-balancer proofs, etcd reads, remediation — type against these
protocols, not against paramiko or subprocess:

- ``run``/``run_as_root``: one command, its output and exit status
  (``CommandResult``); a non-zero exit is a result, not an exception;
- ``start``: a command that keeps running on the node (``BackgroundCommand``)
  until ``stop()``, its own end, or ``deadline`` seconds — enforced on the node
  itself, so nothing outlives a killed runner or a lost connection;
- ``open_channel``: a byte stream to ``host:port`` as seen *from the node*
  (e.g. etcd on the node's 127.0.0.1:2379);
- ``forward``: the same as a real listening socket on the runner's 127.0.0.1,
  for clients that need one (TLS, gRPC).

Every failure is a ``TransportError`` (see ``errors``) with a secret-free message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class CommandResult:
    """What a command produced. Unpacks as ``exit_status, stdout, stderr``.

    The times are controller wall-clock epochs: ``input_sent_at`` is when the
    command (and its stdin) had been handed to the server, ``first_output_at``
    when its first stdout bytes arrived (None when it printed nothing). The facts
    probe prints the node's clock first, so those two bracket the clock read.
    """

    exit_status: int  # -1 when the server reported none (e.g. killed by a signal)
    stdout: str
    stderr: str
    started_at: float
    input_sent_at: float
    first_output_at: float | None
    finished_at: float

    def __iter__(self) -> Iterator[object]:
        return iter((self.exit_status, self.stdout, self.stderr))

    @property
    def ok(self) -> bool:
        return self.exit_status == 0


@runtime_checkable
class Stream(Protocol):
    """A connected byte stream: a ``socket.socket`` or a paramiko ``Channel``.

    ``shutdown(1)`` (``socket.SHUT_WR``) half-closes: the peer reads EOF, and
    data can still come back.
    """

    def send(self, data: bytes, /) -> int: ...
    def sendall(self, data: bytes, /) -> None: ...
    def recv(self, size: int, /) -> bytes: ...
    def settimeout(self, timeout: float | None, /) -> None: ...
    def fileno(self) -> int: ...
    def shutdown(self, how: int, /) -> None: ...
    def close(self) -> None: ...


@runtime_checkable
class BackgroundCommand(Protocol):
    """A command started with ``NodeTransport.start``; it runs on the node until it ends or is stopped."""

    def running(self) -> bool:
        """True until the command has ended (by itself, by ``stop()`` or at its deadline)."""
        ...

    def wait(self, timeout: float) -> CommandResult:
        """Its result once it has ended; ``TransportError("timeout")`` if it still runs after ``timeout`` s."""
        ...

    def output(self) -> tuple[str, str]:
        """What it has printed so far (stdout, stderr)."""
        ...

    def wait_output(self, done: Callable[[str], bool], timeout: float) -> tuple[str, str]:
        """The output once ``done(stdout)`` holds, the command has ended or ``timeout`` s have passed (no polling)."""
        ...

    def stop(self, timeout: float = 5.0) -> CommandResult:
        """End it: SIGTERM to its process group, SIGKILL after a grace period.

        Idempotent. Afterwards the command and every child it started are gone;
        returns what it printed (exit status -1 or 128+signal when it was killed).
        """
        ...


@runtime_checkable
class LocalForward(Protocol):
    """A listener on the runner's 127.0.0.1 whose every connection is piped to one address reached by a transport."""

    @property
    def address(self) -> tuple[str, int]:
        """``("127.0.0.1", port)``: where clients connect."""
        ...

    def close(self) -> None:
        """Stop listening and close every piped connection. Idempotent."""
        ...

    def __enter__(self) -> LocalForward: ...
    def __exit__(self, *exc: object) -> None: ...


@runtime_checkable
class NodeTransport(Protocol):
    """One node, reached somehow: run commands on it and open TCP streams from it."""

    node: str  # the plan node's name (SshSession: settings.node)

    def run(self, command: str, timeout: float | None = None, *, stdin: str | bytes | None = None) -> CommandResult:
        """Run ``command`` with ``sh``-compatible syntax; ``TransportError("timeout")`` after ``timeout`` s."""
        ...

    def run_as_root(
        self, command: str, timeout: float | None = None, *, stdin: str | bytes | None = None
    ) -> CommandResult:
        """``run`` as root: directly when the transport is root, else through ``sudo -n`` (never prompts)."""
        ...

    def start(self, command: str, *, deadline: float, as_root: bool = False) -> BackgroundCommand:
        """Start ``command`` in the background; the node itself ends it after ``deadline`` seconds."""
        ...

    def open_channel(self, host: str, port: int, *, timeout: float) -> Stream:
        """A stream to ``host:port`` as the node sees it (its 127.0.0.1 is its own loopback)."""
        ...

    def forward(self, host: str, port: int) -> LocalForward:
        """Listen on the runner's 127.0.0.1 and pipe each connection through its own ``open_channel``."""
        ...

    def close(self) -> None: ...
