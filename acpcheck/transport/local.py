"""The transport protocol on this machine, through subprocess.

``LocalTransport`` runs commands with ``/bin/sh -c`` in a session of their own
(so a timeout ends the command and everything it started), background commands
with the same wrapper as SSH (see ``background``), and opens TCP connections
from here. It serves tests and, later, remediation dry-runs.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Callable

from acpcheck.transport.background import SHELL, Background, start_line, sudo_line
from acpcheck.transport.base import CommandResult, Stream
from acpcheck.transport.errors import TransportError
from acpcheck.transport.forward import Forwarder
from acpcheck.transport.net import open_tcp
from acpcheck.transport.settings import hostport


class LocalTransport:
    """A ``NodeTransport`` for the machine acpcheck runs on.

    ``shell`` runs every command (``/bin/sh``; the tests also use dash, bash
    and busybox). ``run_as_root`` runs directly when this process is root, else
    through ``sudo -n``.
    """

    def __init__(
        self, node: str = "local", *, command_timeout: float = 60.0, open_timeout: float = 10.0, shell: str = SHELL
    ):
        self.node = node
        self.command_timeout = command_timeout
        self.open_timeout = open_timeout
        self.shell = shell
        self._lock = threading.RLock()
        self._forwards: list[Forwarder] = []
        self._background: list[tuple[Background, threading.Event]] = []  # and the event that abandons its streams

    def __repr__(self) -> str:
        return f"LocalTransport({self.node!r})"

    def __enter__(self) -> LocalTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def is_root(self) -> bool:
        return os.geteuid() == 0

    def close(self) -> None:
        """Close the forwards and stop reading background commands (which run on to their deadline, as over SSH)."""
        with self._lock:
            forwards, self._forwards = self._forwards, []
            background, self._background = self._background, []
        for forward in forwards:
            forward.close()
        for handle, abandon in background:
            handle.finish(-1, lost=True)
            abandon.set()

    # --- commands ---------------------------------------------------------------

    def run(self, command: str, timeout: float | None = None, *, stdin: str | bytes | None = None) -> CommandResult:
        """Run ``command``; after ``timeout`` s its whole session is killed and TransportError("timeout") raised."""
        seconds = self.command_timeout if timeout is None else timeout
        started = time.time()
        process = self._popen([self.shell, "-c", command], stdin=stdin is not None)
        end = time.monotonic() + seconds
        if stdin is not None:
            threading.Thread(
                target=_feed, args=(process, stdin.encode() if isinstance(stdin, str) else stdin), daemon=True
            ).start()
        input_sent = time.time()
        out: list[bytes] = []
        err: list[bytes] = []
        first_output: float | None = None

        def stdout(chunk: bytes) -> None:
            nonlocal first_output
            if first_output is None:
                first_output = time.time()
            out.append(chunk)

        try:
            if not _pump(process, stdout, err.append, end):
                raise subprocess.TimeoutExpired(command, seconds)
            returncode = process.wait(max(0.0, end - time.monotonic()))
        except subprocess.TimeoutExpired:
            _kill_session(process)
            raise TransportError("timeout", f"{self.node}: command did not finish within {seconds:g} s") from None
        return CommandResult(
            exit_status=_status(returncode),
            stdout=b"".join(out).decode("utf-8", errors="replace"),
            stderr=b"".join(err).decode("utf-8", errors="replace"),
            started_at=started,
            input_sent_at=input_sent,
            first_output_at=first_output,
            finished_at=time.time(),
        )

    def run_as_root(
        self, command: str, timeout: float | None = None, *, stdin: str | bytes | None = None
    ) -> CommandResult:
        return self.run(command if self.is_root else sudo_line(command), timeout, stdin=stdin)

    def start(self, command: str, *, deadline: float, as_root: bool = False) -> Background:
        """Start ``command`` under the background wrapper; it ends itself after ``deadline`` seconds."""
        sudo = as_root and not self.is_root
        started = time.time()
        process = self._popen(
            [self.shell, "-c", start_line(command, deadline, sudo=sudo, shell=self.shell)], stdin=False
        )
        abandoned = threading.Event()
        handle = Background(
            f"{self.node}: background command",
            run_line=lambda line, timeout: self.run(line, timeout),
            abandon=abandoned.set,
            sudo=sudo,
            shell=self.shell,
            started_at=started,
        )
        handle.input_sent()
        with self._lock:
            self._background = [(h, a) for h, a in self._background if h.running()]
            self._background.append((handle, abandoned))
        threading.Thread(
            target=_pump_background,
            args=(process, handle, abandoned),
            name=f"acpcheck background {self.node}",
            daemon=True,
        ).start()
        handle.wait_started(self.command_timeout)
        return handle

    def _popen(self, argv: list[str], *, stdin: bool) -> subprocess.Popen[bytes]:
        try:
            return subprocess.Popen(
                argv,
                stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # its own session and process group: killed as a whole on timeout
            )
        except OSError as exc:
            raise TransportError(
                "probe", f"{self.node}: cannot start {argv[0]}: {exc.strerror or type(exc).__name__}"
            ) from None

    # --- TCP ----------------------------------------------------------------------

    def open_channel(self, host: str, port: int, *, timeout: float) -> Stream:
        """A TCP connection from this machine (``socket.create_connection``, with acpcheck's error messages)."""
        sock = open_tcp(host, port, proxy=None, timeout=timeout)
        sock.settimeout(None)
        return sock

    def forward(self, host: str, port: int) -> Forwarder:
        """A listener on 127.0.0.1 piping to ``host:port`` (checked once first, like ``SshSession.forward``)."""
        self.open_channel(host, port, timeout=self.open_timeout).close()
        forward = Forwarder(
            lambda: self.open_channel(host, port, timeout=self.open_timeout),
            name=f"{self.node}: {hostport(host, port)}",
        )
        with self._lock:
            self._forwards = [f for f in self._forwards if not f.closed]
            self._forwards.append(forward)
        return forward


def _status(returncode: int) -> int:
    return returncode if returncode >= 0 else -1  # killed by a signal: as SSH reports it


def _feed(process: subprocess.Popen[bytes], data: bytes) -> None:
    assert process.stdin is not None
    try:
        process.stdin.write(data)
    except OSError:
        pass  # the command exited without reading all its input; its output still counts
    finally:
        try:
            process.stdin.close()
        except OSError:
            pass


def _pump(
    process: subprocess.Popen[bytes],
    out: Callable[[bytes], None],
    err: Callable[[bytes], None],
    end: float | None,
    stop: threading.Event | None = None,
) -> bool:
    """Hand stdout/stderr to ``out``/``err`` until both reach EOF (True), ``end`` (monotonic)
    passes or ``stop`` is set (False)."""
    assert process.stdout is not None and process.stderr is not None
    sinks = {process.stdout.fileno(): out, process.stderr.fileno(): err}
    with selectors.DefaultSelector() as selector:
        for fd in sinks:
            selector.register(fd, selectors.EVENT_READ)
        try:
            while sinks:
                if stop is not None and stop.is_set():
                    return False
                left = 0.5 if end is None else min(0.5, end - time.monotonic())
                if left <= 0:
                    return False
                for key, _ in selector.select(left):
                    fd = int(key.fd)
                    chunk = os.read(fd, 65536)
                    if chunk:
                        sinks[fd](chunk)
                    else:
                        selector.unregister(fd)
                        del sinks[fd]
            return True
        finally:
            process.stdout.close()
            process.stderr.close()


def _pump_background(process: subprocess.Popen[bytes], handle: Background, abandoned: threading.Event) -> None:
    try:
        ended = _pump(process, handle.feed_stdout, handle.feed_stderr, None, abandoned)
    except Exception:  # noqa: BLE001 — never leave the handle waiting
        ended = False
    if ended:
        handle.finish(_status(process.wait()))
    else:
        handle.finish(-1)
        process.wait()  # reap the wrapper whenever it ends


def _kill_session(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass  # gone already, or run through sudo (root's processes): the pipes are closed, it ends on its own
    try:
        process.wait(5.0)
    except subprocess.TimeoutExpired:
        pass
