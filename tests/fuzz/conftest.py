"""Fuzzing settings: a short run in the default suite, the long one with `make fuzz`.

    pytest tests/fuzz                                # default: ~250 cases, a few seconds, derandomised
    pytest tests/fuzz --hypothesis-profile=long      # make fuzz: ACPCHECK_FUZZ_EXAMPLES per kind (default 2000)

Every case runs in a long-lived sandbox process (sandbox.py) with an address-space
limit; outcomes are counted and printed at the end (and written to
$ACPCHECK_FUZZ_REPORT as JSON when set), so the number of cases run is on record.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from judge import TALLY
from sandbox import Sandbox

_COMMON: dict[str, Any] = {"deadline": None, "suppress_health_check": list(HealthCheck), "print_blob": True}
settings.register_profile("default", max_examples=40, derandomize=True, database=None, **_COMMON)
settings.register_profile("long", max_examples=int(os.environ.get("ACPCHECK_FUZZ_EXAMPLES", "2000")), **_COMMON)


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    box = Sandbox(timeout=20)
    yield box
    box.close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not TALLY:
        return
    total = sum(counter["cases"] for counter in TALLY.values())
    terminalreporter.section(f"fuzzing: {total} cases")
    for kind, counter in sorted(TALLY.items()):
        outcomes = ", ".join(f"{name} {count}" for name, count in sorted(counter.items()) if name != "cases")
        terminalreporter.write_line(f"{kind:<12} {counter['cases']:>6} cases: {outcomes}")
    target = os.environ.get("ACPCHECK_FUZZ_REPORT")
    if target:
        with open(target, "w", encoding="utf-8") as handle:
            json.dump({kind: dict(counter) for kind, counter in TALLY.items()}, handle, indent=1)
