"""Test your own checks: run one check against a plan and hand-made evidence.

The result is graded by the same function that grades a real run
(``acpcheck.grading``): applicability, verdict, the profile's severity overrides
and ``fail_on``, waivers. So a table of cases written with it says what
``acpcheck run`` would report::

    from acpcheck.testing import load_plan_text, run_check

    PLAN = load_plan_text(open("examples/workload-kube-ovn.yaml").read())

    def test_swap_on_fails():
        node = healthy_node(PLAN, "cp1", swaps=("/swap.img",))   # a healthy node, but with swap on
        result = run_check(check_swap_disabled, PLAN, node=node)
        assert result.status == "fail" and "swap" in result.message

Evidence is passed by the check's parameter names (``node``, ``nodes``, …);
``plan`` and ``params`` are filled in for you. ``healthy_node_facts`` (and
``healthy_node``, the same on a plan's node) describe a node that passes every
first-party node check; a test replaces the fields it is about.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Callable
from pathlib import Path
from typing import Any

from acpcheck.facts.model import Address, DiskSpace, Listener, Mount, NodeContext, NodeFacts
from acpcheck.grading import GradingPolicy, evaluate
from acpcheck.model.check import Severity
from acpcheck.model.plan import ClusterPlan
from acpcheck.model.profile import Profile, load_profile
from acpcheck.model.result import CheckResult
from acpcheck.model.waivers import Waivers, load_waivers

__all__ = ["healthy_node", "healthy_node_facts", "load_plan_text", "run_check"]


def run_check(
    check: Callable[..., Any],
    plan: ClusterPlan,
    *,
    profile: Profile | str | None = None,
    waivers: Waivers | str | Path | None = None,
    params: dict[str, Any] | None = None,
    fail_on: Severity | str | None = None,
    target: str | None = None,
    **evidence: Any,
) -> CheckResult:
    """Grade ``check`` on ``plan`` with ``evidence`` (keyword arguments named like its parameters).

    ``profile``: a Profile, or a built-in name / profile file (default: every check,
    ``fail_on: medium``). ``params`` and ``fail_on`` override the profile's.
    ``waivers``: a Waivers object or a waivers file. ``target``: the result's target
    (default: ``node:<name>`` for ``node``, ``node:*`` for ``nodes``, else ``plan``).
    """
    chosen = load_profile(profile) if isinstance(profile, str) else profile
    policy = GradingPolicy.for_plan(
        plan, chosen, load_waivers(waivers) if isinstance(waivers, (str, Path)) else waivers
    )
    if params or fail_on is not None:
        resolved = dataclasses.replace(
            policy.profile,
            params={**policy.profile.params, **(params or {})},
            fail_on=policy.profile.fail_on
            if fail_on is None
            else fail_on
            if isinstance(fail_on, Severity)
            else Severity.parse(fail_on),
        )
        policy = GradingPolicy(plan, resolved, policy.waivers)
    return evaluate(check, policy, evidence, target)


def load_plan_text(text: str, file_name: str = "plan.yaml") -> ClusterPlan:
    """A plan from YAML text, through the real loader (schema errors raise InputError)."""
    from acpcheck.matrix import known_acp_versions
    from acpcheck.model.plan import plan_from_document
    from acpcheck.yamlsource import parse_yaml

    return plan_from_document(parse_yaml(text, file_name), known_acp_versions())


# ---------------------------------------------------------------------------
# A healthy node: Ubuntu 22.04 with kernel 5.15.0-56-generic on x86_64, 16 CPUs,
# 32 GiB, the kernel modules of IPVS, conntrack and Kube-OVN loaded, no swap, sshd
# with UseDNS/UsePAM no, DefaultTasksMax infinity, good /etc/hosts and resolv.conf, a
# default route, its address on eth0 (also the SSH address), a spare NIC eth1 without an
# address, nothing listening but sshd:22, dedicated data disks.

_KIB_PER_GIB = 1024 * 1024
#: The controller's clock when the healthy node's probe ran (2026-01-01T00:00:00Z).
HEALTHY_CLOCK = 1_767_225_600.0
HEALTHY_BINARIES = ("ip", "ss", "tar", "swapoff", "modprobe", "sysctl", "md5sum", "scp", "sftp")
HEALTHY_MODULES = frozenset(
    {"ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_sh", "nf_conntrack", "geneve", "openvswitch", "br_netfilter", "overlay"}
)
HEALTHY_MOUNTS = (
    Mount(source="/dev/sda1", target="/", fstype="ext4", options=("rw", "relatime")),
    Mount(source="/dev/sdb1", target="/var/lib/etcd", fstype="xfs", options=("rw", "relatime")),
    Mount(source="/dev/sdc1", target="/var/lib/containerd", fstype="xfs", options=("rw", "relatime")),
    Mount(source="/dev/sdd1", target="/cpaas", fstype="xfs", options=("rw", "relatime")),
)
HEALTHY_DISKS = tuple(
    DiskSpace(path=path, mount=path, size_kib=size_gib * _KIB_PER_GIB, available_kib=free_gib * _KIB_PER_GIB)
    for path, size_gib, free_gib in (
        ("/", 200, 150),
        ("/var/lib/etcd", 50, 50),
        ("/var/lib/containerd", 300, 300),
        ("/cpaas", 300, 300),
    )
)


def healthy_node_facts(name: str = "cp1", address: str = "192.0.2.11", **overrides: Any) -> NodeFacts:
    """The facts of node ``name`` at ``address`` (its plan IP, on eth0) that pass every
    first-party node check on a plan like examples/workload-kube-ovn.yaml, with
    ``overrides`` (NodeFacts fields by name) replacing single facts."""
    ip = ipaddress.ip_address(address)
    network = ipaddress.ip_network(f"{ip}/{24 if ip.version == 4 else 64}", strict=False)
    fields: dict[str, Any] = dict(
        node=name,
        gathered_at="2026-01-01T00:00:00Z",
        round_trip_seconds=0.2,
        clock_epoch=HEALTHY_CLOCK,
        clock_read_at_epoch=HEALTHY_CLOCK,
        os_id="ubuntu",
        os_version_id="22.04",
        os_pretty_name="Ubuntu 22.04.1 LTS",
        kernel_release="5.15.0-56-generic",
        architecture="x86_64",
        cpu_count=16,
        cpu_model="Intel(R) Xeon(R) Gold 6248R CPU @ 3.00GHz",
        memory_kib=32 * _KIB_PER_GIB,
        swaps=(),
        kernel_cmdline="BOOT_IMAGE=/boot/vmlinuz-5.15.0-56-generic root=/dev/sda1 ro transparent_hugepage=never",
        modules=HEALTHY_MODULES,
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
        addresses=(Address("lo", 4, "127.0.0.1", 8), Address("eth0", ip.version, str(ip), network.prefixlen)),
        routes=(
            f"default via {network.network_address + 1} dev eth0 proto static",
            f"{network} dev eth0 proto kernel scope link src {ip}",
        ),
        listeners=(Listener("tcp", "0.0.0.0", 22, "sshd"),),
        package_manager="dpkg",
        installed_packages=frozenset(),
        snaps=frozenset(),
        binaries={binary: f"/usr/bin/{binary}" for binary in HEALTHY_BINARIES},
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
        ssh_server_address=str(ip),
    )
    return NodeFacts(**{**fields, **overrides})


def healthy_node(plan: ClusterPlan, name: str, **overrides: Any) -> NodeContext:
    """What a node check receives as ``node`` for the plan's node ``name``: its plan
    entry and ``healthy_node_facts`` at its plan IP, with ``overrides``."""
    spec = next((node for node in plan.spec.nodes if node.name == name), None)
    if spec is None:
        raise ValueError(f"the plan has no node {name!r} ({', '.join(n.name for n in plan.spec.nodes)})")
    facts = healthy_node_facts(name, str(spec.ipv4 or spec.ipv6), **overrides)
    return NodeContext(spec=spec, facts=facts, plan=plan)
