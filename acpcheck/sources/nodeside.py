"""Listeners and connectors that run on the nodes, and how their answers are read.

The load-balancer proof (``sources.lb``) and the connectivity proof
(``sources.connectivity``) both need, on a node that has nothing but POSIX ``sh``
and one usual tool, a short-lived listener that says which node it is, and (for
connectivity) a client that connects from the node and reports what answered.

Listener (``listener_command``), started with ``NodeTransport.start`` (its own
process group, ended by the node itself at the deadline). Python runs with ``-S``
(the programs use the standard library only; skipping ``site`` saves a third of
its start-up, which every node pays twice):

- picks the first tool the node has: ``python3``, ``platform-python``
  (``/usr/libexec/platform-python`` on RHEL 8), ``perl``, ``socat``, ``nc``
  (OpenBSD, BusyBox, Ncat or traditional netcat). Python and Perl serve TCP and
  UDP; socat and nc serve TCP only (a UDP port is then "notool"). Without any of
  them it prints ``acpcheck-notool`` and exits: the result is MANUAL, with
  ``manual_listener`` as the command to run by hand;
- binds every port it is given; a port that is in use is reported (``busy``) and
  left alone: no ``SO_REUSEPORT``, and ``SO_REUSEADDR`` only for TCP, where Linux
  still refuses a port that something listens on;
- answers each connection with ``acpcheck <nonce> <identity>`` (the nonce is new
  for every run, so a stale listener or another host is never taken for a node);
  an HTTP request (an LB's HTTP health check) gets the same line as a 200 page;
- prints ``acpcheck-port <proto> <port> ok|busy|error|notool`` per port, then
  ``acpcheck-ready``; when the runner's connection is gone (Ctrl-C, runner killed)
  it ends at once, without waiting for its deadline. The Python listener learns
  that from epoll on its own stdout (the reading end closed) and otherwise writes
  nothing: at 1,000 nodes a heartbeat line per node twice a second kept the
  runner busy decrypting them. Perl and the shell tools write an empty line every
  second or so instead, and end when that write fails.

Connector (``connector_command``), run with ``NodeTransport.run``: reads targets
from stdin, one per line (``<index> <tcp|udp> <host> <port> <id|tcp>``), connects
to all of them in parallel with a timeout each, and prints per target
``acpcheck-conn <index> data <hex>`` (what came back), ``closed``, ``ok``
(``tcp`` mode: connected, nothing read), ``refused``, ``timeout`` or
``unreachable <reason>``. What answered is judged here (``classify``), so every
tool reports the same way.
"""

from __future__ import annotations

import functools
import re
import shlex
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from acpcheck.transport.settings import ProxySettings

#: What a client sends first; a listener answers it (and anything else) with its hello.
QUERY = b"ACPCHECK?\n"
#: Tools a listener may use, in order of preference.
TOOLS = ("python3", "platform-python", "perl", "socat", "nc")
_IDENT = re.compile(r"^[A-Za-z0-9._-]{1,63}$")


@functools.cache
def node_program(name: str) -> str:
    """The text of a program run on the nodes: ``acpcheck/sources/nodeprograms/<name>``.

    The listener and the connector each come in Python (``.py``, one thread on epoll;
    run with ``-S``), Perl (``.pl``) and sh for socat/nc (``.sh``, after
    ``nc_flavour.sh``, which tells the nc flavours apart); the VRRP probe is Python only.
    They are package data, so the test suite checks them with ``sh -n``, ``perl -c`` and
    ruff (tests/checks/test_nodeprograms.py); each is passed to the node on its command
    line, read once per run."""
    text = resources.files("acpcheck.sources").joinpath("nodeprograms", name).read_text(encoding="utf-8")
    return text.rstrip("\n")


_HELLO = re.compile(rb"acpcheck ([0-9a-f]{8,64}) ([A-Za-z0-9._-]{1,63})")


def identity(name: str, index: int) -> str:
    """What a node's listener calls itself: its plan name when that is a plain word, else ``node-<index>``."""
    return name if _IDENT.match(name) else f"node-{index}"


