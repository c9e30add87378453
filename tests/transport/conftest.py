"""Real sshd/microsocks fixtures (see realsshd.py) for the transport tests, and
what the protocol tests share: a loopback echo server and both transports."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from realsshd import FAST, LOCALHOST, Lab, lab, proxy  # noqa: F401  (fixtures)

from acpcheck.transport import KnownHosts, LocalTransport, NodeTransport, connect, resolve_ssh


@pytest.fixture
def known_hosts(tmp_path: Path) -> KnownHosts:
    return KnownHosts(tmp_path / "known_hosts")


class EchoServer:
    """A threaded TCP echo server on 127.0.0.1 only: what a node-local service (etcd's 2379) looks like."""

    def __init__(self) -> None:
        self.listener = socket.create_server((LOCALHOST, 0))
        self.listener.settimeout(0.2)
        self.port = int(self.listener.getsockname()[1])
        self.accepted = 0
        self._stop = threading.Event()
        self._clients: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                continue
            self.accepted += 1
            self._clients.append(client)
            threading.Thread(target=self._echo, args=(client,), daemon=True).start()

    @staticmethod
    def _echo(client: socket.socket) -> None:
        client.settimeout(None)
        try:
            while data := client.recv(65536):
                client.sendall(data)
            client.shutdown(socket.SHUT_WR)  # echo the half-close too
        except OSError:
            pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.listener.close()
        for client in self._clients:
            try:
                client.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            client.close()


@pytest.fixture
def echo_server() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()


@pytest.fixture(params=["ssh", "local"])
def transport(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[NodeTransport]:
    """The same protocol two ways: SSH to the loopback sshd as root, and LocalTransport."""
    if request.param == "local":
        with LocalTransport("local", command_timeout=FAST.command) as local:
            yield local
        return
    running: Lab = request.getfixturevalue("lab")
    plan = running.plan()
    with connect(
        resolve_ssh(plan, plan.spec.nodes[0]), timeouts=FAST, known_hosts=KnownHosts(tmp_path / "known_hosts")
    ) as session:
        yield session
