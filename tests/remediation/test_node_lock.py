"""Two remediations never both change a node: an apply holds each node's lock while it
plans and changes it, a second apply on that node is refused naming the holder, a lock
is taken atomically (of many takers at once exactly one wins), a stale one is taken
over, and rollback takes over the lock its own killed apply left. The journal is
created atomically too: of many applies on one ``--out`` exactly one gets it, and the
others are told whose it is (the issue's 3 crashes in 16 races); and a rollback never
writes to a journal that changed after it verified it."""

from __future__ import annotations

import multiprocessing
import os
import threading
from pathlib import Path

import pytest
from nodes.conftest import plan_with

from acpcheck.remediation.journal import Journal, JournalError
from acpcheck.remediation.nodelock import NodeLock, NodeLockError
from acpcheck.remediation.output import render_run
from acpcheck.remediation.runner import Crasher, SimulatedCrash, rollback
from acpcheck.remediation.steps import STEPS, Step
from acpcheck.transport.local import LocalTransport
from remediation.conftest import Machine, _config, locks, outcomes, rollback_run, run, snapshot


def only_cp1(machine: Machine) -> None:
    machine.plan = plan_with({"spec": {"nodes": [{"name": "cp1", "role": "control-plane", "ipv4": "192.0.2.11"}]}})


def lock_of(tmp_path: Path) -> Path:
    return tmp_path / "locks" / "cp1" / "remediate.lock"


def test_a_second_apply_on_a_node_refuses_naming_the_holder(machine: Machine, tmp_path: Path) -> None:
    only_cp1(machine)
    planning, go_on = threading.Event(), threading.Event()

    def slow(view):  # the first apply plans (holding the node) until the second one has tried
        if not planning.is_set():
            planning.set()
            go_on.wait(120)
        return _config(view)

    STEPS["ACP-NODE-951"] = [Step("ACP-NODE-951", "config", "sets value=good", slow)]
    first: dict[str, object] = {}
    apply_a = threading.Thread(
        target=lambda: first.update(
            report=run(machine, tmp_path, apply=True, run_id="RUN-A", selectors=("ACP-NODE-951",))
        )
    )
    apply_a.start()
    try:
        assert planning.wait(120)
        second = run(machine, tmp_path, apply=True, run_id="RUN-B", selectors=("ACP-NODE-951",))
    finally:
        go_on.set()
        apply_a.join(120)
    (node,) = second.nodes
    assert node.locked and "held by run RUN-A (apply of node:cp1" in node.locked
    assert second.exit_code() == 2 and not node.steps
    assert "node cp1: NOT changed:" in render_run(second)
    assert [
        r["event"] for _, records, _ in Journal.open(tmp_path / "out" / "RUN-B" / "journal").read() for r in records
    ] == ["open"]
    assert outcomes(first["report"]) == {("cp1", "ACP-NODE-951/config"): "fixed"}  # type: ignore[arg-type]
    assert (machine.root / "cp1" / "reloaded").read_text() == "reload\n"  # changed once, by RUN-A only
    assert not lock_of(tmp_path).exists()  # released at the end


