"""parse.py on recorded probe output: one table per distro, then the small parsers."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import recorded

from acpcheck.facts.model import Address, DiskSpace, Listener, Mount, NodeFacts, assemble, field_errors, probe_script
from acpcheck.facts.parse import (
    ProbeOutputError,
    decode_probe_output,
    iptables_filters,
    last_assignment,
    nft_filters,
    parse_clock,
    parse_df,
    parse_ip_addr,
    parse_os_release,
    parse_selinux,
    probe_queries,
    zone_from_localtime_link,
)
from acpcheck.matrix.os import probe_queries as checks_need


def facts_of(sections: dict[str, Any], clock: str = "1767225600.250000000") -> NodeFacts:
    raw = decode_probe_output(recorded.document(sections, clock))
    return assemble(
        "node", raw, gathered_at="2026-01-01T00:00:00Z", round_trip_seconds=0.01, clock_read_at_epoch=1767225600.0
    )


def check_fields(facts: NodeFacts, expected: dict[str, Any]) -> None:
    for field, value in expected.items():
        assert getattr(facts, field) == value, field


def test_ubuntu_2204() -> None:
    facts = facts_of(recorded.UBUNTU_2204)
    check_fields(
        facts,
        {
            "os_id": "ubuntu",
            "os_version_id": "22.04",
            "os_pretty_name": "Ubuntu 22.04.3 LTS",
            "kernel_release": "5.15.0-56-generic",
            "architecture": "x86_64",
            "cpu_count": 8,
            "cpu_model": "Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz",
            "memory_kib": 16393536,
            "swaps": ("/swap.img",),
            "kernel_cmdline": (
                "BOOT_IMAGE=/vmlinuz-5.15.0-56-generic root=/dev/mapper/ubuntu--vg-ubuntu--lv ro "
                "transparent_hugepage=never"
            ),
            "modules": frozenset({"ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_sh", "br_netfilter", "overlay"}),
            # bridge-nf-call-iptables is absent (br_netfilter sysctls not there): omitted, not guessed
            "sysctls": {
                "net.ipv4.ip_forward": "1",
                "net.ipv6.conf.all.disable_ipv6": "0",
                "net.ipv6.conf.all.forwarding": "0",
                "net.ipv4.conf.all.arp_accept": "0",
            },
            "selinux": None,
            "apparmor_enabled": True,
            "firewall_services": {"firewalld": "inactive", "ufw": "active", "nftables": "active", "iptables": "active"},
            "default_tasks_max": "15%",  # systemctl show wins over the commented-out system.conf
            "timezone": "Asia/Shanghai",  # timedatectl wins over /etc/timezone
            "hostname": "ubuntu-cp1",
            "resolv_conf": "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch example.com\n",
            "systemd_resolved_active": True,
            "routes": (
                "default via 192.0.2.1 dev ens160 proto static",
                "192.0.2.0/24 dev ens160 proto kernel scope link src 192.0.2.11",
                "2001:db8::/64 dev ens160 proto kernel metric 256 pref medium",
                "fe80::/64 dev ens160 proto kernel metric 256 pref medium",
            ),
            "package_manager": "dpkg",
            "installed_packages": frozenset({"containerd", "runc"}),  # docker.io is only "config-files"
            "snaps": frozenset({"core20", "microk8s"}),
            "usr_local_bin": frozenset({"kubectl", "nerdctl"}),
            "existing_paths": frozenset({"/var/lib/containerd"}),
            "cgroup_fs": "cgroup2fs",
            "user": "root",
            "is_root": True,
            "passwordless_sudo": None,
            "clock_epoch": 1767225600.25,
            "probe_errors": (),
        },
    )
    assert facts.sshd["usedns"] == "no" and facts.sshd["usepam"] == "yes"
    assert facts.sshd["listenaddress"] == "[::]:22\n0.0.0.0:22" and facts.sshd["acceptenv"] == "LANG\nLC_*"
    assert facts.binaries["lvm"] == "/usr/sbin/lvm" and facts.binaries["scp"] == "/usr/bin/scp"
    assert facts.addresses == (
        Address("lo", 4, "127.0.0.1", 8),
        Address("lo", 6, "::1", 128),
        Address("ens160", 4, "192.0.2.11", 24),
        Address("ens160", 6, "2001:db8::11", 64),
        Address("tun0", 4, "198.51.100.1", 32),
    )
    assert facts.listeners == (
        Listener("tcp", "127.0.0.53", 53, "systemd-resolve"),
        Listener("tcp", "0.0.0.0", 22, "sshd"),
        Listener("tcp", "::", 22, "sshd"),
        Listener("tcp", "*", 10250, "kubelet"),
        Listener("udp", "127.0.0.53", 53, "systemd-resolve"),
    )
    assert Mount("tmpfs", "/tmp", "tmpfs", ("rw", "nosuid", "nodev", "noexec", "relatime")) in facts.mounts
    assert Mount("/dev/sdc1", "/mnt/my data", "ext4", ("rw",)) in facts.mounts  # \040 decoded
    assert facts.mount_of("/tmp/x") == Mount("tmpfs", "/tmp", "tmpfs", ("rw", "nosuid", "nodev", "noexec", "relatime"))
    disks = {d.path: d for d in facts.disks}
    assert disks["/var/lib/etcd"] == DiskSpace("/var/lib/etcd", "/var/lib/etcd", 20961280, 19961280)
    assert disks["/cpaas"] == DiskSpace("/cpaas", "/", 102626232, 82626232)  # not created yet: its parent's filesystem
    assert set(disks) == {"/", "/var/lib/etcd", "/var/lib/containerd", "/cpaas", "/tmp"}


def test_centos_79_old_tools_rpm_and_sudo() -> None:
    facts = facts_of(recorded.CENTOS_79)
    check_fields(
        facts,
        {
            "os_id": "centos",
            "os_version_id": "7",
            "kernel_release": "3.10.0-1160.el7.x86_64",
            "cpu_count": 16,
            "swaps": (),
            "selinux": "enforcing",  # the live mode (selinuxfs) wins over SELINUX=permissive in the config
            "apparmor_enabled": None,
            "firewall_services": {
                "firewalld": "active",
                "ufw": "inactive",
                "nftables": "inactive",
                "iptables": "active",
            },
            "default_tasks_max": "512",
            "timezone": "Asia/Shanghai",  # no `timedatectl show` on systemd 219, no /etc/timezone: the localtime link
            "hostname": "CentOS-Node_1",
            "systemd_resolved_active": False,
            "package_manager": "rpm",
            "installed_packages": frozenset({"docker", "podman"}),
            "snaps": frozenset(),
            "existing_paths": frozenset({"/etc/systemd/system/kubelet.service", "/var/lib/docker"}),
            "user": "acpops",
            "is_root": False,
            "passwordless_sudo": True,
            "probe_errors": (),  # a failing `timedatectl show` with a fallback that worked is no error
        },
    )
    # ss without -H: the header is skipped, "*:22" keeps "*"
    assert facts.listeners == (
        Listener("tcp", "*", 22, "sshd"),
        Listener("tcp", "127.0.0.1", 25, "master"),
        Listener("tcp", "::", 22, "sshd"),
        Listener("udp", "127.0.0.1", 323, "chronyd"),
    )
    assert facts.binaries["lvm"] is None and facts.binaries["md5sum"] is None  # asked, not found
    assert facts.sshd["usedns"] == "yes"


def test_kylin_v10_arm_kunpeng_without_sudo() -> None:
    facts = facts_of(recorded.KYLIN_V10_ARM, clock="1767225601.N")  # busybox-style date without %N
    check_fields(
        facts,
        {
            "os_id": "kylin",
            "os_version_id": "V10",
            "os_pretty_name": "Kylin Linux Advanced Server V10 (Lance)",
            "kernel_release": "4.19.90-52.22.v2207.ky10.aarch64",
            "architecture": "aarch64",
            "cpu_count": 4,
            "cpu_model": "Kunpeng-920",  # implementer 0x48, part 0xd01
            "memory_kib": 65365568,
            "swaps": ("/dev/dm-1",),
            "modules": frozenset({"geneve", "openvswitch"}),
            "sysctls": {"net.ipv4.ip_forward": "1", "net.ipv6.conf.all.disable_ipv6": "1"},
            "selinux": "disabled",
            "firewall_services": {
                "firewalld": "active",
                "ufw": "inactive",
                "nftables": "inactive",
            },  # ruleset unreadable: the unit state
            "sshd": {},
            "default_tasks_max": "infinity",
            "resolv_conf": None,
            "installed_packages": frozenset({"containerd"}),
            "usr_local_bin": frozenset(),  # no /usr/local/bin at all: empty, and no error
            "user": "kylin",
            "is_root": False,
            "passwordless_sudo": False,
            "clock_epoch": 1767225601.0,
        },
    )
    assert facts.binaries["scp"] is None and facts.binaries["sftp"] == "/usr/bin/sftp"
    assert {d.path for d in facts.disks} == {
        "/",
        "/var/lib/containerd",
        "/cpaas",
        "/tmp",
    }  # df of /var/lib/etcd timed out
    assert sorted(facts.probe_errors) == [
        "disks: df -Pk /var/lib/etcd timed out",
        "firewall_services: nft list ruleset failed (exit 1): Operation not permitted (you must be root)",
        "sshd: sshd -T failed (exit 1): sudo: a password is required",
    ]
    assert field_errors(facts, "sshd") == ["sshd -T failed (exit 1): sudo: a password is required"]
    assert field_errors(facts, "listeners") == []


def test_without_systemd_everything_comes_from_files() -> None:
    facts = facts_of(recorded.NO_SYSTEMD)
    check_fields(
        facts,
        {
            "default_tasks_max": "infinity",  # the drop-in overrides system.conf; [Journal] does not count
            "timezone": "Europe/Berlin",  # /etc/timezone before the localtime link
            "systemd_resolved_active": True,  # resolv.conf links into /run/systemd/resolve
            "firewall_services": {"ufw": "active", "nftables": "inactive"},
            "listeners": (),
            "modules": frozenset(),
            "os_id": None,
            "hostname": None,
            "cpu_count": None,
            "passwordless_sudo": None,
        },
    )
    assert field_errors(facts, "listeners") == [
        "ss -Htlnp command not found: sh: 1: ss: not found",
        "ss -Hulnp command not found: sh: 1: ss: not found",
    ]
    assert field_errors(facts, "modules") == ["neither /proc/modules nor /sys/module could be read"]


def test_modules_come_from_sys_module_too() -> None:
    # A kernel without loadable-module support has no /proc/modules; built-in
    # modules are listed only under /sys/module. Both count as present.
    facts = facts_of({**recorded.NO_SYSTEMD, "sys_module": recorded.ok("ip_vs\nip_vs_rr\ngeneve\n")})
    assert facts.modules == frozenset({"ip_vs", "ip_vs_rr", "geneve"})
    assert field_errors(facts, "modules") == []
    both = facts_of({**recorded.UBUNTU_2204, "sys_module": recorded.ok("overlay\n")})
    assert "overlay" in both.modules and "ip_vs" in both.modules


def test_probe_asks_what_the_checks_read() -> None:
    need = checks_need()
    asked = probe_queries()
    script = probe_script()
    for kind in ("packages", "binaries", "paths", "disks"):
        assert set(need[kind]) <= set(getattr(asked, kind)), kind
    assert f"PACKAGES='{' '.join(asked.packages)}'" in script and "LIMIT=5" in script


# --- the probe's JSON writer, on every byte --------------------------------------


def test_probe_escapes_any_bytes(tmp_path: Path) -> None:
    """Run the real probe.sh (system sh and awk) with /etc/hosts swapped for a file of hostile bytes."""
    weird = bytes(b for b in range(1, 256) if b != 10) + (
        b'\n"quoted" \\back\\slash\\ \t tab\r\n\x1b[31m ANSI \x7f\n\xe4\xb8\xad\xe6\x96\x87\n\xff\xfe bad '
        b"utf-8\nno final newline"
    )
    hosts = tmp_path / "hosts with space"
    hosts.write_bytes(weird)
    script = probe_script().replace("F etc_hosts /etc/hosts\n", f"F etc_hosts '{hosts}'\n")
    assert script != probe_script()
    done = subprocess.run(["sh", "-s"], input=script.encode(), capture_output=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    text = done.stdout.decode("utf-8", errors="replace")  # bytes that are not UTF-8 pass through raw
    json.loads(text)  # strict JSON: every control character was escaped
    raw = decode_probe_output(text)
    assert raw.sections["etc_hosts"].out == weird.decode("utf-8", errors="replace") + "\n"


@pytest.mark.parametrize(
    ("stdout", "message"),
    [
        ("", "the probe's output is unusable (exit 3): acpcheck probe: cannot create a temporary directory"),
        (
            '{"probe":1,"clock":"1","sect',
            "the probe's output is unusable (exit 3): acpcheck probe: cannot create a temporary directory",
        ),
        ('{"probe":7,"sections":{}}', "the probe's output is not an acpcheck probe v1 document"),
    ],
)
def test_unusable_output(stdout: str, message: str) -> None:
    with pytest.raises(ProbeOutputError) as caught:
        decode_probe_output(stdout, "acpcheck probe: cannot create a temporary directory\n", 3)
    assert str(caught.value) == message


def test_output_of_a_chatty_login_shell_is_skipped() -> None:
    raw = decode_probe_output("Welcome to node 7! {braces} included\n" + recorded.document(recorded.NO_SYSTEMD))
    assert raw.sections["osrelease"].out == "6.1.0-13-amd64\n"


# --- small parsers -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ruleset", "filters"),
    [
        ("", False),
        (
            (
                "table inet filter {\n\tchain input {\n\t\ttype filter hook input priority filter; policy "
                "accept;\n\t}\n}\n"
            ),
            False,
        ),  # Debian default
        (
            "table inet filter {\n\tchain input {\n\t\ttype filter hook input priority filter; policy drop;\n\t}\n}\n",
            True,
        ),
        (
            (
                "table inet filter {\n\tchain input {\n\t\ttype filter hook input priority 0; policy "
                "accept;\n\t\ttcp dport 22 accept\n\t}\n}\n"
            ),
            True,
        ),
        # NAT and regular chains filter nothing by themselves
        (
            (
                "table ip nat {\n\tchain POSTROUTING {\n\t\ttype nat hook postrouting priority srcnat; policy "
                "accept;\n\t\tmasquerade\n\t}\n}\n"
            ),
            False,
        ),
        (
            (
                "table ip filter {\n\tchain helper {\n\t\tcounter accept\n\t}\n\tset blocked {\n\t\ttype "
                "ipv4_addr\n\t}\n}\n"
            ),
            False,
        ),
        (
            (
                'table inet t {\n\tchain c {\n\t\tcomment "x"\n\t\ttype filter hook input priority 0; policy '
                "accept;\n\t}\n}\n"
            ),
            False,
        ),
    ],
)
def test_nft_filters(ruleset: str, filters: bool) -> None:
    assert nft_filters(ruleset) is filters


@pytest.mark.parametrize(
    ("rules", "filters"),
    [
        ("-P INPUT ACCEPT\n-P FORWARD ACCEPT\n-P OUTPUT ACCEPT\n", False),
        ("-P INPUT ACCEPT\n-P FORWARD DROP\n-P OUTPUT ACCEPT\n", True),
        ("-P INPUT ACCEPT\n-N EMPTY\n", False),
        ("-P INPUT ACCEPT\n-A INPUT -p tcp --dport 22 -j ACCEPT\n", True),
    ],
)
def test_iptables_filters(rules: str, filters: bool) -> None:
    assert iptables_filters(rules) is filters


@pytest.mark.parametrize(
    ("enforce", "config", "mode"),
    [
        ("1\n", None, "enforcing"),
        ("0", "SELINUX=enforcing", "permissive"),
        (None, "# c\nSELINUX=Disabled\n", "disabled"),
        (None, None, None),
    ],
)
def test_selinux(enforce: str | None, config: str | None, mode: str | None) -> None:
    assert parse_selinux(enforce, config) == mode


def test_small_parsers() -> None:
    assert parse_os_release('ID="rhel"\nVERSION_ID=8.6\nNAME=\'Red Hat\'\nPRETTY_NAME="Quote \\"x\\""\n# c\n') == {
        "ID": "rhel",
        "VERSION_ID": "8.6",
        "NAME": "Red Hat",
        "PRETTY_NAME": 'Quote "x"',
    }
    assert (
        last_assignment(
            ["[Manager]\nDefaultTasksMax=512\n", "[Manager]\nDefaultTasksMax=\n"], "DefaultTasksMax", "Manager"
        )
        is None
    )
    assert parse_clock("1767225600.123456789") == 1767225600.123456789
    assert parse_clock("garbage") != parse_clock("garbage")  # NaN: unknown, never a made-up time
    assert zone_from_localtime_link("/usr/share/zoneinfo/America/New_York") == "America/New_York"
    assert zone_from_localtime_link("/etc/localtime.bak") is None
    assert parse_ip_addr("3: bond0.100@bond0    inet 192.0.2.5/26 scope global bond0.100\\ x\n") == (
        Address("bond0.100", 4, "192.0.2.5", 26),
    )
    assert parse_df(
        "/x", "Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/sda1 100 40 60 40% /mnt/with space\n"
    ) == DiskSpace("/x", "/mnt/with space", 100, 60)


def test_arm_part_of_another_vendor_is_not_kunpeng() -> None:
    from acpcheck.facts.parse import parse_cpuinfo

    count, model = parse_cpuinfo("processor\t: 0\nCPU implementer\t: 0x41\nCPU part\t: 0xd01\n")
    assert (count, model) == (1, "implementer 0x41 part 0xd01")