def hello(nonce: str, ident: str) -> str:
    return f"acpcheck {nonce} {ident}"


@dataclass(frozen=True)
class Answer:
    """What one connection brought back, judged.

    kind: ``node`` (a listener of this run: ``ident``), ``stale`` (an acpcheck
    listener of another run), ``foreign`` (something else answered: ``detail``
    shows its first bytes), ``closed`` (accepted, then closed without a word),
    ``silent`` (accepted, nothing within the timeout), ``connected`` (tcp mode),
    ``refused``, ``timeout``, ``unreachable`` (``detail`` says why), ``notool``.
    """

    kind: str
    ident: str = ""
    detail: str = ""

    @property
    def answered(self) -> bool:
        return self.kind == "node"

    @property
    def reached(self) -> bool:
        """A TCP connection was accepted (whoever accepted it)."""
        return self.kind in ("node", "stale", "foreign", "closed", "silent", "connected")


def printable(data: bytes, limit: int = 48) -> str:
    text = data[:limit].decode("ascii", errors="replace")
    text = "".join(ch if ch.isprintable() else "." for ch in text)
    return repr(text + ("…" if len(data) > limit else ""))


def classify(data: bytes, nonce: str) -> Answer:
    """Judge the bytes a connection returned."""
    match = _HELLO.search(data)
    if match and match.group(1).decode() == nonce:
        return Answer("node", match.group(2).decode())
    if match:
        return Answer("stale", detail=f"an acpcheck listener of another run ({match.group(2).decode()})")
    if data:
        return Answer("foreign", detail=printable(data))
    return Answer("closed")


# ---------------------------------------------------------------------------
# The listener


def listener_command(nonce: str, ident: str, specs: list[tuple[str, int]], *, family: int = 4, bind: str = "") -> str:
    """The sh command line of a listener for ``specs`` (``[("tcp", 6443), ("udp", 6081)]``).

    ``bind``: the address to listen on (default: every address of ``family``).
    """
    if not re.fullmatch(r"[0-9a-f]{8,64}", nonce) or not _IDENT.match(ident):
        raise ValueError("the nonce is hex and the identity a plain word")
    if bind and not re.fullmatch(r"[0-9A-Fa-f.:]+", bind):
        raise ValueError(f"bind address {bind!r} is not an IP address")
    spec_words = " ".join(f"{proto}/{int(port)}" for proto, port in specs)
    q = shlex.quote
    args = f'"$N" "$I" {family} "$B" $SPECS'
    lines = [
        f"N={nonce} I={q(ident)} B={q(bind)} SPECS={q(spec_words)}",
        f"PY={q(node_program('listener.py'))}",
        f"PL={q(node_program('listener.pl'))}",
        "for P in python3 platform-python /usr/libexec/platform-python; do",
        '  case $P in /*) [ -x "$P" ] || continue ;; *) command -v "$P" >/dev/null 2>&1 || continue ;; esac',
        f'  echo "acpcheck-tool $P"; exec "$P" -S -c "$PY" {args}',
        "done",
        f'if command -v perl >/dev/null 2>&1; then echo "acpcheck-tool perl"; exec perl -e "$PL" {args}; fi',
        "T=",
        "command -v nc >/dev/null 2>&1 && T=nc",
        "command -v socat >/dev/null 2>&1 && T=socat",
        'if [ -z "$T" ]; then echo acpcheck-notool; exit 3; fi',
        'echo "acpcheck-tool $T"',
        node_program("nc_flavour.sh"),
        node_program("listener.sh"),
    ]
    return "\n".join(lines)


@dataclass
class ListenerReport:
    """What a listener said about itself: its tool and each port's state."""

    tool: str | None = None
    ports: dict[str, str] = field(default_factory=dict)  # "tcp/6443" -> ok|busy|error|notool (+ reason)
    ready: bool = False
    notool: bool = False


