"""A node's effective SSH settings, resolved from the plan; secrets stay references.

``resolve_ssh(plan, node)`` merges the node's ``ssh:`` override over ``spec.ssh``:

- ``port``, ``user``, ``hostKeyPolicy``: the node's value when it gives one;
- ``auth``: the node's block replaces the default block as a whole (a node that
  logs in with a password must not silently inherit the default key);
- ``proxy``: the node's block replaces the default; an explicit ``proxy: null`` on
  the node means "connect directly" even when the plan has a default proxy;
- host: ``sshHost``, else the node's IPv4, else its IPv6 address.

Passwords and passphrases are held as ``SecretRef`` (which variable or file holds
them) and read only by ``SecretRef.read()`` at connect time, so a settings object
can be printed, logged or pickled to an xdist worker without leaking anything.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from acpcheck.transport.errors import TransportError

if TYPE_CHECKING:
    from acpcheck.model.plan import ClusterPlan, Node, Proxy

HostKeyPolicy = Literal["strict", "accept-new", "insecure"]


def hostport(host: str, port: int) -> str:
    """``host:port``, with an IPv6 address in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True)
class SecretRef:
    """Where a secret is kept (an environment variable or a file), never its value."""

    what: str  # "SSH password", "passphrase of the private key" …: for messages
    env: str | None = None
    file: Path | None = None

    def read(self) -> str:
        """The secret. Failures name the variable or file, never the content."""
        if self.env:
            value = os.environ.get(self.env)
            if not value:
                state = "is empty" if value == "" else "is not set"
                raise TransportError("auth", f"{self.what}: environment variable {self.env} {state}")
            return value
        assert self.file is not None, "a SecretRef needs env or file"
        try:
            text = self.file.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise TransportError("permission", f"{self.what}: file {self.file} does not exist") from None
        except PermissionError:
            raise TransportError(
                "permission", f"{self.what}: file {self.file} is not readable (permission denied)"
            ) from None
        except (OSError, UnicodeError) as exc:
            # The exception text of a decode error quotes bytes of the file: name the type only.
            raise TransportError(
                "permission", f"{self.what}: file {self.file} cannot be read ({type(exc).__name__})"
            ) from None
        # Editors end files with a newline; it is never part of the password.
        value = text.rstrip("\r\n")
        if not value:
            raise TransportError("auth", f"{self.what}: file {self.file} is empty")
        return value


@dataclass(frozen=True)
class ProxySettings:
    """A SOCKS5 proxy; ``remote_dns`` follows the URL scheme (socks5h:// resolves on the proxy)."""

    host: str
    port: int
    remote_dns: bool
    username: str | None = None
    username_env: str | None = None
    password: SecretRef | None = None

    @property
    def address(self) -> str:
        return hostport(self.host, self.port)

    def read_username(self) -> str | None:
        if self.username_env:
            return SecretRef("SOCKS5 proxy username", env=self.username_env).read()
        return self.username


@dataclass(frozen=True)
class SshSettings:
    """Everything needed to reach one node over SSH."""

    node: str
    host: str
    port: int
    user: str
    host_key_policy: HostKeyPolicy
    key_file: Path | None = None
    passphrase: SecretRef | None = None
    password: SecretRef | None = None
    proxy: ProxySettings | None = None

    @property
    def address(self) -> str:
        """``user@host:port`` (IPv6 in brackets), for messages."""
        return f"{self.user}@{hostport(self.host, self.port)}"

    @property
    def is_root(self) -> bool:
        return self.user == "root"


_PROXY_URL = re.compile(
    r"^(?P<scheme>socks5h?)://(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^:/@\[\]]+)):(?P<port>\d{1,5})/?$"
)


def _path(value: str) -> Path:
    return Path(os.path.expanduser(value))


def _proxy(proxy: Proxy) -> ProxySettings:
    match = _PROXY_URL.match(proxy.url)
    if match is None:  # the plan schema already refuses these; keep the message secret-free anyway
        raise TransportError("proxy", "the proxy URL is not socks5://host:port")
    password = None
    if proxy.password_env:
        password = SecretRef("SOCKS5 proxy password", env=proxy.password_env)
    elif proxy.password_file:
        password = SecretRef("SOCKS5 proxy password", file=_path(proxy.password_file))
    return ProxySettings(
        host=match["v6"] or match["host"],
        port=int(match["port"]),
        remote_dns=match["scheme"] == "socks5h",
        username=proxy.username,
        username_env=proxy.username_env,
        password=password,
    )


def proxy_for(plan: ClusterPlan, node: Node | None = None) -> ProxySettings | None:
    """The SOCKS5 proxy that reaches ``node`` (None: connect directly).

    The node's own ``ssh.proxy`` when it sets one (``proxy: null`` there means
    direct), else the plan's ``spec.ssh.proxy``; without a node, the plan's.
    """
    proxy = plan.spec.ssh.proxy
    override = node.ssh if node is not None else None
    # `proxy: null` written on the node means "direct"; leaving it out inherits the default.
    if override is not None and "proxy" in override.model_fields_set:
        proxy = override.proxy
    return _proxy(proxy) if proxy is not None else None


def resolve_ssh(plan: ClusterPlan, node: Node) -> SshSettings:
    """The effective SSH settings of ``node`` (see the module docstring for the merge rules)."""
    defaults = plan.spec.ssh
    override = node.ssh
    if override is None:
        port, user, policy, auth = defaults.port, defaults.user, defaults.host_key_policy, defaults.auth
    else:
        port = override.port if override.port is not None else defaults.port
        user = override.user if override.user is not None else defaults.user
        policy = override.host_key_policy if override.host_key_policy is not None else defaults.host_key_policy
        auth = override.auth if override.auth is not None else defaults.auth

    password = None
    if auth.password_env:
        password = SecretRef("SSH password", env=auth.password_env)
    elif auth.password_file:
        password = SecretRef("SSH password", file=_path(auth.password_file))
    return SshSettings(
        node=node.name,
        host=node.ssh_host or str(node.ipv4 if node.ipv4 is not None else node.ipv6),
        port=port,
        user=user,
        host_key_policy=policy,
        key_file=_path(auth.private_key_file) if auth.private_key_file else None,
        passphrase=SecretRef("passphrase of the private key", env=auth.passphrase_env) if auth.passphrase_env else None,
        password=password,
        proxy=proxy_for(plan, node),
    )
