"""TCP: ``open_tcp`` (direct and through microsocks), ``proxy_for``, and
``open_channel``/``forward`` to a loopback-only echo server, through the real
sshd (direct-tcpip) and locally."""

from __future__ import annotations

import socket
import threading
from typing import Any

import pytest
from conftest import EchoServer
from realsshd import FAST, LOCALHOST, Lab, SocksProxy, free_port

from acpcheck.transport import (
    Forwarder,
    KnownHosts,
    LocalForward,
    LocalTransport,
    NodeTransport,
    SshSession,
    Stream,
    TransportError,
    connect,
    open_tcp,
    proxy_for,
    resolve_ssh,
)


def echo_once(stream: Stream | socket.socket, payload: bytes) -> bytes:
    """Send ``payload``, half-close, read until EOF."""
    stream.settimeout(5)
    stream.sendall(payload)
    stream.shutdown(socket.SHUT_WR)
    received = b""
    while chunk := stream.recv(65536):
        received += chunk
    return received


def echo_exact(stream: Stream | socket.socket, payload: bytes) -> bytes:
    """Send ``payload`` and read as many bytes back, without a half-close (microsocks ends both ways on EOF)."""
    stream.settimeout(5)
    stream.sendall(payload)
    received = b""
    while len(received) < len(payload) and (chunk := stream.recv(65536)):
        received += chunk
    return received


# --- open_tcp --------------------------------------------------------------------------------


def test_open_tcp_direct(echo_server: EchoServer) -> None:
    with open_tcp(LOCALHOST, echo_server.port, proxy=None, timeout=5) as sock:
        assert echo_once(sock, b"direct") == b"direct"
    port = free_port()
    with pytest.raises(TransportError) as caught:
        open_tcp(LOCALHOST, port, proxy=None, timeout=5)
    assert (caught.value.kind, caught.value.message) == ("unreachable", f"127.0.0.1:{port} refused the connection")


def proxied_plan(lab: Lab, proxy: SocksProxy, node_ssh: dict[str, Any] | None = None) -> Any:
    node: dict[str, Any] = {"name": "n1", "role": "control-plane", "ipv4": LOCALHOST}
    if node_ssh is not None:
        node["ssh"] = node_ssh
    nodes = [node, {"name": "n2", "role": "worker", "ipv4": LOCALHOST}]
    return lab.plan(nodes, proxy={"url": proxy.url, "username": proxy.username, "passwordEnv": "ACPT_PROXY_PASSWORD"})


