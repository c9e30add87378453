"""A stand-in kube-apiserver for the lab's post-install scenarios: TLS on a port,
``GET /version`` answers like Kubernetes, everything else 403.

    python3 -I tlsapi.py CERT KEY PORT GIT_VERSION [HOSTILE[:SECONDS]]

Standard library only: it runs in a lab node's network namespace with the host's
system Python, started by the lab's keeper (lab/acpcheck_lab/lb.py).

It also holds the **hostile answers** (``HOSTILE_MODES``) that this server (with the
optional fifth argument) and the test API server (``acpcheck_lab.apiserver``,
``TestApiServer.hostile``) give instead of a real one, so that tests prove a client
survives a server that misbehaves on purpose:

==============  =====================================================================
``drip``        a 200 answer, one byte every SECONDS (default 3): each read gets a byte
                in time, so only a deadline on the whole exchange ends it
``silent``      accepts the connection and the request, then says nothing
``huge``        a 200 JSON list that never ends (chunked), as fast as it can be sent
``malformed``   a 200 ``application/json`` answer whose body is not JSON
``reset``       the headers and part of the body, then a TCP reset
==============  =====================================================================
"""

import http.server
import io
import json
import select
import socket
import ssl
import struct
import sys
import threading

HOSTILE_MODES = ("drip", "silent", "huge", "malformed", "reset")
#: Seconds between two bytes of a ``drip`` answer, unless told.
DRIP_INTERVAL = 3.0
#: The body a ``drip`` answer declares: far more than will ever be sent at its pace.
DRIP_LENGTH = 1 << 20


def hostile_answer(handler, mode, stop, interval=DRIP_INTERVAL):
    """Answer ``handler``'s request (a ``BaseHTTPRequestHandler`` whose request line and
    headers are read) the ``mode`` way; returns when the client is gone, ``stop`` is set,
    or the answer is over. The connection is closed afterwards."""
    if mode not in HOSTILE_MODES:
        raise ValueError(f"not a hostile mode: {mode!r} (one of {', '.join(HOSTILE_MODES)})")
    handler.close_connection = True
    sock = handler.connection
    try:
        if mode == "drip":
            head = (
                f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {DRIP_LENGTH}\r\n\r\n"
            ).encode() + b'{"kind":"Status","message":"'
            for position in range(DRIP_LENGTH):
                handler.wfile.write(head[position : position + 1] if position < len(head) else b" ")
                if stop.wait(interval):
                    return
        elif mode == "silent":
            _wait_until_gone(sock, stop)
        elif mode == "huge":
            handler.wfile.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            )
            first = b'{"kind":"List","apiVersion":"v1","metadata":{},"items":['
            item = b'{"metadata":{"name":"hostile-padding-0123456789abcdef"}},' * 1000
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(first), first))
            while not stop.is_set():
                handler.wfile.write(b"%x\r\n%s\r\n" % (len(item), item))
        elif mode == "malformed":
            body = b'{"kind": "List", "apiVersion": "v1", "items": [{"metadata": {"name": "cut-off-'
            # "Connection: close", as a server says when it closes after an answer: without it the
            # client may send its next read on this connection before the close reaches it
            handler.wfile.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
            )
        elif mode == "reset":
            handler.wfile.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                b'100000\r\n\r\n{"kind":"List","items":['
            )
            # SO_LINGER 0: close() sends a TCP reset instead of a FIN.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            socket.socket.close(sock)
            handler.wfile = io.BytesIO()  # what the handler flushes when it finishes goes nowhere
    except (OSError, ValueError):  # the client went away: a write to its closed socket
        return


def _wait_until_gone(sock, stop):
    """Until the client closes ``sock`` (or ``stop`` is set), reading nothing it might send."""
    while not stop.is_set():
        readable, _, _ = select.select([sock], [], [], 0.2)
        if readable:
            try:
                if not sock.recv(4096):
                    return
            except ssl.SSLWantReadError:
                continue


def parse_hostile(text):
    """``drip:0.5`` -> ("drip", 0.5); ``silent`` -> ("silent", DRIP_INTERVAL)."""
    mode, _, seconds = text.partition(":")
    if mode not in HOSTILE_MODES:
        raise ValueError(f"not a hostile mode: {mode!r} (one of {', '.join(HOSTILE_MODES)})")
    return mode, float(seconds) if seconds else DRIP_INTERVAL


def main(cert: str, key: str, port: int, version: str, hostile: str = "") -> None:
    body = json.dumps(
        {"major": "1", "minor": version.split(".")[1] if "." in version else "", "gitVersion": version}
    ).encode()
    mode, interval = parse_hostile(hostile) if hostile else (None, DRIP_INTERVAL)
    stop = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if mode is not None:
                hostile_answer(self, mode, stop, interval)
            elif self.path.split("?")[0] == "/version":
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            else:
                self.send_error(403)

        def log_message(self, *args: object) -> None:
            pass

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: object, client_address: object) -> None:
            pass  # a client that went away mid-answer is no news here

    server = Server(("0.0.0.0", port), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    try:
        server.serve_forever()
    finally:
        stop.set()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], *sys.argv[5:6])
