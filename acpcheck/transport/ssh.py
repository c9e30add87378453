"""SSH to a node with paramiko: one connection per node, every step time-bounded.

``connect(settings)`` opens a TCP connection (directly, or through a SOCKS5 proxy
with python-socks), negotiates SSH, checks the host key against acpcheck's
known_hosts file under the plan's policy, and logs in with a private key and/or a
password. It returns an ``SshSession`` whose ``run()`` executes one command per
channel on the same connection, so the facts probe and later remediation share
one login.

Determinism: no SSH agent, no ``~/.ssh`` keys, no ``~/.ssh/config`` — only what
the plan says. Bounded time: TCP connect (and the SOCKS5 handshake), SSH banner
and key exchange, authentication and each command have their own timeout
(``Timeouts``); a dead node, a dead proxy or a hung command costs at most those.
Failures are ``TransportError`` with a ``GatherFailure`` kind and a message that
names hosts, ports, users, files and variables but never a secret value.
"""

from __future__ import annotations

import logging
import select
import shlex
import socket
import threading
import time
from collections.abc import Callable, Iterator
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
from python_socks import ProxyConnectionError, ProxyError, ProxyTimeoutError, ProxyType
from python_socks.sync import Proxy

from acpcheck.transport.errors import TransportError, scrub
from acpcheck.transport.hostkeys import KnownHosts, fingerprint, host_key_name, preferred_key_types
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


class SshSession:
    """A logged-in connection to one node; ``run()`` may be called many times."""

    def __init__(self, settings: SshSettings, transport: paramiko.Transport, command_timeout: float):
        self.settings = settings
        self._transport = transport
        self.command_timeout = command_timeout

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

    def close(self) -> None:
        self._transport.close()

    def run(self, command: str, timeout: float | None = None, *, stdin: str | bytes | None = None) -> CommandResult:
        """Run ``command`` on the node; raise TransportError("timeout") after ``timeout`` seconds.

        A non-zero exit status is a result, not an exception. On timeout the
        channel is closed (the connection stays usable); note that a remote
        process that ignores its closed pipes may keep running on the node.
        """
        deadline = _Deadline(self.command_timeout if timeout is None else timeout, f"{self.settings.address}: command")
        started = time.time()
        try:
            channel = self._transport.open_session(timeout=deadline.remaining())
        except ChannelException as exc:
            raise TransportError("permission", f"{self.settings.address}: the server refused a session channel ({exc.text})") from None
        except SSHException as exc:
            if deadline.expired:
                raise deadline.error() from None
            raise TransportError("unreachable", f"{self.settings.address}: cannot open a channel: {exc}") from None
        try:
            return self._exec(channel, command, stdin, started, deadline)
        finally:
            channel.close()

    def _exec(self, channel: paramiko.Channel, command: str, stdin: str | bytes | None, started: float, deadline: _Deadline) -> CommandResult:
        where = self.settings.address
        # paramiko waits for the exec reply without a timeout; closing the channel
        # at the deadline wakes it up. No fileno() exists yet, so closing is safe.
        watchdog = threading.Timer(deadline.remaining(), channel.close)
        watchdog.daemon = True
        watchdog.start()
        try:
            channel.exec_command(command)
        except SSHException as exc:
            if deadline.expired:
                raise deadline.error() from None
            raise TransportError("unreachable", f"{where}: the server did not run the command: {exc}") from None
        finally:
            watchdog.cancel()
        channel.settimeout(deadline.remaining())
        try:
            if stdin is not None:
                channel.sendall(stdin.encode() if isinstance(stdin, str) else stdin)
            channel.shutdown_write()
        except (OSError, SSHException):
            if deadline.expired:
                raise deadline.error() from None
            # Otherwise the command exited without reading all its input; its output still counts.
        input_sent = time.time()

        out: list[bytes] = []
        err: list[bytes] = []
        first_output: float | None = None
        ready = channel.fileno()  # readable when stdout or stderr has data, and at EOF
        while True:
            while channel.recv_ready():
                chunk = channel.recv(65536)
                if not chunk:
                    break
                if first_output is None:
                    first_output = time.time()
                out.append(chunk)
            while channel.recv_stderr_ready():
                chunk = channel.recv_stderr(65536)
                if not chunk:
                    break
                err.append(chunk)
            if channel.eof_received or channel.closed:
                if channel.recv_ready() or channel.recv_stderr_ready():
                    continue  # data that arrived together with the EOF
                break
            if deadline.expired:
                raise deadline.error()
            # Capped so that a missed wake-up costs half a second, never a hang.
            select.select([ready], [], [], min(deadline.remaining(), 0.5))
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

    def run_as_root(self, command: str, timeout: float | None = None, *, stdin: str | bytes | None = None) -> CommandResult:
        """Run ``command`` as root: directly for root, through ``sudo -n`` otherwise.

        ``sudo -n`` never prompts: without passwordless sudo the result is a
        non-zero exit with sudo's message on stderr, not a hang.
        """
        if not self.settings.is_root:
            command = f"sudo -n sh -c {shlex.quote(command)}"
        return self.run(command, timeout, stdin=stdin)


