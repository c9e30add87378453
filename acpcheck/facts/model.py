"""Typed node facts: everything the node checks read, gathered in one SSH exec.

The probe (``probe.sh``) runs once per node and prints one JSON document of raw
command outputs; ``acpcheck.facts.parse`` turns that into a ``NodeFacts``. Checks
read only these fields, never a connection, so a saved facts directory replays a
run exactly (``acpcheck gather`` / ``acpcheck run --facts DIR``).

A field is ``None`` when the node could not tell (file absent, command missing);
checks treat None as "unknown", which is neither PASS nor FAIL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from acpcheck.model.plan import ClusterPlan, Node

FACTS_SCHEMA = "acpcheck/facts/v1"


@dataclass(frozen=True)
class Address:
    interface: str
    family: int  # 4 or 6
    address: str
    prefix_length: int


@dataclass(frozen=True)
class Listener:
    protocol: str  # tcp | udp
    address: str
    port: int
    process: str = ""


@dataclass(frozen=True)
class Mount:
    source: str
    target: str
    fstype: str
    options: tuple[str, ...]


@dataclass(frozen=True)
class DiskSpace:
    path: str  # the path asked about
    mount: str  # the mount point that holds it
    size_kib: int
    available_kib: int


@dataclass(frozen=True)
class NodeFacts:
    """What one node told us. Field names say where each value comes from."""

    node: str
    gathered_at: str  # ISO 8601 UTC on the controller
    round_trip_seconds: float  # of the probe exec, for clock-skew correction
    clock_epoch: float  # the node's clock (date +%s.%N) when the probe ran
    clock_read_at_epoch: float  # the controller's clock at the middle of the exec

    os_id: str | None  # /etc/os-release ID: ubuntu, rhel, centos, kylin …
    os_version_id: str | None  # VERSION_ID: "22.04", "7.9", "V10" …
    os_pretty_name: str | None
    kernel_release: str | None  # uname -r
    architecture: str | None  # uname -m: x86_64 | aarch64
    cpu_count: int | None
    cpu_model: str | None
    memory_kib: int | None  # MemTotal
    swaps: tuple[str, ...]  # active swap devices (/proc/swaps)
    kernel_cmdline: str | None  # /proc/cmdline
    modules: frozenset[str]  # loaded kernel modules (/proc/modules)
    sysctls: dict[str, str]
    selinux: str | None  # enforcing | permissive | disabled, None when SELinux is absent
    apparmor_enabled: bool | None  # /sys/module/apparmor/parameters/enabled
    firewall_services: dict[str, str]  # firewalld/ufw/nftables/iptables -> active|inactive
    sshd: dict[str, str]  # `sshd -T` keys (lower case) -> value
    default_tasks_max: str | None  # systemctl show --property=DefaultTasksMax
    hostname: str | None
    etc_hosts: str | None
    resolv_conf: str | None  # None when /etc/resolv.conf is missing
    systemd_resolved_active: bool | None
    addresses: tuple[Address, ...]
    routes: tuple[str, ...]  # `ip route` and `ip -6 route` lines
    listeners: tuple[Listener, ...]
    package_manager: str | None  # dpkg | rpm
    installed_packages: frozenset[str]  # of the conflicting-package names asked about
    snaps: frozenset[str]
    binaries: dict[str, str | None]  # name -> path on PATH, None when missing
    usr_local_bin: frozenset[str]  # file names in /usr/local/bin
    existing_paths: frozenset[str]  # of the paths asked about, those that exist
    mounts: tuple[Mount, ...]
    disks: tuple[DiskSpace, ...]
    timezone: str | None
    cgroup_fs: str | None  # stat -fc %T /sys/fs/cgroup: cgroup2fs | tmpfs
    user: str | None  # the SSH user
    is_root: bool | None
    passwordless_sudo: bool | None  # sudo -n true succeeded (None when the user is root)
    probe_errors: tuple[str, ...] = ()  # sections that failed, for ERROR messages

    def mount_of(self, path: str) -> Mount | None:
        """The mount that holds ``path`` (longest matching mount point)."""
        best: Mount | None = None
        for mount in self.mounts:
            prefix = mount.target.rstrip("/") + "/"
            if (path == mount.target or path.startswith(prefix) or mount.target == "/") and (
                best is None or len(mount.target) > len(best.target)
            ):
                best = mount
        return best


@dataclass
class GatherFailure:
    """Why facts could not be gathered from a node: every check on it is ERROR."""

    node: str
    kind: str  # unreachable | auth | proxy | proxy-auth | host-key | timeout | permission | probe
    message: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NodeContext:
    """What a node check receives as its ``node`` argument."""

    spec: Node  # the plan's entry for this node
    facts: NodeFacts
    plan: ClusterPlan

    @property
    def name(self) -> str:
        return str(self.spec.name)

    @property
    def role(self) -> str:
        return str(self.spec.role)


@dataclass(frozen=True)
class NodeSet:
    """What a cross-node check receives as its ``nodes`` argument: every node
    whose facts were gathered, and why the others could not be."""

    members: tuple[NodeContext, ...]
    failures: dict[str, GatherFailure]
    plan: ClusterPlan
