"""The scenario sections of the lab's control plane: ``controlPlane:`` on a node (its
kube-apiserver files and etcd) and ``liveCluster:`` (the test API server and etcd's data).
What they build is ``acpcheck_lab.etcd``. Kept apart so that ``acpcheck_lab.scenario`` can
use them without importing the lab's machinery (as ``lbmodel`` for the load balancer)."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import Field

from acpcheck.model.plan import Spec

ConfigVariant = Literal[
    "current",
    "identity-first",
    "no-configmaps",
    "ten-keys",
    "other-keys",
    "unparsable",
    "missing",
    "not-set",
]
CONFIG_VARIANTS: tuple[str, ...] = get_args(ConfigVariant)
EecState = Literal["success", "processing", "update-failed", "overdue", "absent", "not-installed"]
EEC_STATES: tuple[str, ...] = get_args(EecState)


class ControlPlaneSpec(Spec):
    """A node's control-plane files (and etcd); every default is the healthy state."""

    etcd: bool = Field(
        default=False, description="run etcd (etcd-server) on this node's 127.0.0.1:2379 with client TLS"
    )
    manifest: bool = Field(default=True, description="a kube-apiserver static pod manifest exists")
    encryption_config: ConfigVariant = Field(
        default="current", description="which encryption-provider.conf the node has"
    )
    config_mode: str = Field(default="0600", pattern=r"^0?[0-7]{3}$", description="mode of encryption-provider.conf")
    config_owner: Literal["root", "acplab"] = Field(default="root", description="owner of encryption-provider.conf")
    etcd_client_cert: Literal["valid", "wrong-ca"] = Field(
        default="valid", description="the apiserver-etcd-client certificate etcd trusts, or one it does not"
    )


class EtcdDataSpec(Spec):
    mix: Literal["realistic", "encrypted"] = Field(
        default="realistic", description="realistic: a mix of stale, plain, identity and retired-key values"
    )
    objects: int = Field(
        default=0, ge=0, le=2_000_000, description="more secrets, encrypted with the current key (benchmarks)"
    )


class LiveClusterSpec(Spec):
    """The cluster the control-plane nodes form: the test API server and etcd's data."""

    api_server: str | None = Field(
        default=None, description="the node in whose namespace the test API server listens on :6443"
    )
    etcd_encryption_config: EecState = Field(default="success", description="state of EtcdEncryptionConfig default")
    etcd_data: EtcdDataSpec = Field(default_factory=EtcdDataSpec)
