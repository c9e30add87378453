"""The node lock: one remediation (``--apply``, or ``rollback``) changes a node at a time.

The lock is a file on the node, ``/var/lib/acpcheck/remediate.lock``, that names its
holder: the run id, a random owner token of the process, the target, apply or
rollback, the controller host and process, and since when. An apply takes it before
it plans the first change on a node and releases it when the node is done; it is
refreshed (its mtime set to now) before every change, and a refresh that finds
another holder fails that change before it starts.

- Taking it is atomic on the node: the holder's text goes to a temporary file that is
  hard-linked to the lock's name, which fails when the name exists. A second apply on
  the node is refused, naming the holder.
- A lock not refreshed for ``STALE_AFTER`` seconds (by the node's own clock) is
  stale, and the next apply or rollback takes it over. The whole check-and-take
  happens under ``flock`` on the lock's directory, so two takers never both win;
  on a node without ``flock`` a stale lock is refused like a live one (remove the file
  by hand once its holder is gone).
- ``rollback RUN`` also takes over a lock its own run left (an apply that was killed
  or lost its connection), and releases it at the end; on a node of the run with
  nothing to undo (the apply was killed after it took the lock, before it changed
  anything there) it removes that run's lock (``release_run``).
"""

from __future__ import annotations

import os
import secrets
import shlex
import socket
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from acpcheck.errors import visible
from acpcheck.remediation.actions import ActionFailed

if TYPE_CHECKING:
    from acpcheck.model.plan import Node
    from acpcheck.transport.base import NodeTransport

LOCK_FILE = "/var/lib/acpcheck/remediate.lock"
#: Seconds without a refresh after which a lock is stale. Our choice: the longest
#: single action between two refreshes is an archive (up to 1800 s) followed by its
#: command (up to 1800 s, swapoff) and a reload and login check: about an hour. Twice
#: that leaves a live apply's lock alone, and frees a dead one's the same day.
STALE_AFTER = 7200
#: Seconds to wait for another acpcheck's check-and-take on the same node (it takes milliseconds).
GUARD_WAIT = 30
TIMEOUT = 60.0


def lock_file(node: Node) -> str:
    """Where a node's lock is (the same for every node; tests put each node's elsewhere)."""
    return LOCK_FILE


class NodeLockError(ActionFailed):
    """Another remediation holds the node, or the lock could not be taken, refreshed or read."""


# $0 says whether flock guards the body: a stale lock is taken over only then.
_BODY = r"""f=$1 op=$2 run=$3 owner=$4 stale=$5
if [ -L "$f" ] || { [ -e "$f" ] && [ ! -f "$f" ]; }; then
  echo "$f is not a regular file: remove it by hand" >&2; exit 5
fi
mine() { grep -qxF "owner: $owner" "$f" 2>/dev/null; }
age() { echo $(( $(date +%s) - $(stat -c %Y "$f") )); }
case $op in
  apply|rollback)
    t=$(mktemp "$f.XXXXXX") || exit 5
    trap 'rm -f "$t"' EXIT
    cat > "$t"
    if ln "$t" "$f" 2>/dev/null; then echo taken; exit 0; fi
    if mine || { [ "$op" = rollback ] && grep -qxF "run: $run" "$f"; }; then
      echo retaken; cat "$f"; mv -f "$t" "$f"; trap - EXIT; exit 0
    fi
    a=$(age)
    if [ "$a" -ge "$stale" ] && [ "$0" = guarded ]; then
      echo "stale $a"; cat "$f"; mv -f "$t" "$f"; trap - EXIT; exit 0
    fi
    echo "held $a"; cat "$f" ;;
  refresh)
    if mine; then touch "$f"; echo ok; else echo lost; cat "$f" 2>/dev/null || true; fi ;;
  release)
    if mine; then rm -f "$f"; fi; echo ok ;;
  release-run)
    if [ -f "$f" ] && grep -qxF "run: $run" "$f"; then rm -f "$f"; fi; echo ok ;;
esac
"""

_GUARD = r"""body=$1 wait=$2; shift 2
d=$(dirname "$1")
mkdir -p "$d" || exit 5
if command -v flock >/dev/null 2>&1; then exec flock -w "$wait" "$d" sh -c "$body" guarded "$@"; fi
exec sh -c "$body" unguarded "$@"
"""


