"""SSH to a node with paramiko: one connection per node, every step time-bounded.

``connect(settings)`` opens a TCP connection (directly, or through a SOCKS5 proxy
with python-socks), negotiates SSH, checks the host key against acpcheck's
known_hosts file under the plan's policy, and logs in with a private key and/or a
password. It returns an ``SshSession`` (a ``NodeTransport``, see ``base``) whose
``run()`` executes one command per channel on the same connection, so the facts
probe and later remediation share one login; ``start()`` runs a command in the
background (see ``background``), ``open_channel()``/``forward()`` reach a TCP
address as the node sees it through direct-tcpip channels.

Determinism: no SSH agent, no ``~/.ssh`` keys, no ``~/.ssh/config`` — only what
the plan says. Bounded time: TCP connect (and the SOCKS5 handshake), SSH banner
and key exchange, authentication and each command have their own timeout
(``Timeouts``); a dead node, a dead proxy or a hung command costs at most those.
Failures are ``TransportError`` with a ``GatherFailure`` kind and a message that
names hosts, ports, users, files and variables but never a secret value.
"""

from __future__ import annotations

import logging
import resource
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import paramiko
from paramiko import PKey
from paramiko.pkey import UnknownKeyType
from paramiko.ssh_exception import (
    AuthenticationException,
    BadAuthenticationType,
    ChannelException,
    SSHException,
)

from acpcheck.transport.background import Background, start_line, sudo_line
from acpcheck.transport.base import CommandResult
from acpcheck.transport.errors import TransportError, scrub
from acpcheck.transport.forward import Forwarder
from acpcheck.transport.hostkeys import KnownHosts, fingerprint, host_key_name, preferred_key_types
from acpcheck.transport.net import open_tcp
from acpcheck.transport.settings import SshSettings, hostport, resolve_ssh

if TYPE_CHECKING:
    from acpcheck.model.plan import ClusterPlan, Node

log = logging.getLogger("acpcheck.transport")
# paramiko logs a traceback for every failed handshake on its transport thread;
# with no logging configured Python would print those on stderr ("last resort"
# handler). A NullHandler keeps them out of the terminal, not out of a configured log.
logging.getLogger("paramiko").addHandler(logging.NullHandler())


@dataclass(frozen=True)
class Timeouts:
    """Seconds allowed for each step of reaching a node."""

    connect: float = 10.0  # TCP connect, and the SOCKS5 handshake when there is a proxy
    handshake: float = 15.0  # SSH banner and key exchange
    auth: float = 15.0  # each authentication attempt
    command: float = 60.0  # default for SshSession.run()


DEFAULT_TIMEOUTS = Timeouts()


class _Deadline:
    """A time budget for one step; ``error()`` is the timeout failure to raise."""

    def __init__(self, seconds: float, what: str):
        self.seconds = seconds
        self.what = what
        self._at = time.monotonic() + seconds

    def remaining(self) -> float:
        return max(0.0, self._at - time.monotonic())

    @property
    def expired(self) -> bool:
        return self.remaining() == 0.0

    def error(self) -> TransportError:
        return TransportError("timeout", f"{self.what} did not finish within {self.seconds:g} s")


def _decode(chunks: list[bytes]) -> str:
    # Node files may hold any bytes; a replacement character beats a crash.
    return b"".join(chunks).decode("utf-8", errors="replace")


