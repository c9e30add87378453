"""Table tests for acpcheck.addressing: parsers, name syntax and the overlap sweep."""

from __future__ import annotations

import re

import pytest
from netaddr import IPAddress, IPRange

from acpcheck.addressing import Labelled, find_overlaps, host, is_domain, is_ip, parse_cidr, parse_ip, within


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("192.0.2.1", "192.0.2.1"),
        (" 192.0.2.1 ", "192.0.2.1"),
        ("2001:db8::1", "2001:db8::1"),
        ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"),
        ("::", "::"),
    ],
)
def test_parse_ip_accepts(text: str, expected: str) -> None:
    assert str(parse_ip(text)) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "10.1",  # inet_aton would read 10.0.0.1
        "010.0.0.1",  # ... and this as octal
        "0x7f.0.0.1",
        "256.1.1.1",
        "192.0.2.1/32",
        "fe80::1%eth0",
        "2001:db8::g",
        "example.com",
    ],
)
def test_parse_ip_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_ip(text)


def test_parse_ip_refuses_non_text() -> None:
    with pytest.raises(ValueError, match="must be an IP address"):
        parse_ip(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "cidr", "version", "size"),
    [
        ("10.3.0.0/16", "10.3.0.0/16", 4, 65536),
        ("192.0.2.7/32", "192.0.2.7/32", 4, 1),
        ("0.0.0.0/0", "0.0.0.0/0", 4, 2**32),
        ("fd00:10:16::/64", "fd00:10:16::/64", 6, 2**64),
        ("fd00:10:96::/112", "fd00:10:96::/112", 6, 65536),
        ("2001:db8::1/128", "2001:db8::1/128", 6, 1),
    ],
)
def test_parse_cidr_accepts(text: str, cidr: str, version: int, size: int) -> None:
    network = parse_cidr(text)
    assert (str(network.cidr), network.version, network.size) == (cidr, version, size)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10.3.0.0", "is not a CIDR"),
        ("10.3.0.1/16", "host bits set; did you mean 10.3.0.0/16"),
        ("fd00::1/64", "did you mean fd00::/64"),
        ("10.3.0.0/33", "IPv4 allows /0 to /32"),
        ("fd00::/129", "IPv6 allows /0 to /128"),
        ("10.3.0.0/-1", "impossible prefix length"),
        ("10.3.0.0/", "has no prefix length"),
        ("10.3/16", "not a valid IP address"),
        ("10.3.0.0/255.255.0.0", "impossible prefix length"),
    ],
)
def test_parse_cidr_refuses(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_cidr(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("example.com", True),
        ("example.com.", True),  # fully qualified
        ("localhost", True),
        ("a-b.example.com", True),
        ("xn--bcher-kva.example", True),
        ("a" * 63 + ".com", True),
        ("a" * 64 + ".com", False),  # a label is at most 63 characters
        (".".join(["a" * 63] * 3 + ["a" * 61]), True),  # 253 characters
        (".".join(["a" * 63] * 3 + ["a" * 62]), False),  # 254 characters
        ("-a.example.com", False),
        ("a-.example.com", False),
        ("a_b.example.com", False),
        ("a..example.com", False),
        ("*.example.com", False),
        ("https://example.com", False),
        ("example.com:443", False),
        ("", False),
        ("192.0.2.1", False),  # an address, not a name
        ("2001:db8::1", False),
    ],
)
def test_is_domain(text: str, expected: bool) -> None:
    assert is_domain(text) is expected


# A top-level label may not be all digits (RFC 3696 §2): mistyped addresses are not names.
@pytest.mark.parametrize("text", ["10.1", "999.1.1.1", "192.0.2.300"])
def test_is_domain_refuses_numeric_names(text: str) -> None:
    assert not is_domain(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("192.0.2.1", True), ("2001:db8::1", True), ("example.com", False), ("10.1", False), ("", False)],
)
def test_is_ip(text: str, expected: bool) -> None:
    assert is_ip(text) is expected


# ---------------------------------------------------------------------------
# Labelled ranges and the overlap sweep


def cidr(label: str, text: str) -> Labelled:
    return Labelled(label, parse_cidr(text))


def names(pairs: list[tuple[Labelled, Labelled]]) -> list[tuple[str, str]]:
    return [(a.label, b.label) for a, b in pairs]


def test_labelled_text() -> None:
    assert str(cidr("pods", "10.3.0.0/16")) == "pods 10.3.0.0/16"
    assert str(host("node cp1", IPAddress("192.0.2.11"))) == "node cp1 192.0.2.11"
    assert str(host("node cp1", IPAddress("2001:db8::11"))) == "node cp1 2001:db8::11"
    assert str(Labelled("bridge", IPRange("172.17.0.0", "172.18.255.255"))) == "bridge 172.17.0.0-172.18.255.255"


def test_host_is_a_single_address() -> None:
    single = host("n", IPAddress("2001:db8::1"))
    assert single.first == single.last == int(IPAddress("2001:db8::1"))
    assert single.version == 6


