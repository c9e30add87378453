"""Benchmark: ``acpcheck run --fleet … --profile upgrade`` over fleets of test API servers (the
project's stand-in for kube-apiserver, ``acpcheck_lab.fleet``: one server per cluster, its own CA),
each cluster with 20 Ready nodes and a few thousand objects (namespaces, config maps, cron jobs,
daemon sets, approved CSRs).

For each fleet size (default 5, 10, 25, 50 clusters), in the same run and against the same servers:

- start-up  the fleet's start: certificates and files, then the server processes seeding and serving
            every cluster; the servers' memory (RSS, all server processes);
- floor     the official ``kubernetes`` client reading, cluster after cluster, what acpcheck's cluster
            source reads (``/version``, ``/apis``, every row of ``acpcheck.sources.cluster.READS`` whose
            group version is served): the least any tool spends to know the same facts, no judging;
- serial    ``acpcheck run --fleet F --profile upgrade``: every cluster read, judged and reported;
- -n 2      the same on two local xdist workers (``--dist loadgroup``: a cluster's items on one worker);
- remote    the same on two remote workers (``--tx ssh=…``) in two lab nodes — only when the lab's
            worker support (``acpcheck_lab.workers``) is installed and this runs as root; skipped with
            the reason otherwise.

Wall time, the runner's CPU and the servers' (apart): each run is a child process and ``wait4``
reports the user+sys CPU of it and of every process it waited for (xdist workers, ssh clients) —
never the test API servers, which are not its descendants (their CPU over the run is read from
/proc and shown apart: on one machine they share the cores with the runner). Reported per run and
per cluster, with ratios to the floor (same run) and each mode's per-cluster cost at every size
against its cost at the smallest size (flat = 1.0).
Nothing is
asserted: this measures. The issue's target: under 30 s with ``-n 2`` for 50 clusters on 2 cores.

    python bench/fleet_bench.py [--sizes 5,10,25,50] [--nodes 20] [--objects 3000] [--runs 1]
        [--server-processes 2] [--modes serial,n2,remote]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
MODES = ("serial", "n2", "remote")
#: The lab tests' machine lock: a lab (for the remote workers) is brought up under it.
LOCK = Path("/run/lock/acpcheck-lab-tests.lock")

#: The floor: the official client reads what the cluster source reads, one cluster after another.
FLOOR = r"""
import sys, yaml
from pathlib import Path
from kubernetes import config
from acpcheck.sources.cluster import READS
fleet_file = Path(sys.argv[1])
fleet = yaml.safe_load(fleet_file.read_text())
def get(api, path, query=()):
    request = api.param_serialize("GET", path, query_params=list(query), auth_settings=["BearerToken"])
    answer = api.call_api(*request)
    answer.read()
    if answer.status >= 400 and answer.status != 404:
        raise SystemExit(f"{path}: HTTP {answer.status}")
    return answer.data
for entry in fleet["spec"]["clusters"]:
    with config.new_client_from_config(config_file=str(fleet_file.parent / entry["kubeconfig"])) as api:
        get(api, "/version")
        served = {v["groupVersion"] for g in yaml.safe_load(get(api, "/apis"))["groups"] for v in g["versions"]}
        for read in READS:
            if read.group and f"{read.group}/{read.version}" not in served:
                continue
            base = f"/apis/{read.group}/{read.version}" if read.group else f"/api/{read.version}"
            if read.namespace:
                base += f"/namespaces/{read.namespace}"
            path = f"{base}/{read.resource}" + (f"/{read.name}" if read.name else "")
            get(api, path, [("limit", read.limit)] if read.limit else [])
