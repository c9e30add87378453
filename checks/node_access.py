"""Node preprocessing, users and SSH: what the platform needs to join a node over SSH
(node preprocessing U1-U4).

Node state that makes each check FAIL (for the lab):

- ACP-NODE-009: SSH user is not root and `sudo -n true` fails (sudo asks for a password, or no sudo rule).
- ACP-NODE-010: `sshd -T` prints ``usedns yes`` (UseDNS yes in /etc/ssh/sshd_config).
- ACP-NODE-011: `sshd -T` prints ``usepam yes`` (UsePAM yes), on a plan that is not an upgrade.
- ACP-NODE-012: `systemctl show -p DefaultTasksMax` is not infinity (e.g. DefaultTasksMax=512 in
  /etc/systemd/system.conf).
"""

from __future__ import annotations

from dataclasses import replace

from acpcheck import NodeContext, Scope, Severity, check, fail, manual
from acpcheck.checks.support import PREPROCESSING_PAGES, before_install, plan_page, preprocessed
from acpcheck.constants import PREPROCESSING
from acpcheck.remediation import (
    Changes,
    NamedCommand,
    NodeView,
    edit,
    ini_value,
    set_ini_key,
    sshd_option,
    step,
)

#: What `systemctl show` prints for an unlimited DefaultTasksMax: "infinity", or on
#: older systemd (CentOS 7's 219) the raw value it stands for, UINT64_MAX.
UNLIMITED_TASKS = {"infinity", str(2**64 - 1)}


def ssh_user(node: NodeContext) -> str:
    """The SSH user as the node reported it, else as the plan sets it."""
    if node.facts.user:
        return node.facts.user
    planned = node.spec.ssh.user if node.spec.ssh and node.spec.ssh.user else node.plan.spec.ssh.user
    return f"{planned} (per the plan)"


def require_sshd_value(node: NodeContext, key: str, wanted: str, config_name: str) -> None:
    """FAIL unless `sshd -T` reports ``key`` as ``wanted``; MANUAL when sshd -T gave nothing."""
    value = node.facts.sshd.get(key)
    if value is None:
        manual(
            f"{node.name}: `sshd -T` did not report {config_name} (it needs root to run); check "
            "/etc/ssh/sshd_config by hand"
        )
    if value.lower() != wanted:
        fail(
            f"{node.name}: sshd runs with {config_name} {value}; node preprocessing requires {config_name} {wanted} "
            f"(source: {plan_page(node.plan)})",
            seen=value,
            expected=wanted,
        )


@check(
    id="ACP-NODE-009",
    title="the SSH user is root or has passwordless sudo",
    severity=Severity.CRITICAL,
    scope=Scope.NODE,
    applies=preprocessed(),
    refs=[PREPROCESSING],
    remediation=(
        "Use root, or give the SSH user passwordless sudo: a file in /etc/sudoers.d/ with "
        "`<user> ALL=(ALL) NOPASSWD: ALL` (check with `sudo -n true`)."
    ),
)
def check_ssh_user_privileges(node: NodeContext) -> None:
    """The installer configures the node over SSH as this user and needs root for
    everything it does; a non-root user must reach root through sudo without a
    password prompt, since nobody is there to type one. Without it the node cannot
    be joined at all, hence critical."""
    facts, user = node.facts, ssh_user(node)
    if facts.is_root is None:
        manual(f"{node.name}: could not tell whether SSH user {user} has root privileges; check `id -u` by hand")
    if facts.is_root:
        return
    if facts.passwordless_sudo is None:
        manual(
            f"{node.name}: SSH user {user} is not root and whether it has passwordless sudo is unknown; "
            "check `sudo -n true` by hand"
        )
    if not facts.passwordless_sudo:
        fail(
            f"{node.name}: SSH user {user} is not root and `sudo -n true` fails; node preprocessing "
            "requires root or passwordless sudo",
            user=user,
        )


@check(
    id="ACP-NODE-010",
    title="sshd does not look up client names (UseDNS no)",
    severity=Severity.MEDIUM,
    scope=Scope.NODE,
    applies=preprocessed(),
    refs=[PREPROCESSING],
    remediation="Set `UseDNS no` in /etc/ssh/sshd_config and restart sshd.",
)
def check_sshd_usedns(node: NodeContext) -> None:
    """With UseDNS yes, sshd resolves every client address before it accepts a login;
    where reverse DNS is slow or missing, each of the installer's many SSH sessions
    waits for the lookup to time out. Node preprocessing requires UseDNS no. The value
    is the one sshd actually runs with (`sshd -T`), after includes and defaults."""
    require_sshd_value(node, "usedns", "no", "UseDNS")


