"""``up``'s host inspection (lab/acpcheck_lab/hostcheck.py): fake sources first (no root, no
network), then this machine as it is (DNS look-ups only, bounded)."""

from __future__ import annotations

import ipaddress
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from acpcheck.errors import InputError
from acpcheck_lab.hostcheck import (
    HostSources,
    SubnetsInUse,
    check_host,
    find_conflicts,
    host_uses,
    package_indexes,
    resolve_names,
)
from acpcheck_lab.layout import LabSubnets

DEFAULT = LabSubnets.default()
DIRECT_ADDRESS = DEFAULT.direct.network_address + 80  # somewhere inside the default direct subnet
HIDDEN_ADDRESS = DEFAULT.hidden.network_address + 53


def no_ip(what: str) -> list[dict[str, Any]]:
    return []


def fake_resolver(table: dict[str, list[str]]):
    def resolve(names, timeout):
        return {name: table[name] for name in names if name in table}

    return resolve


def sources(tmp_path: Path, **overrides: Any) -> HostSources:
    """Only the files a test writes; no interfaces, and a resolver that knows nothing."""
    base: dict[str, Any] = {
        "hosts_file": tmp_path / "hosts",
        "resolv_conf": tmp_path / "resolv.conf",
        "pip_configs": (),
        "apt_sources": (),
        "npm_configs": (),
        "environ": {},
        "ip": no_ip,
        "resolver": fake_resolver({}),
    }
    base.update(overrides)
    return HostSources(**base)