"""


@dataclass
class Sample:
    """One mode at one size: medians over the runs."""

    wall_s: float
    cpu_s: float  # user+sys of the runner and its waited-for descendants (never the servers)
    peak_mb: float  # max RSS of the largest single process among them
    exit: int
    bad: int | None = None  # FAIL + ERROR results of the last run
    skipped: str = ""  # why this mode did not run
    servers_cpu_s: float = 0.0  # user+sys the test API servers spent answering it (per run): not the runner's


def fails_and_errors(results: Path) -> int | None:
    if not results.exists():
        return None
    document = json.loads(results.read_text())
    return sum(result["status"] in ("fail", "error") for result in document["results"])


def run_measured(command: list[str], runs: int, cwd: Path, results: Path | None = None) -> Sample:
    walls, cpus, peaks, code = [], [], [], 0
    for _ in range(runs):
        started = time.perf_counter()
        process = subprocess.Popen(
            command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL
        )
        _, status, usage = os.wait4(process.pid, 0)
        walls.append(time.perf_counter() - started)
        cpus.append(usage.ru_utime + usage.ru_stime)
        peaks.append(usage.ru_maxrss / 1024)
        code = os.waitstatus_to_exitcode(status)
    bad = fails_and_errors(results) if results is not None else None
    return Sample(statistics.median(walls), statistics.median(cpus), max(peaks), code, bad)


def cpu_s(pids: list[int]) -> float:
    """user+sys seconds the processes ``pids`` have spent so far (/proc/<pid>/stat fields 14 and 15)."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def run_beside_servers(command: list[str], runs: int, servers: list[int], results: Path | None = None) -> Sample:
    """``run_measured``, and what the servers spent meanwhile (per run)."""
    before = cpu_s(servers)
    sample = run_measured(command, runs, ROOT, results)
    sample.servers_cpu_s = (cpu_s(servers) - before) / runs
    return sample


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def remote_unavailable() -> str:
    """Why two remote lab workers cannot be measured here ("" when they can)."""
    if importlib.util.find_spec("acpcheck_lab.workers") is None:
        return "remote workers: acpcheck_lab.workers (the lab's worker hosts, helper 'remote') is not installed yet"
    if os.geteuid() != 0:
        return "remote workers: the lab's worker hosts need root (network namespaces)"
    return ""


def acpcheck_run(fleet_file: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "acpcheck", "run", "--fleet", str(fleet_file), "--profile", "upgrade"] + [
        "--force",
        "--out",
        str(out),
        *extra,
    ]


def measure(
    size: int, nodes: int, objects: int, runs: int, processes: int, modes: list[str], remote: object | None
) -> dict[str, object]:
    from acpcheck_lab.fleet import TestFleet, scale_fleet

    record: dict[str, object] = {"clusters": size}
    host = getattr(remote, "host", "127.0.0.1")
    with tempfile.TemporaryDirectory(dir=getattr(remote, "shared", None)) as work:
        started = time.perf_counter()
        with TestFleet(
            scale_fleet(size, nodes, objects), Path(work) / "fleet", host=host, processes=processes
        ) as fleet:
            record["startup_s"] = time.perf_counter() - started
            record["startup_split"] = fleet.timings
            record["servers_mb"] = sum(rss_mb(pid) for pid in fleet.pids)
            servers = fleet.pids
            floor = [sys.executable, "-c", FLOOR, str(fleet.fleet_file)]
            record["floor"] = run_beside_servers(floor, runs, servers)
            for mode, extra in (("serial", []), ("n2", ["-n", "2"])):
                if mode in modes:
                    out = Path(work) / mode
                    command = acpcheck_run(fleet.fleet_file, out, *extra)
                    record[mode] = run_beside_servers(command, runs, servers, out / "results.json")
            if "remote" in modes:
                if remote is None:
                    record["remote"] = Sample(0, 0, 0, 0, skipped=remote_unavailable())
                else:
                    out = Path(work) / "remote"
                    tx = [option for spec in remote.specs for option in ("--tx", spec)]  # type: ignore[attr-defined]
                    command = acpcheck_run(fleet.fleet_file, out, *tx)
                    record["remote"] = run_beside_servers(command, runs, servers, out / "results.json")
    return record


