"""Validate a located YAML document against a pydantic model, with located messages.

Shared by the plan, profiles and waivers so that every input file reports its
problems the same way: ``file:line: field: what is wrong``, with a did-you-mean
for unknown fields, and without echoing input values pydantic would otherwise show.
A value a validator quotes back is left out where it could be a secret
(``acpcheck.secretshapes.could_be_secret``), and so is the name of an unknown field
that does not look like a field name.

Also the literal-secret scan (``find_literal_secrets``) that every input document
goes through before it is validated: a value under a secret-looking key, and any
string anywhere (keys, list items, annotation values) that holds a secret shape
(``acpcheck.secretshapes.SHAPES``: a private key, a URL with user info, an inline
``password=…``, a well-known token format, a password hash, a shadow-file line …) is
refused without being echoed.
"""

from __future__ import annotations

import difflib
import re
import typing
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from acpcheck.errors import Problem, not_valid_here
from acpcheck.secretshapes import could_be_secret, secret_shape
from acpcheck.yamlsource import FieldPath, LocatedDocument, dotted

M = TypeVar("M", bound=BaseModel)

#: Regex pattern -> a readable example, registered by the models that use it.
FORMAT_EXAMPLES: dict[str, str] = {}


def validate_document(
    model: type[M],
    doc: LocatedDocument,
    data: Any = None,
    at: FieldPath = (),
    hidden: frozenset[FieldPath] = frozenset(),
) -> tuple[M | None, list[Problem]]:
    """Validate ``data`` (default: the whole document), found at path ``at`` of the
    document; return the model or the problems. Problems at or under a ``hidden``
    path (a refused secret, already reported) are left out."""
    value = doc.data if data is None else data
    try:
        return model.model_validate(value), []
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            loc = (*at, *_document_path(value, tuple(error["loc"])))
            if any(loc[: len(path)] == path for path in hidden):
                continue
            if error["type"] == "extra_forbidden" and loc and not _shows_as_field(loc[-1]):
                line = doc.line_of(loc)
                why = (
                    "an unknown field whose name is not shown: it does not look like a field "
                    f"name{_unknown_field_hint(error, model)}"
                )
                problems.append(Problem(doc.file, line, dotted(loc[:-1]), not_valid_here(doc.file, line, why)))
                continue
            problems.append(doc.problem(loc, _describe(error, model)))
        return None, problems


