"""Real sshd/microsocks fixtures (see realsshd.py) for the transport tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from realsshd import lab, proxy  # noqa: F401  (fixtures)

from acpcheck.transport import KnownHosts


@pytest.fixture
def known_hosts(tmp_path: Path) -> KnownHosts:
    return KnownHosts(tmp_path / "known_hosts")
