"""Raw probe documents as probe.sh prints them, recorded from (or modelled on) real nodes.

Each recording is a dict of sections; ``document()`` turns it into the JSON text
the probe would print, so the tests also exercise ``decode_probe_output``.
Addresses are from documentation ranges.
"""

from __future__ import annotations

import json

Section = dict[str, object]


def ok(out: str) -> Section:
    return {"out": out, "err": "", "rc": 0}


def absent() -> Section:
    return {"out": "", "err": "absent\n", "rc": 1}


def failed(rc: int, err: str, out: str = "") -> Section:
    return {"out": out, "err": err, "rc": rc}


def document(sections: dict[str, Section], clock: str = "1767225600.250000000") -> str:
    return json.dumps({"probe": 1, "clock": clock, "sections": sections})


def df(source: str, size: int, used: int, mount: str) -> Section:
    return ok(
        f"Filesystem     1024-blocks     Used Available Capacity Mounted on\n{source} {size} {used} "
        f"{size - used} 50% {mount}\n"
    )


# ---------------------------------------------------------------------------
# Ubuntu 22.04, systemd, root, dpkg + snap, ufw enabled, systemd-resolved

UBUNTU_2204 = {
    "id_uid": ok("0\n"),
    "id_user": ok("root\n"),
    "systemd": ok("yes\n"),
    "os_release": ok(
        'PRETTY_NAME="Ubuntu 22.04.3 LTS"\nNAME="Ubuntu"\nVERSION_ID="22.04"\nVERSION="22.04.3 LTS (Jammy Jellyfish)"\n'
        'VERSION_CODENAME=jammy\nID=ubuntu\nID_LIKE=debian\nHOME_URL="https://www.ubuntu.com/"\n'
    ),
    "osrelease": ok("5.15.0-56-generic\n"),
    "uname_m": ok("x86_64\n"),
    "cpuinfo": ok(
        "".join(
            f"processor\t: {n}\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 85\n"
            f"model name\t: Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz\nflags\t\t: fpu vme de pse tsc msr\n\n"
            for n in range(8)
        )
    ),
    "meminfo": ok("MemTotal:       16393536 kB\nMemFree:         9876543 kB\nMemAvailable:   12345678 kB\n"),
    "swaps": ok(
        "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/swap.img                               "
        "file\t\t2097148\t\t0\t\t-2\n"
    ),
    "cmdline": ok(
        "BOOT_IMAGE=/vmlinuz-5.15.0-56-generic root=/dev/mapper/ubuntu--vg-ubuntu--lv ro transparent_hugepage=never\n"
    ),
    "modules": ok(
        "ip_vs_sh 16384 0 - Live 0x0000000000000000\nip_vs_wrr 16384 0 - Live 0x0000000000000000\n"
        "ip_vs_rr 16384 0 - Live 0x0000000000000000\nip_vs 176128 6 ip_vs_sh,ip_vs_wrr,ip_vs_rr, Live "
        "0x0000000000000000\n"
        "br_netfilter 32768 0 - Live 0x0000000000000000\noverlay 151552 0 - Live 0x0000000000000000\n"
    ),
    "sysctl:net.ipv4.ip_forward": ok("1\n"),
    "sysctl:net.ipv6.conf.all.disable_ipv6": ok("0\n"),
    "sysctl:net.ipv6.conf.all.forwarding": ok("0\n"),
    "sysctl:net.ipv4.conf.all.arp_accept": ok("0\n"),
    "sysctl:net.bridge.bridge-nf-call-iptables": absent(),
    "selinux_enforce": absent(),
    "selinux_config": absent(),
    "apparmor_enabled": ok("Y\n"),
    "cgroup_fs": ok("cgroup2fs\n"),
    "systemctl_is_active": failed(3, "", out="inactive\nactive\ninactive\nactive\n"),
    "default_tasks_max": ok("DefaultTasksMax=15%\n"),
    "timedatectl": ok("Asia/Shanghai\n"),
    "ufw_conf": ok("# /etc/ufw/ufw.conf\n#\n\n# Set to yes to start on boot.\nENABLED=yes\n\nLOGLEVEL=low\n"),
    "nft_ruleset": ok(
        "table ip filter {\n\tchain ufw-before-input {\n\t}\n\tchain INPUT {\n"
        "\t\ttype filter hook input priority filter; policy drop;\n\t\tcounter packets 812 bytes 61514 jump "
        "ufw-before-logging-input\n\t}\n}\n"
    ),
    "iptables_rules": ok(
        "-P INPUT DROP\n-P FORWARD DROP\n-P OUTPUT ACCEPT\n-N ufw-before-input\n-A INPUT -j ufw-before-logging-input\n"
    ),
    "sshd_t": ok(
        "port 22\naddressfamily any\nlistenaddress [::]:22\nlistenaddress 0.0.0.0:22\nusepam yes\nusedns no\n"
        "passwordauthentication no\npermitrootlogin without-password\nacceptenv LANG\nacceptenv LC_*\n"
    ),
    "system_conf": ok("[Manager]\n#DefaultTasksMax=15%\n"),
    "timezone_file": ok("Etc/UTC\n"),
    "localtime_link": ok("/usr/share/zoneinfo/Etc/UTC\n"),
    "hostname": ok("ubuntu-cp1\n"),
    "etc_hosts": ok("127.0.0.1 localhost\n127.0.1.1 ubuntu-cp1\n\n::1     ip6-localhost ip6-loopback\n"),
    "resolv_conf": ok("nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch example.com\n"),
    "resolv_conf_link": ok("../run/systemd/resolve/stub-resolv.conf\n"),
    "ip_addr": ok(
        "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever\n"
        "1: lo    inet6 ::1/128 scope host \\       valid_lft forever preferred_lft forever\n"
        "2: ens160    inet 192.0.2.11/24 brd 192.0.2.255 scope global ens160\\       valid_lft forever "
        "preferred_lft forever\n"
        "2: ens160    inet6 2001:db8::11/64 scope global \\       valid_lft forever preferred_lft forever\n"
        "5: tun0    inet 198.51.100.1 peer 198.51.100.2/32 scope global tun0\\       valid_lft forever "
        "preferred_lft forever\n"
    ),
    "ip_route": ok(
        "default via 192.0.2.1 dev ens160 proto static \n192.0.2.0/24 dev ens160 proto kernel scope link src "
        "192.0.2.11 \n"
    ),
    "ip6_route": ok(
        "2001:db8::/64 dev ens160 proto kernel metric 256 pref medium\nfe80::/64 dev ens160 proto kernel "
        "metric 256 pref medium\n"
    ),
    "ss_tcp": ok(
        'LISTEN 0      4096   127.0.0.53%lo:53        0.0.0.0:*    users:(("systemd-resolve",pid=612,fd=14))\n'
        'LISTEN 0      128          0.0.0.0:22        0.0.0.0:*    users:(("sshd",pid=801,fd=3))\n'
        'LISTEN 0      128             [::]:22           [::]:*    users:(("sshd",pid=801,fd=4))\n'
        'LISTEN 0      4096               *:10250            *:*    users:(("kubelet",pid=999,fd=20))\n'
    ),
    "ss_udp": ok(
        'UNCONN 0      0      127.0.0.53%lo:53        0.0.0.0:*    users:(("systemd-resolve",pid=612,fd=13))\n'
    ),
    "package_manager": ok("dpkg\n"),
    "packages": failed(
        1,
        "dpkg-query: no packages found matching docker\ndpkg-query: no packages found matching podman\n",
        out="containerd\tinstall ok installed\ndocker.io\tdeinstall ok config-files\nrunc\tinstall ok installed\n",
    ),
    "snaps": ok(
        "Name      Version        Rev    Tracking         Publisher   Notes\n"
        "core20    20230622       1974   latest/stable    canonical✓  base\n"
        "microk8s  v1.27.4        5891   1.27/stable      canonical✓  classic\n"
    ),
    "binaries": ok(
        "ip\t/usr/sbin/ip\nss\t/usr/bin/ss\ntar\t/usr/bin/tar\nswapoff\t/usr/sbin/swapoff\nmodprobe\t/usr/sbin/modprobe\n"
        "sysctl\t/usr/sbin/sysctl\nmd5sum\t/usr/bin/md5sum\nscp\t/usr/bin/scp\nsftp\t/usr/bin/sftp\nlvm\t/usr/sbin/lvm\nsudo\t/usr/bin/sudo\n"
    ),
    "usr_local_bin": ok("kubectl\nnerdctl\n"),
    "existing_paths": ok("/var/lib/containerd\n"),
    "mounts": ok(
        "/dev/mapper/ubuntu--vg-ubuntu--lv / ext4 rw,relatime 0 0\ntmpfs /tmp tmpfs "
        "rw,nosuid,nodev,noexec,relatime 0 0\n"
        "/dev/sdb1 /var/lib/etcd xfs rw,relatime 0 0\n/dev/sdc1 /mnt/my\\040data ext4 rw 0 0\n"
    ),
    "df:/": df("/dev/mapper/ubuntu--vg-ubuntu--lv", 102626232, 20000000, "/"),
    "df:/var/lib/etcd": df("/dev/sdb1", 20961280, 1000000, "/var/lib/etcd"),
    "df:/var/lib/containerd": df("/dev/mapper/ubuntu--vg-ubuntu--lv", 102626232, 20000000, "/"),
    "df:/cpaas": df("/dev/mapper/ubuntu--vg-ubuntu--lv", 102626232, 20000000, "/"),
    "df:/tmp": df("tmpfs", 8196768, 100, "/tmp"),
}

