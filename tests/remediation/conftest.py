"""Remediation's engine on this machine: plan, apply, verify, journal, rollback and crash
recovery, fast and without a lab.

Each plan node is a directory under ``tmp_path`` on this machine, reached through
``LocalTransport`` (real shell commands, real files, run as root). Test checks
(ids ACP-NODE-95x) read what is in those directories, and test steps (registered for
the test only) change it with every kind of action: file edits, new files in new
directories, removals, commands with a captured state and a reverse, commands whose
touched paths are archived, paths moved aside. What the shipped steps do on real nodes
is proven in the lab (tests/lab/test_remediation_on_lab.py).
"""

from __future__ import annotations

import hashlib
import os
import shlex
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from nodes.conftest import healthy_facts, plan_with

from acpcheck import Scope, Severity, check, fail
from acpcheck.facts.model import GatherFailure, NodeContext, NodeFacts
from acpcheck.model.plan import ClusterPlan, Node
from acpcheck.remediation import records
from acpcheck.remediation import steps as step_module
from acpcheck.remediation.changes import Changes, MoveAside, RunCommand, changes_of
from acpcheck.remediation.commands import NamedCommand, register_command
from acpcheck.remediation.edits import set_assignment
from acpcheck.remediation.journal import Journal
from acpcheck.remediation.nodesteps import edit
from acpcheck.remediation.runner import Crasher, Options, RollbackReport, RunReport, remediate, rollback
from acpcheck.remediation.steps import Step, register
from acpcheck.remediation.view import NodeView
from acpcheck.transport.local import LocalTransport

REF = ["https://docs.alauda.io/container_platform/4.3/install/prepare/node_preprocessing.html"]
#: Test checks and steps: only these run in the engine tests (never the shipped ones,
#: which would act on this machine's /etc); ACP-NODE-955's step fails on purpose.
SELECT = ("ACP-NODE-951", "ACP-NODE-952", "ACP-NODE-953", "ACP-NODE-954")


def needs_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("remediation writes files as root:root with their owners kept: run as root (make test does)")


# ---------------------------------------------------------------------------
# Test checks: they read the node directory through the facts the Machine makes.


def node_dir(node: NodeContext) -> Path:
    return Path(node.facts.sysctls["test.dir"])


@check(
    id="ACP-NODE-951",
    title="the config says value=good",
    severity=Severity.HIGH,
    scope=Scope.NODE,
    refs=REF,
    remediation="set value=good",
)
def check_config(node: NodeContext) -> None:
    """A config file must hold value=good (test)."""
    if "value=good" not in node.facts.sysctls.get("test.config", ""):
        fail(f"{node.name}: config is not good")


@check(
    id="ACP-NODE-952",
    title="no leftover directory",
    severity=Severity.HIGH,
    scope=Scope.NODE,
    refs=REF,
    remediation="remove it",
)
def check_leftover(node: NodeContext) -> None:
    """No leftover directory may exist (test)."""
    if "leftover" in node.facts.existing_paths:
        fail(f"{node.name}: leftover exists")


@check(
    id="ACP-NODE-953",
    title="a new conf file exists",
    severity=Severity.MEDIUM,
    scope=Scope.NODE,
    refs=REF,
    remediation="create it",
)
def check_new_file(node: NodeContext) -> None:
    """A conf file in a directory that may not exist yet (test)."""
    if "new" not in node.facts.existing_paths:
        fail(f"{node.name}: no new file")


@check(
    id="ACP-NODE-954",
    title="the state is off",
    severity=Severity.HIGH,
    scope=Scope.NODE,
    refs=REF,
    remediation="turn it off",
)
def check_state(node: NodeContext) -> None:
    """A state file must say off, and the tree must be gone (test)."""
    if node.facts.sysctls.get("test.state", "").strip() != "off" or "tree" in node.facts.existing_paths:
        fail(f"{node.name}: state is on")


