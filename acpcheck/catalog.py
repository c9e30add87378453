"""The check catalogue: import every first-party check module, read the registry.

Used by ``acpcheck list`` and ``explain``; a pytest run imports the same modules
through collection under the same names, so each check registers once.
"""

from __future__ import annotations

import importlib
import pkgutil

import acpcheck.checks
from acpcheck.model.check import REGISTRY, CheckMeta


def load_catalog() -> dict[str, CheckMeta]:
    """The first-party checks by id (checks of other packs imported in the same
    process, e.g. by a test run, are not part of the catalogue)."""
    for module in pkgutil.iter_modules(acpcheck.checks.__path__):
        importlib.import_module(f"acpcheck.checks.{module.name}")
    return {
        check_id: meta for check_id, meta in sorted(REGISTRY.items()) if meta.function.startswith("acpcheck.checks.")
    }
