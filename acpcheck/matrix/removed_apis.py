"""Kubernetes API versions removed per Kubernetes minor (``removed_apis.yaml``), validated when loaded.

Every row comes from the upstream Deprecated API Migration Guide and cites its section
(``source``). The ``cluster`` evidence source reads each row from a live cluster (is it
still served, does anything live there: ``acpcheck.sources.cluster.REMOVED_API_READS``)
and ACP-UPG-016 judges the rows removed by the target's Kubernetes version.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, field_validator, model_validator
from pydantic.alias_generators import to_camel

from acpcheck.matrix import kubernetes_version, load_data_file

REMOVED_APIS_FILE = Path(__file__).with_name("removed_apis.yaml")
GUIDE = "https://kubernetes.io/docs/reference/using-api/deprecation-guide/"


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, frozen=True)


class RemovedApi(_Data):
    """One API version of one resource that Kubernetes ``removed_in`` stops serving."""

    group: str
    version: str
    resource: str  # plural, as the API serves it
    kind: str
    removed_in: str  # Kubernetes minor, "1.25"
    replacement: str
    source: str
    #: ``annotation=value`` marking the objects the API server creates and keeps itself.
    api_server_managed: str | None = None

    @field_validator("removed_in")
    @classmethod
    def _minor(cls, value: str) -> str:
        if not re.fullmatch(r"1\.\d+", value):
            raise ValueError(f"{value!r} is not a Kubernetes minor such as '1.25'")
        return value

    @field_validator("source")
    @classmethod
    def _cited(cls, value: str) -> str:
        if not value.startswith(GUIDE + "#"):
            raise ValueError(f"{value!r} is not a section of {GUIDE}")
        return value

    @field_validator("api_server_managed")
    @classmethod
    def _annotation(cls, value: str | None) -> str | None:
        if value is not None and value.count("=") != 1:
            raise ValueError(f"{value!r} is not annotation=value")
        return value

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> str:
        """The evidence key of this row's read (``removed-api/<group>/<version>/<resource>``)."""
        return f"removed-api/{self.group or 'core'}/{self.version}/{self.resource}"

    def removed_by(self, kubernetes: str) -> bool:
        """Whether Kubernetes ``kubernetes`` ('1.34', 'v1.34.5') no longer serves this API version."""
        return kubernetes_version(kubernetes) >= kubernetes_version(self.removed_in)


class RemovedApis(_Data):
    removed: list[RemovedApi]

    @model_validator(mode="after")
    def _unique(self) -> RemovedApis:
        seen: set[str] = set()
        for row in self.removed:
            if row.key in seen:
                raise ValueError(f"{row.key} is listed twice")
            seen.add(row.key)
        return self


@lru_cache(maxsize=1)
def removed_apis() -> tuple[RemovedApi, ...]:
    """The shipped table (loaded once per process), newest removal first as in the file."""
    return tuple(load_data_file(REMOVED_APIS_FILE, RemovedApis, "removed API table").removed)