OVERLAP_CASES = [
    pytest.param([cidr("a", "10.0.0.0/16"), cidr("b", "10.0.128.0/17")], [("a", "b")], id="nested"),
    pytest.param([cidr("b", "10.0.128.0/17"), cidr("a", "10.0.0.0/16")], [("a", "b")], id="nested-given-inner-first"),
    pytest.param([cidr("a", "10.0.0.0/16"), cidr("b", "10.0.0.0/16")], [("a", "b")], id="identical"),
    pytest.param([cidr("a", "10.0.0.0/24"), cidr("b", "10.0.1.0/24")], [], id="adjacent-not-overlapping"),
    pytest.param([cidr("a", "10.0.0.0/24"), cidr("b", "10.0.2.0/24")], [], id="apart"),
    pytest.param([cidr("a", "0.0.0.0/0"), cidr("b", "::/0")], [], id="families-never-overlap"),
    pytest.param(
        [cidr("a", "10.0.0.0/8"), cidr("b", "fd00::/8"), cidr("c", "10.1.0.0/16"), cidr("d", "fd00:1::/32")],
        [("a", "c"), ("b", "d")],
        id="mixed-families",
    ),
    pytest.param(
        [cidr("big", "10.0.0.0/8"), cidr("x", "10.1.0.0/16"), cidr("y", "10.2.0.0/16"), cidr("x1", "10.1.2.0/24")],
        [("big", "x"), ("big", "x1"), ("x", "x1"), ("big", "y")],
        id="every-pair-in-a-chain",
    ),
    pytest.param(
        [
            Labelled("bridge", IPRange("172.16.0.0", "172.32.255.255")),
            cidr("svc", "172.32.0.0/16"),
            cidr("ok", "172.33.0.0/16"),
        ],
        [("bridge", "svc")],
        id="range-and-cidr",
    ),
    pytest.param(
        [host("n1", IPAddress("192.0.2.1")), host("n2", IPAddress("192.0.2.1")), host("n3", IPAddress("192.0.2.2"))],
        [("n1", "n2")],
        id="duplicate-hosts",
    ),
    pytest.param([], [], id="empty"),
]


@pytest.mark.parametrize(("ranges", "expected"), OVERLAP_CASES)
def test_find_overlaps_within_one_set(ranges: list[Labelled], expected: list[tuple[str, str]]) -> None:
    assert sorted(names(find_overlaps(ranges))) == sorted(expected)


def test_find_overlaps_one_sided_pairs_left_with_right_only() -> None:
    cidrs = [cidr("pods", "10.3.0.0/16"), cidr("services", "10.3.128.0/17")]  # overlap each other: not reported
    nodes = [
        host("n1", IPAddress("10.3.0.5")),
        host("n2", IPAddress("10.3.200.1")),
        host("n3", IPAddress("192.0.2.1")),
        host("n4", IPAddress("10.3.0.5")),
    ]
    assert sorted(names(find_overlaps(cidrs, nodes))) == [
        ("pods", "n1"),
        ("pods", "n2"),
        ("pods", "n4"),
        ("services", "n2"),
    ]


def test_find_overlaps_one_sided_keeps_left_first_whatever_the_order() -> None:
    inner, outer = cidr("inner", "10.3.1.0/24"), cidr("outer", "10.0.0.0/8")
    assert names(find_overlaps([inner], [outer])) == [("inner", "outer")]
    assert names(find_overlaps([outer], [inner])) == [("outer", "inner")]


def test_find_overlaps_one_sided_with_an_empty_side() -> None:
    assert find_overlaps([cidr("a", "10.0.0.0/8")], []) == []
    assert find_overlaps([], [cidr("a", "10.0.0.0/8")]) == []


def test_find_overlaps_at_scale_is_exact() -> None:
    # 1,000 distinct /32 hosts, one of them repeated, against a /24 holding 254 of them.
    hosts = [host(f"h{i}", IPAddress(int(IPAddress("10.0.0.1")) + i)) for i in range(1000)]
    hosts.append(host("again", hosts[500].network.ip))
    assert names(find_overlaps(hosts)) == [("h500", "again")]
    inside = find_overlaps([cidr("net", "10.0.1.0/24")], hosts)
    assert len(inside) == 256 + 1  # 10.0.1.0-10.0.1.255 are h255..h510, plus the repeated h500


@pytest.mark.parametrize(
    ("inner", "outer", "expected"),
    [
        (host("gw", IPAddress("10.20.0.1")), [cidr("pods", "10.20.0.0/22")], True),
        (host("gw", IPAddress("10.20.4.1")), [cidr("pods", "10.20.0.0/22")], False),
        (cidr("sub", "10.20.0.0/22"), [cidr("pods", "10.20.0.0/22")], True),  # a range lies within itself
        (cidr("wide", "10.20.0.0/21"), [cidr("pods", "10.20.0.0/22")], False),  # overlapping is not within
        (host("gw", IPAddress("fd00::1")), [cidr("v4", "10.0.0.0/8"), cidr("v6", "fd00::/64")], True),
        (host("gw", IPAddress("fd00::1")), [cidr("v4", "0.0.0.0/0")], False),  # never across families
        (host("gw", IPAddress("10.0.0.1")), [], False),
    ],
)
def test_within(inner: Labelled, outer: list[Labelled], expected: bool) -> None:
    assert within(inner, outer) is expected
