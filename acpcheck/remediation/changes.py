"""What a step returns: the changes it would make (``Changes``), made of actions.

A step's function reads the node (``view.NodeView``) and returns ``Changes``: the
actions that would bring the node to the documented state (``WriteFile``,
``RunCommand``, ``MoveAside``), notes about what it cannot do there and why, or a
refusal. Nothing here performs anything: how each kind of action is shown, performed,
journaled and undone is ``actions``.

("plan" in acpcheck means the cluster plan, the input; a step's output is its changes.)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from acpcheck.remediation.commands import NamedCommand
from acpcheck.remediation.nodefiles import FileState

# ---------------------------------------------------------------------------
# Actions: what ``Changes`` are made of.


@dataclass(frozen=True)
class WriteFile:
    """Replace, create or remove one file, atomically (a temporary file in the same
    directory, then ``mv``), with the mode and owner it had (a new file: ``mode``,
    root:root). ``before`` is the state the step read: if the node's file has changed
    since, nothing is written."""

    path: str
    before: FileState
    after: bytes | None  # None removes the file
    why: str = ""
    mode: int = 0o644  # for a file that does not exist yet
    #: A command run on the new content in a temporary file, "$1", before it is
    #: moved into place (e.g. ``sshd -t -f "$1"``); a failure leaves the node as it was.
    validate: str | None = None
    #: Run after the change, and again after its undo (a reload). A named command
    #: (``commands``): the journal keeps its name and parameters for the undo, never shell text.
    then: NamedCommand | None = None
    #: Run after the undo instead of ``then`` (e.g. enable where ``then`` disabled).
    then_undo: NamedCommand | None = None
    #: After ``then``: a new SSH login must still succeed, else the change is undone at once.
    login_check: bool = False
    kind: Literal["file"] = field(default="file", init=False)

    @property
    def changes(self) -> bool:
        if self.after is None:
            return self.before.exists
        return not (self.before.kind == "file" and self.before.content == self.after)


@dataclass(frozen=True)
class RunCommand:
    """One shell command, run as root. Its undo is, in this order: the files it
    ``touches`` restored from an archive made on the node before it ran (absent ones
    removed again), then ``reverse`` (fed the output of ``capture`` on stdin, when
    there is one). A command without either lists ``no_reverse`` in ``rollback``.
    ``reverse`` is a named command (``commands``): the journal keeps which one and its
    parameters, never shell text, so an edited journal cannot make rollback run its own."""

    command: str
    why: str = ""
    reverse: NamedCommand | None = None
    no_reverse: str | None = None
    #: A read-only command whose output is journaled before ``command`` runs (e.g. the
    #: firewall rule set it is about to flush), and handed to ``reverse`` on stdin.
    capture: str | None = None
    #: Paths the command changes: archived (tar, with modes, owners and xattrs) on the
    #: node before it runs; ``rollback`` restores them and removes those that were absent.
    touches: tuple[str, ...] = ()
    #: Of ``touches``, the directories archived with everything in them (others: the entry itself).
    recursive: tuple[str, ...] = ()
    timeout: float = 300.0
    kind: Literal["command"] = field(default="command", init=False)


@dataclass(frozen=True)
class MoveAside:
    """Delete a path from where it is by moving it into the run's backup directory on
    the node (``/var/lib/acpcheck/backup/<run>/moved/<path>``); ``rollback`` moves it back."""

    path: str
    why: str = ""
    kind: Literal["move"] = field(default="move", init=False)


#: The actions of a node step.
Action = WriteFile | RunCommand | MoveAside


class AnyAction(Protocol):
    """An action of any kind a step may return: a node action above, or a kind of its
    own registered with ``actions.register_kind`` (cluster steps: ``objects.ObjectChange``)."""

    @property
    def kind(self) -> str: ...


# ---------------------------------------------------------------------------
# What a step returns


@dataclass(frozen=True)
class Changes:
    """What a step would change on one node (or the cluster) now: its actions, in order."""

    actions: tuple[AnyAction, ...] = ()
    #: What the step leaves undone here, and why (shown in the dry-run and the report).
    notes: tuple[str, ...] = ()
    #: Part of the fix takes effect only at the next boot (the change made now is
    #: persisted configuration, or a "now" part cannot run here): a check that still
    #: fails afterwards NEEDS REBOOT rather than STILL FAILING.
    deferred: bool = False
    #: The docs say this operation is unsupported here: the message names the doc,
    #: and nothing at all is changed.
    refused: str | None = None


def changes_of(
    parts: Iterable[tuple[AnyAction | None, str | None]], *, deferred: bool = False, notes: Iterable[str] = ()
) -> Changes:
    """``Changes`` from (action or None, note or None) pairs, as ``nodesteps.edit`` returns
    them, and extra notes."""
    actions, all_notes = [], list(notes)
    for action, note in parts:
        if action is not None:
            actions.append(action)
        if note:
            all_notes.append(note)
    return Changes(actions=tuple(actions), notes=tuple(all_notes), deferred=deferred)
