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

import difflib
import fnmatch
import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator

import acpcheck.profiles
from acpcheck.errors import InputError, Problem, quoted
from acpcheck.model.check import AREAS, REGISTRY, CheckMeta, Scope, Severity
from acpcheck.model.validation import find_literal_secrets, validate_document
from acpcheck.yamlsource import LocatedDocument, load_yaml

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
    raise ValueError(
        f"{_shown(selector, 'this selector')} is not a selector (use an id glob like ACP-NET-*, area:NET, "
        "scope:plan or tag:X)"
    )


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
    #: where each override was given (file:line), for unknown_override_problems
    override_at: dict[str, Problem] = field(default_factory=dict)

    def selects(self, meta: CheckMeta) -> bool:
        """Included by any include selector and by no exclude selector."""
        return any(matches_selector(s, meta) for s in self.include) and not any(
            matches_selector(s, meta) for s in self.exclude
        )

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


#: Longest ``extends`` chain followed.
MAX_EXTENDS = 16


def load_profile(
    reference: str,
    _chain: tuple[Path, ...] = (),
    _relative_to: Path | None = None,
    _at: Problem | None = None,
    *,
    known_checks: Iterable[str] | None = None,
) -> Profile:
    """Load a built-in profile by name, or a profile file by path; InputError on problems.

    Every file of the ``extends`` chain is read once; its ``params`` are validated
    against the schemas the checks declare. With ``known_checks`` (every check the
    run can have, as ``acpcheck run`` knows), its ``overrides`` must name one of
    them; otherwise the pytest plugin asks ``unknown_override_problems`` once it has
    collected the run's check packs.
    """
    path = _locate(reference, _relative_to)
    where = _at or Problem("--profile", None, "", "")
    if not path.exists() and not path.is_symlink():
        hint = f" (built-in profiles: {', '.join(builtin_profiles())})" if path.parent == BUILTIN_DIR else ""
        raise InputError(
            [_replace(where, f"profile {_shown(reference, 'given', password_like=False)} not found{hint}")]
        )
    if path.resolve() in _chain:
        raise InputError(
            [_replace(where, "profile extends itself (cycle: " + " -> ".join(p.name for p in (*_chain, path)) + ")")]
        )
    if len(_chain) >= MAX_EXTENDS:
        raise InputError([_replace(where, f"extends more than {MAX_EXTENDS} profiles deep")])
    document = load_yaml(path)
    secrets, hidden = find_literal_secrets(document, secret_keys=False)
    data, problems = validate_document(ProfileFile, document, hidden=hidden)
    problems = secrets + problems
    if data is not None:
        problems += _check_params(document, data)
        if known_checks is not None:
            at = {check_id: document.problem(("overrides", check_id), "") for check_id in data.overrides}
            problems += unknown_override_problems(at, known_checks)
    if problems or data is None:
        raise InputError(sorted(problems, key=lambda p: p.line or 0))
    resolved = (
        load_profile(
            data.extends,
            (*_chain, path.resolve()),
            path.parent,
            document.problem(("extends",), ""),
            known_checks=known_checks,
        )
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
    resolved.override_at.update(
        {check_id: document.problem(("overrides", check_id), "") for check_id in data.overrides}
    )
    resolved.params.update(data.params)
    return resolved


def _replace(problem: Problem, message: str) -> Problem:
    return Problem(problem.file, problem.line, problem.field, message)


def _shown(reference: str, instead: str, password_like: bool = True) -> str:
    # A profile name or path, or a selector, that names nothing is shown as given, never
    # with control characters, unless it could be a secret typed in the wrong place.
    shown = quoted(reference, password_like)
    return shown if shown is not None else f"{instead} (not shown: it could be a secret)"


def _known_checks() -> dict[str, CheckMeta]:
    from acpcheck.catalog import load_catalog

    load_catalog()  # the first-party checks, plus whatever check packs are already imported
    return REGISTRY


def unknown_override_problems(
    overrides: Profile | dict[str, Problem], known: Iterable[str] | None = None
) -> list[Problem]:
    """Every override that names no check (a typo would silently change nothing).

    Asked once the run knows every check it has: the first-party ones and those of
    any check pack it collected (``known``; default: every check imported so far).
    """
    ids = set(known) if known is not None else set(_known_checks())
    given = overrides.override_at if isinstance(overrides, Profile) else overrides
    problems = []
    for check_id, at in given.items():
        if check_id not in ids:
            close = difflib.get_close_matches(check_id.upper(), sorted(ids), n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            problems.append(_replace(at, f"no check has this id{hint}"))
    return problems


def params_model() -> type[BaseModel]:
    """The schema of profile ``params``: every parameter a known check declares."""
    declared: dict[str, Any] = {}
    for meta in _known_checks().values():
        for name, annotation in meta.params.items():
            declared.setdefault(name, annotation)
    return _params_model(tuple(sorted(declared.items(), key=lambda item: item[0])))


@functools.lru_cache(maxsize=8)
def _params_model(declared: tuple[tuple[str, Any], ...]) -> type[BaseModel]:
    fields: dict[str, Any] = {name: (annotation, None) for name, annotation in declared}
    return create_model("ProfileParams", __config__=ConfigDict(extra="forbid"), **fields)


def _check_params(document: LocatedDocument, data: ProfileFile) -> list[Problem]:
    _, problems = validate_document(params_model(), document, data.params, at=("params",))
    return problems


def _could_name_a_check(glob: str) -> bool:
    """Whether an id glob matches any id a check could have (``ACP-ENC-*`` does,
    though no ENC check exists yet: a valid selection that selects nothing)."""
    pattern = re.compile(fnmatch.translate(glob))
    return any(pattern.match(check_id) for check_id in _possible_ids())


@functools.cache
def _possible_ids() -> tuple[str, ...]:
    return tuple(f"ACP-{area}-{number:03d}" for area in AREAS for number in range(1000))


def selector_problems(selectors: list[str], option: str = "--check") -> list[Problem]:
    """What is wrong with each ``--check`` selector: not a selector, or one that can
    select no check at all (an id glob no check id matches, an unknown tag). A valid
    selector that the profile happens to exclude is no problem here (exit 5 later)."""
    if not selectors:
        return []
    known = _known_checks()
    tags = sorted({tag for meta in known.values() for tag in meta.tags})
    problems = []
    for selector in selectors:
        try:
            normal = _valid_selector(selector)
        except ValueError as exc:
            problems.append(Problem(option, None, "", str(exc)))
            continue
        kind, _, value = normal.partition(":")
        if (
            not value
            and not any(fnmatch.fnmatchcase(check_id, normal) for check_id in known)
            and not _could_name_a_check(normal)
        ):
            close = difflib.get_close_matches(selector.upper(), known, n=1)
            hint = (
                f"; did you mean {close[0]}?"
                if close
                else " (use an id glob like ACP-NET-*, area:NET, scope:plan or tag:X)"
            )
            problems.append(Problem(option, None, "", f"{_shown(selector, 'this selector')} matches no check id{hint}"))
        elif kind == "tag" and value not in tags:
            known_tags = f"tags: {', '.join(tags)}" if tags else "no check has tags yet"
            problems.append(Problem(option, None, "", f"no check has the tag {_shown(value, 'given')} ({known_tags})"))
    return problems
