"""Connections to the machines acpcheck checks.

- ``base`` — the transport protocol every way of reaching a node implements:
  ``NodeTransport`` (run, run_as_root, start, open_channel, forward, close),
  ``BackgroundCommand``, ``LocalForward``, ``Stream``, and ``CommandResult``;
- ``ssh`` — paramiko sessions to nodes (``SshSession``, a NodeTransport) and
  ``SshPool``, the run's one connection pool; acpcheck's own known_hosts
  (``hostkeys``) and settings resolved from the plan (``settings``);
- ``local`` — ``LocalTransport``: the same protocol on this machine (tests, dry-runs);
- ``background`` — the POSIX-sh wrapper behind ``start()``: own process group,
  ``stop()`` kills the group, and a watchdog on the node kills it at its deadline;
- ``net`` — ``open_tcp``: TCP from the runner, direct or through the plan's
  SOCKS5 proxy (``proxy_for``); SSH connects with it too;
- ``forward`` — ``Forwarder``: a 127.0.0.1 listener piping connections through
  a transport's streams (``forward()``).

Every failure is a ``TransportError`` whose ``kind`` is one of the GatherFailure
kinds and whose message never contains a secret.
"""

from __future__ import annotations

from acpcheck.transport.background import Background
from acpcheck.transport.base import BackgroundCommand, CommandResult, LocalForward, NodeTransport, Stream
from acpcheck.transport.errors import FAILURE_KINDS, FailureKind, TransportError
from acpcheck.transport.forward import Forwarder
from acpcheck.transport.hostkeys import KnownHosts, default_known_hosts_path, host_key_name
from acpcheck.transport.local import LocalTransport
from acpcheck.transport.net import open_tcp, proxy_for
from acpcheck.transport.settings import ProxySettings, SecretRef, SshSettings, resolve_ssh
from acpcheck.transport.ssh import (
    DEFAULT_TIMEOUTS,
    SshPool,
    SshSession,
    Timeouts,
    connect,
    connect_node,
    raise_open_file_limit,
)

__all__ = [
    "DEFAULT_TIMEOUTS",
    "FAILURE_KINDS",
    "Background",
    "BackgroundCommand",
    "CommandResult",
    "FailureKind",
    "Forwarder",
    "KnownHosts",
    "LocalForward",
    "LocalTransport",
    "NodeTransport",
    "ProxySettings",
    "SecretRef",
    "SshPool",
    "SshSession",
    "SshSettings",
    "Stream",
    "Timeouts",
    "TransportError",
    "connect",
    "connect_node",
    "default_known_hosts_path",
    "host_key_name",
    "open_tcp",
    "proxy_for",
    "raise_open_file_limit",
    "resolve_ssh",
]
