"""Files on a node, read and written as root over any ``NodeTransport``, byte for byte.

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
import shlex
from typing import TYPE_CHECKING

from acpcheck.remediation.step import FileState

if TYPE_CHECKING:
    from acpcheck.transport.base import NodeTransport

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