def parse_listener(stdout: str) -> ListenerReport:
    report = ListenerReport()
    for line in stdout.splitlines():
        words = line.split()
        if not words:
            continue
        if words[0] == "acpcheck-tool" and len(words) > 1:
            report.tool = words[1].rsplit("/", 1)[-1]
        elif words[0] == "acpcheck-port" and len(words) >= 4:
            state = words[3] + (" " + words[4].replace("_", " ") if len(words) > 4 and words[3] != "ok" else "")
            report.ports[f"{words[1]}/{words[2]}"] = state
        elif words[0] == "acpcheck-ready":
            report.ready = True
        elif words[0] == "acpcheck-notool":
            report.notool = True
    return report


def manual_listener(ident: str, proto: str, port: int) -> str:
    """What a person runs on a node without any listener tool (one TCP port)."""
    if proto != "tcp":
        return f"on {ident}, anything that answers UDP {port}, e.g. `python3 -c` with a UDP echo"
    return f"on {ident}: `while true; do echo {ident} | nc -l {port}; done` (or any server on TCP {port})"


# ---------------------------------------------------------------------------
# The connector


def connector_command(timeout: float, parallel: int = 64, tries: int = 1) -> str:
    """The sh command line of a connector; the targets come on stdin (``connector_input``).

    ``tries``: attempts for a target that gave no answer at all (timeout, silent,
    unreachable), the repeats after every other target (Python connector only)."""
    q = shlex.quote
    seconds = max(1, round(timeout))
    return "\n".join(
        [
            f"TO={seconds} PAR={int(parallel)}",
            f"PY={q(node_program('connector.py'))}",
            f"PL={q(node_program('connector.pl'))}",
            "for P in python3 platform-python /usr/libexec/platform-python; do",
            '  case $P in /*) [ -x "$P" ] || continue ;; *) command -v "$P" >/dev/null 2>&1 || continue ;; esac',
            f'  exec "$P" -S -c "$PY" {timeout:g} "$PAR" {int(tries)}',
            "done",
            f'if command -v perl >/dev/null 2>&1; then exec perl -e "$PL" {timeout:g} "$PAR"; fi',
            "T=",
            "command -v nc >/dev/null 2>&1 && T=nc",
            "command -v socat >/dev/null 2>&1 && T=socat",
            'if [ -z "$T" ]; then echo acpcheck-notool; exit 3; fi',
            node_program("nc_flavour.sh"),
            node_program("connector.sh"),
        ]
    )


@dataclass(frozen=True)
class Target:
    proto: str  # tcp | udp
    host: str
    port: int
    mode: str = "id"  # id: expect a listener's hello; tcp: a TCP connection is enough


def connector_input(targets: list[Target]) -> str:
    for target in targets:
        if not re.fullmatch(r"[A-Za-z0-9.:_-]+", target.host):
            raise ValueError(f"{target.host!r} is not a host name or address")
    return "".join(f"{index} {t.proto} {t.host} {t.port} {t.mode}\n" for index, t in enumerate(targets))


def parse_connector(stdout: str, count: int, nonce: str) -> list[Answer]:
    """One Answer per target (``unreachable`` for a target the connector never reported)."""
    if "acpcheck-notool" in stdout.split():
        return [
            Answer("notool", detail="no python3, platform-python, perl, socat or nc on the node") for _ in range(count)
        ]
    answers: list[Answer | None] = [None] * count
    for line in stdout.splitlines():
        words = line.split()
        if len(words) < 3 or words[0] != "acpcheck-conn" or not words[1].isdigit() or int(words[1]) >= count:
            continue
        kind, rest = words[2], " ".join(words[3:])
        if kind == "data":
            try:
                answers[int(words[1])] = classify(bytes.fromhex(rest), nonce)
            except ValueError:
                answers[int(words[1])] = Answer("foreign", detail="unreadable answer")
        elif kind == "ok":
            answers[int(words[1])] = Answer("connected")
        else:
            answers[int(words[1])] = Answer(kind, detail=rest.replace("_", " "))
    return [answer or Answer("unreachable", detail="the connector did not report it") for answer in answers]


# ---------------------------------------------------------------------------
# From the runner