class _Wake:
    """Wakes a reader when stdout or stderr data, or the end, arrives on a channel.

    paramiko's buffers call ``set()`` on it when data arrives (and ``clear()`` when
    they are read empty, which is ignored here: the reader clears before it looks,
    so no wake-up is lost between two buffers sharing one).

    Not ``Channel.fileno()``: behind it is an OS pipe that ``Channel.close()`` closes
    while paramiko's transport thread may still write its wake-up byte into it, and
    a reader may still read one out of it (``PosixPipe.clear`` does not check that it
    was closed). With 1,000 connections that fd number is by then often another
    connection's socket: a byte written into or read out of another node's SSH stream
    kills that connection ("Socket exception: Bad file descriptor", "Broken pipe";
    listeners lost mid-probe on a 1,000-node lab). A threading.Event has no fd.
    """

    def __init__(self, channel: paramiko.Channel):
        self._event = threading.Event()
        channel.in_buffer.set_event(self)  # type: ignore[arg-type]  # duck-typed Event (docstring)
        channel.in_stderr_buffer.set_event(self)  # type: ignore[arg-type]  # duck-typed Event (docstring)

    def set(self) -> None:
        self._event.set()

    def clear(self) -> None:
        """Called by paramiko's buffers when read empty: ignored (see the class)."""

    def before_look(self) -> None:
        """Forget earlier wake-ups: whatever arrives from now on wakes ``wait``."""
        self._event.clear()

    def wait(self, timeout: float) -> None:
        self._event.wait(max(0.0, timeout))


def _drain(
    channel: paramiko.Channel,
    out: Callable[[bytes], None],
    err: Callable[[bytes], None],
    deadline: _Deadline | None,
    idle_wait: float = 0.5,
) -> None:
    """Hand stdout and stderr to ``out``/``err`` until EOF; ``deadline.error()`` when time runs out.
    ``idle_wait``: the longest sleep between looks when nothing arrives."""
    wake = _Wake(channel)
    while True:
        wake.before_look()
        while channel.recv_ready():
            chunk = channel.recv(65536)
            if not chunk:
                break
            out(chunk)
        while channel.recv_stderr_ready():
            chunk = channel.recv_stderr(65536)
            if not chunk:
                break
            err(chunk)
        if channel.eof_received or channel.closed:
            if channel.recv_ready() or channel.recv_stderr_ready():
                continue  # data that arrived together with the EOF
            return
        if deadline is not None and deadline.expired:
            raise deadline.error()
        # Capped so that a missed wake-up costs idle_wait seconds, never a hang.
        wake.wait(min(deadline.remaining(), idle_wait) if deadline is not None else idle_wait)