class RemoteWorkers:
    """Two lab nodes as worker hosts (``acpcheck_lab.workers``), up for the whole benchmark under the lab
    lock; the fleets listen on the lab's controller address so the nodes reach them."""

    def __init__(self) -> None:
        import fcntl

        from acpcheck_lab import Scenario, up
        from acpcheck_lab.scenario import NodeSpec
        from acpcheck_lab.workers import check_worker_hosts, controller_address, worker_python, worker_specs

        LOCK.parent.mkdir(parents=True, exist_ok=True)
        self._lock = open(LOCK, "w")  # noqa: SIM115 — held until close()
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        self.shared = tempfile.mkdtemp(prefix="acpcheck-fleet-bench-", dir="/var/tmp")  # the nodes see /var/tmp
        self.state = Path(tempfile.gettempdir()) / "acpcheck-fleet-bench-lab"
        python = worker_python(Path(self.shared) / "python")
        scenario = Scenario(
            name="bench-workers",
            description="two worker hosts for the fleet benchmark",
            nodes=[NodeSpec(name="dc1", role="control-plane"), NodeSpec(name="dc2", role="worker")],
        )
        self.info = up(scenario, self.state)
        check_worker_hosts(self.info, python, ("dc1", "dc2"))
        self.host = controller_address(self.info)
        self.specs = worker_specs(self.info, python, ("dc1", "dc2"))

    def close(self) -> None:
        import shutil

        from acpcheck_lab import down

        down(self.state, purge=True)
        shutil.rmtree(self.shared, ignore_errors=True)
        self._lock.close()


def table(records: list[dict[str, object]], modes: list[str]) -> str:
    lines = [
        "| clusters | start-up s (files + serve) | servers MiB | mode | wall s | runner CPU s | servers CPU s "
        "| wall/cluster s "
        "| CPU/cluster s | CPU vs floor | CPU/cluster vs smallest | FAIL+ERROR (floor: exit) |",
        "|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    smallest: dict[str, float] = {}
    for record in records:
        size = int(record["clusters"])  # type: ignore[call-overload]
        split = record["startup_split"]
        startup = f"{record['startup_s']:.1f} ({split['files']:.1f} + {split['serve']:.1f})"  # type: ignore[index]
        floor: Sample = record["floor"]  # type: ignore[assignment]
        for mode in ["floor", *modes]:
            sample: Sample = record[mode]  # type: ignore[assignment]
            if sample.skipped:
                lines.append(
                    f"| {size} | {startup} | {record['servers_mb']:.0f} | {mode} | skipped: {sample.skipped} |"
                )
                continue
            per_cluster = sample.cpu_s / size
            outcome = f"exit {sample.exit}" if sample.bad is None else str(sample.bad)
            smallest.setdefault(mode, per_cluster)
            lines.append(
                f"| {size} | {startup} | {record['servers_mb']:.0f} | {mode} "
                f"| {sample.wall_s:.1f} | {sample.cpu_s:.1f} | {sample.servers_cpu_s:.1f} "
                f"| {sample.wall_s / size:.2f} | {per_cluster:.3f} | {sample.cpu_s / max(floor.cpu_s, 1e-9):.1f}x "
                f"| {per_cluster / smallest[mode]:.2f} | {outcome} |"
            )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--sizes", default="5,10,25,50", help="fleet sizes (clusters), comma-separated")
    parser.add_argument("--nodes", type=int, default=20, help="nodes per cluster")
    parser.add_argument("--objects", type=int, default=3000, help="ordinary objects per cluster")
    parser.add_argument("--runs", type=int, default=1, help="runs per mode and size (medians)")
    parser.add_argument("--server-processes", type=int, default=2, help="processes serving the fleet")
    parser.add_argument("--modes", default=",".join(MODES), help=f"of {', '.join(MODES)}")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    modes = [mode for mode in args.modes.split(",") if mode]
    unknown = sorted(set(modes) - set(MODES))
    if unknown:
        parser.error(f"unknown mode(s): {', '.join(unknown)} (of {', '.join(MODES)})")
    remote = None
    if "remote" in modes:
        why = remote_unavailable()
        if why:
            print(f"skipped: {why}", flush=True)
        else:
            remote = RemoteWorkers()
    records = []
    try:
        for size in sizes:
            print(f"fleet of {size} clusters ...", flush=True)
            records.append(measure(size, args.nodes, args.objects, args.runs, args.server_processes, modes, remote))
    finally:
        if remote is not None:
            remote.close()
    OUT.mkdir(parents=True, exist_ok=True)
    text = (
        f"fleet benchmark: {args.nodes} nodes and {args.objects} objects per cluster, "
        f"{args.server_processes} server processes, {args.runs} run(s) per mode\n"
        f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}\n\n" + table(records, modes)
    )
    print(text)
    (OUT / "fleet_bench.md").write_text(text + "\n")
    (OUT / "fleet_bench.json").write_text(
        json.dumps(
            [{k: asdict(v) if isinstance(v, Sample) else v for k, v in record.items()} for record in records], indent=1
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
