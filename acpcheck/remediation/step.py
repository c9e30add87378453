"""The Step protocol: what acpcheck may change to fix one check, as data plus a small function.

A step belongs to the check it fixes (``check``, an id) and lives next to it in the
check's module, registered by ``@step``::

    @step(check="ACP-NODE-008", name="swap-off", does="turns swap off now and comments swap out of /etc/fstab")
    def swap_off(node: NodeView) -> Plan:
        ...                       # read the node (files, commands), return the changes
        return Plan(actions=(WriteFile(...), RunCommand(...)))

The function only *plans*: it reads the node through ``NodeView`` (files and read-only
commands, as root) and returns a ``Plan``: the actions that would bring the node to the
documented state, notes about what it cannot do here and why, or a refusal. The runner
(``runner``) decides when a step is wanted (its check FAILs or WARNs on the node, graded
by ``acpcheck.grading.evaluate``), prints the plan (dry-run), or performs it: each
action journals what undoes it *before* it changes anything (``actions``, ``journal``),
and the owning check is graded again on freshly gathered facts afterwards.

``is_satisfied`` needs no method of its own: a step whose plan has no actions changes
nothing, which is what makes a second ``--apply`` a no-op.

Cluster steps (Kubernetes API objects, later) are the same thing with ``target =
"cluster"``: their plan function receives a view of the cluster instead of a node, and
returns actions of their own kinds (an object's before/after, its diff, its undo),
registered with ``actions.register_kind`` so that the journal and ``rollback`` handle
them without knowing what they are.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from acpcheck.remediation.commands import NamedCommand

if TYPE_CHECKING:
    from acpcheck.remediation.view import NodeView

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
        import base64

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
        import base64

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
        import base64
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
# Actions: the changes a plan is made of. Execution and undo live in ``actions``.


@dataclass(frozen=True)
class WriteFile:
    """Replace, create or remove one file, atomically (a temporary file in the same
    directory, then ``mv``), with the mode and owner it had (a new file: ``mode``,
    root:root). ``before`` is the state the plan was made from: if the node's file has
    changed since, nothing is written."""

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


Action = WriteFile | RunCommand | MoveAside


# ---------------------------------------------------------------------------
# A step and its plan


@dataclass(frozen=True)
class Plan:
    """What a step would do on one node now."""

    actions: tuple[Action, ...] = ()
    #: What the step leaves undone here, and why (shown in the dry-run and the report).
    notes: tuple[str, ...] = ()
    #: Part of the fix takes effect only at the next boot (the change made now is
    #: persisted configuration, or a "now" part cannot run here): a check that still
    #: fails afterwards NEEDS REBOOT rather than STILL FAILING.
    deferred: bool = False
    #: The docs say this operation is unsupported here: the message names the doc,
    #: and nothing at all is changed.
    refused: str | None = None


@dataclass(frozen=True)
class Step:
    """One remediation for one check: data, plus the function that plans it."""

    check: str  # the owning check's id: graded before (is it wanted?) and after (fixed?)
    name: str  # short, unique per check: "swap-off"
    does: str  # one line, what it changes, for the dry-run
    planner: Callable[[Any], Plan] = field(repr=False, compare=False)
    order: int = 50  # within a node, steps run lowest first (sshd reloads last)
    removes: bool = False  # deletes software or data: only with --allow-removals
    target: Literal["node", "cluster"] = "node"

    @property
    def id(self) -> str:
        return f"{self.check}/{self.name}"

    def plan(self, view: NodeView) -> Plan:
        return self.planner(view)


#: Every step imported so far, by owning check id, in registration order.
STEPS: dict[str, list[Step]] = {}


def register(new: Step) -> Step:
    """Add ``new`` to the registry (re-importing a module registers nothing twice)."""
    steps = STEPS.setdefault(new.check, [])
    steps[:] = [s for s in steps if s.name != new.name] + [new]
    return new


def step(
    *, check: str, name: str, does: str, order: int = 50, removes: bool = False
) -> Callable[[Callable[[NodeView], Plan]], Step]:
    """Declare the function below as the plan of a node step of ``check``."""

    def decorate(planner: Callable[[NodeView], Plan]) -> Step:
        return register(Step(check=check, name=name, does=does, planner=planner, order=order, removes=removes))

    return decorate


def cluster_step(*, check: str, name: str, does: str, order: int = 50) -> Callable[[Callable[[Any], Plan]], Step]:
    """Declare the function below as the plan of a cluster step of ``check``: it receives
    a ``ClusterObjects`` view and returns ``ObjectChange`` actions (``remediation.objects``)."""

    def decorate(planner: Callable[[Any], Plan]) -> Step:
        return register(Step(check=check, name=name, does=does, planner=planner, order=order, target="cluster"))

    return decorate


def steps_for(check_id: str) -> list[Step]:
    return list(STEPS.get(check_id, ()))


def all_steps() -> list[Step]:
    """Every step of the first-party catalogue (imports the check modules)."""
    from acpcheck.catalog import load_catalog

    load_catalog()
    return [s for check_id in sorted(STEPS) for s in STEPS[check_id]]
