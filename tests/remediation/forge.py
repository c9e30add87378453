"""Changing a journal as a careless or a hostile user would, for the tamper tests and the
journal fuzzing: edit a record in place (its digest left as it was), or ``reseal`` the
whole journal afterwards, as a forger who knows the format would (every digest, the
chain and the heads made to match again), to show what the checks of the records'
fields refuse on their own."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from acpcheck.remediation.journal import HEADER, canonical, digest_of


def lines_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def write_lines(path: Path, records: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(record, separators=(",", ":")) + "\n" for record in records))


def find(journal: Path, node: str, test: Callable[[dict[str, Any]], bool]) -> tuple[Path, int]:
    """The file of ``node`` and the line number of its first record that passes ``test``."""
    path = journal / f"node-{node}.jsonl"
    for number, record in enumerate(lines_of(path), start=1):
        if test(record):
            return path, number
    raise AssertionError(f"no such record in {path}")


def edit(path: Path, line: int, change: Callable[[dict[str, Any]], None]) -> None:
    """Change the record on ``line`` in place; its digest stays as it was."""
    records = lines_of(path)
    change(records[line - 1])
    write_lines(path, records)


def reseal(journal: Path) -> None:
    """Make every digest, the chain and the heads match the journal's content again."""
    header = json.loads((journal / HEADER).read_text())
    header["digest"] = digest_of(header)
    (journal / HEADER).write_text(json.dumps(header, indent=2) + "\n")
    for entry in header["targets"]:
        path = journal / entry["file"]
        records = lines_of(path)
        previous = header["digest"]
        for seq, record in enumerate(records, start=1):
            record["seq"], record["prev"] = seq, previous
            record["digest"] = previous = digest_of(record)
        write_lines(path, records)
        head = {"target": entry["target"], "seq": len(records), "digest": previous}
        path.with_suffix(".head").write_bytes(canonical(head) + b"\n")