def test_open_tcp_through_the_plans_proxy(
    lab: Lab, proxy: SocksProxy, echo_server: EchoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACPT_PROXY_PASSWORD", proxy.password)
    plan = proxied_plan(lab, proxy)
    settings = proxy_for(plan, plan.spec.nodes[1])
    assert settings is not None and settings == resolve_ssh(plan, plan.spec.nodes[1]).proxy
    before = echo_server.accepted
    with open_tcp(LOCALHOST, echo_server.port, proxy=settings, timeout=5) as sock:
        assert echo_exact(sock, b"through microsocks") == b"through microsocks"
    assert echo_server.accepted == before + 1


def test_open_tcp_wrong_proxy_password_is_proxy_auth(
    lab: Lab, proxy: SocksProxy, echo_server: EchoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "wrong-" + proxy.password
    monkeypatch.setenv("ACPT_PROXY_PASSWORD", wrong)
    plan = proxied_plan(lab, proxy)
    with pytest.raises(TransportError) as caught:
        open_tcp(LOCALHOST, echo_server.port, proxy=proxy_for(plan), timeout=5)
    error = caught.value
    assert (
        error.kind == "proxy-auth"
        and error.message == f"SOCKS5 proxy 127.0.0.1:{proxy.port} rejected the username and password"
    )
    for secret in (wrong, proxy.password):
        assert secret not in str(error) and secret not in repr(error)


def test_proxy_for_follows_resolve_ssh(lab: Lab, proxy: SocksProxy) -> None:
    other = {"url": "socks5h://10.9.9.9:1080"}
    plan = proxied_plan(lab, proxy, node_ssh={"proxy": other})
    n1, n2 = plan.spec.nodes
    assert proxy_for(plan) == proxy_for(plan, n2) == resolve_ssh(plan, n2).proxy
    assert proxy_for(plan).port == proxy.port  # type: ignore[union-attr]
    own = proxy_for(plan, n1)
    assert own == resolve_ssh(plan, n1).proxy and (own.host, own.port, own.remote_dns) == ("10.9.9.9", 1080, True)  # type: ignore[union-attr]
    direct = proxied_plan(lab, proxy, node_ssh={"proxy": None})  # explicit null: direct even with a plan proxy
    assert proxy_for(direct, direct.spec.nodes[0]) is None and proxy_for(direct, direct.spec.nodes[1]) is not None
    assert proxy_for(lab.plan(), None) is None


# --- open_channel / forward, over SSH and locally ----------------------------------------------


def test_open_channel_reaches_a_loopback_only_service(transport: NodeTransport, echo_server: EchoServer) -> None:
    stream = transport.open_channel(LOCALHOST, echo_server.port, timeout=5)
    try:
        assert isinstance(stream, Stream)
        assert echo_once(stream, b"x" * 300_000) == b"x" * 300_000  # more than one SSH window packet
    finally:
        stream.close()


def test_open_channel_to_a_closed_port(transport: NodeTransport) -> None:
    port = free_port()
    with pytest.raises(TransportError) as caught:
        transport.open_channel(LOCALHOST, port, timeout=5)
    assert caught.value.kind == "unreachable"
    if isinstance(transport, SshSession):
        assert caught.value.message == (
            f"root@127.0.0.1:{transport.settings.port}: the node could not connect to 127.0.0.1:{port}"
            " (connection refused or no route: is anything listening there?)"
        )
    else:
        assert caught.value.message == f"127.0.0.1:{port} refused the connection"
    assert transport.run("echo still usable").stdout == "still usable\n"


def test_forward_pipes_concurrent_connections(transport: NodeTransport, echo_server: EchoServer) -> None:
    with transport.forward(LOCALHOST, echo_server.port) as forward:
        assert isinstance(forward, LocalForward) and isinstance(forward, Forwarder)
        host, port = forward.address
        assert host == "127.0.0.1" and port != echo_server.port
        results: dict[int, bytes] = {}

        def client(index: int) -> None:
            with socket.create_connection(forward.address, timeout=5) as sock:
                results[index] = echo_once(sock, f"client {index} ".encode() * 1000)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert results == {i: f"client {i} ".encode() * 1000 for i in range(8)}

        # A connection held open is closed by close(): the client reads EOF.
        held = socket.create_connection(forward.address, timeout=5)
        held.sendall(b"ping")
        assert held.recv(4) == b"ping"
    assert held.recv(10) == b""
    held.close()
    with pytest.raises(OSError):
        socket.create_connection(forward.address, timeout=2)
    forward.close()  # idempotent


def test_forward_to_a_closed_port_fails_at_once(transport: NodeTransport) -> None:
    with pytest.raises(TransportError) as caught:
        transport.forward(LOCALHOST, free_port())
    assert caught.value.kind == "unreachable" and "refused" in caught.value.message


def test_forward_whose_target_goes_away(transport: NodeTransport) -> None:
    server = EchoServer()
    forward = transport.forward(LOCALHOST, server.port)
    server.close()
    with socket.create_connection(forward.address, timeout=5) as sock:
        sock.settimeout(5)
        assert sock.recv(10) == b""  # closed at once; the reason is kept
    assert forward.errors and forward.errors[-1].kind == "unreachable"
    transport.close()
    assert forward.closed  # the transport's close() closes its forwards


# --- SSH only ----------------------------------------------------------------------------------


def test_forwarding_refused_by_sshd_is_permission(lab: Lab, known_hosts: KnownHosts, echo_server: EchoServer) -> None:
    plan = lab.plan(user=lab.plain.name)  # AllowTcpForwarding no for this user
    with connect(resolve_ssh(plan, plan.spec.nodes[0]), timeouts=FAST, known_hosts=known_hosts) as session:
        with pytest.raises(TransportError) as caught:
            session.open_channel(LOCALHOST, echo_server.port, timeout=5)
        assert caught.value.kind == "permission"
        assert caught.value.message.endswith(
            f"sshd refuses to forward to 127.0.0.1:{echo_server.port} (administratively prohibited: "
            "AllowTcpForwarding or PermitOpen)"
        )


def test_closed_session_cannot_open_channels(lab: Lab, known_hosts: KnownHosts, echo_server: EchoServer) -> None:
    plan = lab.plan()
    session = connect(resolve_ssh(plan, plan.spec.nodes[0]), timeouts=FAST, known_hosts=known_hosts)
    session.close()
    with pytest.raises(TransportError) as caught:
        session.open_channel(LOCALHOST, echo_server.port, timeout=5)
    assert caught.value.kind == "unreachable" and "connection is closed" in caught.value.message


def test_local_transport_is_a_node_transport() -> None:
    assert isinstance(LocalTransport(), NodeTransport)