# ---------------------------------------------------------------------------
# CentOS 7.9: systemd 219 (no `timedatectl show`), old ss without -H, rpm,
# SELinux enforcing, firewalld over iptables, non-root user with passwordless sudo

_CENTOS_PACKAGES = [
    "apptainer", "containerd", "containernetworking-plugins", "docker", "docker-client", "docker-common",
    "docker-engine", "docker-latest", "docker-proxy", "docker-runc", "docker.io", "kubernetes", "kubernetes-client",
    "kubernetes-kubeadm", "kubernetes-master", "kubernetes-node", "podman", "podman-docker", "rkt", "rootlesskit",
    "runc",
]  # fmt: skip
CENTOS_79 = {
    "id_uid": ok("1001\n"),
    "id_user": ok("acpops\n"),
    "sudo_n": ok(""),
    "systemd": ok("yes\n"),
    "os_release": ok(
        'NAME="CentOS Linux"\nVERSION="7 (Core)"\nID="centos"\nID_LIKE="rhel fedora"\nVERSION_ID="7"\n'
        'PRETTY_NAME="CentOS Linux 7 (Core)"\nANSI_COLOR="0;31"\nCPE_NAME="cpe:/o:centos:centos:7"\n'
    ),
    "osrelease": ok("3.10.0-1160.el7.x86_64\n"),
    "uname_m": ok("x86_64\n"),
    "cpuinfo": ok(
        "".join(f"processor\t: {n}\nmodel name\t: Intel(R) Xeon(R) Silver 4214 CPU @ 2.20GHz\n\n" for n in range(16))
    ),
    "meminfo": ok("MemTotal:       32779764 kB\n"),
    "swaps": ok("Filename\t\t\t\tType\t\tSize\tUsed\tPriority\n"),
    "cmdline": ok(
        "BOOT_IMAGE=/vmlinuz-3.10.0-1160.el7.x86_64 root=/dev/mapper/centos-root ro crashkernel=auto rhgb "
        "quiet cgroup.memory=nokmem\n"
    ),
    "modules": ok("nf_conntrack_ipv4 15053 2 - Live 0xffffffffc0a1b000\nip_vs 145458 0 - Live 0xffffffffc09f0000\n"),
    "sysctl:net.ipv4.ip_forward": ok("0\n"),
    "sysctl:net.bridge.bridge-nf-call-iptables": ok("1\n"),
    "selinux_enforce": ok("1"),
    "selinux_config": ok("SELINUX=permissive\nSELINUXTYPE=targeted\n"),
    "apparmor_enabled": absent(),
    "cgroup_fs": ok("tmpfs\n"),
    "systemctl_is_active": failed(3, "", out="active\nunknown\ninactive\ninactive\n"),
    "default_tasks_max": ok("DefaultTasksMax=512\n"),
    "timedatectl": failed(1, "Unknown operation 'show'.\n"),
    "ufw_conf": absent(),
    "iptables_rules": ok(
        "-P INPUT ACCEPT\n-P FORWARD ACCEPT\n-P OUTPUT ACCEPT\n-N INPUT_direct\n"
        "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n-A INPUT -j INPUT_direct\n"
    ),
    "sshd_t": ok("port 22\nusedns yes\nusepam yes\npermitrootlogin yes\n"),
    "system_conf": ok("[Manager]\n#DefaultTasksMax=512\n"),
    "timezone_file": absent(),
    "localtime_link": ok("../usr/share/zoneinfo/Asia/Shanghai\n"),
    "hostname": ok("CentOS-Node_1\n"),
    "etc_hosts": ok("127.0.0.1   localhost localhost.localdomain localhost4 localhost4.localdomain4\n"),
    "resolv_conf": ok("# Generated by NetworkManager\nsearch localdomain\nnameserver 172.16.0.2\n"),
    "ip_addr": ok(
        "2: eth0    inet 203.0.113.21/24 brd 203.0.113.255 scope global noprefixroute eth0\\       valid_lft "
        "forever preferred_lft forever\n"
    ),
    "ip_route": ok("203.0.113.0/24 dev eth0 proto kernel scope link src 203.0.113.21 metric 100 \n"),
    "ip6_route": ok(""),
    # Old iproute2: no -H, so a header and older columns.
    "ss_tcp": ok(
        "State      Recv-Q Send-Q Local Address:Port               Peer Address:Port              \n"
        "LISTEN     0      128          *:22                       *:*                   "
        'users:(("sshd",pid=1093,fd=3))\n'
        "LISTEN     0      100    127.0.0.1:25                       *:*                   "
        'users:(("master",pid=1310,fd=13))\n'
        "LISTEN     0      128       [::]:22                    [::]:*                   "
        'users:(("sshd",pid=1093,fd=4))\n'
    ),
    "ss_udp": ok(
        "State      Recv-Q Send-Q Local Address:Port               Peer Address:Port              \n"
        "UNCONN     0      0      127.0.0.1:323                      *:*                   "
        'users:(("chronyd",pid=701,fd=5))\n'
    ),
    "package_manager": ok("rpm\n"),
    "packages": failed(
        19,
        "",
        out="".join(
            "docker\n" if p == "docker" else "podman\n" if p == "podman" else f"package {p} is not installed\n"
            for p in _CENTOS_PACKAGES
        ),
    ),
    "binaries": ok(
        "ip\t/usr/sbin/ip\nss\t/usr/sbin/ss\ntar\t/usr/bin/tar\nswapoff\t/usr/sbin/swapoff\nlvm\t\nsudo\t/usr/bin/sudo\n"
    ),
    "usr_local_bin": ok(""),
    "existing_paths": ok("/etc/systemd/system/kubelet.service\n/var/lib/docker\n"),
    "mounts": ok("/dev/mapper/centos-root / xfs rw,relatime,attr2,inode64,noquota 0 0\n"),
    "df:/": df("/dev/mapper/centos-root", 52403200, 3000000, "/"),
    "df:/var/lib/etcd": df("/dev/mapper/centos-root", 52403200, 3000000, "/"),
    "df:/var/lib/containerd": df("/dev/mapper/centos-root", 52403200, 3000000, "/"),
    "df:/cpaas": df("/dev/mapper/centos-root", 52403200, 3000000, "/"),
    "df:/tmp": df("/dev/mapper/centos-root", 52403200, 3000000, "/"),
}

