"""Names, addresses and state-dir paths of a lab: one place, so ``up`` creates and
``down`` finds exactly the same things.

Several labs can be up on one machine at once (the suite under ``-n``, a benchmark beside
a demo). Each has:

- a *name*, one or two lowercase letters or digits (``--name``; by default the first free
  number, 1, 2, …), and from it the *prefix* ``acplab<name>-`` of every kernel object it
  makes: bridges ``acplab1-direct`` and ``acplab1-hidden``, node namespaces
  ``acplab1-<node>``, veths ``acplab1-n<index>``, the proxy's namespace ``acplab1-proxy``,
  and the sources of the mounts inside its nodes (``acplab1-root``…). Linux interface
  names are at most 15 bytes: ``acplab`` + two characters + ``-`` + ``direct`` is 15,
  and ``n1999`` (the 2,000th node) is shorter, so a name has at most two characters. The
  ``-`` ends every prefix, so no lab's prefix starts another's (``acplab1-`` and
  ``acplab12-``);
- its own state dir (one lab per state dir), whose value the lab's processes carry in
  MARKER_ENV: ``down --state X`` stops the processes marked with X and removes the
  objects with X's prefix, and nothing of another lab;
- its own two subnets, recorded in ``lab.json`` and in the machine's registry of running
  labs (``registry``), so that the next ``up`` picks subnets no lab uses.

Everything of every lab starts with LABS_PREFIX, ``acplab``: ``down --all`` removes all of
it (for labs whose state dir or registry entry is gone).

Two subnets per lab, chosen per ``up`` (``--subnets DIRECT,HIDDEN`` or
``ACPCHECK_LAB_SUBNETS``; else the first pair of the sizes of DEFAULT_SUBNETS that no lab
and nothing on this machine uses, 198.18.0.0/22,198.19.0.0/24 for the first lab,
198.18.4.0/22,198.19.1.0/24 for the second…); every address below is derived from them:

- direct network (default 198.18.0.0/22): bridge ``acplab<name>-direct``; the root
  namespace (the controller) is .1, the proxy's leg .2, a spare endpoint address .10,
  nodes from .11.
- hidden network (default 198.19.0.0/24): bridge ``acplab<name>-hidden``, no address in
  the root namespace; the proxy's leg is .1 (also the hidden nodes' gateway), nodes
  from .11. The root namespace gets an ``unreachable`` route for it, tagged with a
  metric, so a direct attempt fails at once instead of leaving through the machine's
  default route.

Why the subnets come from 198.18.0.0/15: it is set aside for test networks in a lab
(RFC 2544 benchmarking; RFC 6815 and RFC 6890: never on the Internet), so it is rarely
used for anything real. The documentation ranges (RFC 5737), the lab's first defaults,
are not: sandboxes and examples use them for real hosts (interfaces on 192.0.2.0/24,
package mirrors inside 203.0.113.0/24), and a lab on top of them cut the machine off
from those. RFC 1918 space and 100.64.0.0/10 are taken by corporate networks, VPNs,
container bridges and the clusters the plans describe. One /24 in each half of the /15
keeps the two networks apart at a glance (198.18 direct, 198.19 hidden); the direct
network is a /22 so that it holds the 1,000 nodes of ``--nodes 1000``. Some proxy tools
(Clash's fake-ip mode) answer DNS from 198.18.0.0/16: ``up`` inspects the host first
(``hostcheck``) and refuses, naming the clash, whenever a subnet is in use here.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from acpcheck.errors import InputError, Problem
from acpcheck_lab.scenario import FIRST_NODE_HOST, MAX_NODES_PER_NETWORK

#: The start of every kernel object of every lab (``down --all`` removes all of them).
LABS_PREFIX = "acplab"
#: A lab name: one or two lowercase letters or digits (see the module doc for the budget).
LAB_NAME = re.compile(r"[a-z0-9]{1,2}")
#: Linux's limit for an interface name (IFNAMSIZ 16, with the terminating NUL).
IFNAME_MAX = 15
PROXY_PORT = 1080
#: Metric that tags a lab's "unreachable hidden network" route in the root namespace:
#: ``down`` removes the one for its lab's hidden subnet, ``down --all`` every one.
ROUTE_METRIC = 4242
#: Environment variable on every process a lab starts, holding the lab's state dir:
#: ``down`` recognises its lab's processes by it, so a reused pid or another lab's
#: process is never killed.
MARKER_ENV = "ACPCHECK_LAB_STATE"
#: Environment variables (names) the plan refers to; values are in <state>/lab.env.
PROXY_USER_ENV = "ACPLAB_PROXY_USER"
PROXY_PASSWORD_ENV = "ACPLAB_PROXY_PASSWORD"
SSH_PASSWORD_ENV = "ACPLAB_SSH_PASSWORD"
DEFAULT_STATE_DIR = Path("/tmp/acpcheck-lab")
STATE_MARKER = ".acpcheck-lab"

#: ``DIRECT,HIDDEN``: the lab's subnets when neither ``--subnets`` nor SUBNETS_ENV says otherwise.
DEFAULT_SUBNETS = "198.18.0.0/22,198.19.0.0/24"
SUBNETS_ENV = "ACPCHECK_LAB_SUBNETS"
#: Prefix lengths a lab subnet may have (a /28 still holds FIRST_NODE_HOST + 4 nodes).
WIDEST_PREFIX, NARROWEST_PREFIX = 16, 28
#: Host number of the spare direct-network address the plan names as the cluster endpoint.
ENDPOINT_HOST = 10
NETWORK_NAMES = ("direct", "hidden")


@dataclass(frozen=True)
class LabNames:
    """The names of one lab's kernel objects, all starting with its prefix ``acplab<name>-``."""

    name: str

    @classmethod
    def parse(cls, text: str, origin: str = "--name") -> LabNames:
        """InputError (exit 4) naming ``origin`` unless ``text`` is a valid lab name."""
        if not LAB_NAME.fullmatch(text):
            raise InputError(
                [
                    Problem(
                        origin,
                        None,
                        "",
                        f"{text!r}: a lab name is one or two lowercase letters or digits, e.g. 2 or ci (it goes into "
                        f"interface names such as {LABS_PREFIX}ci-direct, which Linux limits to {IFNAME_MAX} "
                        "characters)",
                    )
                ]
            )
        return cls(text)

    @property
    def prefix(self) -> str:
        return f"{LABS_PREFIX}{self.name}-"

    def bridge(self, network: str) -> str:
        return f"{self.prefix}{network}"

    def netns(self, node: str) -> str:
        return f"{self.prefix}{node}"

    def veth(self, index: int) -> str:
        """Root-namespace end of the index-th node's veth (interface names are at most 15 bytes)."""
        return f"{self.prefix}n{index}"

    @property
    def proxy_netns(self) -> str:
        return f"{self.prefix}proxy"

    def proxy_veth(self, network: str) -> str:
        return f"{self.prefix}{'px' if network == 'direct' else 'py'}"

    def mount_source(self, what: str) -> str:
        """The source name of a mount inside a node (``down`` finds the node's processes by it)."""
        return f"{self.prefix}{what}"


