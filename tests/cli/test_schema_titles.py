"""``acpcheck schema``: the plan's JSON Schema as an editor shows it, with an ``$id`` and
titles written for people ("API version"), never pydantic's automatic ones ("Apiversion")."""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
from runner import acpcheck

from acpcheck.model.plan import SshAuth, schema_title


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    done = acpcheck("schema")
    assert done.returncode == 0, done.stderr
    document: dict[str, Any] = json.loads(done.stdout)
    return document


def titled(schema: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(name, title) of every field (its key in the plan) and every section (its class name)."""
    for name, body in [("ClusterPlan", schema), *schema["$defs"].items()]:
        if name != "ClusterPlan":
            yield name, body["title"]
        for field, prop in body.get("properties", {}).items():
            yield field, prop["title"]


def pydantic_title(name: str) -> str:
    """The title pydantic gives a field or model it is told nothing about."""
    return name if name[:1].isupper() else name.title().replace("_", " ")


def test_schema_has_an_id_and_is_valid(schema: dict[str, Any]) -> None:
    assert schema["$id"] == "urn:acpcheck:plan:v1"
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_no_title_is_pydantics_automatic_one(schema: dict[str, Any]) -> None:
    multi_word = [(name, title) for name, title in titled(schema) if re.search(r".[A-Z]|_", name)]
    assert len(multi_word) > 50  # the walk reached the sections and their fields
    assert [(name, title) for name, title in multi_word if title == pydantic_title(name)] == []


def test_titles_read_as_words(schema: dict[str, Any]) -> None:
    titles = dict(titled(schema))
    assert titles["apiVersion"] == "API version"
    assert titles["publicAlternativeNames"] == "Public alternative names"
    assert titles["joinCIDR"] == "Join CIDR" and titles["vlanID"] == "VLAN ID"
    assert titles["SelfBuiltVip"] == "Self-built VIP" and titles["KubeOvn"] == "Kube-OVN"
    assert titles["EtcdEncryption"] == "etcd encryption"
    assert titles["connectTimeoutSeconds"] == "Connect timeout (seconds)"
    assert schema["title"] == "acpcheck ClusterPlan"
    # each title from the name, in one place
    assert all(title == schema_title(name) for name, title in titled(schema))


def test_sections_keep_their_docstring_as_description(schema: dict[str, Any]) -> None:
    """A section's description is its docstring, and so is a field's that holds it and says nothing itself."""
    assert schema["$defs"]["SshAuth"]["description"] == inspect.getdoc(SshAuth)
    assert schema["$defs"]["Ssh"]["properties"]["auth"]["description"] == inspect.getdoc(SshAuth)
