"""The text edits behind the node steps: the smallest change that gives the documented
value, and the same text back when it is already there (a second apply is a no-op)."""

from __future__ import annotations

import pytest

from acpcheck.remediation import edits

UBUNTU_SSHD = """# This is the sshd server system-wide configuration file.
Include /etc/ssh/sshd_config.d/*.conf

#UseDNS no
UsePAM yes
X11Forwarding yes
Match User anoncvs
\tUseDNS yes
"""


@pytest.mark.parametrize(
    ("text", "keyword", "expected"),
    [
        # before any Include/Match: replaced in place (sshd takes the first value)
        ("Port 22\nUseDNS yes\nUsePAM no\n", "UseDNS", "Port 22\nUseDNS no\nUsePAM no\n"),
        ("Port 22\nusedns=yes\n", "UseDNS", "Port 22\nUseDNS no\n"),
        # after an Include (a drop-in may set it first): a new line ahead of everything
        (UBUNTU_SSHD, "UsePAM", UBUNTU_SSHD.replace("Include", "UsePAM no\nInclude", 1)),
        (UBUNTU_SSHD, "UseDNS", UBUNTU_SSHD.replace("Include", "UseDNS no\nInclude", 1)),
        ("", "UseDNS", "UseDNS no\n"),
        ("# only comments", "UseDNS", "# only comments\nUseDNS no\n"),
    ],
)
def test_sshd_option(text: str, keyword: str, expected: str) -> None:
    assert edits.set_sshd_option(text, keyword, "no") == expected
    assert edits.set_sshd_option(expected, keyword, "no") == expected


def test_sshd_option_already_set_is_unchanged() -> None:
    text = "Port 22\nUseDNS no   # set by hand\n"
    assert edits.set_sshd_option(text, "UseDNS", "no") is text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[Manager]\nDefaultTasksMax=512\n", "[Manager]\nDefaultTasksMax=infinity\n"),
        (
            "[Manager]\n#LogLevel=info\n#DefaultTasksMax=15%\n#Other=1\n",
            "[Manager]\n#LogLevel=info\n#DefaultTasksMax=15%\nDefaultTasksMax=infinity\n#Other=1\n",
        ),
        (
            "[Manager]\nLogLevel=info\n\n[Other]\nX=1\n",
            "[Manager]\nLogLevel=info\nDefaultTasksMax=infinity\n\n[Other]\nX=1\n",
        ),
        ("# no section\n", "# no section\n\n[Manager]\nDefaultTasksMax=infinity\n"),
        (
            "[Manager]\nDefaultTasksMax=1\nDefaultTasksMax=2\n",
            "[Manager]\nDefaultTasksMax=infinity\nDefaultTasksMax=infinity\n",
        ),
    ],
)
def test_ini_key(text: str, expected: str) -> None:
    assert edits.set_ini_key(text, "Manager", "DefaultTasksMax", "infinity") == expected
    assert edits.set_ini_key(expected, "Manager", "DefaultTasksMax", "infinity") == expected
    assert edits.ini_value(expected, "Manager", "DefaultTasksMax") == "infinity"


def test_fstab_swap_lines_are_commented_out_and_nothing_else() -> None:
    fstab = (
        "UUID=1 / ext4 defaults 0 1\n/swap.img\tnone\tswap\tsw\t0\t0\n# /old none swap sw 0 0\nUUID=2 none swap "
        "sw 0 0\n"
    )
    new = edits.comment_out_swap(fstab)
    assert new == (
        "UUID=1 / ext4 defaults 0 1\n#/swap.img\tnone\tswap\tsw\t0\t0\n# /old none swap sw 0 0\n#UUID=2 none "
        "swap sw 0 0\n"
    )
    assert edits.swap_entries(new) == [] and edits.comment_out_swap(new) == new


