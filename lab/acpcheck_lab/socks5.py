"""A socket to a hidden lab node through the lab's SOCKS5 proxy, for ``status`` and
``proxy-connect``. It uses python-socks, the same SOCKS5 client as acpcheck's SSH
transport, but not the transport itself: these commands need a raw TCP stream."""

from __future__ import annotations

import socket

from python_socks import ProxyError, ProxyType
from python_socks.sync import Proxy


class Socks5Error(OSError):
    """The proxy refused: wrong credentials, or it could not reach the target."""


def connect(
    proxy: tuple[str, int], target: tuple[str, int], username: str, password: str, timeout: float = 5.0
) -> socket.socket:
    """A socket connected to ``target`` through the SOCKS5 proxy."""
    client = Proxy(ProxyType.SOCKS5, proxy[0], proxy[1], username=username, password=password)
    try:
        return client.connect(target[0], target[1], timeout=timeout)
    except ProxyError as error:  # an OSError for the callers, like a refused connection
        raise Socks5Error(f"SOCKS5 proxy {proxy[0]}:{proxy[1]}: {error}") from None
