"""A minimal SOCKS5 client (RFC 1928 CONNECT, RFC 1929 username/password), standard
library only: ``status`` and ``proxy-connect`` use it to reach hidden nodes without
depending on acpcheck's SSH transport."""

from __future__ import annotations

import ipaddress
import socket
import struct


class Socks5Error(OSError):
    """The proxy refused: wrong credentials, or it could not reach the target."""


_REPLIES = {
    1: "general failure", 2: "not allowed by ruleset", 3: "network unreachable", 4: "host unreachable",
    5: "connection refused", 6: "TTL expired", 7: "command not supported", 8: "address type not supported",
}


def connect(proxy: tuple[str, int], target: tuple[str, int], username: str, password: str, timeout: float = 5.0) -> socket.socket:
    """A socket connected to ``target`` through the SOCKS5 proxy."""
    sock = socket.create_connection(proxy, timeout=timeout)
    try:
        sock.sendall(b"\x05\x01\x02")  # version 5, one method: username/password
        version, method = _read(sock, 2)
        if version != 5 or method != 2:
            raise Socks5Error("the proxy does not accept username/password authentication")
        user, secret = username.encode(), password.encode()
        sock.sendall(b"\x01" + bytes([len(user)]) + user + bytes([len(secret)]) + secret)
        _, status = _read(sock, 2)
        if status != 0:
            raise Socks5Error("the proxy refused the username/password")
        address = ipaddress.ip_address(target[0])
        kind = b"\x01" if address.version == 4 else b"\x04"
        sock.sendall(b"\x05\x01\x00" + kind + address.packed + struct.pack("!H", target[1]))
        _, reply, _, bound_kind = _read(sock, 4)
        if reply != 0:
            raise Socks5Error(f"the proxy could not connect to {target[0]}:{target[1]}: {_REPLIES.get(reply, reply)}")
        _read(sock, {1: 4, 4: 16}.get(bound_kind, 0) + 2)  # bound address and port
        return sock
    except BaseException:
        sock.close()
        raise


def _read(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise Socks5Error("the proxy closed the connection")
        data += chunk
    return data
