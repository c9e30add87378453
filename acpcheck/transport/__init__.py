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

- ``kube`` — the Kubernetes API client (``KubeClient``): kubeconfig resolution
  (``kubeconfig_of``, ``load_kubeconfig``), tokens, client certificates held in
  memfds, exec credential plugins, bounded answers, TLS failures named by cause;
- ``etcd`` — the etcd client (``EtcdClient``): etcd's JSON gateway over client TLS,
  and the range pager (``range_values``);
- ``deadline`` — the deadline on one whole exchange (``Deadline``, ``request_timeout``).

The names below are imported on first use: ``acpcheck.transport.kube`` must not load
paramiko (a plan-only run never does), and ``acpcheck.transport.ssh`` loads it.

Every failure is a ``TransportError`` whose ``kind`` is one of the GatherFailure
kinds and whose message never contains a secret.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

#: Public name -> the submodule that defines it (imported when the name is first used).
_LAZY = {
    "Background": "background",
    "BackgroundCommand": "base",
    "CommandResult": "base",
    "LocalForward": "base",
    "NodeTransport": "base",
    "Stream": "base",
    "FAILURE_KINDS": "errors",
    "FailureKind": "errors",
    "TransportError": "errors",
    "Forwarder": "forward",
    "KnownHosts": "hostkeys",
    "default_known_hosts_path": "hostkeys",
    "host_key_name": "hostkeys",
    "LocalTransport": "local",
    "open_tcp": "net",
    "proxy_for": "net",
    "ProxySettings": "settings",
    "SecretRef": "settings",
    "SshSettings": "settings",
    "resolve_ssh": "settings",
    "DEFAULT_TIMEOUTS": "ssh",
    "SshPool": "ssh",
    "SshSession": "ssh",
    "Timeouts": "ssh",
    "connect": "ssh",
    "connect_node": "ssh",
    "raise_open_file_limit": "ssh",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


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
