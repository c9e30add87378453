"""The one loader for every input file: YAML (plans, profiles, waivers, matrices,
lab scenarios) and JSON (saved facts), hardened against hostile and careless input.

Every file is

- opened without blocking and refused at once unless it is a regular file (a
  FIFO, a device such as ``/dev/zero``, a directory or a socket);
- read once, up to a size limit (``MAX_INPUT_BYTES``, 16 MiB; the environment
  variable ``ACPCHECK_MAX_INPUT_BYTES`` overrides it), and decoded as UTF-8 (a
  byte that is not UTF-8 is reported with its line);
- parsed with libyaml's event parser where PyYAML has it (the pure-Python one
  otherwise), building plain Python values iteratively while recording the line
  of every key and item, with limits on nesting (``MAX_DEPTH``) and on what
  aliases may add (``MAX_ALIAS_VALUES``: no alias bomb, no self-referencing alias);
- refused with ``file:line: message`` (``InputError``, exit 4) for anything the
  loader cannot turn into plain data: control characters (raw, or escaped in a
  quoted string), duplicate keys, non-scalar keys, tags other than YAML's plain
  types, impossible dates, integers too long to convert, infinities and NaN.

The result is a ``LocatedDocument``: the data plus the line of every field path,
which the models use to put ``file:line`` on every problem.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from acpcheck.errors import InputError, Problem, visible

_EventParser: type[Any] | None
try:  # libyaml: the same grammar, several times faster
    from yaml._yaml import CParser

    _EventParser = CParser
except ImportError:  # pragma: no cover — PyYAML built without libyaml
    _EventParser = None

FieldPath = tuple[str | int, ...]

#: Largest input file read, in bytes; ``ACPCHECK_MAX_INPUT_BYTES`` overrides it.
MAX_INPUT_BYTES = 16 * 1024 * 1024
#: Deepest nesting of mappings and lists (a plan needs about 7).
MAX_DEPTH = 64
#: Values that aliases (``*name``) may add to a document in all (an alias bomb adds billions).
MAX_ALIAS_VALUES = 100_000
#: Where a problem must quote a tag or a parser's message, at most this many characters of it.
_QUOTE_LIMIT = 80

#: What YAML forbids in a file (PyYAML's Reader.NON_PRINTABLE), plus what we refuse in a
#: value even when written as an escape in a quoted string: C0 and C1 controls other than
#: tab, line feed and carriage return, DEL, and bidirectional overrides.
_FORBIDDEN_IN_TEXT = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_FORBIDDEN_IN_VALUE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")

_TAG = "tag:yaml.org,2002:"
_SCALAR_TAGS = {f"{_TAG}{name}" for name in ("null", "bool", "int", "float", "str", "timestamp")}
_MAP_TAG, _SEQ_TAG, _MERGE_TAG = f"{_TAG}map", f"{_TAG}seq", f"{_TAG}merge"


@dataclass
class LocatedDocument:
    """A loaded document plus the line (1-based) of every key and item."""

    file: str
    data: Any
    lines: dict[FieldPath, int] = field(default_factory=dict)
    #: The decoded text, for whoever needs it again without reading the file (xdist
    #: workers); None for a document not parsed from text.
    text: str | None = None

    def line_of(self, path: FieldPath) -> int | None:
        """Line of ``path``, or of its nearest ancestor that exists in the file (line 1
        for a file that has no values at all)."""
        for cut in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:cut]))
            if line is not None:
                return line
        return 1 if self.text is not None else None

    def problem(self, path: FieldPath, message: str) -> Problem:
        """A problem located at ``path`` in this document."""
        return Problem(self.file, self.line_of(path), dotted(path), message)


_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./:@-]*$")
#: Longest key a field path writes out (our choice: far longer than any field name or
#: annotation key; a Kubernetes annotation key is at most 253 + 1 + 63).
_KEY_LIMIT = 320


def dotted(path: FieldPath) -> str:
    """``("spec", "nodes", 2, "ipv4")`` -> ``spec.nodes[2].ipv4``.

    A key that could be misread in that form (brackets, spaces, newlines, quotes,
    an empty key) is written in brackets as a JSON string: ``annotations["a b\\n"]``.
    A key longer than any name (``_KEY_LIMIT``) is not written at all, only its length:
    it is more likely a pasted value (a key body, a token) than a name.
    """
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif len(part) > _KEY_LIMIT:
            text += f"[<a key of {len(part):,} characters>]"
        elif _PLAIN_KEY.match(part):
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(part, ensure_ascii=False)}]"
    return text


# ---------------------------------------------------------------------------
# Reading


def max_input_bytes() -> int:
    """The size limit in force (``ACPCHECK_MAX_INPUT_BYTES`` or ``MAX_INPUT_BYTES``)."""
    configured = os.environ.get("ACPCHECK_MAX_INPUT_BYTES", "")
    return int(configured) if configured.isdigit() and int(configured) > 0 else MAX_INPUT_BYTES


_FILE_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a device"),
    (stat.S_ISBLK, "a device"),
    (stat.S_ISSOCK, "a socket"),
)


def read_input(path: str | Path, limit: int | None = None) -> bytes:
    """The bytes of a regular file, within the size limit (``limit``, else the input
    limit in force); InputError otherwise.

    Opened with O_NONBLOCK, so a FIFO nobody writes to is refused instead of waited on.
    """
    name = str(path)
    limit = limit or max_input_bytes()

    def refuse(message: str) -> InputError:
        return InputError([Problem(name, None, "", message)])

    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise refuse("file not found") from None
    except PermissionError:
        raise refuse("cannot read file: permission denied") from None
    except (OSError, ValueError) as exc:
        raise refuse(f"cannot read file: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            kind = next((label for test, label in _FILE_KINDS if test(status.st_mode)), "not a file")
            raise refuse(f"not a regular file (it is {kind}); acpcheck reads regular files only")
        if status.st_size > limit:
            raise refuse(_too_large(status.st_size, limit))
        chunks = []
        remaining = limit + 1
        while remaining > 0:
            chunk = os.read(descriptor, min(remaining, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        data = b"".join(chunks)
        if len(data) > limit:
            raise refuse(_too_large(len(data), limit))
        return data
    except OSError as exc:
        raise refuse(f"cannot read file: {exc.strerror or exc}") from None
    finally:
        os.close(descriptor)


def _too_large(size: int, limit: int) -> str:
    return (
        f"file too large: {size:,} bytes, more than the limit of {limit:,} (set ACPCHECK_MAX_INPUT_BYTES to raise it)"
    )


def decode(data: bytes, name: str) -> str:
    """UTF-8 text (a leading BOM dropped); InputError naming the line of a bad byte."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError([Problem(name, 1, "", "the file is UTF-16 (or UTF-32); save it as UTF-8")])
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise InputError(
            [
                Problem(
                    name,
                    line,
                    "",
                    f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at column {column}); save the file as UTF-8",
                )
            ]
        ) from None


