"""The ports of one plan, from the ports data (``acpcheck/matrix/ports.yaml``).

``lb_ports(plan)`` gives the LB ports of a plan: the rows for its cluster role whose
condition holds (the built-in registry, global DR, HTTP enabled), then the plan's
overrides by name (``spec.loadBalancer.ports``: a new number, or null to drop a
port). ``connectivity_ports(plan)`` gives the node-to-node ports of its network
plugin. Each port keeps its row's docs source, so a finding can cite it.
"""

from __future__ import annotations

from dataclasses import dataclass

from acpcheck.matrix.ports import ports_data
from acpcheck.model.plan import ClusterPlan


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
