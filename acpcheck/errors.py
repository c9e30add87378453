"""Errors that stop a run before anything connects (exit code 4).

Every problem with user input (plan, profile, waivers, facts, options) is reported
as ``file:line: field: what is wrong``, all of them at once, so a user fixes a file
in one pass instead of one error per run. Whatever a problem quotes from the input
(a file name, a key) is made visible first: no control or escape character from
the input reaches a terminal raw (``visible``). And nothing secret-shaped is quoted
at all (``acpcheck.secretshapes``): a problem whose file name, field or message holds
one says what it looks like instead, ``line 3 of FILE is not valid here``, whoever
built it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from acpcheck.secretshapes import could_be_secret, secret_shape

#: Characters shown as escapes wherever input text reaches a person: C0 and C1
#: controls (tab and newline excepted), DEL, bidirectional and zero-width
#: formatting characters, the BOM, and lone surrogates (which no file can hold).
_INVISIBLE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\ud800-\udfff\ufffe\uffff]"
)
_INVISIBLE_OR_NEWLINE = re.compile(f"{_INVISIBLE.pattern[:-1]}\t\n]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code == 0x0A:
        return "\\n"
    if code == 0x09:
        return "\\t"
    if code == 0x0D:
        return "\\r"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def has_invisible(text: str) -> bool:
    """Whether ``visible(text)`` would change anything (tabs and newlines are visible)."""
    return _INVISIBLE.search(text) is not None


def visible(text: str, one_line: bool = False) -> str:
    """``text`` with every control, escape and invisible formatting character written
    as an escape (``\\x1b``, ``\\u202e``); with ``one_line`` also tabs and newlines."""
    pattern = _INVISIBLE_OR_NEWLINE if one_line else _INVISIBLE
    return pattern.sub(_escape, text) if pattern.search(text) else text  # most text has none: a search is cheaper


def quoted(value: object, password_like: bool = True) -> str | None:
    """``'value'``, for a message about a value acpcheck could not make sense of; None
    where the value could be a secret (``could_be_secret``): then the message names the
    field and the kind of problem only."""
    if not isinstance(value, str) or could_be_secret(value, password_like):
        return None
    return repr(visible(value, one_line=True))


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input file, located as precisely as we can."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        shape = secret_shape(self.file)
        file = f"(a file name that looks like {shape.kind}, not shown)" if shape else visible(self.file, one_line=True)
        where = f"{file}:{self.line}" if self.line else file
        shape = secret_shape(self.field)
        if shape is not None:  # a key that is a secret: neither it nor the path to it
            return f"{where}: {not_valid_here(file, self.line, f'it looks like {shape.kind}; not shown')}"
        field = f" {visible(self.field, one_line=True)}:" if self.field else ""
        shape = secret_shape(self.message)
        if shape is not None:  # a message that quotes a secret (its author should not have)
            return f"{where}:{field} not valid here (it looks like {shape.kind}; not shown)"
        return f"{where}:{field} {visible(self.message, one_line=True)}"


def not_valid_here(file: str, line: int | None, why: str) -> str:
    """What a problem says instead of input that must not be shown: ``line 3 of
    FILE is not valid here (<why>)``, ``why`` saying what it looks like and that it is
    not shown."""
    place = f"line {line} of {file}" if line else "a value given here"
    return f"{place} is not valid here ({why})"


class InputError(Exception):
    """Bad input: a list of problems, printed one per line; exit code 4."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))
