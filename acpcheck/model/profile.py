"""Profiles: which checks run, how hard they fail, and their parameters.

A profile is YAML (built-ins live in the top-level ``profiles/``, shipped as ``acpcheck.profiles``)::

    name: preinstall
    description: plan checks plus every node and load-balancer check
    extends: plan                  # a built-in name or a path relative to this file
    include: [scope:node, area:LB] # selectors: ACP-NET-* (id glob), area:X, scope:X, tag:X
    exclude: [ACP-NODE-017]
    fail_on: medium                # failures below this severity are WARN
    overrides: {ACP-NET-011: {severity: high}}
    params: {defaultMaxPods: 110}

``extends`` inherits everything; ``include``/``exclude`` add to the parent's,
``overrides`` and ``params`` merge, ``fail_on`` replaces.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

import acpcheck.profiles
from acpcheck.errors import InputError, Problem
from acpcheck.model.check import AREAS, CheckMeta, Scope, Severity
from acpcheck.model.validation import validate_document
from acpcheck.yamlsource import load_yaml

BUILTIN_DIR = Path(acpcheck.profiles.__file__).resolve().parent

#: Parameters every profile starts from. Where a value is ours and not ACP's,
#: the check that reads it says so in its docstring.
DEFAULT_PARAMS: dict[str, Any] = {
    # kubelet max-pods when the plan sets none: the ACP installer default (acp-facts §5.2).
    "defaultMaxPods": 110,
}


def _valid_selector(selector: str) -> str:
    kind, _, value = selector.partition(":")
    if not value:
        return selector  # an id glob
    if kind == "area" and value.upper() in AREAS:
        return f"area:{value.upper()}"
    if kind == "scope" and value in {s.value for s in Scope}:
        return selector
    if kind == "tag" and value:
        return selector
    raise ValueError(f"{selector!r} is not a selector (use an id glob like ACP-NET-*, area:NET, scope:plan or tag:X)")


class Override(BaseModel):
    model_config = ConfigDict(extra="forbid")
    severity: str

    @field_validator("severity")
    @classmethod
    def _severity(cls, value: str) -> str:
        Severity.parse(value)
        return value


class ProfileFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    description: str = ""
    extends: str | None = None
    include: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    fail_on: str | None = None
    overrides: dict[str, Override] = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("include", "exclude")
    @classmethod
    def _selectors(cls, values: list[str]) -> list[str]:
        return [_valid_selector(v) for v in values]

    @field_validator("fail_on")
    @classmethod
    def _fail_on(cls, value: str | None) -> str | None:
        if value is not None:
            Severity.parse(value)
        return value


@dataclass
class Profile:
    """A resolved profile (its whole ``extends`` chain applied)."""

    name: str
    description: str = ""
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    fail_on: Severity = Severity.MEDIUM
    overrides: dict[str, Severity] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_PARAMS))
    source: str = ""

    def selects(self, meta: CheckMeta) -> bool:
        """Included by any include selector and by no exclude selector."""
        return any(matches_selector(s, meta) for s in self.include) and not any(matches_selector(s, meta) for s in self.exclude)

    def severity_of(self, meta: CheckMeta) -> Severity:
        return self.overrides.get(meta.id, meta.severity)


def matches_selector(selector: str, meta: CheckMeta) -> bool:
    kind, _, value = selector.partition(":")
    if not value:
        return fnmatch.fnmatchcase(meta.id, selector)
    if kind == "area":
        return meta.area == value
    if kind == "scope":
        return meta.scope.value == value
    return value in meta.tags


def builtin_profiles() -> list[str]:
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.yaml"))


def _locate(reference: str, relative_to: Path | None) -> Path:
    if reference.endswith((".yaml", ".yml")) or "/" in reference:
        path = Path(reference).expanduser()
        if not path.is_absolute() and relative_to is not None:
            path = relative_to / path
        return path
    return BUILTIN_DIR / f"{reference}.yaml"


def load_profile(reference: str, _chain: tuple[Path, ...] = (), _relative_to: Path | None = None) -> Profile:
    """Load a built-in profile by name, or a profile file by path; InputError on problems."""
    path = _locate(reference, _relative_to)
    if not path.exists():
        hint = f" (built-in profiles: {', '.join(builtin_profiles())})" if path.parent == BUILTIN_DIR else ""
        where = _chain[-1] if _chain else "--profile"
        raise InputError([_problem(str(where), f"profile {reference!r} not found{hint}")])
    if path.resolve() in _chain:
        raise InputError([_problem(str(path), "profile extends itself (cycle: " + " -> ".join(p.name for p in (*_chain, path)) + ")")])
    document = load_yaml(path)
    data, problems = validate_document(ProfileFile, document)
    if problems or data is None:
        raise InputError(problems)
    resolved = (
        load_profile(data.extends, (*_chain, path.resolve()), path.parent)
        if data.extends
        else Profile(name=data.name, source=str(path))
    )
    resolved.name = data.name
    resolved.description = data.description or resolved.description
    resolved.source = str(path)
    resolved.include = [*resolved.include, *data.include]
    resolved.exclude = [*resolved.exclude, *data.exclude]
    if data.fail_on:
        resolved.fail_on = Severity.parse(data.fail_on)
    resolved.overrides.update({check_id: Severity.parse(o.severity) for check_id, o in data.overrides.items()})
    resolved.params.update(data.params)
    return resolved


def _problem(file: str, message: str) -> Problem:
    return Problem(file, None, "", message)