# ---------------------------------------------------------------------------
# Kylin V10 SP3 on Kunpeng 920 (aarch64: no "model name", CPU part 0xd01),
# firewalld on nftables, a non-root user WITHOUT passwordless sudo

KYLIN_V10_ARM = {
    "id_uid": ok("1000\n"),
    "id_user": ok("kylin\n"),
    "sudo_n": failed(1, "sudo: a password is required\n"),
    "systemd": ok("yes\n"),
    "os_release": ok(
        'NAME="Kylin Linux Advanced Server"\nVERSION="V10 (Lance)"\nID="kylin"\nVERSION_ID="V10"\n'
        'PRETTY_NAME="Kylin Linux Advanced Server V10 (Lance)"\nANSI_COLOR="0;31"\n'
    ),
    "osrelease": ok("4.19.90-52.22.v2207.ky10.aarch64\n"),
    "uname_m": ok("aarch64\n"),
    "cpuinfo": ok(
        "".join(
            f"processor\t: {n}\nBogoMIPS\t: 200.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 "
            "atomics fphp asimdhp cpuid\n"
            "CPU implementer\t: 0x48\nCPU architecture: 8\nCPU variant\t: 0x1\nCPU part\t: 0xd01\nCPU revision\t: 0\n\n"
            for n in range(4)
        )
    ),
    "meminfo": ok("MemTotal:       65365568 kB\n"),
    "swaps": ok(
        "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/dev/dm-1                               "
        "partition\t4194300\t\t0\t\t-2\n"
    ),
    "cmdline": ok(
        "BOOT_IMAGE=/vmlinuz-4.19.90-52.22.v2207.ky10.aarch64 root=/dev/mapper/klas-root ro "
        "video=VGA-1:640x480-32@60me\n"
    ),
    "modules": ok("geneve 36864 0 - Live 0xffff000000d10000\nopenvswitch 180224 1 geneve, Live 0xffff000000c90000\n"),
    "sysctl:net.ipv4.ip_forward": ok("1\n"),
    "sysctl:net.ipv6.conf.all.disable_ipv6": ok("1\n"),
    "selinux_enforce": absent(),
    "selinux_config": ok(
        "# This file controls the state of SELinux on the system.\nSELINUX=disabled\nSELINUXTYPE=targeted\n"
    ),
    "apparmor_enabled": absent(),
    "cgroup_fs": ok("tmpfs\n"),
    "systemctl_is_active": failed(3, "", out="active\ninactive\ninactive\ninactive\n"),
    "default_tasks_max": ok("DefaultTasksMax=infinity\n"),
    "timedatectl": ok("Asia/Shanghai\n"),
    "ufw_conf": absent(),
    "nft_ruleset": failed(1, "Operation not permitted (you must be root)\n"),
    "sshd_t": failed(1, "sudo: a password is required\n"),
    "system_conf": ok("[Manager]\nDefaultTasksMax=infinity\n"),
    "hostname": ok("kylin-arm-01\n"),
    "etc_hosts": ok("127.0.0.1   localhost\n"),
    "resolv_conf": absent(),
    "ip_addr": ok(
        "2: enp125s0f0    inet 198.51.100.31/24 brd 198.51.100.255 scope global enp125s0f0\\       valid_lft "
        "forever preferred_lft forever\n"
    ),
    "ip_route": ok("default via 198.51.100.1 dev enp125s0f0 proto static metric 100 \n"),
    "ip6_route": ok(""),
    "ss_tcp": ok(
        "LISTEN 0      128          0.0.0.0:22        0.0.0.0:*\nLISTEN 0      4096         0.0.0.0:6443     "
        " 0.0.0.0:*\n"
    ),
    "ss_udp": ok(""),
    "package_manager": ok("rpm\n"),
    "packages": failed(
        20, "", out="package docker is not installed\ncontainerd\npackage kubernetes is not installed\n"
    ),
    "binaries": ok("ip\t/usr/sbin/ip\nss\t/usr/sbin/ss\nscp\t\nsftp\t/usr/bin/sftp\n"),
    "usr_local_bin": failed(2, "ls: cannot access '/usr/local/bin': No such file or directory\n"),
    "existing_paths": ok(""),
    "mounts": ok("/dev/mapper/klas-root / xfs rw,relatime 0 0\n"),
    "df:/": df("/dev/mapper/klas-root", 73364480, 5000000, "/"),
    "df:/var/lib/etcd": failed(124, ""),
    "df:/var/lib/containerd": df("/dev/mapper/klas-root", 73364480, 5000000, "/"),
    "df:/cpaas": df("/dev/mapper/klas-root", 73364480, 5000000, "/"),
    "df:/tmp": df("/dev/mapper/klas-root", 73364480, 5000000, "/"),
}

