"""How each kind of action is shown, performed, journaled and undone.

Every kind has the same four parts, so that the runner, the journal and ``rollback``
never need to know what an action is:

- ``describe(action, how)``: the lines people read, exact commands and a unified diff,
  worded as planned (a dry-run) or written (after ``--apply``; ``DescribeAs``);
- ``prepare(action, ctx)``: look at the node and return the *undo record* (journaled
  as the ``intent`` before anything changes): a file's current bytes, mode and owner;
  a command's captured state and an archive of the paths it touches, made on the node;
  where a path is moved to. Raises ``Stale`` when the node no longer looks the way the
  step saw it, so changes are never applied to something else;
- ``perform(action, ctx)``: make the change (and check it happened);
- ``undo(record, ctx)``: restore from the record; safe to repeat, and right whether
  or not the change had happened (an ``intent`` without ``done``);
- ``verify(record, backup_dir)``: what is wrong with an undo record read back from a
  journal, checked before ``rollback`` touches any node: every field ``undo`` uses, a
  file's bytes against their sha256, a backup where this run puts it, a command that
  is one of the named ones (``commands``), never shell text.

``register_kind`` adds a kind (cluster objects, later).
"""

from __future__ import annotations

import difflib
import hashlib
import posixpath
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from acpcheck.errors import visible
from acpcheck.remediation import records
from acpcheck.remediation.changes import MoveAside, RunCommand, WriteFile
from acpcheck.remediation.commands import NamedCommand, record_problems, shown
from acpcheck.remediation.nodefiles import (
    FileState,
    NodeFileError,
    read_state,
    remove_file,
    restore,
    write_file,
)

if TYPE_CHECKING:
    from acpcheck.transport.base import NodeTransport

#: Where a node keeps what a run moved aside or archived, per run id.
BACKUP_ROOT = "/var/lib/acpcheck/backup"
#: Lines of a diff shown before "… N more lines".
DIFF_LINES = 200


class ActionFailed(Exception):
    """An action could not be performed (its step is undone)."""


class Stale(ActionFailed):
    """The node changed between the step reading it and the change: nothing was done."""


@dataclass
class ActionContext:
    """What performing or undoing an action on one target needs."""

    transport: NodeTransport
    run_id: str
    target: str
    #: Names this action's node-side archive (the runner sets it: step and action index).
    label: str = "action"
    #: Open a brand-new login to the node: None when it works, else why not.
    fresh_login: Callable[[], str | None] = lambda: None
    #: Where on the node backups go (tests put it under their own directory).
    backup_root: str = BACKUP_ROOT
    #: Cluster steps: the Kubernetes client (``transport.kube.KubeClient``); ``transport`` is unused then.
    kube: Any = None
    #: The node lock this apply holds (``nodelock.NodeLock``), refreshed before each change.
    lock: Any = None

    @property
    def backup_dir(self) -> str:
        return f"{self.backup_root}/{self.run_id}"

    def root(self, command: str, timeout: float = 120.0, stdin: str | bytes | None = None) -> tuple[bool, str]:
        """Run ``command`` as root; (ok, what it said)."""
        result = self.transport.run_as_root(command, timeout, stdin=stdin)
        said = (result.stderr.strip() or result.stdout.strip())[-2000:]
        return result.ok, said or f"exit {result.exit_status}"


@dataclass(frozen=True)
class DescribeAs:
    """How ``describe`` words an action: as planned (a dry-run, or a change not made) or
    as written (made by ``--apply``), and where on the node its backups go."""

    done: bool = False
    #: The run's backup directory on the node (``ActionContext.backup_dir``).
    backup_dir: str = f"{BACKUP_ROOT}/<run>"
    #: The action's archive name there (``runner.action_label``).
    label: str = "action"


PLANNED = DescribeAs()


class ActionKind(Protocol):
    def describe(self, action: Any, how: DescribeAs = PLANNED) -> list[str]: ...
    def prepare(self, action: Any, ctx: ActionContext) -> dict[str, Any]: ...
    def perform(self, action: Any, ctx: ActionContext) -> None: ...
    def undo(self, record: dict[str, Any], ctx: ActionContext) -> str: ...
    def verify(self, record: Any, backup_dir: str) -> list[tuple[str, str]]: ...


KINDS: dict[str, ActionKind] = {}


def register_kind(name: str, kind: ActionKind) -> None:
    KINDS[name] = kind


def kind_of(action: Any) -> ActionKind:
    return KINDS[action.kind]


# ---------------------------------------------------------------------------
# Diffs


