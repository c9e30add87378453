"""Connections to the machines acpcheck checks.

``ssh`` — paramiko sessions to nodes (direct or through a SOCKS5 proxy), with
acpcheck's own known_hosts (``hostkeys``) and settings resolved from the plan
(``settings``). Every failure is a ``TransportError`` whose ``kind`` is one of
the GatherFailure kinds and whose message never contains a secret.
"""

from __future__ import annotations

from acpcheck.transport.errors import FAILURE_KINDS, FailureKind, TransportError
from acpcheck.transport.hostkeys import KnownHosts, default_known_hosts_path, host_key_name
from acpcheck.transport.settings import ProxySettings, SecretRef, SshSettings, resolve_ssh
from acpcheck.transport.ssh import DEFAULT_TIMEOUTS, CommandResult, SshPool, SshSession, Timeouts, connect, connect_node

__all__ = [
    "DEFAULT_TIMEOUTS",
    "FAILURE_KINDS",
    "CommandResult",
    "FailureKind",
    "KnownHosts",
    "ProxySettings",
    "SecretRef",
    "SshPool",
    "SshSession",
    "SshSettings",
    "Timeouts",
    "TransportError",
    "connect",
    "connect_node",
    "default_known_hosts_path",
    "host_key_name",
    "resolve_ssh",
]
