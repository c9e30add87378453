"""The journal of one remediation run: append-only JSON lines, fsync'd, written BEFORE
each change, so that whatever stops an apply (Ctrl-C, a killed runner, a lost
connection, a power cut on the controller) leaves what ``rollback`` needs; and
verified whole before ``rollback`` touches any node, so that a journal damaged or
edited after it was written is refused instead of acted on as root.

Layout (``reports/out/<run-id>/journal/`` or ``--journal-dir``)::

    run.json            the run (schema acpcheck/journal/v2): id, when, the plan (path and
                        text: it holds only references to secrets, never their values),
                        options, the backup root on the nodes, every target's file, and
                        ``digest``: the sha256 of all of it
    <target>.jsonl      one per target (node, or the cluster), created with the journal:
                        its records, each chained to the one before
    <target>.head       the last record's seq and digest, replaced (atomically) after
                        each record: what shows that records were cut off the end
    .lock               held (flock) by the apply or rollback using the journal

Records of a target, in order (``seq`` counts per target from 1)::

    {"seq": 1, "at": "…Z", "target": "node:cp1", "event": "open", "run": "…",
     "prev": <run.json's digest>, "digest": "…"}
    {"seq": 2, …, "event": "intent", "step": "ACP-NODE-010/sshd-usedns", "action": 0,
     "kind": "file", "undo": {…}, "prev": …, "digest": …}
    {"seq": 3, …, "event": "done", "ref": 2, …}               the change was made
    {"seq": 4, …, "event": "failed", "ref": 2, "error": "…", …}
    {"seq": 9, …, "event": "undone", "ref": 2, "note": "…", …}  written by an undo (rollback, or a failed step's own)
    {"seq": 10, …, "event": "undo-failed", "ref": 2, "error": "…", …}

``digest`` is the sha256 of the record's canonical JSON (keys sorted, no spaces, ASCII)
without ``digest`` itself; ``prev`` is the digest of the record before it (of run.json
for the first). So an edited record no longer matches its digest, and a removed,
reordered or inserted one breaks the chain; the head file catches records cut off the
end; run.json lists every target's file, so a deleted file is missed. ``Journal.open``
checks all of that and every undo record's fields (``ActionKind.verify``), and raises
``JournalError`` (exit 4, naming the file, line and field) on the first thing wrong.
These digests carry no key: they catch damage and edits, not a forger who rewrites
every digest after an edit; against that, an undo record can only name one of the
known undo commands (``commands``), a backup where this run put it, and bytes that
match their own digest.

An ``intent`` without ``done`` is a change that may or may not have happened: its undo
restores the recorded state either way (every undo first looks at the node). A crash
leaves at most a cut last line (ignored, and cut off before the next record is
written) and a head one record behind the file (the record was written, its head not).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import stat
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acpcheck.errors import InputError, Problem
from acpcheck.remediation import records

JOURNAL_SCHEMA = "acpcheck/journal/v2"
#: Formats an earlier acpcheck wrote, and why this one does not roll them back.
OLD_SCHEMAS = {
    "acpcheck/journal/v1": (
        "was written by an earlier acpcheck (journal format acpcheck/journal/v1): its records carry no digests, so "
        "nothing shows whether they were changed since, and this acpcheck does not act on them as root; roll the run "
        "back with the acpcheck that wrote it, or restore the nodes by hand (each intent record says what changed)"
    ),
}
HEADER = "run.json"
EVENTS = frozenset({"open", "intent", "done", "failed", "undone", "undo-failed"})
#: Events that refer to an intent (``ref``).
FOLLOW_UPS = frozenset({"done", "failed", "undone", "undo-failed"})
_FILE = re.compile(r"[A-Za-z0-9._-]{1,200}\.jsonl")


class JournalError(InputError):
    """A journal that cannot be used: missing, damaged, changed since it was written,
    of an old format, or held by another process. Exit 4, naming the file."""

    def __init__(self, file: str | Path, message: str, *, line: int | None = None, field: str = ""):
        super().__init__([Problem(str(file), line, field, message)])


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def canonical(document: Any) -> bytes:
    """The bytes a digest is taken of: keys sorted, no spaces, ASCII (so a record's
    digest does not depend on how its line was written)."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode(
        "ascii"
    )


def digest_of(document: dict[str, Any]) -> str:
    """sha256 of ``document`` without its own ``digest``."""
    return hashlib.sha256(canonical({key: value for key, value in document.items() if key != "digest"})).hexdigest()


