"""Scenarios, file contents and generated scripts of the lab, without building one
(no root needed)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from acpcheck.errors import InputError
from acpcheck.yamlsource import parse_yaml
from acpcheck_lab import content, healthy_scenario, load_scenario
from acpcheck_lab.info import LabInfo, NodeInfo, ProxyInfo
from acpcheck_lab.layout import (
    DEFAULT_SUBNETS,
    PROXY_PASSWORD_ENV,
    PROXY_USER_ENV,
    LabNames,
    LabSubnets,
    StatePaths,
)
from acpcheck_lab.node import HostBase, build_node, init_script
from acpcheck_lab.outputs import plan_document, write_ssh_files
from acpcheck_lab.scenario import scenario_from_document, shipped_scenarios


def scenario_text(text: str):
    return scenario_from_document(parse_yaml(text, "s.yaml"))


HOST = HostBase(
    passwd="root:x:0:0:root:/root:/bin/bash\n",
    group="root:x:0:\n",
    shadow="root:*:1::::::\n",
    shadow_gid=42,
    dpkg_status=None,
    dpkg_status_differs=False,
    lab_uid=4242,
    password_hash="$6$x$y",
    client_public_key="ssh-ed25519 AAAA client",
    faketime_lib="/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    python="/usr/bin/python3",
)


def test_shipped_scenarios_load() -> None:
    assert {"demo", "defects"} <= set(shipped_scenarios())
    demo = load_scenario("demo")
    assert [(n.name, n.role, n.network) for n in demo.nodes] == [
        ("cp1", "control-plane", "direct"),
        ("cp2", "control-plane", "direct"),
        ("cp3", "control-plane", "direct"),
        ("w1", "worker", "hidden"),
    ]
    defects = load_scenario("defects")
    # Nodes without defect settings are healthy, or differ only by their OS flavour.
    plain = {n.name for n in defects.nodes if not n.defects.model_dump(exclude_defaults=True)}
    assert {"healthy", "hidden-ok"} <= plain
    assert not any(name.startswith("bad-") for name in plain)
    assert {n.name for n in defects.nodes if n.name in plain and n.os != "ubuntu-22.04"} == {
        "centos-bad",
        "kylin-ok",
        "kylin-sp2",
    }


def test_healthy_scenario_for_benchmarks() -> None:
    bench = healthy_scenario(100)
    assert len(bench.nodes) == 100 and [n.role for n in bench.nodes[:4]] == ["control-plane"] * 3 + ["worker"]
    assert all(n.network == "direct" and not n.defects.model_dump(exclude_defaults=True) for n in bench.nodes)
    with pytest.raises(InputError):
        healthy_scenario(0)


@pytest.mark.parametrize(
    "body, message",
    [
        ("- {name: a, role: worker, defects: {swp: true}}", "did you mean 'swap'"),
        ("- {name: a, role: worker, defects: {listen: [22]}}", "port 22 is the node's own sshd"),
        ("- {name: a, role: worker}\n  - {name: a, role: worker}", "node names must be unique"),
        ("- {name: a, role: worker, os: windows}", "unknown OS flavour"),
        ("- {name: Bad_Name, role: worker}", "wrong format"),
        ("- {name: a, role: worker, defects: {files: [/run/x]}}", "outside /proc, /sys, /dev and /run"),
        ("- {name: a, role: worker, defects: {sysctls: {kernel.pid_max: '1'}}}", "only net.*"),
    ],
)
def test_scenario_problems_are_located(body: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        scenario_text(f"name: t\nnodes:\n  {body}\n")
    assert message in str(caught.value) and "s.yaml:" in str(caught.value)


def test_a_directory_named_like_a_shipped_scenario_does_not_hide_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "hcp-healthy").mkdir()  # e.g. a run's --out directory
    monkeypatch.chdir(tmp_path)
    assert load_scenario("hcp-healthy").name == "hcp-healthy"


def test_unknown_scenario_name_lists_the_shipped_ones() -> None:
    with pytest.raises(InputError, match="shipped: .*demo"):
        load_scenario("no-such-scenario")


def test_file_contents() -> None:
    assert content.cpuinfo(3).count("processor\t:") == 3
    assert "MemTotal:        4194304 kB\n" in content.meminfo(4, swap=False)
    assert content.swaps(False).count("\n") == 1 and "/swap.img" in content.swaps(True)
    assert "transparent_hugepage=never" not in content.cmdline("5.15.0-56-generic", False)
    assert "ip_vs " not in content.modules(["ip_vs"]) and "ip_vs_rr " in content.modules(["ip_vs"])
    config = content.sshd_config("n", {"usedns": "yes", "Banner": "none"})
    assert (
        "UseDNS yes" in config and "UseDNS no" not in config and "Banner none" in config
    )  # keywords are case-insensitive
    assert content.resolv_conf([], ["a.example"]) == "# resolv.conf of this lab node\nsearch a.example\n"
    assert content.sudoers("u", "none") is None and "NOPASSWD" not in (content.sudoers("u", "password") or "")


def test_dpkg_status_lists_exactly_the_scenario_packages() -> None:
    host = "Package: bash\nStatus: install ok installed\n\nPackage: kubectl\nStatus: install ok installed\n"
    clean, removed = content.dpkg_without_conflicts(host)
    assert removed == {"kubectl"} and "kubectl" not in clean and "Package: bash" in clean
    assert "Package: docker.io\nStatus: install ok installed" in content.dpkg_installed(["docker.io"])


def test_init_script_makes_the_defects() -> None:
    scenario = scenario_text(
        "name: t\nnodes:\n  - name: n1\n    role: worker\n    defects: {tmpNoexec: true, clockSkewSeconds: "
        "60, listen: [6443],"
        " defaultRoute: false, runtimeBridge: 172.17.0.1/16, missingBinaries: [tar]}\n"
    )
    network = LabSubnets.default().networks(LabNames("7"))["direct"]
    build = build_node(scenario.nodes[0], network.node_address(0), network, HOST)
    script = init_script(build, Path("/state/nodes/n1"), HOST)
    assert (
        f"address add {network.cidr.network_address + 11}/{network.cidr.prefixlen} dev eth0" in script
        and "route add default" not in script
    )
    assert "address add 172.17.0.1/16 dev docker0" in script
    assert "listener.py 6443" in script
    assert 'noexec,size=1g acplab7-tmp "$R"/tmp' in script  # named with the lab's prefix: down finds the sshd by it
    assert script.rstrip().splitlines()[-1].startswith("exec /usr/sbin/sshd -D -e -o UsePAM=no -o UseDNS=no")
    assert "FAKETIME=+60" in script
    assert build.view.entries["/usr/bin/tar"].kind == "whiteout"
    assert 'mount -t overlay acplab7-root -o lowerdir=/,upperdir="$N"/disk/upper' in script
    assert build.netns == "acplab7-n1"
    assert "size=512g" in script  # the default disk


#: Where the lab's default subnets must lie: the benchmarking range (RFC 2544), see layout.py.
BENCHMARKING = ipaddress.ip_network("198.18.0.0/15")


def lab_info(scenario, subnets: LabSubnets, state: Path = Path("/state")) -> LabInfo:
    """A LabInfo as ``up`` makes it (node addresses counted per network), without a lab."""
    networks, counters, nodes = subnets.networks(LabNames("1")), {"direct": 0, "hidden": 0}, []
    for n in scenario.nodes:
        address = networks[n.network].node_address(counters[n.network])
        counters[n.network] += 1
        nodes.append(NodeInfo(n.name, n.role, n.network, str(address), n.name, f"acplab1-{n.name}", n.ssh_user, []))
    proxy = ProxyInfo(str(networks["direct"].proxy_address), 1080, "user", "SECRET")
    return LabInfo(
        state,
        scenario.name,
        nodes,
        proxy,
        state / "keys" / "id_ed25519",
        "acplab",
        "SECRET2",
        subnets=subnets.as_dict(),
    )


def lab_addresses(info: LabInfo, plan: dict) -> list[tuple[str, ipaddress.IPv4Address, str]]:
    """Every address the lab hands out, with the network it belongs on: nodes (lab.json
    and plan), the proxy (lab.json and each plan proxy URL), the plan's endpoint."""
    assert info.proxy is not None
    network = {n.name: n.network for n in info.nodes}
    found = [(f"node {n.name}", ipaddress.IPv4Address(n.ipv4), n.network) for n in info.nodes]
    found += [
        (f"plan node {n['name']}", ipaddress.IPv4Address(n["ipv4"]), network[n["name"]]) for n in plan["spec"]["nodes"]
    ]
    found += [("plan endpoint", ipaddress.IPv4Address(plan["spec"]["endpoint"]["address"]), "direct")]
    found += [("proxy", ipaddress.IPv4Address(info.proxy.host), "direct")]
    found += [
        (
            f"plan proxy of {n['name']}",
            ipaddress.IPv4Address(n["ssh"]["proxy"]["url"].split("//")[1].split(":")[0]),
            "direct",
        )
        for n in plan["spec"]["nodes"]
        if "proxy" in n.get("ssh", {})
    ]
    return found


