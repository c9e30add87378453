"""Tables for acpcheck.checks.node_platform: OS/kernel matrix, CPU model, sizing, disks."""

from __future__ import annotations

import pytest

from acpcheck.checks.node_platform import (
    check_arm_cpu_model,
    check_data_disk_space,
    check_global_control_plane_size,
    check_kylin_nodeport_bug,
    check_os_kernel_supported,
    check_root_filesystem,
)
from nodes.conftest import HEALTHY_DISKS, KIB_PER_GIB, case, disk, run_case

ACP_41 = {"spec": {"acp": {"version": "4.1"}, "cluster": {"kubernetesVersion": "1.32.7"}}}
GLOBAL = {"spec": {"cluster": {"role": "global"}}}
SINGLE_NODE_GLOBAL = {
    "spec": {"cluster": {"role": "global"}, "nodes": [{"name": "cp1", "role": "control-plane", "ipv4": "192.0.2.11"}]}
}

CENTOS_7 = {
    "os_id": "centos",
    "os_version_id": "7",
    "os_pretty_name": "CentOS Linux 7 (Core)",
    "kernel_release": "3.10.0-1160.el7.x86_64",
}
RHEL_810 = {
    "os_id": "rhel",
    "os_version_id": "8.10",
    "os_pretty_name": "Red Hat Enterprise Linux 8.10 (Ootpa)",
    "kernel_release": "4.18.0-553.el8_10.x86_64",
}
KYLIN_SP3_ARM = {
    "os_id": "kylin",
    "os_version_id": "V10",
    "os_pretty_name": "Kylin Linux Advanced Server V10 (SP3)",
    "kernel_release": "4.19.90-52.22.v2207.ky10.aarch64",
    "architecture": "aarch64",
    "cpu_model": "Kunpeng-920",
}
KYLIN_SP2 = {
    "os_id": "kylin",
    "os_version_id": "V10",
    "os_pretty_name": "Kylin Linux Advanced Server V10 (SP2)",
    "kernel_release": "4.19.90-24.4.v2101.ky10.x86_64",
}
KYLIN_NO_SP = {
    "os_id": "kylin",
    "os_version_id": "V10",
    "os_pretty_name": "Kylin Linux Advanced Server V10 (Lance)",
    "kernel_release": "4.19.90-52.22.v2207.ky10.x86_64",
}
ARM = {"architecture": "aarch64", "cpu_model": "Kunpeng-920"}


def gib(count: float) -> int:
    return int(count * KIB_PER_GIB)


def disks(*replacing, drop: str | None = None):
    """The healthy disks with entries replaced by path (and one dropped)."""
    replaced = {d.path: d for d in replacing}
    return {"disks": tuple(replaced.get(d.path, d) for d in HEALTHY_DISKS if d.path != drop)}


ALL_ON_ROOT = (
    disk("/", 200, 120),
    disk("/var/lib/etcd", 200, 120, mount="/"),
    disk("/var/lib/containerd", 200, 120, mount="/"),
    disk("/cpaas", 200, 120, mount="/"),
)

