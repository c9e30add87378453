"""The ``lab`` marker: tests that need root, a real sshd, microsocks or network
namespaces. It is set here from the fixtures a test uses (directly or through other
fixtures), so a new test that uses them is marked without anyone remembering to:

    pytest -m "not lab"    # no root, no sshd: fast
    pytest -m lab          # the real-process tests only
"""

from __future__ import annotations

import pytest

#: Fixtures that start real processes or need root: the sshd/microsocks lab of
#: tests/transport/realsshd.py (``lab``, ``proxy``) and the namespace lab of
#: tests/lab/conftest.py (``lab_machine``, ``defects_lab``; tests/lab's own ``lab``).
LAB_FIXTURES = frozenset({"lab", "proxy", "lab_machine", "defects_lab"})


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "lab: needs root, a real sshd, microsocks or network namespaces (set from the fixtures used)"
    )


#: The namespace lab: one per machine, so all of its tests share one xdist worker
#: (``--dist loadgroup``) instead of queueing on its lock from several workers.
NAMESPACE_LAB_FIXTURE = "lab_machine"


@pytest.hookimpl(tryfirst=True)  # before -m deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if LAB_FIXTURES.intersection(fixtures):
            item.add_marker(pytest.mark.lab)
        if NAMESPACE_LAB_FIXTURE in fixtures:
            item.add_marker(pytest.mark.xdist_group("namespace-lab"))
