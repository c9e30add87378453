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

import re
import shlex
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from acpcheck.transport.settings import ProxySettings

#: What a client sends first; a listener answers it (and anything else) with its hello.
QUERY = b"ACPCHECK?\n"
#: Tools a listener may use, in order of preference.
TOOLS = ("python3", "platform-python", "perl", "socat", "nc")
_IDENT = re.compile(r"^[A-Za-z0-9._-]{1,63}$")
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

# One thread, one epoll loop: no thread per connection. A node probed by hundreds of
# peers at once (every node probes every control-plane node) answers all of them
# with the CPU of a few system calls each, on nodes that share cores with the lab's
# other nodes or with the workloads of a real one.
_PY_LISTENER = r"""
import errno, os, selectors, socket, stat, sys, time
n, i, f, b = sys.argv[1:5]
h = ("acpcheck %s %s\n" % (n, i)).encode()
page = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " + str(len(h)).encode() + b"\r\nConnection: close\r\n\r\n" + h
fam = socket.AF_INET6 if f == "6" else socket.AF_INET
host = b or ("::" if f == "6" else "0.0.0.0")
sel = selectors.DefaultSelector()
out = []
for spec in sys.argv[5:]:
    p, port = spec.split("/")
    k = socket.socket(fam, socket.SOCK_STREAM if p == "tcp" else socket.SOCK_DGRAM)
    try:
        if fam == socket.AF_INET6 and not b:
            k.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        if p == "tcp":
            k.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        k.bind((host, int(port)))
        if p == "tcp":
            k.listen(4096)
        k.setblocking(False)
        sel.register(k, selectors.EVENT_READ, p)
        out.append("acpcheck-port %s %s ok" % (p, port))
    except OSError as e:
        k.close()
        out.append("acpcheck-port %s %s %s %s" % (p, port, "busy" if e.errno == errno.EADDRINUSE else "error", (e.strerror or "?").replace(" ", "_")))
sys.stdout.write("\n".join(out + ["acpcheck-ready", ""]))
sys.stdout.flush()
# The runner is gone when the reading end of stdout closes: on a pipe, epoll reports
# that on the write end itself (EPOLLERR), with no traffic at all. Anything else (a
# socket that sshd might also use for stdin) gets the heartbeat instead. On a pipe
# the rare beat is a second safety net; each one wakes the runner.
beat = 0.5
try:
    if stat.S_ISFIFO(os.fstat(1).st_mode):
        sel.register(1, selectors.EVENT_READ, "runner")
        beat = 60.0
except (OSError, ValueError):
    pass
waiting = {}
def answer(c, q):
    try:
        c.send(page if q[:4] in (b"GET ", b"HEAD", b"OPTI") else h)
    except OSError:
        pass
    c.close()
last = 0.0
while True:
    now = time.monotonic()
    for c, t in list(waiting.items()):
        if t <= now:
            sel.unregister(c)
            del waiting[c]
            answer(c, b"")
    for key, _ in sel.select(0.1 if waiting else beat):
        k, kind = key.fileobj, key.data
        if kind == "runner":
            os._exit(0)
        try:
            if kind == "udp":
                while True:
                    d, a = k.recvfrom(512)
                    k.sendto(h, a)
            elif kind == "tcp":
                while True:
                    c = k.accept()[0]
                    c.setblocking(False)
                    sel.register(c, selectors.EVENT_READ, "conn")
                    waiting[c] = now + 0.3
            else:
                try:
                    q = k.recv(512)
                except OSError:
                    q = b""
                sel.unregister(k)
                del waiting[k]
                answer(k, q)
        except OSError:
            pass
    if now - last >= beat:
        last = now
        try:
            sys.stdout.write("\n")
            sys.stdout.flush()
        except OSError:
            os._exit(0)
"""