CASES = [
    # OS and kernel
    case(check_os_kernel_supported, "pass", "ubuntu-22.04"),
    case(check_os_kernel_supported, "pass", "kernel-build-may-differ", facts={"kernel_release": "5.15.0-91-generic"}),
    case(
        check_os_kernel_supported,
        "fail",
        "ubuntu-hwe",
        facts={"kernel_release": "6.5.0-41-generic"},
        mentions=["6.5.0-41-generic", "5.15.0", "HWE"],
    ),
    case(
        check_os_kernel_supported,
        "fail",
        "ubuntu-24.04",
        facts={"os_version_id": "24.04", "os_pretty_name": "Ubuntu 24.04 LTS"},
        mentions=["24.04", "20.04, 22.04"],
    ),
    case(
        check_os_kernel_supported,
        "fail",
        "rocky",
        facts={"os_id": "rocky", "os_version_id": "9.4", "os_pretty_name": "Rocky Linux 9.4"},
        mentions=["Rocky Linux 9.4", "not supported on ACP 4.3"],
    ),
    case(check_os_kernel_supported, "pass", "rhel-8.10-on-4.3", facts=RHEL_810),
    case(
        check_os_kernel_supported,
        "fail",
        "rhel-8.10-on-4.1",
        facts=RHEL_810,
        plan=ACP_41,
        mentions=["8.10", "4.1/install/prepare/node_preprocessing"],
    ),
    case(
        check_os_kernel_supported,
        "manual",
        "centos-minor-unknown",
        facts=CENTOS_7,
        mentions=["3.10.0-1160.el7.x86_64 matches", "/etc/centos-release"],
    ),
    case(
        check_os_kernel_supported,
        "pass",
        "centos-7.9-from-centos-release",
        facts={**CENTOS_7, "os_version_id": "7.9.2009"},
    ),
    case(
        check_os_kernel_supported,
        "fail",
        "centos-7.5",
        facts={**CENTOS_7, "os_version_id": "7.5.1804"},
        mentions=["7.6, 7.7, 7.8, 7.9"],
    ),
    case(
        check_os_kernel_supported,
        "fail",
        "centos-wrong-kernel-whatever-minor",
        facts={**CENTOS_7, "kernel_release": "5.4.0-1.el7.elrepo.x86_64"},
        mentions=["5.4.0-1.el7.elrepo.x86_64", "3.10.0"],
    ),
    case(check_os_kernel_supported, "pass", "kylin-sp3-arm", facts=KYLIN_SP3_ARM),
    case(check_os_kernel_supported, "fail", "kylin-sp2", facts=KYLIN_SP2, mentions=["V10 SP3", "SP2"]),
    case(
        check_os_kernel_supported,
        "manual",
        "kylin-service-pack-unknown",
        facts=KYLIN_NO_SP,
        mentions=["V10 SP3", "/etc/.productinfo"],
    ),
    case(
        check_os_kernel_supported,
        "fail",
        "ubuntu-on-arm",
        facts={"architecture": "aarch64", "kernel_release": "5.15.0-56-generic"},
        mentions=["aarch64", "Kylin V10 SP3 (ARM64)"],
    ),
    case(check_os_kernel_supported, "manual", "os-unknown", facts={"os_id": None}),
    case(
        check_os_kernel_supported,
        "skip",
        "immutable",
        facts={"os_id": "sles"},
        plan={"spec": {"cluster": {"type": "immutable"}}},
    ),
    # ARM CPU model
    case(check_arm_cpu_model, "skip", "x86"),
    case(check_arm_cpu_model, "pass", "kunpeng-920", facts=KYLIN_SP3_ARM),
    case(check_arm_cpu_model, "pass", "tsv110", facts={**KYLIN_SP3_ARM, "cpu_model": "TSV110"}),
    case(
        check_arm_cpu_model,
        "fail",
        "phytium",
        facts={**KYLIN_SP3_ARM, "cpu_model": "FTC663"},
        mentions=["'FTC663'", "Kunpeng 920"],
    ),
    case(check_arm_cpu_model, "manual", "model-unknown", facts={**KYLIN_SP3_ARM, "cpu_model": "-"}),
    case(check_arm_cpu_model, "manual", "architecture-unknown", facts={"architecture": None}),
    # Kylin NodePort bug
    case(check_kylin_nodeport_bug, "skip", "ubuntu"),
    case(check_kylin_nodeport_bug, "pass", "sp3", facts=KYLIN_SP3_ARM),
    case(check_kylin_nodeport_bug, "warn", "sp2", facts=KYLIN_SP2, mentions=["SP2", "NodePort"]),
    case(check_kylin_nodeport_bug, "manual", "service-pack-unknown", facts=KYLIN_NO_SP),
    # CPU and memory
    case(check_global_control_plane_size, "skip", "workload-cluster", facts={"cpu_count": 2}),
    case(check_global_control_plane_size, "skip", "worker", node="w1", plan=GLOBAL, facts={"cpu_count": 2}),
    case(check_global_control_plane_size, "pass", "16-cpu-32gib", plan=GLOBAL),
    case(
        check_global_control_plane_size,
        "pass",
        "8-cpu-16gib-machine",
        plan=GLOBAL,
        facts={"cpu_count": 8, "memory_kib": 16_265_000},
    ),
    case(
        check_global_control_plane_size,
        "fail",
        "4-cpu",
        plan=GLOBAL,
        facts={"cpu_count": 4},
        mentions=["4 CPUs", "at least 8"],
    ),
    case(
        check_global_control_plane_size,
        "fail",
        "12gib",
        plan=GLOBAL,
        facts={"memory_kib": gib(12)},
        mentions=["12.9 GB memory", "at least 16 GB"],
    ),
    case(
        check_global_control_plane_size,
        "fail",
        "single-node-8-cpu",
        plan=SINGLE_NODE_GLOBAL,
        facts={"cpu_count": 8},
        mentions=["8 CPUs", "single-node", "at least 12"],
    ),
    case(
        check_global_control_plane_size,
        "pass",
        "single-node-12-24",
        plan=SINGLE_NODE_GLOBAL,
        facts={"cpu_count": 12, "memory_kib": gib(24)},
    ),
    case(
        check_global_control_plane_size,
        "fail",
        "arm-below-1.5x",
        plan=GLOBAL,
        facts={**ARM, "cpu_count": 8},
        mentions=["8 CPUs", "at least 12", "1.5x"],
    ),
    case(
        check_global_control_plane_size,
        "warn",
        "arm-below-2x",
        plan=GLOBAL,
        facts={**ARM, "cpu_count": 12, "memory_kib": gib(24)},
        mentions=["12 CPUs", "16 CPUs / 32 GB"],
    ),
    case(
        check_global_control_plane_size,
        "pass",
        "arm-2x",
        plan=GLOBAL,
        facts={**ARM, "cpu_count": 16, "memory_kib": gib(32)},
    ),
    case(check_global_control_plane_size, "manual", "memory-unknown", plan=GLOBAL, facts={"memory_kib": None}),
    # Data disks
    case(check_data_disk_space, "pass", "dedicated-disks"),
    case(
        check_data_disk_space,
        "fail",
        "small-etcd-disk",
        facts=disks(disk("/var/lib/etcd", 8, 8)),
        mentions=["/var/lib/etcd is a 8.6 GB mount", "at least 10 GB"],
    ),
    case(
        check_data_disk_space,
        "warn",
        "containerd-below-recommended",
        facts=disks(disk("/var/lib/containerd", 120, 120)),
        mentions=["128.8 GB", "150 GB is recommended"],
    ),
    case(
        check_data_disk_space,
        "fail",
        "everything-on-root",
        facts={"disks": ALL_ON_ROOT},
        mentions=[
            "/var/lib/etcd, /var/lib/containerd and /cpaas share the / filesystem, 128.8 GB free",
            "at least 150 GB",
        ],
    ),
    case(
        check_data_disk_space,
        "fail",
        "global-cpaas-needs-100",
        plan=GLOBAL,
        facts=disks(disk("/cpaas", 60, 60)),
        mentions=["/cpaas is a 64.4 GB mount", "at least 100 GB"],
    ),
    case(
        check_data_disk_space,
        "warn",
        "worker-cpaas-40-is-enough",
        node="w1",
        facts=disks(disk("/cpaas", 60, 60), drop="/var/lib/etcd"),
        mentions=["200 GB is recommended"],
    ),
    case(check_data_disk_space, "pass", "worker-has-no-etcd", node="w1", facts=disks(drop="/var/lib/etcd")),
    case(check_data_disk_space, "manual", "cpaas-unknown", facts=disks(drop="/cpaas")),
    case(
        check_data_disk_space,
        "fail",
        "unknown-rides-along",
        facts=disks(disk("/var/lib/etcd", 8, 8), drop="/cpaas"),
        mentions=["(not verified)", "/cpaas"],
    ),
    # Root filesystem
    case(check_root_filesystem, "pass", "200gib-25-percent"),
    case(
        check_root_filesystem, "fail", "40gib", facts=disks(disk("/", 40, 30)), mentions=["42.9 GB", "at least 50 GB"]
    ),
    case(
        check_root_filesystem,
        "fail",
        "85-percent-used",
        facts=disks(disk("/", 200, 30)),
        mentions=["85 % used", "below 80 %"],
    ),
    case(
        check_root_filesystem,
        "warn",
        "60gib",
        facts=disks(disk("/", 60, 50)),
        mentions=["64.4 GB", "100 GB is recommended"],
    ),
    case(check_root_filesystem, "manual", "unknown", facts=disks(drop="/")),
]


@pytest.mark.parametrize("row", CASES)
def test_platform_checks(row) -> None:
    run_case(row)
