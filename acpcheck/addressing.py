"""Address arithmetic, all of it on netaddr, in one place.

The plan model uses the parsers; the network checks use ``find_overlaps``, which
sorts the ranges once and sweeps them (O((n + k) log n) for k overlaps), so a
500-node plan compared against every CIDR stays cheap.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from netaddr import INET_PTON, AddrFormatError, IPAddress, IPNetwork, IPRange

# RFC 1123 host name, each label 1..63, whole name at most 253 characters.
_LABEL = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
_DOMAIN = re.compile(rf"^{_LABEL}(\.{_LABEL})*\.?$")


def parse_ip(text: str) -> IPAddress:
    """A single IPv4 or IPv6 address; ValueError with a readable message otherwise."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("must be an IP address")
    try:
        # INET_PTON refuses legacy forms such as "10.1" or "010.0.0.1" that
        # inet_aton would quietly reinterpret.
        return IPAddress(text.strip(), flags=INET_PTON)
    except (AddrFormatError, ValueError):
        raise ValueError(f"{text!r} is not a valid IP address") from None


def parse_cidr(text: str) -> IPNetwork:
    """A canonical CIDR such as ``10.3.0.0/16``; host bits must be zero."""
    if not isinstance(text, str) or "/" not in text:
        raise ValueError(f"{text!r} is not a CIDR (expected address/prefix, e.g. 10.3.0.0/16)")
    address, _, prefix = text.strip().partition("/")
    ip = parse_ip(address)
    if not prefix:
        raise ValueError(f"{text!r} has no prefix length (e.g. {address}/16)")
    if not prefix.isdigit() or not 0 <= int(prefix) <= width(ip.version):
        raise ValueError(
            f"{text!r} has an impossible prefix length (IPv{ip.version} allows /0 to /{width(ip.version)})"
        )
    network = IPNetwork(f"{ip}/{prefix}")
    if network.ip != network.network:
        raise ValueError(f"{text!r} has host bits set; did you mean {network.cidr}?")
    return network


def is_ip(text: str) -> bool:
    """True when ``text`` parses as an IP address."""
    try:
        parse_ip(text)
    except ValueError:
        return False
    return True


def is_domain(text: str) -> bool:
    """True for a syntactically valid DNS name of at most 253 characters.

    A name whose last label is all digits is not a domain (RFC 3696 §2): that is
    how a mistyped address such as ``192.0.2.300`` or ``10.1`` is kept out.
    """
    if not isinstance(text, str) or len(text.rstrip(".")) > 253 or not _DOMAIN.match(text):
        return False
    return not text.rstrip(".").rsplit(".", 1)[-1].isdigit()


def width(version: int) -> int:
    """Address width in bits: 32 for IPv4, 128 for IPv6."""
    return 32 if version == 4 else 128


def family_name(version: int) -> str:
    """4 -> 'IPv4'."""
    return f"IPv{version}"


@dataclass(frozen=True)
class Labelled:
    """An address range with a human label, e.g. ('pod CIDR', 10.3.0.0/16)."""

    label: str
    network: IPNetwork | IPRange

    @property
    def first(self) -> int:
        return int(self.network.first)

    @property
    def last(self) -> int:
        return int(self.network.last)

    @property
    def version(self) -> int:
        return int(self.network.version)

    def __str__(self) -> str:
        network = self.network
        if isinstance(network, IPNetwork):
            text = str(network.ip) if network.size == 1 else str(network.cidr)
        else:
            text = f"{network[0]}-{network[-1]}"
        return f"{self.label} {text}"


def host(label: str, address: IPAddress) -> Labelled:
    """A single address as a one-address range."""
    return Labelled(label, IPNetwork(f"{address}/{width(address.version)}"))


def find_overlaps(left: Iterable[Labelled], right: Iterable[Labelled] | None = None) -> list[tuple[Labelled, Labelled]]:
    """Every overlapping pair, by sweeping ranges sorted by start address.

    With one argument, pairs within that set; with two, only pairs with one
    range from each side (left first). Families never overlap each other.

    O((n + k) log n) for n ranges and k pairs: the ranges still open at each start
    address are kept in a heap by end address, one heap per side, so a range costs
    a push and a pop however many ranges of its *own* side it overlaps (1,000 nodes
    on one address checked against a CIDR are 1,000 pushes, not 500,000 steps).
    Within one set, k itself is n²/2 when every range overlaps every other: a
    caller that only needs to know which ranges coincide groups them instead
    (ACP-NET-017 groups node addresses by value).
    """
    tagged: list[tuple[int, int, int, int, Labelled]] = []
    for side, ranges in ((0, left), (1, right or ())):
        for item in ranges:
            tagged.append((item.version, item.first, item.last, side, item))
    tagged.sort(key=lambda entry: (entry[0], entry[1], -entry[2]))
    pairs: list[tuple[Labelled, Labelled]] = []
    # Per side, (last, order, item) of the ranges that started so far and may still be open.
    open_ranges: tuple[list[tuple[int, int, Labelled]], list[tuple[int, int, Labelled]]] = ([], [])
    current_version = None
    for order, (version, first, last, side, item) in enumerate(tagged):
        if version != current_version:
            open_ranges, current_version = ([], []), version
        for heap in open_ranges:
            while heap and heap[0][0] < first:  # ended before this one starts
                heapq.heappop(heap)
        own, other = (0, 0) if right is None else (side, 1 - side)
        # Every range left in the other heap started at or before ``first`` and ends at
        # or after it: each is an overlap. In start order, as the pairs always came.
        for _, _, found in sorted(open_ranges[other], key=lambda entry: entry[1]):
            pairs.append((found, item) if right is None or side == 1 else (item, found))
        heapq.heappush(open_ranges[own], (last, order, item))
    return pairs


def within(inner: Labelled, outer: Sequence[Labelled]) -> bool:
    """True when ``inner`` lies entirely inside one of ``outer``."""
    return any(o.version == inner.version and o.first <= inner.first and inner.last <= o.last for o in outer)
