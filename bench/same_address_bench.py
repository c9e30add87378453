"""Benchmark: 1,000 nodes sharing one address (a copy-paste slip), judged plan-only.

Before issue 22, ACP-NET-017 compared every pair of node addresses: this plan took
31 s and 1.84 GB and wrote 470 MB of reports (one result). The targets (issue 22):
judged in under 2 s and 300 MB, with reports under 5 MB.

Each case is a whole `acpcheck run --profile plan` process; wall time is the median
of several runs, peak memory the largest resident set of the process (wait4), report
size the bytes written to --out. The baseline, measured in the same run on the same
machine, is the same 1,000-node plan with every node on its own address: the cost of
the duplicate is the ratio between the two. Nothing is asserted: this is a measuring
tool, not a test (tests/checks/test_many_nodes_one_address.py checks the message).

    python bench/same_address_bench.py [--runs 3] [--nodes 1000]
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

import yaml

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(Path(__file__).resolve().parent))
from plan_bench import make_plan  # noqa: E402 — the same plan generator as the plan benchmark

#: The issue's targets for the duplicate-address plan.
TARGET_SECONDS = 2.0
TARGET_PEAK_MB = 300
TARGET_REPORT_MB = 5


def one_address_plan(nodes: int) -> dict:
    """``make_plan(nodes)`` with every node on the first node's address."""
    plan = make_plan(nodes)
    shared = plan["spec"]["nodes"][0]["ipv4"]
    for node in plan["spec"]["nodes"]:
        node["ipv4"] = shared
    plan["metadata"]["name"] = f"one-address-{nodes}"
    return plan


def measure(command: list[str], out: Path) -> tuple[float, int, int, int]:
    """(wall seconds, peak RSS in KiB, exit code, bytes under ``out``) of one process."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    size = sum(path.stat().st_size for path in out.rglob("*") if path.is_file())
    return elapsed, usage.ru_maxrss, process.returncode, size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--nodes", type=int, default=1000)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    plans = {
        "distinct addresses (baseline)": make_plan(args.nodes),
        "one address": one_address_plan(args.nodes),
    }
    rows: dict[str, dict[str, float | int]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        commands: dict[str, list[str]] = {}
        for label, plan in plans.items():
            plan_path = Path(scratch) / f"{label.split()[0]}.yaml"
            plan_path.write_text(yaml.safe_dump(plan, sort_keys=False))
            for suffix, extra in (("", []), (", ACP-NET-017 only", ["--check", "ACP-NET-017"])):
                commands[label + suffix] = [
                    sys.executable,
                    "-m",
                    "acpcheck",
                    "run",
                    "--plan",
                    str(plan_path),
                    "--profile",
                    "plan",
                    *extra,
                ]
        samples: dict[str, list[tuple[float, int, int, int]]] = {name: [] for name in commands}
        # Round by round, every case once a round: a machine whose load drifts
        # (the lab, other runs) weighs on the baseline and the duplicate alike.
        for run in range(args.runs):
            for index, (name, command) in enumerate(commands.items()):
                out = Path(scratch) / f"out-{index}-{run}"
                samples[name].append(measure([*command, "--out", str(out)], out))
        for name, taken in samples.items():
            rows[name] = {
                "median_s": round(statistics.median(s[0] for s in taken), 3),
                "peak_mb": round(max(s[1] for s in taken) / 1024, 1),
                "exit": taken[-1][2],
                "reports_mb": round(taken[-1][3] / 1e6, 3),
            }
    print(f"{args.nodes} nodes, profile plan, {args.runs} runs each (median wall time, largest peak RSS)")
    print(f"{'case':<48} {'seconds':>8} {'peak MB':>8} {'reports MB':>11} {'exit':>5}")
    for label, row in rows.items():
        print(f"{label:<48} {row['median_s']:8.3f} {row['peak_mb']:8.1f} {row['reports_mb']:11.3f} {row['exit']:5}")
    base, dup = rows["distinct addresses (baseline)"], rows["one address"]
    print(
        f"one address / baseline: time x{dup['median_s'] / base['median_s']:.2f}, peak memory "
        f"x{dup['peak_mb'] / base['peak_mb']:.2f}"
    )
    met = dup["median_s"] < TARGET_SECONDS and dup["peak_mb"] < TARGET_PEAK_MB and dup["reports_mb"] < TARGET_REPORT_MB
    print(
        f"target: under {TARGET_SECONDS:g} s, {TARGET_PEAK_MB} MB and {TARGET_REPORT_MB} MB of reports: "
        f"{dup['median_s']:.2f} s, {dup['peak_mb']:.0f} MB, {dup['reports_mb']:.2f} MB — {'met' if met else 'NOT met'}"
    )
    (OUT / "same_address_bench.json").write_text(json.dumps(rows, indent=2) + "\n")
    print(f"written: {OUT / 'same_address_bench.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
