"""Scenarios, file contents and generated scripts of the lab, without building one
(no root needed)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from acpcheck.errors import InputError
from acpcheck.lab import content, healthy_scenario, load_scenario
from acpcheck.lab.core import LabInfo, NodeInfo, ProxyInfo
from acpcheck.lab.layout import NETWORKS, PROXY_PASSWORD_ENV, PROXY_USER_ENV
from acpcheck.lab.node import HostBase, build_node, init_script
from acpcheck.lab.outputs import plan_document
from acpcheck.lab.scenario import scenario_from_document, shipped_scenarios
from acpcheck.yamlsource import parse_yaml


def scenario_text(text: str):
    return scenario_from_document(parse_yaml(text, "s.yaml"))


HOST = HostBase(passwd="root:x:0:0:root:/root:/bin/bash\n", group="root:x:0:\n", shadow="root:*:1::::::\n", shadow_gid=42,
                dpkg_status=None, dpkg_status_differs=False, lab_uid=4242, password_hash="$6$x$y", client_public_key="ssh-ed25519 AAAA client",
                faketime_lib="/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1", python="/usr/bin/python3")


def test_shipped_scenarios_load() -> None:
    assert {"demo", "defects"} <= set(shipped_scenarios())
    demo = load_scenario("demo")
    assert [(n.name, n.role, n.network) for n in demo.nodes] == [
        ("cp1", "control-plane", "direct"), ("cp2", "control-plane", "direct"), ("cp3", "control-plane", "direct"), ("w1", "worker", "hidden")]
    defects = load_scenario("defects")
    # Nodes without defect settings are healthy, or differ only by their OS flavour.
    plain = {n.name for n in defects.nodes if not n.defects.model_dump(exclude_defaults=True)}
    assert {"healthy", "hidden-ok"} <= plain
    assert not any(name.startswith("bad-") for name in plain)
    assert {n.name for n in defects.nodes if n.name in plain and n.os != "ubuntu-22.04"} == {"centos-bad", "kylin-ok", "kylin-sp2"}


def test_healthy_scenario_for_benchmarks() -> None:
    bench = healthy_scenario(100)
    assert len(bench.nodes) == 100 and [n.role for n in bench.nodes[:4]] == ["control-plane"] * 3 + ["worker"]
    assert all(n.network == "direct" and not n.defects.model_dump(exclude_defaults=True) for n in bench.nodes)
    with pytest.raises(InputError):
        healthy_scenario(0)


@pytest.mark.parametrize("body, message", [
    ("- {name: a, role: worker, defects: {swp: true}}", "did you mean 'swap'"),
    ("- {name: a, role: worker, defects: {listen: [22]}}", "port 22 is the node's own sshd"),
    ("- {name: a, role: worker}\n  - {name: a, role: worker}", "node names must be unique"),
    ("- {name: a, role: worker, os: windows}", "unknown OS flavour"),
    ("- {name: Bad_Name, role: worker}", "wrong format"),
    ("- {name: a, role: worker, defects: {files: [/run/x]}}", "outside /proc, /sys, /dev and /run"),
    ("- {name: a, role: worker, defects: {sysctls: {kernel.pid_max: '1'}}}", "only net.*"),
])
def test_scenario_problems_are_located(body: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        scenario_text(f"name: t\nnodes:\n  {body}\n")
    assert message in str(caught.value) and "s.yaml:" in str(caught.value)


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
    assert "UseDNS yes" in config and "UseDNS no" not in config and "Banner none" in config  # keywords are case-insensitive
    assert content.resolv_conf([], ["a.example"]) == "# resolv.conf of this lab node\nsearch a.example\n"
    assert content.sudoers("u", "none") is None and "NOPASSWD" not in (content.sudoers("u", "password") or "")


def test_dpkg_status_lists_exactly_the_scenario_packages() -> None:
    host = "Package: bash\nStatus: install ok installed\n\nPackage: kubectl\nStatus: install ok installed\n"
    clean, removed = content.dpkg_without_conflicts(host)
    assert removed == {"kubectl"} and "kubectl" not in clean and "Package: bash" in clean
    assert "Package: docker.io\nStatus: install ok installed" in content.dpkg_installed(["docker.io"])


def test_init_script_makes_the_defects() -> None:
    scenario = scenario_text(
        "name: t\nnodes:\n  - name: n1\n    role: worker\n    defects: {tmpNoexec: true, clockSkewSeconds: 60, listen: [6443],"
        " defaultRoute: false, runtimeBridge: 172.17.0.1/16, missingBinaries: [tar]}\n")
    network = NETWORKS["direct"]
    build = build_node(scenario.nodes[0], network.node_address(0), network, HOST)
    script = init_script(build, Path("/state/nodes/n1"), HOST)
    assert "address add 203.0.113.11/24 dev eth0" in script and "route add default" not in script
    assert "address add 172.17.0.1/16 dev docker0" in script
    assert "listener.py 6443" in script
    assert 'noexec,size=1g acplab-tmp "$R"/tmp' in script
    assert script.rstrip().splitlines()[-1].startswith("exec /usr/sbin/sshd -D -e -o UsePAM=no -o UseDNS=no")
    assert "FAKETIME=+60" in script
    assert build.view.entries["/usr/bin/tar"].kind == "whiteout"
    assert 'mount -t overlay acplab-root -o lowerdir=/,upperdir="$N"/disk/upper' in script
    assert "size=512g" in script  # the default disk


def test_plan_refers_to_secrets_by_name_only() -> None:
    scenario = load_scenario("demo")
    nodes = [NodeInfo(n.name, n.role, n.network, str(NETWORKS[n.network].node_address(i)), n.name, f"acplab-{n.name}", n.ssh_user, [])
             for i, n in enumerate(scenario.nodes)]
    info = LabInfo(Path("/state"), "demo", nodes, ProxyInfo("203.0.113.2", 1080, "user", "SECRET"), Path("/state/keys/id_ed25519"),
                   "acplab", "SECRET2")
    plan = plan_document(scenario, info)
    assert "SECRET" not in repr(plan) and "SECRET" not in repr(info)
    w1 = plan["spec"]["nodes"][3]
    assert w1["ssh"]["proxy"] == {"url": "socks5://203.0.113.2:1080", "usernameEnv": PROXY_USER_ENV, "passwordEnv": PROXY_PASSWORD_ENV}
    assert plan["spec"]["cluster"]["role"] == "global"  # the scenario's plan: section merged in
    for node in plan["spec"]["nodes"]:
        assert ipaddress.ip_address(node["ipv4"]).is_private  # documentation ranges only
