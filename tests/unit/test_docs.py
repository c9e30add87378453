"""docs/interfaces.md stays true: its plan example is a valid plan with every field the
model has, its waivers example loads, and its results.json example validates against
the shipped schema."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest

from acpcheck.model.plan import plan_json_schema
from acpcheck.model.waivers import load_waivers
from acpcheck.testing import load_plan_text

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "interfaces.md").read_text()
BLOCKS = re.findall(r"```(yaml|json)\n(.*?)```", DOC, re.S)


def block(language: str, starts: str) -> str:
    return next(text for lang, text in BLOCKS if lang == language and text.lstrip().startswith(starts))


def field_paths(schema: dict, node: dict, prefix: str = "") -> set[str]:
    """Every property path of the plan's JSON Schema (following $refs)."""
    if "$ref" in node:
        node = schema["$defs"][node["$ref"].rsplit("/", 1)[1]]
    for combined in ("anyOf", "allOf"):
        for option in node.get(combined, []):
            if "$ref" in option or "properties" in option:
                return field_paths(schema, option, prefix)
    paths = set()
    for name, child in node.get("properties", {}).items():
        paths.add(prefix + name)
        paths |= field_paths(schema, child, prefix + name + ".")
    return paths


def test_plan_example_is_a_valid_plan_naming_every_field() -> None:
    text = block("yaml", "apiVersion")
    load_plan_text(text, "docs/interfaces.md")  # raises InputError with file:line on any problem
    documented = set(
        re.findall(r"[A-Za-z][A-Za-z0-9]*", text)
    )  # keys, also in flow style, and alternatives named in comments
    schema = plan_json_schema()
    leaves = {path.rsplit(".", 1)[-1] for path in field_paths(schema, schema)}
    missing = sorted(leaves - documented)
    assert not missing, f"fields of the plan model that docs/interfaces.md does not show: {missing}"


def test_waivers_example_loads(tmp_path: Path) -> None:
    waivers = tmp_path / "waivers.yaml"
    waivers.write_text(block("yaml", "waivers:"))
    assert load_waivers(waivers).all


def test_results_example_validates_against_the_shipped_schema() -> None:
    schema = json.loads((ROOT / "reports" / "results.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(json.loads(block("json", "{")))


@pytest.mark.parametrize("target", ["plan", "node:cp1", "node:*", "cluster:prod-east"])
def test_every_target_of_the_grammar_is_documented(target: str) -> None:
    assert f"`{target.replace('cp1', '<name>').replace('prod-east', '<name>')}`" in DOC
