"""Files on a node: their state (``FileState``), read and written as root over any
``NodeTransport``, byte for byte.

Content travels as base64 on stdin (never on a command line, never through a
terminal), so any byte survives. A write goes to a temporary file in the same
directory, gets the mode and owner, is optionally validated (``sshd -t -f "$1"``),
and only then replaces the file with ``mv`` (atomic: a reader sees the old file or
the new one, never a half). Every function raises ``NodeFileError`` with the node's
own message when the node refuses.
"""

from __future__ import annotations

import base64
import hashlib
import re
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from acpcheck.transport.base import NodeTransport

# ---------------------------------------------------------------------------
# A file's state on a node: what a backup must restore byte for byte.


@dataclass(frozen=True)
class FileState:
    """One path on a node: a regular file (content, mode, owner), absent, or
    something acpcheck does not edit (a symlink, a directory, a device)."""

    path: str
    kind: Literal["file", "absent", "symlink", "other"]
    content: bytes = b""
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    #: For an absent file: the directories above it that do not exist either,
    #: shallowest first (created for a new file, removed again by its undo).
    missing_parents: tuple[str, ...] = ()

    @property
    def exists(self) -> bool:
        return self.kind != "absent"

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    @property
    def sha256(self) -> str | None:
        return hashlib.sha256(self.content).hexdigest() if self.kind == "file" else None

    def same_as(self, other: FileState) -> bool:
        """Same kind, and for a file the same bytes, mode and owner."""
        if self.kind != other.kind:
            return False
        if self.kind != "file":
            return True
        return (self.content, self.mode, self.uid, self.gid) == (other.content, other.mode, other.uid, other.gid)

    def describe(self) -> str:
        if self.kind == "file":
            return f"{self.mode:04o} {self.uid}:{self.gid}, {len(self.content)} bytes"
        return self.kind

    def as_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {"path": self.path, "kind": self.kind}
        if self.kind == "file":
            record.update(
                content=base64.b64encode(self.content).decode(),
                mode=f"{self.mode:04o}",
                uid=self.uid,
                gid=self.gid,
                sha256=self.sha256,
            )
        if self.missing_parents:
            record["missingParents"] = list(self.missing_parents)
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> FileState:
        """The state a (verified: ``record_problems``) journal record holds."""
        if record["kind"] == "file":
            return cls(
                record["path"],
                "file",
                base64.b64decode(record["content"]),
                int(record["mode"], 8),
                int(record["uid"]),
                int(record["gid"]),
            )
        return cls(record["path"], record["kind"], missing_parents=tuple(record.get("missingParents", ())))

    @staticmethod
    def record_problems(record: Any, path: str) -> list[tuple[str, str]]:
        """What is wrong with ``as_record()`` output read back from a journal, for the file
        at ``path``; above all, bytes that do not match their own sha256 (rollback
        writes them to the node as root)."""
        import binascii

        from acpcheck.remediation import records

        found = records.problems(
            record,
            {
                "path": lambda value: None if value == path else f"is not the path of the change ({path})",
                "kind": lambda value: (
                    None if value in ("file", "absent", "symlink", "other") else "is not file, absent, symlink or other"
                ),
                "missingParents": records.list_of(lambda parent: records.ancestor_of(parent, path)),
            },
            optional=frozenset({"missingParents"}),
        )
        if found or record["kind"] != "file":
            return found
        found = records.problems(
            record,
            {
                "content": records.text,
                "sha256": records.sha256,
                "mode": lambda value: (
                    None
                    if isinstance(value, str) and re.fullmatch(r"0?[0-7]{1,4}", value)
                    else "is not a file mode (octal, at most 7777)"
                ),
                "uid": lambda value: records.count(value) or (None if value < 2**32 else "is too large"),
                "gid": lambda value: records.count(value) or (None if value < 2**32 else "is too large"),
            },
        )
        if found:
            return found
        try:
            content = base64.b64decode(record["content"], validate=True)
        except (binascii.Error, ValueError):
            return [("content", "is not base64")]
        if hashlib.sha256(content).hexdigest() != record["sha256"]:
            return [
                (
                    "content",
                    "does not match its sha256: these are not the bytes the node had, and rollback will not write them",
                )
            ]
        return []


# ---------------------------------------------------------------------------
# Reading and writing files on a node

#: Seconds a file operation may take (reads and writes of configuration files).
FILE_TIMEOUT = 60.0


class NodeFileError(Exception):
    """The node could not read or write a file (permission, full disk, validation failed)."""


_READ = r"""p=$1
if [ -L "$p" ]; then echo symlink
elif [ -f "$p" ]; then stat -c 'file %a %u %g' "$p" && base64 < "$p"
elif [ -e "$p" ]; then echo other
else
  echo absent
  d=$(dirname "$p")
  while [ ! -e "$d" ]; do echo "missing $d"; d=$(dirname "$d"); done
fi"""