@dataclass(frozen=True)
class LabNetwork:
    name: str  # direct | hidden
    cidr: ipaddress.IPv4Network
    gateway: ipaddress.IPv4Address  # the nodes' default route and nameserver
    proxy_address: ipaddress.IPv4Address  # the proxy namespace's leg on this network
    root_address: ipaddress.IPv4Address | None  # the controller's address, None for hidden
    lab: LabNames  # the lab this network belongs to

    @property
    def bridge(self) -> str:
        return self.lab.bridge(self.name)

    @property
    def capacity(self) -> int:
        """How many nodes fit: host numbers FIRST_NODE_HOST.. up to the broadcast address."""
        return max(0, min(MAX_NODES_PER_NETWORK, self.cidr.num_addresses - FIRST_NODE_HOST - 1))

    def node_address(self, index: int) -> ipaddress.IPv4Address:
        """Address of the index-th (0-based) node on this network."""
        if not 0 <= index < self.capacity:
            raise ValueError(
                f"the {self.name} subnet {self.cidr} has addresses for {self.capacity} nodes, not {index + 1}"
            )
        return self.cidr.network_address + FIRST_NODE_HOST + index


@dataclass(frozen=True)
class LabSubnets:
    """The two subnets of one lab; every lab address is derived from them."""

    direct: ipaddress.IPv4Network
    hidden: ipaddress.IPv4Network

    @classmethod
    def parse(cls, text: str, origin: str = "--subnets") -> LabSubnets:
        """``DIRECT,HIDDEN``, e.g. ``198.18.0.0/24,198.19.0.0/24``; InputError (exit 4)
        naming ``origin`` when it is not two usable, separate IPv4 subnets."""
        parts = [part.strip() for part in text.split(",")]
        if len(parts) != 2 or not all(parts):
            raise InputError(
                [Problem(origin, None, "", f"{text!r}: give two IPv4 subnets as DIRECT,HIDDEN, e.g. {DEFAULT_SUBNETS}")]
            )
        problems, networks = [], []
        for name, part in zip(NETWORK_NAMES, parts, strict=True):
            try:
                network = ipaddress.IPv4Network(part)
            except ValueError as error:
                hint = ""
                try:
                    hint = (
                        f" (did you mean {ipaddress.IPv4Network(part, strict=False)}?)"
                        if "/" in part
                        else " (give it with its prefix, e.g. /24)"
                    )
                except ValueError:
                    pass
                problems.append(Problem(origin, None, "", f"{name} subnet {part!r}: not an IPv4 subnet: {error}{hint}"))
                continue
            why = _unusable(network)
            if why:
                problems.append(Problem(origin, None, "", f"{name} subnet {network}: {why}"))
            networks.append(network)
        if not problems and networks[0].overlaps(networks[1]):
            problems.append(
                Problem(
                    origin,
                    None,
                    "",
                    (
                        f"the direct subnet {networks[0]} and the hidden subnet {networks[1]} overlap; give two "
                        "separate subnets"
                    ),
                )
            )
        if problems:
            raise InputError(problems)
        return cls(networks[0], networks[1])

    @classmethod
    def default(cls) -> LabSubnets:
        return cls.parse(DEFAULT_SUBNETS, "DEFAULT_SUBNETS")

    @classmethod
    def chosen(cls, option: str | None = None, environ: Mapping[str, str] | None = None) -> LabSubnets:
        """``--subnets`` if given, else the SUBNETS_ENV environment variable, else the defaults."""
        if option is not None:
            return cls.parse(option, "--subnets")
        value = (os.environ if environ is None else environ).get(SUBNETS_ENV, "").strip()
        return cls.parse(value, SUBNETS_ENV) if value else cls.default()

    @classmethod
    def from_dict(cls, data: Mapping[str, str]) -> LabSubnets:
        return cls(ipaddress.IPv4Network(data["direct"]), ipaddress.IPv4Network(data["hidden"]))

    def as_dict(self) -> dict[str, str]:
        return {"direct": str(self.direct), "hidden": str(self.hidden)}

    def __str__(self) -> str:
        return f"{self.direct},{self.hidden}"

    def cidr(self, name: str) -> ipaddress.IPv4Network:
        return self.direct if name == "direct" else self.hidden

    def networks(self, lab: LabNames) -> dict[str, LabNetwork]:
        """The two networks of lab ``lab`` on these subnets."""
        direct, hidden = self.direct.network_address, self.hidden.network_address
        return {
            "direct": LabNetwork("direct", self.direct, direct + 1, direct + 2, direct + 1, lab),
            "hidden": LabNetwork("hidden", self.hidden, hidden + 1, hidden + 1, None, lab),
        }

    @property
    def endpoint_address(self) -> ipaddress.IPv4Address:
        """An unused direct-network address, written into the plan as the cluster endpoint."""
        return self.direct.network_address + ENDPOINT_HOST

    def check_room(self, counts: Mapping[str, int], origin: str = "--subnets") -> None:
        """InputError unless each network has addresses for its ``counts[name]`` nodes."""
        networks = self.networks(LabNames("0"))  # capacity only: any name does
        problems = [
            Problem(
                origin,
                None,
                "",
                f"the {name} subnet {networks[name].cidr} has addresses for {networks[name].capacity} nodes "
                f"(host numbers {FIRST_NODE_HOST} up to the broadcast address); the scenario puts {count} there. "
                "Give a wider subnet",
            )
            for name, count in counts.items()
            if count > networks[name].capacity
        ]
        if problems:
            raise InputError(problems)


def _unusable(network: ipaddress.IPv4Network) -> str | None:
    if not WIDEST_PREFIX <= network.prefixlen <= NARROWEST_PREFIX:
        return f"the prefix must be between /{WIDEST_PREFIX} and /{NARROWEST_PREFIX}"
    for test, what in (
        ("is_loopback", "loopback"),
        ("is_multicast", "multicast"),
        ("is_link_local", "link-local"),
        ("is_reserved", "reserved (240.0.0.0/4)"),
        ("is_unspecified", "unspecified"),
    ):
        if getattr(network, test):
            return f"a {what} range cannot be a lab network"
    if network.overlaps(ipaddress.IPv4Network("0.0.0.0/8")):
        return '0.0.0.0/8 means "this network"; it cannot be a lab network'
    return None


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
