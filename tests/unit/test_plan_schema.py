"""The plan's JSON Schema (`acpcheck schema`), as an editor uses it.

- every field has a title and a description, from the model;
- the schema and the loader agree on types: a value one accepts the other accepts,
  for every integer, number and boolean field of the plan (``port: "22"`` is refused
  by both, ``port: 22`` accepted by both), found by walking the schema itself;
- the README shows the modeline that makes an editor use it.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from acpcheck.errors import InputError
from acpcheck.matrix import known_acp_versions
from acpcheck.model.plan import plan_from_document, plan_json_schema
from acpcheck.yamlsource import parse_yaml

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = yaml.safe_load((ROOT / "examples" / "workload-kube-ovn.yaml").read_text())
SCHEMA = plan_json_schema()
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def _properties() -> list[tuple[str, str, dict[str, Any]]]:
    """(where, field, its schema) for the root's and every definition's properties."""
    found = [("ClusterPlan", name, prop) for name, prop in SCHEMA["properties"].items()]
    for definition, body in SCHEMA["$defs"].items():
        found += [(definition, name, prop) for name, prop in body.get("properties", {}).items()]
    return found


def _ref(prop: dict[str, Any]) -> str | None:
    for candidate in (prop, prop.get("items") or {}, *prop.get("anyOf", [])):
        if "$ref" in candidate:
            return str(candidate["$ref"]).rsplit("/", 1)[-1]
        if "items" in candidate and "$ref" in candidate["items"]:
            return str(candidate["items"]["$ref"]).rsplit("/", 1)[-1]
    return None


def _paths() -> dict[str, list[str | int]]:
    """Where each definition first appears in a plan, walking from the root (lists: item 0)."""
    paths: dict[str, list[str | int]] = {"ClusterPlan": []}
    queue = ["ClusterPlan"]
    while queue:
        name = queue.pop(0)
        body = SCHEMA if name == "ClusterPlan" else SCHEMA["$defs"][name]
        for field, prop in body.get("properties", {}).items():
            target = _ref(prop)
            if target and target not in paths:
                is_list = prop.get("type") == "array" or any(c.get("type") == "array" for c in prop.get("anyOf", []))
                paths[target] = [*paths[name], field, *([0] if is_list else [])]
                queue.append(target)
    return paths


def _types(prop: dict[str, Any]) -> set[str]:
    return {prop["type"]} if "type" in prop else {c["type"] for c in prop.get("anyOf", []) if "type" in c}


SCALARS = [
    (f"{where}.{field}", [*_paths()[where], field], kind)
    for where, field, prop in _properties()
    for kind in sorted(_types(prop) & {"integer", "number", "boolean"})[:1]
]


def test_every_field_has_a_title_and_a_description() -> None:
    assert SCHEMA["title"] and SCHEMA["description"] and SCHEMA["$schema"].endswith("2020-12/schema")
    missing = [
        f"{where}.{field}: {'title' if not prop.get('title') else 'description'}"
        for where, field, prop in _properties()
        if not prop.get("title") or not prop.get("description")
    ]
    assert missing == []
    assert all(body.get("description") for body in SCHEMA["$defs"].values())
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def _set(document: dict[str, Any], path: list[str | int], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(document)
    node: Any = changed
    for part in path[:-1]:
        if isinstance(part, int):
            node = node[part]
        else:
            if not isinstance(node.get(part), (dict, list)):
                node[part] = {}
            node = node[part]
    node[path[-1]] = value
    return changed


def _loader_accepts(document: dict[str, Any]) -> bool:
    try:
        plan_from_document(parse_yaml(yaml.safe_dump(document, sort_keys=False), "plan.yaml"), known_acp_versions())
    except InputError:
        return False
    return True


def test_the_example_is_valid_for_both() -> None:
    assert VALIDATOR.is_valid(EXAMPLE) and _loader_accepts(EXAMPLE)


@pytest.mark.parametrize(("field", "path", "kind"), SCALARS, ids=[s[0] for s in SCALARS])
def test_schema_and_loader_agree_on_the_type(field: str, path: list[str | int], kind: str) -> None:
    good = {"integer": 10, "number": 10, "boolean": True}[kind]
    for value, accepted in ((good, True), (json.dumps(good), False), (str(good), False)):
        document = _set(EXAMPLE, path, value)
        assert (VALIDATOR.is_valid(document), _loader_accepts(document)) == (accepted, accepted), (field, value)


def test_every_non_string_scalar_is_covered() -> None:
    covered = {field for field, _, _ in SCALARS}
    assert {
        "Ssh.port",
        "SshOverride.port",
        "SelfBuiltVip.enabled",
        "KubeOvn.vlanID",
        "Node.applicationDeployable",
        "Ssh.connectTimeoutSeconds",
    } <= covered


def test_the_readme_shows_the_editor_modeline() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "acpcheck schema > plan.schema.json" in readme
    assert "# yaml-language-server: $schema=plan.schema.json" in readme