_PL_LISTENER = r"""
use strict; use IO::Socket::INET; use IO::Select;
my ($n, $i, $f, $b, @specs) = @ARGV;
my $h = "acpcheck $n $i\n";
$SIG{PIPE} = "IGNORE"; $| = 1;
my $class = "IO::Socket::INET";
if ($f eq "6") { require IO::Socket::IP; $class = "IO::Socket::IP"; }
my $host = $b ne "" ? $b : ($f eq "6" ? "::" : "0.0.0.0");
my $sel = IO::Select->new; my %udp; my @out;
for my $spec (@specs) {
  my ($p, $port) = split m{/}, $spec;
  my $k = $p eq "tcp"
    ? $class->new(LocalHost => $host, LocalPort => $port, Proto => "tcp", Listen => 128, ReuseAddr => 1)
    : $class->new(LocalHost => $host, LocalPort => $port, Proto => "udp");
  if ($k) { $sel->add($k); $udp{fileno $k} = 1 if $p eq "udp"; push @out, "acpcheck-port $p $port ok"; }
  else { my $w = $!{EADDRINUSE} ? "busy" : "error"; (my $m = "$!") =~ s/ /_/g; push @out, "acpcheck-port $p $port $w $m"; }
}
print join("\n", @out, "acpcheck-ready"), "\n";
my $last = 0;
while (1) {
  for my $k ($sel->can_read(0.5)) {
    if ($udp{fileno $k}) { my $a = $k->recv(my $d, 512); $k->send($h, 0, $a) if defined $a; next; }
    my $c = $k->accept or next;
    my $q = ""; sysread($c, $q, 512) if IO::Select->new($c)->can_read(0.3);
    if ($q =~ /^(GET |HEAD|OPTI)/) { print $c "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " . length($h) . "\r\nConnection: close\r\n\r\n$h"; }
    else { print $c $h; }
    close $c;
  }
  if (time != $last) { $last = time; print "\n" or exit 0; }
}
"""

#: Which nc this is: the flavours differ in their flags.
_NC_FLAVOUR = r"""if [ "$T" = nc ]; then
  case $(nc -h 2>&1 | head -n 3) in
    *OpenBSD*) NCV=openbsd ;; *BusyBox*) NCV=busybox ;; *Ncat*) NCV=ncat ;; *) NCV=traditional ;;
  esac
fi"""

# socat and nc: one background loop per TCP port; a port whose first bind fails ends
# its loop at once, which is how "busy" is told. The nc flavours differ in flags.
_SH_LISTENER = r"""
H="acpcheck $N $I"
ncl() {
  case $NCV in
    openbsd) nc -N -l $B "$1" ;;
    busybox) nc -l -p "$1" -e sh -c "echo $H; read -r x" ;;  # BusyBox's small nc: no address choice, no close on EOF
    ncat) nc -l --send-only $B "$1" ;;
    *) nc -l -p "$1" -q 1 ${B:+-s "$B"} ;;
  esac
}
NC_FLAVOUR
ports=""
for s in $SPECS; do
  p=${s%/*}; port=${s#*/}
  if [ "$p" != tcp ]; then echo "acpcheck-port $p $port notool"; continue; fi
  if [ "$T" = socat ]; then
    socat TCP-LISTEN:"$port",reuseaddr,fork${B:+,bind=$B} SYSTEM:"echo $H; read -r x" </dev/null >/dev/null 2>&1 &
  else
    ( while printf '%s\n' "$H" | ncl "$port" >/dev/null 2>&1; do :; done ) &
  fi
  eval "pid_$port=\$!"
  ports="$ports $port"
done
sleep 0.3 2>/dev/null || sleep 1
for port in $ports; do
  eval "pid=\$pid_$port"
  if kill -0 "$pid" 2>/dev/null; then echo "acpcheck-port tcp $port ok"; else echo "acpcheck-port tcp $port busy could_not_listen"; fi
done
echo acpcheck-ready
while printf '\n'; do sleep 1; done
"""


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
        f"PY={q(_PY_LISTENER)}",
        f"PL={q(_PL_LISTENER)}",
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
        _SH_LISTENER.replace("NC_FLAVOUR", _NC_FLAVOUR),
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