class SshSession:
    """A logged-in connection to one node (a ``NodeTransport``); every method may be called many times."""

    def __init__(
        self, settings: SshSettings, transport: paramiko.Transport, command_timeout: float, open_timeout: float = 10.0
    ):
        self.settings = settings
        self.node = settings.node
        self._transport = transport
        self.command_timeout = command_timeout
        self.open_timeout = open_timeout  # for the channels behind forward()
        self._forwards: list[Forwarder] = []
        self._forwards_lock = threading.RLock()

    def __repr__(self) -> str:
        state = "open" if self.is_active else "closed"
        return f"SshSession({self.settings.node!r}, {self.settings.address!r}, {state})"

    def __enter__(self) -> SshSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def is_active(self) -> bool:
        return self._transport.is_active()

    def abort(self) -> None:
        """Cut the connection at once: shut its socket down. Takes no lock, so it is safe
        anywhere (a signal handler); the node sees the connection end, ``close()`` tidies up."""
        try:
            self._transport.sock.shutdown(socket.SHUT_RDWR)
        except (OSError, AttributeError):
            pass  # closed already

    def close(self) -> None:
        """Close the forwards and the connection. Background commands are not stopped:
        their handles report the connection lost, and the node ends them at their deadline."""
        with self._forwards_lock:
            forwards, self._forwards = self._forwards, []
        for forward in forwards:
            forward.close()
        self._transport.close()

    def run(self, command: str, timeout: float | None = None, *, stdin: str | bytes | None = None) -> CommandResult:
        """Run ``command`` on the node; raise TransportError("timeout") after ``timeout`` seconds.

        A non-zero exit status is a result, not an exception. On timeout the
        channel is closed (the connection stays usable); note that a remote
        process that ignores its closed pipes may keep running on the node.
        """
        deadline = _Deadline(self.command_timeout if timeout is None else timeout, f"{self.settings.address}: command")
        started = time.time()
        channel = self._open_session(deadline)
        try:
            return self._exec(channel, command, stdin, started, deadline)
        finally:
            channel.close()

    def _open_session(self, deadline: _Deadline) -> paramiko.Channel:
        try:
            return self._transport.open_session(timeout=deadline.remaining())
        except ChannelException as exc:
            raise TransportError(
                "permission", f"{self.settings.address}: the server refused a session channel ({exc.text})"
            ) from None
        except (SSHException, EOFError, OSError) as exc:
            if deadline.expired:
                raise deadline.error() from None
            raise TransportError(
                "unreachable", f"{self.settings.address}: cannot open a channel: {exc or type(exc).__name__}"
            ) from None

    def _begin(self, channel: paramiko.Channel, command: str, stdin: str | bytes | None, deadline: _Deadline) -> None:
        """Start ``command`` on ``channel`` and hand it ``stdin`` (then EOF)."""
        where = self.settings.address
        # paramiko waits for the exec reply without a timeout; closing the channel
        # at the deadline wakes it up. Closing from another thread is safe: no channel
        # here ever has an OS pipe behind it (see _Wake).
        watchdog = threading.Timer(deadline.remaining(), channel.close)
        watchdog.daemon = True
        watchdog.start()
        try:
            channel.exec_command(command)
        except (SSHException, EOFError, OSError) as exc:
            # EOFError: paramiko's packetizer found the connection closed while sending the request
            if deadline.expired:
                raise deadline.error() from None
            raise TransportError(
                "unreachable", f"{where}: the server did not run the command: {exc or 'the connection was closed'}"
            ) from None
        finally:
            watchdog.cancel()
        channel.settimeout(deadline.remaining())
        try:
            if stdin is not None:
                channel.sendall(stdin.encode() if isinstance(stdin, str) else stdin)
            channel.shutdown_write()
        except (OSError, SSHException, EOFError):
            if deadline.expired:
                raise deadline.error() from None
            # Otherwise the command exited without reading all its input; its output still counts.

    def _exec(
        self, channel: paramiko.Channel, command: str, stdin: str | bytes | None, started: float, deadline: _Deadline
    ) -> CommandResult:
        where = self.settings.address
        self._begin(channel, command, stdin, deadline)
        input_sent = time.time()

        out: list[bytes] = []
        err: list[bytes] = []
        first_output: float | None = None

        def stdout(chunk: bytes) -> None:
            nonlocal first_output
            if first_output is None:
                first_output = time.time()
            out.append(chunk)

        _drain(channel, stdout, err.append, deadline)
        if not channel.status_event.wait(deadline.remaining()):
            raise deadline.error()
        if channel.exit_status == -1 and not self._transport.is_active():
            raise TransportError("unreachable", f"{where}: the connection was lost while the command ran")
        return CommandResult(
            exit_status=channel.exit_status,
            stdout=_decode(out),
            stderr=_decode(err),
            started_at=started,
            input_sent_at=input_sent,
            first_output_at=first_output,
            finished_at=time.time(),
        )

    def run_as_root(
        self, command: str, timeout: float | None = None, *, stdin: str | bytes | None = None
    ) -> CommandResult:
        """Run ``command`` as root: directly for root, through ``sudo -n`` otherwise.

        ``sudo -n`` never prompts: without passwordless sudo the result is a
        non-zero exit with sudo's message on stderr, not a hang.
        """
        if not self.settings.is_root:
            command = sudo_line(command)
        return self.run(command, timeout, stdin=stdin)

    # --- background commands ------------------------------------------------------

    def start(self, command: str, *, deadline: float, as_root: bool = False) -> Background:
        """Start ``command`` on the node in the background (see ``background``).

        Returns once the node has started it (within the command timeout). The
        node ends it after ``deadline`` seconds whatever happens to this
        connection. With ``as_root`` and a non-root user it runs, and is
        stopped, through ``sudo -n``; without passwordless sudo the handle has
        already ended with sudo's message on stderr (like ``run_as_root``).
        """
        where = self.settings.address
        sudo = as_root and not self.settings.is_root
        line = start_line(command, deadline, sudo=sudo)
        budget = _Deadline(self.command_timeout, f"{where}: starting a background command")
        started = time.time()
        channel = self._open_session(budget)
        handle = Background(
            where,
            run_line=lambda text, timeout: self.run(text, timeout),
            abandon=channel.close,
            sudo=sudo,
            started_at=started,
        )
        try:
            self._begin(channel, line, None, budget)
        except BaseException:
            channel.close()
            raise
        handle.input_sent()
        threading.Thread(
            target=self._pump, args=(channel, handle), name=f"acpcheck background {self.node}", daemon=True
        ).start()
        handle.wait_started(budget.remaining())
        return handle

    def _pump(self, channel: paramiko.Channel, handle: Background) -> None:
        """Read a background command's output until it ends or the channel is closed."""
        lost = False
        try:
            _drain(channel, handle.feed_stdout, handle.feed_stderr, None, idle_wait=BACKGROUND_IDLE_WAIT)
            channel.status_event.wait(5.0)
            lost = channel.exit_status == -1 and not self._transport.is_active()
        except Exception:  # noqa: BLE001 — the connection died under us
            lost = True
        finally:
            channel.close()
            handle.finish(channel.exit_status, lost=lost)

    # --- TCP from the node ------------------------------------------------------

    def open_channel(self, host: str, port: int, *, timeout: float) -> paramiko.Channel:
        """A direct-tcpip channel: sshd connects to ``host:port`` from the node and pipes it here.

        ``host`` is resolved on the node, so ``127.0.0.1`` is the node's own
        loopback (e.g. etcd's client port). The channel is a socket-like stream
        (send/recv/sendall/shutdown/settimeout/fileno/close).
        """
        where = self.settings.address
        target = hostport(host, port)
        if not self._transport.is_active():
            raise TransportError("unreachable", f"{where}: the connection is closed; cannot reach {target}")
        try:
            return self._transport.open_channel("direct-tcpip", (host, port), ("127.0.0.1", 0), timeout=timeout)
        except ChannelException as exc:
            if exc.code == 1:  # SSH2_OPEN_ADMINISTRATIVELY_PROHIBITED
                raise TransportError(
                    "permission",
                    (
                        f"{where}: sshd refuses to forward to {target} (administratively prohibited: "
                        "AllowTcpForwarding or PermitOpen)"
                    ),
                ) from None
            if exc.code == 2:  # SSH2_OPEN_CONNECT_FAILED
                raise TransportError(
                    "unreachable",
                    (
                        f"{where}: the node could not connect to {target} (connection refused or no route: is "
                        "anything listening there?)"
                    ),
                ) from None
            raise TransportError(
                "unreachable", f"{where}: sshd would not open a channel to {target}: {exc.text} (code {exc.code})"
            ) from None
        except SSHException as exc:
            if "timeout" in str(exc).lower():
                raise TransportError("timeout", f"{where}: no channel to {target} within {timeout:g} s") from None
            raise TransportError("unreachable", f"{where}: cannot open a channel to {target}: {exc}") from None
        except (EOFError, OSError) as exc:
            raise TransportError(
                "unreachable",
                f"{where}: the connection was lost while opening a channel to {target} ({type(exc).__name__})",
            ) from None

    def forward(self, host: str, port: int) -> Forwarder:
        """Listen on 127.0.0.1:<ephemeral> here; each connection gets its own channel to ``host:port``.

        One channel is opened and closed first, so an unreachable target is a
        TransportError here rather than a silently closed connection later.
        Closed with ``close()`` (or this session's ``close()``).
        """
        self.open_channel(host, port, timeout=self.open_timeout).close()
        forward = Forwarder(
            lambda: self.open_channel(host, port, timeout=self.open_timeout),
            name=f"{self.node}: {hostport(host, port)}",
        )
        with self._forwards_lock:
            self._forwards = [f for f in self._forwards if not f.closed]
            self._forwards.append(forward)
        return forward


