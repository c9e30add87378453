"""What the node checks (``node_*.py``) share: sources, applicability, and how they
conclude when some facts are unknown.

A node check reads ``node.facts`` (a :class:`~acpcheck.facts.model.NodeFacts`) and
never connects anywhere. A fact that is None (or whose probe section failed) is
unknown: the check reports it as MANUAL, or as a note next to real findings, and
never turns it into a FAIL.

It also holds the helpers that the plan checks and the node checks share, so that no
check module imports another. This module holds no checks; the plugin collects it like
the others and finds none.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from netaddr import AddrFormatError, IPAddress, IPRange
from packaging.specifiers import SpecifierSet

from acpcheck import NodeContext, When, fail_if, manual, warn
from acpcheck.addressing import Labelled, parse_ip
from acpcheck.constants import preprocessing_page
from acpcheck.facts.model import Address, field_errors
from acpcheck.matrix.os import os_matrix
from acpcheck.model.plan import ClusterPlan, Network

# ---------------------------------------------------------------------------
# Sources

#: The node preprocessing page of every release in the node matrix, for checks whose
#: rule changed between releases.
PREPROCESSING_PAGES = [preprocessing_page(version) for version in sorted(os_matrix().versions)]


def plan_page(plan: ClusterPlan) -> str:
    """The node preprocessing page of the plan's own ACP version, for messages."""
    return preprocessing_page(plan.spec.acp.version)


#: The Hosted Control Plane concepts page: what a hosted control plane
#: cluster needs (network plugin, runtime, CIDRs, DataStore, management cluster).
HCP_CONCEPTS = "https://docs.alauda.io/hosted-control-plane/1.0/concepts.html"


# ---------------------------------------------------------------------------
# Applicability

#: Cluster types whose nodes are user-provided machines that ACP joins over SSH, the
#: ones node preprocessing is written for. Immutable-OS nodes are image-provisioned
#: (the 4.3 page says the checks do not apply to them), and imported or registered
#: clusters were built by someone else.
PREPROCESSED_CLUSTER_TYPES = frozenset({"on-premise", "hosted-control-plane"})
#: Clusters whose control plane runs as workloads of a management cluster (the ACP-HCP checks).
HOSTED_CONTROL_PLANE = frozenset({"hosted-control-plane"})


def preprocessed(**conditions: Any) -> When:
    """Applies wherever node preprocessing does, plus ``conditions`` (When fields)."""
    return When(cluster_types=PREPROCESSED_CLUSTER_TYPES, **conditions)


def before_install(**conditions: Any) -> When:
    """Applies to nodes not yet installed: not to an upgrade plan, whose nodes run ACP
    and so hold, by design, the ports, unit files and data directories these rules
    want absent on a fresh machine."""
    return When(cluster_types=PREPROCESSED_CLUSTER_TYPES, upgrade=False, **conditions)


# ---------------------------------------------------------------------------
# Unknown facts and concluding


def require(node: NodeContext, *fields: str) -> None:
    """MANUAL when the probe could not read any of ``fields`` on this node.

    A read that failed is listed in ``probe_errors`` as ``"<field>: <why>"``; a
    collection fact of such a read is empty because it is unknown, not because the
    node has nothing in it.
    """
    errors = [f"{field}: {error}" for field in fields for error in field_errors(node.facts, field)]
    if errors:
        manual(f"{node.name}: could not read {', '.join(fields)} ({'; '.join(errors)}); verify by hand")


def conclude(
    findings: Sequence[str], *, warnings: Sequence[str] = (), unknown: Sequence[str] = (), **evidence: Any
) -> None:
    """FAIL with the findings; else WARN with the warnings; else MANUAL for what could
    not be read; else PASS. Unknowns ride along in a FAIL or WARN message so a reader
    sees everything that was not verified."""
    notes = [f"(not verified) {line}" for line in unknown]
    fail_if([*findings, *notes] if findings else [], **evidence)
    if warnings:
        warn("\n".join([*warnings, *notes]), **evidence)
    if unknown:
        manual("\n".join(unknown))


# ---------------------------------------------------------------------------
# Formatting

KIB_PER_GB = 1e9 / 1024  # the docs' GB is 10^9 bytes


def gigabytes(kib: int) -> float:
    """KiB (as /proc and df report them) in the docs' GB."""
    return kib / KIB_PER_GB


def listed(items: Iterable[object]) -> str:
    """'a, b, c', or 'none'."""
    text = ", ".join(str(item) for item in items)
    return text or "none"


def port_ranges(ports: Iterable[int]) -> str:
    """[2379, 2380, 10249, 10250, 10251] -> '2379-2380, 10249-10251'."""
    spans: list[list[int]] = []
    for port in sorted(set(ports)):
        if spans and port == spans[-1][1] + 1:
            spans[-1][1] = port
        else:
            spans.append([port, port])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