def probe(host: str, port: int, nonce: str, *, proxy: ProxySettings | None, timeout: float) -> Answer:
    """One TCP connection from the runner (through ``proxy`` when given): what answered."""
    from acpcheck.transport.errors import TransportError
    from acpcheck.transport.net import open_tcp

    try:
        sock = open_tcp(host, port, proxy=proxy, timeout=timeout)
    except TransportError as error:
        if error.kind == "timeout":
            return Answer("timeout", detail=error.message)
        if "refused" in error.message or "SOCKS5 reply 5" in error.message:
            return Answer("refused", detail=error.message)
        return Answer("unreachable", detail=error.message)
    data = b""
    try:
        sock.settimeout(min(timeout, 1.0))
        sock.sendall(QUERY)
        end = time.monotonic() + min(timeout, 1.0)
        while len(data) < 1024 and time.monotonic() < end:
            chunk = sock.recv(1024)
            if not chunk:
                break
            data += chunk
            if _HELLO.search(data) and data.endswith(b"\n"):
                break
    except TimeoutError:
        if not data:
            return Answer("silent", detail=f"accepted, but nothing came back within {min(timeout, 1.0):g} s")
    except OSError as error:
        if not data:
            return Answer("closed", detail=f"accepted, then {error.strerror or type(error).__name__}")
    finally:
        sock.close()
    return classify(data, nonce)


# ---------------------------------------------------------------------------
# Listeners on many nodes at once


def busy_ports(facts: Any, wanted: list[tuple[str, int]]) -> dict[str, str]:
    """Of ``wanted``, the ports something already listens on (from the node's facts)."""
    taken = {(listener.protocol, listener.port): listener for listener in getattr(facts, "listeners", None) or ()}
    busy = {}
    for proto, port in wanted:
        listener = taken.get((proto, port))
        if listener is not None:
            busy[f"{proto}/{port}"] = (
                f"busy {listener.process or 'a process'} listens on {listener.address}, per the node's facts"
            )
    return busy


class ListenerState(BaseModel):
    """One node's listener, as the evidence records it."""

    model_config = ConfigDict(extra="forbid")

    node: str
    ident: str
    #: ok (started; see ports) | notool | unreachable (no session, or facts failed) | error (would not start)
    state: str
    tool: str | None = None
    #: "tcp/6443" -> ok | busy … | error … | notool (never started: busy per the node's facts)
    ports: dict[str, str] = Field(default_factory=dict)
    detail: str = ""
    #: the listener is known to be gone (stopped and its process group checked), False when not confirmed
    cleaned: bool | None = None
    cleanup: str = ""
    #: why it had already ended when it was to be stopped (it ended during the probe; "" when it had not)
    ended: str = ""
    #: connections towards it that failed while it may have been gone: they prove nothing (see ``ended``)
    unproven_after_end: int = 0

    def port_state(self, proto: str, port: int) -> str:
        return self.ports.get(f"{proto}/{port}", "")


#: Seconds a listener may take to say it is ready.
READY_TIMEOUT = 10.0
#: Nodes whose listeners start (or stop, or whose connectors run) at once, from the runner.
NODES_AT_ONCE = 64


def _why_ended(handle: Any) -> str:
    """How a listener that should still be running ended: its connection was lost, or its exit status and last words."""
    from acpcheck.transport.errors import TransportError

    try:
        result = handle.wait(0)
    except TransportError as error:
        return error.message[:300]
    last = (result.stderr.strip().splitlines() or [""])[-1][:200]
    return f"exit status {result.exit_status} after {result.finished_at - result.started_at:.0f} s" + (
        f": {last}" if last else ""
    )


