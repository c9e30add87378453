"""What a journal record may hold: the checks shared by the journal, the action kinds
(``actions``, ``objects``) and the named commands (``commands``).

``rollback`` acts as root on what a journal says, so every value it will use is checked
before any node is touched: each function here returns None for a good value, or what
is wrong with it, said so that it reads after the field's name ("path: is not …").
"""

from __future__ import annotations

import posixpath
import re
from typing import Any

SHA256 = re.compile(r"[0-9a-f]{64}")
#: A run id names directories on the nodes (the backup directory, the lock): letters,
#: digits, ".", "_" and "-" only, so it can never climb out of them. ``new_run_id``
#: makes ``20261121T080000Z-1a2b``. The 128-character bound is ours, well above it.
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
#: PATH_MAX on Linux.
MAX_PATH = 4096


def node_path(value: Any) -> str | None:
    """An absolute path on a node, written the one plain way (no ``.``, ``..`` or ``//``), never ``/`` itself."""
    if not isinstance(value, str) or not value:
        return "is not a path"
    if not value.startswith("/") or value == "/":
        return "is not an absolute path below /"
    if "\0" in value or "\n" in value:
        return "holds a NUL or a newline"
    if len(value) > MAX_PATH:
        return f"is longer than {MAX_PATH} characters"
    if posixpath.normpath(value) != value or value.startswith("//"):
        return "is not a plain absolute path (it holds ., .. or a doubled /)"
    return None


def absolute(value: Any) -> str | None:
    """An absolute path given to a command as one quoted argument (any characters but NUL and newline)."""
    if not isinstance(value, str) or not value.startswith("/"):
        return "is not an absolute path"
    if "\0" in value or "\n" in value or len(value) > MAX_PATH:
        return "holds a NUL or a newline, or is too long"
    return None


def below(value: Any, directory: str) -> str | None:
    """A node path inside ``directory``."""
    return node_path(value) or (None if value.startswith(directory.rstrip("/") + "/") else f"is not inside {directory}")


def ancestor_of(value: Any, path: str) -> str | None:
    """A node path that is a directory above ``path``."""
    return node_path(value) or (None if path.startswith(value + "/") else f"is not a directory above {path}")


def sha256(value: Any) -> str | None:
    return None if isinstance(value, str) and SHA256.fullmatch(value) else "is not a sha256 (64 lowercase hex digits)"


def run_id(value: Any) -> str | None:
    return (
        None
        if isinstance(value, str) and RUN_ID.fullmatch(value)
        else "is not a run id (letters, digits, '.', '_' and '-', at most 128)"
    )


def text(value: Any) -> str | None:
    return None if isinstance(value, str) else "is not a string"


def optional_text(value: Any) -> str | None:
    return None if value is None or isinstance(value, str) else "is not a string or null"


def count(value: Any) -> str | None:
    """A non-negative integer (JSON has no other kind of number in a journal)."""
    return None if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else "is not a whole number"


def list_of(check: Any) -> Any:
    """A check of a JSON list whose every item passes ``check``."""

    def checked(value: Any) -> str | None:
        if not isinstance(value, list):
            return "is not a list"
        for index, item in enumerate(value):
            problem = check(item)
            if problem:
                return f"item {index + 1} {problem}"
        return None

    return checked


def problems(record: Any, checks: dict[str, Any], *, optional: frozenset[str] = frozenset()) -> list[tuple[str, str]]:
    """``(field, what is wrong)`` for each field of ``record`` that fails its check
    (a missing field fails unless it is ``optional``)."""
    if not isinstance(record, dict):
        return [("", "is not a JSON object")]
    found = []
    for key, check in checks.items():
        if key not in record:
            if key not in optional:
                found.append((key, "is missing"))
            continue
        problem = check(record[key])
        if problem:
            found.append((key, problem))
    return found
