"""The journal of one remediation run: append-only JSON lines, fsync'd, written BEFORE
each change, so that whatever stops an apply (Ctrl-C, a killed runner, a lost
connection, a power cut on the controller) leaves what ``rollback`` needs.

Layout (``reports/out/<run-id>/journal/`` or ``--journal-dir``)::

    run.json            the run: id, when, acpcheck version, the plan (path and text: it
                        holds only references to secrets, never their values), options
    <target>.jsonl      one per node (cluster steps later: one for the cluster): records
    .lock               held (flock) by the apply or rollback using the journal

Records of a target, in order (``seq`` counts per target):

    {"seq": 1, "at": "…Z", "target": "node:cp1", "event": "intent", "step": "ACP-NODE-010/sshd-usedns",
     "action": 0, "kind": "file", "undo": {…what restores the state before…}}
    {"seq": 2, …, "event": "done", "ref": 1}              the change was made
    {"seq": 3, …, "event": "failed", "ref": 1, "error": "…"}
    {"seq": 9, …, "event": "undone", "ref": 1, "note": "…"}  written by an undo (rollback, or a failed step's own)
    {"seq": 10, …, "event": "undo-failed", "ref": 1, "error": "…"}

An ``intent`` without ``done`` is a change that may or may not have happened: its undo
restores the recorded state either way (every undo first looks at the node). A line
cut short by a crash can only be the last one of a file (each record is fsync'd before
the next change); readers skip it and say so.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

JOURNAL_SCHEMA = "acpcheck/journal/v1"
HEADER = "run.json"


class JournalError(Exception):
    """A journal that cannot be used: missing, damaged, or held by another process."""


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def file_name(target: str) -> str:
    """``node:cp1`` -> ``node-cp1.jsonl``; any character outside [A-Za-z0-9._-] becomes "_"
    (records carry the exact target, so a collision of names costs nothing)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", target.replace(":", "-", 1)) + ".jsonl"


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class TargetJournal:
    """The records of one target; one thread writes it."""

    path: Path
    target: str
    seq: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def append(self, event: str, **fields: Any) -> int:
        """Write one record and fsync it; its ``seq``."""
        with self._lock:
            self.seq += 1
            record = {"seq": self.seq, "at": _now(), "target": self.target, "event": event, **fields}
            line = json.dumps(record, sort_keys=False, separators=(",", ":")) + "\n"
            new = not self.path.exists()
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(line)
                handle.flush()
                os.fsync(handle.fileno())
            if new:
                _fsync_directory(self.path.parent)
            return self.seq


class Journal:
    """A run's journal directory."""

    def __init__(self, directory: Path, header: dict[str, Any]):
        self.directory = directory
        self.header = header
        self._targets: dict[str, TargetJournal] = {}
        self._lock = threading.Lock()

    @property
    def run_id(self) -> str:
        return str(self.header["run"])

    @classmethod
    def create(cls, directory: Path, header: dict[str, Any]) -> Journal:
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o700)  # it holds copies of node files
        head = directory / HEADER
        if head.exists():
            raise JournalError(f"{directory} already holds the journal of run {json.loads(head.read_text()).get('run')}; choose another directory")
        document = {"schema": JOURNAL_SCHEMA, "started": _now(), **header}
        temporary = head.with_suffix(".tmp")
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(document, handle, indent=2)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(head)
        _fsync_directory(directory)
        return cls(directory, document)

    @classmethod
    def open(cls, directory: Path) -> Journal:
        head = directory / HEADER
        if not head.is_file():
            raise JournalError(f"no remediation journal in {directory} (no {HEADER})")
        try:
            document = json.loads(head.read_text(encoding="utf-8"))
        except ValueError as error:
            raise JournalError(f"{head}: damaged: {error}") from None
        if not isinstance(document, dict) or document.get("schema") != JOURNAL_SCHEMA:
            raise JournalError(f"{head}: not an acpcheck journal ({JOURNAL_SCHEMA})")
        journal = cls(directory, document)
        for target, records, _ in journal.read():
            journal.writer(target).seq = max((r["seq"] for r in records), default=0)
        return journal

    def writer(self, target: str) -> TargetJournal:
        with self._lock:
            if target not in self._targets:
                self._targets[target] = TargetJournal(self.directory / file_name(target), target)
            return self._targets[target]

    def read(self) -> list[tuple[str, list[dict[str, Any]], str | None]]:
        """Every target's records in order, and a warning when a file ended in a cut line."""
        found = []
        for path in sorted(self.directory.glob("*.jsonl")):
            records: list[dict[str, Any]] = []
            warning = None
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
            for number, line in enumerate(lines, start=1):
                try:
                    record = json.loads(line)
                except ValueError:
                    if number == len(lines):
                        warning = f"{path.name}: the last record was cut short (the runner stopped while writing it); it is ignored"
                        continue
                    raise JournalError(f"{path}:{number}: damaged record") from None
                records.append(record)
            if records:
                found.append((str(records[0]["target"]), records, warning))
        return found

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the journal for one apply or rollback; another process gets JournalError."""
        with open(self.directory / ".lock", "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise JournalError(f"{self.directory} is in use by another acpcheck remediate or rollback") from None
            yield
