"""Fleets of test API servers (the project's stand-in for kube-apiserver, one server per cluster:
``acpcheck_lab.fleet``) for the fleet tests. Each fixture gives a started ``TestFleet``: its
``fleet_file`` (kind: Fleet) for ``acpcheck run --fleet``, per cluster ``kubeconfig(name)`` and
``url(name)``. Session-scoped fleets are shared by the tests of one xdist worker and stopped at the
session's end; a test that stops a cluster takes its own fleet from ``start_fleet``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from acpcheck_lab.fleet import FleetSpec, TestFleet, api_down_fleet, three_cluster_fleet

StartFleet = Callable[..., TestFleet]


def _starter(make_dir: Callable[[str], Path]) -> Iterator[StartFleet]:
    started: list[TestFleet] = []

    def start(spec: FleetSpec, **options: Any) -> TestFleet:
        """``start(spec, host=, auth=, processes=)``: a started fleet, stopped when the scope ends."""
        fleet = TestFleet(spec, make_dir(spec.name), **options)
        started.append(fleet)
        return fleet.start()

    try:
        yield start
    finally:
        for fleet in started:
            fleet.stop()


@pytest.fixture
def start_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartFleet]:
    """A factory of fleets for one test (one it may stop clusters of): every one stopped after it."""
    yield from _starter(lambda name: tmp_path_factory.mktemp(f"fleet-{name}"))


@pytest.fixture(scope="session")
def start_session_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartFleet]:
    """The same, for fleets shared by the session (never stop their clusters)."""
    yield from _starter(lambda name: tmp_path_factory.mktemp(f"fleet-{name}"))


@pytest.fixture(scope="session")
def prod_fleet(start_session_fleet: StartFleet) -> TestFleet:
    """The issue's three clusters (``acpcheck_lab.fleet.three_cluster_fleet``): ``global`` ready; ``east``
    blocked by its live Kubernetes version (serves 1.31, its plan file claims 1.33); ``west`` blocked by
    a removed API still in use (flowcontrol.apiserver.k8s.io/v1beta3 FlowSchema, gone in 1.34)."""
    return start_session_fleet(three_cluster_fleet())


@pytest.fixture(scope="session")
def prod_fleet_west_down(start_session_fleet: StartFleet) -> TestFleet:
    """The same fleet with ``west``'s API down: its kubeconfig names a port that refuses connections."""
    return start_session_fleet(api_down_fleet())
