"""Validate a located YAML document against a pydantic model, with located messages.

Shared by the plan, profiles and waivers so that every input file reports its
problems the same way: ``file:line: field: what is wrong``, with a did-you-mean
for unknown fields, and without echoing input values pydantic would otherwise show.
"""

from __future__ import annotations

import difflib
import typing
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from acpcheck.errors import Problem
from acpcheck.yamlsource import LocatedDocument

M = TypeVar("M", bound=BaseModel)

#: Regex pattern -> a readable example, registered by the models that use it.
FORMAT_EXAMPLES: dict[str, str] = {}


def validate_document(model: type[M], doc: LocatedDocument, data: Any = None) -> tuple[M | None, list[Problem]]:
    """Validate ``data`` (default: the whole document); return the model or the problems."""
    try:
        return model.model_validate(doc.data if data is None else data), []
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_input=False, include_url=False):
            loc = _strip_model_suffix(tuple(error["loc"]))
            problems.append(doc.problem(loc, _describe(error, model)))
        return None, problems


def _model_at(model: type[BaseModel], loc: tuple[str | int, ...]) -> type[BaseModel] | None:
    """The model class that validates the mapping at ``loc`` (for did-you-mean)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = next((f for name, f in current.model_fields.items() if (f.alias or name) == part), None)
        if field is None:
            return None
        current = _innermost_model(field.annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _innermost_model(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _innermost_model(arg)
        if found is not None:
            return found
    return None


def _field_names(model: type[BaseModel]) -> list[str]:
    return [field.alias or name for name, field in model.model_fields.items()]


def _describe(error: Any, model: type[BaseModel]) -> str:
    """Our wording for one pydantic error. Input values are shown only where our
    own validators chose to (never for free text, which may be a mistyped secret)."""
    kind = error["type"]
    loc = error["loc"]
    if kind == "extra_forbidden":
        parent = _model_at(model, loc[:-1])
        known = _field_names(parent) if parent else []
        close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else (f" (allowed: {', '.join(known)})" if known else "")
        return f"unknown field{hint}"
    if kind == "missing":
        return "required field is missing"
    if kind == "literal_error":
        return f"must be one of {error['ctx']['expected']}"
    if kind == "string_pattern_mismatch":
        pattern = error["ctx"]["pattern"]
        example = FORMAT_EXAMPLES.get(pattern)
        return f"has the wrong format (expected e.g. {example})" if example else f"has the wrong format (must match {pattern})"
    if kind in ("value_error", "assertion_error"):
        return str(error["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    return str(error["msg"])


def _strip_model_suffix(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    # pydantic inserts the union branch or function names into loc for some
    # annotated types; keep only the parts that exist in the document.
    return tuple(part for part in loc if not (isinstance(part, str) and ("[" in part or part.startswith("function-"))))