def test_plan_refers_to_secrets_by_name_only() -> None:
    scenario = load_scenario("demo")
    info = lab_info(scenario, LabSubnets.default())
    plan = plan_document(scenario, info)
    assert "SECRET" not in repr(plan) and "SECRET" not in repr(info)
    w1 = plan["spec"]["nodes"][3]
    assert w1["ssh"]["proxy"] == {
        "url": f"socks5://{info.proxy.host}:1080",
        "usernameEnv": PROXY_USER_ENV,
        "passwordEnv": PROXY_PASSWORD_ENV,
    }
    assert plan["spec"]["cluster"]["role"] == "global"  # the scenario's plan: section merged in


@pytest.mark.parametrize("subnets", [DEFAULT_SUBNETS, "10.77.0.0/16,172.31.255.0/28", "192.0.2.128/25,203.0.113.0/24"])
def test_every_lab_address_lies_in_the_lab_subnets(subnets: str, tmp_path: Path) -> None:
    chosen = LabSubnets.parse(subnets)
    scenario = load_scenario("demo")
    info = lab_info(scenario, chosen, tmp_path)
    plan = plan_document(scenario, info)
    addresses = lab_addresses(info, plan)
    assert {what.split()[0] for what, _, _ in addresses} == {"node", "plan", "proxy"} and len(addresses) == 2 * len(
        info.nodes
    ) + 3
    for what, address, network in addresses:
        assert address in chosen.cidr(network), (
            f"{what} {address} is outside the lab's {network} subnet {chosen.cidr(network)}"
        )
    own = [address for what, address, _ in addresses if what.startswith(("node ", "proxy", "plan endpoint"))]
    assert len(set(own)) == len(own)  # nodes, proxy and endpoint never share an address
    # ssh_config and known_hosts name the same addresses
    write_ssh_files(StatePaths(tmp_path), info, {n.name: "ssh-ed25519 AAAA" for n in info.nodes})
    hostnames = [
        line.split()[1]
        for line in (tmp_path / "ssh_config").read_text().splitlines()
        if line.strip().startswith("HostName")
    ]
    assert hostnames == [n.ipv4 for n in info.nodes]
    assert all(
        ipaddress.IPv4Address(h) in chosen.direct or ipaddress.IPv4Address(h) in chosen.hidden for h in hostnames
    )
    assert info.lab_subnets == chosen


