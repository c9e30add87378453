"""Background commands on a node: the POSIX-sh wrapper, its stop script, and the handle.

Every transport starts a background command as one shell line from
``start_line()`` and ends it with ``stop_line()``; only POSIX ``sh``, ``sleep``
and ``kill`` are needed on the node (tested under dash, bash and busybox sh).

Process group. Ending "the command and every child" means signalling its
process group, and ``set -m`` cannot make one: dash and busybox sh refuse job
control without a terminal, and an SSH exec channel has none. Instead the line
starts with ``exec``, so the wrapper keeps the pid of the process the transport
created, which already leads a group: sshd ``setsid()``s every session, and
``LocalTransport`` starts with a new session. Through ``sudo -n`` (without a
pty) the group leader is sudo, the wrapper's parent; with ``use_pty`` sudo
gives the wrapper a session of its own. The wrapper checks which (``kill -0 -$$``,
else ``kill -0 -$PPID``), refuses to run if neither, and prints the group id on
its first stdout line (``acpcheck-bg <pgid>``); the handle strips that line.

Watchdog. Before the command starts, a subshell counts ``deadline`` seconds in
sleeps of at most ten seconds, then sends SIGTERM to the group and SIGKILL two
seconds later. It needs no connection to the runner, so a killed runner or a lost
connection costs at most the deadline. It exits on SIGTERM while counting, so a
``stop()`` or the command's own end take it along: the SIGTERM to the group ends
its ``sleep`` at once (a shell whose ``sleep`` is built in, as BusyBox's can be,
notices within that sleep, and the stop's SIGKILL comes sooner). Not one-second
sleeps: a ``sleep`` process a second for every listener of 1,000 nodes was a
third of the lab's CPU during a connectivity proof.

End. When the command exits by itself the wrapper sends SIGTERM to the rest of
the group (whatever the command left behind, and the watchdog) and exits with
the command's status.

Stop. ``stop_line()`` runs on a fresh channel with the same privileges (sudo
when the wrapper used sudo): SIGTERM to the group, SIGKILL after the grace
period, then waits until no live member remains. Zombies do not count (an init
that does not reap orphans, as in some containers, leaves them behind), but
telling them apart means reading every process's ``/proc/N/stat``, so that walk
only starts when the group still exists 50 ms after SIGTERM (on a lab machine
with 1,000 nodes' processes it took 0.1 s a node, for every node).
"""

from __future__ import annotations

import math
import shlex
import threading
import time
from collections.abc import Callable

from acpcheck.transport.base import CommandResult
from acpcheck.transport.errors import TransportError

SHELL = "/bin/sh"
MARKER = "acpcheck-bg "
MARKER_SEARCH = 64 * 1024  # stdout bytes searched for the marker line
#: Output kept per stream; a command that prints more keeps running, the rest is dropped.
OUTPUT_CAP = 16 * 1024 * 1024

# $0: the shell (runs the command), $1: deadline in whole seconds, $2: the command.
WRAPPER = r"""if kill -0 -$$ 2>/dev/null; then G=$$
elif kill -0 -$PPID 2>/dev/null; then G=$PPID
else echo "acpcheck: cannot start a background command: the wrapper shell leads no process group" >&2; exit 125
fi
(
  trap 'exit 0' TERM
  n=0
  while [ "$n" -lt "$1" ]; do
    s=$(($1 - n)); [ "$s" -le 10 ] || s=10
    sleep "$s"; n=$((n + s))
  done
  trap '' TERM
  kill -TERM -"$G"
  sleep 2
  kill -KILL -"$G"
) </dev/null >/dev/null 2>&1 &
echo "acpcheck-bg $G"
"$0" -c "$2" </dev/null
rc=$?
trap '' TERM
kill -TERM -"$G" 2>/dev/null
exit "$rc"
"""

# $1: the process group, $2: grace before SIGKILL in tenths of a second.
STOPPER = r"""G=$1
alive() {
  kill -0 -"$G" 2>/dev/null || return 1
  [ -r /proc/self/stat ] || return 0
  for f in /proc/[0-9]*/stat; do
    read -r s 2>/dev/null <"$f" || continue
    set -- ${s##*') '}
    [ "$3" = "$G" ] && [ "$1" != Z ] && return 0
  done
  return 1
}
if sleep 0.01 2>/dev/null; then step=0.1 n=$2; else step=1 n=$((($2 + 9) / 10)); fi
kill -TERM -"$G" 2>/dev/null
# Usually the group is gone (and reaped) within milliseconds: ask the kernel a few
# times before walking /proc, whose cost grows with every process on the machine.
q=5
while [ "$step" = 0.1 ] && [ "$q" -gt 0 ] && kill -0 -"$G" 2>/dev/null; do sleep 0.01; q=$((q - 1)); done
while alive; do
  if [ "$n" -le 0 ]; then
    kill -KILL -"$G" 2>/dev/null
    n=10
    while alive && [ "$n" -gt 0 ]; do sleep "$step"; n=$((n - 1)); done
    break
  fi
  sleep "$step"
  n=$((n - 1))
done
if alive; then echo acpcheck-bg-alive; exit 1; fi
echo acpcheck-bg-gone
"""


