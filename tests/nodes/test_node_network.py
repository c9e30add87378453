"""Tables for acpcheck.checks.node_network (N1-N9), plus its parsers."""

from __future__ import annotations

import pytest

from acpcheck.checks.node_network import (
    check_cni_ports_free,
    check_default_route,
    check_hostname_rules,
    check_localhost_resolves,
    check_node_ip_configured,
    check_resolv_conf_nameservers,
    check_resolv_conf_search,
    check_role_ports_free,
    check_runtime_bridge_range_unused,
    default_route_families,
    search_domains,
)
from acpcheck.facts.model import Address, Listener
from nodes.conftest import case, run_case

SSHD = Listener("tcp", "0.0.0.0", 22, "sshd")
UPGRADE = {"spec": {"acp": {"version": "4.3", "upgradeFrom": "4.2"}}}
IPV6_PLAN = {
    "spec": {
        "cluster": {"ipFamily": "ipv6"},
        "network": {
            "clusterCIDR": "fd00:10:16::/64",
            "serviceCIDR": "fd00:10:96::/112",
            "kubeOvn": {"joinCIDR": "fd00:100:64::/64"},
        },
        "nodes": [{"name": "cp1", "role": "control-plane", "ipv6": "2001:db8::11"}],
    }
}
IPV6_ADDRESSES = (
    Address("lo", 6, "::1", 128),
    Address("eth0", 6, "2001:db8::11", 64),
    Address("eth0", 6, "fe80::1", 64),
)
ACP_41 = {"spec": {"acp": {"version": "4.1"}, "cluster": {"kubernetesVersion": "1.32.7"}}}
DOCKER0 = Address("docker0", 4, "172.17.0.1", 16)


def listening(*listeners: Listener) -> dict[str, tuple[Listener, ...]]:
    return {"listeners": (SSHD, *listeners)}


