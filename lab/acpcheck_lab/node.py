"""One lab node: what it looks like (its file view) and the script that makes it real.

A node is a network namespace plus a private mount and UTS namespace, entered with
``ip netns exec <ns> unshare --uts``; the generated ``nodes/<name>/init.sh`` runs there,
builds the node's root file system, ``pivot_root``s into it and then *becomes* the
node's sshd (``exec sshd -D``), so every SSH session lives in exactly the node's
namespaces. Read a node's ``init.sh`` to see how each of its defects is made:

=======================  ================================================================
what the probe reads     how the node shows it
=======================  ================================================================
net.* sysctls, routes,   the node's own network namespace: real addresses and routes, a
addresses, links,        ``docker0`` bridge (runtime-bridge defect), more NICs (veth
listeners, nftables      pairs), real listening sockets (``listener.py``), a real nft
rules                    table
hostname                 its own UTS namespace
every file under /       an overlay root: the host's / as the lower layer and, as the
(/etc, /usr, /var, /opt, upper one, a tmpfs "disk" of the node's size (so ``df`` reports it)
/root, /home, /tmp …)    seeded from ``nodes/<name>/layer/root``. A whiteout (char device
                         0/0) makes a host file vanish (missing resolv.conf, missing
                         ``tar``); an opaque directory replaces one (/usr/local/bin, /root)
/sys/fs, /sys/module     read-only overlays over the namespace's own sysfs (SELinux
                         ``enforce``, AppArmor ``enabled``, loaded modules' ``initstate``)
/proc/cpuinfo, meminfo,  bind mounts of generated files over the kernel's
swaps, cmdline, modules,
version, sys/kernel/
osrelease
/run                     a private tmpfs (no host /run/systemd: not a systemd machine)
/tmp noexec              a tmpfs mounted noexec (defect); otherwise /tmp is on the root fs
clock                    libfaketime, preloaded into SSH sessions by sshd's ``SetEnv``
=======================  ================================================================

The host is never written: node writes land in the node's tmpfs disk, and the whole
mount namespace, disk included, goes away with the node's last process.

The node's ``/etc/ssh/sshd_config`` is what ``sshd -T`` in a session reports (the
defects live there); the running sshd additionally gets ``-o UsePAM=no -o UseDNS=no``
so a node whose file says ``yes`` still logs in fast, and ``-o PidFile=none``.
"""

from __future__ import annotations

import ipaddress
import os
import shlex
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from acpcheck_lab import content
from acpcheck_lab.layout import LabNetwork
from acpcheck_lab.scenario import LAB_USER, NOT_A_NODE_FILE, NodeSpec

#: Layers of a node's file view: "/" is the root file system; the sysfs ones are
#: read-only overlays over the node's sysfs (longest match wins).
LAYERS = ("/", "/sys/fs", "/sys/module")
#: Mounted from elsewhere (proc, sysfs, devtmpfs, the private /run): not in any layer.
NOT_IN_LAYERS = tuple(f"/{top}" for top in NOT_A_NODE_FILE)
#: PATH used to find the binaries a scenario removes.
STANDARD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
LISTENER = Path(__file__).with_name("listener.py")
#: /proc files every node has its own version of (where the host kernel has the file).
PROC_FILES = frozenset(
    {
        "/proc/sys/kernel/osrelease",
        "/proc/version",
        "/proc/cpuinfo",
        "/proc/meminfo",
        "/proc/swaps",
        "/proc/cmdline",
        "/proc/modules",
    }
)


class LabBuildError(Exception):
    """The host cannot build this node as asked (e.g. an unknown time zone)."""


@dataclass
class Entry:
    kind: Literal["file", "dir", "symlink", "whiteout"]
    text: str = ""  # file content (after ``source``'s, if given) or symlink target
    source: Path | None = None  # a file whose content comes first (large files: copied, not held)
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    opaque: bool = False  # a directory that hides the host's directory entirely


