"""Text of the files a lab node shows: pure functions, no I/O, so they are unit-tested
without root. ``acpcheck_lab.node`` decides where each one goes."""

from __future__ import annotations

import re
from collections.abc import Sequence

#: Modules a healthy Kube-OVN node has loaded (the ACP rules K3/K5 plus usual neighbours).
HEALTHY_MODULES = (
    "ip_vs_sh",
    "ip_vs_wrr",
    "ip_vs_rr",
    "ip_vs",
    "nf_conntrack",
    "nf_defrag_ipv6",
    "nf_defrag_ipv4",
    "geneve",
    "openvswitch",
    "nsh",
    "br_netfilter",
    "bridge",
    "stp",
    "llc",
    "overlay",
    "libcrc32c",
)
#: Package names a node must not have (ACP §1.4, Ubuntu list, plus the upstream Docker
#: and Kubernetes package names). Healthy nodes never list them, whatever the host has.
CONFLICTING_PACKAGES = frozenset(
    {
        "docker.io",
        "podman-docker",
        "containerd",
        "rootlesskit",
        "rkt",
        "containernetworking-plugins",
        "kubernetes",
        "docker-ce",
        "docker-ce-cli",
        "containerd.io",
        "runc",
        "podman",
        "kubelet",
        "kubeadm",
        "kubectl",
    }
)
#: Paths ACP wants gone before install (§1.3 S3 and S6).
LEFTOVER_PATHS = (
    "/etc/systemd/system/kubelet.service",
    "/var/lib/docker",
    "/var/lib/containerd",
    "/var/log/pods",
    "/var/lib/kubelet/pki",
    "/var/lib/nerdctl",
    "/opt/nerdctl",
)
_PACKAGE_VERSIONS = {
    "docker.io": "20.10.21-0ubuntu1~22.04.3",
    "containerd": "1.6.12-0ubuntu1~22.04.3",
    "runc": "1.1.4-0ubuntu1~22.04.3",
}


def proc_version(kernel: str) -> str:
    return f"Linux version {kernel} (buildd@lab) (gcc (GCC) 11.3.0, GNU ld 2.38) #1 SMP\n"


def cpuinfo(cpus: int) -> str:
    """/proc/cpuinfo with ``cpus`` processors of one socket."""
    blocks = []
    for index in range(cpus):
        blocks.append(
            f"processor\t: {index}\n"
            "vendor_id\t: GenuineIntel\n"
            "cpu family\t: 6\n"
            "model\t\t: 85\n"
            "model name\t: Intel(R) Xeon(R) Gold 6248R CPU @ 3.00GHz\n"
            "stepping\t: 7\n"
            "cpu MHz\t\t: 3000.000\n"
            "cache size\t: 36608 KB\n"
            "physical id\t: 0\n"
            f"siblings\t: {cpus}\n"
            f"core id\t\t: {index}\n"
            f"cpu cores\t: {cpus}\n"
            f"apicid\t\t: {index}\n"
            "fpu\t\t: yes\n"
            "flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx "
            "fxsr sse sse2 ss ht syscall nx pdpe1gb rdtscp lm constant_tsc rep_good nopl xtopology cpuid "
            "tsc_known_freq pni pclmulqdq ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt aes xsave "
            "avx f16c rdrand hypervisor lahf_lm abm 3dnowprefetch avx2 smep bmi2 erms invpcid avx512f "
            "avx512dq rdseed adx smap avx512cd avx512bw avx512vl\n"
            "bogomips\t: 6000.00\n"
            "address sizes\t: 46 bits physical, 48 bits virtual\n"
            "power management:\n"
        )
    return "\n".join(blocks) + "\n"


SWAP_FILE_KIB = 4194300


