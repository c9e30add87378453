# acpcheck's listener on a node (acpcheck.sources.nodeside.listener_command):
#   python3 -S -c "$PY" <nonce> <identity> <4|6> <bind address or ""> <proto/port>...
# One thread, one epoll loop: no thread per connection. A node probed by hundreds of
# peers at once (every node probes every control-plane node) answers all of them
# with the CPU of a few system calls each, on nodes that share cores with the lab's
# other nodes or with the workloads of a real one.
import errno
import os
import selectors
import socket
import stat
import sys
import time

n, i, f, b = sys.argv[1:5]
h = ("acpcheck %s %s\n" % (n, i)).encode()
page = (
    b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
    + str(len(h)).encode()
    + b"\r\nConnection: close\r\n\r\n"
    + h
)
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
        sel.register(k, selectors.EVENT_READ, (p, k))
        out.append("acpcheck-port %s %s ok" % (p, port))
    except OSError as e:
        k.close()
        out.append(
            "acpcheck-port %s %s %s %s"
            % (p, port, "busy" if e.errno == errno.EADDRINUSE else "error", (e.strerror or "?").replace(" ", "_"))
        )
sys.stdout.write("\n".join(out + ["acpcheck-ready", ""]))
sys.stdout.flush()
# The runner is gone when the reading end of stdout closes: on a pipe, epoll reports
# that on the write end itself (EPOLLERR), with no traffic at all. Anything else (a
# socket that sshd might also use for stdin) gets the heartbeat instead. On a pipe
# the rare beat is a second safety net; each one wakes the runner.
beat = 0.5
try:
    if stat.S_ISFIFO(os.fstat(1).st_mode):
        sel.register(1, selectors.EVENT_READ, ("runner", None))
        beat = 60.0
except (OSError, ValueError):
    pass
waiting = {}  # type: dict[socket.socket, float]


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
        kind, k = key.data  # what the file is, and the socket itself (None for the runner's pipe)
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
                    sel.register(c, selectors.EVENT_READ, ("conn", c))
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
