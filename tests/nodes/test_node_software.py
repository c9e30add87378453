"""Tables for acpcheck.checks.node_software (S1, S3-S6)."""

from __future__ import annotations

import pytest

from acpcheck.checks.node_software import (
    check_no_conflicting_software,
    check_no_kubelet_unit,
    check_no_leftover_paths,
    check_required_binaries,
    check_tmp_executable,
)
from nodes.conftest import HEALTHY_MOUNTS, REQUIRED_BINARIES, case, mount, run_case

UPGRADE = {"spec": {"acp": {"version": "4.3", "upgradeFrom": "4.2"}}}
ACP_41 = {"spec": {"acp": {"version": "4.1"}, "cluster": {"kubernetesVersion": "1.32.7"}}}
ALL_BINARIES = {name: f"/usr/bin/{name}" for name in REQUIRED_BINARIES}
RHEL_86 = {"os_id": "rhel", "os_version_id": "8.6", "package_manager": "rpm"}

CASES = [
    # S1
    case(check_required_binaries, "pass", "all"),
    case(check_required_binaries, "pass", "sftp-only", facts={"binaries": {**ALL_BINARIES, "scp": None}}),
    case(
        check_required_binaries,
        "fail",
        "md5sum-missing",
        facts={"binaries": {**ALL_BINARIES, "md5sum": None}},
        mentions=["md5sum is not on PATH"],
    ),
    case(
        check_required_binaries,
        "fail",
        "no-scp-no-sftp",
        facts={"binaries": {**ALL_BINARIES, "scp": None, "sftp": None}},
        mentions=["none of scp, sftp"],
    ),
    case(
        check_required_binaries,
        "manual",
        "not-asked",
        facts={"binaries": {k: v for k, v in ALL_BINARIES.items() if k != "tar"}},
    ),
    # S3
    case(check_no_kubelet_unit, "pass", "absent"),
    case(
        check_no_kubelet_unit,
        "fail",
        "present",
        facts={"existing_paths": frozenset({"/etc/systemd/system/kubelet.service"})},
        mentions=["/etc/systemd/system/kubelet.service exists"],
    ),
    case(
        check_no_kubelet_unit,
        "skip",
        "upgrade",
        facts={"existing_paths": frozenset({"/etc/systemd/system/kubelet.service"})},
        plan=UPGRADE,
    ),
    case(check_no_kubelet_unit, "manual", "unreadable", facts={"probe_errors": ("existing_paths: test -e failed",)}),
    # S4
    case(check_tmp_executable, "pass", "on-root"),
    case(
        check_tmp_executable,
        "fail",
        "tmpfs-noexec",
        facts={"mounts": (*HEALTHY_MOUNTS, mount("/tmp", "tmpfs", "rw", "nosuid", "noexec"))},
        mentions=["/tmp is mounted noexec", "noexec"],
    ),
    case(
        check_tmp_executable,
        "fail",
        "root-noexec",
        facts={"mounts": (mount("/", "ext4", "rw", "noexec"),)},
        mentions=["/tmp (on the / mount) is mounted noexec"],
    ),
    case(check_tmp_executable, "manual", "no-mount-table", facts={"mounts": ()}),
    # S5
    case(check_no_conflicting_software, "pass", "clean"),
    case(
        check_no_conflicting_software,
        "fail",
        "docker.io",
        facts={"installed_packages": frozenset({"docker.io"})},
        mentions=["docker.io is installed", "dpkg"],
    ),
    case(
        check_no_conflicting_software,
        "fail",
        "podman-on-rhel",
        facts={**RHEL_86, "installed_packages": frozenset({"podman", "containerd"})},
        mentions=["podman"],
    ),
    case(
        check_no_conflicting_software,
        "pass",
        "containerd-is-not-on-the-rhel-list",
        facts={**RHEL_86, "installed_packages": frozenset({"containerd"})},
    ),
    case(
        check_no_conflicting_software,
        "fail",
        "microk8s-snap",
        facts={"snaps": frozenset({"microk8s", "lxd"})},
        mentions=["snap microk8s"],
    ),
    case(
        check_no_conflicting_software,
        "fail",
        "usr-local-bin",
        node="w1",
        facts={"usr_local_bin": frozenset({"runc", "kubectl", "helm", "containerd-shim-runc-v2", "kubectx"})},
        mentions=["/usr/local/bin/runc", "/usr/local/bin/kubectl", "/usr/local/bin/containerd-shim-runc-v2"],
    ),
    case(
        check_no_conflicting_software,
        "pass",
        "usr-local-bin-unrelated",
        facts={"usr_local_bin": frozenset({"helm", "kubectx", "yq"})},
    ),
    case(check_no_conflicting_software, "manual", "no-package-manager", facts={"package_manager": None}),
    case(
        check_no_conflicting_software,
        "skip",
        "upgrade",
        facts={"installed_packages": frozenset({"docker.io"})},
        plan=UPGRADE,
    ),
    # S6
    case(check_no_leftover_paths, "pass", "none"),
    case(
        check_no_leftover_paths,
        "fail",
        "var-log-pods",
        facts={"existing_paths": frozenset({"/var/log/pods", "/var/lib/nerdctl"})},
        mentions=["/var/log/pods exists", "/var/lib/nerdctl exists"],
    ),
    case(
        check_no_leftover_paths,
        "pass",
        "nerdctl-is-not-listed-on-4.1",
        plan=ACP_41,
        facts={"existing_paths": frozenset({"/var/lib/nerdctl"})},
    ),
    case(
        check_no_leftover_paths,
        "warn",
        "dedicated-containerd-disk",
        facts={"existing_paths": frozenset({"/var/lib/containerd"})},
        mentions=["/var/lib/containerd is a mount point"],
    ),
    case(
        check_no_leftover_paths,
        "fail",
        "opt-nerdctl-trailing-slash",
        facts={"existing_paths": frozenset({"/opt/nerdctl/"})},
        mentions=["/opt/nerdctl exists"],
    ),
]


@pytest.mark.parametrize("row", CASES)
def test_software_checks(row) -> None:
    run_case(row)
