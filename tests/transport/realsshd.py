"""Real OpenSSH sshd and microsocks processes on 127.0.0.1 for the transport and facts tests.

Nothing here is a mock: ``SshdServer`` runs Debian's /usr/sbin/sshd with a
config, host key and authorized_keys in a private directory; ``SocksProxy`` runs
Debian's microsocks with a username and password. Only 127.0.0.1 is contacted.

What touches the machine, and is undone at teardown: two test users made with
useradd (random names ``acpt…`` and random passwords, deleted with userdel),
and one /etc/sudoers.d drop-in giving one of them passwordless sudo (removed).
The other one (``plain``) has no sudo and may not forward TCP (direct-tcpip).
``UsePAM no`` makes sshd check /etc/shadow itself, so password login works
without PAM and a wrong password fails at once.

sshd's StrictModes wants every directory above authorized_keys owned by root and
not group/world writable, which rules out /tmp (1777): the lab lives in /run.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from acpcheck.transport import Timeouts

SSHD = "/usr/sbin/sshd"
MICROSOCKS = shutil.which("microsocks") or "/usr/bin/microsocks"
LOCALHOST = "127.0.0.1"

#: Generous for a loopback sshd, short enough that a hang would show.
FAST = Timeouts(connect=5, handshake=5, auth=5, command=15)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOCALHOST, 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path | None = None, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            detail = log.read_text(errors="replace") if log and log.exists() else ""
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode}: {detail}")
        try:
            with socket.create_connection((LOCALHOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {LOCALHOST}:{port} after {timeout} s")


def keygen(path: Path, key_type: str, passphrase: str = "", pem: bool = False) -> Path:
    args = ["ssh-keygen", "-q", "-t", key_type, "-N", passphrase, "-C", f"acpcheck-test-{key_type}", "-f", str(path)]
    if key_type == "rsa":
        args += ["-b", "2048"]
    if pem:
        args += ["-m", "PEM"]
    subprocess.run(args, check=True, stdin=subprocess.DEVNULL)
    return path


def stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@dataclass
class LabUser:
    name: str
    password: str
    home: Path


@dataclass
class SshdServer:
    """One sshd on 127.0.0.1:<port>; its host key is new on every ``start(new_host_key=True)``."""

    directory: Path  # private to this server: config, host key, log
    authorized_keys: Path  # shared directory of <user> files
    users: list[str]
    no_forwarding: list[str] = field(default_factory=list)  # users refused TCP forwarding (direct-tcpip)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def host_key(self) -> Path:
        return self.directory / "ssh_host_ed25519_key"

    @property
    def log(self) -> Path:
        return self.directory / "sshd.log"

    def start(self, new_host_key: bool = False) -> None:
        self.directory.mkdir(mode=0o755, exist_ok=True)
        if new_host_key or not self.host_key.exists():
            for stale in (self.host_key, self.host_key.with_suffix(".pub")):
                stale.unlink(missing_ok=True)
            keygen(self.host_key, "ed25519")
        config = self.directory / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    f"ListenAddress {LOCALHOST}",
                    f"HostKey {self.host_key}",
                    f"PidFile {self.directory / 'sshd.pid'}",
                    f"AuthorizedKeysFile {self.authorized_keys}/%u",
                    "UsePAM no",
                    "PasswordAuthentication yes",
                    "KbdInteractiveAuthentication no",
                    "PermitRootLogin yes",
                    "StrictModes yes",
                    f"AllowUsers {' '.join(self.users)}",
                    "MaxStartups 200:30:500",
                    "MaxAuthTries 10",
                    "LoginGraceTime 30",
                    "UseDNS no",
                    "Subsystem sftp internal-sftp",
                    "LogLevel VERBOSE",
                    *(f"Match User {user}\n  AllowTcpForwarding no" for user in self.no_forwarding),
                ]
            )
            + "\n"
        )
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation directory
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [SSHD, "-D", "-e", "-f", str(config)], stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )
        wait_for_port(self.port, self.process, self.log)

    def stop(self) -> None:
        stop(self.process)
        self.process = None

    def restart_with_new_host_key(self) -> None:
        self.stop()
        self.start(new_host_key=True)


@dataclass
class SocksProxy:
    username: str
    password: str
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"socks5://{LOCALHOST}:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [MICROSOCKS, "-i", LOCALHOST, "-p", str(self.port), "-u", self.username, "-P", self.password],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port, self.process)

    def stop(self) -> None:
        stop(self.process)
        self.process = None


@dataclass
class Lab:
    """Everything the tests connect to, and the client-side keys that log in."""

    directory: Path
    sshd: SshdServer
    keys: dict[
        str, Path
    ]  # ed25519 rsa ecdsa (root); ed25519_pass rsa_pem_pass (passphrase); stranger (authorised nowhere)
    passphrase: str
    plain: LabUser  # password + key, no sudo
    sudoer: LabUser  # key, passwordless sudo
    proxy: SocksProxy | None
    sudoers_file: Path | None = None

    def plan(self, nodes: list[dict[str, Any]] | None = None, **ssh: Any) -> Any:
        """A valid ClusterPlan whose nodes are this lab's sshd (override anything via ``ssh``/``nodes``)."""
        from acpcheck.model.plan import ClusterPlan

        defaults: dict[str, Any] = {
            "port": self.sshd.port,
            "user": "root",
            "auth": {"privateKeyFile": str(self.keys["ed25519"])},
        }
        defaults.update(ssh)
        return ClusterPlan.model_validate(
            {
                "apiVersion": "acpcheck/v1",
                "kind": "ClusterPlan",
                "metadata": {"name": "loopback"},
                "spec": {
                    "acp": {"version": "4.3"},
                    "cluster": {"kubernetesVersion": "1.34.5"},
                    "network": {"clusterCIDR": "10.3.0.0/16", "serviceCIDR": "10.4.0.0/16"},
                    "ssh": defaults,
                    "nodes": nodes
                    if nodes is not None
                    else [{"name": "n1", "role": "control-plane", "ipv4": LOCALHOST}],
                },
            }
        )


