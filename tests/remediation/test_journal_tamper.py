"""Rollback acts as root on what its journal says, so a journal damaged or edited after
it was written is refused, whole, before any node is touched: exit 4 naming the file,
the line and the field, and every node exactly as the apply left it (the issue's cases:
an edited file content with its sha256 left as it was; a reverse replaced by a shell
command; a move pointed elsewhere; a journal file deleted, emptied or cut short; an
unknown kind or a missing path; records reordered; a FIFO instead of a file; an older
format). Edits that also rewrite every digest (``forge.reseal``) are still refused
where they ask for something rollback must never do."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from acpcheck.remediation.cli import main
from acpcheck.remediation.journal import HEADER, Journal, JournalError
from remediation import forge
from remediation.conftest import Machine, rollback_run, run, snapshot


@pytest.fixture
def applied(machine: Machine, tmp_path: Path) -> Path:
    """The journal of an apply that changed both nodes with every kind of action."""
    report = run(machine, tmp_path, apply=True, allow_removals=True)
    assert report.exit_code() == 0
    return tmp_path / "out" / "RUN1" / "journal"


def refused(
    machine: Machine, tmp_path: Path, journal: Path, capsys: pytest.CaptureFixture[str], where: str, *said: str
) -> None:
    """``acpcheck rollback`` of ``journal``: exit 4, the problem at ``where`` (file[:line]) saying ``said``,
    and no node touched: every file as the apply left it, no node lock taken."""
    before = snapshot(machine.root)
    capsys.readouterr()
    assert main(["rollback", "RUN1", "--journal-dir", str(journal)]) == 4
    err = capsys.readouterr().err
    assert f"{where}:" in err, err
    for text in said:
        assert text in err, err
    assert "Traceback" not in err
    assert snapshot(machine.root) == before
    assert not (tmp_path / "locks").exists() or not any(p.is_file() for p in (tmp_path / "locks").rglob("*"))
    with pytest.raises(JournalError):  # the same refusal for anything else that opens it
        Journal.open(journal)


def is_config(record: dict) -> bool:
    return record["event"] == "intent" and record["kind"] == "file" and record["undo"]["path"].endswith("/config")


def is_state(record: dict) -> bool:
    return record["event"] == "intent" and record["kind"] == "command" and bool(record["undo"]["reverse"])


def is_move(record: dict) -> bool:
    return record["event"] == "intent" and record["kind"] == "move"


@pytest.mark.parametrize("reseal", [False, True], ids=["edited", "edited-and-resealed"])
def test_a_files_content_edited_with_its_sha256_left_is_never_written(
    machine: Machine, tmp_path: Path, applied: Path, capsys: pytest.CaptureFixture[str], reseal: bool
) -> None:
    path, line = forge.find(applied, "cp1", is_config)

    def hostile(record: dict) -> None:
        record["undo"]["before"]["content"] = base64.b64encode(b"6.6.6.6 localhost\n").decode()

    forge.edit(path, line, hostile)
    if reseal:
        forge.reseal(applied)
        refused(machine, tmp_path, applied, capsys, f"{path}:{line}", "before.content", "does not match its sha256")
    else:
        refused(machine, tmp_path, applied, capsys, f"{path}:{line}", f"record {line} was changed after it was written")
    assert (machine.root / "cp1" / "config").read_text() == "# a config\nvalue=good\nother=1\n"


@pytest.mark.parametrize("reseal", [False, True], ids=["edited", "edited-and-resealed"])
def test_a_reverse_replaced_by_a_shell_command_is_never_run(
    machine: Machine, tmp_path: Path, applied: Path, capsys: pytest.CaptureFixture[str], reseal: bool
) -> None:
    planted = tmp_path / "planted-by-the-journal"
    path, line = forge.find(applied, "w1", is_state)
    forge.edit(path, line, lambda record: record["undo"].update(reverse=f"touch {planted}"))
    if reseal:
        forge.reseal(applied)
    refused(
        machine,
        tmp_path,
        applied,
        capsys,
        f"{path}:{line}",
        "reverse" if reseal else "was changed after it was written",
    )
    assert not planted.exists()


@pytest.mark.parametrize("reseal", [False, True], ids=["edited", "edited-and-resealed"])
def test_a_move_pointed_elsewhere_moves_nothing(
    machine: Machine, tmp_path: Path, applied: Path, capsys: pytest.CaptureFixture[str], reseal: bool
) -> None:
    path, line = forge.find(applied, "cp1", is_move)
    forge.edit(
        path,
        line,
        lambda record: record["undo"].update(backup=str(tmp_path / "backup" / "RUN1" / "moved" / "elsewhere")),
    )
    if reseal:
        forge.reseal(applied)
    refused(
        machine,
        tmp_path,
        applied,
        capsys,
        f"{path}:{line}",
        "is not where this run moves" if reseal else "was changed after it was written",
    )


@pytest.mark.parametrize("damage", ["deleted", "emptied", "cut-mid-record", "last-records-dropped", "head-deleted"])
def test_a_journal_file_deleted_emptied_or_cut_short_is_refused_not_reported_as_nothing_to_undo(
    machine: Machine, tmp_path: Path, applied: Path, capsys: pytest.CaptureFixture[str], damage: str
) -> None:
    path = applied / "node-w1.jsonl"
    data = path.read_bytes()
    lines = data.splitlines(keepends=True)
    where, said = str(path), ""
    if damage == "deleted":
        path.unlink()
        said = "is missing"
    elif damage == "emptied":
        path.write_bytes(b"")
        said = "is empty"
    elif damage == "cut-mid-record":
        path.write_bytes(data[: len(data) - len(lines[-1]) // 2 - len(lines[-2])])  # into the record before the last
        where, said = str(path.with_suffix(".head")), "records were cut off its end"
    elif damage == "last-records-dropped":
        path.write_bytes(b"".join(lines[:3]))
        where, said = str(path.with_suffix(".head")), "records were cut off its end"
    else:
        path.with_suffix(".head").unlink()
        where, said = str(path.with_suffix(".head")), "is missing"
    refused(machine, tmp_path, applied, capsys, where, said)


@pytest.mark.parametrize("hostile", ["unknown-kind", "missing-path"])
def test_an_unknown_kind_or_a_missing_path_on_one_node_rolls_back_no_node(
    machine: Machine, tmp_path: Path, applied: Path, capsys: pytest.CaptureFixture[str], hostile: str
) -> None:
    path, line = forge.find(applied, "w1", is_move)  # cp1's file is sound: it is not rolled back either
    forge.edit(
        path,
        line,
        (lambda record: record.update(kind="format-disk"))
        if hostile == "unknown-kind"
        else (lambda record: record["undo"].pop("path")),
    )
    forge.reseal(applied)
    refused(
        machine,
        tmp_path,
        applied,
        capsys,
        f"{path}:{line}",
        "is not a kind of change acpcheck knows" if hostile == "unknown-kind" else "undo.path is missing",
    )


def test_records_reordered_are_refused(
    machine: Machine, tmp_path: Path, applied: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = applied / "node-cp1.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    lines[2], lines[3] = lines[3], lines[2]
    path.write_bytes(b"".join(lines))
    refused(machine, tmp_path, applied, capsys, f"{path}:3", "records were removed, reordered or inserted")


def test_a_changed_run_header_is_refused(
    machine: Machine, tmp_path: Path, applied: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    header = json.loads((applied / HEADER).read_text())
    header["backupRoot"] = "/etc"
    (applied / HEADER).write_text(json.dumps(header, indent=2))
    refused(machine, tmp_path, applied, capsys, str(applied / HEADER), "was changed after it was written")


def test_a_file_of_another_run_is_refused(
    machine: Machine, tmp_path: Path, applied: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(
        machine, tmp_path, apply=True, allow_removals=True, run_id="RUN2"
    )  # nothing left to change: its files hold "open" only
    other = tmp_path / "out" / "RUN2" / "journal"
    for name in ("node-w1.jsonl", "node-w1.head"):
        (applied / name).write_bytes((other / name).read_bytes())
    refused(machine, tmp_path, applied, capsys, f"{applied / 'node-w1.jsonl'}:1", "the chain breaks at record 1")


@pytest.mark.parametrize("name", ["node-cp1.jsonl", HEADER])
def test_a_fifo_in_place_of_a_journal_file_is_refused_at_once(
    machine: Machine, tmp_path: Path, applied: Path, name: str
) -> None:
    before = snapshot(machine.root)
    (applied / name).unlink()
    os.mkfifo(applied / name)  # nobody ever writes to it: reading it would wait for ever
    done = subprocess.run(
        [sys.executable, "-m", "acpcheck.remediation", "rollback", "RUN1", "--journal-dir", str(applied)],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert done.returncode == 4, done.stdout + done.stderr
    assert f"{applied / name}:" in done.stderr and "a FIFO" in done.stderr
    assert snapshot(machine.root) == before


def test_a_journal_of_the_old_format_is_refused_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = tmp_path / "journal"
    journal.mkdir()
    (journal / HEADER).write_text(json.dumps({"schema": "acpcheck/journal/v1", "run": "OLD", "planText": "x"}))
    (journal / "node-cp1.jsonl").write_text(
        '{"seq":1,"target":"node:cp1","event":"intent","kind":"command","undo":{"command":"x","reverse":"touch /x"}}\n'
    )
    assert main(["rollback", "OLD", "--journal-dir", str(journal)]) == 4
    err = capsys.readouterr().err
    assert f"{journal / HEADER}: schema:" in err and "acpcheck/journal/v1" in err and "no digests" in err


def test_a_sound_journal_still_rolls_back_after_a_refused_one_is_repaired(
    machine: Machine, tmp_path: Path, applied: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The refusal changes nothing, the journal included: put the file back and rollback works."""
    path = applied / "node-w1.jsonl"
    saved = path.read_bytes()
    path.write_bytes(b"")
    refused(machine, tmp_path, applied, capsys, str(path), "is empty")
    path.write_bytes(saved)
    assert rollback_run(machine, tmp_path).exit_code() == 0
    assert (machine.root / "w1" / "config").read_text() == "# a config\nvalue=bad\nother=1\n"