def unified_diff(
    path: str, before: FileState, after: bytes | None, *, new_mode: int = 0o644, written: bool = False
) -> list[str]:
    """A unified diff of a file change, planned or ``written``, every character made visible."""
    if before.kind == "file":
        old_head = f"--- {path}\t({before.describe()})"
        old = before.content
    else:
        old_head, old = f"--- {path}\t(absent)", b""
    if after is None:
        new_head, new = f"+++ {path}\t(removed)", b""
    elif before.kind == "file":
        state = "written" if written else "planned"
        new_head, new = f"+++ {path}\t({state}, {before.mode:04o} {before.uid}:{before.gid} kept)", after
    else:
        new_head, new = f"+++ {path}\t(new, {new_mode:04o} 0:0)", after
    if b"\0" in old or b"\0" in new:
        return [
            old_head,
            new_head,
            f"binary content: {hashlib.sha256(old).hexdigest()[:12]} -> {hashlib.sha256(new).hexdigest()[:12]}",
        ]
    old_lines = old.decode("utf-8", errors="replace").splitlines(keepends=True)
    new_lines = new.decode("utf-8", errors="replace").splitlines(keepends=True)
    body = []
    for line in difflib.unified_diff(old_lines, new_lines, lineterm="", n=2):
        if line.startswith(("---", "+++")):
            continue
        text = line.rstrip("\n")
        body.append(
            visible(text) + ("" if line.endswith("\n") or line.startswith("@@") else "  \\ no newline at end of file")
        )
    if len(body) > DIFF_LINES:
        body = body[:DIFF_LINES] + [f"… {len(body) - DIFF_LINES} more lines"]
    return [old_head, new_head, *body]


# ---------------------------------------------------------------------------
# Files


class FileKind:
    def describe(self, action: WriteFile, how: DescribeAs = PLANNED) -> list[str]:
        verb = "remove" if action.after is None else ("create" if not action.before.exists else "edit")
        if how.done:
            verb = {"remove": "removed", "create": "created", "edit": "edited"}[verb]
        lines = [f"{verb} {visible(action.path, one_line=True)}" + (f": {action.why}" if action.why else "")]
        diff = unified_diff(action.path, action.before, action.after, new_mode=action.mode, written=how.done)
        lines += ["  " + line for line in diff]
        if action.validate:
            lines.append(
                f"  before it is moved into place: $ {action.validate.replace(chr(34) + '$1' + chr(34), 'NEWFILE')}"
            )
        if action.then:
            script = "" if shown(action.then) == action.then else "    # acpcheck's node script, in remediation.json"
            lines.append(f"  then: $ {shown(action.then)}{script}")
        if action.login_check:
            lines.append("  then: a new SSH login must succeed, else the file is restored and reloaded at once")
        return lines

    def prepare(self, action: WriteFile, ctx: ActionContext) -> dict[str, Any]:
        then_undo = action.then_undo if action.then_undo is not None else action.then
        if then_undo is not None and not isinstance(then_undo, NamedCommand):
            raise ActionFailed(
                f"the command its undo would run (`{shown(then_undo)}`) is shell text, not a named command "
                "(acpcheck.remediation.commands): rollback runs named commands only; nothing done"
            )
        problem = records.node_path(action.path)
        if problem:
            raise ActionFailed(f"{action.path!r} {problem}; nothing done")
        current = read_state(ctx.transport, action.path)
        if not current.same_as(action.before):
            raise Stale(
                f"{action.path} changed on the node since the step read it ({action.before.describe()} -> "
                f"{current.describe()}); nothing done"
            )
        return {
            "path": action.path,
            "before": current.as_record(),
            "afterSha256": hashlib.sha256(action.after).hexdigest() if action.after is not None else None,
            "createdParents": list(current.missing_parents) if action.after is not None else [],
            "thenUndo": then_undo.as_record() if then_undo is not None else None,
        }

    def perform(self, action: WriteFile, ctx: ActionContext) -> None:
        before = action.before
        try:
            if action.after is None:
                remove_file(ctx.transport, action.path)
            else:
                mode, uid, gid = (before.mode, before.uid, before.gid) if before.kind == "file" else (action.mode, 0, 0)
                write_file(
                    ctx.transport, action.path, action.after, mode=mode, uid=uid, gid=gid, validate=action.validate
                )
            written = read_state(ctx.transport, action.path)
        except NodeFileError as error:
            raise ActionFailed(str(error)) from None
        if (action.after is None and written.exists) or (action.after is not None and written.content != action.after):
            raise ActionFailed(f"{action.path} does not hold the planned content after writing it")
        if action.then:
            ok, said = ctx.root(action.then)
            if not ok:
                raise ActionFailed(f"`{shown(action.then)}` failed: {said}")
        if action.login_check:
            problem = ctx.fresh_login()
            if problem is not None:
                raise ActionFailed(f"a new SSH login failed after the change ({problem})")

    def undo(self, record: dict[str, Any], ctx: ActionContext) -> str:
        before = FileState.from_record(record["before"])
        current = read_state(ctx.transport, before.path)
        after = record.get("afterSha256")
        left_by_run = (current.kind == "absent") if after is None else (current.sha256 == after)
        if not current.same_as(before) and not left_by_run:
            raise NodeFileError(
                f"{before.path} changed after this run changed it (now {current.describe()}); not overwritten: "
                "roll back later runs first, or restore it by hand"
            )
        changed = restore(ctx.transport, before, created_parents=tuple(record.get("createdParents", ())))
        if not changed:
            return f"{record['path']}: already as before"
        if not read_state(ctx.transport, before.path).same_as(before):
            raise NodeFileError(f"{before.path} is not as before after restoring it")
        then = NamedCommand.from_record(record["thenUndo"]) if record.get("thenUndo") else None
        if then:
            ok, said = ctx.root(then)
            if not ok:
                raise NodeFileError(f"{before.path} restored, but `{shown(then)}` failed: {said}")
        what = (
            "removed again (it did not exist)" if not before.exists else f"restored byte for byte ({before.describe()})"
        )
        return f"{record['path']}: {what}" + (f"; ran `{shown(then)}`" if then else "")

    def verify(self, record: Any, backup_dir: str) -> list[tuple[str, str]]:
        found = records.problems(
            record,
            {
                "path": records.node_path,
                "before": _json_object,
                "afterSha256": lambda value: None if value is None else records.sha256(value),
                "createdParents": lambda value: None if isinstance(value, list) else "is not a list",
                "thenUndo": lambda value: None if value is None else _json_object(value),
            },
        )
        if found:
            return found
        path = record["path"]
        problem = records.list_of(lambda parent: records.ancestor_of(parent, path))(record["createdParents"])
        if problem:
            return [("createdParents", problem)]
        if record["thenUndo"] is not None:
            found = [(f"thenUndo.{name}", message) for name, message in record_problems(record["thenUndo"])]
            if found:
                return found
        return [(f"before.{name}", message) for name, message in FileState.record_problems(record["before"], path)]


