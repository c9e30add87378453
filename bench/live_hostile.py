"""Live sources against hostile servers and files (issue 22, item 4): exit code, wall time
and peak memory of ``acpcheck run`` (and ``acpcheck remediate --from``) per case.

Each case is one child process run as a user runs it, in a process group of its own,
measured with ``wait4`` (wall, peak RSS of the largest process). A case that would run
for ever is killed at ``--cap-seconds``, one that grows past ``--cap-mb`` of memory is
killed then (both shown in the table: the figures are then lower bounds). Only acpcheck
is killed, as ``timeout`` would; ``orphans`` counts what it started that outlived it
(the never-ending exec plugin's processes). The hostile Kubernetes API server is the
project's test API server (``acpcheck_lab.apiserver``, ``Hostile``), started from this
tree; the acpcheck that is measured is the one in ``--tree`` (default: this checkout),
so the same script gives before and after figures. A tree from ``git archive`` needs
the links the wheel's layout has (an editable install maps ``acpcheck.checks`` to this
checkout's ``checks/`` otherwise):

    git archive <commit> | tar -x -C /tmp/before
    for d in checks profiles reports; do ln -s ../$d /tmp/before/acpcheck/$d; done
    python bench/live_hostile.py --tree /tmp/before    # before
    python bench/live_hostile.py                       # after

No root, no lab, nothing but loopback.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PLAN = ROOT / "examples" / "workload-kube-ovn.yaml"
#: Reads only the cluster source (no SSH to the example's addresses): what the API cases need.
CLUSTER_CHECK = ["--profile", "upgrade", "--check", "ACP-ENC-001"]
#: The command of the issue.
ENC = ["--profile", "upgrade", "--check", "area:ENC"]
ORPHAN_MARK = "4242.4242"  # an argument of the never-ending plugin's sleep, to find it afterwards
#: One etcd read (``/v3/maintenance/status``) with acpcheck's etcd client, as the scan makes them.
ETCD_READ = r"""
import sys
from pathlib import Path
from acpcheck.transport.etcd import ClientCredentials, EtcdClient, EtcdError
work = Path(sys.argv[2])
credentials = ClientCredentials(*((work / name).read_text() for name in ("ca.pem", "cert.pem", "key.pem")))
try:
    with EtcdClient(("127.0.0.1", int(sys.argv[1])), "127.0.0.1", credentials, label="etcd") as client:
        client.status()
    sys.exit(0)
except EtcdError as error:
    print(error.kind, error.message)
    sys.exit(2)