def sudo_line(command: str) -> str:
    """``command`` through ``sudo -n sh -c`` (never prompts: without passwordless sudo it fails at once)."""
    return f"sudo -n sh -c {shlex.quote(command)}"


def _line(script: str, args: list[str], *, sudo: bool, shell: str) -> str:
    argv = [shell, "-c", script, shell, *args]
    if sudo:
        argv = ["sudo", "-n", *argv]
    # exec: keep the pid of the process the transport started (a process group leader).
    return "exec " + " ".join(shlex.quote(arg) for arg in argv)


def start_line(command: str, deadline: float, *, sudo: bool = False, shell: str = SHELL) -> str:
    """The line that runs ``command`` under the wrapper; ``deadline`` is rounded up to whole seconds (at least 1)."""
    if not deadline > 0:
        raise ValueError(f"deadline must be positive, not {deadline!r}")
    return _line(WRAPPER, [str(max(1, math.ceil(deadline))), command], sudo=sudo, shell=shell)


def stop_line(pgid: int, grace: float, *, sudo: bool = False, shell: str = SHELL) -> str:
    """The line that ends process group ``pgid``: SIGTERM, SIGKILL after ``grace`` seconds."""
    return _line(STOPPER, [str(int(pgid)), str(max(1, round(grace * 10)))], sudo=sudo, shell=shell)


