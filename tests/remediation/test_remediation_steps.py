"""The changes the shipped node steps propose, for node states the lab cannot show (a real kernel,
systemd, GRUB, firewalld, rpm …): each is read from a node described by its files
and the answers of its read-only commands. Performing them is the engine's job (tested
in test_remediation_engine.py) and, on real sshd nodes, the lab's
(tests/lab/test_remediation_on_lab.py)."""

from __future__ import annotations

import shlex
from typing import Any

import pytest
from nodes.conftest import node_context

from acpcheck.catalog import load_catalog
from acpcheck.remediation.changes import Changes, MoveAside, RunCommand, WriteFile
from acpcheck.remediation.commands import shown
from acpcheck.remediation.nodefiles import FileState
from acpcheck.remediation.steps import all_steps, steps_for
from acpcheck.remediation.view import NodeView
from acpcheck.sources.nodeside import node_program
from acpcheck.transport.base import CommandResult


class FakeView(NodeView):
    """A node given as files and as answers to commands (by a substring of the command)."""

    def __init__(
        self,
        files: dict[str, str | None] | None = None,
        answers: dict[str, str] | None = None,
        *,
        systemd: bool = False,
        **facts: Any,
    ):
        super().__init__(transport=None, node=node_context("cp1", **facts))  # type: ignore[arg-type]
        self.files = {"/etc/fstab": "UUID=1 / ext4 defaults 0 1\n", **(files or {})}
        self.answers = answers or {}
        self.__dict__["systemd"] = systemd

    def file(self, path: str) -> FileState:
        content = self.files.get(path)
        return FileState(path, "absent") if content is None else FileState(path, "file", content.encode(), 0o644, 0, 0)

    def run(self, command: str) -> CommandResult:
        for fragment, answer in self.answers.items():
            if fragment in command:
                return CommandResult(0, answer, "", 0.0, 0.0, None, 0.0)
        return CommandResult(1, "", "not found", 0.0, 0.0, None, 0.0)


def changes(check: str, view: FakeView) -> Changes:
    load_catalog()  # imports the check modules (their steps), whichever test of this file runs first
    (step,) = steps_for(check)
    return step.changes(view)


def commands(result: Changes) -> list[str]:
    return [a.command for a in result.actions if isinstance(a, RunCommand)]


def files(result: Changes) -> dict[str, str | None]:
    return {
        a.path: (a.after.decode() if a.after is not None else None) for a in result.actions if isinstance(a, WriteFile)
    }


KERNEL = {"stat -f -c %T /proc": "proc", "stat -f -c %T /sys": "sysfs"}


def test_every_shipped_step_belongs_to_a_check_of_its_target_in_the_catalogue() -> None:
    catalog = load_catalog()
    cluster_steps = [s for s in all_steps() if s.check in catalog and s.target == "cluster"]
    assert {s.check for s in cluster_steps} == {
        "ACP-ROLE-001",
        "ACP-ROLE-002",
        "ACP-REG-001",
        "ACP-REG-002",
        "ACP-REG-003",
        "ACP-REG-004",
    }
    assert all(catalog[s.check].scope.value == "cluster" and not s.removes for s in cluster_steps)
    steps = [s for s in all_steps() if s.check in catalog and s.target == "node"]
    assert {s.check for s in steps} == {
        "ACP-NODE-001",
        "ACP-NODE-002",
        "ACP-NODE-003",
        "ACP-NODE-004",
        "ACP-NODE-005",
        "ACP-NODE-006",
        "ACP-NODE-007",
        "ACP-NODE-008",
        "ACP-NODE-010",
        "ACP-NODE-011",
        "ACP-NODE-012",
        "ACP-NODE-014",
        "ACP-NODE-023",
        "ACP-NODE-025",
        "ACP-NODE-026",
    }
    assert {s.check for s in steps if s.removes} == {"ACP-NODE-023", "ACP-NODE-025", "ACP-NODE-026"}
    assert all(catalog[s.check].scope.value == "node" for s in steps)


def test_swap_off_now_and_in_fstab_on_a_real_kernel() -> None:
    view = FakeView(
        {"/etc/fstab": "UUID=1 / ext4 defaults 0 1\n/swap.img none swap sw 0 0\n"}, KERNEL, swaps=("/swap.img",)
    )
    result = changes("ACP-NODE-008", view)
    assert files(result) == {"/etc/fstab": "UUID=1 / ext4 defaults 0 1\n#/swap.img none swap sw 0 0\n"}
    (swapoff,) = [a for a in result.actions if isinstance(a, RunCommand)]
    assert (
        swapoff.command == "swapoff /swap.img"
        and swapoff.reverse == "awk '{print $1}' /proc/swaps | grep -qxF /swap.img || swapon /swap.img"
    )
    assert not result.deferred


