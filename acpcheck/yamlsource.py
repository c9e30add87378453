"""YAML loading that remembers where every value came from.

PyYAML's ``safe_load`` forgets line numbers and silently keeps the last of two
duplicate keys. Plans, profiles and waivers all need ``file:line`` in their error
messages, so they are loaded here: the document is composed into nodes and turned
into plain Python values while a map from field path to line is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from acpcheck.errors import InputError, Problem

FieldPath = tuple[str | int, ...]


@dataclass
class LocatedDocument:
    """A loaded YAML document plus the line (1-based) of every key and item."""

    file: str
    data: Any
    lines: dict[FieldPath, int] = field(default_factory=dict)

    def line_of(self, path: FieldPath) -> int | None:
        """Line of ``path``, or of its nearest ancestor that exists in the file."""
        for cut in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:cut]))
            if line is not None:
                return line
        return None

    def problem(self, path: FieldPath, message: str) -> Problem:
        """A problem located at ``path`` in this document."""
        return Problem(self.file, self.line_of(path), dotted(path), message)


def dotted(path: FieldPath) -> str:
    """``("spec", "nodes", 2, "ipv4")`` -> ``spec.nodes[2].ipv4``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def load_yaml(path: str | Path) -> LocatedDocument:
    """Load one YAML document with line numbers; raise InputError on any problem."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError([Problem(name, None, "", "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError([Problem(name, None, "", f"cannot read file: {exc}")]) from None
    return parse_yaml(text, name)


def parse_yaml(text: str, name: str) -> LocatedDocument:
    """Parse YAML text (see load_yaml); ``name`` is used in messages."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        reason = exc.problem or exc.context or "invalid YAML"
        raise InputError([Problem(name, line, "", f"invalid YAML: {reason}")]) from None
    except yaml.YAMLError as exc:
        raise InputError([Problem(name, None, "", f"invalid YAML: {exc}")]) from None
    finally:
        loader.dispose()
    document = LocatedDocument(name, None)
    if root is None:
        return document
    problems: list[Problem] = []
    document.lines[()] = root.start_mark.line + 1
    document.data = _convert(loader, root, (), document, problems)
    if problems:
        raise InputError(problems)
    return document


def _convert(
    loader: yaml.SafeLoader,
    node: yaml.Node,
    path: FieldPath,
    document: LocatedDocument,
    problems: list[Problem],
) -> Any:
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # honour YAML merge keys (<<) like safe_load does
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                problems.append(Problem(document.file, key_node.start_mark.line + 1, dotted(path), "mapping keys must be plain scalars"))
                continue
            key_text = str(key)
            child = (*path, key_text)
            if key_text in result:
                problems.append(
                    Problem(document.file, key_node.start_mark.line + 1, dotted(child), "duplicate key (the first one would be silently ignored)")
                )
                continue
            document.lines[child] = key_node.start_mark.line + 1
            result[key_text] = _convert(loader, value_node, child, document, problems)
        return result
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item_node in enumerate(node.value):
            child = (*path, index)
            document.lines[child] = item_node.start_mark.line + 1
            items.append(_convert(loader, item_node, child, document, problems))
        return items
    return loader.construct_object(node, deep=True)
