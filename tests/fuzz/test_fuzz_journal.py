"""Random damage to a real remediation journal (issue 22): whatever happens to its files
(bytes flipped, cut, inserted or deleted, lines dropped, doubled or swapped, a file
emptied, deleted, or replaced by a FIFO or a symlink to /dev/zero), opening it for
rollback either refuses it (JournalError: exit 4 naming a file of the journal, never
another exception, never a wait) or reads exactly the records that were written: a
damaged journal is never half-trusted. Rollback opens (and so verifies) the journal
before it reaches any node.

The journal is made once, by a real apply on this machine (tests/remediation's test
nodes and steps, as root); outcomes are counted under "journal" in the fuzzing summary.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from judge import TALLY
from nodes.conftest import plan_with
from remediation.conftest import TEST_STEPS, Machine, needs_root, run, seed

from acpcheck.remediation import steps as step_module
from acpcheck.remediation.journal import Journal, JournalError

MUTATIONS = (
    "flip",
    "cut",
    "insert",
    "delete-bytes",
    "drop-line",
    "double-line",
    "swap-lines",
    "empty",
    "delete",
    "fifo",
    "dev-zero",
)


@pytest.fixture(scope="module")
def journal() -> Iterator[tuple[Path, tuple[dict[str, Any], list[Any]]]]:
    """A journal of an apply that changed two nodes with every kind of action, and what it reads."""
    needs_root()
    for item in TEST_STEPS:
        step_module.register(item)
    root = Path(tempfile.mkdtemp(prefix="acpfuzz-journal-"))
    try:
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
            seed(root / "nodes", node.name)
        report = run(Machine(plan, root / "nodes"), root, apply=True, allow_removals=True)
        assert report.exit_code() == 0
        directory = root / "out" / "RUN1" / "journal"
        opened = Journal.open(directory)
        yield directory, (opened.header, opened.read())
    finally:
        for item in TEST_STEPS:
            step_module.STEPS.pop(item.check, None)
        shutil.rmtree(root, ignore_errors=True)


def _mutate(path: Path, kind: str, data: st.DataObject) -> None:
    content = path.read_bytes()
    if kind in ("empty", "delete", "fifo", "dev-zero"):
        path.unlink()
        if kind == "empty":
            path.write_bytes(b"")
        elif kind == "fifo":
            os.mkfifo(path)
        elif kind == "dev-zero":
            path.symlink_to("/dev/zero")
        return
    if kind in ("drop-line", "double-line", "swap-lines"):
        lines = content.splitlines(keepends=True)
        first = data.draw(st.integers(0, len(lines) - 1), label="line")
        if kind == "drop-line":
            del lines[first]
        elif kind == "double-line":
            lines.insert(first, lines[first])
        else:
            second = data.draw(st.integers(0, len(lines) - 1), label="other line")
            lines[first], lines[second] = lines[second], lines[first]
        path.write_bytes(b"".join(lines))
        return
    at = data.draw(st.integers(0, max(0, len(content) - 1)), label="offset")
    if kind == "flip":
        changed = content[:at] + bytes([content[at] ^ data.draw(st.integers(1, 255), label="xor")]) + content[at + 1 :]
    elif kind == "cut":
        changed = content[:at]
    elif kind == "insert":
        changed = content[:at] + data.draw(st.binary(min_size=1, max_size=40), label="bytes") + content[at:]
    else:
        changed = content[:at] + content[at + data.draw(st.integers(1, 200), label="length") :]
    path.write_bytes(changed)


@given(data=st.data())
def test_a_damaged_journal_is_refused_whole_or_reads_exactly_what_was_written(
    journal: tuple[Path, tuple[dict[str, Any], list[Any]]], data: st.DataObject
) -> None:
    directory, written = journal
    with tempfile.TemporaryDirectory(prefix="acpfuzz-") as name:
        copy = Path(name) / "journal"
        shutil.copytree(directory, copy, ignore=shutil.ignore_patterns(".lock"))
        target = data.draw(st.sampled_from(sorted(p.name for p in copy.iterdir())), label="file")
        kind = data.draw(st.sampled_from(MUTATIONS), label="mutation")
        _mutate(copy / target, kind, data)
        tally = TALLY["journal"]
        tally["cases"] += 1
        try:
            opened = Journal.open(copy)
        except JournalError as error:
            tally["refused (exit 4)"] += 1
            assert all(problem.file.startswith(str(copy)) for problem in error.problems), error
            return
        # read whole: only changes that leave every record as it was (a cut last line, spaces, escapes) get here
        tally["accepted: the same records"] += 1
        header, records = written
        assert opened.header == header, f"{kind} of {target} changed the run's header"
        assert [(t, r) for t, r, _ in opened.read()] == [(t, r) for t, r, _ in records], (
            f"{kind} of {target} changed what rollback would do"
        )