def _json_object(value: Any) -> str | None:
    return None if isinstance(value, dict) else "is not a JSON object"


# ---------------------------------------------------------------------------
# Commands

_ARCHIVE = r"""set -eu
b=$1; shift
for a in "$@"; do
  p=${a#?:}
  if [ -e "$p" ] || [ -L "$p" ]; then echo "exists $p"; else echo "absent $p"; fi
done
"""

# The archive is checked (there, and the one this run made: its sha256) before anything
# is removed: a missing or replaced archive leaves every path as it is.
_RESTORE = r"""set -eu
b=$1 sum=$2; shift 2
if [ -n "$b" ]; then
  [ -f "$b" ] || { echo "the backup archive $b is missing on the node; nothing restored" >&2; exit 3; }
  [ "$(sha256sum < "$b" | cut -d' ' -f1)" = "$sum" ] || {
    echo "the backup archive $b is not the one this run made (its sha256 differs); nothing restored" >&2; exit 3; }
fi
for a in "$@"; do
  case $a in
    A:*|R:*) rm -rf -- "${a#??}" ;;
  esac
done
if [ -n "$b" ]; then
  tar -xpf "$b" --xattrs --numeric-owner -C /
fi
"""


def _sh(body: str, *args: str) -> str:
    return f"sh -c {shlex.quote(body)} sh " + " ".join(shlex.quote(arg) for arg in args)