class FileView:
    """A node's differences from the host's files, by path; ``layers`` groups them."""

    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {}

    def file(self, path: str, text: str, mode: int = 0o644, uid: int = 0, gid: int = 0) -> None:
        self.entries[path] = Entry("file", text, mode=mode, uid=uid, gid=gid)

    def copy(self, path: str, source: Path, append: str = "", mode: int = 0o644) -> None:
        self.entries[path] = Entry("file", append, mode=mode, source=source)

    def directory(self, path: str, mode: int = 0o755, opaque: bool = False, uid: int = 0, gid: int = 0) -> None:
        self.entries[path] = Entry("dir", mode=mode, uid=uid, gid=gid, opaque=opaque)

    def symlink(self, path: str, target: str) -> None:
        self.entries[path] = Entry("symlink", target)

    def absent(self, path: str) -> None:
        """The node does not have ``path`` (a whiteout, needed only if the host has it)."""
        if os.path.lexists(path):
            self.entries[path] = Entry("whiteout")
        else:
            self.entries.pop(path, None)

    def layers(self) -> dict[str, dict[str, Entry]]:
        """{layer: {path relative to it: entry}}; every layer appears, maybe empty."""
        grouped: dict[str, dict[str, Entry]] = {layer: {} for layer in LAYERS}
        for path, entry in sorted(self.entries.items()):
            layer = layer_of(path)
            grouped[layer][os.path.relpath(path, layer)] = entry
        return grouped


def layer_of(path: str) -> str:
    sysfs = [layer for layer in LAYERS[1:] if path.startswith(layer + "/")]
    if sysfs:
        return max(sysfs, key=len)
    if not path.startswith("/") or any(path == top or path.startswith(top + "/") for top in NOT_IN_LAYERS):
        raise LabBuildError(f"{path}: not a path a node can have its own version of")
    return "/"


def layer_dir(layer: str) -> str:
    """Directory name of a layer under nodes/<name>/layer/."""
    return layer.strip("/").replace("/", "-") or "root"


@dataclass(frozen=True)
class HostBase:
    """What every node's view is derived from, read from the host once per ``up``."""

    passwd: str
    group: str
    shadow: str
    shadow_gid: int
    dpkg_status: Path | None  # the host's dpkg status without conflicting packages; None: no dpkg
    dpkg_status_differs: bool  # the host itself has conflicting packages installed
    lab_uid: int
    password_hash: str  # of the lab user's password (same on every node)
    client_public_key: str
    faketime_lib: str | None
    python: str  # runs listener.py inside nodes


@dataclass
class NodeBuild:
    spec: NodeSpec
    address: ipaddress.IPv4Address
    network: LabNetwork
    view: FileView
    proc: dict[str, str]  # /proc path -> content bind-mounted over it
    nftables: str | None
    sshd_options: list[str] = field(default_factory=list)
    services: list[str] = field(
        default_factory=list
    )  # shell lines run inside the node before sshd (etcd: lab/acpcheck_lab/etcd.py)

    @property
    def netns(self) -> str:
        return self.network.lab.netns(self.spec.name)


