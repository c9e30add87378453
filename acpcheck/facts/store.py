"""Save gathered facts to a directory and load them back, exactly.

One JSON file per node, ``<node>.json`` (the name percent-encoded if it holds
characters a file name cannot), schema ``acpcheck/facts/v1``:

- facts:   the fields of ``NodeFacts`` (sets as sorted lists, tuples as lists);
- failure: ``{"schema": …, "node": …, "failure": {"kind", "message", "extra"}}``.

The node name inside the file is authoritative, not the file name. ``save_facts``
writes the files of the nodes it is given and deletes nothing: facts of other
nodes in the directory stay (a replay with a plan reads the plan's nodes only).
JSON files with another ``schema`` (results.json …) are ignored, so facts may
share a report directory. Files are read by the one hardened loader
(``acpcheck.yamlsource.load_json``: regular files only, a size limit); decoding
follows NodeFacts' type hints, so a field added to the model round-trips without a
change here, and a value of the wrong shape is bad input naming the file and field.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote

from acpcheck import jsontext
from acpcheck.errors import InputError, Problem
from acpcheck.facts.model import FACTS_SCHEMA, GatherFailure, NodeFacts
from acpcheck.transport.errors import FAILURE_KINDS
from acpcheck.yamlsource import load_json

if TYPE_CHECKING:
    from acpcheck.model.plan import ClusterPlan

FACTS_SCHEMA_PREFIX = FACTS_SCHEMA.rsplit("/", 1)[0] + "/"  # "acpcheck/facts/"
MISSING_MESSAGE = "no facts saved for this node"


def facts_file_name(node: str) -> str:
    return quote(node, safe="-_.@+=,") + ".json"


# ---------------------------------------------------------------------------
# Encoding


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        # Field by field, in field order (dataclasses.asdict deep-copies every value first).
        return {field.name: _jsonable(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (frozenset, set)):
        return sorted(_jsonable(v) for v in value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def encode(result: NodeFacts | GatherFailure) -> dict[str, Any]:
    """The JSON document of one node's result."""
    if isinstance(result, NodeFacts):
        return {**cast(dict[str, Any], _jsonable(result)), "schema": FACTS_SCHEMA}
    return {
        "schema": FACTS_SCHEMA,
        "node": result.node,
        "failure": {"kind": result.kind, "message": result.message, "extra": _jsonable(result.extra)},
    }


# ---------------------------------------------------------------------------
# Decoding, driven by the dataclass type hints


def _decode_as(hint: Any, value: Any) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            if type(None) not in args:
                raise ValueError("null where a value is required")
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _decode_as(inner, value)
    if origin is tuple:
        return tuple(_decode_as(args[0], v) for v in _expect(list, value))
    if origin is frozenset:
        return frozenset(_decode_as(args[0], v) for v in _expect(list, value))
    if origin is dict:
        return {k: _decode_as(args[1], v) for k, v in _expect(dict, value).items()}
    if dataclasses.is_dataclass(hint):
        return _decode_dataclass(hint, _expect(dict, value))
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"expected a number, got {type(value).__name__}")
        return float(value)
    if hint is Any:
        return value
    return _expect(hint, value)


def _expect(kind: type, value: Any) -> Any:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"expected {kind.__name__}, got {type(value).__name__}")
    return value


@functools.cache
def _type_hints(cls: Any) -> dict[str, Any]:
    return typing.get_type_hints(cls)  # resolving string annotations is slow: once per class


def _decode_dataclass(cls: Any, data: dict[str, Any]) -> Any:
    hints = _type_hints(cls)
    values = {}
    for field in dataclasses.fields(cls):
        if field.name in data:
            try:
                values[field.name] = _decode_as(hints[field.name], data[field.name])
            except ValueError as exc:
                raise ValueError(f"{field.name}: {exc}") from None
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ValueError(f"{field.name}: missing")
    return cls(**values)


def _field(name: str, kind: type, value: Any) -> Any:
    try:
        return _expect(kind, value)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None


def decode(data: dict[str, Any]) -> NodeFacts | GatherFailure:
    """One node's result from its JSON document; ValueError says what is wrong."""
    if data.get("schema") != FACTS_SCHEMA:
        raise ValueError(f"schema is not {FACTS_SCHEMA} (written by another acpcheck version?)")
    if "failure" in data:
        failure = _field("failure", dict, data["failure"])
        kind = failure.get("kind")
        if not isinstance(kind, str) or kind not in FAILURE_KINDS:
            shown = repr(kind)[:40] if isinstance(kind, str) else type(kind).__name__
            raise ValueError(f"failure.kind {shown} is not one of {', '.join(sorted(FAILURE_KINDS))}")
        extra = _field("failure.extra", dict, failure.get("extra") or {})
        return GatherFailure(
            _field("node", str, data.get("node")),
            kind,
            _field("failure.message", str, failure.get("message", "")),
            dict(extra),
        )
    return cast(NodeFacts, _decode_dataclass(NodeFacts, data))


# ---------------------------------------------------------------------------
# Directories


def save_facts(directory: str | Path, results: Mapping[str, NodeFacts | GatherFailure]) -> list[Path]:
    """Write one file per node (atomically; nothing else is touched); return the paths."""
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for node, result in results.items():
        path = target / facts_file_name(node)
        temporary = path.with_name(f".{path.name}.tmp")
        # Keys in the order the facts have them (not sorted): a replay must hand the
        # checks the very same mappings, so that its results.json is byte-identical.
        temporary.write_text(
            jsontext.dumps(encode(result), expand=1, allow_nan=True) + "\n", encoding="utf-8"
        )  # one fact per line
        os.replace(temporary, path)
        written.append(path)
    return written


def _facts_documents(directory: Path) -> list[tuple[Path, Any]]:
    """(path, parsed JSON or the error text) of every acpcheck facts file in ``directory``."""
    found: list[tuple[Path, Any]] = []
    for path in sorted(directory.glob("*.json")):
        try:
            data = load_json(path).data
        except InputError as error:
            found.extend((path, problem) for problem in error.problems)
            continue
        schema = data.get("schema") if isinstance(data, dict) else None
        if isinstance(schema, str) and schema.startswith(FACTS_SCHEMA_PREFIX):
            found.append((path, data))
    return found


def load_facts(directory: str | Path, plan: ClusterPlan | None = None) -> dict[str, NodeFacts | GatherFailure]:
    """The results saved in ``directory``, by node name.

    With a plan: exactly the plan's nodes, in plan order; a node without a file
    is a GatherFailure "probe" ("no facts saved for this node"), files of other
    nodes are ignored. Without: every node in the directory, sorted by name.
    A damaged facts file is bad input: InputError listing every such file.
    """
    source = Path(directory)
    if not source.is_dir():
        raise InputError([Problem(str(source), None, "", "facts directory not found")])
    loaded: dict[str, NodeFacts | GatherFailure] = {}
    problems = []
    for path, data in _facts_documents(source):
        if isinstance(data, Problem):
            problems.append(data)
            continue
        try:
            result = decode(data)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            problems.append(Problem(str(path), None, "", f"not a valid facts file: {exc}"))
            continue
        loaded[result.node] = result
    if problems:
        raise InputError(problems)
    if plan is None:
        return dict(sorted(loaded.items()))
    return {
        node.name: loaded.get(node.name) or GatherFailure(node.name, "probe", MISSING_MESSAGE)
        for node in plan.spec.nodes
    }