"""


def children_of(pgid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == pgid:
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def measured(
    command: list[str], env: dict[str, str], cwd: Path, cap_seconds: float, cap_mb: float
) -> dict[str, object]:
    started = time.perf_counter()
    # cwd: the measured tree (``python -m`` and ``-c`` put the working directory first on sys.path).
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    killed: list[str] = []
    output: list[bytes] = []
    reader = threading.Thread(target=lambda: output.append(process.stdout.read()), daemon=True)  # type: ignore[union-attr]
    reader.start()

    def watch() -> None:
        while process.poll() is None:
            elapsed = time.perf_counter() - started
            memory = sum(rss_mb(pid) for pid in children_of(process.pid))
            if elapsed > cap_seconds or memory > cap_mb:
                killed.append(f"killed at {elapsed:.0f} s" if elapsed > cap_seconds else f"killed at {memory:,.0f} MB")
                os.kill(
                    process.pid, signal.SIGKILL
                )  # acpcheck only, as `timeout` would: what it started may stay behind
                return
            time.sleep(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    watcher.join()
    time.sleep(0.5)  # a process killed a moment ago is not yet gone from /proc
    left = len(orphans())  # processes acpcheck started that outlived it
    try:
        os.killpg(process.pid, signal.SIGKILL)  # then whatever it left in its group
    except ProcessLookupError:
        pass
    reader.join(5)
    text = b"".join(output).decode(errors="replace")
    return {
        "exit": os.waitstatus_to_exitcode(status),
        "wall_s": round(wall, 1),
        "peak_mb": round(usage.ru_maxrss / 1024, 1),
        "note": killed[0] if killed else "",
        "orphans": left,
        "output": text[-600:],
    }


def orphans() -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (
                    ORPHAN_MARK in Path(f"/proc/{entry.name}/cmdline").read_bytes().decode(errors="replace")
                    and "State:\tZ" not in Path(f"/proc/{entry.name}/status").read_text()
                ):
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", type=Path, default=ROOT, help="the acpcheck tree to measure (default: this one)")
    parser.add_argument("--cap-seconds", type=float, default=120.0)
    parser.add_argument("--cap-mb", type=float, default=2048.0)
    parser.add_argument(
        "--interval", type=float, default=3.0, help="seconds between two bytes of the drip (the issue's: 3)"
    )
    parser.add_argument("--only", action="append", default=[], help="run only these cases")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from acpcheck_lab.apiserver import Hostile, init_server_dir, serve_dir

    env = {**os.environ, "PYTHONPATH": str(args.tree.resolve()), "PYTHONDONTWRITEBYTECODE": "1"}
    acpcheck = [sys.executable, "-m", "acpcheck"]
    rows: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory(prefix="acpcheck-hostile-") as work_dir:
        work = Path(work_dir)
        (work / ".ssh").mkdir()
        (work / ".ssh" / "id_ed25519").write_text(
            ""
        )  # the example plan's key file: present, never used (no node is contacted)
        env["HOME"] = str(work)
        server_dir = init_server_dir(work / "api", port=0)
        server = serve_dir(server_dir.root, listen="127.0.0.1:0")
        reader = server_dir.kubeconfig("acpcheck-reader")

        def run(name: str, extra: list[str], kubeconfig: Path | str | None, command: list[str] | None = None) -> None:
            if args.only and name not in args.only:
                return
            out = work / "out" / name
            line = command or [*acpcheck, "run", "--plan", str(PLAN), *extra, "--out", str(out)] + (
                ["--kubeconfig", str(kubeconfig)] if kubeconfig else []
            )
            row = measured(line, env, args.tree.resolve(), args.cap_seconds, args.cap_mb)
            results = out / "results.json"
            if results.exists():
                document = json.loads(results.read_text())
                row["statuses"] = {k: v for k, v in document["summary"].items() if v}
            rows[name] = row
            print(
                f"{name:28} exit {row['exit']:>3}  {row['wall_s']:>7} s  {row['peak_mb']:>8} MB  "
                f"{row['note']}  orphans {row['orphans']}",
                flush=True,
            )

        run("healthy API", CLUSTER_CHECK, reader)
        for mode in ("drip", "silent", "huge", "malformed", "reset"):
            server.hostile = Hostile(mode, "/", args.interval)
            run(f"API {mode}", CLUSTER_CHECK, reader)
        server.hostile = Hostile("huge", "/api/v1/nodes", args.interval)
        run("API huge nodes list only", CLUSTER_CHECK, reader)
        server.hostile = None

        plugin = work / "never-ending-plugin"
        plugin.write_text(f"#!/bin/sh\nsleep {ORPHAN_MARK} &\nsleep {ORPHAN_MARK}\n")
        plugin.chmod(0o755)
        document = yaml.safe_load(reader.read_text())
        document["users"][0]["user"] = {
            "exec": {
                "apiVersion": "client.authentication.k8s.io/v1",
                "command": str(plugin),
                "interactiveMode": "Never",
            }
        }
        (work / "exec.kubeconfig").write_text(yaml.safe_dump(document))
        run("exec plugin never exits", CLUSTER_CHECK, work / "exec.kubeconfig")
        for pid in orphans():
            os.kill(pid, signal.SIGKILL)

        fifo = work / "token.fifo"
        os.mkfifo(fifo)
        document["users"][0]["user"] = {"tokenFile": str(fifo)}
        (work / "fifo.kubeconfig").write_text(yaml.safe_dump(document))
        run("tokenFile is a FIFO", CLUSTER_CHECK, work / "fifo.kubeconfig")
        run("--kubeconfig /dev/zero (ENC)", ENC, "/dev/zero")

        user = yaml.safe_load(server_dir.kubeconfig("admin").read_text())["users"][0]["user"]
        for name, value in (
            ("ca.pem", server_dir.ca.read_text()),
            ("cert.pem", base64.b64decode(user["client-certificate-data"]).decode()),
            ("key.pem", base64.b64decode(user["client-key-data"]).decode()),
        ):
            (work / name).write_text(value)
        for mode in ("drip", "huge"):
            server.hostile = Hostile(mode, "/v3/", args.interval)
            run(f"etcd {mode}", [], None, [sys.executable, "-c", ETCD_READ, str(server.port), str(work)])
        server.hostile = None

        results_fifo = work / "results.fifo"
        os.mkfifo(results_fifo)
        for name, source in (
            ("remediate --from FIFO", results_fifo),
            ("remediate --from /dev/zero", Path("/dev/zero")),
        ):
            run(
                name,
                [],
                None,
                [
                    *acpcheck,
                    "remediate",
                    "--plan",
                    str(PLAN),
                    "--from",
                    str(source),
                    "--out",
                    str(work / "out" / name.replace(" ", "_").replace("/", "_")),
                ],
            )
        server.stop()
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