@check(
    id="ACP-NODE-011",
    title="sshd runs without PAM (UsePAM no) before the node joins",
    severity=Severity.HIGH,
    scope=Scope.NODE,
    applies=before_install(),
    refs=PREPROCESSING_PAGES,
    remediation="Set `UsePAM no` in /etc/ssh/sshd_config and restart sshd before adding the node; `UsePAM yes` may be "
    "restored once the node is Ready.",
)
def check_sshd_usepam(node: NodeContext) -> None:
    """PAM policies (forced password change, pam_access, faillock, pam_limits) can
    block the installer's SSH sessions, so node preprocessing requires UsePAM no.
    The GA docs made it a plain rule; the current docs of every release ask for it
    before the node is added and allow UsePAM yes again once the node is Ready. So
    the check runs on plans for new clusters, not on upgrade plans, whose nodes have
    joined long ago."""
    require_sshd_value(node, "usepam", "no", "UsePAM")


@check(
    id="ACP-NODE-012",
    title="systemd DefaultTasksMax is infinity",
    severity=Severity.HIGH,
    scope=Scope.NODE,
    applies=preprocessed(),
    refs=PREPROCESSING_PAGES,
    remediation="Set DefaultTasksMax=infinity in /etc/systemd/system.conf, then run `systemctl daemon-reexec`.",
)
def check_default_tasks_max(node: NodeContext) -> None:
    """DefaultTasksMax caps the number of tasks (processes and threads) of every systemd
    service; containerd, its shims and the kubelet run many threads per container and
    fail to fork once they reach the cap (the RHEL/CentOS 7 default is 512). The
    current docs require exactly infinity; the GA text also accepted "a very large
    value", which is no longer enough."""
    raw = node.facts.default_tasks_max
    if raw is None:
        manual(f"{node.name}: `systemctl show --property=DefaultTasksMax` could not be read; check it by hand")
    value = raw.strip().removeprefix("DefaultTasksMax=")
    if value not in UNLIMITED_TASKS:
        fail(
            f"{node.name}: systemd DefaultTasksMax is {value}; node preprocessing requires infinity "
            f"(source: {plan_page(node.plan)})",
            seen=value,
            expected="infinity",
        )


# ---------------------------------------------------------------------------
# Remediation steps (`acpcheck remediate`): what acpcheck may change to fix the checks
# above (see acpcheck/remediation/steps.py). sshd steps run last on a node: each
# validates the new file with sshd itself, reloads sshd and proves that a new login
# still works, or puts the old file back at once.


@step(
    fixes=check_sshd_usedns,
    name="sshd-usedns",
    does="sets UseDNS no in /etc/ssh/sshd_config, checked with sshd -t, and reloads sshd",
    order=90,
)
def sshd_usedns(node: NodeView) -> Changes:
    return sshd_option(node, "UseDNS", "no")


@step(
    fixes=check_sshd_usepam,
    name="sshd-usepam",
    does="sets UsePAM no in /etc/ssh/sshd_config, checked with sshd -t, and reloads sshd",
    order=91,
)
def sshd_usepam(node: NodeView) -> Changes:
    return sshd_option(node, "UsePAM", "no")


SYSTEM_CONF = "/etc/systemd/system.conf"


@step(
    fixes=check_default_tasks_max,
    name="tasks-max",
    does=(
        "sets DefaultTasksMax=infinity in systemd's system.conf (and drop-ins that override it), then systemctl "
        "daemon-reexec"
    ),
)
def default_tasks_max(node: NodeView) -> Changes:
    drop_ins = node.glob("/etc/systemd/system.conf.d/*.conf")
    overriding = [
        path
        for path in drop_ins
        if ini_value(node.file(path).text, "Manager", "DefaultTasksMax") not in (None, "infinity")
    ]
    edits = [
        edit(
            node,
            path,
            lambda text: set_ini_key(text, "Manager", "DefaultTasksMax", "infinity"),
            "DefaultTasksMax=infinity",
        )
        for path in [SYSTEM_CONF, *overriding]
    ]
    notes = (
        []
        if node.systemd
        else ["systemd is not PID 1 here: nothing to re-execute; the setting applies when systemd starts"]
    )
    writes = [write for write, _ in edits if write is not None]
    if node.systemd and writes:  # one re-exec, after the last file
        writes[-1] = replace(writes[-1], then=NamedCommand("systemctl-daemon-reexec"))
    return Changes(tuple(writes), (*notes, *(note for _, note in edits if note)))
