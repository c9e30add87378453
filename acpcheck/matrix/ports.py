"""Ports as data (``ports.yaml``): what the load balancer must forward to every
control-plane node, and what nodes must reach on each other.

``lb_ports(plan)`` gives the LB ports of a plan: the rows for its cluster role whose
condition holds (the built-in registry, global DR, HTTP enabled), then the plan's
overrides by name (``spec.loadBalancer.ports``: a new number, or null to drop a
port). ``connectivity_ports(plan)`` gives the node-to-node ports of its network
plugin. Each row keeps its docs source, so a finding can cite it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from acpcheck.matrix import load_data_file

if TYPE_CHECKING:
    from acpcheck.model.plan import ClusterPlan

PORTS_FILE = Path(__file__).with_name("ports.yaml")


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, frozen=True)


class LbPortRow(_Data):
    name: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    port: int = Field(ge=1, le=65535)
    roles: list[Literal["global", "workload"]] = Field(min_length=1)
    when: Literal["always", "builtInRegistry", "disasterRecovery", "http"]
    purpose: str
    source: str = Field(pattern=r"^https://")


class ConnPortRow(_Data):
    name: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    port: int = Field(ge=1, le=65535)
    protocol: Literal["tcp", "udp"]
    to: Literal["control-plane", "all"]
    plugins: list[str] = Field(default_factory=list)
    modes: list[Literal["overlay", "underlay"]] = Field(default_factory=list)
    source: str = Field(pattern=r"^https://")


class PortsData(_Data):
    load_balancer: list[LbPortRow]
    connectivity: list[ConnPortRow]


@lru_cache(maxsize=1)
def ports_data() -> PortsData:
    return load_data_file(PORTS_FILE, PortsData, "ports data")


def lb_port_names() -> list[str]:
    """Every LB port name the data knows (what ``spec.loadBalancer.ports`` may override)."""
    return list(dict.fromkeys(row.name for row in ports_data().load_balancer))


@dataclass(frozen=True)
class LbPort:
    """One port the LB must forward to every control-plane node."""

    name: str
    port: int
    purpose: str
    source: str
    overridden: bool = False  # the number comes from spec.loadBalancer.ports

    def label(self) -> str:
        return f"{self.port} ({self.name})"


@dataclass(frozen=True)
class ConnPort:
    name: str
    port: int
    protocol: str  # tcp | udp
    to: str  # control-plane | all
    source: str

    def label(self) -> str:
        return f"{self.port}/{self.protocol} ({self.name})"


def lb_ports(plan: ClusterPlan) -> list[LbPort]:
    """The LB ports of ``plan``, overrides applied, in data order, without duplicates."""
    spec = plan.spec
    lb = spec.load_balancer
    holds = {
        "always": True,
        "builtInRegistry": spec.registry.type == "platform",
        "disasterRecovery": lb.disaster_recovery,
        "http": lb.http_enabled,
    }
    ports: list[LbPort] = []
    seen: set[int] = set()
    for row in ports_data().load_balancer:
        if spec.cluster.role not in row.roles or not holds[row.when]:
            continue
        number, overridden = row.port, False
        if row.name in lb.ports:
            override = lb.ports[row.name]
            if override is None:
                continue
            number, overridden = override, override != row.port
        if number not in seen:
            seen.add(number)
            ports.append(LbPort(row.name, number, row.purpose, row.source, overridden))
    return ports


def connectivity_ports(plan: ClusterPlan) -> list[ConnPort]:
    """The node-to-node ports of ``plan``'s network plugin (all rows without a plugin, too)."""
    network = plan.spec.network
    plugin = network.plugin if network is not None else None
    mode = network.kube_ovn.transmit_mode if network is not None and plugin == "kube-ovn" else None
    return [
        ConnPort(row.name, row.port, row.protocol, row.to, row.source)
        for row in ports_data().connectivity
        if (not row.plugins or plugin in row.plugins) and (not row.modes or mode in row.modes)
    ]