# ---------------------------------------------------------------------------
# Connecting


#: How often an idle session's transport thread wakes up (paramiko's own is 0.1 s).
IDLE_POLL_SECONDS = 5.0
#: How often the thread that reads a quiet background command looks without being woken:
#: a safety net only, since output, EOF, a close and a lost connection all wake it
#: (``_Wake``). A 1,000-node connectivity proof runs 1,000 listeners at once, each with
#: such a thread, and every wake-up competes for the GIL with everything else: at 2 s
#: (with the listeners' beat every 10 s) a healthy 1,000-node run spent 569 s of
#: system CPU, mostly handing the GIL around (futex); at 60 s, 39 s.
BACKGROUND_IDLE_WAIT = 60.0


def connect(
    settings: SshSettings, *, timeouts: Timeouts = DEFAULT_TIMEOUTS, known_hosts: KnownHosts | None = None
) -> SshSession:
    """Open and authenticate a connection to one node; raise TransportError otherwise."""
    secrets: list[str] = []  # every secret value read, to scrub from any message we pass on
    try:
        return _connect(settings, timeouts, known_hosts or KnownHosts(), secrets)
    except TransportError as exc:
        raise exc.scrubbed(secrets) from None
    except Exception as exc:  # noqa: BLE001 — a paramiko/socket failure we did not anticipate: still a clean, secret-free error
        raise TransportError(
            "unreachable", f"{settings.address}: unexpected {type(exc).__name__}: {scrub(str(exc), secrets)}"
        ) from None


