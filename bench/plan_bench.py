"""Benchmark: a plan-only run (profile `plan`) of a 500-node plan.

Wall time of whole `acpcheck run` processes, median of several runs, next to two
baselines measured in the same run on the same machine:

- interpreter: `python -c pass`
- import floor: `python -c "import pytest, pydantic, netaddr, yaml"` (what any
  pytest-and-pydantic tool pays before doing anything)

Ratios against the import floor are what to compare across machines; absolute
seconds are printed too (target: under 3 s on a 2-core machine). Nothing is
asserted: this is a measuring tool, not a test.

    python bench/plan_bench.py [--runs 5] [--nodes 500]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from netaddr import IPNetwork

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"


def make_plan(nodes: int) -> dict:
    """A valid ACP 4.3 workload plan with `nodes` nodes (3 control plane).

    Node addresses come from 198.18.0.0/15, the range reserved for benchmarks
    (RFC 2544): nothing is contacted by a plan-only run.
    """
    hosts = IPNetwork("198.18.0.0/15").iter_hosts()
    next(hosts)
    members = []
    for index in range(nodes):
        role = "control-plane" if index < 3 else "worker"
        members.append({"name": f"{'cp' if index < 3 else 'w'}{index + 1}", "role": role, "ipv4": str(next(hosts))})
    return {
        "apiVersion": "acpcheck/v1",
        "kind": "ClusterPlan",
        "metadata": {"name": f"bench-{nodes}"},
        "spec": {
            "acp": {"version": "4.3"},
            "cluster": {"role": "workload", "type": "on-premise", "kubernetesVersion": "1.34.5"},
            "endpoint": {"address": "198.19.255.250"},
            "network": {"plugin": "kube-ovn", "clusterCIDR": "10.3.0.0/16", "serviceCIDR": "10.4.0.0/16"},
            "ssh": {"auth": {"privateKeyFile": "~/.ssh/id_ed25519"}},
            "nodes": members,
        },
    }


def timed(command: list[str], runs: int) -> tuple[float, list[float], int]:
    samples = []
    code = 0
    for _ in range(runs):
        started = time.perf_counter()
        completed = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
        samples.append(time.perf_counter() - started)
        code = completed.returncode
    return statistics.median(samples), samples, code


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--nodes", default="500,5000", help="plan sizes, comma-separated (default 500,5000)")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    python = sys.executable
    with tempfile.TemporaryDirectory() as reports:
        cases = {
            "interpreter": [python, "-c", "pass"],
            "import floor": [python, "-c", "import pytest, pydantic, netaddr, yaml"],
            "acpcheck 5 nodes": [
                python,
                "-m",
                "acpcheck",
                "run",
                "--plan",
                "examples/workload-kube-ovn.yaml",
                "--profile",
                "plan",
                "--out",
                f"{reports}/5",
            ],
        }
        for nodes in (int(n) for n in args.nodes.split(",")):
            plan_path = OUT / f"plan-{nodes}.yaml"
            plan_path.write_text(yaml.safe_dump(make_plan(nodes), sort_keys=False))
            cases[f"acpcheck {nodes} nodes"] = [
                python,
                "-m",
                "acpcheck",
                "run",
                "--plan",
                str(plan_path),
                "--profile",
                "plan",
                "--out",
                f"{reports}/{nodes}",
            ]
        measured = {name: timed(command, args.runs) for name, command in cases.items()}
    floor = measured["import floor"][0]
    print(f"plan-only benchmark, {args.runs} runs each (median wall time)")
    print(f"{'case':<22} {'seconds':>8} {'x import floor':>15}  exit")
    for name, (median, _, code) in measured.items():
        print(f"{name:<22} {median:8.3f} {median / floor:15.2f}  {code}")
    targets = {500: 0.8, 5000: 3.0}  # the issue's: plan-only wall seconds
    for nodes, limit in targets.items():
        if f"acpcheck {nodes} nodes" in measured:
            median = measured[f"acpcheck {nodes} nodes"][0]
            print(
                f"target: plan-only run of a {nodes}-node plan <= {limit} s: {median:.2f} s — "
                f"{'met' if median <= limit else 'NOT met'}"
            )
    record = {
        name: {"median_s": round(m, 4), "samples_s": [round(s, 4) for s in samples], "exit": code}
        for name, (m, samples, code) in measured.items()
    }
    (OUT / "plan_bench.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"written: {OUT / 'plan_bench.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
