"""Node facts: gathered in ONE SSH exec per node, saved and replayed as JSON.

- ``model``  — NodeFacts, GatherFailure (the contract the node checks read); each fact is
  declared there once: field, default, reader and probe section;
- ``probe.sh`` + ``parse`` — the POSIX sh probe and the readers that interpret it;
- ``records`` — the value types inside facts (Address, Listener, Mount, DiskSpace);
- ``gather`` — ``gather_all(plan, …)``: every node in parallel, one connection each;
- ``store``  — ``save_facts(dir, results)`` / ``load_facts(dir, plan)``.

The functions below are imported lazily: importing the model (as every check
does) must not pull in paramiko.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from acpcheck.facts.model import (
    FACTS_SCHEMA,
    Address,
    DiskSpace,
    GatherFailure,
    Listener,
    Mount,
    NodeFacts,
    field_errors,
)

_LAZY = {
    "gather_all": "acpcheck.facts.gather",
    "gather_node": "acpcheck.facts.gather",
    "probe_session": "acpcheck.facts.gather",
    "save_facts": "acpcheck.facts.store",
    "load_facts": "acpcheck.facts.store",
}

__all__ = [
    "FACTS_SCHEMA",
    "Address",
    "DiskSpace",
    "GatherFailure",
    "Listener",
    "Mount",
    "NodeFacts",
    "field_errors",
    "gather_all",
    "gather_node",
    "load_facts",
    "probe_session",
    "save_facts",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
