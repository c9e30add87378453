"""The lab for real: the ``defects`` scenario is built once for this module, then every
claim is checked from a plain paramiko SSH session, as the facts probe would see it.
Each defect family is asserted on the node that carries it AND on a healthy node."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from acpcheck.model.plan import load_plan
from acpcheck_lab import LabInfo, status
from acpcheck_lab.layout import PROXY_PASSWORD_ENV, PROXY_USER_ENV

paramiko = pytest.importorskip("paramiko", reason="the lab tests talk SSH with paramiko")
python_socks = pytest.importorskip(
    "python_socks", reason="the proxy tests use python-socks as an independent SOCKS5 client"
)
Proxy = pytest.importorskip("python_socks.sync").Proxy

TIMEOUT = 10


def _proxy(info: LabInfo, username: str | None = None, password: str | None = None) -> Proxy:
    assert info.proxy is not None
    return Proxy.create(
        python_socks.ProxyType.SOCKS5,
        info.proxy.host,
        info.proxy.port,
        username=username or info.proxy.username,
        password=password or info.proxy.password,
    )


def connect(info: LabInfo, name: str, user: str | None = None, password: str | None = None) -> paramiko.SSHClient:
    """An SSH session to a lab node: directly, or through the proxy for hidden nodes."""
    node = info.node(name)
    sock = _proxy(info).connect(node.ipv4, 22, timeout=TIMEOUT) if node.network == "hidden" else None
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    auth = {"password": password} if password else {"key_filename": str(info.client_key)}
    client.connect(
        node.ipv4,
        username=user or node.ssh_user,
        sock=sock,
        timeout=TIMEOUT,
        banner_timeout=TIMEOUT,
        auth_timeout=TIMEOUT,
        look_for_keys=False,
        allow_agent=False,
        **auth,
    )
    return client


class Shells:
    """One cached SSH session per node; ``sh(node, cmd)`` returns (exit code, stdout)."""

    def __init__(self, info: LabInfo):
        self.info = info
        self.clients: dict[str, paramiko.SSHClient] = {}

    def __call__(self, node: str, command: str) -> tuple[int, str]:
        if node not in self.clients:
            self.clients[node] = connect(self.info, node)
        _, stdout, _ = self.clients[node].exec_command(command, timeout=TIMEOUT)
        out = stdout.read().decode()
        return stdout.channel.recv_exit_status(), out

    def out(self, node: str, command: str) -> str:
        return self(node, command)[1]

    def close(self) -> None:
        for client in self.clients.values():
            client.close()


@pytest.fixture(scope="module")
def sh(defects_lab: LabInfo) -> Iterator[Shells]:
    shells = Shells(defects_lab)
    yield shells
    shells.close()


# --- reachability and authentication ---------------------------------------------


def test_direct_node_answers_with_its_own_hostname(sh: Shells) -> None:
    assert sh.out("healthy", "hostname").strip() == "healthy"
    assert sh.out("bad-kernel", "hostname").strip() == "bad-kernel"


def test_hidden_node_is_unreachable_directly(defects_lab: LabInfo) -> None:
    hidden = defects_lab.node("hidden-ok")
    started = time.monotonic()
    with pytest.raises(OSError):
        socket.create_connection((hidden.ipv4, 22), timeout=3).close()
    assert time.monotonic() - started < 2, "a direct attempt must fail at once (unreachable route), not time out"


def test_hidden_node_is_reachable_through_the_proxy(sh: Shells) -> None:
    assert sh.out("hidden-ok", "hostname; id -un").split() == ["hidden-ok", "acplab"]


def test_proxy_refuses_wrong_credentials(defects_lab: LabInfo) -> None:
    hidden = defects_lab.node("hidden-ok")
    with pytest.raises(python_socks.ProxyError):
        _proxy(defects_lab, password="not-the-password").connect(hidden.ipv4, 22, timeout=TIMEOUT)
    with pytest.raises(python_socks.ProxyError):
        _proxy(defects_lab, username="someone-else").connect(hidden.ipv4, 22, timeout=TIMEOUT)


def test_password_auth_for_the_lab_user(defects_lab: LabInfo) -> None:
    client = connect(defects_lab, "healthy", user=defects_lab.lab_user, password=defects_lab.lab_password)
    try:
        _, stdout, _ = client.exec_command("id -un", timeout=TIMEOUT)
        assert stdout.read().decode().strip() == defects_lab.lab_user
    finally:
        client.close()
    started = time.monotonic()
    with pytest.raises(paramiko.AuthenticationException):
        connect(defects_lab, "healthy", user=defects_lab.lab_user, password="wrong-password")
    assert time.monotonic() - started < 3, "no PAM: a wrong password is refused quickly"
    with pytest.raises(paramiko.AuthenticationException):
        connect(defects_lab, "healthy", user="root", password=defects_lab.lab_password)  # root: keys only


def test_status_sees_every_node(defects_lab: LabInfo) -> None:
    result = status(defects_lab.state_dir)
    assert result.healthy, [row for row in result.nodes if not row.reachable]
    assert {row.name: row.route.split()[0] for row in result.nodes}["hidden-ok"] == "via"


def test_plan_is_valid_and_holds_no_secret(defects_lab: LabInfo) -> None:
    plan = load_plan(defects_lab.plan_file)
    assert [n.name for n in plan.spec.nodes] == [n.name for n in defects_lab.nodes]
    hidden = next(n for n in plan.spec.nodes if n.name == "hidden-ok")
    assert hidden.ssh and hidden.ssh.proxy and hidden.ssh.user == "acplab"
    assert (hidden.ssh.proxy.username_env, hidden.ssh.proxy.password_env) == (PROXY_USER_ENV, PROXY_PASSWORD_ENV)
    text = defects_lab.plan_file.read_text()
    assert defects_lab.proxy and defects_lab.proxy.password not in text and defects_lab.lab_password not in text
    assert defects_lab.env_file.stat().st_mode & 0o077 == 0


# --- one test per defect family: the defect node shows it, the healthy node does not


def test_os_and_kernel(sh: Shells) -> None:
    assert 'ID="ubuntu"' in sh.out("healthy", "cat /etc/os-release") and 'VERSION_ID="22.04"' in sh.out(
        "healthy", "cat /etc/os-release"
    )
    assert 'ID="debian"' in sh.out("bad-network", "cat /etc/os-release")
    assert sh.out("healthy", "cat /proc/sys/kernel/osrelease").strip() == "5.15.0-56-generic"
    assert sh.out("bad-kernel", "cat /proc/sys/kernel/osrelease").strip() == "6.5.0-14-generic"


def test_cpu_and_memory(sh: Shells) -> None:
    count = "grep -c ^processor /proc/cpuinfo; awk '/MemTotal/ {print $2}' /proc/meminfo"
    assert sh.out("healthy", count).split() == ["16", str(32 * 1024 * 1024)]
    assert sh.out("bad-kernel", count).split() == ["2", str(4 * 1024 * 1024)]


def test_swap(sh: Shells) -> None:
    assert "/swap.img" in sh.out("bad-kernel", "cat /proc/swaps")
    assert len(sh.out("healthy", "cat /proc/swaps").splitlines()) == 1  # the header only


def test_kernel_cmdline(sh: Shells) -> None:
    assert "transparent_hugepage=never" in sh.out("healthy", "cat /proc/cmdline")
    assert "transparent_hugepage" not in sh.out("bad-kernel", "cat /proc/cmdline")


def test_kernel_modules(sh: Shells) -> None:
    # /proc/modules where the kernel has module support; /sys/module/<name>/initstate always
    listing = "ls /sys/module; cat /proc/modules 2>/dev/null"
    healthy, bad = sh.out("healthy", listing).split(), sh.out("bad-kernel", listing).split()
    for module in ("ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_sh", "geneve", "openvswitch"):
        assert module in healthy and module not in bad
    assert sh.out("healthy", "cat /sys/module/ip_vs/initstate").strip() == "live"


def test_selinux_and_apparmor(sh: Shells) -> None:
    assert sh.out(
        "bad-kernel", "cat /sys/fs/selinux/enforce; echo; cat /sys/module/apparmor/parameters/enabled"
    ).split() == ["1", "Y"]
    code, _ = sh("healthy", "test -e /sys/fs/selinux")
    assert code == 1
    assert sh.out("healthy", "cat /sys/module/apparmor/parameters/enabled").strip() == "N"


def test_firewall(sh: Shells) -> None:
    assert "ENABLED=yes" in sh.out("bad-config", "cat /etc/ufw/ufw.conf")
    assert "ENABLED=no" in sh.out("healthy", "cat /etc/ufw/ufw.conf")
    assert "tcp dport 10250 drop" in sh.out("bad-config", "nft list ruleset")
    assert sh.out("healthy", "nft list ruleset").strip() == ""


def test_sshd_config_as_sshd_t_reports_it(sh: Shells) -> None:
    keys = "sshd -T | grep -E '^(usedns|usepam|maxstartups) '"
    assert sorted(sh.out("bad-config", keys).splitlines()) == ["maxstartups 200:30:500", "usedns yes", "usepam yes"]
    assert sorted(sh.out("healthy", keys).splitlines()) == ["maxstartups 200:30:500", "usedns no", "usepam no"]


def test_default_tasks_max(sh: Shells) -> None:
    assert "DefaultTasksMax=512" in sh.out("bad-config", "cat /etc/systemd/system.conf")
    assert "DefaultTasksMax=infinity" in sh.out("healthy", "cat /etc/systemd/system.conf")


def test_hostnames(sh: Shells) -> None:
    assert sh.out("bad-config", "hostname").strip() == "Bad_Config.Node-name-longer-than-36-chars"
    assert sh.out("bad-time", "hostname").strip() == sh.out("bad-sudo", "hostname").strip() == "twin"


def test_etc_hosts(sh: Shells) -> None:
    addresses_of_localhost = """awk '{for (i = 2; i <= NF; i++) if ($i == "localhost") print $1}' /etc/hosts"""
    assert sh.out("bad-config", addresses_of_localhost).split() == []
    assert sh.out("healthy", addresses_of_localhost).split() == ["127.0.0.1", "::1"]


def test_resolv_conf(sh: Shells, defects_lab: LabInfo) -> None:
    assert sh("bad-software", "test -e /etc/resolv.conf")[0] == 1  # missing
    assert "nameserver" not in sh.out("bad-network", "cat /etc/resolv.conf")
    bad = sh.out("bad-config", "cat /etc/resolv.conf")
    assert "nameserver 172.16.0.10" in bad
    assert (
        len(next(line for line in bad.splitlines() if line.startswith("search")).split()) == 31
    )  # "search" + 30 domains
    healthy = sh.out("healthy", "cat /etc/resolv.conf")
    gateway = defects_lab.lab_subnets.networks(defects_lab.names)["direct"].gateway  # the default: the node's gateway
    assert f"nameserver {gateway}\n" in healthy and "search" not in healthy


def test_default_route(sh: Shells) -> None:
    assert "default via" in sh.out("healthy", "ip route")
    assert "default" not in sh.out("bad-network", "ip route")


def test_listening_ports(sh: Shells) -> None:
    ports = "ss -Htln | awk '{print $4}' | sed 's/.*://' | sort -un"
    assert set(sh.out("bad-network", ports).split()) == {"22", "179", "2379", "6443", "6641", "10250"}
    assert set(sh.out("healthy", ports).split()) == {"22"}


def test_runtime_bridge_range(sh: Shells) -> None:
    assert "172.17.0.1/16" in sh.out("bad-network", "ip -4 -o addr show")
    assert "172.17." not in sh.out("healthy", "ip -4 -o addr show")


def test_conflicting_packages(sh: Shells) -> None:
    query = "dpkg-query -W -f '${Package} ${Status}\\n' docker.io containerd 2>/dev/null"
    assert sorted(sh.out("bad-software", query).splitlines()) == [
        "containerd install ok installed",
        "docker.io install ok installed",
    ]
    assert sh.out("healthy", query).strip() == ""


def test_stray_binaries(sh: Shells) -> None:
    assert sh.out("bad-software", "ls /usr/local/bin").split() == ["docker"]
    assert sh.out("healthy", "ls /usr/local/bin").split() == []


def test_leftover_paths(sh: Shells) -> None:
    paths = (
        "/etc/systemd/system/kubelet.service /var/lib/docker /var/lib/containerd /var/log/pods "
        "/var/lib/kubelet/pki /var/lib/nerdctl /opt/nerdctl"
    )
    assert sh("bad-software", f"ls -d {paths}")[0] == 0
    assert sh.out("healthy", f"for p in {paths}; do test -e $p && echo $p; done").strip() == ""


def test_tmp_noexec(sh: Shells) -> None:
    assert "noexec" in sh.out("bad-software", "findmnt -n -o OPTIONS /tmp").split(",")
    assert "noexec" not in sh.out("healthy", "findmnt -n -o OPTIONS /tmp").split(",")


def test_missing_binaries(sh: Shells) -> None:
    lookup = "for b in tar scp sftp ip ss swapoff modprobe sysctl md5sum; do command -v $b >/dev/null && echo $b; done"
    assert sh.out("bad-software", lookup).split() == ["ip", "ss", "swapoff", "modprobe", "sysctl", "md5sum"]
    assert sh.out("healthy", lookup).split() == [
        "tar",
        "scp",
        "sftp",
        "ip",
        "ss",
        "swapoff",
        "modprobe",
        "sysctl",
        "md5sum",
    ]


def test_timezone(sh: Shells) -> None:
    assert sh.out("bad-time", "cat /etc/timezone; readlink /etc/localtime").split() == [
        "Asia/Shanghai",
        "/usr/share/zoneinfo/Asia/Shanghai",
    ]
    assert sh.out("healthy", "cat /etc/timezone").strip() == "Etc/UTC"


def test_clock_skew(sh: Shells) -> None:
    skewed = float(sh.out("bad-time", "date +%s.%N")) - time.time()
    normal = float(sh.out("healthy", "date +%s.%N")) - time.time()
    assert 55 < skewed < 65
    assert abs(normal) < 5


def test_passwordless_sudo(sh: Shells) -> None:
    assert sh("hidden-ok", "id -un; sudo -n true") == (0, "acplab\n")
    code, out = sh("bad-sudo", "id -un; sudo -n true")
    assert (code, out) == (1, "acplab\n")


def test_disk_size(sh: Shells) -> None:
    size_gib = "df -Pk / | awk 'NR == 2 {print int($2 / 1048576)}'"
    assert sh.out("healthy", size_gib).strip() == "512"
    assert sh.out("bad-kernel", size_gib).strip() == "40"


# --- the host stays untouched, the nodes stay apart ----------------------------------


def test_node_writes_stay_on_the_node(sh: Shells, tmp_path_factory: pytest.TempPathFactory) -> None:
    marker = f"/etc/acpcheck-lab-test-{tmp_path_factory.getbasetemp().name}"
    assert sh("healthy", f"echo node > {marker} && cat {marker}") == (0, "node\n")
    assert sh("bad-kernel", f"test -e {marker}")[0] == 1
    assert not Path(marker).exists()


def test_nodes_do_not_see_the_hosts_private_directories(sh: Shells) -> None:
    assert sh.out("healthy", "ls -A /root").split() == [".ssh"]
    assert sh.out("healthy", "ls -A /home").split() == ["acplab"]
    assert sh("healthy", "test -e /run/systemd/system")[0] == 1  # not a systemd machine
