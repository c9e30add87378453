"""Run ``acpcheck`` many times, fast, in one long-lived process with bounded memory.

A fresh ``python -m acpcheck`` costs about half a second before it reads its
input; a fuzzing campaign runs thousands of cases. So one worker process (this
file, run as a script) imports acpcheck once and runs case after case through
``acpcheck.cli.main`` in-process, exactly as the command does, with

- an address-space limit (``RLIMIT_AS``): a case that needs more memory fails
  with MemoryError, which shows as a traceback, i.e. a finding;
- a wall-clock limit per case, enforced by the parent, which kills and restarts
  the worker (a hang is a finding too);
- everything the case prints captured: ``sys.stdout``/``sys.stderr`` and the
  file descriptors 1 and 2 underneath them.

The parent side is ``Sandbox`` (one per test process): ``run(argv, cwd, env)``
returns an ``Outcome``. The worker also sets ``PYTEST_DISABLE_PLUGIN_AUTOLOAD``
as the command does, which is why it is a process of its own and not the test
process.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

#: Address space of the worker: several times what a large run needs (~250 MiB),
#: far below what the alias bombs and /dev/zero took before they were bounded.
MEMORY_LIMIT = 1536 * 1024 * 1024
#: Peak resident memory a case may reach (the worker starts at about 120 MiB).
RSS_LIMIT_KB = 700 * 1024


@dataclass
class Outcome:
    code: int | None  # None: the case did not finish in time (the worker was killed)
    output: str  # stdout + stderr, as a user would see them
    crashed: bool  # an exception escaped main(): a real process would print a traceback and exit 1
    seconds: float
    max_rss_kb: int

    @property
    def text(self) -> str:
        return self.output


class Sandbox:
    """The parent's handle on one worker process."""

    def __init__(self, timeout: float = 20.0):
        self.timeout = timeout
        self.process: subprocess.Popen[bytes] | None = None

    def _start(self) -> subprocess.Popen[bytes]:
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        self.process = subprocess.Popen(
            [sys.executable, __file__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        return self.process

    def run(self, argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> Outcome:
        process = self.process if self.process and self.process.poll() is None else self._start()
        assert process.stdin and process.stdout
        request = json.dumps({"argv": argv, "cwd": str(cwd), "env": env or {}}) + "\n"
        started = time.monotonic()
        process.stdin.write(request.encode())
        process.stdin.flush()
        ready, _, _ = select.select([process.stdout], [], [], self.timeout)
        if not ready:
            self.close()
            return Outcome(None, "", False, time.monotonic() - started, 0)
        line = process.stdout.readline()
        if not line:  # the worker died (e.g. killed by the kernel)
            self.close()
            return Outcome(None, "worker died", True, time.monotonic() - started, 0)
        reply = json.loads(line)
        return Outcome(reply["code"], reply["output"], reply["crashed"], reply["seconds"], reply["max_rss_kb"])

    def close(self) -> None:
        if self.process is not None:
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait()
            self.process = None


# ---------------------------------------------------------------------------
# The worker


def _serve() -> None:
    import contextlib
    import io
    import resource
    import tempfile
    import traceback

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    replies = os.fdopen(os.dup(1), "w")
    requests = sys.stdin
    from acpcheck.cli import main  # imported once: the point of this process

    scratch = tempfile.TemporaryFile()  # noqa: SIM115 — the worker's fd-level capture, for its whole life
    for line in requests:
        request = json.loads(line)
        saved_env = dict(os.environ)
        os.environ.update(request["env"])
        saved_cwd = os.getcwd()
        scratch.seek(0)
        scratch.truncate()
        saved_fds = os.dup(1), os.dup(2)
        os.dup2(scratch.fileno(), 1)
        os.dup2(scratch.fileno(), 2)
        text = io.StringIO()
        crashed = False
        started = time.monotonic()
        try:
            os.chdir(request["cwd"])
            with contextlib.redirect_stdout(text), contextlib.redirect_stderr(text):
                try:
                    code = main(request["argv"])
                except SystemExit as exit:
                    code = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
                except BaseException:  # noqa: BLE001 — what a real process would die of
                    text.write(traceback.format_exc())
                    crashed, code = True, 1
        finally:
            seconds = time.monotonic() - started
            os.dup2(saved_fds[0], 1)
            os.dup2(saved_fds[1], 2)
            os.close(saved_fds[0])
            os.close(saved_fds[1])
            os.chdir(saved_cwd)
            os.environ.clear()
            os.environ.update(saved_env)
        scratch.seek(0)
        raw = scratch.read().decode("utf-8", "replace")
        reply = {
            "code": code,
            "output": text.getvalue() + raw,
            "crashed": crashed,
            "seconds": seconds,
            "max_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        }
        replies.write(json.dumps(reply) + "\n")
        replies.flush()


if __name__ == "__main__":
    _serve()