def _forbidden_character(text: str, name: str, pattern: re.Pattern[str], where: str) -> Problem | None:
    found = pattern.search(text)
    if found is None:
        return None
    line = text.count("\n", 0, found.start()) + 1
    column = found.start() - (text.rfind("\n", 0, found.start()) + 1) + 1
    return Problem(
        name,
        line,
        "",
        f"control character U+{ord(found.group()):04X} {where} (column {column}) is not allowed; remove it",
    )


# ---------------------------------------------------------------------------
# YAML


def load_yaml(path: str | Path) -> LocatedDocument:
    """Read and parse one YAML file (see the module docstring); InputError on any problem."""
    name = str(path)
    return parse_yaml(decode(read_input(path), name), name)


class _Abort(Exception):
    """A problem after which the rest of the document cannot be read."""

    def __init__(self, problem: Problem):
        self.problem = problem


@dataclass
class _Frame:
    """A mapping or list being built."""

    value: Any
    path: FieldPath
    anchor: str | None
    line: int
    key: Any = None  # a mapping's pending key: _NO_KEY while a key is expected
    key_line: int = 0
    discard: bool = False  # the value of a duplicate or invalid key: read, then dropped
    merges: list[dict[str, Any]] = field(default_factory=list)
    size: int = 1  # values in this collection, itself included (for the alias budget)


_NO_KEY = object()
_MERGE = object()


