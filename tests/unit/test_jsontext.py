"""jsontext: the same JSON as the standard library, indented only where it helps a reader."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acpcheck import jsontext

VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(VALUES, st.integers(min_value=0, max_value=4))
def test_any_value_reads_back_the_same(value: object, expand: int) -> None:
    assert json.loads(jsontext.dumps(value, expand)) == value


def test_fully_expanded_is_the_standard_indented_text() -> None:
    value = {"a": [1, {"b": None, "c": []}], "d": {}, "é": "x\u2028"}
    assert jsontext.dumps(value, expand=99) == json.dumps(value, indent=2, ensure_ascii=False)


def test_below_the_expanded_levels_one_line_each() -> None:
    text = jsontext.dumps({"run": {"id": 1}, "results": [{"check": "A", "n": [1, 2]}, {"check": "B"}]}, expand=2)
    assert text.split("\n") == [
        "{",
        '  "run": {',
        '    "id": 1',
        "  },",
        '  "results": [',
        '    {"check": "A", "n": [1, 2]},',
        '    {"check": "B"}',
        "  ]",
        "}",
    ]


def test_nan_only_when_allowed() -> None:
    with pytest.raises(ValueError):
        jsontext.dumps({"x": float("nan")})
    assert jsontext.dumps({"x": float("nan")}, allow_nan=True) == '{\n  "x": NaN\n}'
