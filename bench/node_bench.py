"""Benchmark: the full node catalogue on lab nodes (root only): wall time AND runner CPU.

For each size, in the same run and against the same lab:

- floor     plain paramiko: connect to every node in parallel and run one exec of
            acpcheck's probe script (the same reads, no judging, no pytest, no
            reports): what any tool must at least spend to know the facts. A second
            floor runs `true` instead (transport only);
- acpcheck  `acpcheck run --profile preinstall --check area:NODE`: every node
            preprocessing check, one probe exec per node, reports written — the
            same facts the floor reads, judged;
- preinstall the whole `preinstall` profile, `acpcheck run --profile preinstall`:
            node facts, the load-balancer proof through the lab's haproxy, the
            connectivity proof (listeners and connectors on every node), every check,
            every report; with the number of FAIL and ERROR results, which on this
            healthy lab must be 0 (issue 16: a wrong verdict at 60 nodes went unseen
            because nothing ran the whole profile at size);
- replay    the same acpcheck run on the facts it just saved (``--facts``): judging
            and reports alone, no SSH — what the runner spends besides gathering;
- testinfra pytest-testinfra, paramiko backend, `-n auto`: the same facts read the
            testinfra way (one command or file read per fact, per node);
- ansible   `ansible all -m setup` (fact gathering, forks 50, pipelining on), the
            tool most people already use to learn about their machines.

On the lab the nodes' sshds and probes share the runner's cores, so wall time
hides what limits a run over 1,000 real machines: the CPU the runner itself
spends per node. That is measured exactly: each tool runs as a child process and
``wait4`` reports the user+sys CPU of that process and of every process it waited
for (xdist workers, ssh clients) — never the lab's sshds, which are not its
descendants. Reported per size: median wall seconds and runner CPU seconds of
whole processes, CPU per node, ratios against the probe floor, peak memory.
Nothing is asserted: this measures.

    python bench/node_bench.py [--sizes 10,100,500,1000] [--runs 3] [--peer-runs 1]
        [--no-testinfra] [--no-ansible] [--peers-up-to 1000]
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
STATE = Path(tempfile.gettempdir()) / "acpcheck-bench-lab"
#: One lab at a time while measuring (several can be up, but they would share the cores):
#: the tests and the other benchmarks take this lock too.
LOCK = Path("/run/lock/acpcheck-lab-tests.lock")

FLOOR = r"""
import sys, yaml, paramiko
from concurrent.futures import ThreadPoolExecutor
plan = yaml.safe_load(open(sys.argv[1]))
key = paramiko.Ed25519Key.from_private_key_file(sys.argv[2])
if sys.argv[3] == "probe":
    from acpcheck.facts.model import probe_script
    script = probe_script()
def one(node):
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect(node["ipv4"], username="root", pkey=key, look_for_keys=False, allow_agent=False, timeout=10)
    if sys.argv[3] == "probe":
        stdin, out, _ = client.exec_command("sh -s")
        stdin.write(script)
        stdin.channel.shutdown_write()
        out.read()
    else:
        _, out, _ = client.exec_command("true")
        out.channel.recv_exit_status()
    client.close()
with ThreadPoolExecutor(64) as pool:
    list(pool.map(one, plan["spec"]["nodes"]))
"""

# The facts acpcheck's probe reads, read the testinfra way: one call per fact.
TESTINFRA_CHECKS = r"""
def test_node(host):
    host.file("/etc/os-release").content_string
    host.file("/proc/sys/kernel/osrelease").content_string
    host.run("uname -m")
    host.file("/proc/cpuinfo").content_string
    host.file("/proc/meminfo").content_string
    host.file("/proc/swaps").content_string
    host.file("/proc/cmdline").content_string
    host.file("/proc/modules").content_string
    host.file("/sys/module/apparmor/parameters/enabled").exists
    host.file("/etc/ufw/ufw.conf").exists
    host.run("nft list ruleset")
    host.run("/usr/sbin/sshd -T")
    host.file("/etc/systemd/system.conf").content_string
    host.run("hostname")
    host.file("/etc/hosts").content_string
    host.file("/etc/resolv.conf").content_string
    host.run("ip -o addr show")
    host.run("ip route show")
    host.run("ss -Htlnp")
    host.run("dpkg-query -W")
    for binary in ("ip", "ss", "tar", "swapoff", "modprobe", "sysctl", "md5sum", "scp", "sftp"):
        host.exists(binary)
    for path in ("/etc/systemd/system/kubelet.service", "/var/lib/docker", "/var/lib/containerd", "/var/log/pods"):
        host.file(path).exists
    host.file("/proc/mounts").content_string
    host.run("df -Pk / /tmp")
    host.file("/etc/timezone").exists
    host.run("date +%s.%N")