def test_swap_in_a_container_is_left_to_the_next_boot() -> None:
    view = FakeView(
        {"/etc/fstab": "/swap.img none swap sw 0 0\n"}, {"stat -f -c %T /proc/swaps": "tmpfs"}, swaps=("/swap.img",)
    )
    result = changes("ACP-NODE-008", view)
    assert commands(result) == [] and result.deferred
    assert any("is not the kernel's (it is on tmpfs" in note for note in result.notes)


def test_modules_loaded_now_and_at_boot() -> None:
    view = FakeView(answers=KERNEL, modules=frozenset({"geneve", "openvswitch", "ip_vs"}))
    result = changes("ACP-NODE-003", view)
    assert files(result) == {
        "/etc/modules-load.d/ipvs.conf": (
            "# kube-proxy in IPVS mode (node preprocessing); written by acpcheck "
            "remediate\nip_vs\nip_vs_rr\nip_vs_wrr\nip_vs_sh\n"
        )
    }
    (load,) = [a for a in result.actions if isinstance(a, RunCommand)]
    assert load.command == "modprobe -a ip_vs_rr ip_vs_wrr ip_vs_sh"
    assert load.reverse == (
        "modprobe -r -a ip_vs_rr ip_vs_wrr ip_vs_sh 2>/dev/null; ! grep -qE '^(ip_vs_rr|ip_vs_wrr|ip_vs_sh) "
        "' /proc/modules"
    )


def test_selinux_permissive_now_disabled_at_boot() -> None:
    view = FakeView(
        {"/etc/selinux/config": "SELINUX=enforcing\nSELINUXTYPE=targeted\n"},
        {
            "stat -f -c %T /sys/fs/selinux/enforce": "selinuxfs",
            "test -w": "",
            "command -v setenforce": "/usr/sbin/setenforce",
        },
        selinux="enforcing",
        apparmor_enabled=True,
    )
    result = changes("ACP-NODE-006", view)
    assert [(c.command, c.reverse) for c in result.actions if isinstance(c, RunCommand)] == [
        ("setenforce 0", "setenforce 1")
    ]
    assert files(result) == {"/etc/selinux/config": "SELINUX=disabled\nSELINUXTYPE=targeted\n"}
    assert result.deferred and any("AppArmor" in note for note in result.notes)


def test_firewall_services_are_stopped_with_their_reverse() -> None:
    answers = {
        "systemctl is-active firewalld.service": "active",
        "systemctl is-enabled firewalld.service": "enabled",
        "systemctl is-active nftables.service": "inactive",
        "systemctl is-enabled nftables.service": "disabled",
        "command -v ufw": "/usr/sbin/ufw",
    }
    view = FakeView(
        answers=answers,
        systemd=True,
        firewall_services={"firewalld": "active", "ufw": "active", "nftables": "active", "iptables": "inactive"},
    )
    result = changes("ACP-NODE-007", view)
    pairs = [(c.command, c.reverse, c.capture) for c in result.actions if isinstance(c, RunCommand)]
    assert pairs == [
        ("systemctl disable --now firewalld.service", "systemctl enable --now firewalld.service", None),
        ("ufw disable", "ufw --force enable", None),
        ("nft flush ruleset", "{ echo 'flush ruleset'; cat; } | nft -f -", "nft list ruleset"),
    ]


def test_sshd_reload_through_systemd_or_the_listener_of_this_session() -> None:
    config = {"/etc/ssh/sshd_config": "Port 22\nUseDNS yes\n"}
    with_systemd = FakeView(
        config, {"systemctl is-active ssh.service": "active", "command -v sshd": "/usr/sbin/sshd"}, systemd=True
    )
    (change,) = changes("ACP-NODE-010", with_systemd).actions
    assert isinstance(change, WriteFile) and change.after == b"Port 22\nUseDNS no\n"
    assert change.then == "systemctl reload ssh.service" and change.login_check
    assert change.validate == '/usr/sbin/sshd -t -f "$1" && /usr/sbin/sshd -T -f "$1" | grep -qix \'usedns no\''
    (change,) = changes("ACP-NODE-010", FakeView(config)).actions
    assert isinstance(change, WriteFile) and change.then is not None
    # the packaged node script, run by its name (what people read), with its full text on the command line
    assert shown(change.then) == "reload-sshd" and change.then.endswith(" reload-sshd")
    assert node_program("reload_sshd.sh").splitlines()[-1] in change.then


