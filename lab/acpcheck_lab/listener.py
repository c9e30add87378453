"""A real TCP listener for a lab node's "port already in use" defect.

    python3 listener.py PORT [PORT ...]

Binds and listens on every port (0.0.0.0), then forks: the parent prints the child's
pid and exits 0, so the caller knows the ports are taken when this command returns;
it exits non-zero (and nothing listens) if any port cannot be bound. The child accepts
and closes connections until it is killed. Standard library only: it runs inside lab
nodes with the host's system Python.
"""

import os
import selectors
import socket
import sys


def main(ports: list[int]) -> int:
    selector = selectors.DefaultSelector()
    for port in ports:
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            server.bind(("0.0.0.0", port))
        except OSError as error:
            print(f"listener: port {port}: {error.strerror}", file=sys.stderr)
            return 1
        server.listen(16)
        selector.register(server, selectors.EVENT_READ)
    pid = os.fork()
    if pid:
        print(pid)
        return 0
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    while True:
        for key, _ in selector.select():
            try:
                connection, _ = key.fileobj.accept()  # type: ignore[union-attr]
                connection.close()
            except OSError:
                pass


if __name__ == "__main__":
    sys.exit(main([int(arg) for arg in sys.argv[1:]]))
