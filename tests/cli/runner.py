"""Run the acpcheck command as a user does: a real process, real files, exit codes.

Shared by the CLI tests. Every run gets 1 GiB of address space: the inputs that once
took 3.4-3.6 GiB (an alias bomb, /dev/zero) must now be refused long before.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

MEMORY_LIMIT = 1024 * 1024 * 1024


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def acpcheck(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "acpcheck", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        preexec_fn=_limited,
        check=False,
    )
