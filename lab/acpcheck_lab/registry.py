"""The labs that are up on this machine, so that several can be up at once.

One JSON file per lab in ``/run/acpcheck-lab/labs`` (a tmpfs: gone at boot, like the
labs themselves): ``up`` writes it, under a lock, *before* it builds anything, and
``down`` removes it. Under the same lock ``up`` reads the others to pick a free name and
free subnets, and to refuse, naming the lab in the way and its state dir, a name, a
state dir or subnets another lab has. Two ``up``\\ s at once therefore never pick the
same name or subnets, although they build their labs in parallel.

An entry counts as up while the kernel has objects with its lab's prefix, or while the
``up`` that wrote it still runs (it may not have built anything yet); other entries are
stale (their lab was taken down by ``down --all``, or its ``up`` was killed before it
built anything) and are dropped by the next ``up``.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from acpcheck_lab.host import lab_links, lab_namespaces
from acpcheck_lab.layout import LABS_PREFIX, LabNames, LabSubnets

REGISTRY_DIR = Path("/run/acpcheck-lab/labs")
LOCK_FILE = Path("/run/acpcheck-lab/labs.lock")
#: The lab name in a kernel object's name; an empty name is an older acpcheck's ``acplab-``.
_OBJECT_NAME = re.compile(re.escape(LABS_PREFIX) + r"([a-z0-9]{0,2})-")


@dataclass(frozen=True)
class LabEntry:
    """One lab on this machine, as its ``up`` recorded it."""

    name: str
    state_dir: Path
    subnets: LabSubnets
    nodes: int
    #: pid and start time (clock ticks after boot) of the ``up`` that wrote the entry
    owner_pid: int
    owner_started: int

    @property
    def names(self) -> LabNames:
        return LabNames(self.name)

    def __str__(self) -> str:
        return f"lab {self.name!r} (state {self.state_dir})"

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "stateDir": str(self.state_dir),
            "subnets": self.subnets.as_dict(),
            "nodes": self.nodes,
            "ownerPid": self.owner_pid,
            "ownerStarted": self.owner_started,
        }

    @classmethod
    def from_dict(cls, data: dict) -> LabEntry:
        return cls(
            data["name"],
            Path(data["stateDir"]),
            LabSubnets.from_dict(data["subnets"]),
            int(data["nodes"]),
            int(data["ownerPid"]),
            int(data["ownerStarted"]),
        )

    @property
    def building(self) -> bool:
        """Whether the ``up`` that wrote this entry still runs (the same process: a
        reused pid has another start time)."""
        return process_started(self.owner_pid) == self.owner_started

    @property
    def is_up(self) -> bool:
        prefix = self.names.prefix
        return bool(lab_links(prefix) or lab_namespaces(prefix)) or self.building


def process_started(pid: int) -> int | None:
    """A process's start time (field 22 of /proc/PID/stat), None if it does not exist."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


@contextmanager
def locked(lock_file: Path = LOCK_FILE) -> Iterator[None]:
    """Hold the registry's lock: one ``up`` at a time picks a name and subnets."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def entries(directory: Path = REGISTRY_DIR) -> list[LabEntry]:
    """Every recorded lab, up or stale (unreadable files are skipped), by name."""
    found = []
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        try:
            found.append(LabEntry.from_dict(json.loads(path.read_text())))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return found


def labs_up(directory: Path = REGISTRY_DIR) -> list[LabEntry]:
    return [entry for entry in entries(directory) if entry.is_up]


def find(state_dir: Path, directory: Path = REGISTRY_DIR) -> LabEntry | None:
    """The recorded lab with this state dir, up or not."""
    return next((entry for entry in entries(directory) if entry.state_dir == state_dir), None)


def find_by_name(name: str, directory: Path = REGISTRY_DIR) -> LabEntry | None:
    return next((entry for entry in entries(directory) if entry.name == name), None)


def claim(entry: LabEntry, directory: Path = REGISTRY_DIR) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{entry.name}.json"
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(entry.as_dict(), indent=2) + "\n")
    os.replace(temporary, path)


def release(name: str, directory: Path = REGISTRY_DIR) -> None:
    (directory / f"{name}.json").unlink(missing_ok=True)


def drop_stale(directory: Path = REGISTRY_DIR) -> None:
    for entry in entries(directory):
        if not entry.is_up:
            release(entry.name, directory)


def unrecorded_objects(recorded: list[LabEntry]) -> list[str]:
    """Lab namespaces and links of no recorded lab: a lab of an older acpcheck, or one
    whose registry entry is gone. Their subnets are unknown, so ``up`` refuses."""
    names = {entry.name for entry in recorded}
    found = []
    for name in lab_namespaces() + lab_links():
        match = _OBJECT_NAME.match(name)
        if match is None or match.group(1) not in names:
            found.append(name)
    return sorted(set(found))


def free_name(taken: set[str]) -> str | None:
    """The first number (1, 2, … 99) no lab uses as its name; None if all are taken."""
    return next((str(number) for number in range(1, 100) if str(number) not in taken), None)
