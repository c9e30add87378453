"""Host-key policies against real sshd host keys: strict, accept-new (pin, then refuse a change), insecure."""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from realsshd import FAST, Lab, SshdServer

from acpcheck.transport import KnownHosts, TransportError, connect, resolve_ssh
from acpcheck.transport.hostkeys import default_known_hosts_path, host_key_name, preferred_key_types


def connect_with(lab: Lab, known_hosts: KnownHosts, policy: str, port: int | None = None) -> None:
    plan = lab.plan(hostKeyPolicy=policy, port=port or lab.sshd.port)
    with connect(resolve_ssh(plan, plan.spec.nodes[0]), timeouts=FAST, known_hosts=known_hosts) as session:
        assert session.run("true").ok


def host_key_error(lab: Lab, known_hosts: KnownHosts, policy: str, port: int | None = None) -> TransportError:
    with pytest.raises(TransportError) as caught:
        connect_with(lab, known_hosts, policy, port)
    assert caught.value.kind == "host-key", caught.value
    return caught.value


def test_names_follow_openssh() -> None:
    assert host_key_name("192.0.2.1", 22) == "192.0.2.1"
    assert host_key_name("192.0.2.1", 2222) == "[192.0.2.1]:2222"
    assert host_key_name("2001:db8::1", 2222) == "[2001:db8::1]:2222"


def test_default_path_is_under_xdg_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert default_known_hosts_path() == tmp_path / "acpcheck" / "known_hosts"
    assert KnownHosts().path == tmp_path / "acpcheck" / "known_hosts"


def test_pinned_key_types_are_asked_for_first() -> None:
    offered = ("ssh-ed25519", "ecdsa-sha2-nistp256", "rsa-sha2-512", "rsa-sha2-256", "ssh-rsa")
    assert preferred_key_types(offered, {"ssh-rsa"}) == (
        "rsa-sha2-512",
        "rsa-sha2-256",
        "ssh-rsa",
        "ssh-ed25519",
        "ecdsa-sha2-nistp256",
    )
    assert preferred_key_types(offered, {"ssh-ed25519"}) == offered


def test_strict_refuses_an_unknown_host(lab: Lab, known_hosts: KnownHosts) -> None:
    error = host_key_error(lab, known_hosts, "strict")
    name = f"[127.0.0.1]:{lab.sshd.port}"
    assert error.message.startswith(f"unknown host key for {name} (ssh-ed25519 SHA256:")
    assert str(known_hosts.path) in error.message
    assert not known_hosts.path.exists()  # strict never writes


def test_accept_new_pins_then_strict_accepts(lab: Lab, known_hosts: KnownHosts) -> None:
    connect_with(lab, known_hosts, "accept-new")
    lines = known_hosts.path.read_text().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"[127.0.0.1]:{lab.sshd.port} ssh-ed25519 ")
    connect_with(lab, known_hosts, "accept-new")
    connect_with(lab, known_hosts, "strict")
    assert len(known_hosts.path.read_text().splitlines()) == 1  # pinned once


def test_strict_accepts_keys_from_ssh_keyscan_hashed(lab: Lab, known_hosts: KnownHosts) -> None:
    scanned = subprocess.run(
        ["ssh-keyscan", "-H", "-t", "ed25519", "-p", str(lab.sshd.port), "127.0.0.1"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert scanned.stdout.startswith("|1|")  # hashed host name, as in many users' files
    known_hosts.path.write_text(scanned.stdout)
    connect_with(lab, known_hosts, "strict")


@pytest.fixture
def own_sshd(lab: Lab) -> Iterator[SshdServer]:
    """A second sshd whose host key the test may change."""
    server = SshdServer(lab.directory / f"sshd-{id(lab)}-rekey", lab.sshd.authorized_keys, lab.sshd.users)
    server.start(new_host_key=True)
    yield server
    server.stop()


def test_changed_host_key_is_refused_after_pinning(
    lab: Lab, known_hosts: KnownHosts, own_sshd: SshdServer, caplog: pytest.LogCaptureFixture
) -> None:
    connect_with(lab, known_hosts, "accept-new", own_sshd.port)
    pinned = known_hosts.path.read_text()
    own_sshd.restart_with_new_host_key()

    error = host_key_error(lab, known_hosts, "accept-new", own_sshd.port)
    assert error.message.startswith(
        f"host key for [127.0.0.1]:{own_sshd.port} has CHANGED: the server offered ssh-ed25519 SHA256:"
    )
    assert "ssh-keygen -R" in error.message
    assert known_hosts.path.read_text() == pinned  # the pin is not overwritten
    host_key_error(lab, known_hosts, "strict", own_sshd.port)

    with caplog.at_level(logging.WARNING, logger="acpcheck.transport"):
        connect_with(lab, known_hosts, "insecure", own_sshd.port)
    assert any("NOT verified (hostKeyPolicy: insecure)" in r.getMessage() for r in caplog.records)
