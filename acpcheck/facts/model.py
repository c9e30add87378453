"""Typed node facts: everything the node checks read, gathered in one SSH exec.

Each fact is ONE declaration in ``NodeFacts`` below: its typed field, its default,
the reader that turns the probe's raw sections into the value, and the probe
sections it reads (``probe.sh`` has them, or the declaration carries the shell
lines itself). ``assemble`` reads a node's raw probe document field by field from
these declarations and ``probe_script`` adds the declared shell to probe.sh, so a new
fact is one field here plus the check that reads it (docs/architecture.md shows one).

Checks read only these fields, never a connection, so a saved facts directory
replays a run exactly (``acpcheck gather`` / ``acpcheck run --facts DIR``). Every
fact has a default, so a facts file saved before a fact existed still loads: the
fact then has its default, which for a new fact must mean "unknown" (None).

A field is ``None`` when the node could not tell (file absent, command missing);
checks treat None as "unknown", which is neither PASS nor FAIL.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from acpcheck.model.plan import ClusterPlan, Node

from acpcheck.facts import parse
from acpcheck.facts.parse import RawProbe, Reading
from acpcheck.facts.records import Address, DiskSpace, Listener, Mount

__all__ = [
    "FACTS_SCHEMA",
    "Address",
    "DiskSpace",
    "Fact",
    "GatherFailure",
    "Listener",
    "Mount",
    "NodeContext",
    "NodeFacts",
    "NodeSet",
    "assemble",
    "field_errors",
    "probe_script",
]

FACTS_SCHEMA = "acpcheck/facts/v1"


@dataclass(frozen=True)
class Fact:
    """How one NodeFacts field is gathered: the reader and the probe sections it reads."""

    read: Callable[[Reading], Any]
    sections: tuple[str, ...] = ()  # the probe sections the reader reads (in probe.sh or in ``shell``)
    shell: str = ""  # probe lines (POSIX sh, probe.sh's helpers F/C/R/V) for sections probe.sh lacks


def fact(read: Callable[[Reading], Any], *sections: str, default: Any = None, shell: str = "") -> Any:
    """A NodeFacts field gathered by ``read``; ``default`` when a saved file predates it."""
    metadata = {"fact": Fact(read, sections, shell.strip())}
    if isinstance(default, dict):  # a mutable default: a fresh one each time
        return field(default_factory=dict, metadata=metadata)
    return field(default=default, metadata=metadata)


# ---------------------------------------------------------------------------
# Facts for Kube-OVN Underlay (checks/node_underlay.py)


def read_interfaces(r: Reading) -> tuple[str, ...] | None:
    """``ip -o link show``: ``3: eth1@if9: <BROADCAST,…> mtu 1500 …``; a link without an
    address (an Underlay NIC) is listed here, not in ``ip addr``."""
    section = r.command("ip_link", "interfaces")
    if section is None:
        return None
    names = (line.split(":", 2)[1].strip().split("@", 1)[0] for line in section.lines() if line.count(":") >= 2)
    return tuple(name for name in names if name)


def read_ssh_server_address(r: Reading) -> str | None:
    """sshd's ``SSH_CONNECTION`` (``client port server port``): the node's address that
    this SSH session came in on, whatever address or NAT the controller dialled."""
    words = (r.raw.text("ssh_connection") or "").split()
    return words[2].split("%", 1)[0] if len(words) == 4 else None


# ---------------------------------------------------------------------------
# The facts


@dataclass(frozen=True, kw_only=True)
class NodeFacts:
    """What one node told us. Field names say where each value comes from.

    The first four fields are the gatherer's (no probe section); every other field
    is a fact declared with ``fact(reader, sections…, default=…)``."""

    node: str
    gathered_at: str  # ISO 8601 UTC on the controller
    round_trip_seconds: float  # of the probe exec, for clock-skew correction
    clock_epoch: float = fact(parse.read_clock_epoch, default=float("nan"))  # the node's clock (date +%s.%N)
    clock_read_at_epoch: float  # the controller's clock at the middle of the exec

    os_id: str | None = fact(parse.read_os_id, "os_release")  # /etc/os-release ID: ubuntu, rhel, centos, kylin …
    # VERSION_ID: "22.04", "7.9", "V10" … (with the CentOS minor release and the Kylin service pack)
    os_version_id: str | None = fact(parse.read_os_version_id, "os_release", "centos_release", "kylin_productinfo")
    os_pretty_name: str | None = fact(parse.read_os_pretty_name, "os_release")
    kernel_release: str | None = fact(parse.read_kernel_release, "osrelease")  # uname -r
    architecture: str | None = fact(parse.read_architecture, "uname_m")  # uname -m: x86_64 | aarch64
    cpu_count: int | None = fact(parse.read_cpu_count, "cpuinfo")
    cpu_model: str | None = fact(parse.read_cpu_model, "cpuinfo")
    memory_kib: int | None = fact(parse.read_memory_kib, "meminfo")  # MemTotal
    swaps: tuple[str, ...] = fact(parse.read_swaps, "swaps", default=())  # active swap devices (/proc/swaps)
    kernel_cmdline: str | None = fact(parse.read_kernel_cmdline, "cmdline")  # /proc/cmdline
    # loaded kernel modules (/proc/modules, /sys/module)
    modules: frozenset[str] = fact(parse.read_modules, "modules", "sys_module", default=frozenset())
    sysctls: dict[str, str] = fact(parse.read_sysctls, "sysctl:*", default={})
    # enforcing | permissive | disabled, None when SELinux is absent
    selinux: str | None = fact(parse.read_selinux, "selinux_enforce", "selinux_config")
    # /sys/module/apparmor/parameters/enabled
    apparmor_enabled: bool | None = fact(parse.read_apparmor_enabled, "apparmor_enabled")
    # firewalld/ufw/nftables/iptables -> active|inactive (how each is decided: acpcheck.facts.parse)
    firewall_services: dict[str, str] = fact(
        parse.read_firewall_services, "systemctl_is_active", "ufw_conf", "nft_ruleset", "iptables_rules", default={}
    )
    sshd: dict[str, str] = fact(parse.read_sshd, "sshd_t", default={})  # `sshd -T` keys (lower case) -> value
    # systemctl show --property=DefaultTasksMax (system.conf without systemd)
    default_tasks_max: str | None = fact(
        parse.read_default_tasks_max, "default_tasks_max", "system_conf", "system_conf_d:*"
    )
    hostname: str | None = fact(parse.read_hostname, "hostname")
    etc_hosts: str | None = fact(parse.read_etc_hosts, "etc_hosts")
    resolv_conf: str | None = fact(parse.read_resolv_conf, "resolv_conf")  # None when /etc/resolv.conf is missing
    systemd_resolved_active: bool | None = fact(
        parse.read_systemd_resolved_active, "systemctl_is_active", "resolv_conf_link"
    )
    addresses: tuple[Address, ...] = fact(parse.read_addresses, "ip_addr", default=())
    routes: tuple[str, ...] = fact(parse.read_routes, "ip_route", "ip6_route", default=())  # `ip route`, `ip -6 route`
    listeners: tuple[Listener, ...] = fact(parse.read_listeners, "ss_tcp", "ss_udp", default=())
    package_manager: str | None = fact(parse.read_package_manager, "package_manager")  # dpkg | rpm
    # of the conflicting-package names asked about
    installed_packages: frozenset[str] = fact(parse.read_installed_packages, "packages", default=frozenset())
    snaps: frozenset[str] = fact(parse.read_snaps, "snaps", default=frozenset())
    # name -> path on PATH, None when missing
    binaries: dict[str, str | None] = fact(parse.read_binaries, "binaries", default={})
    # file names in /usr/local/bin
    usr_local_bin: frozenset[str] = fact(parse.read_usr_local_bin, "usr_local_bin", default=frozenset())
    # of the paths asked about, those that exist
    existing_paths: frozenset[str] = fact(parse.read_existing_paths, "existing_paths", default=frozenset())
    mounts: tuple[Mount, ...] = fact(parse.read_mounts, "mounts", default=())
    disks: tuple[DiskSpace, ...] = fact(parse.read_disks, "df:*", default=())
    timezone: str | None = fact(parse.read_timezone, "timedatectl", "timezone_file", "localtime_link")
    # stat -fc %T /sys/fs/cgroup: cgroup2fs | tmpfs
    cgroup_fs: str | None = fact(parse.read_cgroup_fs, "cgroup_fs")
    user: str | None = fact(parse.read_user, "id_user")  # the SSH user
    is_root: bool | None = fact(parse.read_is_root, "id_uid")
    # sudo -n true succeeded (None when the user is root)
    passwordless_sudo: bool | None = fact(parse.read_passwordless_sudo, "id_uid", "sudo_n")
    probe_errors: tuple[str, ...] = ()  # "<field>: <what failed>", in field order (see field_errors)
    # every network link by name, addressed or not (None: not gathered, e.g. by an older acpcheck)
    interfaces: tuple[str, ...] | None = fact(read_interfaces, "ip_link", shell="C ip_link ip -o link show")
    # the node's address the probe's SSH session arrived on (SSH_CONNECTION)
    ssh_server_address: str | None = fact(
        read_ssh_server_address, "ssh_connection", shell='V ssh_connection "${SSH_CONNECTION:-}"'
    )

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


@functools.cache  # the declarations are fixed: read them once, not once per node gathered
def declared_facts() -> dict[str, Fact]:
    """Every NodeFacts field that is read from the probe, by name, in field order."""
    return {f.name: f.metadata["fact"] for f in dataclasses.fields(NodeFacts) if "fact" in f.metadata}


def assemble(
    node: str, raw: RawProbe, *, gathered_at: str, round_trip_seconds: float, clock_read_at_epoch: float
) -> NodeFacts:
    """A node's NodeFacts from its raw probe document: every declared reader, in field order."""
    reading = Reading(raw)
    values = {name: declared.read(reading) for name, declared in declared_facts().items()}
    return NodeFacts(
        node=node,
        gathered_at=gathered_at,
        round_trip_seconds=round_trip_seconds,
        clock_read_at_epoch=clock_read_at_epoch,
        probe_errors=tuple(reading.errors.items),
        **values,
    )


DECLARED_SECTIONS_MARK = "#@DECLARED-SECTIONS@"


@functools.cache
def probe_script(command_limit: int = parse.COMMAND_LIMIT_SECONDS) -> str:
    """probe.sh with its preamble and the declared sections: the text to feed to ``sh -s``."""
    declared = "\n".join(f.shell for f in declared_facts().values() if f.shell)
    return parse.probe_preamble(command_limit) + parse.probe_text().replace(
        f"\n{DECLARED_SECTIONS_MARK}\n", f"\n{declared}\n", 1
    )


def field_errors(facts: NodeFacts, field: str) -> list[str]:
    """The probe errors that leave ``field`` of ``facts`` unknown (for check messages)."""
    prefix = f"{field}: "
    return [error[len(prefix) :] for error in facts.probe_errors if error.startswith(prefix)]


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
