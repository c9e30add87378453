"""The lab scenario keys of the load balancer (``loadBalancer``, ``vip``) and of node
firewalls (the ``dropFrom`` defect); what they build is ``acpcheck_lab.lb``. Kept apart
so that ``acpcheck_lab.scenario`` can use them without importing the lab's machinery."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, Strict, field_validator

from acpcheck.model.plan import Spec


class DropRule(Spec):
    """A firewall rule on a node: drop what comes from another node (or from anyone)."""

    from_: str = Field(alias="from", pattern=r"^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$", description="a node name, or any")
    protocol: Literal["tcp", "udp", "vrrp"] = "tcp"
    ports: list[int] = Field(
        default_factory=list, description="tcp/udp ports; empty: every port (never the node's sshd from the lab)"
    )

    @field_validator("ports")
    @classmethod
    def _ports(cls, value: list[int]) -> list[int]:
        for port in value:
            if not 1 <= port <= 65535:
                raise ValueError(f"{port} is not a port")
        return value


class LabApiServers(Spec):
    """TLS servers on every control-plane node's 6443 that answer /version like kube-apiserver."""

    cert_days: float = Field(
        default=365, ge=-3650, le=3650, description="days until the certificates expire (negative: expired)"
    )
    down: list[str] = Field(default_factory=list, description="control-plane nodes without an API server")
    sans: list[str] = Field(default_factory=list, description="more subject alternative names")
    omit_endpoint: bool = Field(default=False, description="leave the endpoint address out of the certificates")
    version: str = "v1.34.5"


class LabLoadBalancer(Spec):
    endpoint: Literal["up", "down"] = "up"
    ports: list[int] | None = None
    unforwarded: list[int] = Field(default_factory=list)
    # Keys are port numbers; YAML mapping keys arrive as text, so this field converts them.
    missing: dict[Annotated[int, Strict(False)], list[str]] = Field(default_factory=dict)
    balance: Literal["roundrobin", "source"] = "roundrobin"
    health_check: bool = True
    api_servers: LabApiServers | None = None


class LabVip(Spec):
    vrid: int = Field(default=51, ge=1, le=255)


__all__ = ["DropRule", "LabApiServers", "LabLoadBalancer", "LabVip"]
