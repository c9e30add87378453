"""Names, addresses and state-dir paths of a lab: one place, so ``up`` creates and
``down`` finds exactly the same things.

Only one lab runs on a machine at a time (its addresses live in the root namespace's
routing table), so every kernel object is named with the fixed prefix ``acplab-`` and
``down`` removes everything with that prefix, whatever state dir it is given.

Addresses come from documentation ranges only (RFC 5737), so nothing can be mistaken
for a real network:

- direct network 203.0.113.0/24 (TEST-NET-3): bridge ``acplab-direct``; the root
  namespace (the controller) is .1, the proxy's leg .2, a spare endpoint address .10,
  nodes from .11. 192.0.2.0/24 is not used because it is a common "example" range
  that machines do use for real (this one's eth0 is on it).
- hidden network 198.51.100.0/24 (TEST-NET-2): bridge ``acplab-hidden``, no address in
  the root namespace; the proxy's leg is .1 (also the hidden nodes' gateway), nodes
  from .11. The root namespace gets an ``unreachable`` route for it, so a direct
  attempt fails at once instead of leaving through the machine's default route.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from acpcheck.lab.scenario import FIRST_NODE_HOST

PREFIX = "acplab-"
BRIDGE = {"direct": "acplab-direct", "hidden": "acplab-hidden"}
PROXY_NS = "acplab-proxy"
PROXY_PORT = 1080
#: Environment variable on every process the lab starts, holding the state dir:
#: ``down`` recognises lab processes by it, so a reused pid is never killed.
MARKER_ENV = "ACPCHECK_LAB_STATE"
#: Environment variables (names) the plan refers to; values are in <state>/lab.env.
PROXY_USER_ENV = "ACPLAB_PROXY_USER"
PROXY_PASSWORD_ENV = "ACPLAB_PROXY_PASSWORD"
SSH_PASSWORD_ENV = "ACPLAB_SSH_PASSWORD"
DEFAULT_STATE_DIR = Path("/tmp/acpcheck-lab")
STATE_MARKER = ".acpcheck-lab"


@dataclass(frozen=True)
class LabNetwork:
    name: str  # direct | hidden
    cidr: ipaddress.IPv4Network
    gateway: ipaddress.IPv4Address  # the nodes' default route and nameserver
    proxy_address: ipaddress.IPv4Address  # the proxy namespace's leg on this network
    root_address: ipaddress.IPv4Address | None  # the controller's address, None for hidden

    @property
    def bridge(self) -> str:
        return BRIDGE[self.name]

    def node_address(self, index: int) -> ipaddress.IPv4Address:
        """Address of the index-th (0-based) node on this network."""
        return self.cidr.network_address + FIRST_NODE_HOST + index


_DIRECT = ipaddress.IPv4Network("203.0.113.0/24")
_HIDDEN = ipaddress.IPv4Network("198.51.100.0/24")
NETWORKS = {
    "direct": LabNetwork("direct", _DIRECT, _DIRECT.network_address + 1, _DIRECT.network_address + 2, _DIRECT.network_address + 1),
    "hidden": LabNetwork("hidden", _HIDDEN, _HIDDEN.network_address + 1, _HIDDEN.network_address + 1, None),
}
#: An unused direct-network address, written into the plan as the cluster endpoint.
ENDPOINT_ADDRESS = _DIRECT.network_address + 10


def netns_name(node: str) -> str:
    return f"{PREFIX}{node}"


def veth_name(index: int) -> str:
    """Root-namespace end of a node's veth (interface names are at most 15 bytes)."""
    return f"{PREFIX}n{index}"


PROXY_VETH = {"direct": f"{PREFIX}px", "hidden": f"{PREFIX}py"}


@dataclass(frozen=True)
class StatePaths:
    """Everything a lab writes lives under one state directory."""

    root: Path

    @property
    def marker(self) -> Path:
        return self.root / STATE_MARKER

    @property
    def info(self) -> Path:
        return self.root / "lab.json"  # LabInfo without secrets

    @property
    def env(self) -> Path:
        return self.root / "lab.env"  # mode 0600: the secrets, as `export` lines

    @property
    def plan(self) -> Path:
        return self.root / "plan.yaml"

    @property
    def ssh_config(self) -> Path:
        return self.root / "ssh_config"

    @property
    def known_hosts(self) -> Path:
        return self.root / "known_hosts"

    @property
    def keys(self) -> Path:
        return self.root / "keys"  # kept by `down` (unless purged): stable host keys

    @property
    def client_key(self) -> Path:
        return self.keys / "id_ed25519"

    def host_key(self, node: str) -> Path:
        return self.keys / "hosts" / f"{node}_ed25519"

    @property
    def keeper_pid(self) -> Path:
        return self.root / "keeper.pid"

    @property
    def proxy_dir(self) -> Path:
        return self.root / "proxy"

    @property
    def nodes(self) -> Path:
        return self.root / "nodes"

    def node_dir(self, node: str) -> Path:
        return self.nodes / node