# ---------------------------------------------------------------------------
# Shared by the network plan checks and the node checks

#: How many names a message lists before it says "and N more".
LISTED_NAMES = 10


def some_names(names: list[str]) -> str:
    """'a, b, c' or, for long lists, the first few and how many more."""
    shown = ", ".join(names[:LISTED_NAMES])
    return shown if len(names) <= LISTED_NAMES else f"{shown} and {len(names) - LISTED_NAMES} more"


def some_lines(lines: list[str], what: str = "findings") -> list[str]:
    """The first few lines and one that says how many more: a finding per node (or per
    pair) of a 1,000-node plan would otherwise be written, whole, into every report."""
    if len(lines) <= LISTED_NAMES:
        return lines
    return [*lines[:LISTED_NAMES], f"... and {len(lines) - LISTED_NAMES} more {what}"]


#: Ranges the container runtime's bridge takes on each node (node preprocessing N9):
#: Docker's on ACP 4.0/4.1, the installer's nerdctl's from 4.2 on.
DOCKER_ERA = SpecifierSet("<4.2")
DOCKER_BRIDGE_RANGE = IPRange("172.16.0.0", "172.32.255.255")
NERDCTL_BRIDGE_RANGE = IPRange("172.17.0.0", "172.18.255.255")


def runtime_bridge_range(plan: ClusterPlan) -> tuple[str, Labelled]:
    """The container runtime that owns the bridge range on the target ACP version, and the range."""
    version = plan.spec.acp.version
    runtime, bridge = ("Docker", DOCKER_BRIDGE_RANGE) if version in DOCKER_ERA else ("nerdctl", NERDCTL_BRIDGE_RANGE)
    return runtime, Labelled(f"{runtime} bridge range on ACP {version}", bridge)


def ip_or_none(text: str) -> IPAddress | None:
    try:
        return parse_ip(text.split("%", 1)[0])  # drop an IPv6 zone (fe80::1%eth0)
    except (ValueError, AddrFormatError):
        return None


def address_text(address: Address) -> str:
    return f"{address.interface} {address.address}/{address.prefix_length}"


def address_carrying(node: NodeContext, ip: IPAddress) -> Address | None:
    """The interface address on the node equal to ``ip``."""
    return next((a for a in node.facts.addresses if ip_or_none(a.address) == ip), None)


# ---------------------------------------------------------------------------
# Live-cluster checks that verify what a plan section asks for (ACP-ROLE-*, ACP-REG-*)


@dataclass(frozen=True)
class Planned(When):
    """Applies when the plan asks for something (``wants``: a plan predicate, ``what``: how it is
    said in the SKIP reason), live or not."""

    wants: Callable[[ClusterPlan], bool] | None = field(default=None, compare=False)
    what: str = ""

    def not_applicable(self, plan: ClusterPlan) -> str | None:
        reason = super().not_applicable(plan)
        if reason:
            return reason
        if self.wants is not None and not self.wants(plan):
            return f"not applicable: the plan asks for no {self.what}"
        return None

    def describe(self) -> str:
        return ", ".join([super().describe(), f"the plan gives {self.what}"])


@dataclass(frozen=True)
class PlannedInCluster(Planned):
    """``Planned``, and the run has a kubeconfig to look with."""

    def not_applicable(self, plan: ClusterPlan) -> str | None:
        from acpcheck.transport.kube import kubeconfig_of

        reason = super().not_applicable(plan)
        if reason:
            return reason
        if kubeconfig_of(plan)[0] is None:
            return "not applicable: no kubeconfig (spec.kubeconfig, or --kubeconfig): live-cluster checks need one"
        return None

    def describe(self) -> str:
        return ", ".join([super().describe(), "with a kubeconfig"])


def planned_network(plan: ClusterPlan) -> Network:
    """spec.network, which every check reading it has: When(needs_network=True), plugins or
    transmit modes leave out the plans without one (imported and registered clusters)."""
    assert plan.spec.network is not None, "a check reading spec.network applies to a plan without one"
    return plan.spec.network


# -- hosted control planes: the management cluster, read live (checks/hcp_hosts.py) ---------------


@dataclass(frozen=True)
class ManagementClusterLive(PlannedInCluster):
    """Applies to a hosted-control-plane plan whose run has a kubeconfig: the management cluster's
    (ACP-HCP-004 and up: checks/hcp.py, hcp_datastore.py, hcp_hosts.py)."""

    def describe(self) -> str:
        return f"{When.describe(self)}, with the management cluster's kubeconfig"


#: The hosted-control-plane rules that read the management cluster.
MANAGEMENT_CLUSTER = ManagementClusterLive(cluster_types=HOSTED_CONTROL_PLANE)
