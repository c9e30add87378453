"""Fixtures: ``plan``, ``params`` and one per evidence parameter (``node``, ``nodes``, …).

Check items (``acpcheck.plugin.collection.CheckItem``) take their arguments straight
from the run; these fixtures serve the same values to checks collected the usual
way (a check that also takes a fixture of its own) and to plain tests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from acpcheck.model.plan import ClusterPlan
from acpcheck.plugin.stash import META, settings_of
from acpcheck.run.settings import Settings
from acpcheck.sources import REGISTRY, TargetUnavailable


def _require(request: pytest.FixtureRequest) -> Settings:
    settings = settings_of(request.config)
    if settings is None:
        pytest.fail("acpcheck checks need a plan: run with --acp-plan FILE (or use `acpcheck run`)", pytrace=False)
    return settings


@pytest.fixture(scope="session")
def plan(request: pytest.FixtureRequest) -> ClusterPlan:
    """The cluster plan under assessment."""
    return _require(request).plan


@pytest.fixture(scope="session")
def params(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Profile parameters (defaults from acpcheck.model.profile.DEFAULT_PARAMS)."""
    return _require(request).profile.params


def _evidence_fixture(parameter: str, doc: str) -> Callable[..., Any]:
    """The fixture that hands check parameter ``parameter`` its evidence (checks collected the usual way)."""

    def provide(request: pytest.FixtureRequest) -> Any:
        value = _require(request).provide(parameter, getattr(request, "param", None))
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