def parse_yaml(text: str, name: str) -> LocatedDocument:
    """Parse YAML text (see load_yaml); ``name`` is used in messages."""
    problem = _forbidden_character(text, name, _FORBIDDEN_IN_TEXT, "in the file")
    if problem is not None:
        raise InputError([problem])
    document = LocatedDocument(name, None, text=text)
    builder = _Builder(document)
    parser = _EventParser(text) if _EventParser is not None else _PyEventParser(text)
    try:
        builder.run(parser)
    except _Abort as abort:
        raise InputError([abort.problem]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        reason = exc.problem or exc.context or "invalid YAML"
        raise InputError(
            [Problem(name, mark.line + 1 if mark else None, "", f"invalid YAML: {_quote(reason)}")]
        ) from None
    except yaml.YAMLError as exc:
        position = getattr(exc, "position", None)
        line = text.count("\n", 0, position) + 1 if isinstance(position, int) else None
        raise InputError(
            [Problem(name, line, "", f"invalid YAML: {_quote(str(getattr(exc, 'reason', None) or exc))}")]
        ) from None
    except RecursionError:  # pragma: no cover — the builder is iterative; a parser bug
        raise InputError([Problem(name, None, "", f"nested too deeply (more than {MAX_DEPTH} levels)")]) from None
    finally:
        parser.dispose()
    if builder.problems:
        raise InputError(sorted(builder.problems, key=lambda p: p.line or 0))
    return document


def _quote(text: str) -> str:
    text = visible(str(text), one_line=True)
    return text if len(text) <= _QUOTE_LIMIT else text[:_QUOTE_LIMIT] + "…"


class _PyEventParser(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser):
    """PyYAML's pure-Python event parser (used only where libyaml is missing)."""

    def __init__(self, text: str):
        yaml.reader.Reader.__init__(self, text)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)

    def dispose(self) -> None:
        self.states = []
        self.state = None


