"""Effective SSH settings from the plan: precedence, references only, secrets read late."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from acpcheck.model.plan import ClusterPlan
from acpcheck.transport import SecretRef, TransportError, resolve_ssh


def plan_with(ssh: dict[str, Any], nodes: list[dict[str, Any]]) -> ClusterPlan:
    return ClusterPlan.model_validate(
        {
            "apiVersion": "acpcheck/v1",
            "kind": "ClusterPlan",
            "metadata": {"name": "settings"},
            "spec": {
                "acp": {"version": "4.3"},
                "cluster": {"kubernetesVersion": "1.34.5"},
                "network": {"clusterCIDR": "10.3.0.0/16", "serviceCIDR": "10.4.0.0/16"},
                "ssh": ssh,
                "nodes": nodes,
            },
        }
    )


DEFAULTS = {
    "port": 2222,
    "user": "acpops",
    "auth": {"privateKeyFile": "~/.ssh/acp_ed25519", "passphraseEnv": "ACP_PASSPHRASE"},
    "proxy": {"url": "socks5://198.51.100.7:1080", "usernameEnv": "PROXY_USER", "passwordEnv": "PROXY_PASSWORD"},
    "hostKeyPolicy": "strict",
}


def test_defaults_apply_and_tilde_expands() -> None:
    plan = plan_with(DEFAULTS, [{"name": "cp1", "role": "control-plane", "ipv4": "192.0.2.11"}])
    settings = resolve_ssh(plan, plan.spec.nodes[0])
    assert (settings.host, settings.port, settings.user, settings.host_key_policy) == (
        "192.0.2.11",
        2222,
        "acpops",
        "strict",
    )
    assert settings.key_file == Path(os.path.expanduser("~/.ssh/acp_ed25519"))
    assert settings.passphrase == SecretRef("passphrase of the private key", env="ACP_PASSPHRASE")
    assert settings.password is None
    assert settings.proxy is not None
    assert (settings.proxy.host, settings.proxy.port, settings.proxy.remote_dns) == ("198.51.100.7", 1080, False)
    assert settings.address == "acpops@192.0.2.11:2222"


def test_node_override_wins_and_auth_is_replaced_whole() -> None:
    node = {
        "name": "w1",
        "role": "worker",
        "ipv4": "192.0.2.21",
        "ipv6": "2001:db8::21",
        "ssh": {"port": 22, "user": "root", "auth": {"passwordFile": "~/w1.pass"}, "hostKeyPolicy": "accept-new"},
    }
    plan = plan_with(DEFAULTS, [node])
    settings = resolve_ssh(plan, plan.spec.nodes[0])
    assert (settings.port, settings.user, settings.host_key_policy) == (22, "root", "accept-new")
    # The node logs in with a password: it must not inherit the default key.
    assert settings.key_file is None and settings.passphrase is None
    assert settings.password == SecretRef("SSH password", file=Path(os.path.expanduser("~/w1.pass")))
    assert settings.proxy is not None  # not mentioned by the node: inherited


def test_explicit_null_proxy_means_direct() -> None:
    node = {"name": "w1", "role": "worker", "ipv4": "192.0.2.21", "ssh": {"proxy": None}}
    plan = plan_with(DEFAULTS, [node])
    assert resolve_ssh(plan, plan.spec.nodes[0]).proxy is None


def test_node_proxy_override_and_socks5h() -> None:
    node = {
        "name": "w1",
        "role": "worker",
        "ipv4": "192.0.2.21",
        "ssh": {"proxy": {"url": "socks5h://[2001:db8::1]:1081", "username": "ops"}},
    }
    plan = plan_with(DEFAULTS, [node])
    proxy = resolve_ssh(plan, plan.spec.nodes[0]).proxy
    assert proxy is not None
    assert (proxy.host, proxy.port, proxy.remote_dns, proxy.username, proxy.password) == (
        "2001:db8::1",
        1081,
        True,
        "ops",
        None,
    )
    assert proxy.address == "[2001:db8::1]:1081"


@pytest.mark.parametrize(
    ("node", "host"),
    [
        ({"ipv4": "192.0.2.11", "ipv6": "2001:db8::11", "sshHost": "cp1.example.com"}, "cp1.example.com"),
        ({"ipv4": "192.0.2.11", "ipv6": "2001:db8::11"}, "192.0.2.11"),
        ({"ipv6": "2001:db8::11"}, "2001:db8::11"),
    ],
)
def test_host_precedence(node: dict[str, str], host: str) -> None:
    plan = plan_with(DEFAULTS, [{"name": "cp1", "role": "control-plane", **node}])
    assert resolve_ssh(plan, plan.spec.nodes[0]).host == host


def test_settings_hold_references_not_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACP_PASSPHRASE", "hunter2-passphrase")
    monkeypatch.setenv("PROXY_PASSWORD", "hunter2-proxy")
    plan = plan_with(DEFAULTS, [{"name": "cp1", "role": "control-plane", "ipv4": "192.0.2.11"}])
    settings = resolve_ssh(plan, plan.spec.nodes[0])
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings)
    assert settings.passphrase is not None and settings.passphrase.read() == "hunter2-passphrase"


def test_secret_failures_name_the_reference_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACP_UNSET_VARIABLE", raising=False)
    with pytest.raises(TransportError) as unset:
        SecretRef("SSH password", env="ACP_UNSET_VARIABLE").read()
    assert (unset.value.kind, unset.value.message) == (
        "auth",
        "SSH password: environment variable ACP_UNSET_VARIABLE is not set",
    )

    with pytest.raises(TransportError) as missing:
        SecretRef("SSH password", file=tmp_path / "nope").read()
    assert missing.value.kind == "permission" and "does not exist" in missing.value.message

    # Undecodable bytes: the decode error would quote them, so only the type is named.
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xffzq-content-zq\xfe")
    with pytest.raises(TransportError) as undecodable:
        SecretRef("SSH password", file=binary).read()
    assert (
        undecodable.value.kind == "permission"
        and "zq-content" not in str(undecodable.value)
        and "\\xff" not in str(undecodable.value)
    )

    with_newline = tmp_path / "password"
    with_newline.write_text("s3cr3t\n")
    assert SecretRef("SSH password", file=with_newline).read() == "s3cr3t"