"""


@dataclass
class Sample:
    """One tool at one size: medians over the runs."""

    wall_s: float
    cpu_s: float  # user+sys of the process and its waited-for descendants
    peak_mb: float  # max RSS of the largest single process among them
    exit: int
    bad: int | None = None  # FAIL + ERROR results of the last run, where counted


def fails_and_errors(results: Path) -> int:
    """FAIL and ERROR results in a run's results.json (one result per line)."""
    document = json.loads(results.read_text())
    return sum(result["status"] in ("fail", "error") for result in document["results"])


def run_measured(command: list[str], runs: int, env: dict[str, str], cwd: Path, results: Path | None = None) -> Sample:
    walls, cpus, peaks, code = [], [], [], 0
    for _ in range(runs):
        started = time.perf_counter()
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL
        )
        _, status, usage = os.wait4(process.pid, 0)
        walls.append(time.perf_counter() - started)
        cpus.append(usage.ru_utime + usage.ru_stime)
        peaks.append(usage.ru_maxrss / 1024)
        code = os.waitstatus_to_exitcode(status)
    bad = fails_and_errors(results) if results is not None and results.exists() else None
    return Sample(statistics.median(walls), statistics.median(cpus), max(peaks), code, bad)


def ansible_inventory(lab, path: Path) -> None:  # type: ignore[no-untyped-def]
    lines = ["[nodes]"]
    lines += [
        f"{n.name} ansible_host={n.ipv4} ansible_user=root ansible_ssh_private_key_file={lab.client_key} "
        "ansible_python_interpreter=/usr/bin/python3"
        for n in lab.nodes
    ]
    path.write_text("\n".join(lines) + "\n")


def measure(size: int, runs: int, peer_runs: int, with_testinfra: bool, with_ansible: bool) -> dict[str, object]:
    from acpcheck_lab import down, healthy_scenario, up

    lab = up(healthy_scenario(size), STATE)
    try:
        env = {**os.environ, **lab.env()}
        python = sys.executable
        plan = str(lab.plan_file)
        record: dict[str, object] = {"nodes": size}
        with tempfile.TemporaryDirectory() as work:
            record["floor_true"] = run_measured(
                [python, "-c", FLOOR, plan, str(lab.client_key), "true"], runs, env, ROOT
            )
            record["floor"] = run_measured([python, "-c", FLOOR, plan, str(lab.client_key), "probe"], runs, env, ROOT)
            acpcheck_run = [
                python,
                "-m",
                "acpcheck",
                "run",
                "--plan",
                plan,
                "--profile",
                "preinstall",
                "--check",
                "area:NODE",
                "--force",
            ]
            record["acpcheck"] = run_measured(
                [*acpcheck_run, "--out", f"{work}/r"], runs, env, ROOT, Path(work) / "r" / "results.json"
            )
            whole = [
                python,
                "-m",
                "acpcheck",
                "run",
                "--plan",
                plan,
                "--profile",
                "preinstall",
                "--force",
                "--out",
                f"{work}/whole",
            ]
            record["preinstall"] = run_measured(whole, runs, env, ROOT, Path(work) / "whole" / "results.json")
            if (
                Path(work) / "whole" / "results.json"
            ).exists():  # kept: a FAIL or ERROR on the healthy lab must be explainable
                shutil.copy(Path(work) / "whole" / "results.json", OUT / f"preinstall-{size}.results.json")
            # The same run on the facts the last one saved: judging and reports alone, no SSH.
            record["replay"] = run_measured(
                [*acpcheck_run, "--out", f"{work}/replay", "--facts", f"{work}/r/facts"], runs, env, ROOT
            )
            if with_testinfra:
                tests = Path(work) / "test_infra.py"
                tests.write_text(TESTINFRA_CHECKS)
                hosts = ",".join(f"paramiko://root@{n.ipv4}?ssh_identity_file={lab.client_key}" for n in lab.nodes)
                command = [
                    python,
                    "-m",
                    "pytest",
                    "-q",
                    "-p",
                    "no:cacheprovider",
                    "-p",
                    "no:acpcheck",
                    "-n",
                    "auto",
                    f"--hosts={hosts}",
                    str(tests),
                ]
                record["testinfra"] = run_measured(command, peer_runs, env, ROOT)
            ansible = shutil.which("ansible", path=str(Path(python).parent)) or shutil.which("ansible")
            if with_ansible and ansible:
                inventory = Path(work) / "inventory.ini"
                ansible_inventory(lab, inventory)
                ansible_env = {
                    **env,
                    "ANSIBLE_HOST_KEY_CHECKING": "False",
                    "ANSIBLE_PIPELINING": "True",
                    "ANSIBLE_SSH_ARGS": "-o ControlMaster=no -o UserKnownHostsFile=/dev/null",
                    "ANSIBLE_LOCAL_TEMP": f"{work}/ansible-tmp",
                    "ANSIBLE_NOCOLOR": "1",
                }
                record["ansible"] = run_measured(
                    [ansible, "all", "-i", str(inventory), "-m", "setup", "-f", "50"],
                    peer_runs,
                    ansible_env,
                    Path(work),
                )
    finally:
        down(STATE, quiet=True)
    return record


