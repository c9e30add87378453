"""Evidence sources: what checks read, gathered once per run (see ``base`` for the protocol).

The registry maps a source's name to its implementation (imported on first use)
and to the check parameters it fills. A check says what it needs by naming those
parameters in its signature (``def check_swap_off(node)``), so the run can tell
from static metadata which sources to gather, and a plan-only run gathers none.

Adding a source (say, load-balancer observations):

1. write ``acpcheck/sources/lb.py`` with a class that follows ``EvidenceSource``
   (``name = "lb"``, ``order = 10`` so node facts come first; gather through
   ``context.pool`` and ``context.gathered["nodes"]``; save/load JSON under its
   directory; ``provide("lb", …)``);
2. add ``SourceEntry("lb", "acpcheck.sources.lb:LoadBalancerSource", {"lb": "…"})`` below;
3. write checks that take an ``lb`` parameter. The plugin creates the fixture,
   gathers the source only when such a check is selected, saves it with the run,
   replays it under ``--facts`` and hands it to xdist workers.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from acpcheck.sources.base import EvidenceSource, GatherContext, TargetUnavailable


@dataclass(frozen=True)
class SourceEntry:
    """A registered source: its name, where its class lives, what it provides."""

    name: str
    implementation: str  # "package.module:Class", imported on first use
    #: check parameter -> what a check receives in it (the fixture's docstring)
    provides: dict[str, str]

    def create(self) -> EvidenceSource:
        module, _, attribute = self.implementation.partition(":")
        source: Any = getattr(importlib.import_module(module), attribute)()
        return source


REGISTRY: dict[str, SourceEntry] = {
    entry.name: entry
    for entry in (
        SourceEntry(
            "nodes",
            "acpcheck.sources.nodes:NodeFactsSource",
            {
                "node": "The node a node check runs against (one item per plan node of the check's roles): "
                "its plan entry and its facts. A node whose facts could not be gathered is ERROR.",
                "nodes": "Every node's facts at once, for cross-node checks (unique hostnames, clock skew …).",
            },
        ),
        SourceEntry(
            "lb",
            "acpcheck.sources.lb:LoadBalancerSource",
            {
                "lb": "The load-balancer proof (acpcheck.sources.lb.LbEvidence): per required port, which "
                "control-plane node answered through the endpoint, and each node's listener; or, with a self-built "
                "VIP, whether the VIP is free and VRRP passes between the control-plane nodes.",
            },
        ),
        SourceEntry(
            "api_tls",
            "acpcheck.sources.api_tls:ApiTlsSource",
            {
                "api_tls": "Post-install TLS probes (acpcheck.sources.api_tls.ApiTlsEvidence) of endpoint:6443 and of "
                "every control-plane node's own :6443: certificate, expiry, /version.",
            },
        ),
        SourceEntry(
            "connectivity",
            "acpcheck.sources.connectivity:ConnectivitySource",
            {
                "connectivity": "Node-to-node connections on the control-plane and CNI ports, and to the global "
                "cluster (acpcheck.sources.connectivity.ConnEvidence).",
            },
        ),
        SourceEntry(
            "cluster",
            "acpcheck.sources.cluster:ClusterSource",
            {
                "cluster": "The live cluster's API objects (ClusterView), read once with the official kubernetes "
                "client from the run's kubeconfig. An unreachable, unauthorised or broken API is ERROR for every "
                "cluster check."
            },
        ),
        SourceEntry(
            "encryption",
            "acpcheck.sources.encryption:EncryptionSource",
            {
                "encryption": "Each control-plane node's kube-apiserver manifest and encryption config "
                "(EncryptionView; key names and fingerprints, never keys).",
                "etcd": "One scan of etcd's raw values through an SSH forward from a control-plane node (ScanResult: "
                "counts per resource, namespace and category).",
            },
        ),
        # -- hosted control planes: the management cluster and its tenant control planes --
        SourceEntry(
            "hcp_management",
            "acpcheck.sources.hcp_tenants:ManagementSource",
            {
                "management": "What a hosted control plane's management cluster says of itself, read through the "
                "run's kubeconfig (acpcheck.sources.hcp_tenants.ManagementEvidence): whether ACP manages it, and its "
                "own pod and Service CIDRs with where they were read.",
            },
        ),
        SourceEntry(
            "tenants",
            "acpcheck.sources.hcp_tenants:TenantsSource",
            {
                "tenants": "Every TenantControlPlane the management cluster hosts "
                "(acpcheck.sources.hcp_tenants.TenantsEvidence): its status, its endpoint's certificate, its "
                "kubeconfig Secret (keys only), its DataStore and, through the tenant's own API, the Konnectivity "
                "agent.",
            },
        ),
        # -- hosted control planes: the management cluster's SSH hosts (ACP-HCP-030..039) --
        SourceEntry(
            "sshhosts",
            "acpcheck.sources.sshhosts:SshHostSource",
            {
                "ssh_hosts": "The SSH hosts of a hosted control plane's management cluster (SshHostView): each "
                "SSHHost's address, port, reuse policy and credential Secret (key names only), and the node target "
                "that stands for it in this run.",
            },
        ),
        # -- hosted control planes: the management cluster's DataStores and their etcd (ACP-HCP-010..019) --
        SourceEntry(
            "datastore",
            "acpcheck.sources.datastore:DataStoreSource",
            {
                "datastores": "The management cluster's Kamaji DataStores "
                "(acpcheck.sources.datastore.DataStoreEvidence): their specs (Secret references, never values), each "
                "certificate's expiry, and whether each etcd endpoint answered over TLS with the DataStore's own CA "
                "and client certificate (read into memory only).",
            },
        ),
        # -- the image registry, from every node (checks/images.py: ACP-IMG-*, ACP-REG-009) --
        SourceEntry(
            "images",
            "acpcheck.sources.images:ImagesSource",
            {
                "images": "What every node sees of the plan's image registry "
                "(acpcheck.sources.images.ImagesEvidence): TLS with the node's trust or registry.caFile, /v2/ with "
                "and without the credential, each named image's manifest (never the password).",
            },
        ),
        # -- connected clusters: the workload cluster from the runner and from global (ACP-CONN-010..017) --
        SourceEntry(
            "connected",
            "acpcheck.sources.connected:ConnectedSource",
            {
                "connected": "A workload cluster seen from the runner and from the global cluster "
                "(acpcheck.sources.connected.ConnectedEvidence): its API server's TLS and /version from the runner, "
                "TCP from every global control-plane node (SSH) to that API and to 6443/11780/11781 on each of its "
                "control-plane nodes, and global's record of it (clusters.platform.tkestack.io).",
            },
        ),
    )
}


def source_providing(parameter: str) -> SourceEntry | None:
    """The source that fills check parameter ``parameter``, if any."""
    return next((entry for entry in REGISTRY.values() if parameter in entry.provides), None)


def sources_for(needs: Iterable[Iterable[str]]) -> list[SourceEntry]:
    """The sources that the checks with these parameter sets need, in registry order."""
    wanted = {parameter for parameters in needs for parameter in parameters}
    return [entry for entry in REGISTRY.values() if wanted & entry.provides.keys()]


__all__ = [
    "REGISTRY",
    "EvidenceSource",
    "GatherContext",
    "SourceEntry",
    "TargetUnavailable",
    "source_providing",
    "sources_for",
]