@check(
    id="ACP-NODE-955",
    title="the broken step's file is fine",
    severity=Severity.LOW,
    scope=Scope.NODE,
    refs=REF,
    remediation="-",
)
def check_broken(node: NodeContext) -> None:
    """A step that fails half-way (test)."""
    if "broken" in node.facts.existing_paths:
        fail(f"{node.name}: broken")


# The test steps' undo commands: named, like the shipped ones (a journal holds their names, never shell text).
register_command("test-reload", lambda path: f"echo reload >> {shlex.quote(path)}", path=records.node_path)
register_command("test-write-state", lambda path: f"cat > {shlex.quote(path)}", path=records.node_path)


def _config(view: NodeView) -> Changes:
    path = str(node_dir(view.node) / "config")
    touched = node_dir(view.node) / "reloaded"
    return changes_of(
        [
            edit(
                view,
                path,
                lambda text: set_assignment(text, "value", "good"),
                "value=good",
                then=NamedCommand("test-reload", path=str(touched)),
            )
        ]
    )


def _leftover(view: NodeView) -> Changes:
    return Changes((MoveAside(str(node_dir(view.node) / "leftover"), "a leftover"),))


def _new_file(view: NodeView) -> Changes:
    path = str(node_dir(view.node) / "new" / "deeper" / "file.conf")
    return changes_of([edit(view, path, lambda text: text + "created\n", "a new file", mode=0o600)])


def _state(view: NodeView) -> Changes:
    where = node_dir(view.node)
    state, tree, made = where / "state", where / "tree", where / "made-by-command"
    return Changes(
        (
            RunCommand(
                f"echo off > {state}",
                "turn it off",
                capture=f"cat {state}",
                reverse=NamedCommand("test-write-state", path=str(state)),
            ),
            RunCommand(
                f"rm -rf {tree} && echo made > {made}",
                "remove the tree",
                touches=(str(tree), str(made)),
                recursive=(str(tree),),
            ),
            RunCommand(
                f"echo note >> {where / 'log'}", "append to a log", no_reverse="a log line cannot be taken back"
            ),
        )
    )


def _broken(view: NodeView) -> Changes:
    where = node_dir(view.node)
    return changes_of(
        [
            edit(view, str(where / "broken.conf"), lambda text: text + "half=done\n", "first half"),
            (RunCommand("echo the second half fails >&2; false", "fails"), None),
        ]
    )


TEST_STEPS = (
    Step("ACP-NODE-951", "config", "sets value=good", _config),
    Step("ACP-NODE-952", "leftover", "moves the leftover aside", _leftover, removes=True),
    Step("ACP-NODE-953", "new-file", "creates a file in new directories", _new_file),
    Step("ACP-NODE-954", "state", "turns the state off", _state),
    Step("ACP-NODE-955", "broken", "fails half-way", _broken),
)


@pytest.fixture
def test_steps() -> Iterator[tuple[Step, ...]]:
    for item in TEST_STEPS:
        register(item)
    yield TEST_STEPS
    for item in TEST_STEPS:
        step_module.STEPS.pop(item.check, None)


# ---------------------------------------------------------------------------
# Nodes as directories on this machine


def seed(root: Path, name: str, *, owner: int = 4321) -> Path:
    """A node directory in its defective state (owned by ``owner`` where the file says so)."""
    where = root / name
    (where / "leftover" / "inner").mkdir(parents=True)
    (where / "leftover" / "inner" / "data").write_bytes(b"\x00\x01binary\xff")
    (where / "tree" / "sub").mkdir(parents=True)
    (where / "tree" / "sub" / "file").write_text("tree file\n")
    os.chmod(where / "tree" / "sub", 0o750)
    config = where / "config"
    config.write_text("# a config\nvalue=bad\nother=1\n")
    os.chown(config, owner, owner)
    os.chmod(config, 0o640)
    (where / "state").write_text("on\n")
    (where / "log").write_text("")
    (where / "broken.conf").write_text("broken\n")
    return where