class Background:
    """A ``BackgroundCommand`` for any transport.

    The transport starts the wrapper, then feeds its output in from a thread
    (``feed_stdout``/``feed_stderr``, then ``finish``); ``run_line`` runs a
    shell line on the same node (for the stop script) and ``abandon`` drops the
    streams when the wrapper cannot be waited for any more.
    """

    def __init__(
        self,
        where: str,
        *,
        run_line: Callable[[str, float], CommandResult],
        abandon: Callable[[], None],
        sudo: bool,
        shell: str = SHELL,
        started_at: float | None = None,
    ):
        self.where = where
        self.pgid: int | None = None
        self._run_line = run_line
        self._abandon = abandon
        self._sudo = sudo
        self._shell = shell
        self._started_at = time.time() if started_at is None else started_at
        self._input_sent_at = self._started_at
        self._first_output_at: float | None = None
        self._out = bytearray()
        self._err = bytearray()
        self._head = bytearray()  # stdout until the marker line is complete
        self._marker_done = False
        self._lock = threading.RLock()
        self._stop_lock = threading.RLock()
        self._news = threading.Event()  # output arrived or the command ended (for wait_output)
        self._began = threading.Event()  # the marker arrived, or the wrapper ended without one
        self._done = threading.Event()
        self._result: CommandResult | None = None
        self._lost = False  # the transport lost sight of it (the connection died)

    def __repr__(self) -> str:
        state = "running" if self.running() else "ended"
        return f"Background({self.where!r}, pgid={self.pgid}, {state})"

    def __enter__(self) -> Background:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        try:
            self.stop()
        except TransportError:
            if exc_type is None:
                raise  # otherwise the exception already on its way matters more

    # --- fed by the transport -------------------------------------------------

    def input_sent(self) -> None:
        self._input_sent_at = time.time()

    def feed_stdout(self, data: bytes) -> None:
        with self._lock:
            if not self._marker_done:
                self._head += data
                after = self._after_marker()
                if after is None:
                    return
                data = after
            if data:
                if self._first_output_at is None:
                    self._first_output_at = time.time()
                self._out += data[: max(0, OUTPUT_CAP - len(self._out))]
                self._news.set()

    def _after_marker(self) -> bytes | None:
        """Find the marker line in the stdout read so far: the output after it, or None to read on.

        Lines before it are the login shell's noise (a chatty rc file), not the
        command's: the wrapper prints the marker before it starts the command.
        """
        start = 0
        while (end := self._head.find(b"\n", start)) >= 0:
            line = bytes(self._head[start:end])
            start = end + 1
            if line.startswith(MARKER.encode()) and line[len(MARKER) :].isdigit():
                self.pgid = int(line[len(MARKER) :])
                rest = bytes(self._head[start:])
                break
        else:
            if len(self._head) < MARKER_SEARCH:
                return None
            rest = bytes(self._head)  # no marker at all: it is all output
        self._marker_done = True
        self._head = bytearray()
        self._began.set()
        return rest

    def feed_stderr(self, data: bytes) -> None:
        with self._lock:
            self._err += data[: max(0, OUTPUT_CAP - len(self._err))]

    def finish(self, exit_status: int, *, lost: bool = False) -> None:
        """The wrapper has ended, or its streams were dropped (``lost``: the connection died); the first call wins."""
        with self._lock:
            if self._result is not None:
                return
            self._lost = lost
            if not self._marker_done:
                self._out += self._head
                self._marker_done = True
            self._result = CommandResult(
                exit_status=exit_status if exit_status >= 0 else -1,
                stdout=self._out.decode("utf-8", errors="replace"),
                stderr=self._err.decode("utf-8", errors="replace"),
                started_at=self._started_at,
                input_sent_at=self._input_sent_at,
                first_output_at=self._first_output_at,
                finished_at=time.time(),
            )
        self._began.set()
        self._done.set()
        self._news.set()

    def wait_started(self, timeout: float) -> None:
        """Until the wrapper has said which group it runs in (or ended); TransportError("timeout") otherwise."""
        if not self._began.wait(timeout):
            self._abandon()
            raise TransportError(
                "timeout",
                (
                    f"{self.where}: the background command did not start within {timeout:g} s (if it did, the "
                    "node ends it at its deadline)"
                ),
            )

    def output(self) -> tuple[str, str]:
        """What it has printed so far (stdout, stderr): e.g. to wait for a server's "listening" line."""
        with self._lock:
            return self._out.decode("utf-8", errors="replace"), self._err.decode("utf-8", errors="replace")

    def wait_output(self, done: Callable[[str], bool], timeout: float) -> tuple[str, str]:
        """Wait until ``done(stdout so far)`` holds, the command ends or ``timeout``
        passes, and return the output then. Woken by the output itself: no polling
        (64 threads polling every 20 ms were a share of a 1,000-node run's CPU)."""
        end = time.monotonic() + timeout
        while True:
            self._news.clear()  # before reading: output fed after the read wakes the wait below
            out, err = self.output()
            if done(out) or not self.running() or time.monotonic() >= end:
                return out, err
            self._news.wait(max(0.0, end - time.monotonic()))

    # --- BackgroundCommand ----------------------------------------------------

    def running(self) -> bool:
        """False once it has ended, and once the connection to it was lost (see ``wait``)."""
        return not self._done.is_set()

    def wait(self, timeout: float) -> CommandResult:
        if not self._done.wait(timeout):
            raise TransportError(
                "timeout", f"{self.where}: the background command is still running after {timeout:g} s"
            )
        return self._final()

    def _final(self) -> CommandResult:
        if self._lost:
            raise TransportError(
                "unreachable",
                (
                    f"{self.where}: the connection was lost while the background command ran (the node ends it "
                    "at its deadline)"
                ),
            )
        assert self._result is not None
        return self._result

    def stop(self, timeout: float = 5.0) -> CommandResult:
        with self._stop_lock:
            if self._done.is_set():
                return self._final()
            end = time.monotonic() + timeout
            if self.pgid is not None:
                grace = min(2.0, max(0.5, timeout * 0.4))
                try:
                    result = self._run_line(
                        stop_line(self.pgid, grace, sudo=self._sudo, shell=self._shell), max(1.0, timeout)
                    )
                except TransportError as exc:
                    self._abandon()
                    raise TransportError(
                        exc.kind, f"{exc.message} (stopping the background command; the node ends it at its deadline)"
                    ) from None
                if "acpcheck-bg-gone" not in result.stdout:
                    if "acpcheck-bg-alive" in result.stdout:
                        raise TransportError("timeout", f"{self.where}: process group {self.pgid} survived SIGKILL")
                    detail = result.stderr.strip() or f"exit status {result.exit_status}"
                    raise TransportError(
                        "permission", f"{self.where}: could not stop process group {self.pgid}: {detail}"
                    )
            # The group is gone: the streams reach EOF as soon as the transport has read the rest.
            if not self._done.wait(max(0.0, end - time.monotonic())):
                self._abandon()
                self._done.wait(1.0)
                self.finish(-1)
            return self._final()
