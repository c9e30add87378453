"""Waivers: accepted, owned, expiring exceptions to a check.

::

    waivers:
      - check: ACP-NET-015           # id or glob
        target: plan                 # optional glob: plan, node:cp1, node:*, cluster:prod
        reason: single-node lab, never meant to be HA
        owner: platform-team@example.com
        expires: 2026-12-31

A FAIL or WARN matching a live waiver is reported as ``waived`` and does not fail
the run. An expired waiver waives nothing and fails the run, so exceptions
cannot silently outlive the reason they were granted for.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from acpcheck.errors import InputError
from acpcheck.model.validation import find_literal_secrets, validate_document
from acpcheck.yamlsource import load_yaml


def _date(value: Any) -> dt.date:
    """A calendar date: a YAML date (2026-12-31) or that text; not a number of seconds."""
    if isinstance(value, dt.datetime):
        if value.time() != dt.time(0):
            raise ValueError("give a date (2026-12-31), not a time of day")
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError("must be a real date like 2026-12-31")


Date = Annotated[dt.date, BeforeValidator(_date)]


class Waiver(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    check: str = Field(min_length=1)
    target: str = "*"
    reason: str = Field(min_length=1)
    owner: str = Field(min_length=1)
    expires: Date

    def matches(self, check_id: str, target: str) -> bool:
        return fnmatch.fnmatchcase(check_id, self.check) and fnmatch.fnmatchcase(target, self.target)

    def is_expired(self, today: dt.date) -> bool:
        return self.expires < today

    def as_dict(self) -> dict[str, str]:
        return {
            "check": self.check,
            "target": self.target,
            "reason": self.reason,
            "owner": self.owner,
            "expires": self.expires.isoformat(),
        }


class WaiverFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    waivers: list[Waiver] = Field(default_factory=list)


class Waivers:
    """The waivers of one run, split into live and expired as of ``today``."""

    def __init__(
        self, waivers: list[Waiver], today: dt.date | None = None, file: str = "", lines: tuple[int, ...] = ()
    ):
        self.today = today or dt.date.today()
        self.all = waivers
        self.expired = [w for w in waivers if w.is_expired(self.today)]
        #: the waivers file as given, and the line of each of ``all`` in it (for the reports)
        self.file = file
        self.lines = lines

    def expired_lines(self) -> tuple[int, ...]:
        """The waivers file line of each expired waiver (1 where unknown), in the order of ``expired``."""
        line_of = {id(w): line for w, line in zip(self.all, self.lines, strict=False)}
        return tuple(line_of.get(id(w)) or 1 for w in self.expired)

    def find(self, check_id: str, target: str) -> Waiver | None:
        """The first waiver (live or expired) that names this check and target."""
        return next((w for w in self.all if w.matches(check_id, target)), None)


def load_waivers(path: str | Path | None, today: dt.date | None = None) -> Waivers:
    if path is None:
        return Waivers([], today)
    document = load_yaml(path)
    if document.data is None:
        document.data = {}
    secrets, hidden = find_literal_secrets(document, secret_keys=False)
    data, problems = validate_document(WaiverFile, document, hidden=hidden)
    if secrets or problems or data is None:
        raise InputError(sorted(secrets + problems, key=lambda p: p.line or 0))
    lines = tuple(document.line_of(("waivers", index)) or 1 for index in range(len(data.waivers)))
    return Waivers(data.waivers, today, str(path), lines)