def machine() -> str:
    """The machine the figures come from (they mean little without it)."""
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "unknown CPU",
    )
    memory = (
        int(
            next(
                line.split()[1]
                for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal")
            )
        )
        // 1024
        // 1024
    )
    return (
        f"{os.cpu_count()} CPUs ({model}), {memory} GiB, Python {sys.version.split()[0]}, "
        f"{os.uname().sysname} {os.uname().release}"
    )


def table(records: list[dict[str, object]], runs: int, peer_runs: int) -> str:
    tools = ("floor_true", "floor", "acpcheck", "preinstall", "replay", "testinfra", "ansible")
    lines = [
        f"node benchmark on {machine()}",
        f"median of {runs} runs (peers: {peer_runs}): wall s / runner CPU s (CPU ms per node); ratios "
        "against the probe floor",
        f"{'nodes':>5} "
        + " ".join(f"{name:>22}" for name in tools)
        + f" {'acp/floor wall':>14} {'acp/floor CPU':>13} {'acp peak MB':>11} {'pre/acp wall':>12} "
        f"{'pre peak MB':>11} {'pre FAIL+ERROR':>14}",
    ]
    for r in records:
        cells = []
        for name in tools:
            s = r.get(name)
            cells.append(
                f"{s.wall_s:6.2f}/{s.cpu_s:6.2f} ({1000 * s.cpu_s / r['nodes']:5.1f})"
                if isinstance(s, Sample)
                else f"{'-':>22}"
            )
        acp, floor = r["acpcheck"], r["floor"]
        assert isinstance(acp, Sample) and isinstance(floor, Sample)
        line = (
            f"{r['nodes']:>5} "
            + " ".join(f"{c:>22}" for c in cells)
            + f" {acp.wall_s / floor.wall_s:14.2f} {acp.cpu_s / floor.cpu_s:13.2f} {acp.peak_mb:11.0f}"
        )
        whole = r.get("preinstall")
        if isinstance(whole, Sample):
            line += (
                f" {whole.wall_s / acp.wall_s:12.2f} {whole.peak_mb:11.0f} "
                f"{whole.bad if whole.bad is not None else '?':>14}"
            )
        lines.append(line)
    return "\n".join(lines + targets(records))


