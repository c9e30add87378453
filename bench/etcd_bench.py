"""Benchmark: the etcd encryption scan (ACP-ENC-013) over 100 000 objects in a lab etcd (root only).

A lab control-plane node runs Debian's etcd with client TLS on its loopback, seeded
with N secrets written as kube-apiserver writes them (AES-GCM under the config's
current key) plus the realistic mix of the ``encryption`` scenario. Measured, each
as a child process (``wait4``: wall time, user+sys CPU, peak RSS), median of the runs:

- floor     every value read through the same SSH forward with the same client
            certificate, in the same adaptive pages over the whole prefix (no namespace
            sub-ranges), nothing classified: what reading etcd costs;
- acpcheck  ``acpcheck run --check ACP-ENC-013`` as a user runs it: SSH to every
            control-plane node, the manifest and config read, every value read in
            pages, classified and AES-GCM-verified, reports written;
- sample    the same with ``ACPCHECK_ETCD_SAMPLE=10000`` (a keys-only walk, then
            evenly spaced windows of values).

Target (issue 8): acpcheck under 20 s and 300 MB for 100 000 objects. Takes the lab
lock the tests use, and always tears its lab down.

    python bench/etcd_bench.py [--objects 100000] [--runs 3]
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from node_bench import Sample, run_measured  # wait4-measured child processes, as the node benchmark measures them

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
STATE = Path(tempfile.gettempdir()) / "acpcheck-bench-etcd"
LOCK = Path("/run/lock/acpcheck-lab-tests.lock")

FLOOR = r"""
import sys, yaml
from acpcheck.model.plan import load_plan
from acpcheck.sources.base import GatherContext
from acpcheck.sources.encryption import read_node, _credentials
from acpcheck.transport.etcd import EtcdClient, prefix_end, range_values
plan = load_plan(sys.argv[1])
context = GatherContext(plan)
node = plan.control_plane[0]
session = context.pool.session(node)
read = read_node(session, b"salt")
credentials = _credentials(session, read.observed.flags)
count = 0
with session.forward("127.0.0.1", 2379) as forward, EtcdClient(forward.address, "127.0.0.1", credentials) as client:
    for prefix in (b"/registry/secrets/", b"/registry/configmaps/"):
        revision = int(client.range(prefix, prefix_end(prefix), count_only=True)["header"]["revision"])
        count += sum(1 for _ in range_values(client, prefix, prefix_end(prefix), revision))
context.close()
print(count)
"""


def scenario(objects: int):  # type: ignore[no-untyped-def]
    from acpcheck.yamlsource import parse_yaml
    from acpcheck_lab.scenario import scenario_from_document

    text = f"""
name: bench-etcd
description: one control-plane node with etcd holding {objects} more secrets (and the realistic mix)
liveCluster: {{etcdData: {{mix: realistic, objects: {objects}}}}}
nodes:
  - {{name: cp1, role: control-plane, controlPlane: {{etcd: true}}}}
"""
    return scenario_from_document(parse_yaml(text, "bench-etcd"))


def measure(objects: int, runs: int) -> dict[str, object]:
    from acpcheck_lab import down, up
    from acpcheck_lab.etcd import realistic_objects

    mix = sum(1 for _ in realistic_objects([""] * 5))  # the encryption scenario's 60 secrets and configmaps
    started = time.perf_counter()
    lab = up(scenario(objects - mix), STATE, ready_timeout=60)
    record: dict[str, object] = {"objects": objects, "lab_up_s": round(time.perf_counter() - started, 1)}
    try:
        env = {**os.environ, **lab.env()}
        python, plan = sys.executable, str(lab.plan_file)
        with tempfile.TemporaryDirectory() as work:
            record["floor"] = run_measured([python, "-c", FLOOR, plan], runs, env, ROOT)
            command = [
                python,
                "-m",
                "acpcheck",
                "run",
                "--plan",
                plan,
                "--profile",
                "upgrade",
                "--check",
                "ACP-ENC-013",
                "--out",
                f"{work}/r",
                "--force",
            ]
            record["acpcheck"] = run_measured(command, runs, env, ROOT)
            record["sample_10000"] = run_measured(command, runs, {**env, "ACPCHECK_ETCD_SAMPLE": "10000"}, ROOT)
            subprocess.run(command, env=env, cwd=ROOT, capture_output=True, check=False)
            result = next(
                r
                for r in json.loads(Path(f"{work}/r/results.json").read_text())["results"]
                if r["check"] == "ACP-ENC-013"
            )
            record["verdict"] = result["status"]
            record["examined"] = result["evidence"].get("examined")
    finally:
        down(STATE, purge=True, quiet=True)
    return record


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("etcd_bench: the lab needs root", file=sys.stderr)
        return 2
    OUT.mkdir(parents=True, exist_ok=True)
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(LOCK, "w") as lock:
        print("etcd_bench: waiting for the lab lock …", file=sys.stderr, flush=True)
        fcntl.flock(lock, fcntl.LOCK_EX)
        record = measure(args.objects, args.runs)
    lines = [
        f"etcd scan of {record['objects']} objects (lab up and seeded in {record['lab_up_s']} s), median of "
        f"{args.runs} runs",
        f"{'':10} {'wall s':>7} {'CPU s':>6} {'peak MB':>8}",
    ]
    for name in ("floor", "acpcheck", "sample_10000"):
        sample = record[name]
        assert isinstance(sample, Sample)
        lines.append(f"{name:10} {sample.wall_s:7.2f} {sample.cpu_s:6.2f} {sample.peak_mb:8.0f}")
    lines.append(f"ACP-ENC-013: {record['verdict']} ({record['examined']} objects examined)")
    print("\n".join(lines))
    (OUT / "etcd_bench.json").write_text(
        json.dumps({k: asdict(v) if isinstance(v, Sample) else v for k, v in record.items()}, indent=2) + "\n"
    )
    print(f"written: {OUT / 'etcd_bench.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