class _Builder:
    """Turns parser events into plain values and line numbers, iteratively."""

    def __init__(self, document: LocatedDocument):
        self.document = document
        self.name = document.file
        self.problems: list[Problem] = []
        self.stack: list[_Frame] = []
        self.anchors: dict[str, tuple[Any, int]] = {}  # name -> (value, number of values)
        self.open_anchors: set[str] = set()
        self.alias_budget = MAX_ALIAS_VALUES
        self.resolver = yaml.resolver.Resolver()
        self.constructor = yaml.constructor.SafeConstructor()
        self.root: Any = None
        self.root_seen = False

    def run(self, parser: Any) -> None:
        documents = 0
        while parser.check_event():
            event = parser.get_event()
            if isinstance(event, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise _Abort(
                        Problem(
                            self.name,
                            self.line(event),
                            "",
                            "a second YAML document (---) in the file; give one document",
                        )
                    )
            elif isinstance(event, yaml.ScalarEvent):
                self.scalar(event)
            elif isinstance(event, yaml.MappingStartEvent):
                self.open(event, {}, _MAP_TAG)
            elif isinstance(event, yaml.SequenceStartEvent):
                self.open(event, [], _SEQ_TAG)
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                self.close()
            elif isinstance(event, yaml.AliasEvent):
                self.alias(event)
        self.document.data = self.root

    # -- values ---------------------------------------------------------------

    def line(self, event: Any) -> int:
        return int(event.start_mark.line) + 1

    def add_problem(self, line: int, path: FieldPath, message: str) -> None:
        self.problems.append(Problem(self.name, line, dotted(path), message))

    def scalar(self, event: yaml.ScalarEvent) -> None:
        line = self.line(event)
        tag = event.tag
        if tag is None or tag == "!":
            tag = self.resolver.resolve(yaml.ScalarNode, event.value, event.implicit)
        path = self.child_path()
        if tag == _MERGE_TAG and self.expecting_key():
            self.attach(_MERGE, line, 1, event.anchor)
            return
        value: Any = None
        if tag not in _SCALAR_TAGS:
            self.add_problem(
                line,
                path,
                f"tag {_show_tag(tag)} is not allowed (acpcheck reads plain YAML: strings, numbers, "
                "booleans, dates and null)",
            )
        elif tag == f"{_TAG}str":
            value = event.value
            if _FORBIDDEN_IN_VALUE.search(value):
                found = _FORBIDDEN_IN_VALUE.search(value)
                assert found is not None
                self.add_problem(
                    line,
                    path,
                    f"control character U+{ord(found.group()):04X} in a value is not allowed (value not shown)",
                )
                value = ""
        else:
            value = self.construct(tag, event, line, path)
        self.attach(value, line, 1, event.anchor)

    def construct(self, tag: str, event: yaml.ScalarEvent, line: int, path: FieldPath) -> Any:
        kind = tag[len(_TAG) :]
        # libyaml's events carry yaml._yaml.Mark, which the stubs do not accept for a node.
        node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)  # type: ignore[arg-type]
        try:
            value = self.constructor.yaml_constructors[tag](self.constructor, node)
        except ValueError as exc:
            if "digits" in str(exc):
                reason = "an integer with more than 4300 digits"
            elif kind == "timestamp":
                reason = f"not a real date ({_quote(str(exc))})"
            else:
                reason = f"not a valid {kind}"
            self.add_problem(line, path, f"{reason} (value not shown)" if kind != "timestamp" else reason)
            return None
        except Exception:  # noqa: BLE001 — a constructor that chokes on a value: bad input, whatever it raised
            self.add_problem(line, path, f"not a valid {kind} (value not shown)")
            return None
        if isinstance(value, float) and not math.isfinite(value):
            self.add_problem(line, path, "infinity and NaN are not allowed; give a finite number")
            return None
        if isinstance(value, dt.datetime) and kind == "timestamp" and value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value

    def open(self, event: Any, container: Any, default_tag: str) -> None:
        line = self.line(event)
        path = self.child_path()
        if len(self.stack) >= MAX_DEPTH:
            raise _Abort(Problem(self.name, line, dotted(path), f"nested more than {MAX_DEPTH} levels deep"))
        if event.tag not in (None, "!", default_tag):
            self.add_problem(
                line,
                path,
                f"tag {_show_tag(event.tag)} is not allowed here (acpcheck reads plain YAML mappings and lists)",
            )
        frame = _Frame(container, path, event.anchor, line, key=_NO_KEY if isinstance(container, dict) else None)
        if self.stack and self.expecting_key():
            # A mapping or list used as a key: read it, then report it.
            frame.discard = True
        if event.anchor is not None:
            self.open_anchors.add(event.anchor)
        self.stack.append(frame)

    def close(self) -> None:
        frame = self.stack.pop()
        if isinstance(frame.value, dict):
            for merged in frame.merges:
                for key, value in merged.items():
                    if key not in frame.value:
                        frame.value[key] = value
                        self.document.lines.setdefault((*frame.path, key), frame.line)
        if frame.anchor is not None:
            self.open_anchors.discard(frame.anchor)
        if frame.discard and self.stack and self.expecting_key():
            self.add_problem(frame.line, self.stack[-1].path, "mapping keys must be plain scalars")
            self.attach(_INVALID_KEY, frame.line, frame.size, frame.anchor)
            return
        self.attach(frame.value, frame.line, frame.size, frame.anchor)

    def alias(self, event: yaml.AliasEvent) -> None:
        line = self.line(event)
        anchor = event.anchor
        assert anchor is not None  # an alias always names its anchor
        if anchor in self.open_anchors:
            raise _Abort(
                Problem(
                    self.name,
                    line,
                    dotted(self.child_path()),
                    f"alias *{_quote(anchor)} refers to a value that contains it",
                )
            )
        if anchor not in self.anchors:
            raise _Abort(
                Problem(self.name, line, dotted(self.child_path()), f"alias *{_quote(anchor)} is not defined above")
            )
        value, size = self.anchors[anchor]
        self.alias_budget -= size
        if self.alias_budget < 0:
            raise _Abort(
                Problem(
                    self.name,
                    line,
                    dotted(self.child_path()),
                    f"aliases expand to more than {MAX_ALIAS_VALUES:,} values (an alias bomb?)",
                )
            )
        self.attach(_copy(value), line, size, None)

    # -- placing a finished value ------------------------------------------------

    def expecting_key(self) -> bool:
        return bool(self.stack) and isinstance(self.stack[-1].value, dict) and self.stack[-1].key is _NO_KEY

    def child_path(self) -> FieldPath:
        if not self.stack:
            return ()
        top = self.stack[-1]
        if isinstance(top.value, list):
            return (*top.path, len(top.value))
        if top.key is _NO_KEY or top.key is _MERGE or top.key is _INVALID_KEY:
            return top.path
        return (*top.path, top.key)

    def attach(self, value: Any, line: int, size: int, anchor: str | None) -> None:
        if anchor is not None and value is not _MERGE:
            self.anchors[anchor] = (value, size)
        if not self.stack:
            if not self.root_seen:
                self.root, self.root_seen = value, True
                self.document.lines[()] = line
            return
        top = self.stack[-1]
        top.size += size
        if isinstance(top.value, list):
            if not top.discard:
                self.document.lines[(*top.path, len(top.value))] = line
            top.value.append(value)
            return
        if top.key is _NO_KEY:  # this value is a key
            if value is _MERGE or value is _INVALID_KEY:
                top.key = value
            elif isinstance(value, (str, int, float, bool, dt.date)) or value is None:
                key = value if isinstance(value, str) else str(value)
                if key in top.value:
                    self.add_problem(line, (*top.path, key), "duplicate key (the first one would be silently ignored)")
                    top.key = _INVALID_KEY
                else:
                    top.key = key
                    top.key_line = line
            else:
                top.key = _INVALID_KEY
            return
        key, top.key = top.key, _NO_KEY
        if key is _INVALID_KEY or top.discard:
            return
        if key is _MERGE:
            merges = value if isinstance(value, list) else [value]
            if not all(isinstance(m, dict) for m in merges):
                self.add_problem(line, top.path, "a merge key (<<) takes a mapping or a list of mappings")
                return
            top.merges.extend(merges)
            return
        self.document.lines[(*top.path, key)] = top.key_line
        top.value[key] = value


