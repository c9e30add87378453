"""Tables for acpcheck.checks.node_kernel (K1-K7)."""

from __future__ import annotations

import pytest

from acpcheck.checks.node_kernel import (
    check_centos7_nokmem,
    check_conntrack_modules,
    check_firewall_disabled,
    check_ipvs_modules,
    check_kube_ovn_modules,
    check_security_modules_disabled,
    check_swap_disabled,
    check_transparent_hugepage_never,
)
from nodes.conftest import LOADED_MODULES, case, run_case

CENTOS_79 = {
    "os_id": "centos",
    "os_version_id": "7",
    "os_pretty_name": "CentOS Linux 7 (Core)",
    "kernel_release": "3.10.0-1160.el7.x86_64",
}
RHEL_78 = {"os_id": "rhel", "os_version_id": "7.8", "kernel_release": "3.10.0-1127.el7.x86_64"}
OLD_KERNEL_MODULES = LOADED_MODULES | {"nf_conntrack_ipv4"}

CASES = [
    # K1
    case(check_transparent_hugepage_never, "pass", "set"),
    case(
        check_transparent_hugepage_never,
        "fail",
        "absent",
        facts={"kernel_cmdline": "root=/dev/sda1 ro quiet"},
        mentions=["no transparent_hugepage"],
    ),
    case(
        check_transparent_hugepage_never,
        "fail",
        "last-value-wins",
        facts={"kernel_cmdline": "ro transparent_hugepage=never transparent_hugepage=madvise"},
        mentions=["transparent_hugepage=madvise"],
    ),
    case(check_transparent_hugepage_never, "manual", "cmdline-unknown", facts={"kernel_cmdline": None}),
    # K2
    case(
        check_centos7_nokmem,
        "pass",
        "centos7-nokmem",
        facts={**CENTOS_79, "kernel_cmdline": "ro cgroup.memory=nosocket,nokmem"},
    ),
    case(
        check_centos7_nokmem,
        "fail",
        "centos7-without",
        facts={**CENTOS_79, "kernel_cmdline": "ro transparent_hugepage=never"},
        mentions=["no cgroup.memory parameter", "CentOS 7"],
    ),
    case(
        check_centos7_nokmem,
        "fail",
        "centos7-other-option",
        facts={**CENTOS_79, "kernel_cmdline": "ro cgroup.memory=nosocket"},
        mentions=["nosocket"],
    ),
    case(check_centos7_nokmem, "skip", "ubuntu"),
    case(check_centos7_nokmem, "manual", "os-unknown", facts={"os_id": None}),
    # K3
    case(check_ipvs_modules, "pass", "loaded"),
    case(
        check_ipvs_modules,
        "fail",
        "ip_vs_sh-missing",
        facts={"modules": LOADED_MODULES - {"ip_vs_sh"}},
        mentions=["ip_vs_sh not loaded"],
    ),
    case(
        check_ipvs_modules,
        "manual",
        "modules-unreadable",
        facts={"modules": frozenset(), "probe_errors": ("modules: /proc/modules unreadable",)},
    ),
    # K4
    case(check_conntrack_modules, "skip", "kernel-5.15"),
    case(
        check_conntrack_modules,
        "skip",
        "rhel-4.18",
        facts={"os_id": "rhel", "os_version_id": "8.6", "kernel_release": "4.18.0-372.9.1.el8.x86_64"},
    ),
    case(check_conntrack_modules, "pass", "rhel7-loaded", facts={**RHEL_78, "modules": OLD_KERNEL_MODULES}),
    case(
        check_conntrack_modules,
        "fail",
        "rhel7-missing",
        facts=RHEL_78,
        mentions=["nf_conntrack_ipv4 not loaded", "3.10.0"],
    ),
    case(
        check_conntrack_modules,
        "fail",
        "dual-stack-needs-ipv6",
        facts={**CENTOS_79, "modules": OLD_KERNEL_MODULES},
        plan={
            "spec": {
                "cluster": {"ipFamily": "dual-stack"},
                "nodes": [{"name": "cp1", "role": "control-plane", "ipv4": "192.0.2.11", "ipv6": "2001:db8::11"}],
            }
        },
        mentions=["nf_conntrack_ipv6 not loaded", "dual-stack"],
    ),
    case(check_conntrack_modules, "manual", "kernel-unknown", facts={"kernel_release": None}),
    # K5
    case(check_kube_ovn_modules, "pass", "loaded"),
    case(
        check_kube_ovn_modules,
        "fail",
        "geneve-missing",
        facts={"modules": LOADED_MODULES - {"geneve"}},
        mentions=["geneve not loaded"],
    ),
    case(
        check_kube_ovn_modules,
        "skip",
        "calico",
        facts={"modules": frozenset()},
        plan={"spec": {"network": {"plugin": "calico"}}},
    ),
    # K6: SELinux and AppArmor
    case(check_security_modules_disabled, "pass", "none"),
    case(check_security_modules_disabled, "pass", "selinux-disabled", facts={"selinux": "disabled"}),
    case(
        check_security_modules_disabled,
        "fail",
        "selinux-enforcing",
        facts={"selinux": "enforcing"},
        mentions=["SELinux is enforcing"],
    ),
    case(
        check_security_modules_disabled,
        "fail",
        "apparmor",
        facts={"apparmor_enabled": True},
        mentions=["AppArmor is enabled"],
    ),
    case(
        check_security_modules_disabled,
        "warn",
        "selinux-permissive",
        facts={"selinux": "permissive"},
        mentions=["permissive"],
    ),
    case(check_security_modules_disabled, "pass", "apparmor-unknown", facts={"apparmor_enabled": None}),
    # K6: firewall
    case(check_firewall_disabled, "pass", "inactive"),
    case(
        check_firewall_disabled,
        "fail",
        "firewalld",
        facts={"firewall_services": {"firewalld": "active", "nftables": "inactive"}},
        mentions=["firewalld is active"],
    ),
    case(
        check_firewall_disabled,
        "manual",
        "unreadable",
        facts={"firewall_services": {}, "probe_errors": ("firewall_services: systemctl failed",)},
    ),
    # K7
    case(check_swap_disabled, "pass", "no-swap"),
    case(check_swap_disabled, "fail", "swapfile", node="w1", facts={"swaps": ("/swap.img",)}, mentions=["/swap.img"]),
    case(
        check_swap_disabled,
        "skip",
        "imported-cluster",
        facts={"swaps": ("/swap.img",)},
        plan={"spec": {"cluster": {"type": "imported"}}},
    ),
]


@pytest.mark.parametrize("row", CASES)
def test_kernel_checks(row) -> None:
    run_case(row)
