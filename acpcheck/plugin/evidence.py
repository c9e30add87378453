"""Evidence fixtures: one per parameter a registered source provides (``node``, ``nodes``, …).

Check items (``acpcheck.plugin.collection.CheckItem``) take their evidence straight
from the run; these fixtures serve it to checks collected the usual way (a check that
also takes a fixture of its own) and to plain tests. Registered by
``acpcheck.plugin.options`` only on a run with ``--acp-plan``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from acpcheck.plugin.fixtures import require_settings
from acpcheck.plugin.stash import META
from acpcheck.sources import REGISTRY, TargetUnavailable


def _evidence_fixture(parameter: str, doc: str) -> Callable[..., Any]:
    """The fixture that hands check parameter ``parameter`` its evidence (checks collected the usual way)."""

    def provide(request: pytest.FixtureRequest) -> Any:
        value = require_settings(request).provide(parameter, getattr(request, "param", None))
        if isinstance(value, TargetUnavailable) and META not in request.node.stash:
            raise value  # not a check: a plain test using the fixture
        return value

    provide.__doc__ = doc
    provide.__name__ = parameter
    return pytest.fixture(name=parameter)(provide)


# One fixture per parameter a registered source provides (node, nodes, …), so a
# new source needs no change here. pytest finds fixtures among a plugin's globals.
globals().update(
    {
        f"_evidence_fixture_{parameter}": _evidence_fixture(parameter, doc)
        for entry in REGISTRY.values()
        for parameter, doc in entry.provides.items()
    }
)
