"""The seed pages (``seeds.yaml``): which ACP docs page each seed file is, so ``acpcheck explain``
can say which seed a rule comes from. The mapping is data, in one place; a rule says nothing
more than its ``refs`` (a ref that is a seed's page names the seed)."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from acpcheck.matrix import load_data_file

SEEDS_FILE = Path(__file__).with_name("seeds.yaml")
#: The ACP version segment of a docs.alauda.io address, set aside when comparing pages.
_VERSION = re.compile(r"/(\d+\.\d+)/")


class Seed(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    file: str = Field(pattern=r"^\d{3}_[0-9a-f]{16}\.txt$")
    title: str = Field(min_length=1)
    url: str = Field(pattern=r"^https://docs\.alauda\.io/")
    matched: str = Field(min_length=1)


class SeedsData(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    seeds: list[Seed] = Field(min_length=1)


@lru_cache(maxsize=1)
def seeds() -> tuple[Seed, ...]:
    return tuple(load_data_file(SEEDS_FILE, SeedsData, "seed pages").seeds)


def page(url: str) -> str:
    """A docs address without its ACP version and fragment, for comparing pages."""
    return _VERSION.sub("/*/", url.split("#", 1)[0].rstrip("/"), count=1)


def seeds_of(refs: tuple[str, ...] | list[str]) -> list[Seed]:
    """The seeds among ``refs`` (a rule's sources), in the order of the refs."""
    wanted = [page(ref) for ref in refs]
    return [seed for key in dict.fromkeys(wanted) for seed in seeds() if page(seed.url) == key]