@dataclass
class NodeLock:
    """A lock this process holds on one node."""

    transport: NodeTransport
    path: str
    run_id: str
    target: str
    owner: str
    #: The holder whose stale (or own run's) lock this one replaced, for the report.
    replaced: str | None = None

    @classmethod
    def acquire(
        cls, transport: NodeTransport, path: str, *, run_id: str, target: str, purpose: str = "apply"
    ) -> NodeLock:
        """Take the lock for ``purpose`` (``apply`` or ``rollback``), or NodeLockError naming the holder."""
        owner = secrets.token_hex(8)
        text = (
            "\n".join(
                [
                    "acpcheck remediation lock (see docs/interfaces.md, remediation)",
                    f"run: {run_id}",
                    f"owner: {owner}",
                    f"target: {target}",
                    f"purpose: {purpose}",
                    f"controller: {socket.gethostname()} pid {os.getpid()}",
                    f"since: {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}",
                ]
            )
            + "\n"
        )
        answer = _run(transport, path, purpose, run_id, owner, stdin=text)
        status, _, rest = answer.partition("\n")
        word, _, age = status.partition(" ")
        if word == "taken":
            return cls(transport, path, run_id, target, owner)
        if word in ("retaken", "stale"):
            return cls(transport, path, run_id, target, owner, replaced=describe(rest, age))
        if word == "held":
            raise NodeLockError(
                f"{path} on this node is held by {describe(rest, age)}; nothing done here. "
                f"Wait for it, or once it is surely not running: `acpcheck rollback` of that run, or remove the file "
                f"(it counts as stale {STALE_AFTER} s after its holder's last change)"
            )
        raise NodeLockError(f"cannot take the lock {path}: unexpected answer {visible(status, one_line=True)!r}")

    def refresh(self) -> None:
        """Still ours: mark it alive; NodeLockError if another run took it over."""
        answer = _run(self.transport, self.path, "refresh", self.run_id, self.owner)
        status, _, rest = answer.partition("\n")
        if status != "ok":
            raise NodeLockError(
                f"this apply lost its lock {self.path} (now held by "
                f"{describe(rest, '') if rest else 'nobody'}); nothing more done here"
            )

    def release(self) -> None:
        """Remove the lock if it is still ours."""
        _run(self.transport, self.path, "release", self.run_id, self.owner)


def release_run(transport: NodeTransport, path: str, run_id: str) -> None:
    """Remove the lock if ``run_id`` holds it (a killed apply's, on a node it had not changed yet)."""
    _run(transport, path, "release-run", run_id, "-")


def _run(transport: NodeTransport, path: str, op: str, run_id: str, owner: str, *, stdin: str | None = None) -> str:
    from acpcheck.transport.errors import TransportError

    command = f"sh -c {shlex.quote(_GUARD)} sh " + " ".join(
        shlex.quote(arg) for arg in (_BODY, str(GUARD_WAIT), path, op, run_id, owner, str(STALE_AFTER))
    )
    try:
        result = transport.run_as_root(command, TIMEOUT, stdin=stdin)
    except TransportError as error:
        raise NodeLockError(f"cannot {_verb(op)} the lock {path}: {error.kind}: {error.message}") from None
    if not result.ok:
        said = (result.stderr.strip() or result.stdout.strip() or f"exit {result.exit_status}")[-500:]
        raise NodeLockError(f"cannot {_verb(op)} the lock {path}: {visible(said, one_line=True)}")
    return result.stdout


def _verb(op: str) -> str:
    return {"refresh": "refresh", "release": "release", "release-run": "release"}.get(op, "take")


def describe(text: str, age: str) -> str:
    """The holder a lock file names, in one line (its fields made visible: the file is the node's)."""
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(": ")
        if sep and key in ("run", "target", "purpose", "controller", "since"):
            fields[key] = visible(value, one_line=True)[:200]
    if not fields:
        return "an unreadable lock (not written by acpcheck)"
    what = (
        f"run {fields.get('run', '?')} ({fields.get('purpose', '?')} of {fields.get('target', '?')} from "
        f"{fields.get('controller', '?')}, since {fields.get('since', '?')}"
    )
    return what + (f", last change {age} s ago)" if age.isdigit() else ")")
