"""The facts tests share the real sshd lab of tests/transport (realsshd.py)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "transport"))

from realsshd import lab, proxy  # noqa: F401  (fixtures)