def _useradd(name: str, home: Path) -> LabUser:
    home.mkdir(parents=True, mode=0o755)
    subprocess.run(
        ["useradd", "--home-dir", str(home), "--no-create-home", "--shell", "/bin/sh", "--user-group", name], check=True
    )
    shutil.chown(home, name, name)
    password = secrets.token_urlsafe(18)
    # An account without a password is "locked" to sshd when PAM is off, even for key logins.
    subprocess.run(["chpasswd"], input=f"{name}:{password}\n".encode(), check=True)
    return LabUser(name=name, password=password, home=home)


def _install_sudoers(name: str) -> Path:
    draft = Path(tempfile.mkstemp(prefix="acpcheck-sudoers-")[1])
    draft.write_text(f"{name} ALL=(ALL) NOPASSWD: ALL\n")
    subprocess.run(["visudo", "-cqf", str(draft)], check=True)
    target = Path(f"/etc/sudoers.d/acpcheck-test-{name}")  # no dot in the name: sudo skips such files
    shutil.move(draft, target)
    target.chmod(0o440)
    return target


def _authorize(directory: Path, user: str, *public_keys: Path) -> None:
    path = directory / user
    path.write_text("".join(Path(f"{key}.pub").read_text() for key in public_keys))
    path.chmod(0o644)


def start_lab() -> Lab:
    """Users, keys, sshd and (when microsocks is installed) a SOCKS5 proxy. Call ``stop_lab`` after."""
    directory = Path(tempfile.mkdtemp(prefix="acpcheck-test-", dir="/run"))
    directory.chmod(0o755)
    tag = secrets.token_hex(3)
    lab = Lab(
        directory=directory,
        sshd=None,
        keys={},
        passphrase=secrets.token_urlsafe(12),
        plain=None,
        sudoer=None,
        proxy=None,
    )  # type: ignore[arg-type]
    try:
        lab.plain = _useradd(f"acpt{tag}p", directory / "home" / "plain")
        lab.sudoer = _useradd(f"acpt{tag}s", directory / "home" / "sudoer")
        lab.sudoers_file = _install_sudoers(lab.sudoer.name)
        client = directory / "client"
        client.mkdir(mode=0o700)
        lab.keys = {
            "ed25519": keygen(client / "id_ed25519", "ed25519"),
            "rsa": keygen(client / "id_rsa", "rsa"),
            "ecdsa": keygen(client / "id_ecdsa", "ecdsa"),
            "ed25519_pass": keygen(client / "id_ed25519_pass", "ed25519", lab.passphrase),
            "rsa_pem_pass": keygen(client / "id_rsa_pem_pass", "rsa", lab.passphrase, pem=True),
            "stranger": keygen(client / "id_stranger", "ed25519"),
        }
        authorized = directory / "authorized_keys"
        authorized.mkdir(mode=0o755)
        _authorize(
            authorized, "root", *(lab.keys[k] for k in ("ed25519", "rsa", "ecdsa", "ed25519_pass", "rsa_pem_pass"))
        )
        _authorize(authorized, lab.plain.name, lab.keys["ed25519"])
        _authorize(authorized, lab.sudoer.name, lab.keys["ed25519"])
        lab.sshd = SshdServer(
            directory / "sshd", authorized, ["root", lab.plain.name, lab.sudoer.name], no_forwarding=[lab.plain.name]
        )
        lab.sshd.start()
        if os.path.exists(MICROSOCKS):
            lab.proxy = SocksProxy(username=f"proxy{tag}", password=secrets.token_urlsafe(12))
            lab.proxy.start()
    except BaseException:
        stop_lab(lab)
        raise
    return lab


def stop_lab(lab: Lab) -> None:
    if lab.proxy is not None:
        lab.proxy.stop()
    if lab.sshd is not None:
        lab.sshd.stop()
    if lab.sudoers_file is not None:
        lab.sudoers_file.unlink(missing_ok=True)
    for user in (lab.plain, lab.sudoer):
        if user is not None:
            subprocess.run(["userdel", "--force", user.name], check=False, stderr=subprocess.DEVNULL)
    shutil.rmtree(lab.directory, ignore_errors=True)


# ---------------------------------------------------------------------------
# Fixtures, imported by the conftest.py of tests/transport and tests/facts


@pytest.fixture(scope="session")
def lab() -> Any:
    if os.geteuid() != 0:
        pytest.skip("the sshd lab needs root (useradd, sshd)")
    if not os.path.exists(SSHD):
        pytest.skip("the sshd lab needs OpenSSH: apt-get install openssh-server")
    running = start_lab()
    yield running
    stop_lab(running)


@pytest.fixture
def proxy(lab: Lab) -> SocksProxy:
    if lab.proxy is None:
        pytest.skip("the proxy tests need microsocks: apt-get install microsocks")
    return lab.proxy
