"""TCP connections from the runner, directly or through the plan's SOCKS5 proxy.

``open_tcp`` is the one place that connects: SSH uses it to reach sshd, and
checks that talk to a node's service from the runner (an API server, a load
balancer) use it with ``proxy_for(plan, node)`` so they take the same path as
SSH does. Failures are ``TransportError``:

- ``unreachable``: the name does not resolve, or the target refused / has no route;
- ``timeout``: the TCP connect (or the SOCKS5 handshake) took longer than ``timeout``;
- ``proxy``: the proxy is down, or it could not reach the target;
- ``proxy-auth``: the proxy wants, or refused, the username and password.

Messages name hosts, ports and variable names; the proxy password is never in them.
"""

from __future__ import annotations

import socket

from python_socks import ProxyConnectionError, ProxyError, ProxyTimeoutError, ProxyType
from python_socks.sync import Proxy

from acpcheck.transport.errors import TransportError, scrub
from acpcheck.transport.settings import ProxySettings, hostport, proxy_for

__all__ = ["open_tcp", "proxy_for"]


def open_tcp(
    host: str, port: int, *, proxy: ProxySettings | None, timeout: float, refused_hint: str = ""
) -> socket.socket:
    """A blocking socket connected to ``host:port`` (through ``proxy`` when given).

    ``refused_hint`` is appended to the "refused the connection" message, e.g.
    `` (no sshd listening on that port?)``. The socket keeps ``timeout`` as its
    timeout; set another one (or None) for the traffic that follows.
    """
    if proxy is None:
        sock = _direct(host, port, timeout, refused_hint)
    else:
        sock = _through(host, port, proxy, timeout)
    sock.settimeout(timeout)
    return sock


def _through(host: str, port: int, proxy: ProxySettings, timeout: float) -> socket.socket:
    secrets: list[str] = []
    try:
        return _via_proxy(host, port, proxy, timeout, secrets)
    except TransportError as exc:
        raise exc.scrubbed(secrets) from None
    except Exception as exc:  # noqa: BLE001 — python-socks failing in a way we did not anticipate: still secret-free
        raise TransportError(
            "proxy", f"SOCKS5 proxy {proxy.address}: unexpected {type(exc).__name__}: {scrub(str(exc), secrets)}"
        ) from None


def _direct(host: str, port: int, timeout: float, refused_hint: str) -> socket.socket:
    target = hostport(host, port)
    try:
        return socket.create_connection((host, port), timeout=timeout)
    except socket.gaierror as exc:
        raise TransportError("unreachable", f"cannot resolve {host}: {exc.strerror}") from None
    except TimeoutError:
        raise TransportError("timeout", f"TCP connect to {target} timed out after {timeout:g} s") from None
    except ConnectionRefusedError:
        raise TransportError("unreachable", f"{target} refused the connection{refused_hint}") from None
    except OSError as exc:  # no route to host, network unreachable …
        raise TransportError(
            "unreachable", f"cannot connect to {target}: {exc.strerror or type(exc).__name__}"
        ) from None


def _via_proxy(host: str, port: int, proxy: ProxySettings, timeout: float, secrets: list[str]) -> socket.socket:
    via = f"SOCKS5 proxy {proxy.address}"
    target = hostport(host, port)
    username = proxy.read_username()
    password = proxy.password.read() if proxy.password is not None else None
    if password is not None:
        secrets.append(password)
    if (username is None) != (password is None):
        raise TransportError(
            "proxy-auth",
            f"{via}: give both a username (username/usernameEnv) and a password (passwordEnv/passwordFile), or neither",
        )
    client = Proxy(
        ProxyType.SOCKS5, proxy.host, proxy.port, username=username, password=password, rdns=proxy.remote_dns
    )
    try:
        return client.connect(host, port, timeout=timeout)
    except ProxyConnectionError as exc:  # could not reach the proxy itself
        cause = exc.__cause__
        if isinstance(cause, TimeoutError):
            raise TransportError("proxy", f"{via} did not accept a connection within {timeout:g} s") from None
        if isinstance(cause, ConnectionRefusedError):
            raise TransportError("proxy", f"{via} refused the connection (is the proxy running?)") from None
        if isinstance(cause, socket.gaierror):
            raise TransportError("proxy", f"cannot resolve the proxy host {proxy.host}: {cause.strerror}") from None
        reason = cause.strerror if isinstance(cause, OSError) and cause.strerror else type(cause).__name__
        raise TransportError("proxy", f"cannot connect to {via}: {reason}") from None
    except ProxyTimeoutError:
        raise TransportError(
            "timeout", f"no answer within {timeout:g} s while connecting to {target} through {via}"
        ) from None
    except ProxyError as exc:
        text = scrub(str(exc), secrets)
        if exc.error_code is not None:  # a SOCKS5 reply: the proxy could not reach the target
            raise TransportError(
                "proxy", f"{via} could not connect to {target}: {text} (SOCKS5 reply {exc.error_code})"
            ) from None
        if "no acceptable authentication" in text.lower():
            wanted = (
                "does not accept username/password login"
                if username is not None
                else "requires a username and password (set username/usernameEnv and passwordEnv/passwordFile)"
            )
            raise TransportError("proxy-auth", f"{via} {wanted}") from None
        if "authentication" in text.lower():
            raise TransportError("proxy-auth", f"{via} rejected the username and password") from None
        raise TransportError("proxy", f"{via}: {text}") from None
    except socket.gaierror as exc:  # the target's name, resolved locally for socks5:// URLs
        raise TransportError("unreachable", f"cannot resolve {host}: {exc.strerror}") from None
    except OSError as exc:
        raise TransportError("proxy", f"{via}: connection failed: {exc.strerror or type(exc).__name__}") from None
