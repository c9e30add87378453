"""What a node step's function reads: the node's facts, its files and the answers of
read-only commands, all as root through the run's connection to that node.

A step's function must not change anything: the view offers reads only, and the runner
performs the actions of the ``Changes`` it returns. Reads are cached for the life of one view (one
node, one run), so a step that asks twice costs one round trip.
"""

from __future__ import annotations

import shlex
from functools import cached_property
from typing import TYPE_CHECKING

from acpcheck.remediation.changes import Changes, WriteFile
from acpcheck.remediation.nodefiles import FileState, read_state

if TYPE_CHECKING:
    from acpcheck.facts.model import NodeContext, NodeFacts
    from acpcheck.model.plan import ClusterPlan
    from acpcheck.transport.base import CommandResult, NodeTransport

#: Seconds a read-only command of a step may take.
READ_TIMEOUT = 30.0
#: File systems whose files are the kernel's own state (what swapoff, modprobe and
#: setenforce act on); a node that shows these paths on anything else is a container
#: or a lab node whose kernel is someone else's.
KERNEL_FILESYSTEMS = frozenset({"proc", "sysfs", "selinuxfs"})


class NodeView:
    """One node, for a step's function: ``facts``, ``node`` (the check's ``NodeContext``),
    ``file(path)``, ``run(command)`` and a few derived answers."""

    def __init__(self, transport: NodeTransport, node: NodeContext):
        self.transport = transport
        self.node = node
        self._files: dict[str, FileState] = {}
        self._commands: dict[str, CommandResult] = {}

    @property
    def name(self) -> str:
        return self.node.name

    @property
    def facts(self) -> NodeFacts:
        return self.node.facts

    @property
    def plan(self) -> ClusterPlan:
        return self.node.plan

    def file(self, path: str) -> FileState:
        if path not in self._files:
            self._files[path] = read_state(self.transport, path)
        return self._files[path]

    def assume(self, changes: Changes) -> None:
        """Later reads of the files ``changes`` writes see their new content (a dry-run
        shows each step's diff on top of the steps before it on the same node)."""
        for action in changes.actions:
            if isinstance(action, WriteFile):
                before = action.before
                if action.after is None:
                    self._files[action.path] = FileState(action.path, "absent")
                elif before.kind == "file":
                    self._files[action.path] = FileState(
                        action.path, "file", action.after, before.mode, before.uid, before.gid
                    )
                else:
                    self._files[action.path] = FileState(action.path, "file", action.after, action.mode)

    def forget(self) -> None:
        """Read everything afresh (after changes were made on the node)."""
        self._files.clear()
        self._commands.clear()

    def run(self, command: str) -> CommandResult:
        """A read-only command as root (its result, whatever its exit status)."""
        if command not in self._commands:
            self._commands[command] = self.transport.run_as_root(command, READ_TIMEOUT)
        return self._commands[command]

    def output(self, command: str) -> str:
        """stdout of a read-only command, stripped; empty when it failed."""
        result = self.run(command)
        return result.stdout.strip() if result.ok else ""

    def lines(self, command: str) -> list[str]:
        return [line for line in self.output(command).splitlines() if line.strip()]

    def has(self, command: str) -> str | None:
        """The path of ``command`` on root's PATH (with the sbin directories), or None."""
        found = self.output(f'PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"; command -v {shlex.quote(command)}')
        return found or None

    def glob(self, pattern: str) -> list[str]:
        """Existing paths matching a shell glob (its pattern characters unquoted)."""
        return self.lines(f'for p in {pattern}; do [ -e "$p" ] && printf \'%s\\n\' "$p"; done; true')

    @cached_property
    def systemd(self) -> bool:
        """systemd is PID 1 (as the probe decides it)."""
        comm = self.output("cat /proc/1/comm")
        if comm:
            return comm == "systemd"
        return self.run("test -d /run/systemd/system").ok

    def kernel_view(self, path: str) -> str | None:
        """None when ``path`` is the kernel's own file (procfs, sysfs); otherwise why
        not, for a note: what acts on the kernel (swapoff, modprobe, setenforce) would
        act on some other machine's kernel, or on nothing."""
        fs = self.output(f"stat -f -c %T {shlex.quote(path)}")
        if fs in KERNEL_FILESYSTEMS:
            return None
        if not fs:
            return f"{path} does not exist on this node"
        return f"{path} on this node is not the kernel's (it is on {fs}: a container or a lab node)"

    def writable(self, path: str) -> bool:
        return self.run(f"test -w {shlex.quote(path)}").ok

    def unit_state(self, unit: str) -> tuple[str, str]:
        """(``systemctl is-active``, ``systemctl is-enabled``) of a unit; ("", "") without systemd."""
        if not self.systemd:
            return "", ""
        active = self.run(f"systemctl is-active {shlex.quote(unit)}").stdout.strip()
        enabled = self.run(f"systemctl is-enabled {shlex.quote(unit)}").stdout.strip()
        return active, enabled
