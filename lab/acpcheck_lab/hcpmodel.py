"""The scenario section ``hcp:``: a hosted control plane's management cluster in the lab
(what ``acpcheck_lab.hcplab`` builds). Kept apart so that ``acpcheck_lab.scenario`` can use
it without importing the lab's machinery (as ``etcdmodel`` and ``lbmodel``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from acpcheck.model.plan import Spec

_NAME = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"


class LabSshHost(Spec):
    """An SSHHost object of the management cluster."""

    name: str = Field(pattern=_NAME)
    node: str | None = Field(
        default=None,
        description="the lab node this host is; null: an address of the lab network where no node answers",
    )
    port: int = Field(default=22, ge=1, le=65535)
    credentials: Literal["ssh-auth", "basic-auth", "missing-secret", "no-login", "none"] = Field(
        default="ssh-auth",
        description=(
            "its credential Secret: ssh-auth (ssh-privatekey), basic-auth (username, password), missing-secret "
            "(the reference names no Secret that exists), no-login (a Secret without a login key), none (no reference)"
        ),
    )
    reuse_policy: str | None = Field(default="Reuse", description="spec.reusePolicy; null: not stated")


class LabPool(Spec):
    """A MetalLB IPAddressPool (metallb-system)."""

    name: str = Field(pattern=_NAME)
    addresses: list[str] = Field(
        min_length=1, description="CIDRs or first-last ranges; 'endpoint': the plan's endpoint address (a /32)"
    )


class LabDataStore(Spec):
    """A Kamaji DataStore backed by the lab's real etcd (a node with ``controlPlane: {etcd: true}``)."""

    name: str = Field(pattern=_NAME)
    endpoints: int = Field(default=2, ge=1, le=2, description="how many endpoints it lists (names of one etcd)")
    tls: bool = Field(default=True, description="a tlsConfig (CA, client certificate and key Secrets)")
    client_cert: Literal["valid", "wrong-ca"] = Field(
        default="valid", description="the client certificate etcd accepts, or one of a CA etcd does not trust"
    )


class LabTenant(Spec):
    """A tenant control plane: Kamaji's TenantControlPlane (and the KamajiControlPlane behind it)."""

    name: str = Field(pattern=_NAME)
    version: str = "v1.34.5"
    ready: bool = True
    data_store: str = Field(alias="dataStore")
    pod_cidr: str = Field(default="10.13.0.0/16", alias="podCIDR")
    service_cidr: str = Field(default="10.14.0.0/16", alias="serviceCIDR")
    replicas: int = Field(default=2, ge=1)


class HcpSpec(Spec):
    """The management cluster of hosted control planes, on the test API server of ``liveCluster.apiServer``
    (a stand-in for kube-apiserver): its plugins' CRDs, MetalLB pools, SSH hosts, DataStores and tenants."""

    namespace: str = Field(default="cpaas-system", pattern=_NAME, description="where the namespaced objects go")
    missing_plugins: list[str] = Field(
        default_factory=list, description="cluster plugins (acpcheck/matrix/hcp_plugins.yaml) whose CRDs are left out"
    )
    pools: list[LabPool] = Field(default_factory=list)
    ssh_hosts: list[LabSshHost] = Field(default_factory=list)
    data_stores: list[LabDataStore] = Field(default_factory=list)
    tenants: list[LabTenant] = Field(default_factory=list)
    plan_nodes: bool = Field(
        default=False,
        description="false: the generated plan lists no nodes (the workers are the SSH hosts, found by the run)",
    )
