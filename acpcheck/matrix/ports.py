"""Ports as data (``ports.yaml``): what the load balancer must forward to every
control-plane node, and what nodes must reach on each other. Each row keeps its
docs source, so a finding can cite it.

The ports of one plan (its cluster role, options and overrides applied) are
``acpcheck.model.ports``: the data sits below the plan, which validates its
``spec.loadBalancer.ports`` names against ``lb_port_names``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from acpcheck.matrix import load_data_file

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