def file_name(target: str) -> str:
    """``node:cp1`` -> ``node-cp1.jsonl``; any character outside [A-Za-z0-9._-] becomes "_"
    (run.json maps each target to its file, so two targets never share one)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", target.replace(":", "-", 1))[:150] + ".jsonl"


def _head_name(journal_file: str) -> str:
    return journal_file.removesuffix(".jsonl") + ".head"


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _read(path: Path) -> bytes:
    """A journal file through the hardened reader: a regular file within the size
    limit (a FIFO is refused at once, never waited on); JournalError otherwise."""
    from acpcheck.yamlsource import read_input

    try:
        return read_input(path)
    except InputError as error:
        raise JournalError(path, error.problems[0].message) from None


def _read_document(path: Path) -> Any:
    """One whole-file JSON document of the journal (the header, a head file); JournalError naming it otherwise."""
    try:
        return _parse(_read(path))
    except ValueError as error:
        raise JournalError(path, f"damaged: {error}") from None


def _parse(text: bytes) -> Any:
    """Strict JSON: UTF-8, no duplicate keys (what a digest covers is what is read), no NaN."""
    from acpcheck.yamlsource import strict_json

    return strict_json(text.decode("utf-8"))


# ---------------------------------------------------------------------------
# Writing


@dataclass
class TargetJournal:
    """The records of one target; one thread writes it (the journal's flock keeps other processes out)."""

    path: Path
    target: str
    seq: int
    digest: str  # of the last record: the next one's ``prev``
    records: list[dict[str, Any]] = field(default_factory=list)
    warning: str | None = None  # the file ended in a line cut short by a crash
    #: Bytes of the file up to its last whole record: a cut line after it is cut off before the next append.
    whole: int | None = None
    #: Bytes of the file as verified (and as appended since): another process that wrote to it shows.
    size: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def head_path(self) -> Path:
        return self.path.with_name(_head_name(self.path.name))

    def append(self, event: str, **fields: Any) -> int:
        """Write one record, fsync it, then its head; its ``seq``."""
        with self._lock:
            record = {
                "seq": self.seq + 1,
                "at": _now(),
                "target": self.target,
                "event": event,
                **fields,
                "prev": self.digest,
            }
            record["digest"] = digest_of(record)
            line = json.dumps(record, separators=(",", ":"), ensure_ascii=True) + "\n"
            with open(self.path, "r+b") as handle:
                if self.whole is not None:
                    handle.truncate(self.whole)  # a line cut short by a crash: never in the middle of the file
                    self.whole = None
                handle.seek(0, os.SEEK_END)
                handle.write(line.encode("ascii"))
                handle.flush()
                os.fsync(handle.fileno())
                self.size = handle.tell()
            self._write_head(record)
            self.seq, self.digest = record["seq"], record["digest"]
            self.records.append(record)
            return self.seq

    def _write_head(self, record: dict[str, Any]) -> None:
        temporary = self.head_path.with_name("." + self.head_path.name + ".tmp")
        _write_synced(
            temporary, canonical({"target": self.target, "seq": record["seq"], "digest": record["digest"]}) + b"\n"
        )
        temporary.replace(self.head_path)
        _fsync_directory(self.path.parent)


class Journal:
    """A run's journal directory: its header, and every target's verified records."""

    def __init__(self, directory: Path, header: dict[str, Any], targets: dict[str, TargetJournal]):
        self.directory = directory
        self.header = header
        self._targets = targets

    @property
    def run_id(self) -> str:
        return str(self.header["run"])

    @property
    def backup_root(self) -> str:
        return str(self.header["backupRoot"])

    @classmethod
    def create(cls, directory: Path, header: dict[str, Any], targets: Iterable[str] = ()) -> Journal:
        """The journal of a new run, with a file for each of ``targets``, made whole in a
        directory of its own next to ``directory`` and then renamed to it: another apply
        on the same ``--out`` finds either no journal or this one, complete."""
        from acpcheck.remediation.actions import BACKUP_ROOT

        problem = records.run_id(header.get("run"))
        if problem:
            raise JournalError(directory, f"the run id {problem}", field="run")
        directory.parent.mkdir(parents=True, exist_ok=True)
        if (directory / HEADER).exists() or os.path.lexists(directory / HEADER):
            raise cls._taken(directory)
        names: dict[str, str] = {}
        for target in dict.fromkeys(targets):
            name, number = file_name(target), 1
            while name in names.values():  # two targets that differ only in characters a file name cannot hold
                number += 1
                name = file_name(target).removesuffix(".jsonl") + f"-{number}.jsonl"
            names[target] = name
        document = {
            "schema": JOURNAL_SCHEMA,
            "started": _now(),
            "backupRoot": BACKUP_ROOT,
            **header,
            "targets": [{"target": target, "file": name} for target, name in names.items()],
        }
        document["digest"] = digest_of(document)
        staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".new", dir=directory.parent))
        try:
            os.chmod(staging, 0o700)  # it holds copies of node files
            _write_synced(staging / HEADER, json.dumps(document, indent=2).encode() + b"\n")
            writers = {}
            for target, name in names.items():
                path = staging / name
                path.touch()
                writer = TargetJournal(path, target, 0, document["digest"])
                writer.append("open", run=document["run"])
                writers[target] = writer
            _fsync_directory(staging)
            try:
                os.rename(staging, directory)  # atomic; refused when ``directory`` holds anything
            except OSError as error:
                if error.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                    raise cls._taken(directory) from None
                raise
            _fsync_directory(directory.parent)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        for writer in writers.values():
            writer.path = directory / writer.path.name
        return cls(directory, document, writers)

    @staticmethod
    def _taken(directory: Path) -> JournalError:
        try:
            run = json.loads(_read(directory / HEADER)).get("run")
        except (JournalError, ValueError, AttributeError):
            return JournalError(directory, "already exists and is not empty; choose another directory")
        return JournalError(directory, f"already holds the journal of run {run}; choose another directory")

    @classmethod
    def open(cls, directory: Path) -> Journal:
        """The journal in ``directory``, verified whole (see the module docstring); JournalError on anything wrong."""
        head = directory / HEADER
        if not directory.is_dir():
            raise JournalError(directory, "no remediation journal here (no such directory)")
        if not os.path.lexists(head):
            raise JournalError(directory, f"no remediation journal in it (no {HEADER})")
        document = _read_document(head)
        header = _verified_header(head, document)
        listed = {entry["file"]: entry["target"] for entry in header["targets"]}
        for path in sorted(directory.iterdir()):
            if (
                path.suffix in (".jsonl", ".head")
                and path.name not in listed
                and path.name.removesuffix(".head") + ".jsonl" not in listed
            ):
                raise JournalError(
                    path,
                    f"is not one of this run's journal files ({HEADER} does not list it): it was added, or renamed",
                )
        targets = {target: _verified_target(directory / name, target, header) for name, target in listed.items()}
        return cls(directory, header, targets)

    def writer(self, target: str) -> TargetJournal:
        if target not in self._targets:
            raise JournalError(self.directory, f"the journal has no file for {target}: it was made for other targets")
        return self._targets[target]

    def read(self) -> list[tuple[str, list[dict[str, Any]], str | None]]:
        """Every target's records in order (as verified, and as appended since), and a
        warning when a file ended in a cut line."""
        return [(target, list(journal.records), journal.warning) for target, journal in self._targets.items()]

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the journal for one apply or rollback; another process gets JournalError."""
        path = self.directory / ".lock"
        try:
            # O_NONBLOCK: a FIFO planted here is refused, never waited on
            descriptor = os.open(
                path, os.O_WRONLY | os.O_CREAT | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0), 0o600
            )
        except OSError as error:
            raise JournalError(path, f"cannot open the journal's lock: {error.strerror or error}") from None
        try:
            if not stat.S_ISREG(os.fstat(descriptor).st_mode):
                raise JournalError(path, "is not a regular file; remove it")
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise JournalError(self.directory, "is in use by another acpcheck remediate or rollback") from None
            for journal in self._targets.values():  # what was verified is still what is there
                if not os.path.isfile(journal.path) or os.path.getsize(journal.path) != journal.size:
                    raise JournalError(
                        journal.path,
                        "changed since it was verified (another acpcheck wrote to it meanwhile); run the command again",
                    )
            yield
        finally:
            os.close(descriptor)


# ---------------------------------------------------------------------------
# Verifying


def _verified_header(head: Path, document: Any) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise JournalError(head, "is not an acpcheck journal (not a JSON object)")
    schema = document.get("schema")
    if schema in OLD_SCHEMAS:
        raise JournalError(head, OLD_SCHEMAS[schema], field="schema")
    if schema != JOURNAL_SCHEMA:
        raise JournalError(head, f"is not an acpcheck journal ({JOURNAL_SCHEMA})", field="schema")
    found = records.problems(
        document,
        {
            "run": records.run_id,
            "digest": records.sha256,
            "backupRoot": records.node_path,
            "targets": records.list_of(
                lambda entry: (
                    records.problems(entry, {"target": records.text, "file": _journal_file}) and "is not {target, file}"
                )
            ),
        },
    )
    if found:
        raise JournalError(head, found[0][1], field=found[0][0])
    if digest_of(document) != document["digest"]:
        raise JournalError(
            head, "was changed after it was written (its content does not match its digest)", field="digest"
        )
    files = [entry["file"] for entry in document["targets"]]
    targets = [entry["target"] for entry in document["targets"]]
    if len(set(files)) != len(files) or len(set(targets)) != len(targets):
        raise JournalError(head, "lists a target or a file twice", field="targets")
    return document


def _journal_file(value: Any) -> str | None:
    return None if isinstance(value, str) and _FILE.fullmatch(value) else "is not a journal file name"


def _verified_target(path: Path, target: str, header: dict[str, Any]) -> TargetJournal:
    """The records of ``path``, each checked: its digest, its place in the chain, its
    fields and its undo record; then its head."""
    from acpcheck.remediation.actions import KINDS

    if not os.path.lexists(path):
        raise JournalError(
            path,
            (
                f"is missing: {HEADER} lists it for {target} (the journal lost a file; changes recorded there "
                "would stay on the node)"
            ),
        )
    data = _read(path)
    lines = data.split(b"\n")
    cut = lines.pop()  # after the last newline: empty, or a line a crash cut short
    warning = (
        f"{path.name}: the last record was cut short (the runner stopped while writing it); it is ignored"
        if cut
        else None
    )
    backup_dir = f"{header['backupRoot']}/{header['run']}"
    found: list[dict[str, Any]] = []
    intents: set[int] = set()
    previous = header["digest"]
    for number, line in enumerate(lines, start=1):

        def refuse(message: str, field: str = "", line_number: int = number) -> JournalError:
            return JournalError(path, message, line=line_number, field=field)

        try:
            record = _parse(line)
        except ValueError as error:
            raise refuse(f"record {number} is damaged ({error})") from None
        if not isinstance(record, dict):
            raise refuse(f"record {number} is not a JSON object")
        if record.get("digest") != digest_of(record):
            raise refuse(
                f"record {number} was changed after it was written (its content does not match its digest)", "digest"
            )
        if record.get("seq") != number:
            raise refuse(
                f"record {number} says it is record {record.get('seq')!r}: records were removed, reordered or inserted",
                "seq",
            )
        if record.get("prev") != previous:
            raise refuse(
                f"the chain breaks at record {number}: the record before it was removed, replaced or reordered", "prev"
            )
        if record.get("target") != target:
            raise refuse(f"record {number} is of {record.get('target')!r}, not of {target}", "target")
        event = record.get("event")
        if event not in EVENTS or (event == "open") != (number == 1):
            raise refuse(
                f"record {number}: {event!r} is not an event here (the first record opens the file, no other does)",
                "event",
            )
        if event == "open" and record.get("run") != header["run"]:
            raise refuse(
                f"record {number} opens the journal of run {record.get('run')!r}, not of {header['run']}", "run"
            )
        if event == "intent":
            problems = records.problems(record, {"step": records.text, "action": records.count, "kind": records.text})
            if not problems and record["kind"] not in KINDS:
                problems = [
                    ("kind", f"{record['kind']!r} is not a kind of change acpcheck knows ({', '.join(sorted(KINDS))})")
                ]
            if not problems:
                problems = [
                    (f"undo.{name}".rstrip("."), message)
                    for name, message in KINDS[record["kind"]].verify(record.get("undo"), backup_dir)
                ]
            if problems:
                name, message = problems[0]
                raise refuse(
                    f"record {number} ({record.get('kind')} change of {record.get('step')}): {name} {message}", name
                )
            intents.add(number)
        if event in FOLLOW_UPS and record.get("ref") not in intents:
            raise refuse(
                f"record {number} ({event}) refers to {record.get('ref')!r}, which is no earlier change", "ref"
            )
        found.append(record)
        previous = record["digest"]
    if not found:
        raise JournalError(path, "is empty: it lost its records (changes recorded there would stay on the node)")
    _check_head(path, target, found, cut)
    return TargetJournal(
        path, target, len(found), previous, found, warning, len(data) - len(cut) if cut else None, len(data)
    )


def _check_head(path: Path, target: str, found: list[dict[str, Any]], cut: bytes) -> None:
    head_path = path.with_name(_head_name(path.name))
    if not os.path.lexists(head_path):
        raise JournalError(head_path, f"is missing: nothing shows whether records were cut off the end of {path.name}")
    head = _read_document(head_path)
    problems = records.problems(head, {"target": records.text, "seq": records.count, "digest": records.sha256})
    if problems:
        raise JournalError(head_path, problems[0][1], field=problems[0][0])
    last = len(found)
    seq = head["seq"]
    # The head is written after its record: a crash between the two leaves it one behind (and no cut line after).
    matches = head["target"] == target and 1 <= seq <= last and found[seq - 1]["digest"] == head["digest"]
    if not matches or seq < last - 1 or (seq == last - 1 and cut):
        if matches and seq < last:
            raise JournalError(
                head_path,
                f"says {path.name} ends at record {seq}, but it holds {last}: records were added after its end",
            )
        raise JournalError(
            head_path,
            (
                f"does not match {path.name} (it ends at record {last}): records were cut off its end, or the "
                "file was replaced"
            ),
        )


def rollback_command(run_id: str, directory: Path) -> str:
    """The command that undoes run ``run_id`` from its journal in ``directory``, exactly
    as a person types it, from any working directory."""
    return shlex.join(["acpcheck", "rollback", run_id, "--journal-dir", str(directory.resolve())])