# One thread, non-blocking sockets and epoll, at most PAR connections in flight: the
# CPU of a few system calls per target, where a thread per connection spent most of
# it switching between threads.
_PY_CONNECTOR = r"""
import errno, os, selectors, socket, sys, time
to, par = float(sys.argv[1]), int(sys.argv[2])
tries = int(sys.argv[3]) if len(sys.argv) > 3 else 1
todo = [l.split() for l in sys.stdin.read().splitlines() if l.strip()]
todo.reverse()
sel = selectors.DefaultSelector()
live = {}
def say(idx, r):
    sys.stdout.write("acpcheck-conn %s %s\n" % (idx, r))
def why(e):
    if e == errno.ECONNREFUSED:
        return "refused"
    if e == errno.ETIMEDOUT:
        return "timeout"
    return "unreachable " + (os.strerror(e) if e else "error").replace(" ", "_")
tried = {}
def done(t, r):
    # No answer at all may be a packet lost on a busy network: try again (last), and
    # report only the final attempt. A firewall that drops the port drops it every time.
    if tried[t[0]] < tries and (r in ("timeout", "silent") or r.startswith("unreachable")):
        todo.insert(0, t)
    else:
        say(t[0], r)
def end(s, r):
    t = live.pop(s)[6]
    sel.unregister(s)
    s.close()
    done(t, r)
def begin(t):
    idx, p, host, port, mode = t
    tried[idx] = tried.get(idx, 0) + 1
    try:
        fam, ty, pr, _, addr = socket.getaddrinfo(host, int(port), 0, socket.SOCK_STREAM if p == "tcp" else socket.SOCK_DGRAM)[0]
        s = socket.socket(fam, ty, pr)
    except OSError as e:
        say(idx, "unreachable " + (e.strerror or type(e).__name__).replace(" ", "_"))
        return
    s.setblocking(False)
    e = s.connect_ex(addr)
    if e not in (0, errno.EINPROGRESS):
        s.close()
        done(t, why(e))
        return
    # [index, proto, mode, deadline, phase, data, target]
    live[s] = [idx, p, mode, time.monotonic() + to, "connect" if p == "tcp" else "read", b"", t]
    if p == "udp":
        try:
            s.send(b"ACPCHECK?\n")
        except OSError as e:
            live.pop(s)
            s.close()
            done(t, why(e.errno))
            return
        sel.register(s, selectors.EVENT_READ)
    else:
        sel.register(s, selectors.EVENT_WRITE)
def expire(s, st):
    if st[4] == "connect":
        end(s, "timeout")
    elif st[5]:
        end(s, "data " + st[5].hex())
    else:
        end(s, "silent" if st[1] == "tcp" else "timeout")
while todo or live:
    while todo and len(live) < par:
        begin(todo.pop())
    if not live:
        continue
    now = time.monotonic()
    for s, st in list(live.items()):
        if st[3] <= now:
            expire(s, st)
    if not live:
        continue
    wait = max(0.0, min(st[3] for st in live.values()) - now)
    for key, _ in sel.select(wait):
        s = key.fileobj
        st = live.get(s)
        if st is None:
            continue
        if st[4] == "connect":
            e = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if e:
                end(s, why(e))
            elif st[2] == "tcp":
                end(s, "ok")
            else:
                try:
                    s.send(b"ACPCHECK?\n")
                except OSError as x:
                    end(s, why(x.errno))
                    continue
                st[3], st[4] = time.monotonic() + to, "read"
                sel.modify(s, selectors.EVENT_READ)
            continue
        try:
            c = s.recv(512)
        except BlockingIOError:
            continue
        except OSError as x:
            if st[5]:
                end(s, "data " + st[5].hex())
            else:
                end(s, "refused" if x.errno == errno.ECONNREFUSED else ("closed" if st[1] == "tcp" else why(x.errno)))
            continue
        st[5] += c
        d = st[5]
        if not c or st[1] == "udp" or len(d) >= 512 or (b"acpcheck " in d and d.endswith(b"\n")):
            end(s, "data " + d.hex() if d else "closed")
    sys.stdout.flush()
sys.stdout.flush()
"""