class CommandKind:
    def describe(self, action: RunCommand, how: DescribeAs = PLANNED) -> list[str]:
        lines = [f"$ {visible(shown(action.command))}" + (f"    # {action.why}" if action.why else "")]
        if action.capture:
            lines.append(f"  first saves the output of `{action.capture}` in the journal (for the undo)")
        if action.touches:
            paths = ", ".join(action.touches[:6]) + (
                f" and {len(action.touches) - 6} more" if len(action.touches) > 6 else ""
            )
            archived = "archived" if how.done else "archives"
            lines.append(
                f"  first {archived} on the node what it changes: {visible(paths, one_line=True)} "
                f"(archive: {how.backup_dir}/{how.label}.tar)"
            )
        if action.reverse:
            lines.append(f"  undo: $ {visible(shown(action.reverse))}")
        elif action.touches:
            lines.append("  undo: restore the archived paths")
        else:
            lines.append(f"  undo: none exists ({action.no_reverse or 'not reversible'})")
        return lines

    def prepare(self, action: RunCommand, ctx: ActionContext) -> dict[str, Any]:
        if action.reverse is not None and not isinstance(action.reverse, NamedCommand):
            raise ActionFailed(
                f"its reverse (`{action.reverse}`) is shell text, not a named command (acpcheck.remediation.commands): "
                "rollback runs named commands only; nothing done"
            )
        for path in action.touches:
            problem = records.node_path(path)
            if problem:
                raise ActionFailed(f"it touches {path!r}, which {problem}; nothing done")
        record: dict[str, Any] = {
            "command": action.command,
            "reverse": action.reverse.as_record() if action.reverse else None,
            "noReverse": action.no_reverse,
        }
        if action.capture:
            result = ctx.transport.run_as_root(action.capture, 120.0)
            if not result.ok:
                raise ActionFailed(f"cannot save the state to undo: `{action.capture}` failed: {result.stderr.strip()}")
            record["captured"] = result.stdout
        if action.touches:
            record.update(self._archive(action, ctx))
        return record

    def _archive(self, action: RunCommand, ctx: ActionContext) -> dict[str, Any]:
        marked = [("R:" if path in action.recursive else "E:") + path for path in action.touches]
        result = ctx.transport.run_as_root(_sh(_ARCHIVE, "", *marked), 60.0)
        if not result.ok:
            raise ActionFailed(f"cannot look at the paths to back up: {result.stderr.strip()}")
        existing = [line[7:] for line in result.stdout.splitlines() if line.startswith("exists ")]
        absent = [line[7:] for line in result.stdout.splitlines() if line.startswith("absent ")]
        archive = None
        if existing:
            archive = f"{ctx.backup_dir}/{ctx.label}.tar"
            entries = [path.lstrip("/") or "." for path in existing if path not in action.recursive]
            trees = [path.lstrip("/") for path in existing if path in action.recursive]
            names = ["--no-recursion", *entries] + (["--recursion", *trees] if trees else [])
            command = (
                f"set -e; mkdir -p {shlex.quote(posixpath.dirname(archive))}; chmod 700 {shlex.quote(ctx.backup_dir)}; "
                f"tar -cf {shlex.quote(archive)} --xattrs --numeric-owner -C / "
                + " ".join(shlex.quote(name) for name in names)
                + f"; sha256sum {shlex.quote(archive)}"
            )
            done = ctx.transport.run_as_root(command, 1800.0)
            if not done.ok:
                raise ActionFailed(
                    f"cannot archive {len(existing)} paths before `{action.command}`: {done.stderr.strip()[-500:]}"
                )
            sha = done.stdout.split()[0] if done.stdout.split() else ""
            if records.sha256(sha):
                raise ActionFailed(
                    f"cannot archive {len(existing)} paths before `{action.command}`: no sha256 of the "
                    f"archive ({done.stdout.strip()[:200]!r})"
                )
            return {
                "archive": archive,
                "archiveSha256": sha,
                "existing": existing,
                "absent": absent,
                "recursive": list(action.recursive),
            }
        return {"archive": None, "existing": [], "absent": absent, "recursive": list(action.recursive)}

    def perform(self, action: RunCommand, ctx: ActionContext) -> None:
        ok, said = ctx.root(action.command, action.timeout)
        if not ok:
            raise ActionFailed(f"`{action.command}` failed: {said}")

    def undo(self, record: dict[str, Any], ctx: ActionContext) -> str:
        done = []
        if "absent" in record:
            recursive = set(record.get("recursive", ()))
            marked = [f"A:{p}" for p in record["absent"]] + [
                ("R:" if p in recursive else "E:") + p for p in record["existing"]
            ]
            ok, said = ctx.root(
                _sh(_RESTORE, record.get("archive") or "", record.get("archiveSha256") or "", *marked), 1800.0
            )
            if not ok:
                raise NodeFileError(f"cannot restore what `{record['command']}` changed: {said}")
            done.append(
                f"restored {len(record['existing'])} archived paths"
                + (f", removed {len(record['absent'])} it created" if record["absent"] else "")
            )
        if record.get("reverse"):
            reverse = NamedCommand.from_record(record["reverse"])
            result = ctx.transport.run_as_root(reverse, 300.0, stdin=record.get("captured"))
            if not result.ok:
                raise NodeFileError(
                    f"the reverse of `{record['command']}` failed: `{shown(reverse)}`: {result.stderr.strip()}"
                )
            done.append(f"ran `{shown(reverse)}`")
        if not done:
            return (
                f"`{record['command']}`: NOT reversed: no reverse exists "
                f"({record.get('noReverse') or 'not reversible'})"
            )
        return f"`{record['command']}`: " + "; ".join(done)

    def verify(self, record: Any, backup_dir: str) -> list[tuple[str, str]]:
        found = records.problems(
            record,
            {
                "command": records.text,  # shown, never run by an undo
                "reverse": lambda value: None if value is None else _json_object(value),
                "noReverse": records.optional_text,
                "captured": records.text,
            },
            optional=frozenset({"captured"}),
        )
        if found:
            return found
        if record["reverse"] is not None:
            found = [(f"reverse.{name}", message) for name, message in record_problems(record["reverse"])]
            if found:
                return found
        if "absent" not in record:
            return []
        paths = records.list_of(records.node_path)
        found = records.problems(
            record,
            {
                "archive": lambda value: (
                    None
                    if value is None
                    else (
                        records.below(value, backup_dir) or (None if value.endswith(".tar") else "is not a .tar file")
                    )
                ),
                "existing": paths,
                "absent": paths,
                "recursive": paths,
                "archiveSha256": records.sha256,
            },
            optional=frozenset({"archiveSha256"}),
        )
        if found:
            return found
        if record["archive"] is not None and "archiveSha256" not in record:
            return [
                ("archiveSha256", "is missing: nothing shows that the archive on the node is the one this run made")
            ]
        if bool(record["existing"]) != (record["archive"] is not None):
            return [("archive", "does not go with the archived paths (existing)")]
        return []


