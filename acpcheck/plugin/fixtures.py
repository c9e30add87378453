"""Fixtures every run knows: ``plan`` and ``params``.

Check items (``acpcheck.plugin.collection.CheckItem``) take their arguments straight
from the run; these fixtures serve the same values to checks collected the usual
way (a check that also takes a fixture of its own) and to plain tests. They are
registered on every run, so that a test asking for the plan without ``--acp-plan``
is told what is missing; the evidence fixtures (``node``, ``nodes``, …) only on a
run with a plan (``acpcheck.plugin.evidence``): this module, imported by every
pytest run where acpcheck is installed, imports nothing of the model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from acpcheck.plugin.stash import settings_of

if TYPE_CHECKING:
    from acpcheck.model.plan import ClusterPlan
    from acpcheck.run.settings import Settings


def require_settings(request: pytest.FixtureRequest) -> Settings:
    """The run's settings, or a failure that says a plan is needed."""
    settings = settings_of(request.config)
    if settings is None:
        pytest.fail("acpcheck checks need a plan: run with --acp-plan FILE (or use `acpcheck run`)", pytrace=False)
    return settings


@pytest.fixture(scope="session")
def plan(request: pytest.FixtureRequest) -> ClusterPlan:
    """The cluster plan under assessment."""
    return require_settings(request).plan


@pytest.fixture(scope="session")
def params(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Profile parameters (defaults from acpcheck.model.profile.DEFAULT_PARAMS)."""
    return require_settings(request).profile.params
