"""The small value types inside node facts: an address, a listener, a mount, a disk's space."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Address:
    interface: str
    family: int  # 4 or 6
    address: str
    prefix_length: int


@dataclass(frozen=True)
class Listener:
    protocol: str  # tcp | udp
    address: str
    port: int
    process: str = ""


@dataclass(frozen=True)
class Mount:
    source: str
    target: str
    fstype: str
    options: tuple[str, ...]


@dataclass(frozen=True)
class DiskSpace:
    path: str  # the path asked about
    mount: str  # the mount point that holds it
    size_kib: int
    available_kib: int
