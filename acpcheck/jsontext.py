"""JSON text a person can read that is still fast to write for 1,000 nodes.

``json.dumps(..., indent=…)`` makes the standard library switch to its pure-Python
encoder: for the results of a 1,000-node run or a run's 1,000 facts files that is
seconds of CPU. ``dumps(value, expand=n)`` indents only the outer ``n`` levels and
writes everything below as one compact line with the C encoder: results.json has
one result per line, a facts file one fact per line — easy to read, diff and grep.
"""

from __future__ import annotations

import json
from typing import Any


def dumps(value: Any, expand: int = 1, *, indent: str = "  ", allow_nan: bool = False, _depth: int = 0) -> str:
    """``value`` as JSON (UTF-8 text; NaN only when allowed), its outer ``expand`` levels indented."""
    if expand <= 0 or not isinstance(value, (dict, list)) or not value:
        return json.dumps(value, ensure_ascii=False, allow_nan=allow_nan)
    inner = indent * (_depth + 1)
    if isinstance(value, dict):
        parts = [
            f"{inner}{json.dumps(str(k), ensure_ascii=False)}: "
            f"{dumps(v, expand - 1, indent=indent, allow_nan=allow_nan, _depth=_depth + 1)}"
            for k, v in value.items()
        ]
        return "{\n" + ",\n".join(parts) + "\n" + indent * _depth + "}"
    parts = [inner + dumps(v, expand - 1, indent=indent, allow_nan=allow_nan, _depth=_depth + 1) for v in value]
    return "[\n" + ",\n".join(parts) + "\n" + indent * _depth + "]"