def test_tasks_max_in_the_file_and_the_drop_in_that_overrides_it_then_one_reexec() -> None:
    view = FakeView(
        {
            "/etc/systemd/system.conf": "[Manager]\n#DefaultTasksMax=15%\n",
            "/etc/systemd/system.conf.d/limits.conf": "[Manager]\nDefaultTasksMax=512\n",
        },
        {"for p in /etc/systemd/system.conf.d/*.conf": "/etc/systemd/system.conf.d/limits.conf"},
        systemd=True,
    )
    result = changes("ACP-NODE-012", view)
    assert files(result) == {
        "/etc/systemd/system.conf": "[Manager]\n#DefaultTasksMax=15%\nDefaultTasksMax=infinity\n",
        "/etc/systemd/system.conf.d/limits.conf": "[Manager]\nDefaultTasksMax=infinity\n",
    }
    assert [a.then for a in result.actions if isinstance(a, WriteFile)] == [None, "systemctl daemon-reexec"]


def test_grub_edited_and_regenerated_never_rebooted() -> None:
    view = FakeView(
        {
            "/etc/default/grub": 'GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX=""\n',
            "/boot/grub/grub.cfg": "linux /vmlinuz ro quiet\n",
        },
        {"command -v update-grub": "/usr/sbin/update-grub"},
    )
    result = changes("ACP-NODE-001", view)
    assert files(result) == {"/etc/default/grub": 'GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX="transparent_hugepage=never"\n'}
    (regenerate,) = [a for a in result.actions if isinstance(a, RunCommand)]
    assert regenerate.command == "update-grub" and regenerate.touches == ("/boot/grub/grub.cfg",)
    assert result.deferred  # NEEDS REBOOT if the check still fails: acpcheck never reboots
    assert changes("ACP-NODE-001", FakeView()).notes[0].startswith("/etc/default/grub does not exist here")


def test_packages_removed_with_their_files_and_database_archived() -> None:
    answers = {
        "dpkg-query -L": "/.\n/usr\n/usr/bin/dockerd\n/etc/docker\n",
        "/var/lib/dpkg/info/": "/var/lib/dpkg/info/docker.io.list\n",
    }
    view = FakeView(
        answers=answers, installed_packages=frozenset({"docker.io", "tar"}), usr_local_bin=frozenset({"runc", "helm"})
    )
    result = changes("ACP-NODE-025", view)
    (purge,) = [a for a in result.actions if isinstance(a, RunCommand)]
    assert purge.command == "dpkg --purge docker.io" and purge.reverse is None
    assert {"/var/lib/dpkg/status", "/var/lib/dpkg/info/docker.io.list", "/usr/bin/dockerd", "/etc/docker"} <= set(
        purge.touches
    )
    assert "/." not in purge.touches
    assert [a.path for a in result.actions if isinstance(a, MoveAside)] == ["/usr/local/bin/runc"]


def test_leftover_paths_moved_aside_but_never_a_mount_point() -> None:
    from nodes.conftest import HEALTHY_MOUNTS

    view = FakeView(existing_paths=frozenset({"/var/lib/docker", "/var/lib/containerd"}), mounts=HEALTHY_MOUNTS)
    result = changes("ACP-NODE-026", view)
    assert [a.path for a in result.actions] == ["/var/lib/docker"]
    assert result.notes == (
        "/var/lib/containerd is a mount point: empty it by hand (acpcheck never removes a mount point)",
    )


def test_kubelet_unit_removed_and_systemd_reloaded() -> None:
    view = FakeView({"/etc/systemd/system/kubelet.service": "[Service]\n"}, systemd=True)
    (removal,) = changes("ACP-NODE-023", view).actions
    assert isinstance(removal, WriteFile) and removal.after is None and removal.then == "systemctl daemon-reload"


@pytest.mark.parametrize("check", ["ACP-NODE-010", "ACP-NODE-011", "ACP-NODE-012", "ACP-NODE-014"])
def test_a_node_already_right_plans_nothing(check: str) -> None:
    right = {
        "/etc/ssh/sshd_config": "UseDNS no\nUsePAM no\n",
        "/etc/systemd/system.conf": "[Manager]\nDefaultTasksMax=infinity\n",
        "/etc/hosts": "127.0.0.1 localhost\n",
    }
    assert changes(check, FakeView(right)).actions == ()


def test_commands_quote_what_comes_from_a_node() -> None:
    view = FakeView(answers=KERNEL, swaps=("/swap file;rm -rf /",))
    (swapoff,) = [a for a in changes("ACP-NODE-008", view).actions if isinstance(a, RunCommand)]
    assert shlex.split(swapoff.command) == ["swapoff", "/swap file;rm -rf /"]