# ---------------------------------------------------------------------------
# Connecting


def connect(settings: SshSettings, *, timeouts: Timeouts = DEFAULT_TIMEOUTS, known_hosts: KnownHosts | None = None) -> SshSession:
    """Open and authenticate a connection to one node; raise TransportError otherwise."""
    secrets: list[str] = []  # every secret value read, to scrub from any message we pass on
    try:
        return _connect(settings, timeouts, known_hosts or KnownHosts(), secrets)
    except TransportError as exc:
        raise exc.scrubbed(secrets) from None
    except Exception as exc:  # noqa: BLE001 — a paramiko/socket failure we did not anticipate: still a clean, secret-free error
        raise TransportError("unreachable", f"{settings.address}: unexpected {type(exc).__name__}: {scrub(str(exc), secrets)}") from None


def connect_node(plan: ClusterPlan, node: Node, *, timeouts: Timeouts = DEFAULT_TIMEOUTS, known_hosts: KnownHosts | None = None) -> SshSession:
    """``connect(resolve_ssh(plan, node))``."""
    return connect(resolve_ssh(plan, node), timeouts=timeouts, known_hosts=known_hosts)


def _connect(settings: SshSettings, timeouts: Timeouts, known_hosts: KnownHosts, secrets: list[str]) -> SshSession:
    # Local problems (missing key, unset variable) first: they need no network.
    if settings.key_file is None and settings.password is None:
        raise TransportError("auth", f"{settings.address}: no credentials: set ssh.auth.privateKeyFile, passwordEnv or passwordFile")
    key = _load_key(settings, secrets) if settings.key_file is not None else None
    password = None
    if settings.password is not None:
        password = settings.password.read()
        secrets.append(password)

    sock = _open_socket(settings, timeouts, secrets)
    transport = paramiko.Transport(sock)
    try:
        _handshake(transport, settings, timeouts, known_hosts)
        _authenticate(transport, settings, key, password)
    except BaseException:
        transport.close()
        raise
    transport.set_keepalive(15)  # lets a long-lived session notice a dead node
    return SshSession(settings, transport, timeouts.command)


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
        raise TransportError("auth", f"private key file {path}: unsupported key type (use ed25519, rsa or ecdsa)") from None
    except TypeError:
        # cryptography: "password was not given but the key is encrypted", or the reverse.
        if passphrase is None:
            raise TransportError("auth", f"private key file {path} is encrypted: give its passphrase with passphraseEnv") from None
        return PKey.from_path(path, None)  # not encrypted: the passphrase is simply not needed
    except (ValueError, SSHException):
        if passphrase is not None:
            raise TransportError("auth", f"private key file {path} could not be decrypted: wrong passphrase in ${passphrase_env}?") from None
        raise TransportError("auth", f"private key file {path} is not a private key acpcheck can read") from None


def _open_socket(settings: SshSettings, timeouts: Timeouts, secrets: list[str]) -> socket.socket:
    target = hostport(settings.host, settings.port)
    if settings.proxy is not None:
        return _open_via_proxy(settings, timeouts, secrets)
    try:
        return socket.create_connection((settings.host, settings.port), timeout=timeouts.connect)
    except socket.gaierror as exc:
        raise TransportError("unreachable", f"cannot resolve {settings.host}: {exc.strerror}") from None
    except TimeoutError:
        raise TransportError("timeout", f"TCP connect to {target} timed out after {timeouts.connect:g} s") from None
    except ConnectionRefusedError:
        raise TransportError("unreachable", f"{target} refused the connection (no sshd listening on that port?)") from None
    except OSError as exc:  # no route to host, network unreachable …
        raise TransportError("unreachable", f"cannot connect to {target}: {exc.strerror or type(exc).__name__}") from None


