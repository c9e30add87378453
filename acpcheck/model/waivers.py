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

from pydantic import BaseModel, ConfigDict, Field

from acpcheck.errors import InputError
from acpcheck.model.validation import validate_document
from acpcheck.yamlsource import load_yaml


class Waiver(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    check: str = Field(min_length=1)
    target: str = "*"
    reason: str = Field(min_length=1)
    owner: str = Field(min_length=1)
    expires: dt.date

    def matches(self, check_id: str, target: str) -> bool:
        return fnmatch.fnmatchcase(check_id, self.check) and fnmatch.fnmatchcase(target, self.target)

    def is_expired(self, today: dt.date) -> bool:
        return self.expires < today

    def as_dict(self) -> dict[str, str]:
        return {"check": self.check, "target": self.target, "reason": self.reason, "owner": self.owner, "expires": self.expires.isoformat()}


class WaiverFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    waivers: list[Waiver] = Field(default_factory=list)


class Waivers:
    """The waivers of one run, split into live and expired as of ``today``."""

    def __init__(self, waivers: list[Waiver], today: dt.date | None = None):
        self.today = today or dt.date.today()
        self.all = waivers
        self.expired = [w for w in waivers if w.is_expired(self.today)]

    def find(self, check_id: str, target: str) -> Waiver | None:
        """The first waiver (live or expired) that names this check and target."""
        return next((w for w in self.all if w.matches(check_id, target)), None)


def load_waivers(path: str | Path | None, today: dt.date | None = None) -> Waivers:
    if path is None:
        return Waivers([], today)
    document = load_yaml(path)
    data, problems = validate_document(WaiverFile, document, document.data if document.data is not None else {})
    if problems or data is None:
        raise InputError(problems)
    return Waivers(data.waivers, today)
