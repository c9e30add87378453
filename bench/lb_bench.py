"""Benchmark: the load-balancer proof on the lab (root only).

For 3 and 7 control-plane nodes behind the lab's haproxy (round robin, TCP health
checks every 200 ms), with the 3 ports a workload cluster's LB forwards (6443, 11780,
11781), the LB evidence source is gathered again and again over one set of SSH
sessions (as in a run, where node facts open them first):

- proof     the connections through the endpoint, per port in parallel, until every
            node answered on every port (the slowest port): the time to proof;
- total     the whole source: listeners started on every node, the proof, the
            listeners stopped and confirmed gone;
- conns     connections made through the endpoint, all ports together
            (the minimum is nodes x ports);
- run       one whole `acpcheck run --check ACP-LB-*` process (start-up, facts, proof,
            reports), for scale.

Target: a proof of 3 nodes x 3 ports under 2 s on the lab. Takes the lab lock that
the tests take, and always tears its lab down. Nothing is asserted: this measures.

    python bench/lb_bench.py [--sizes 3,7] [--runs 5]
"""

from __future__ import annotations

import argparse
import fcntl
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
STATE = Path(tempfile.gettempdir()) / "acpcheck-bench-lb"
LOCK = Path("/run/lock/acpcheck-lab-tests.lock")


def measure(size: int, runs: int) -> dict[str, object]:
    from acpcheck.model.plan import load_plan
    from acpcheck.sources.base import GatherContext
    from acpcheck.sources.lb import LoadBalancerSource
    from acpcheck.sources.nodes import NodeFactsSource
    from acpcheck_lab import down, up
    from acpcheck_lab.lbmodel import LabLoadBalancer
    from acpcheck_lab.scenario import healthy_scenario

    scenario = healthy_scenario(size + 1, control_planes=size).model_copy(
        update={"load_balancer": LabLoadBalancer(), "name": f"lb-bench-{size}"}
    )
    info = up(scenario, STATE)
    try:
        os.environ.update(info.env())
        plan = load_plan(info.plan_file)
        context = GatherContext(plan)
        try:
            context.gathered["nodes"] = NodeFactsSource().gather(context)  # opens the SSH sessions, as a run does
            rows = []
            for _ in range(runs):
                started = time.monotonic()
                evidence = LoadBalancerSource().gather(context)
                total = time.monotonic() - started
                complete = all(len(port.answered) == size for port in evidence.ports)
                rows.append(
                    {
                        "total": total,
                        "proof": max(port.seconds for port in evidence.ports),
                        "connections": evidence.connections,
                        "complete": complete,
                        "cleaned": all(state.cleaned for state in evidence.listeners.values()),
                    }
                )
        finally:
            context.close()
        run_seconds = _one_run(info.plan_file, info.env())
    finally:
        down(STATE, purge=True, quiet=True)
    return {
        "control_plane": size,
        "ports": 3,
        "runs": runs,
        "proof_median": statistics.median(row["proof"] for row in rows),
        "proof_max": max(row["proof"] for row in rows),
        "total_median": statistics.median(row["total"] for row in rows),
        "connections_median": statistics.median(row["connections"] for row in rows),
        "connections_max": max(row["connections"] for row in rows),
        "all_proven": all(row["complete"] for row in rows),
        "all_cleaned": all(row["cleaned"] for row in rows),
        "acpcheck_run": run_seconds,
        "rows": rows,
    }


def _one_run(plan: Path, env: dict[str, str]) -> float:
    with tempfile.TemporaryDirectory() as out:
        started = time.monotonic()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "acpcheck",
                "run",
                "--plan",
                str(plan),
                "--out",
                out,
                "--force",
                "--check",
                "ACP-LB-*",
            ],
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
            timeout=120,
        )
        return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="3,7")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("lb_bench: needs root (the lab)", file=sys.stderr)
        return 1
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    results = []
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one lab at a time while measuring: wait for the tests' or anyone's
        for size in (int(part) for part in args.sizes.split(",")):
            results.append(measure(size, args.runs))
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "lb_bench.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"LB proof on the lab, {args.runs} runs each, ports 6443/11780/11781 (median; max)")
    print(
        "| control-plane nodes x ports | time to proof | whole source (listeners up, proof, listeners gone) "
        "| connections | `acpcheck run --check ACP-LB-*` |"
    )
    print("|---|---|---|---|---|")
    for row in results:
        print(
            f"| {row['control_plane']} x {row['ports']} | {row['proof_median']:.3f} s "
            f"({row['proof_max']:.3f}) | {row['total_median']:.3f} s | "
            f"{row['connections_median']:g} ({row['connections_max']}) | {row['acpcheck_run']:.2f} s |"
        )
    if not all(row["all_proven"] and row["all_cleaned"] for row in results):
        print("lb_bench: some run did not prove every node or did not clean up", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
