"""The parent of a lab's long-running processes (sshds, proxy, listeners).

    python -I keeper.py < requests

A lab outlives the ``up`` command, so its processes need a parent that stays. On some
machines pid 1 never reaps orphans, and every process of a lab would stay behind as a
zombie after ``down``. The keeper is a *child subreaper* (prctl): it starts the
processes ``up`` asks for, adopts anything they orphan, and reaps them all as they
end. Requests are JSON lines on stdin, ``{"argv": [...], "log": path, "env": {...}}``;
the keeper first prints its own pid, then replies to each request with the new
process's pid. When stdin closes the keeper
only reaps, and it exits once it has no child left (that is, after ``down``).
"""

import ctypes
import json
import os
import subprocess
import sys

PR_SET_CHILD_SUBREAPER = 36


def main() -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    print(os.getpid(), flush=True)  # first line: the keeper's own pid
    started = []  # keep the Popen objects: reaping is done by os.wait below
    for line in sys.stdin:
        request = json.loads(line)
        try:
            with open(request["log"], "wb") as log:
                proc = subprocess.Popen(
                    request["argv"],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=request["env"],
                    start_new_session=True,
                    close_fds=True,
                )
        except OSError as error:
            print(f"error {error}", flush=True)
            continue
        started.append(proc)
        print(proc.pid, flush=True)
    sys.stdout.close()
    while True:
        try:
            os.wait()
        except ChildProcessError:
            return 0
        except InterruptedError:
            continue


if __name__ == "__main__":
    sys.exit(main())