class ListenerSet:
    """Listeners on many nodes, started in parallel and always stopped (``with`` block).

    ``deadline`` is the node-side limit: each node ends its listener itself after that
    many seconds, whatever happens to the runner (see ``transport.background``).
    """

    def __init__(self, pool: Any, nonce: str, deadline: float, *, bind: str = ""):
        self.pool = pool
        self.nonce = nonce
        self.deadline = deadline
        self.bind = bind
        self.states: dict[str, ListenerState] = {}
        self._handles: dict[str, Any] = {}

    def __enter__(self) -> ListenerSet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, wanted: list[tuple[Any, str, list[tuple[str, int]], dict[str, str]]]) -> dict[str, ListenerState]:
        """``wanted``: (plan node, identity, [(proto, port) to listen on], {"tcp/6443": "busy …"} already known)."""
        with ThreadPoolExecutor(
            max_workers=max(1, min(NODES_AT_ONCE, len(wanted))), thread_name_prefix="acpcheck-listen"
        ) as executor:
            for state in executor.map(lambda item: self._start_isolated(*item), wanted):
                self.states[state.node] = state
        return self.states

    def _start_isolated(
        self, node: Any, ident: str, specs: list[tuple[str, int]], known: dict[str, str]
    ) -> ListenerState:
        """``_start_one``, where anything unexpected is that node's error, never the whole proof's."""
        from acpcheck.transport.errors import unexpected

        try:
            return self._start_one(node, ident, specs, known)
        except Exception as error:  # noqa: BLE001 - one node's surprise must not cost every node's evidence
            return ListenerState(
                node=node.name, ident=ident, state="error", ports=dict(known), detail=unexpected(error)[:300]
            )

    def _start_one(self, node: Any, ident: str, specs: list[tuple[str, int]], known: dict[str, str]) -> ListenerState:
        from acpcheck.transport.errors import TransportError

        state = ListenerState(node=node.name, ident=ident, state="ok", ports=dict(known))
        if not specs:
            return state
        family = 4 if node.ipv4 is not None else 6
        try:
            session = self.pool.session(node)
            handle = session.start(
                listener_command(self.nonce, ident, specs, family=family, bind=self.bind), deadline=self.deadline
            )
        except TransportError as error:
            return state.model_copy(update={"state": "unreachable", "detail": f"{error.kind}: {error.message}"})
        self._handles[node.name] = handle
        out, err = handle.wait_output(lambda text: "acpcheck-ready" in text or "acpcheck-notool" in text, READY_TIMEOUT)
        report = parse_listener(out)
        state.tool = report.tool
        state.ports.update(report.ports)
        if report.notool:
            state.state = "notool"
            state.detail = "no python3, platform-python, perl, socat or nc on the node"
        elif not report.ready:
            state.state = "error"
            state.detail = (err.strip().splitlines() or ["the listener did not say it was ready"])[-1][:300]
        return state

    def lost(self) -> bool:
        """Whether every started listener has ended (the run's connections were cut: Ctrl-C)."""
        handles = list(self._handles.values())
        return bool(handles) and not any(handle.running() for handle in handles)

    def stop(self) -> None:
        """Stop every listener (in parallel); record whether each is known to be gone,
        and which had ended before (``ended``: connections towards them prove nothing)."""
        from acpcheck.transport.errors import TransportError, unexpected

        handles, self._handles = self._handles, {}
        for name, handle in handles.items():
            if name in self.states and not handle.running():
                self.states[name].ended = _why_ended(handle)

        def stop_one(item: tuple[str, Any]) -> tuple[str, bool, str]:
            name, handle = item
            try:
                handle.stop(timeout=5.0)
                return name, True, ""
            except TransportError as error:
                return name, False, f"{error.message} (the node ends it itself within {self.deadline:g} s of its start)"
            except Exception as error:  # noqa: BLE001 - as in _start_isolated
                return (
                    name,
                    False,
                    f"{unexpected(error)} (the node ends it itself within {self.deadline:g} s of its start)",
                )

        if not handles:
            return
        with ThreadPoolExecutor(
            max_workers=max(1, min(NODES_AT_ONCE, len(handles))), thread_name_prefix="acpcheck-stop"
        ) as executor:
            for name, cleaned, detail in executor.map(stop_one, handles.items()):
                if name in self.states:
                    self.states[name].cleaned = cleaned
                    self.states[name].cleanup = detail