def build_node(spec: NodeSpec, address: ipaddress.IPv4Address, network: LabNetwork, host: HostBase) -> NodeBuild:
    """Everything node ``spec`` shows, as data; ``write_node`` makes it files."""
    d = spec.defects
    view = FileView()
    hostname = spec.hostname

    # OS identity. /etc/os-release is a symlink into /usr/lib on most hosts; set both.
    view.file("/etc/os-release", spec.flavour.os_release)
    view.file("/usr/lib/os-release", spec.flavour.os_release)
    for path, text in spec.flavour.release_files:
        view.file(path, text)
    view.file("/etc/hostname", hostname + "\n")
    view.file("/etc/hosts", content.etc_hosts(hostname, d.etc_hosts_localhost))
    if d.resolv_conf == "missing":
        view.absent("/etc/resolv.conf")
    else:
        servers = d.resolv_conf.nameservers if d.resolv_conf.nameservers is not None else [str(network.gateway)]
        view.file("/etc/resolv.conf", content.resolv_conf(servers, d.resolv_conf.search_domains()))
    _timezone(view, d.timezone)

    # users: the lab user exists only in the nodes' /etc, never on the host
    extra = content.user_entries(LAB_USER, host.lab_uid, host.password_hash)
    view.file("/etc/passwd", host.passwd + extra["passwd"])
    view.file("/etc/group", host.group + extra["group"])
    view.file("/etc/shadow", host.shadow + extra["shadow"], mode=0o640, gid=host.shadow_gid)
    rule = content.sudoers(LAB_USER, d.sudo)
    if rule is None:
        view.absent(f"/etc/sudoers.d/{LAB_USER}")
    else:
        view.file(f"/etc/sudoers.d/{LAB_USER}", rule, mode=0o440)

    # sshd (the host key is copied in by write_node)
    view.file("/etc/ssh/sshd_config", content.sshd_config(spec.name, d.sshd_config))
    view.file("/etc/systemd/system.conf", content.system_conf(d.default_tasks_max))
    view.file("/etc/ufw/ufw.conf", content.ufw_conf(d.ufw))

    # loaded modules: /proc/modules (below) and, for kernels without module support
    # (no /proc/modules at all), /sys/module/<name>/initstate as a loaded module has it
    for name in content.HEALTHY_MODULES:
        if name in d.missing_modules:
            view.absent(f"/sys/module/{name}")
    for name in content.loaded_modules(d.missing_modules, d.extra_modules):
        view.file(f"/sys/module/{name}/initstate", "live\n")

    # security modules (sysfs)
    view.file("/sys/module/apparmor/parameters/enabled", "Y\n" if d.apparmor else "N\n")
    if d.selinux:
        view.file("/sys/fs/selinux/enforce", "1" if d.selinux == "enforcing" else "0")
        view.file("/etc/selinux/config", f"SELINUX={d.selinux}\nSELINUXTYPE=targeted\n")
    else:
        view.absent("/sys/fs/selinux")
        view.absent("/etc/selinux/config")

    # software: dpkg-query reports exactly the scenario's packages, whatever the host has
    if host.dpkg_status is not None and (d.packages or host.dpkg_status_differs):
        view.copy("/var/lib/dpkg/status", host.dpkg_status, append=content.dpkg_installed(d.packages))
    if d.usr_local_bin or _has_entries("/usr/local/bin"):
        view.directory("/usr/local/bin", opaque=True)  # the node's own, not the host's
    for name in d.usr_local_bin:
        view.file(f"/usr/local/bin/{name}", content.stray_binary(name), mode=0o755)
    for name in d.missing_binaries:
        for path in _binary_paths(name):
            view.absent(path)

    # leftovers: healthy nodes hide the host's, defective ones get them
    for path in content.LEFTOVER_PATHS:
        if path not in d.files and path not in d.directories:
            view.absent(path)
    for path in d.directories:
        view.directory(path)
    for path in d.files:
        view.file(path, content.kubelet_unit() if path.endswith(".service") else "")

    # private homes with the lab's client key; /tmp of the node's own
    view.directory("/root", mode=0o700, opaque=True)
    view.directory("/root/.ssh", mode=0o700)
    view.file("/root/.ssh/authorized_keys", host.client_public_key, mode=0o600)
    view.directory("/home", opaque=True)
    home, uid = f"/home/{LAB_USER}", host.lab_uid
    view.directory(home, mode=0o700, uid=uid, gid=uid)
    view.directory(f"{home}/.ssh", mode=0o700, uid=uid, gid=uid)
    view.file(f"{home}/.ssh/authorized_keys", host.client_public_key, mode=0o600, uid=uid, gid=uid)
    view.directory("/tmp", mode=0o1777, opaque=True)

    proc = {
        "/proc/sys/kernel/osrelease": spec.kernel + "\n",
        "/proc/version": content.proc_version(spec.kernel),
        "/proc/cpuinfo": content.cpuinfo(d.cpus),
        "/proc/meminfo": content.meminfo(d.memory_gib, d.swap),
        "/proc/swaps": content.swaps(d.swap),
        "/proc/cmdline": content.cmdline(spec.kernel, d.transparent_hugepage_never, d.cmdline_extra),
        "/proc/modules": content.modules(d.missing_modules, d.extra_modules),
    }
    # A bind mount needs its target: a kernel without module support has no /proc/modules.
    proc = {target: text for target, text in proc.items() if os.path.exists(target)}

    options = ["-o", "UsePAM=no", "-o", "UseDNS=no", "-o", "PidFile=none"]
    if d.clock_skew_seconds:
        if host.faketime_lib is None:
            raise LabBuildError(f"node {spec.name}: clockSkewSeconds needs libfaketime (apt-get install libfaketime)")
        env = f"LD_PRELOAD={host.faketime_lib} FAKETIME={d.clock_skew_seconds:+d} FAKETIME_DONT_FAKE_MONOTONIC=1"
        options += ["-o", f"SetEnv={env}"]
    nft = content.nftables_ruleset(d.nftables_drop) if d.nftables_drop else None
    return NodeBuild(spec, address, network, view, proc, nft, options)


