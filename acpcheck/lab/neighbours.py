"""The kernel's neighbour (ARP) table, sized for the lab while it is up.

Why this exists: every lab node is a network namespace of *this* kernel, and Linux
keeps one IPv4 neighbour table for all namespaces together, bounded by
``net.ipv4.neigh.default.gc_thresh3`` (1,024 entries by default) for the sum of them.
A node that talks to 59 others needs 59 entries, so a 60-node lab whose nodes all
probe each other needs 60 × 59 = 3,540: far past 1,024. Past the bound the kernel
cannot resolve a new neighbour ("neighbour table overflow"), the first packet to it
is dropped, and every connection attempt times out. That made every node of a
healthy 60-node lab FAIL ACP-CONN-001 (issue 16), while 30 nodes (870 entries)
passed. Real machines are not affected: each has its own table for its own peers.

So ``up`` raises the three thresholds to fit ``nodes²`` entries (only ever raises
them; memory is used per entry actually created, 336 bytes each) and records the
values it found in ``/run`` (a tmpfs: gone at boot, like the sysctls themselves), and
``down`` puts them back. One lab per machine, so one record.
"""

from __future__ import annotations

import json
from pathlib import Path

SYSCTL_DIR = Path("/proc/sys/net/ipv4/neigh/default")
THRESHOLDS = ("gc_thresh1", "gc_thresh2", "gc_thresh3")
RECORD = Path("/run/acpcheck-lab/neighbour-limits.json")
#: Entries beyond the nodes' own: the host's, the proxy's, the load balancer's, slack.
SPARE_ENTRIES = 4096


def wanted_limits(nodes: int) -> dict[str, int]:
    """Thresholds that hold every node's entry for every other node: hard limit
    (gc_thresh3) ``nodes² + spare``; garbage collection starts at a quarter and gets
    aggressive at half of it."""
    hard = nodes * nodes + SPARE_ENTRIES
    return {"gc_thresh1": hard // 4, "gc_thresh2": hard // 2, "gc_thresh3": hard}


def read_limits(directory: Path = SYSCTL_DIR) -> dict[str, int]:
    return {name: int((directory / name).read_text().split()[0]) for name in THRESHOLDS}


def raise_limits(nodes: int, *, directory: Path = SYSCTL_DIR, record: Path = RECORD) -> dict[str, int]:
    """Raise the thresholds for a lab of ``nodes`` (never lower one); the first raise
    since the last ``restore_limits`` records the values found. Returns what is set."""
    current = read_limits(directory)
    if not record.exists():
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps(current) + "\n")
    wanted = wanted_limits(nodes)
    # gc_thresh3 first when raising: the kernel does not check the order, but a reader
    # of the sysctls in between should never see thresh1 > thresh3.
    for name in reversed(THRESHOLDS):
        if wanted[name] > current[name]:
            (directory / name).write_text(f"{wanted[name]}\n")
    return read_limits(directory)


def restore_limits(*, directory: Path = SYSCTL_DIR, record: Path = RECORD) -> bool:
    """Put back the thresholds ``raise_limits`` found (lowest first); False when nothing was recorded."""
    try:
        saved = json.loads(record.read_text())
    except (FileNotFoundError, ValueError):
        record.unlink(missing_ok=True)
        return False
    for name in THRESHOLDS:
        value = saved.get(name)
        if isinstance(value, int) and value > 0:
            (directory / name).write_text(f"{value}\n")
    record.unlink(missing_ok=True)
    return True