def connect_node(
    plan: ClusterPlan, node: Node, *, timeouts: Timeouts = DEFAULT_TIMEOUTS, known_hosts: KnownHosts | None = None
) -> SshSession:
    """``connect(resolve_ssh(plan, node))``."""
    return connect(resolve_ssh(plan, node), timeouts=timeouts, known_hosts=known_hosts)


def _connect(settings: SshSettings, timeouts: Timeouts, known_hosts: KnownHosts, secrets: list[str]) -> SshSession:
    # Local problems (missing key, unset variable) first: they need no network.
    if settings.key_file is None and settings.password is None:
        raise TransportError(
            "auth", f"{settings.address}: no credentials: set ssh.auth.privateKeyFile, passwordEnv or passwordFile"
        )
    key = _load_key(settings, secrets) if settings.key_file is not None else None
    password = None
    if settings.password is not None:
        password = settings.password.read()
        secrets.append(password)

    sock = open_tcp(
        settings.host,
        settings.port,
        proxy=settings.proxy,
        timeout=timeouts.connect,
        refused_hint=" (no sshd listening on that port?)",
    )
    transport = paramiko.Transport(sock)
    try:
        _handshake(transport, settings, timeouts, known_hosts)
        _authenticate(transport, settings, key, password)
    except BaseException:
        transport.close()
        raise
    transport.set_keepalive(15)  # lets a long-lived session notice a dead node
    # paramiko's transport thread polls its socket every 0.1 s when idle; a run that
    # keeps 1,000 sessions open (facts, then the LB and connectivity proofs) spent
    # most of its CPU on those wake-ups. Data still wakes it at once; closing the
    # transport does not wait for the poll; keepalives are sent on the poll.
    transport.sock.settimeout(IDLE_POLL_SECONDS)
    return SshSession(settings, transport, timeouts.command, timeouts.connect)


def _load_key(settings: SshSettings, secrets: list[str]) -> PKey:
    path = settings.key_file
    assert path is not None
    passphrase = passphrase_env = None
    if settings.passphrase is not None:
        passphrase, passphrase_env = settings.passphrase.read(), settings.passphrase.env
        secrets.append(passphrase)
    try:
        # cryptography wants the passphrase as bytes (paramiko's type stubs still say str).
        return PKey.from_path(path, passphrase.encode() if passphrase is not None else None)  # type: ignore[arg-type]
    except FileNotFoundError:
        raise TransportError("permission", f"private key file {path} does not exist") from None
    except PermissionError:
        raise TransportError("permission", f"private key file {path} is not readable (permission denied)") from None
    except IsADirectoryError:
        raise TransportError("permission", f"private key file {path} is a directory") from None
    except UnknownKeyType:
        raise TransportError(
            "auth", f"private key file {path}: unsupported key type (use ed25519, rsa or ecdsa)"
        ) from None
    except TypeError:
        # cryptography: "password was not given but the key is encrypted", or the reverse.
        if passphrase is None:
            raise TransportError(
                "auth", f"private key file {path} is encrypted: give its passphrase with passphraseEnv"
            ) from None
        return PKey.from_path(path, None)  # not encrypted: the passphrase is simply not needed
    except (ValueError, SSHException):
        if passphrase is not None:
            raise TransportError(
                "auth", f"private key file {path} could not be decrypted: wrong passphrase in ${passphrase_env}?"
            ) from None
        raise TransportError("auth", f"private key file {path} is not a private key acpcheck can read") from None


