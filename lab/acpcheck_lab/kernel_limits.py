"""Kernel limits sized for the lab while it is up: the neighbour (ARP) table and the
queue that ARP broadcasts pass through.

Why this exists: every lab node is a network namespace of *this* kernel, so limits
that a real machine applies to its own traffic apply here to all nodes together:

- ``net.ipv4.neigh.default.gc_thresh1..3``: Linux keeps one IPv4 neighbour table for
  all namespaces, bounded by ``gc_thresh3`` (1,024 entries by default) for the sum of
  them. A node that talks to 59 others needs 59 entries, so a 60-node lab whose nodes
  all probe each other needs 60 × 59 = 3,540: far past 1,024. Past the bound the
  kernel cannot resolve a new neighbour ("neighbour table overflow"), the first packet
  to it is dropped, and every connection attempt times out. That made every node of a
  healthy 60-node lab FAIL ACP-CONN-001 (issue 16), while 30 nodes (870 entries)
  passed.
- ``net.core.netdev_max_backlog``: a broadcast on the lab's bridge (every ARP request)
  is copied to every node's veth, and each copy waits in the receiving CPU's backlog,
  1,000 packets long by default. With 1,000 nodes one ARP request fills it, and
  whatever else arrives meanwhile (SYNs, ARP replies) is dropped: a 1,000-node run
  dropped millions of packets, took twice as long and lost a node ("No route to host").

Real machines are not affected: each has its own table and its own backlog for its
own peers. So ``up`` raises these limits to fit the lab (only ever raises them; the
memory is used per entry or packet actually held) and records the values it found in
``/run`` (a tmpfs: gone at boot, like the sysctls themselves), and ``down`` puts them
back. Several labs share the kernel: each ``up`` raises the limits for the nodes of all
labs up (the first raise records what it found), and the ``down`` of the last lab puts
them back, so one record serves them all.
"""

from __future__ import annotations

import json
from pathlib import Path

SYSCTLS = Path("/proc/sys")
LIMITS = (
    "net/ipv4/neigh/default/gc_thresh1",
    "net/ipv4/neigh/default/gc_thresh2",
    "net/ipv4/neigh/default/gc_thresh3",
    "net/core/netdev_max_backlog",
)
RECORD = Path("/run/acpcheck-lab/kernel-limits.json")
#: Neighbour entries beyond the nodes' own: the host's, the proxy's, the load balancer's, slack.
SPARE_ENTRIES = 4096
#: Broadcasts in flight at once whose copies to every node the backlog must hold.
BROADCASTS_AT_ONCE = 32


def wanted_limits(nodes: int) -> dict[str, int]:
    """Limits for ``nodes`` lab nodes: a neighbour table that holds every node's entry
    for every other node (hard limit ``nodes² + spare``; garbage collection starts at
    a quarter and gets aggressive at half of it), and a backlog that holds the copies
    of BROADCASTS_AT_ONCE broadcasts to every node."""
    hard = nodes * nodes + SPARE_ENTRIES
    return {
        "net/ipv4/neigh/default/gc_thresh1": hard // 4,
        "net/ipv4/neigh/default/gc_thresh2": hard // 2,
        "net/ipv4/neigh/default/gc_thresh3": hard,
        "net/core/netdev_max_backlog": BROADCASTS_AT_ONCE * (nodes + 16),
    }


def read_limits(root: Path = SYSCTLS) -> dict[str, int]:
    return {name: int((root / name).read_text().split()[0]) for name in LIMITS}


def raise_limits(nodes: int, *, root: Path = SYSCTLS, record: Path = RECORD) -> dict[str, int]:
    """Raise the limits for a lab of ``nodes`` (never lower one); the first raise
    since the last ``restore_limits`` records the values found. Returns what is set."""
    current = read_limits(root)
    if not record.exists():
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps(current) + "\n")
    wanted = wanted_limits(nodes)
    # Highest threshold first: a reader between two writes never sees thresh1 > thresh3.
    for name in reversed(LIMITS):
        if wanted[name] > current[name]:
            (root / name).write_text(f"{wanted[name]}\n")
    return read_limits(root)


def restore_limits(*, root: Path = SYSCTLS, record: Path = RECORD) -> bool:
    """Put back the limits ``raise_limits`` found (lowest threshold first; never above
    what is set now); False when nothing was recorded."""
    try:
        saved = json.loads(record.read_text())
    except (FileNotFoundError, ValueError):
        record.unlink(missing_ok=True)
        return False
    current = read_limits(root)
    for name in LIMITS:
        value = saved.get(name) if isinstance(saved, dict) else None
        # Only ever back down to what was found: a record can never raise a limit.
        if isinstance(value, int) and 0 < value < current[name]:
            (root / name).write_text(f"{value}\n")
    record.unlink(missing_ok=True)
    return True
