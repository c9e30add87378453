"""Tables for acpcheck.checks.node_access (U1-U4)."""

from __future__ import annotations

import pytest

from acpcheck.checks.node_access import (
    check_default_tasks_max,
    check_ssh_user_privileges,
    check_sshd_usedns,
    check_sshd_usepam,
)
from nodes.conftest import case, run_case

NON_ROOT = {"user": "deploy", "is_root": False}
UPGRADE = {"spec": {"acp": {"version": "4.3", "upgradeFrom": "4.2"}, "cluster": {"kubernetesVersion": "1.33.7"}}}

CASES = [
    # U1
    case(check_ssh_user_privileges, "pass", "root"),
    case(check_ssh_user_privileges, "pass", "sudo-nopasswd", facts={**NON_ROOT, "passwordless_sudo": True}),
    case(
        check_ssh_user_privileges,
        "fail",
        "sudo-asks-password",
        facts={**NON_ROOT, "passwordless_sudo": False},
        mentions=["deploy is not root"],
    ),
    case(check_ssh_user_privileges, "manual", "sudo-unknown", facts=NON_ROOT),
    case(check_ssh_user_privileges, "manual", "root-unknown", facts={"is_root": None}),
    # U2
    case(check_sshd_usedns, "pass", "no"),
    case(check_sshd_usedns, "fail", "yes", facts={"sshd": {"usedns": "yes", "usepam": "no"}}, mentions=["UseDNS yes"]),
    case(check_sshd_usedns, "manual", "sshd-T-unreadable", facts={"sshd": {}}),
    # U3
    case(check_sshd_usepam, "pass", "no"),
    case(
        check_sshd_usepam,
        "fail",
        "yes",
        node="w2",
        facts={"sshd": {"usedns": "no", "usepam": "yes"}},
        mentions=["UsePAM yes", "4.3/install/prepare"],
    ),
    case(
        check_sshd_usepam,
        "skip",
        "upgrade-plan-node-already-joined",
        facts={"sshd": {"usedns": "no", "usepam": "yes"}},
        plan=UPGRADE,
    ),
    case(check_sshd_usepam, "manual", "unknown", facts={"sshd": {"usedns": "no"}}),
    # U4
    case(check_default_tasks_max, "pass", "infinity"),
    case(
        check_default_tasks_max,
        "pass",
        "old-systemd-uint64-max",
        facts={"default_tasks_max": "DefaultTasksMax=18446744073709551615"},
    ),
    case(
        check_default_tasks_max,
        "fail",
        "rhel7-default",
        facts={"default_tasks_max": "DefaultTasksMax=512"},
        mentions=["DefaultTasksMax is 512"],
    ),
    case(
        check_default_tasks_max,
        "fail",
        "large-is-not-enough",
        facts={"default_tasks_max": "4194304"},
        mentions=["4194304"],
    ),
    case(check_default_tasks_max, "manual", "unknown", facts={"default_tasks_max": None}),
]


@pytest.mark.parametrize("row", CASES)
def test_access_checks(row) -> None:
    run_case(row)