def _handshake(
    transport: paramiko.Transport, settings: SshSettings, timeouts: Timeouts, known_hosts: KnownHosts
) -> None:
    target = hostport(settings.host, settings.port)
    transport.banner_timeout = timeouts.handshake
    transport.handshake_timeout = timeouts.handshake
    transport.auth_timeout = timeouts.auth
    name = host_key_name(settings.host, settings.port)
    if settings.host_key_policy != "insecure":
        pinned = known_hosts.keys_for(name)
        if pinned:
            options = transport.get_security_options()
            options.key_types = preferred_key_types(tuple(options.key_types), set(pinned))
    try:
        transport.start_client(timeout=timeouts.handshake)
    except (SSHException, EOFError, OSError) as exc:
        cause = exc.__context__ if isinstance(exc, SSHException) else exc
        if isinstance(cause, TimeoutError):
            raise TransportError(
                "timeout", f"{target} accepted TCP but sent no SSH banner within {timeouts.handshake:g} s"
            ) from None
        if isinstance(cause, (EOFError, ConnectionError)):
            raise TransportError(
                "unreachable",
                (
                    f"{target} closed the connection before the SSH handshake (not sshd, or sshd refused: "
                    "MaxStartups, tcp wrappers)"
                ),
            ) from None
        raise TransportError("unreachable", f"SSH negotiation with {target} failed: {exc}") from None
    if not (transport.is_active() and transport.initial_kex_done):
        if not transport.remote_version:
            raise TransportError(
                "timeout", f"{target} accepted TCP but sent no SSH banner within {timeouts.handshake:g} s"
            )
        raise TransportError(
            "timeout", f"SSH key exchange with {target} did not finish within {timeouts.handshake:g} s"
        )
    known_hosts.verify(name, transport.get_remote_server_key(), settings.host_key_policy)


def _authenticate(transport: paramiko.Transport, settings: SshSettings, key: PKey | None, password: str | None) -> None:
    """Try the key, then the password; raise auth with what each attempt got."""
    where = settings.address
    refused: list[str] = []
    attempts: list[tuple[str, Callable[[], list[str]]]] = []
    if key is not None:
        attempts.append(
            (f"key {settings.key_file} ({fingerprint(key)})", lambda: transport.auth_publickey(settings.user, key))
        )
    if password is not None:
        attempts.append(("password", lambda: transport.auth_password(settings.user, password)))
    for what, attempt in attempts:
        try:
            further = attempt()
        except BadAuthenticationType as exc:
            refused.append(
                f"{what}: the server does not allow this method (allowed: {', '.join(exc.allowed_types) or 'none'})"
            )
            continue
        except AuthenticationException as exc:
            if "timeout" in str(exc).lower():
                raise TransportError(
                    "timeout", f"{where}: no answer to authentication within {transport.auth_timeout:g} s"
                ) from None
            refused.append(f"{what} was refused")
            continue
        except (SSHException, EOFError, OSError):
            raise TransportError("unreachable", f"{where}: the connection was lost during authentication") from None
        if not further:
            return
        refused.append(f"{what} was accepted but the server wants more ({', '.join(further)})")
    raise TransportError("auth", f"{where}: " + "; ".join(refused))


# ---------------------------------------------------------------------------
# Reuse


