"""Builders for node-check tables: healthy facts, a node or a node set on the example
plan, and grading the way the plugin grades.

    verdict = grade(check_swap_disabled, node_context("w1", swaps=("/swap.img",)))

``healthy_facts`` describes a node that passes every node check: Ubuntu 22.04 with
kernel 5.15.0-56-generic on x86_64, 16 CPUs, 32 GiB, the required modules loaded, no
swap, sshd with UseDNS/UsePAM no, DefaultTasksMax infinity, good /etc/hosts and
resolv.conf, a default route, its plan IP on eth0/24 (also the SSH address), a spare NIC
eth1 without an address, nothing listening but sshd:22,
dedicated data disks. Keyword arguments replace single fields.

The plan is examples/workload-kube-ovn.yaml (ACP 4.3, Kube-OVN overlay, cp1-cp3 at
192.0.2.11-13, w1/w2 at 192.0.2.21-22); ``plan_with`` deep-merges edits into it.

Tables are lists of ``case(...)``; ``run_case`` builds the target, grades it and
checks the status and the message. tests/nodes is a package (``nodes``) so that
these helpers import as ``nodes.conftest`` whatever else is collected.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from acpcheck import testing
from acpcheck.facts.model import Address, DiskSpace, GatherFailure, Listener, Mount, NodeContext, NodeFacts, NodeSet
from acpcheck.matrix import known_acp_versions
from acpcheck.model.check import Severity
from acpcheck.model.plan import ClusterPlan, load_plan, plan_from_document
from acpcheck.model.result import CheckResult
from acpcheck.yamlsource import parse_yaml

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "workload-kube-ovn.yaml"
EXAMPLE_DATA: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
EXAMPLE_PLAN = load_plan(EXAMPLE)

KIB_PER_GIB = 1024 * 1024
#: The controller's clock when the healthy probe ran (2026-01-01T00:00:00Z).
PROBE_EPOCH = 1_767_225_600.0

REQUIRED_BINARIES = ("ip", "ss", "tar", "swapoff", "modprobe", "sysctl", "md5sum", "scp", "sftp")
LOADED_MODULES = frozenset(
    {"ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_sh", "nf_conntrack", "geneve", "openvswitch", "br_netfilter", "overlay"}
)


def disk(path: str, size_gib: float, free_gib: float, mount: str | None = None) -> DiskSpace:
    """Space for ``path``; by default the path is its own (dedicated) mount."""
    return DiskSpace(
        path=path, mount=mount or path, size_kib=int(size_gib * KIB_PER_GIB), available_kib=int(free_gib * KIB_PER_GIB)
    )


def mount(target: str, fstype: str = "xfs", *options: str, source: str = "/dev/sdb1") -> Mount:
    return Mount(source=source, target=target, fstype=fstype, options=options or ("rw", "relatime"))


HEALTHY_MOUNTS = (
    mount("/", "ext4", source="/dev/sda1"),
    mount("/var/lib/etcd", source="/dev/sdb1"),
    mount("/var/lib/containerd", source="/dev/sdc1"),
    mount("/cpaas", source="/dev/sdd1"),
)
HEALTHY_DISKS = (
    disk("/", 200, 150),
    disk("/var/lib/etcd", 50, 50),
    disk("/var/lib/containerd", 300, 300),
    disk("/cpaas", 300, 300),
)


def plan_ip(name: str, plan: ClusterPlan | None = None) -> str:
    node = next(n for n in (plan or EXAMPLE_PLAN).spec.nodes if n.name == name)
    return str(node.ipv4 or node.ipv6)


def healthy_facts(name: str = "cp1", plan: ClusterPlan | None = None, **overrides: Any) -> NodeFacts:
    """Facts of a node that passes every node check, with ``overrides`` replacing fields."""
    ip = plan_ip(name, plan)
    facts = NodeFacts(
        node=name,
        gathered_at="2026-01-01T00:00:00Z",
        round_trip_seconds=0.2,
        clock_epoch=PROBE_EPOCH,
        clock_read_at_epoch=PROBE_EPOCH,
        os_id="ubuntu",
        os_version_id="22.04",
        os_pretty_name="Ubuntu 22.04.1 LTS",
        kernel_release="5.15.0-56-generic",
        architecture="x86_64",
        cpu_count=16,
        cpu_model="Intel(R) Xeon(R) Gold 6248R CPU @ 3.00GHz",
        memory_kib=32 * KIB_PER_GIB,
        swaps=(),
        kernel_cmdline="BOOT_IMAGE=/boot/vmlinuz-5.15.0-56-generic root=/dev/sda1 ro transparent_hugepage=never",
        modules=LOADED_MODULES,
        sysctls={"net.ipv4.ip_forward": "1"},
        selinux=None,
        apparmor_enabled=False,
        firewall_services={"ufw": "inactive", "nftables": "inactive"},
        sshd={"port": "22", "usedns": "no", "usepam": "no"},
        default_tasks_max="infinity",
        hostname=name,
        etc_hosts=f"127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n{ip} {name}\n",
        resolv_conf="nameserver 192.0.2.53\nnameserver 198.51.100.53\n",
        systemd_resolved_active=False,
        addresses=(Address("lo", 4, "127.0.0.1", 8), Address("eth0", 4, ip, 24)),
        routes=(
            "default via 192.0.2.1 dev eth0 proto static",
            f"192.0.2.0/24 dev eth0 proto kernel scope link src {ip}",
        ),
        listeners=(Listener("tcp", "0.0.0.0", 22, "sshd"),),
        package_manager="dpkg",
        installed_packages=frozenset(),
        snaps=frozenset(),
        binaries={binary: f"/usr/bin/{binary}" for binary in REQUIRED_BINARIES},
        usr_local_bin=frozenset(),
        existing_paths=frozenset(),
        mounts=HEALTHY_MOUNTS,
        disks=HEALTHY_DISKS,
        timezone="UTC",
        cgroup_fs="cgroup2fs",
        user="root",
        is_root=True,
        passwordless_sudo=None,
        interfaces=("lo", "eth0", "eth1"),  # eth1: a spare NIC without an address (Kube-OVN Underlay)
        ssh_server_address=ip,
    )
    return dataclasses.replace(facts, **overrides)


# ---------------------------------------------------------------------------
# Plans, nodes and node sets


def merge(base: Any, edits: Any) -> Any:
    """``edits`` deep-merged into ``base`` (dicts merge, anything else replaces)."""
    if isinstance(edits, dict) and isinstance(base, dict):
        return {**base, **{key: merge(base.get(key), value) for key, value in edits.items()}}
    return copy.deepcopy(edits)


def plan_with(edits: dict[str, Any] | None = None) -> ClusterPlan:
    """The example plan with ``edits`` (a partial plan document) merged in, through the real loader."""
    if not edits:
        return EXAMPLE_PLAN
    data = merge(EXAMPLE_DATA, edits)
    return plan_from_document(parse_yaml(yaml.safe_dump(data), "test-plan.yaml"), known_acp_versions())


def node_context(name: str = "cp1", plan: ClusterPlan | None = None, **overrides: Any) -> NodeContext:
    """What a node check gets as ``node``: the plan's entry for ``name`` and its facts."""
    plan = plan or EXAMPLE_PLAN
    spec = next(n for n in plan.spec.nodes if n.name == name)
    return NodeContext(spec=spec, facts=healthy_facts(name, plan, **overrides), plan=plan)