_INVALID_KEY = object()


def _show_tag(tag: str) -> str:
    return _quote("!!" + tag[len(_TAG) :] if tag.startswith(_TAG) else tag)


def _copy(value: Any) -> Any:
    """A deep copy of an anchored value (bounded by the alias budget), so that no two
    places of the document share one mutable object."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


# ---------------------------------------------------------------------------
# JSON


def load_json(path: str | Path, limit: int | None = None) -> LocatedDocument:
    """Read and parse one JSON file with the same limits (``limit``: another size limit,
    for files acpcheck itself writes and that grow with the cluster); InputError on any problem.

    JSON carries no line numbers into the data; problems found later name the file
    and the field. Duplicate keys, NaN and Infinity, and integers too long to convert
    are refused here.
    """
    name = str(path)
    text = decode(read_input(path, limit), name)
    try:
        data = strict_json(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            [Problem(name, exc.lineno, "", f"not readable JSON: {exc.msg} (column {exc.colno})")]
        ) from None
    except _JsonProblem as exc:
        raise InputError([Problem(name, None, "", f"not readable JSON: {exc}")]) from None
    except RecursionError:
        raise InputError(
            [Problem(name, None, "", f"not readable JSON: nested more than {MAX_DEPTH} levels deep")]
        ) from None
    except ValueError as exc:
        reason = "an integer with more than 4300 digits" if "digits" in str(exc) else _quote(str(exc))
        raise InputError([Problem(name, None, "", f"not readable JSON: {reason}")]) from None
    if _depth(data) > MAX_DEPTH:
        raise InputError([Problem(name, None, "", f"not readable JSON: nested more than {MAX_DEPTH} levels deep")])
    return LocatedDocument(name, data, text=text)


class _JsonProblem(ValueError):
    pass


def strict_json(text: str) -> Any:
    """``json.loads`` refusing what two readers could read differently: a key given twice
    (which one counts?), NaN and Infinity (not JSON). ValueError naming the problem."""
    return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _JsonProblem(f"duplicate key {json.dumps(_quote(key), ensure_ascii=False)}")
        result[key] = value
    return result


def _no_constant(name: str) -> Any:
    raise _JsonProblem(f"{name} is not a number JSON allows")


def _depth(data: Any) -> int:
    deepest, stack = 0, [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            value = list(value.values())
        if isinstance(value, list):
            deepest = max(deepest, depth)
            if depth > MAX_DEPTH:
                return depth
            stack.extend((v, depth + 1) for v in value if isinstance(v, (dict, list)))
    return deepest