#: A key an "unknown field" message names: what field names are made of (our bound on
#: the length: the longest field name is far shorter). Any other key could be a secret
#: or a line of some other file (``root:$6$…``), and only its line is named.
_FIELD_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def _shows_as_field(key: str | int) -> bool:
    return isinstance(key, int) or (_FIELD_NAME.fullmatch(key) is not None and secret_shape(key) is None)


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
    if kind == "extra_forbidden":
        return f"unknown field{_unknown_field_hint(error, model)}"
    if kind == "missing":
        return "required field is missing"
    if kind == "literal_error":
        return f"must be one of {error['ctx']['expected']}"
    if kind == "string_pattern_mismatch":
        pattern = error["ctx"]["pattern"]
        example = FORMAT_EXAMPLES.get(pattern)
        return (
            f"has the wrong format (expected e.g. {example})"
            if example
            else f"has the wrong format (must match {pattern})"
        )
    if kind in ("value_error", "assertion_error"):
        return _unquote_secrets(
            str(error["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, "), error.get("input")
        )
    return str(error["msg"])


def _unknown_field_hint(error: Any, model: type[BaseModel]) -> str:
    loc = error["loc"]
    parent = _model_at(model, loc[:-1])
    known = _field_names(parent) if parent else []
    close = difflib.get_close_matches(str(loc[-1])[:64], known, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else (f" (allowed: {', '.join(known)})" if known else "")


def _unquote_secrets(message: str, value: Any) -> str:
    """``message`` without the value (or the items of a list value) it quotes, where
    that could be a secret: our validators quote what they could not understand
    (``'10.0.0.300' is not a valid IP address``), which is a help for an address and a
    leak for a password typed in its place."""
    items = value if isinstance(value, (list, tuple)) else [value]
    withheld = False
    for item in items:
        if isinstance(item, str) and could_be_secret(item):
            for form in (repr(item), item):
                if form and form in message:
                    message = message.replace(form, "this value")
                    withheld = True
    return f"{message} (value not shown)" if withheld else message


def _document_path(data: Any, loc: tuple[Any, ...]) -> FieldPath:
    """pydantic's error location as a path of the document. pydantic inserts union
    branch and validator names (``function-after[…]``) into ``loc``; a part is kept
    when the document has it at that place (so a key holding brackets keeps its
    name), or when it is a field the document lacks (a missing field)."""
    path: list[str | int] = []
    current = data
    for part in loc:
        if isinstance(current, dict) and str(part) in current:
            path.append(str(part))
            current = current[str(part)]
        elif isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            path.append(part)
            current = current[part]
        elif isinstance(part, str) and ("[" in part or part.startswith("function-")):
            continue
        else:
            path.append(part)
            current = None
    return tuple(path)


# ---------------------------------------------------------------------------
# Literal secrets

#: Keys that would hold a secret literal. Compared case-insensitively with
#: separators removed, so "private_key", "privateKey" and "PrivateKey" all match.
SECRET_KEYS = frozenset(
    {
        "password",
        "passwd",
        "passphrase",
        "privatekey",
        "token",
        "secret",
        "apikey",
        "accesskey",
        "secretkey",
        "clientkeydata",
        "clientsecret",
        "credentials",
    }
)
_SECRET_HINT = {
    "password": "passwordEnv (an environment variable name) or passwordFile",
    "passwd": "passwordEnv (an environment variable name) or passwordFile",
    "passphrase": "passphraseEnv",
    "privatekey": "privateKeyFile",
}


def normalise_key(key: str) -> str:
    return re.sub(r"[^a-z]", "", key.lower())


def find_literal_secrets(doc: LocatedDocument, secret_keys: bool = True) -> tuple[list[Problem], frozenset[FieldPath]]:
    """Report every literal secret in ``doc.data`` and take it out of the data, so that
    no later message can quote it. Returns the problems and the paths taken out (give
    them to ``validate_document`` as ``hidden``). The values are never echoed.

    ``secret_keys``: also refuse any value under a secret-looking key (plans)."""
    problems: list[Problem] = []
    hidden: set[FieldPath] = set()
    stack: list[tuple[Any, FieldPath]] = [(doc.data, ())]
    while stack:
        data, path = stack.pop()
        if isinstance(data, dict):
            for key in list(data):
                child = (*path, key)
                shape = secret_shape(key)
                if shape:
                    line = doc.line_of(child)
                    why = f"a key that looks like {shape.kind}; key and value not shown"
                    problems.append(Problem(doc.file, line, dotted(path), not_valid_here(doc.file, line, why)))
                    hidden.add(path)
                    del data[key]
                elif secret_keys and normalise_key(key) in SECRET_KEYS:
                    hint = _SECRET_HINT.get(normalise_key(key), "a reference (…Env or …File)")
                    problems.append(doc.problem(child, f"literal secrets are refused (value not shown); use {hint}"))
                    hidden.add(child)
                    del data[key]
                elif isinstance(data[key], str):
                    if _refuse_string(doc, data[key], child, problems):
                        hidden.add(child)
                        data[key] = ""
                else:
                    stack.append((data[key], child))
        elif isinstance(data, list):
            for index, item in enumerate(data):
                child = (*path, index)
                if isinstance(item, str):
                    if _refuse_string(doc, item, child, problems):
                        hidden.add(child)
                        data[index] = ""
                else:
                    stack.append((item, child))
        elif isinstance(data, str) and _refuse_string(doc, data, path, problems):
            hidden.add(path)
            doc.data = ""
    problems.sort(key=lambda p: p.line or 0)
    return problems, frozenset(hidden)


def _refuse_string(doc: LocatedDocument, text: str, path: FieldPath, problems: list[Problem]) -> bool:
    shape = secret_shape(text)
    if shape is None:
        return False
    what, _, advice = shape.refusal.partition("; ")
    problems.append(doc.problem(path, f"{what} (value not shown)" + (f"; {advice}" if advice else "")))
    return True