def _script(body: str, *args: str) -> str:
    """``sh -c BODY sh ARGS…``: arguments never pass through the body's quoting."""
    return f"sh -c {shlex.quote(body)} sh " + " ".join(shlex.quote(arg) for arg in args)


def read_state(transport: NodeTransport, path: str) -> FileState:
    result = transport.run_as_root(_script(_READ, path), FILE_TIMEOUT)
    lines = result.stdout.splitlines()
    if not result.ok or not lines:
        raise NodeFileError(
            f"cannot read {path}: {(result.stderr or result.stdout).strip() or f'exit {result.exit_status}'}"
        )
    head = lines[0].split()
    if head[0] == "file" and len(head) == 4:
        try:
            content = base64.b64decode("".join(lines[1:]), validate=True)
        except ValueError as error:
            raise NodeFileError(f"cannot read {path}: damaged base64 from the node ({error})") from None
        return FileState(path, "file", content, int(head[1], 8), int(head[2]), int(head[3]))
    if head[0] == "absent":
        missing = [line.split(" ", 1)[1] for line in lines[1:] if line.startswith("missing ")]
        return FileState(path, "absent", missing_parents=tuple(reversed(missing)))
    if head[0] in ("symlink", "other"):
        return FileState(path, head[0])  # type: ignore[arg-type]
    raise NodeFileError(f"cannot read {path}: unexpected answer {lines[0]!r}")


# The content must arrive whole before it replaces anything: a runner killed while it
# sends stdin leaves base64 an early EOF, and an empty sshd_config moved into place
# locks the node out. So the size (and, where sha256sum exists, the digest) is
# checked on the node before the move.
_WRITE = r"""set -eu
p=$1 mode=$2 owner=$3 size=$4 digest=$5
d=$(dirname "$p")
mkdir -p "$d"
t=$(mktemp "$d/.acpcheck.XXXXXX")
trap 'rm -f "$t"' EXIT
base64 -d > "$t"
got=$(wc -c < "$t" | tr -d ' ')
if [ "$got" != "$size" ]; then echo "incomplete content: $got of $size bytes arrived; $p left as it was" >&2; exit 4; fi
if command -v sha256sum >/dev/null 2>&1 && [ "$(sha256sum < "$t" | cut -d' ' -f1)" != "$digest" ]; then
  echo "content damaged on the way; $p left as it was" >&2; exit 4
fi
chown "$owner" "$t"
chmod "$mode" "$t"
"""


def write_file(
    transport: NodeTransport, path: str, content: bytes, *, mode: int, uid: int, gid: int, validate: str | None = None
) -> None:
    """Replace ``path`` with ``content`` (mode, owner) atomically; ``validate`` runs on
    the temporary file as "$1" first and a failure leaves ``path`` untouched."""
    body = _WRITE
    if validate:
        body += (
            f'if ! ( set -- "$t"; {validate} ) >&2; then echo "validation failed: {_shown(validate)}" >&2; exit 3; fi\n'
        )
    body += 'sync "$t" 2>/dev/null || true\nmv -f "$t" "$p"\ntrap - EXIT\n'
    payload = base64.encodebytes(content)
    result = transport.run_as_root(
        _script(body, path, f"{mode:o}", f"{uid}:{gid}", str(len(content)), hashlib.sha256(content).hexdigest()),
        FILE_TIMEOUT,
        stdin=payload,
    )
    if not result.ok:
        raise NodeFileError(f"cannot write {path}: {result.stderr.strip() or f'exit {result.exit_status}'}")


def remove_file(transport: NodeTransport, path: str, *, remove_parents: tuple[str, ...] = ()) -> None:
    """Remove ``path`` (a file), then each of ``remove_parents`` (deepest first) if it is empty."""
    body = 'rm -f "$1"\nshift\nfor d in "$@"; do rmdir "$d" 2>/dev/null || true; done\n'
    result = transport.run_as_root(_script(body, path, *reversed(remove_parents)), FILE_TIMEOUT)
    if not result.ok:
        raise NodeFileError(f"cannot remove {path}: {result.stderr.strip() or f'exit {result.exit_status}'}")


def restore(transport: NodeTransport, state: FileState, *, created_parents: tuple[str, ...] = ()) -> bool:
    """Put ``state`` back at its path; False when the path already is exactly that."""
    current = read_state(transport, state.path)
    if current.same_as(state):
        if not state.exists and created_parents:
            remove_file(transport, state.path, remove_parents=created_parents)
        return False
    if current.kind in ("symlink", "other"):
        raise NodeFileError(f"cannot restore {state.path}: it is now a {current.kind}; restore it by hand")
    if state.kind == "file":
        write_file(transport, state.path, state.content, mode=state.mode, uid=state.uid, gid=state.gid)
    elif state.kind == "absent":
        remove_file(transport, state.path, remove_parents=created_parents)
    else:
        raise NodeFileError(f"cannot restore {state.path}: it was a {state.kind}, which acpcheck never changes")
    return True


def _shown(command: str) -> str:
    return command.replace('"', "'").replace("\n", " ")[:120]