@dataclass
class SshPool:
    """The run's connection pool: one session per node, opened on first use and reused (facts, then remediation).

    Thread-safe: concurrent callers for one node share one connection attempt.
    A session whose connection died is replaced on the next ``session()`` call.
    ``close()`` is idempotent and safe from a signal handler or a
    KeyboardInterrupt path; a connection that finishes opening after it is
    closed at once (that ``session()`` call raises). The pool stays usable.

    Creating a pool raises this process's open-file soft limit towards the hard
    limit, once (``raise_open_file_limit``): every session holds a socket and
    every command two pipe ends, and 1,000 nodes would not fit in 1,024.
    """

    plan: ClusterPlan
    timeouts: Timeouts = DEFAULT_TIMEOUTS
    known_hosts: KnownHosts = field(default_factory=KnownHosts)
    _sessions: dict[str, SshSession] = field(default_factory=dict, init=False, repr=False)
    _locks: dict[str, threading.Lock] = field(default_factory=dict, init=False, repr=False)
    # Re-entrant: close() may run in a signal handler on a thread that holds it.
    _lock: threading.RLock = field(default_factory=threading.RLock, init=False, repr=False)
    _generation: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        raise_open_file_limit()

    def session(self, node: str | Node) -> SshSession:
        spec = self._node(node)
        with self._lock:
            node_lock = self._locks.setdefault(spec.name, threading.Lock())
        with node_lock:
            current = self._sessions.get(spec.name)
            if current is not None and current.is_active:
                return current
            generation = self._generation
            fresh = connect_node(self.plan, spec, timeouts=self.timeouts, known_hosts=self.known_hosts)
            with self._lock:
                if self._generation == generation:
                    self._sessions[spec.name] = fresh
                    return fresh
            fresh.close()
            raise TransportError(
                "unreachable", f"{fresh.settings.address}: the connection pool was closed while this connection opened"
            )

    def close(self) -> None:
        """Close every session. Idempotent; never waits for a connection attempt in progress.

        The connections are cut at once (``SshSession.abort``, lock-free); the
        tidy close runs on a helper thread joined for at most five seconds, so
        a signal handler that interrupted a thread inside paramiko (holding one
        of its locks) cannot deadlock on it.
        """
        with self._lock:
            self._generation += 1
            sessions, self._sessions = list(self._sessions.values()), {}
        if not sessions:
            return
        for session in sessions:
            session.abort()
        closer = threading.Thread(target=_close_all, args=(sessions,), name="acpcheck pool close", daemon=True)
        closer.start()
        closer.join(5.0)

    def __enter__(self) -> SshPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _node(self, node: str | Node) -> Node:
        if not isinstance(node, str):
            return node
        for spec in self.plan.spec.nodes:
            if spec.name == node:
                return spec
        raise KeyError(f"no node {node!r} in plan {self.plan.metadata.name!r}")


def _close_all(sessions: list[SshSession]) -> None:
    for session in sessions:
        try:
            session.close()
        except Exception as exc:  # noqa: BLE001 — one broken connection must not keep the others open
            log.debug("closing %r: %s", session, exc)


#: Soft open-file limit ``raise_open_file_limit`` aims for when the hard limit is unlimited.
NOFILE_TARGET = 1 << 20
_nofile_lock = threading.Lock()
_nofile_done = False


def raise_open_file_limit() -> tuple[int, int] | None:
    """Raise RLIMIT_NOFILE's soft limit to the hard limit (at most ``NOFILE_TARGET``), once per process.

    Returns the (soft, hard) limits after the first call, None on later calls.
    A failure (a platform that refuses) is logged at debug level and ignored.
    """
    global _nofile_done
    with _nofile_lock:
        if _nofile_done:
            return None
        _nofile_done = True
        try:
            soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            want = NOFILE_TARGET if hard == resource.RLIM_INFINITY else min(hard, NOFILE_TARGET)
            if soft != resource.RLIM_INFINITY and soft < want:
                resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
                log.debug("raised the open-file limit from %d to %d", soft, want)
            return resource.getrlimit(resource.RLIMIT_NOFILE)
        except (OSError, ValueError) as exc:
            log.debug("cannot raise the open-file limit: %s", exc)
            return None