CASES = [
    # N1
    case(check_hostname_rules, "pass", "plain"),
    case(
        check_hostname_rules, "pass", "36-chars-with-dots", facts={"hostname": "node-01.dc1.example." + "a" * 15 + "z"}
    ),
    case(
        check_hostname_rules,
        "fail",
        "uppercase-underscore",
        facts={"hostname": "Node_1"},
        mentions=["'Node_1'", "'N'", "'_'"],
    ),
    case(check_hostname_rules, "fail", "too-long", facts={"hostname": "a" * 37}, mentions=["37 characters"]),
    case(check_hostname_rules, "fail", "dot-dash", facts={"hostname": "node.-1"}, mentions=["contains '.-'"]),
    case(
        check_hostname_rules,
        "fail",
        "trailing-dash",
        facts={"hostname": "node1-"},
        mentions=["'node1-'", "start and end"],
    ),
    case(check_hostname_rules, "manual", "unknown", facts={"hostname": None}),
    # N2
    case(check_localhost_resolves, "pass", "standard"),
    case(
        check_localhost_resolves,
        "pass",
        "comments-and-case",
        facts={"etc_hosts": "# local\n::1 localhost\n127.0.0.1   LocalHost localhost.localdomain # loopback\n"},
    ),
    case(
        check_localhost_resolves,
        "fail",
        "other-address-first",
        facts={"etc_hosts": "127.0.1.1 localhost\n127.0.0.1 localhost\n"},
        mentions=["127.0.1.1"],
    ),
    case(
        check_localhost_resolves,
        "fail",
        "missing",
        facts={"etc_hosts": "::1 localhost\n192.0.2.11 cp1\n"},
        mentions=["no IPv4 entry for localhost"],
    ),
    case(check_localhost_resolves, "manual", "unknown", facts={"etc_hosts": None}),
    # N3
    case(check_resolv_conf_nameservers, "pass", "good"),
    case(
        check_resolv_conf_nameservers, "fail", "file-missing", facts={"resolv_conf": None}, mentions=["does not exist"]
    ),
    case(
        check_resolv_conf_nameservers,
        "fail",
        "no-nameserver",
        facts={"resolv_conf": "# nameserver 192.0.2.53\noptions ndots:2\n"},
        mentions=["no nameserver"],
    ),
    case(
        check_resolv_conf_nameservers,
        "fail",
        "172-nameserver",
        facts={"resolv_conf": "nameserver 172.20.0.10\n"},
        mentions=["172.20.0.10"],
    ),
    case(
        check_resolv_conf_nameservers,
        "fail",
        "systemd-resolved",
        facts={"resolv_conf": "nameserver 127.0.0.53\n", "systemd_resolved_active": True},
        mentions=["systemd-resolved is active"],
    ),
    case(check_resolv_conf_nameservers, "manual", "resolved-unknown", facts={"systemd_resolved_active": None}),
    # N4
    case(check_resolv_conf_search, "pass", "no-search"),
    case(check_resolv_conf_search, "pass", "no-file", facts={"resolv_conf": None}),
    case(
        check_resolv_conf_search,
        "warn",
        "within-limits",
        facts={"resolv_conf": "nameserver 192.0.2.53\nsearch corp.example example.com\n"},
        mentions=["corp.example"],
    ),
    case(
        check_resolv_conf_search,
        "fail",
        "29-domains",
        facts={"resolv_conf": "search " + " ".join(f"d{i}.example" for i in range(29)) + "\n"},
        mentions=["29 domains", "at most 28"],
    ),
    case(
        check_resolv_conf_search,
        "pass",
        "last-search-line-wins",
        facts={"resolv_conf": "search " + " ".join(f"d{i}.x" for i in range(40)) + "\nsearch\n"},
    ),
    case(
        check_resolv_conf_search,
        "fail",
        "long-domain",
        facts={"resolv_conf": "search " + "a" * 254 + "\n"},
        mentions=["254 characters"],
    ),
    case(
        check_resolv_conf_search,
        "fail",
        "list-too-long",
        facts={"resolv_conf": "search " + " ".join("d" * 100 + str(i) for i in range(21)) + "\n"},
        mentions=["2152 characters", "at most 2048"],
    ),
    # N5
    case(check_node_ip_configured, "pass", "on-eth0"),
    case(
        check_node_ip_configured,
        "fail",
        "not-configured",
        facts={"addresses": (Address("eth0", 4, "10.0.0.5", 24),)},
        mentions=["192.0.2.11 is not configured", "eth0 10.0.0.5/24"],
    ),
    case(
        check_node_ip_configured,
        "fail",
        "subnet-broadcast",
        node="w1",
        plan={
            "spec": {
                "nodes": [
                    {"name": "w1", "role": "worker", "ipv4": "192.0.2.255"},
                    {"name": "cp1", "role": "control-plane", "ipv4": "192.0.2.11"},
                ]
            }
        },
        facts={"addresses": (Address("eth0", 4, "192.0.2.255", 24),)},
        mentions=["192.0.2.255 is the broadcast address", "192.0.2.255/24"],
    ),
    case(
        check_node_ip_configured,
        "pass",
        "slash-31-has-no-broadcast",
        node="w1",
        plan={
            "spec": {
                "nodes": [
                    {"name": "w1", "role": "worker", "ipv4": "192.0.2.255"},
                    {"name": "cp1", "role": "control-plane", "ipv4": "192.0.2.11"},
                ]
            }
        },
        facts={"addresses": (Address("eth0", 4, "192.0.2.255", 31),)},
    ),
    case(
        check_node_ip_configured,
        "fail",
        "link-local-in-plan",
        node="w1",
        plan={
            "spec": {
                "nodes": [
                    {"name": "w1", "role": "worker", "ipv4": "169.254.10.1"},
                    {"name": "cp1", "role": "control-plane", "ipv4": "192.0.2.11"},
                ]
            }
        },
        facts={"addresses": (Address("eth0", 4, "169.254.10.1", 16),)},
        mentions=["169.254.10.1 is a link-local address"],
    ),
    case(
        check_node_ip_configured,
        "manual",
        "addresses-unreadable",
        facts={"addresses": (), "probe_errors": ("addresses: ip -j addr failed",)},
    ),
    # N6
    case(check_default_route, "pass", "ipv4-default"),
    case(check_default_route, "pass", "route-to-0.0.0.0", facts={"routes": ("0.0.0.0/0 via 192.0.2.1 dev eth0",)}),
    case(
        check_default_route,
        "fail",
        "none",
        facts={"routes": ("192.0.2.0/24 dev eth0 proto kernel scope link src 192.0.2.11",)},
        mentions=["no IPv4 default route"],
    ),
    case(
        check_default_route,
        "fail",
        "blackhole-only",
        facts={"routes": ("blackhole default",)},
        mentions=["no IPv4 default route"],
    ),
    case(
        check_default_route,
        "pass",
        "ipv6-default",
        plan=IPV6_PLAN,
        facts={"addresses": IPV6_ADDRESSES, "routes": ("default via fe80::1 dev eth0 proto ra metric 1024",)},
    ),
    case(
        check_default_route,
        "fail",
        "ipv6-plan-ipv4-route",
        plan=IPV6_PLAN,
        facts={"addresses": IPV6_ADDRESSES, "routes": ("default via 192.0.2.1 dev eth0 proto static",)},
        mentions=["no IPv6 default route", "ip -6 route"],
    ),
    # N7
    case(check_role_ports_free, "pass", "only-sshd"),
    case(
        check_role_ports_free,
        "fail",
        "6443-taken",
        facts=listening(Listener("tcp", "0.0.0.0", 6443, "haproxy")),
        mentions=["TCP port 6443", "haproxy"],
    ),
    case(
        check_role_ports_free,
        "fail",
        "kubelet-port-on-worker",
        node="w1",
        facts=listening(Listener("tcp", "127.0.0.1", 10250, "kubelet")),
        mentions=["10250", "kubelet", "10249-10256"],
    ),
    case(
        check_role_ports_free,
        "pass",
        "etcd-port-on-worker",
        node="w1",
        facts=listening(Listener("tcp", "0.0.0.0", 2379, "etcd")),
    ),
    case(check_role_ports_free, "pass", "udp-is-not-tcp", facts=listening(Listener("udp", "0.0.0.0", 10250, "x"))),
    case(
        check_role_ports_free,
        "skip",
        "upgrade-plan",
        facts=listening(Listener("tcp", "0.0.0.0", 6443, "kube-apiserver")),
        plan=UPGRADE,
    ),
    # N8
    case(check_cni_ports_free, "pass", "kube-ovn-free"),
    case(
        check_cni_ports_free,
        "fail",
        "ovn-nb-taken",
        node="w2",
        facts=listening(Listener("tcp", "[::]", 6641, "ovsdb-server")),
        mentions=["6641", "ovsdb-server"],
    ),
    case(
        check_cni_ports_free,
        "fail",
        "calico-bgp",
        facts=listening(Listener("tcp", "0.0.0.0", 179, "bird")),
        plan={"spec": {"network": {"plugin": "calico"}}},
        mentions=["179", "bird"],
    ),
    case(
        check_cni_ports_free,
        "skip",
        "custom-cni",
        facts=listening(Listener("tcp", "0.0.0.0", 179, "bird")),
        plan={"spec": {"network": {"plugin": "custom"}}},
    ),
    # N9
    case(check_runtime_bridge_range_unused, "pass", "clean"),
    case(
        check_runtime_bridge_range_unused,
        "fail",
        "docker0",
        facts={
            "addresses": (Address("eth0", 4, "192.0.2.11", 24), DOCKER0),
            "routes": (
                "default via 192.0.2.1 dev eth0",
                "172.17.0.0/16 dev docker0 proto kernel scope link src 172.17.0.1",
            ),
        },
        mentions=["docker0 172.17.0.1/16", "nerdctl bridge range on ACP 4.3"],
    ),
    case(
        check_runtime_bridge_range_unused,
        "fail",
        "static-route-acp41",
        plan=ACP_41,
        facts={"routes": ("default via 192.0.2.1 dev eth0", "172.30.0.0/16 via 192.0.2.254 dev eth0")},
        mentions=["172.30.0.0/16 via 192.0.2.254", "Docker bridge range on ACP 4.1"],
    ),
    case(
        check_runtime_bridge_range_unused,
        "pass",
        "172.30-is-free-on-4.3",
        facts={"routes": ("default via 192.0.2.1 dev eth0", "172.30.0.0/16 via 192.0.2.254 dev eth0")},
    ),
]


@pytest.mark.parametrize("row", CASES)
def test_network_checks(row) -> None:
    run_case(row)


@pytest.mark.parametrize(
    ("routes", "families"),
    [
        (("default via 192.0.2.1 dev eth0",), {4}),
        (("default via fe80::1 dev eth0 proto ra",), {6}),
        (("::/0 via 2001:db8::1 dev eth0",), {6}),
        (("default dev ppp0 scope link",), {4, 6}),  # no gateway: no family to read
        (("unreachable default",), set()),
        (("unicast default via 192.0.2.1 dev eth0",), {4}),
        ((), set()),
    ],
)
def test_default_route_families(routes: tuple[str, ...], families: set[int]) -> None:
    assert default_route_families(routes) == families


def test_search_domains_reads_the_last_line_and_ignores_comments() -> None:
    assert search_domains("search a.example b.example\n; search c\nsearch d.example # note\n") == ["d.example"]
    assert search_domains("nameserver 192.0.2.53\n") is None