def _timezone(view: FileView, zone: str) -> None:
    zone_file = Path("/usr/share/zoneinfo") / zone
    if not zone_file.is_file():
        raise LabBuildError(f"time zone {zone!r} is not in /usr/share/zoneinfo (is tzdata installed?)")
    view.file("/etc/timezone", zone + "\n")
    view.symlink("/etc/localtime", str(zone_file))


def _has_entries(directory: str) -> bool:
    try:
        return any(os.scandir(directory))
    except FileNotFoundError:
        return False


def _binary_paths(name: str) -> list[str]:
    """The real files a command name resolves to on the host's standard PATH."""
    paths = []
    for directory in STANDARD_PATH.split(":"):
        candidate = os.path.join(directory, name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            paths.append(os.path.realpath(candidate))
    if not paths:
        raise LabBuildError(f"missingBinaries: the host has no {name!r} to remove")
    return sorted(set(paths))  # real paths: a whiteout must not sit behind a symlink (/bin -> usr/bin)


# ---------------------------------------------------------------------------
# Files on disk


def write_node(build: NodeBuild, node_dir: Path, host_key: Path, host: HostBase) -> Path:
    """Write the node's layers, proc files and init.sh; return init.sh."""
    build.view.file("/etc/ssh/ssh_host_ed25519_key", host_key.read_text(), mode=0o600)
    build.view.file("/etc/ssh/ssh_host_ed25519_key.pub", host_key.with_suffix(".pub").read_text())
    for layer, entries in build.view.layers().items():
        top = node_dir / "layer" / layer_dir(layer)
        top.mkdir(parents=True)
        _copy_attributes(layer, top)
        for rel, entry in entries.items():
            _materialise(top, layer, rel, entry)
    proc_dir = node_dir / "proc"
    proc_dir.mkdir()
    for target, text in build.proc.items():
        (proc_dir / _proc_file(target)).write_text(text)
    if build.nftables:
        (node_dir / "nftables.conf").write_text(build.nftables)
    (node_dir / "disk").mkdir()
    script = node_dir / "init.sh"
    script.write_text(init_script(build, node_dir, host))
    return script


def _proc_file(target: str) -> str:
    return target.removeprefix("/proc/").replace("/", "_")


def _copy_attributes(lower: str, upper: Path) -> None:
    """An overlay's merged directory takes the upper one's owner and mode: copy the host's."""
    try:
        st = os.stat(lower)
    except FileNotFoundError:
        return
    os.chown(upper, st.st_uid, st.st_gid)
    os.chmod(upper, st.st_mode & 0o7777)


def _materialise(top: Path, layer: str, rel: str, entry: Entry) -> None:
    target = top / rel
    # Parents merge with the host's directories, so they keep the host's attributes.
    parts = Path(rel).parts[:-1]
    for depth in range(1, len(parts) + 1):
        parent = top.joinpath(*parts[:depth])
        host_parent = os.path.join(layer, *parts[:depth])
        if os.path.islink(host_parent):
            # a directory in the layer would replace the host's symlink (say /var/run -> /run)
            raise LabBuildError(
                f"{os.path.join(layer, rel)}: {host_parent} is a symlink on this machine; give the real path"
            )
        if not parent.is_dir():
            parent.mkdir()
            _copy_attributes(host_parent, parent)
    if entry.kind == "file":
        if entry.source is not None:
            shutil.copyfile(entry.source, target)
            with open(target, "a") as handle:
                handle.write(entry.text)
        else:
            target.write_text(entry.text)
    elif entry.kind == "dir":
        target.mkdir(exist_ok=True)  # may exist as the parent of an earlier entry
        if entry.opaque:
            os.setxattr(target, "trusted.overlay.opaque", b"y")
    elif entry.kind == "symlink":
        target.symlink_to(entry.text)
        return
    else:  # whiteout: overlayfs hides the host's path
        os.mknod(target, 0o600 | stat.S_IFCHR, os.makedev(0, 0))
        return
    os.chown(target, entry.uid, entry.gid)
    os.chmod(target, entry.mode)


def init_script(build: NodeBuild, node_dir: Path, host: HostBase) -> str:
    """The shell script that turns a fresh namespace into this node (see module doc)."""
    spec, d = build.spec, build.spec.defects
    q = shlex.quote
    n, root = '"$N"', '"$R"'
    lines = [
        "#!/bin/sh",
        f"# acpcheck lab node {spec.name}: generated by `acpcheck lab up`. Runs inside the node's",
        "# network, mount and UTS namespaces, moves into the node's own root file system and",
        "# ends by becoming the node's sshd.",
        "set -eu",
        f"N={q(str(node_dir))}  # this node's state directory",
        'R="$N/disk/root"  # the node\'s root file system, once mounted',
        f"echo $$ > {n}/sshd.pid",
        "",
        "# network: this namespace only",
        "ip -batch - <<'EOF'",
        "link set lo up",
    ]
    primary = d.primary_link
    if primary != "eth0":
        lines.append(f"# defect: the node's NIC is called {primary}")
        lines.append(f"link set eth0 name {primary}")
    lines += [
        f"link set {primary} up",
        f"address add {build.address}/{build.network.cidr.prefixlen} dev {primary}",
    ]
    for link in d.extra_links:
        # a NIC without an address; a veth pair, as the dummy driver is missing on some hosts
        lines += [f"link add {link} type veth peer name {link}p", f"link set {link} up"]
    if d.default_route:
        lines.append(f"route add default via {build.network.gateway}")
    else:
        lines.append("# defect: no default route")
    if d.runtime_bridge:
        lines += [
            "# defect: an address in the container-runtime bridge range",
            "link add docker0 type bridge",
            f"address add {d.runtime_bridge} dev docker0",
            "link set docker0 up",
        ]
    lines.append("EOF")
    for key, value in d.sysctls.items():
        lines.append(f"printf '%s\\n' {q(value)} > /proc/sys/{key.replace('.', '/')}")
    if build.nftables:
        lines.append(f"nft -f {n}/nftables.conf  # defect: a firewall table with a drop rule")
    lines += ["", "# hostname: this UTS namespace only", f"printf '%s' {q(spec.hostname)} > /proc/sys/kernel/hostname"]
    if d.listen:
        ports = " ".join(str(port) for port in d.listen)
        lines += [
            "",
            "# defect: real listeners on ports the node must keep free (pivot_root below moves them too)",
            f"{q(host.python)} {q(str(LISTENER))} {ports} > {n}/listener.pid",
        ]

    layers = {layer: f'"$N/layer/{layer_dir(layer)}"' for layer in LAYERS}
    source = build.network.lab.mount_source  # names the lab's mounts: `down` finds the node's processes by them
    lines += [
        "",
        f"# the node's disk ({d.disk_gib} GiB as df sees it; memory is used only for what is written)",
        f"mount -t tmpfs -o size={d.disk_gib}g,mode=0755 {source('disk')} {n}/disk",
        f"mkdir {n}/disk/upper {n}/disk/work {root}",
        f"cp -a {layers['/']}/. {n}/disk/upper/",
        f"mount -t overlay {source('root')} -o lowerdir=/,upperdir={n}/disk/upper,workdir={n}/disk/work {root}",
        f"mount --rbind /proc {root}/proc",
        f"mount --rbind /sys {root}/sys",
        f"mount --rbind /dev {root}/dev",
        f"mount -t tmpfs -o mode=0755,nosuid,nodev,size=64m {source('run')} {root}/run",
        f"mkdir -m 0755 {root}/run/sshd",
        "",
        "# /proc: generated files over the kernel's",
    ]
    for target in sorted(PROC_FILES - set(build.proc)):
        lines.append(f"# ({target} does not exist on this kernel, so this node has none either)")
    for target in build.proc:
        lines.append(f"mount --bind {n}/proc/{_proc_file(target)} {root}{target}")
    lines.append("# /sys: read-only overlays, this node's files over the namespace's sysfs")
    for layer in LAYERS[1:]:
        lines.append(
            f"mount -t overlay {source(layer_dir(layer))} -o ro,lowerdir={layers[layer]}:{root}{layer} {root}{layer}"
        )
    # after the /sys/fs overlay, which would hide it; best effort (a cgroup v1 host has none)
    lines.append(f"mount -t cgroup2 -o ro,nosuid,nodev,noexec cgroup2 {root}/sys/fs/cgroup 2>/dev/null || true")
    if d.tmp_noexec:
        lines += [
            "# defect: /tmp mounted noexec",
            f"mount -t tmpfs -o mode=1777,nosuid,nodev,noexec,size=1g {source('tmp')} {root}/tmp",
        ]
    lines += [
        "",
        "# into the node's root; the host's is detached",
        f"cd {root}",
        "pivot_root . .",
        "umount -l .",
        "cd /",
        *build.services,
        "exec /usr/sbin/sshd -D -e " + " ".join(q(option) for option in build.sshd_options),
        "",
    ]
    return "\n".join(lines)