def test_default_subnets_are_in_the_benchmarking_range_and_apart() -> None:
    default = LabSubnets.default()
    assert default.direct.subnet_of(BENCHMARKING) and default.hidden.subnet_of(BENCHMARKING)
    assert not default.direct.overlaps(default.hidden)
    assert LabSubnets.chosen(environ={}) == default
    assert LabSubnets.chosen(environ={"ACPCHECK_LAB_SUBNETS": "10.9.0.0/24,10.9.1.0/24"}) == LabSubnets.parse(
        "10.9.0.0/24,10.9.1.0/24"
    )
    assert LabSubnets.chosen(
        "10.8.0.0/24,10.8.1.0/24", environ={"ACPCHECK_LAB_SUBNETS": "10.9.0.0/24,10.9.1.0/24"}
    ).direct == ipaddress.ip_network("10.8.0.0/24")


@pytest.mark.parametrize(
    "text, origin, message",
    [
        ("198.18.0.0/24", "--subnets", "give two IPv4 subnets as DIRECT,HIDDEN"),
        ("198.18.0.5/24,198.19.0.0/24", "--subnets", "did you mean 198.18.0.0/24"),
        ("198.18.0.0/15,198.20.0.0/24", "--subnets", "prefix must be between /16 and /28"),
        ("198.18.0.0/29,198.19.0.0/24", "--subnets", "prefix must be between /16 and /28"),
        ("198.18.0.0/24,198.18.0.128/25", "--subnets", "overlap"),
        ("2001:db8::/64,198.19.0.0/24", "--subnets", "not an IPv4 subnet"),
        ("127.0.0.0/24,198.19.0.0/24", "ACPCHECK_LAB_SUBNETS", "loopback"),
        ("224.0.0.0/24,198.19.0.0/24", "--subnets", "multicast"),
    ],
)
def test_bad_subnets_are_input_errors(text: str, origin: str, message: str) -> None:
    with pytest.raises(InputError, match=message) as caught:
        LabSubnets.parse(text, origin)
    assert str(caught.value).startswith(origin + ":")


def test_subnets_must_hold_the_scenario() -> None:
    default = LabSubnets.default()
    default.check_room({"direct": 240, "hidden": 240})  # `--nodes 240` keeps working with /24
    assert default.networks(LabNames("1"))["direct"].node_address(239) == default.direct.network_address + 250
    small = LabSubnets.parse("10.1.0.0/28,10.1.0.16/28")
    small.check_room({"direct": 4, "hidden": 1})
    with pytest.raises(InputError, match=r"direct subnet 10.1.0.0/28 has addresses for 4 nodes .* puts 5 there"):
        small.check_room({"direct": 5, "hidden": 0})
    with pytest.raises(ValueError):
        small.networks(LabNames("1"))["direct"].node_address(4)  # would be the broadcast address