# ---------------------------------------------------------------------------
# A node without systemd as PID 1 (a container, or a lab namespace): every
# service fact comes from files. Most sections absent: nothing may break.

NO_SYSTEMD = {
    "id_uid": ok("0\n"),
    "id_user": ok("root\n"),
    "systemd": ok("no\n"),
    "osrelease": ok("6.1.0-13-amd64\n"),
    "ufw_conf": ok("ENABLED=yes\nLOGLEVEL=low\n"),
    "system_conf": ok("[Manager]\nDefaultTasksMax=4096\n"),
    "system_conf_d:10-acp.conf": ok("[Manager]\nDefaultTasksMax = infinity\n"),
    "system_conf_d:20-other.conf": ok("[Journal]\nDefaultTasksMax=ignored-outside-Manager\n"),
    "timezone_file": ok("Europe/Berlin\n"),
    "localtime_link": ok("/usr/share/zoneinfo/UTC\n"),
    "resolv_conf": ok("nameserver 127.0.0.53\n"),
    "resolv_conf_link": ok("/run/systemd/resolve/stub-resolv.conf\n"),
    "nft_ruleset": ok(""),
    "modules": absent(),
    "ss_tcp": failed(127, "sh: 1: ss: not found\n"),
    "ss_udp": failed(127, "sh: 1: ss: not found\n"),
}
