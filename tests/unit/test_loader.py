"""The one hardened loader (acpcheck.yamlsource): every way a file can be wrong is
``file:line: message`` and exit 4, never a traceback, a hang or unbounded memory."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from acpcheck.errors import InputError, Problem, visible
from acpcheck.yamlsource import (
    MAX_ALIAS_VALUES,
    MAX_DEPTH,
    dotted,
    load_json,
    load_yaml,
    parse_yaml,
)


def problems(text: str | bytes, tmp_path: Path) -> list[str]:
    path = tmp_path / "in.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(InputError) as caught:
        load_yaml(path)
    return [str(p) for p in caught.value.problems]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: 1\n# a comment with \x1b[31m an escape\n", "in.yaml:2: control character U+001B in the file (column 18)"),
        ("a: 1\nb: \x07\n", "in.yaml:2: control character U+0007"),
        ('a: 1\nb: "\\e[2J"\n', "in.yaml:2: b: control character U+001B in a value is not allowed (value not shown)"),
        (
            "waivers:\n  - expires: 2026-02-30\n",
            "in.yaml:2: waivers[0].expires: not a real date (day is out of range for month)",
        ),
        (
            "a: !!python/object/apply:os.system ['id']\n",
            "in.yaml:1: a: tag !!python/object/apply:os.system is not allowed here",
        ),
        ("a: !custom 1\n", "in.yaml:1: a: tag !custom is not allowed"),
        ("a: !!int twelve\n", "in.yaml:1: a: not a valid int (value not shown)"),
        ("a: !!binary aGVsbG8=\n", "in.yaml:1: a: tag !!binary is not allowed"),
        ("a: !!timestamp yesterday\n", "in.yaml:1: a: not a valid timestamp"),
        ("a: 1\nb: " + "7" * 5000 + "\n", "in.yaml:2: b: an integer with more than 4300 digits (value not shown)"),
        ("a: .inf\n", "in.yaml:1: a: infinity and NaN are not allowed"),
        ("a: &x [1, *x]\n", "in.yaml:1: a[1]: alias *x refers to a value that contains it"),
        ("a: *nowhere\n", "in.yaml:1: a: alias *nowhere is not defined above"),
        ("a: 1\nb: 2\na: 3\n", "in.yaml:3: a: duplicate key (the first one would be silently ignored)"),
        ("? [a, b]\n: 1\n", "in.yaml:1: mapping keys must be plain scalars"),
        ("a: 1\n---\nb: 2\n", "in.yaml:2: a second YAML document"),
        ("a: [1\nb: 2\n", "in.yaml:2: invalid YAML"),
        ("a: {<<: [1, 2]}\n", "in.yaml:1: a: a merge key (<<) takes a mapping or a list of mappings"),
    ],
)
def test_every_loader_error_is_located(tmp_path: Path, text: str, expected: str) -> None:
    found = problems(text, tmp_path)
    assert any(p.startswith(f"{tmp_path}/{expected}") for p in found), found


def test_nesting_deeper_than_the_limit(tmp_path: Path) -> None:
    for depth in (MAX_DEPTH + 1, 5000, 100_000):
        found = problems("a: " + "[" * depth + "]" * depth + "\n", tmp_path)
        assert found and all(p.startswith(f"{tmp_path}/in.yaml:1:") for p in found), found
    assert parse_yaml("a: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "\n", "ok.yaml").data


def test_alias_bomb_is_refused_at_once(tmp_path: Path) -> None:
    levels = ["&a0 [" + ",".join(["lol"] * 9) + "]"] + [
        f"&a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)
    ]
    text = "bomb: [" + ", ".join(levels) + "]\n"
    assert len(text) < 600
    started = time.monotonic()
    found = problems(text, tmp_path)
    assert time.monotonic() - started < 2
    assert any(f"aliases expand to more than {MAX_ALIAS_VALUES:,} values" in p for p in found)


def test_aliases_and_merge_keys_still_work_and_are_copies() -> None:
    document = parse_yaml("base: &b {port: 22, user: root}\nnodes:\n  - {<<: *b, user: ops}\n  - *b\n", "plan.yaml")
    assert document.data["nodes"] == [{"user": "ops", "port": 22}, {"port": 22, "user": "root"}]
    assert document.data["nodes"][1] is not document.data["base"]  # no shared mutable values
    assert document.line_of(("nodes", 0, "user")) == 3


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"a: 1\nb: caf\xe9\n", "in.yaml:2: not valid UTF-8 (byte 0xe9 at column 7)"),
        ("a: 1\n".encode("utf-16"), "in.yaml:1: the file is UTF-16"),
        (b"a: 1\n\x00\n", "in.yaml:2: control character U+0000"),
    ],
)
def test_encodings(tmp_path: Path, content: bytes, expected: str) -> None:
    assert any(p.startswith(f"{tmp_path}/{expected}") for p in problems(content, tmp_path))


def test_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbfa: 1\n")
    assert load_yaml(path).data == {"a": 1}


@pytest.mark.parametrize("kind", ["fifo", "directory", "dev-zero", "missing"])
def test_only_regular_files_are_read(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "input.yaml"
    if kind == "fifo":
        os.mkfifo(path)  # nobody writes to it: reading would wait for ever
    elif kind == "directory":
        path.mkdir()
    elif kind == "dev-zero":
        path.symlink_to("/dev/zero")  # reading would never end
    started = time.monotonic()
    with pytest.raises(InputError) as caught:
        load_yaml(path)
    assert time.monotonic() - started < 2
    expected = {
        "fifo": "not a regular file (it is a FIFO)",
        "directory": "not a regular file (it is a directory)",
        "dev-zero": "not a regular file (it is a device)",
        "missing": "file not found",
    }
    assert str(caught.value) == f"{path}: {expected[kind]}" + (
        "; acpcheck reads regular files only" if kind != "missing" else ""
    )


def test_size_limit_is_documented_and_overridable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("a: " + "x" * 2000 + "\n")
    monkeypatch.setenv("ACPCHECK_MAX_INPUT_BYTES", "1000")
    with pytest.raises(
        InputError, match=r"file too large: 2,004 bytes, more than the limit of 1,000 \(set ACPCHECK_MAX_INPUT_BYTES"
    ):
        load_yaml(path)
    monkeypatch.setenv("ACPCHECK_MAX_INPUT_BYTES", "3000")
    assert load_yaml(path).data["a"] == "x" * 2000


def test_keys_with_newlines_and_brackets_keep_their_name_and_line() -> None:
    document = parse_yaml('spec:\n  cluster:\n    "bad\\nkey[0]": 1\n    "cpaas.io/url": 2\n', "p.yaml")
    path = ("spec", "cluster", "bad\nkey[0]")
    assert document.line_of(path) == 3
    assert dotted(path) == 'spec.cluster["bad\\nkey[0]"]'
    assert dotted(("spec", "cluster", "cpaas.io/url")) == "spec.cluster.cpaas.io/url"
    assert str(document.problem(path, "unknown field")) == 'p.yaml:3: spec.cluster["bad\\nkey[0]"]: unknown field'


def test_problem_lines_show_control_characters_as_escapes() -> None:
    problem = Problem("evil\x1b]0;title\x07.yaml", 3, "a\nb", "message with \u202e and \x1b[2J")
    assert str(problem) == "evil\\x1b]0;title\\x07.yaml:3: a\\nb: message with \\u202e and \\x1b[2J"
    assert visible("tab\tand\nnewline") == "tab\tand\nnewline"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"a": 1, "a": 2}', 'duplicate key "a"'),
        ('{"a": NaN}', "NaN is not a number JSON allows"),
        ('{"a": 1' + "0" * 5000 + "}", "an integer with more than 4300 digits"),
        ("[" * 100_000 + "]" * 100_000, "nested more than"),
        ('{"a":\n 1,}', "x.json:2: not readable JSON"),
    ],
)
def test_json_with_the_same_limits(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "x.json"
    path.write_text(content)
    with pytest.raises(InputError) as caught:
        load_json(path)
    assert expected in str(caught.value)
    assert load_json(
        path.with_name("ok.json") if path.with_name("ok.json").write_text(json.dumps({"a": "\u001b"})) else path
    ).data == {"a": "\x1b"}
