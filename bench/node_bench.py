"""Benchmark: the full node catalogue on 20, 50 and 100 lab nodes (root only).

For each size, in the same run and against the same lab:

- floor     plain paramiko: connect to every node in parallel and run one exec,
            nothing else. Two variants: the exec is `true` (transport only), or
            the exec is acpcheck's probe script (the same reads, no judging, no
            pytest, no reports): what any tool must at least spend to know the facts;
- acpcheck  `acpcheck run --profile preinstall` (every node check, one probe
            exec per node, reports written), as a user runs it;
- testinfra pytest-testinfra, paramiko backend, `-n auto`: the same facts read
            the testinfra way (one command or file read per fact, per node).

Reported: median wall time of whole processes, acpcheck / floor (probe) and
testinfra / acpcheck ratios, and acpcheck's peak memory (max RSS of the run
process). Targets from the issue: acpcheck within 1.5x of the floor and at least
5x faster than testinfra at 50 nodes; memory under 300 MB at 100 nodes.
Nothing is asserted: this measures.

    python bench/node_bench.py [--sizes 20,50,100] [--runs 3] [--no-testinfra]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
STATE = Path(tempfile.gettempdir()) / "acpcheck-bench-lab"

FLOOR = r'''
import sys, yaml, paramiko
from concurrent.futures import ThreadPoolExecutor
plan = yaml.safe_load(open(sys.argv[1]))
key = paramiko.Ed25519Key.from_private_key_file(sys.argv[2])
if sys.argv[3] == "probe":
    from acpcheck.facts.parse import probe_script
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
'''

# The facts acpcheck's probe reads, read the testinfra way: one call per fact.
TESTINFRA_CHECKS = r'''
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
'''


def timed(command: list[str], runs: int, env: dict[str, str]) -> tuple[float, int]:
    """(median wall seconds, last exit code)."""
    samples, code = [], 0
    for _ in range(runs):
        started = time.perf_counter()
        code = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env).returncode
        samples.append(time.perf_counter() - started)
    return statistics.median(samples), code


def measure(size: int, runs: int, with_testinfra: bool) -> dict[str, float]:
    from acpcheck.lab import down, healthy_scenario, up

    lab = up(healthy_scenario(size), STATE)
    try:
        env = {**os.environ, **lab.env()}
        python = sys.executable
        plan = str(lab.plan_file)
        with tempfile.TemporaryDirectory() as work:
            floor_true, _ = timed([python, "-c", FLOOR, plan, str(lab.client_key), "true"], runs, env)
            floor, _ = timed([python, "-c", FLOOR, plan, str(lab.client_key), "probe"], runs, env)
            acp, code = timed([python, "-m", "acpcheck", "run", "--plan", plan, "--profile", "preinstall", "--out", f"{work}/r"], runs, env)
            peak = _peak_rss_mb([python, "-m", "acpcheck", "run", "--plan", plan, "--profile", "preinstall", "--out", f"{work}/m"], env)
            record = {"nodes": size, "floor_true_s": floor_true, "floor_s": floor, "acpcheck_s": acp, "acpcheck_exit": code, "acpcheck_peak_mb": peak}
            if with_testinfra:
                tests = Path(work) / "test_infra.py"
                tests.write_text(TESTINFRA_CHECKS)
                hosts = ",".join(f"paramiko://root@{n.ipv4}?ssh_identity_file={lab.client_key}" for n in lab.nodes)
                command = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:acpcheck", "-n", "auto", f"--hosts={hosts}", str(tests)]
                infra, infra_code = timed(command, runs, env)
                record.update({"testinfra_s": infra, "testinfra_exit": infra_code})
    finally:
        down(STATE, quiet=True)
    return record


def _peak_rss_mb(command: list[str], env: dict[str, str]) -> float:
    """Max RSS (MB) of one process, from wait4's accounting of that process alone."""
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, _, usage = os.wait4(process.pid, 0)
    return usage.ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20,50,100")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-testinfra", action="store_true")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("node_bench: the lab needs root", file=sys.stderr)
        return 2
    OUT.mkdir(parents=True, exist_ok=True)
    records = [measure(int(size), args.runs, not args.no_testinfra) for size in args.sizes.split(",")]
    print(f"node benchmark, median of {args.runs} runs (wall seconds of whole processes)")
    print(f"{'nodes':>5} {'floor:true':>10} {'floor:probe':>11} {'acpcheck':>9} {'x floor':>8} {'testinfra':>10} {'testinfra/acp':>14} {'acp peak MB':>12}")
    for r in records:
        infra = r.get("testinfra_s")
        infra_text = f"{infra:10.2f} {infra / r['acpcheck_s']:14.1f}" if infra else f"{'-':>10} {'-':>14}"
        print(f"{r['nodes']:>5} {r['floor_true_s']:10.2f} {r['floor_s']:11.2f} {r['acpcheck_s']:9.2f} {r['acpcheck_s'] / r['floor_s']:8.2f} {infra_text} {r['acpcheck_peak_mb']:12.0f}")
    (OUT / "node_bench.json").write_text(json.dumps(records, indent=2) + "\n")
    print(f"written: {OUT / 'node_bench.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