def test_hosts_file_entry_in_the_default_subnet_is_refused(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text(
        f"127.0.0.1 localhost\n# {DIRECT_ADDRESS} commented out\n{DIRECT_ADDRESS} mirror.corp.example mirror\n"
    )
    with pytest.raises(SubnetsInUse) as caught:
        check_host(DEFAULT, sources=sources(tmp_path))
    message = str(caught.value)
    assert isinstance(caught.value, InputError)  # exit code 4 in the CLI
    assert message.startswith(
        f"{DIRECT_ADDRESS} (mirror.corp.example mirror, from {hosts} line 3) lies in the lab's direct subnet "
        f"{DEFAULT.direct}"
    )
    assert "choose others with --subnets or ACPCHECK_LAB_SUBNETS" in message
    assert len(caught.value.conflicts) == 1  # the commented line is no entry


def test_resolv_conf_nameserver_conflicts_only_when_the_hidden_network_is_used(tmp_path: Path) -> None:
    (tmp_path / "resolv.conf").write_text(f"search example.com\nnameserver {HIDDEN_ADDRESS}\nnameserver 2001:db8::53\n")
    with pytest.raises(
        SubnetsInUse,
        match=rf"{HIDDEN_ADDRESS} \(nameserver, from .*resolv.conf line 2\) lies in the lab's hidden subnet",
    ):
        check_host(DEFAULT, sources=sources(tmp_path))
    check_host(DEFAULT, ["direct"], sources=sources(tmp_path))  # a scenario without hidden nodes does not use it


def test_pip_indexes_from_files_and_environment(tmp_path: Path) -> None:
    conf = tmp_path / "pip.conf"
    conf.write_text(
        "[global]\nindex-url = https://builder:s3cret-token@pypi.mirror.example:8443/simple\n"
        "extra-index-url = file:///opt/wheels/simple\n    "
        "https://extra.example/simple\n[install]\nfind_links = /opt/wheels\n"
    )
    resolver = fake_resolver(
        {
            "pypi.mirror.example": [str(DIRECT_ADDRESS)],
            "extra.example": ["192.0.2.9"],
            "env.example": [str(HIDDEN_ADDRESS)],
        }
    )
    got = sources(
        tmp_path,
        pip_configs=(conf, tmp_path / "missing.conf"),
        environ={"PIP_EXTRA_INDEX_URL": "https://env.example/simple"},
        resolver=resolver,
    )
    hosts = [index.host for index in package_indexes(got)]
    assert hosts == [
        "pypi.mirror.example",
        "extra.example",
        "env.example",
        "registry.npmjs.org",
    ]  # no pypi.org: an index is set
    with pytest.raises(SubnetsInUse) as caught:
        check_host(DEFAULT, sources=got)
    message = str(caught.value)
    assert (
        f"{DIRECT_ADDRESS} (pypi.mirror.example, from pip index https://pypi.mirror.example:8443/simple in "
        f"{conf}) lies in"
    ) in message
    assert (
        f"{HIDDEN_ADDRESS} (env.example, from pip extra index https://env.example/simple in "
        "PIP_EXTRA_INDEX_URL) lies in"
    ) in message
    assert "s3cret-token" not in message and "builder" not in message  # credentials in a URL are never shown


def test_pip_and_npm_defaults_when_nothing_is_configured(tmp_path: Path) -> None:
    indexes = package_indexes(sources(tmp_path))
    assert [(i.host, i.origin) for i in indexes] == [
        ("pypi.org", "pip index https://pypi.org/simple, pip's default"),
        ("files.pythonhosted.org", "pip's file host for https://pypi.org/simple"),
        ("registry.npmjs.org", "npm registry https://registry.npmjs.org/, npm's default"),
    ]
    resolver = fake_resolver({"files.pythonhosted.org": [str(DIRECT_ADDRESS)]})
    with pytest.raises(SubnetsInUse, match=r"\(files.pythonhosted.org, from pip's file host"):
        check_host(DEFAULT, sources=sources(tmp_path, resolver=resolver))


def test_apt_sources_one_line_and_deb822(tmp_path: Path) -> None:
    listing = tmp_path / "extra.list"
    listing.write_text(
        "# deb http://commented.example/debian bookworm main\n"
        "deb [ arch=amd64 signed-by=/usr/share/keyrings/k.gpg ] https://apt.example/debian bookworm main\n"
        "deb-src mirror+http://mirrors.example/list.txt bookworm main\ndeb file:/srv/repo ./\n"
    )
    deb822 = tmp_path / "debian.sources"
    deb822.write_text(
        "Types: deb\nURIs: http://debian.example/debian\n  http://second.example/debian\nSuites: bookworm\n\n"
        "Enabled: no\nTypes: deb\nURIs: http://disabled.example/debian\nSuites: bookworm\n"
    )
    got = sources(
        tmp_path,
        apt_sources=(listing, deb822),
        npm_configs=(),
        environ={"NPM_CONFIG_REGISTRY": "https://npm.example/"},
        pip_configs=(),
        resolver=fake_resolver({"second.example": [str(DIRECT_ADDRESS)]}),
    )
    apt = [(i.host, i.origin) for i in package_indexes(got) if i.origin.startswith("apt")]
    assert apt == [
        ("apt.example", f"apt source https://apt.example/debian in {listing} line 2"),
        ("mirrors.example", f"apt source http://mirrors.example/list.txt in {listing} line 3"),
        ("debian.example", f"apt source http://debian.example/debian in {deb822} line 2"),
        ("second.example", f"apt source http://second.example/debian in {deb822} line 2"),
    ]
    with pytest.raises(
        SubnetsInUse,
        match=rf"{DIRECT_ADDRESS} \(second.example, from apt source http://second.example/debian in {deb822} line 2\)",
    ):
        check_host(DEFAULT, sources=got)


def test_npm_registries(tmp_path: Path) -> None:
    npmrc = tmp_path / ".npmrc"
    npmrc.write_text(
        "; comment\nfund=false\n@corp:registry=https://npm.corp.example/\n//npm.corp.example/:_authToken=${NPM_TOKEN}\n"
    )
    hosts = [
        (i.host, i.origin)
        for i in package_indexes(sources(tmp_path, npm_configs=(npmrc,)))
        if i.origin.startswith("npm")
    ]
    # a scoped registry adds to the default one, it does not replace it
    assert hosts == [
        ("npm.corp.example", f"npm registry https://npm.corp.example/ in {npmrc} line 3"),
        ("registry.npmjs.org", "npm registry https://registry.npmjs.org/, npm's default"),
    ]
    npmrc.write_text('registry = "https://${NPM_HOST}/repository/npm/"\n')
    hosts = [
        i.host
        for i in package_indexes(sources(tmp_path, npm_configs=(npmrc,), environ={"NPM_HOST": "nexus.example"}))
        if i.origin.startswith("npm")
    ]
    assert hosts == ["nexus.example"]


def test_routes_and_addresses(tmp_path: Path) -> None:
    def ip(what: str) -> list[dict[str, Any]]:
        if what == "addr":
            return [
                {"ifname": "eth0", "addr_info": [{"family": "inet", "local": "192.0.2.2", "prefixlen": 24}]},
                {"ifname": "tun0", "addr_info": [{"family": "inet", "local": str(DIRECT_ADDRESS), "prefixlen": 32}]},
                {
                    "ifname": "acplab-direct",
                    "addr_info": [
                        {"family": "inet", "local": str(DEFAULT.direct.network_address + 1), "prefixlen": 24}
                    ],
                },
            ]
        return [
            {"dst": "default", "gateway": "192.0.2.1", "dev": "eth0"},
            {"dst": "0.0.0.0/1", "gateway": "10.8.0.1", "dev": "tun1"},  # a VPN's "def1" halves of the internet:
            {"dst": "128.0.0.0/1", "gateway": "10.8.0.1", "dev": "tun1"},  # more specific than default, so they count
            {"dst": "198.19.0.0/16", "gateway": "192.0.2.254", "dev": "eth0"},
            {"type": "unreachable", "dst": str(DEFAULT.hidden), "metric": 4242},  # the lab's own, tagged
            {"dst": str(DEFAULT.direct), "dev": "acplab-direct"},
        ]

    uses = host_uses(sources(tmp_path, ip=ip))
    conflicts = [str(c) for c in find_conflicts(DEFAULT, uses)]
    assert set(conflicts) == {
        f"address {DIRECT_ADDRESS}/32 on tun0 (from `ip addr`) lies in the lab's direct subnet {DEFAULT.direct}",
        (
            "route 128.0.0.0/1 gateway 10.8.0.1 dev tun1 (from `ip route`) overlaps the lab's direct subnet "
            f"{DEFAULT.direct}"
        ),
        (
            "route 128.0.0.0/1 gateway 10.8.0.1 dev tun1 (from `ip route`) overlaps the lab's hidden subnet "
            f"{DEFAULT.hidden}"
        ),
        (
            "route 198.19.0.0/16 gateway 192.0.2.254 dev eth0 (from `ip route`) overlaps the lab's hidden "
            f"subnet {DEFAULT.hidden}"
        ),
    }
    with pytest.raises(SubnetsInUse) as caught:
        check_host(DEFAULT, sources=sources(tmp_path, ip=ip))
    assert "free on this machine: --subnets" not in str(caught.value)  # 128.0.0.0/1 covers all of 198.18.0.0/15


def test_a_free_pair_is_suggested(tmp_path: Path) -> None:
    (tmp_path / "hosts").write_text(f"{DIRECT_ADDRESS} a\n")
    with pytest.raises(SubnetsInUse, match=r"free on this machine: --subnets 198.18.4.0/22,198.19.1.0/24\)$"):
        check_host(DEFAULT, sources=sources(tmp_path))


def test_names_that_do_not_resolve_are_skipped_and_lookups_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    real = socket.getaddrinfo

    def slow(host: str, *args: Any, **kwargs: Any):
        if host == "hangs.invalid":
            time.sleep(5)  # a DNS server that does not answer
        if host.endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", slow)
    started = time.monotonic()
    got = resolve_names(["hangs.invalid", "nothing.invalid", "127.0.0.1", "localhost"], timeout=0.5)
    assert time.monotonic() - started < 1.5
    assert got == {"127.0.0.1": ["127.0.0.1"], "localhost": ["127.0.0.1"]}


# --- this machine, as it is ------------------------------------------------------


def test_this_machine_has_no_conflict_with_the_default_subnets() -> None:
    uses = host_uses()
    assert uses, "the inspection found nothing at all on this machine (not even an interface address)"
    assert find_conflicts(DEFAULT, uses) == []


def test_this_machine_refuses_the_old_documentation_subnet_if_its_registries_live_there() -> None:
    """The lab's first default, 203.0.113.0/24, cut some machines off their package
    mirrors: refused now, where a registry resolves into it."""
    old = LabSubnets.parse("203.0.113.0/24,198.51.100.0/24")
    indexes = package_indexes(HostSources())
    resolved = resolve_names(sorted({index.host for index in indexes}))
    inside = {
        host: address
        for host, addresses in resolved.items()
        for address in addresses
        if ipaddress.IPv4Address(address) in old.direct
    }
    if not inside:
        pytest.skip(
            f"none of this machine's package indexes ({', '.join(sorted(resolved)) or 'none resolved'}) "
            f"resolves into {old.direct}"
        )
    with pytest.raises(SubnetsInUse) as caught:
        check_host(old)
    message = str(caught.value)
    for host, address in inside.items():
        assert f"{address} ({host}, from " in message and f"lies in the lab's direct subnet {old.direct}" in message