def node_set(
    plan: ClusterPlan | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
    failures: dict[str, str] | None = None,
) -> NodeSet:
    """What a cross-node check gets as ``nodes``: every plan node, each with its own
    ``overrides``, except those in ``failures`` (name -> failure kind)."""
    plan = plan or EXAMPLE_PLAN
    overrides, failures = overrides or {}, failures or {}
    members = tuple(
        node_context(n.name, plan, **overrides.get(n.name, {})) for n in plan.spec.nodes if n.name not in failures
    )
    lost = {name: GatherFailure(name, kind, f"{kind} (test)") for name, kind in failures.items()}
    return NodeSet(members=members, failures=lost, plan=plan)


def grade(
    check_fn: Callable[..., Any], target: NodeContext | NodeSet, fail_on: Severity = Severity.MEDIUM
) -> CheckResult:
    """Grade one node or cross-node check exactly as a run does (acpcheck.testing)."""
    argument = "node" if isinstance(target, NodeContext) else "nodes"
    assert argument in check_fn.__acpcheck__.needs, f"{check_fn.__acpcheck__.id} does not take {argument!r}"
    return testing.run_check(check_fn, target.plan, fail_on=fail_on, **{argument: target})


# ---------------------------------------------------------------------------
# Tables


@dataclasses.dataclass(frozen=True)
class Case:
    """One row of a check table."""

    check: Callable[..., Any]
    expect: str  # pass | fail | warn | skip | manual
    facts: dict[str, Any] = dataclasses.field(default_factory=dict)  # overrides of the node's facts
    plan: dict[str, Any] = dataclasses.field(default_factory=dict)  # edits to the example plan
    node: str = "cp1"
    node_set: dict[str, dict[str, Any]] | None = None  # cross-node: overrides per node
    failures: dict[str, str] = dataclasses.field(default_factory=dict)  # cross-node: nodes not gathered
    mentions: tuple[str, ...] = ()  # text the message must contain (the values seen)
    fail_on: Severity = Severity.MEDIUM

    @property
    def check_id(self) -> str:
        return str(self.check.__acpcheck__.id)

    @property
    def is_cross_node(self) -> bool:
        return next(iter(inspect.signature(self.check).parameters)) == "nodes"


def case(check_fn: Callable[..., Any], expect: str, label: str, **fields: Any) -> Any:
    """A table row as a pytest parameter with a readable id."""
    return pytest.param(Case(check_fn, expect, **fields), id=f"{check_fn.__acpcheck__.id}-{expect}-{label}")


def run_case(row: Case) -> CheckResult:
    """Grade a table row; assert its status, and that a FAIL/WARN names the node and the values."""
    plan = plan_with(row.plan)
    target = (
        node_set(plan, row.node_set or {}, row.failures)
        if row.is_cross_node
        else node_context(row.node, plan, **row.facts)
    )
    verdict = grade(row.check, target, row.fail_on)
    assert verdict.status == row.expect, (
        f"{row.check_id}: expected {row.expect}, got {verdict.status}: {verdict.message}"
    )
    if row.expect in ("fail", "warn") and not row.is_cross_node:
        assert f"{row.node}:" in verdict.message, f"the message does not name the node {row.node}: {verdict.message}"
    for text in row.mentions:
        assert text in verdict.message, f"{text!r} not in: {verdict.message}"
    return verdict