# ---------------------------------------------------------------------------
# Moving aside


class MoveKind:
    def describe(self, action: MoveAside, how: DescribeAs = PLANNED) -> list[str]:
        where = f"{how.backup_dir}/moved{action.path}"
        return [
            f"$ mv -T {shlex.quote(action.path)} {shlex.quote(where)}" + (f"    # {action.why}" if action.why else ""),
            "  undo: move it back",
        ]

    def prepare(self, action: MoveAside, ctx: ActionContext) -> dict[str, Any]:
        problem = records.node_path(action.path)
        if problem:
            raise ActionFailed(f"{action.path!r} {problem}; nothing done")
        backup = f"{ctx.backup_dir}/moved{action.path}"
        result = ctx.transport.run_as_root(
            _sh('{ [ -e "$1" ] || [ -L "$1" ]; } && ! [ -e "$2" ]', action.path, backup), 30.0
        )
        if not result.ok:
            raise Stale(f"{action.path} is gone, or {backup} is taken; nothing done")
        return {"path": action.path, "backup": backup}

    def perform(self, action: MoveAside, ctx: ActionContext) -> None:
        backup = f"{ctx.backup_dir}/moved{action.path}"
        body = 'set -e; mkdir -p "$(dirname "$2")"; chmod 700 "$3"; mv -T -- "$1" "$2"'
        ok, said = ctx.root(_sh(body, action.path, backup, ctx.backup_dir), 1800.0)
        if not ok:
            raise ActionFailed(f"cannot move {action.path} aside: {said}")

    def undo(self, record: dict[str, Any], ctx: ActionContext) -> str:
        body = r"""p=$1 b=$2
if [ -e "$b" ] || [ -L "$b" ]; then
  if [ -e "$p" ] || [ -L "$p" ]; then echo "both $p and $b exist; move one by hand" >&2; exit 3; fi
  mkdir -p "$(dirname "$p")" && mv -T -- "$b" "$p" && echo moved
elif [ -e "$p" ] || [ -L "$p" ]; then echo inplace
else echo "$p is gone and so is its backup $b" >&2; exit 3
fi"""
        result = ctx.transport.run_as_root(_sh(body, record["path"], record["backup"]), 1800.0)
        if not result.ok:
            raise NodeFileError(result.stderr.strip())
        return f"{record['path']}: " + ("moved back" if result.stdout.strip() == "moved" else "already in place")

    def verify(self, record: Any, backup_dir: str) -> list[tuple[str, str]]:
        found = records.problems(record, {"path": records.node_path, "backup": records.text})
        if found:
            return found
        expected = f"{backup_dir}/moved{record['path']}"
        if record["backup"] != expected:
            return [("backup", f"is not where this run moves {record['path']} ({expected}): the record was changed")]
        return []


register_kind("file", FileKind())
register_kind("command", CommandKind())
register_kind("move", MoveKind())