def targets(records: list[dict[str, object]]) -> list[str]:
    """The issue's targets, against the sizes measured (a target whose size was not measured is left out)."""
    by_size = {r["nodes"]: r for r in records}

    def sample(size: int, tool: str) -> Sample:
        found = by_size[size][tool]
        assert isinstance(found, Sample)
        return found

    def per_node(size: int, tool: str) -> float:
        return sample(size, tool).cpu_s / size

    lines = ["targets:"]
    for size in (100, 1000):
        if size in by_size:
            ratio = per_node(size, "acpcheck") / per_node(size, "floor")
            lines.append(
                f"  runner CPU per node <= 1.5x the floor's at {size}: {ratio:.2f}x — "
                f"{'met' if ratio <= 1.5 else 'NOT met'}"
            )
    if 100 in by_size and 1000 in by_size:
        growth = per_node(1000, "acpcheck") / per_node(100, "acpcheck") - 1
        lines.append(
            f"  flat: CPU per node at 1,000 within 20 % of 100's: {growth:+.0%} — "
            f"{'met' if abs(growth) <= 0.2 else 'NOT met'}"
        )
    if 100 in by_size:
        ratio = sample(100, "acpcheck").wall_s / sample(100, "floor").wall_s
        lines.append(f"  wall <= 1.15x the floor's at 100: {ratio:.2f}x — {'met' if ratio <= 1.15 else 'NOT met'}")
    if 1000 in by_size:
        peak = sample(1000, "acpcheck").peak_mb
        lines.append(f"  peak memory <= 500 MB at 1,000: {peak:.0f} MB — {'met' if peak <= 500 else 'NOT met'}")
    # issue 16: the whole preinstall profile
    if all(isinstance(r.get("preinstall"), Sample) for r in records):
        for size in (100, 1000):
            if size in by_size:
                ratio = sample(size, "preinstall").wall_s / sample(size, "acpcheck").wall_s
                lines.append(
                    f"  whole preinstall wall <= 1.5x the node-only run's at {size}: {ratio:.2f}x — "
                    f"{'met' if ratio <= 1.5 else 'NOT met'}"
                )
        if 100 in by_size and 1000 in by_size:
            growth = per_node(1000, "preinstall") / per_node(100, "preinstall") - 1
            lines.append(
                f"  whole preinstall CPU per node flat from 100 to 1,000 (within 20 %): {growth:+.0%} — "
                f"{'met' if abs(growth) <= 0.2 else 'NOT met'}"
            )
        if 1000 in by_size:
            peak = sample(1000, "preinstall").peak_mb
            lines.append(
                f"  whole preinstall peak RSS < 1 GB at 1,000: {peak:.0f} MB — {'met' if peak < 1000 else 'NOT met'}"
            )
        bad = {r["nodes"]: r["preinstall"].bad for r in records}  # type: ignore[union-attr]
        lines.append(
            f"  no FAIL and no ERROR on the healthy lab: {bad} — "
            f"{'met' if all(count == 0 for count in bad.values()) else 'NOT met'}"
        )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,500,1000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-testinfra", action="store_true")
    parser.add_argument("--no-ansible", action="store_true")
    parser.add_argument(
        "--peers-up-to",
        type=int,
        default=1000,
        metavar="N",
        help="measure testinfra and Ansible only up to N nodes (each takes minutes at 1,000)",
    )
    parser.add_argument(
        "--peer-runs",
        type=int,
        default=1,
        metavar="N",
        help="runs of each peer per size (default 1: they are context, not the ratio)",
    )
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("node_bench: the lab needs root", file=sys.stderr)
        return 2
    OUT.mkdir(parents=True, exist_ok=True)
    records = []
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for size in (int(s) for s in args.sizes.split(",")):
            print(f"measuring {size} nodes …", file=sys.stderr, flush=True)
            peers = size <= args.peers_up_to
            records.append(
                measure(size, args.runs, args.peer_runs, peers and not args.no_testinfra, peers and not args.no_ansible)
            )
    print(table(records, args.runs, args.peer_runs))
    serialisable = [{k: asdict(v) if isinstance(v, Sample) else v for k, v in r.items()} for r in records]
    (OUT / "node_bench.json").write_text(json.dumps(serialisable, indent=2) + "\n")
    print(f"written: {OUT / 'node_bench.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