def snapshot(root: Path) -> dict[str, tuple[Any, ...]]:
    """Every path below ``root``: type, mode, owner and content hash (what rollback must restore)."""
    found: dict[str, tuple[Any, ...]] = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        content = hashlib.sha256(path.read_bytes()).hexdigest() if stat.S_ISREG(info.st_mode) else None
        found[str(path.relative_to(root))] = (
            stat.S_IFMT(info.st_mode),
            stat.S_IMODE(info.st_mode),
            info.st_uid,
            info.st_gid,
            content,
        )
    return found


@dataclass
class Machine:
    """A ``NodeAccess`` over this machine: node N is the directory ``root/N``."""

    plan: ClusterPlan
    root: Path
    login_problem: str | None = None
    failing: set[str] = field(default_factory=set)  # nodes whose facts cannot be gathered
    logins: int = 0

    def transport(self, node: Node) -> LocalTransport:
        return LocalTransport(node.name)

    def facts(self, name: str) -> NodeFacts | GatherFailure:
        if name in self.failing:
            return GatherFailure(name, "unreachable", "no route to host (test)")
        where = self.root / name
        config = (where / "config").read_text() if (where / "config").exists() else ""
        state = (where / "state").read_text() if (where / "state").exists() else ""
        existing = {n for n in ("leftover", "tree") if (where / n).exists()}
        if (where / "new" / "deeper" / "file.conf").exists():
            existing.add("new")
        if (where / "broken.conf").exists():
            existing.add("broken")
        return replace(
            healthy_facts(name),
            sysctls={"test.dir": str(where), "test.config": config, "test.state": state},
            existing_paths=frozenset(existing),
        )

    def gather(self, nodes: list[Node]) -> dict[str, NodeFacts | GatherFailure]:
        return {node.name: self.facts(node.name) for node in nodes}

    def fresh_login(self, node: Node) -> str | None:
        self.logins += 1
        return self.login_problem

    def close(self) -> None:
        pass


@pytest.fixture
def machine(tmp_path: Path, test_steps: tuple[Step, ...]) -> Machine:
    needs_root()
    plan = plan_with(
        {
            "spec": {
                "nodes": [
                    {"name": "cp1", "role": "control-plane", "ipv4": "192.0.2.11"},
                    {"name": "w1", "role": "worker", "ipv4": "192.0.2.21"},
                ]
            }
        }
    )
    for node in plan.spec.nodes:
        seed(tmp_path / "nodes", node.name)
    return Machine(plan, tmp_path / "nodes")


def locks(tmp_path: Path) -> Callable[[Node], str]:
    """Each test node's lock, in a directory of its own (every test node is this machine,
    whose /var/lib/acpcheck the tests never touch)."""
    return lambda node: str(tmp_path / "locks" / node.name / "remediate.lock")


def run(
    machine: Machine,
    tmp_path: Path,
    *,
    apply: bool = False,
    run_id: str = "RUN1",
    selectors: tuple[str, ...] = SELECT,
    crasher: Crasher | None = None,
    **options: Any,
) -> RunReport:
    journal = tmp_path / "out" / run_id / "journal" if apply else None
    settings = Options(
        apply=apply,
        selectors=selectors,
        run_id=run_id,
        journal_dir=journal,
        header={"planText": "test"},
        backup_root=str(tmp_path / "backup"),
        lock_path=locks(tmp_path),
        **options,
    )
    return remediate(machine.plan, settings, machine, crasher=crasher or Crasher())


def rollback_run(machine: Machine, tmp_path: Path, run_id: str = "RUN1") -> RollbackReport:
    """``rollback`` of a run of ``run``, with the same node locks."""
    return rollback(
        machine.plan, Journal.open(tmp_path / "out" / run_id / "journal"), machine, lock_path=locks(tmp_path)
    )


def outcomes(report: RunReport) -> dict[tuple[str, str], str]:
    return {(node.node, item.step.id): item.outcome for node in report.nodes for item in node.steps}