def test_of_many_takers_at_once_exactly_one_gets_the_lock(tmp_path: Path) -> None:
    path = str(lock_of(tmp_path))
    start = threading.Barrier(8)
    won, refused = [], []

    def take(number: int) -> None:
        with LocalTransport("cp1") as transport:
            start.wait()
            try:
                won.append(NodeLock.acquire(transport, path, run_id=f"RUN-{number}", target="node:cp1"))
            except NodeLockError as error:
                refused.append(str(error))

    threads = [threading.Thread(target=take, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(won) == 1 and len(refused) == 7
    assert all(f"held by run {won[0].run_id} " in message for message in refused)


def test_a_stale_lock_is_taken_over_and_a_live_one_is_not(tmp_path: Path) -> None:
    path = lock_of(tmp_path)
    with LocalTransport("cp1") as transport:
        old = NodeLock.acquire(transport, str(path), run_id="RUN-OLD", target="node:cp1")
        with pytest.raises(NodeLockError, match="held by run RUN-OLD"):
            NodeLock.acquire(transport, str(path), run_id="RUN-NEW", target="node:cp1")
        os.utime(path, (0, 0))  # its holder has not changed anything for decades
        new = NodeLock.acquire(transport, str(path), run_id="RUN-NEW", target="node:cp1")
        assert new.replaced and "run RUN-OLD" in new.replaced
        with pytest.raises(NodeLockError, match="lost its lock"):
            old.refresh()  # the old holder, were it alive after all, changes nothing more
        old.release()  # and cannot release what is not its own
        assert "run: RUN-NEW" in path.read_text()
        new.release()
    assert not path.exists()


def test_rollback_takes_over_the_lock_its_killed_apply_left(machine: Machine, tmp_path: Path) -> None:
    only_cp1(machine)
    with pytest.raises(SimulatedCrash):
        run(machine, tmp_path, apply=True, allow_removals=True, run_id="KILLED", crasher=Crasher(4))
    assert "run: KILLED" in lock_of(tmp_path).read_text()  # killed: nothing released it
    blocked = run(machine, tmp_path, apply=True, allow_removals=True, run_id="OTHER")
    assert blocked.nodes[0].locked and "held by run KILLED" in blocked.nodes[0].locked
    assert rollback_run(machine, tmp_path, "KILLED").exit_code() == 0
    assert not lock_of(tmp_path).exists()


def _create(
    directory: str, number: int, start: multiprocessing.synchronize.Barrier, answers: multiprocessing.queues.Queue
) -> None:
    start.wait()
    try:
        Journal.create(Path(directory), {"run": f"RUN-{number}"}, ["node:cp1"])
        answers.put((number, "created"))
    except JournalError as error:
        answers.put((number, f"refused: {error}"))
    except BaseException as error:  # noqa: BLE001 — what the test is about: anything else is a crash
        answers.put((number, f"crashed: {type(error).__name__}: {error}"))


def test_of_many_applies_on_one_out_exactly_one_gets_the_journal(tmp_path: Path) -> None:
    directory = tmp_path / "out" / "journal"
    context = multiprocessing.get_context("fork")
    start, answers = context.Barrier(16), context.Queue()
    processes = [context.Process(target=_create, args=(str(directory), n, start, answers)) for n in range(16)]
    for process in processes:
        process.start()
    got = dict(answers.get(timeout=120) for _ in processes)
    for process in processes:
        process.join(120)
    created = [n for n, answer in got.items() if answer == "created"]
    assert len(created) == 1, got
    winner = f"RUN-{created[0]}"
    assert all(
        answer.endswith(f"already holds the journal of run {winner}; choose another directory")
        for answer in got.values()
        if answer != "created"
    ), got
    assert Journal.open(directory).run_id == winner  # and it is whole
    assert not [p for p in directory.parent.iterdir() if p.name != "journal"]  # no half-made journal left beside it


def test_a_rollback_that_verified_a_journal_another_one_then_used_refuses(machine: Machine, tmp_path: Path) -> None:
    """Two rollbacks of one run that both read the journal before either ran: the later
    one finds the journal changed since it verified it and stops, before any node."""
    run(machine, tmp_path, apply=True, allow_removals=True)
    journal = tmp_path / "out" / "RUN1" / "journal"
    first, second = Journal.open(journal), Journal.open(journal)
    assert rollback(machine.plan, first, machine, lock_path=locks(tmp_path)).exit_code() == 0
    before = snapshot(machine.root)
    with pytest.raises(JournalError, match="changed since it was verified"):
        rollback(machine.plan, second, machine, lock_path=locks(tmp_path))
    assert snapshot(machine.root) == before
    assert all(
        warning is None for _, _, warning in Journal.open(journal).read()
    )  # still whole: no record appended twice