@pytest.mark.parametrize(
    ("hosts", "expected"),
    [
        ("127.0.1.1\tnode\n::1\tip6-localhost\n", "127.0.0.1\tlocalhost\n127.0.1.1\tnode\n::1\tip6-localhost\n"),
        ("# comment\n127.0.1.1 localhost node\n", "# comment\n127.0.0.1\tlocalhost\n127.0.1.1 localhost node\n"),
        ("127.0.0.1 localhost.localdomain localhost\n", "127.0.0.1 localhost.localdomain localhost\n"),
        ("", "127.0.0.1\tlocalhost\n"),
        ("10.0.0.1 db", "127.0.0.1\tlocalhost\n10.0.0.1 db\n"),
    ],
)
def test_localhost(hosts: str, expected: str) -> None:
    assert edits.ensure_localhost(hosts) == expected
    assert edits.ensure_localhost(expected) == expected


def test_assignment() -> None:
    assert (
        edits.set_assignment("SELINUX=enforcing\nSELINUXTYPE=targeted\n", "SELINUX", "disabled")
        == "SELINUX=disabled\nSELINUXTYPE=targeted\n"
    )
    assert edits.set_assignment("SELINUX=disabled\n", "SELINUX", "disabled") == "SELINUX=disabled\n"
    assert edits.set_assignment("# nothing", "ENABLED", "no") == "# nothing\nENABLED=no\n"


def test_words_and_sysctls() -> None:
    assert edits.add_words("", ["ip_vs", "ip_vs_rr"], "why") == "# why\nip_vs\nip_vs_rr\n"
    assert edits.add_words("ip_vs\n", ["ip_vs", "ip_vs_rr"], "why") == "ip_vs\nip_vs_rr\n"
    assert edits.add_words("ip_vs\nip_vs_rr\n", ["ip_vs_rr", "ip_vs"], "why") == "ip_vs\nip_vs_rr\n"
    assert edits.set_sysctl("", "net.ipv4.ip_forward", "1", "why") == "# why\nnet.ipv4.ip_forward = 1\n"
    assert edits.set_sysctl("net/ipv4/ip_forward=0\n", "net.ipv4.ip_forward", "1", "why") == "net.ipv4.ip_forward = 1\n"
    assert (
        edits.set_sysctl("net.ipv4.ip_forward = 1\n", "net.ipv4.ip_forward", "1", "why") == "net.ipv4.ip_forward = 1\n"
    )


@pytest.mark.parametrize(
    ("grub", "parameter", "exclusive", "expected"),
    [
        (
            'GRUB_CMDLINE_LINUX=""\n',
            "transparent_hugepage=never",
            True,
            'GRUB_CMDLINE_LINUX="transparent_hugepage=never"\n',
        ),
        (
            'GRUB_CMDLINE_LINUX="quiet transparent_hugepage=always"\nGRUB_CMDLINE_LINUX_DEFAULT="splash"\n',
            "transparent_hugepage=never",
            True,
            'GRUB_CMDLINE_LINUX="quiet transparent_hugepage=never"\nGRUB_CMDLINE_LINUX_DEFAULT="splash"\n',
        ),
        (
            'GRUB_CMDLINE_LINUX="quiet"\nGRUB_CMDLINE_LINUX_DEFAULT="transparent_hugepage=madvise"\n',
            "transparent_hugepage=never",
            True,
            'GRUB_CMDLINE_LINUX="quiet transparent_hugepage=never"\nGRUB_CMDLINE_LINUX_DEFAULT=""\n',
        ),
        (
            "GRUB_TIMEOUT=5\n",
            "transparent_hugepage=never",
            True,
            'GRUB_TIMEOUT=5\nGRUB_CMDLINE_LINUX="transparent_hugepage=never"\n',
        ),
        (
            'GRUB_CMDLINE_LINUX="crashkernel=auto rhgb quiet"\n',
            "cgroup.memory=nokmem",
            False,
            'GRUB_CMDLINE_LINUX="crashkernel=auto rhgb quiet cgroup.memory=nokmem"\n',
        ),
        (
            'GRUB_CMDLINE_LINUX="cgroup.memory=nosocket,nokmem"\n',
            "cgroup.memory=nokmem",
            False,
            'GRUB_CMDLINE_LINUX="cgroup.memory=nosocket,nokmem"\n',
        ),
    ],
)
def test_kernel_parameter(grub: str, parameter: str, exclusive: bool, expected: str) -> None:
    assert edits.set_kernel_parameter(grub, parameter, exclusive=exclusive) == expected
    assert edits.set_kernel_parameter(expected, parameter, exclusive=exclusive) == expected
