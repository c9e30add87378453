# acpcheck's connector on a node (acpcheck.sources.nodeside.connector_command):
#   python3 -S -c "$PY" <timeout> <parallel> <tries>, targets on stdin, one a line:
#   <index> <tcp|udp> <host> <port> <id|tcp>
# One thread, non-blocking sockets and epoll, at most PAR connections in flight: the
# CPU of a few system calls per target, where a thread per connection spent most of
# it switching between threads.
import errno
import os
import selectors
import socket
import sys
import time

to, par = float(sys.argv[1]), int(sys.argv[2])
tries = int(sys.argv[3]) if len(sys.argv) > 3 else 1
todo = [line.split() for line in sys.stdin.read().splitlines() if line.strip()]
todo.reverse()
sel = selectors.DefaultSelector()
live = {}  # type: dict[socket.socket, list]


def say(idx, r):
    sys.stdout.write("acpcheck-conn %s %s\n" % (idx, r))


def why(e):
    if e == errno.ECONNREFUSED:
        return "refused"
    if e == errno.ETIMEDOUT:
        return "timeout"
    return "unreachable " + (os.strerror(e) if e else "error").replace(" ", "_")


tried = {}  # type: dict[str, int]


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
        fam, ty, pr, _, addr = socket.getaddrinfo(
            host, int(port), 0, socket.SOCK_STREAM if p == "tcp" else socket.SOCK_DGRAM
        )[0]
        s = socket.socket(fam, ty, pr)
    except OSError as e:
        say(idx, "unreachable " + (e.strerror or type(e).__name__).replace(" ", "_"))
        return
    s.setblocking(False)
    err = s.connect_ex(addr)
    if err not in (0, errno.EINPROGRESS):
        s.close()
        done(t, why(err))
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
        sel.register(s, selectors.EVENT_READ, s)
    else:
        sel.register(s, selectors.EVENT_WRITE, s)


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
        s = key.data  # the socket itself (registered as the key's data)
        if s not in live:
            continue
        st = live[s]
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
                sel.modify(s, selectors.EVENT_READ, s)
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