def meminfo(memory_gib: int, swap: bool) -> str:
    total = memory_gib * 1024 * 1024
    swap_kib = SWAP_FILE_KIB if swap else 0
    rows = [
        ("MemTotal", total),
        ("MemFree", total * 9 // 10),
        ("MemAvailable", total * 19 // 20),
        ("Buffers", 102400),
        ("Cached", total // 20),
        ("SwapCached", 0),
        ("Active", total // 40),
        ("Inactive", total // 40),
        ("SwapTotal", swap_kib),
        ("SwapFree", swap_kib),
        ("Dirty", 0),
        ("Shmem", 2048),
        ("HugePages_Total", None),
        ("Hugepagesize", 2048),
    ]
    lines = []
    for key, value in rows:
        if key == "HugePages_Total":
            lines.append("HugePages_Total:       0")
        else:
            lines.append(f"{key + ':':<16}{value:>8} kB")  # the kernel's layout
    return "\n".join(lines) + "\n"


def swaps(swap: bool) -> str:
    text = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
    if swap:
        text += f"/swap.img                               file\t\t{SWAP_FILE_KIB}\t\t0\t\t-2\n"
    return text


def cmdline(kernel: str, transparent_hugepage_never: bool, extra_parameters: Sequence[str] = ()) -> str:
    extra = "".join(f" {parameter}" for parameter in extra_parameters)
    extra += " transparent_hugepage=never" if transparent_hugepage_never else ""
    return f"BOOT_IMAGE=/vmlinuz-{kernel} root=/dev/mapper/vg0-root ro quiet{extra}\n"


def loaded_modules(missing: Sequence[str], extra: Sequence[str] = ()) -> tuple[str, ...]:
    """The modules a node has loaded: the healthy set, less ``missing``, plus ``extra``."""
    return tuple(name for name in (*HEALTHY_MODULES, *extra) if name not in missing)


def modules(missing: Sequence[str], extra: Sequence[str] = ()) -> str:
    """/proc/modules: name size refcount users state offset."""
    users = {
        "ip_vs": "ip_vs_sh,ip_vs_wrr,ip_vs_rr,",
        "nf_conntrack": "openvswitch,ip_vs,",
        "libcrc32c": "openvswitch,nf_conntrack,",
    }
    lines = []
    for name in loaded_modules(missing, extra):
        holders = users.get(name, "-")
        count = holders.count(",")
        lines.append(f"{name} 16384 {count} {holders} Live 0x0000000000000000")
    return "\n".join(lines) + "\n"


#: The node's own sshd_config (what `sshd -T` reports). The running sshd gets a few
#: -o overrides on top (see node.py), which `sshd -T` in a session does not see.
SSHD_CONFIG = {
    "Port": "22",
    "HostKey": "/etc/ssh/ssh_host_ed25519_key",
    "PermitRootLogin": "prohibit-password",
    "PasswordAuthentication": "yes",
    "KbdInteractiveAuthentication": "no",
    "UsePAM": "no",
    "UseDNS": "no",
    "MaxStartups": "200:30:500",
    "X11Forwarding": "no",
    "PrintMotd": "no",
    "AcceptEnv": "LANG LC_*",
    "Subsystem": "sftp /usr/lib/openssh/sftp-server",
}


def sshd_config(node: str, settings: dict[str, str]) -> str:
    """The default keywords with the scenario's settings replacing them (keywords are
    case-insensitive in sshd) or added before the end."""
    merged = dict(SSHD_CONFIG)
    for key, value in settings.items():
        existing = next((k for k in merged if k.lower() == key.lower()), key)
        merged[existing] = value
    body = "".join(f"{key} {value}\n" for key, value in merged.items())
    return f"# sshd_config of lab node {node} (written by `acpcheck lab up`)\n{body}"


def system_conf(default_tasks_max: str) -> str:
    return f"# systemd manager configuration of this lab node\n[Manager]\nDefaultTasksMax={default_tasks_max}\n"


def ufw_conf(enabled: bool) -> str:
    return f"# /etc/ufw/ufw.conf\nENABLED={'yes' if enabled else 'no'}\nLOGLEVEL=low\n"


def nftables_ruleset(ports: list[int]) -> str:
    """A real nftables table for the node's namespace that drops some TCP ports
    (never 22, so the lab can still reach the node)."""
    port_set = ", ".join(str(port) for port in ports)
    return (
        "table inet acplab_firewall {\n"
        "\tchain input {\n"
        "\t\ttype filter hook input priority filter; policy accept;\n"
        f"\t\ttcp dport {{ {port_set} }} drop\n"
        "\t}\n"
        "}\n"
    )


def etc_hosts(hostname: str, localhost: bool) -> str:
    lines = []
    if localhost:
        lines.append("127.0.0.1\tlocalhost")
    # The node's own name always resolves locally: sudo and sshd look it up, and a
    # lookup that reaches DNS would only time out in the lab.
    lines.append(f"127.0.1.1\t{hostname}")
    lines.append("::1\tip6-localhost ip6-loopback" + (" localhost" if localhost else ""))
    return "\n".join(lines) + "\n"


def resolv_conf(nameservers: list[str], search: list[str]) -> str:
    lines = ["# resolv.conf of this lab node"]
    if search:
        lines.append("search " + " ".join(search))
    lines += [f"nameserver {address}" for address in nameservers]
    return "\n".join(lines) + "\n"


def sudoers(user: str, mode: str) -> str | None:
    """The lab user's /etc/sudoers.d entry; None for no entry at all."""
    if mode == "none":
        return None
    tag = "NOPASSWD: " if mode == "nopasswd" else ""
    return f"# lab user's sudo rule ({mode})\n{user} ALL=(ALL:ALL) {tag}ALL\n"


def stray_binary(name: str) -> str:
    return (
        f"#!/bin/sh\n# a stray {name} binary left in /usr/local/bin (acpcheck lab defect)\necho '{name} version "
        "20.10.21'\n"
    )


def kubelet_unit() -> str:
    return (
        "[Unit]\nDescription=kubelet: The Kubernetes Node "
        "Agent\n\n[Service]\nExecStart=/usr/bin/kubelet\nRestart=always\n\n[Install]\nWantedBy=multi-user.target\n"
    )


def dpkg_without_conflicts(host_status: str) -> tuple[str, set[str]]:
    """The host's dpkg status without any conflicting package, and the names removed."""
    kept, removed = [], set()
    for stanza in re.split(r"\n\s*\n", host_status.strip()):
        name = _package_of(stanza)
        if name in CONFLICTING_PACKAGES:
            removed.add(name)
        elif stanza:
            kept.append(stanza)
    return "\n\n".join(kept) + "\n", removed


def dpkg_installed(names: list[str]) -> str:
    """Status stanzas that make dpkg-query report ``names`` as installed."""
    return "".join(
        f"\nPackage: {name}\nStatus: install ok installed\nPriority: optional\nSection: admin\nInstalled-Size: 10240\n"
        "Maintainer: Ubuntu Developers <ubuntu-devel-discuss@lists.ubuntu.com>\nArchitecture: amd64\n"
        f"Version: {_PACKAGE_VERSIONS.get(name, '1.0-1')}\nDescription: {name} (installed on this lab node "
        "as a defect)\n"
        for name in names
    )


def _package_of(stanza: str) -> str | None:
    match = re.search(r"^Package:\s*(\S+)", stanza, re.MULTILINE)
    return match.group(1) if match else None


def user_entries(user: str, uid: int, password_hash: str) -> dict[str, str]:
    """Lines appended to the node's passwd, group and shadow for the lab user."""
    return {
        "passwd": f"{user}:x:{uid}:{uid}:acpcheck lab user:/home/{user}:/bin/bash\n",
        "group": f"{user}:x:{uid}:\n",
        "shadow": f"{user}:{password_hash}:19000:0:99999:7:::\n",
    }