def _open_via_proxy(settings: SshSettings, timeouts: Timeouts, secrets: list[str]) -> socket.socket:
    proxy = settings.proxy
    assert proxy is not None
    via = f"SOCKS5 proxy {proxy.address}"
    target = hostport(settings.host, settings.port)
    username = proxy.read_username()
    password = proxy.password.read() if proxy.password is not None else None
    if password is not None:
        secrets.append(password)
    if (username is None) != (password is None):
        raise TransportError("proxy-auth", f"{via}: give both a username (username/usernameEnv) and a password (passwordEnv/passwordFile), or neither")
    client = Proxy(ProxyType.SOCKS5, proxy.host, proxy.port, username=username, password=password, rdns=proxy.remote_dns)
    try:
        return client.connect(settings.host, settings.port, timeout=timeouts.connect)
    except ProxyConnectionError as exc:  # could not reach the proxy itself
        cause = exc.__cause__
        if isinstance(cause, TimeoutError):
            raise TransportError("proxy", f"{via} did not accept a connection within {timeouts.connect:g} s") from None
        if isinstance(cause, ConnectionRefusedError):
            raise TransportError("proxy", f"{via} refused the connection (is the proxy running?)") from None
        if isinstance(cause, socket.gaierror):
            raise TransportError("proxy", f"cannot resolve the proxy host {proxy.host}: {cause.strerror}") from None
        reason = cause.strerror if isinstance(cause, OSError) and cause.strerror else type(cause).__name__
        raise TransportError("proxy", f"cannot connect to {via}: {reason}") from None
    except ProxyTimeoutError:
        raise TransportError("timeout", f"no answer within {timeouts.connect:g} s while connecting to {target} through {via}") from None
    except ProxyError as exc:
        text = scrub(str(exc), secrets)
        if exc.error_code is not None:  # a SOCKS5 reply: the proxy could not reach the node
            raise TransportError("proxy", f"{via} could not connect to {target}: {text} (SOCKS5 reply {exc.error_code})") from None
        if "no acceptable authentication" in text.lower():
            wanted = (
                "does not accept username/password login"
                if username is not None
                else "requires a username and password (set username/usernameEnv and passwordEnv/passwordFile)"
            )
            raise TransportError("proxy-auth", f"{via} {wanted}") from None
        if "authentication" in text.lower():
            raise TransportError("proxy-auth", f"{via} rejected the username and password") from None
        raise TransportError("proxy", f"{via}: {text}") from None
    except socket.gaierror as exc:  # the node's name, resolved locally for socks5:// URLs
        raise TransportError("unreachable", f"cannot resolve {settings.host}: {exc.strerror}") from None
    except OSError as exc:
        raise TransportError("proxy", f"{via}: connection failed: {exc.strerror or type(exc).__name__}") from None


def _handshake(transport: paramiko.Transport, settings: SshSettings, timeouts: Timeouts, known_hosts: KnownHosts) -> None:
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
            raise TransportError("timeout", f"{target} accepted TCP but sent no SSH banner within {timeouts.handshake:g} s") from None
        if isinstance(cause, (EOFError, ConnectionError)):
            raise TransportError(
                "unreachable", f"{target} closed the connection before the SSH handshake (not sshd, or sshd refused: MaxStartups, tcp wrappers)"
            ) from None
        raise TransportError("unreachable", f"SSH negotiation with {target} failed: {exc}") from None
    if not (transport.is_active() and transport.initial_kex_done):
        if not transport.remote_version:
            raise TransportError("timeout", f"{target} accepted TCP but sent no SSH banner within {timeouts.handshake:g} s")
        raise TransportError("timeout", f"SSH key exchange with {target} did not finish within {timeouts.handshake:g} s")
    known_hosts.verify(name, transport.get_remote_server_key(), settings.host_key_policy)


def _authenticate(transport: paramiko.Transport, settings: SshSettings, key: PKey | None, password: str | None) -> None:
    """Try the key, then the password; raise auth with what each attempt got."""
    where = settings.address
    refused: list[str] = []
    attempts: list[tuple[str, Callable[[], list[str]]]] = []
    if key is not None:
        attempts.append((f"key {settings.key_file} ({fingerprint(key)})", lambda: transport.auth_publickey(settings.user, key)))
    if password is not None:
        attempts.append(("password", lambda: transport.auth_password(settings.user, password)))
    for what, attempt in attempts:
        try:
            further = attempt()
        except BadAuthenticationType as exc:
            refused.append(f"{what}: the server does not allow this method (allowed: {', '.join(exc.allowed_types) or 'none'})")
            continue
        except AuthenticationException as exc:
            if "timeout" in str(exc).lower():
                raise TransportError("timeout", f"{where}: no answer to authentication within {transport.auth_timeout:g} s") from None
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
    """One session per node, opened on first use and reused (facts, then remediation).

    Thread-safe: concurrent callers for one node share one connection attempt.
    A session whose connection died is replaced on the next ``session()`` call.
    """

    plan: ClusterPlan
    timeouts: Timeouts = DEFAULT_TIMEOUTS
    known_hosts: KnownHosts = field(default_factory=KnownHosts)
    _sessions: dict[str, SshSession] = field(default_factory=dict, init=False, repr=False)
    _locks: dict[str, threading.Lock] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def session(self, node: str | Node) -> SshSession:
        spec = self._node(node)
        with self._lock:
            node_lock = self._locks.setdefault(spec.name, threading.Lock())
        with node_lock:
            current = self._sessions.get(spec.name)
            if current is not None and current.is_active:
                return current
            fresh = connect_node(self.plan, spec, timeouts=self.timeouts, known_hosts=self.known_hosts)
            self._sessions[spec.name] = fresh
            return fresh

    def close(self) -> None:
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            session.close()

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
