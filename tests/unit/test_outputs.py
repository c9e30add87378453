"""Reports are well-formed and safe to show whatever the results hold, and the report
directory is checked, locked and never left lying (acpcheck.report)."""

from __future__ import annotations

import fcntl
import json
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acpcheck.errors import InputError
from acpcheck.report import writers
from acpcheck.report.outdir import LOCK, MANIFEST, OutDir

RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=30) | st.sampled_from(
    ["\x1b[31m", "]]>", "</pre><script>", "\ud800", "```", "\x00", "&amp;"]
)


def document(texts: list[str], number: float) -> dict[str, Any]:
    a, b, c, d = (texts + ["x"] * 4)[:4]
    result = {
        "check": "ACP-NET-001",
        "title": a,
        "area": "NET",
        "severity": "high",
        "status": "fail",
        "target": f"node:{b}",
        "message": c,
        "evidence": {"at": f"{d}:3", d: [number, c]},
        "remediation": d,
        "refs": ["https://docs.alauda.io/container_platform/4.3/x.html"],
        "waiver": None,
        "duration": 0.1,
    }
    waived = {
        **result,
        "status": "waived",
        "waiver": {"check": "*", "target": "*", "reason": a, "owner": b, "expires": "2099-01-01"},
    }
    skipped = {**result, "status": "skip"}
    return {
        "schema": "acpcheck/results/v1",
        "run": {
            "id": "r",
            "started": "s",
            "finished": "f",
            "profile": b,
            "plan": d,
            "cluster": a,
            "acp": "4.3",
            "acpcheck": "0",
            "failOn": "medium",
            "exitCode": 1,
        },
        "summary": {"pass": 0, "fail": 1, "warn": 0, "skip": 1, "manual": 0, "error": 0, "waived": 1},
        "expiredWaivers": [{"check": a, "target": b, "reason": c, "owner": d, "expires": "2000-01-01"}],
        "results": [result, waived, skipped],
    }


def _no_constant(name: str) -> None:
    pytest.fail(f"{name} in a JSON report")


@settings(max_examples=150, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
@given(st.lists(ANY_TEXT, min_size=4, max_size=4), st.floats(allow_nan=True, allow_infinity=True))
def test_every_report_is_well_formed_whatever_the_results_hold(texts: list[str], number: float) -> None:
    files = writers.render_all(document(texts, number))
    for name in ("results.json", "results.sarif", "codequality.json"):
        json.loads(files[name], parse_constant=_no_constant)
        files[name].encode("utf-8")
    ET.fromstring(files["junit.xml"].encode("utf-8"))
    for name in ("junit.xml", "summary.md", "report.html"):
        assert not RAW.search(files[name].replace("\r", "")), name
        files[name].encode("utf-8")
    assert "<script>" not in files["report.html"]
    # The exact text survives in results.json (JSON escapes what it must), one result per line.
    exact = json.loads(files["results.json"])
    block = files["results.json"].split('\n  "results": [\n', 1)[1].split("\n  ]", 1)[0]
    assert [json.loads(line.rstrip(",")) for line in block.split("\n")] == exact["results"]
    if not any("\ud800" <= ch <= "\udfff" for ch in texts[2]):
        assert exact["results"][0]["message"] == texts[2]


@pytest.mark.parametrize(
    ("plan", "uri", "base"),
    [
        ("plans/prod east.yaml", "plans/prod%20east.yaml", True),
        ("./a#b.yaml", "a%23b.yaml", True),
        ("/elsewhere/x y.yaml", "x%20y.yaml", False),
        ("../up.yaml", "up.yaml", False),
    ],
)
def test_sarif_uris_are_real_uris(tmp_path: Path, plan: str, uri: str | None, base: bool) -> None:
    """Always relative, with a uriBaseId: the working directory, else the plan's own directory."""
    location, bases = writers.artifact_location(plan, cwd=tmp_path)
    if uri is not None:
        assert location["uri"] == uri
    assert urlsplit(location["uri"]).scheme == ""
    assert " " not in location["uri"] and "#" not in location["uri"]
    if base:
        assert location["uriBaseId"] == "SRCROOT" and bases["SRCROOT"]["uri"] == tmp_path.resolve().as_uri() + "/"
    else:
        directory = (tmp_path / plan).resolve().parent
        assert location["uriBaseId"] == "PLANDIR" and bases["PLANDIR"]["uri"] == directory.as_uri().rstrip("/") + "/"


# -- the report directory ----------------------------------------------------------


def test_unusable_out_is_bad_input(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    for path, words in (
        (tmp_path / "file", "is not a directory"),
        (tmp_path / "file" / "sub", "cannot be created"),
        (Path("/proc/acpcheck-nope"), "cannot be created"),
    ):
        with pytest.raises(InputError, match=words):
            OutDir.claim(path, "run")


def test_a_second_run_is_refused_naming_the_holder(tmp_path: Path) -> None:
    first = OutDir.claim(tmp_path / "out", "run-one")
    try:
        with pytest.raises(
            InputError, match=rf"is in use by another acpcheck run \(pid {os.getpid()}, run run-one, since "
        ):
            OutDir.claim(tmp_path / "out", "run-two")
    finally:
        first.release()
    OutDir.claim(tmp_path / "out", "run-three").release()  # free again


def test_foreign_files_are_kept_unless_forced(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match=r"holds files acpcheck did not write \(notes.txt\); .* --force"):
        OutDir.claim(out, "run")
    claimed = OutDir.claim(out, "run", force=True)
    claimed.write({"results.json": "{}\n"})
    claimed.release()
    assert (out / "notes.txt").read_text() == "mine"
    assert json.loads((out / MANIFEST).read_text())["files"] == ["results.json"]
    # acpcheck's own files are no reason to refuse: the next run replaces them.
    (out / "notes.txt").unlink()
    OutDir.claim(out, "again").release()


def test_previous_reports_never_look_current_after_a_failed_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    first = OutDir.claim(out, "one")
    first.write({"results.json": '{"run": "one"}\n', "junit.xml": "<x/>\n"})
    first.release()
    second = OutDir.claim(out, "two")
    assert not (out / "results.json").exists() and not (out / "junit.xml").exists()  # retired when the run began

    def disk_full(*args: Any, **kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", disk_full)
    with pytest.raises(OSError):
        second.write({"results.json": '{"run": "two"}\n'})
    monkeypatch.undo()
    second.release()
    assert sorted(p.name for p in out.iterdir()) == sorted([LOCK, MANIFEST])


def test_the_lock_is_the_kernel_s(tmp_path: Path) -> None:
    """A crashed run leaves its lock file, never its lock: the next run goes ahead."""
    out = tmp_path / "out"
    out.mkdir()
    (out / LOCK).write_text('{"pid": 999999, "run": "dead", "since": "then"}\n')
    claimed = OutDir.claim(out, "alive")
    with open(out / LOCK) as handle, pytest.raises(BlockingIOError):
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    claimed.release()