_PL_CONNECTOR = r"""
use strict; use IO::Socket::INET; use IO::Select;
my ($to, $par) = @ARGV; $| = 1;
my @todo = grep { /\S/ } <STDIN>; chomp @todo;
my $w = $par < @todo ? $par : scalar @todo; $w = 1 if $w < 1;
my @kids;
for my $k (0 .. $w - 1) {
  my $pid = fork;
  if (!$pid) {
    for (my $j = $k; $j < @todo; $j += $w) {
      my ($idx, $p, $host, $port, $mode) = split ' ', $todo[$j];
      my $r;
      my $s = IO::Socket::INET->new(PeerAddr => $host, PeerPort => $port, Proto => $p, Timeout => $to);
      if (!$s) { $r = $!{ECONNREFUSED} ? "refused" : ($!{ETIMEDOUT} || $!{EINPROGRESS}) ? "timeout" : do { (my $m = "$!") =~ s/ /_/g; "unreachable $m" }; }
      elsif ($mode eq "tcp") { $r = "ok"; close $s; }
      else {
        $s->send("ACPCHECK?\n"); my $d = ""; my $sel = IO::Select->new($s);
        while (length($d) < 512 && $sel->can_read($to)) { my $c; my $got = sysread($s, $c, 512); if (!defined $got) { $r = $!{ECONNREFUSED} ? "refused" : "closed"; last } last if !$got; $d .= $c; last if $p eq "udp" || ($d =~ /acpcheck / && $d =~ /\n\z/); }
        $r //= length($d) ? "data " . unpack("H*", $d) : ($p eq "tcp" ? "silent" : "timeout");
        close $s;
      }
      print "acpcheck-conn $idx $r\n";
    }
    exit 0;
  }
  push @kids, $pid;
}
waitpid($_, 0) for @kids;
"""

# socat/nc: TCP only, W targets at a time in background subshells.
_SH_CONNECTOR = r"""
hex() { od -An -tx1 | tr -d ' \n'; }
one() {
  idx=$1 p=$2 host=$3 port=$4 mode=$5
  if [ "$p" != tcp ]; then echo "acpcheck-conn $idx notool"; return; fi
  f=$(mktemp) || { echo "acpcheck-conn $idx unreachable no_mktemp"; return; }
  if [ "$T" = socat ]; then
    printf 'ACPCHECK?\n' | socat -T"$TO" - TCP:"$host":"$port",connect-timeout="$TO" >"$f.out" 2>"$f" &
  else
    printf 'ACPCHECK?\n' | nc $NCVERBOSE -w "$TO" "$host" "$port" >"$f.out" 2>"$f" &
  fi
  pid=$!
  # some nc never time out a silent peer: end it here
  ( sleep $((TO + 1)); kill "$pid" ) >/dev/null 2>&1 &
  w=$!
  wait "$pid"; rc=$?
  kill "$w" 2>/dev/null
  d=$(hex <"$f.out"); e=$(cat "$f"); rm -f "$f" "$f.out"
  case $e in
    *efused*) r=refused ;;
    *imed\ out*|*imeout*) r=timeout ;;
    *o\ route*|*nreachable*) r="unreachable no_route" ;;
    *) if [ -n "$d" ]; then r="data $d"; elif [ "$mode" = tcp ]; then r=ok; elif [ "$rc" -gt 128 ]; then r=silent; else r=closed; fi ;;
  esac
  echo "acpcheck-conn $idx $r"
}
NC_FLAVOUR
NCVERBOSE=-v; [ "$NCV" = busybox ] && NCVERBOSE=
n=0
while read -r a b c d e; do
  [ -n "$a" ] || continue
  one "$a" "$b" "$c" "$d" "$e" &
  n=$((n + 1))
  if [ "$n" -ge "$PAR" ]; then wait; n=0; fi
done
wait
"""


def connector_command(timeout: float, parallel: int = 64, tries: int = 1) -> str:
    """The sh command line of a connector; the targets come on stdin (``connector_input``).

    ``tries``: attempts for a target that gave no answer at all (timeout, silent,
    unreachable), the repeats after every other target (Python connector only)."""
    q = shlex.quote
    seconds = max(1, round(timeout))
    return "\n".join(
        [
            f"TO={seconds} PAR={int(parallel)}",
            f"PY={q(_PY_CONNECTOR)}",
            f"PL={q(_PL_CONNECTOR)}",
            "for P in python3 platform-python /usr/libexec/platform-python; do",
            '  case $P in /*) [ -x "$P" ] || continue ;; *) command -v "$P" >/dev/null 2>&1 || continue ;; esac',
            f'  exec "$P" -S -c "$PY" {timeout:g} "$PAR" {int(tries)}',
            "done",
            f'if command -v perl >/dev/null 2>&1; then exec perl -e "$PL" {timeout:g} "$PAR"; fi',
            "T=",
            "command -v nc >/dev/null 2>&1 && T=nc",
            "command -v socat >/dev/null 2>&1 && T=socat",
            'if [ -z "$T" ]; then echo acpcheck-notool; exit 3; fi',
            _SH_CONNECTOR.replace("NC_FLAVOUR", _NC_FLAVOUR),
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
