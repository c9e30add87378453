#!/usr/bin/env bash
# `make demo`: the pre-install assessment on the local lab. Brings up 4 real sshd
# nodes (3 control-plane, 1 worker; two with realistic defects, the worker reachable
# only through a SOCKS5 proxy) behind a real haproxy that leaves cp2 out of port 11443,
# runs the `preinstall` profile against the lab's plan, shows the load-balancer
# finding and where the reports are, and tears the lab down again, also on failure.
# Then the upgrade readiness of a fleet: three clusters, each served by the project's test
# API server (the stand-in for kube-apiserver), judged in one run on two xdist workers.
# Exits non-zero only if acpcheck itself misbehaves: the lab's defects must give exit 1.
set -uo pipefail
venv=${1:-.venv}
acpcheck="$venv/bin/acpcheck"
state=${ACPCHECK_DEMO_STATE:-/tmp/acpcheck-demo-lab}
out=reports/out/demo

"$acpcheck" lab down --state "$state" >/dev/null 2>&1  # a lab left over from an interrupted demo
fleet_dir=$(mktemp -d /tmp/acpcheck-demo-fleet.XXXXXX)
trap '"$acpcheck" lab down --state "$state" --purge >/dev/null 2>&1; rm -rf "$fleet_dir"' EXIT

echo "=== acpcheck lab up --scenario demo"
"$acpcheck" lab up --scenario demo --state "$state" || { echo "demo: the lab did not come up" >&2; exit 1; }
set -a; . "$state/lab.env"; set +a  # the plan's secrets (proxy credentials) by environment variable

echo
echo "=== acpcheck run --plan $state/plan.yaml --profile preinstall"
"$acpcheck" run --plan "$state/plan.yaml" --profile preinstall --out "$out"
code=$?
echo
echo "--- exit code $code (1 expected: the lab's nodes carry defects)"
[ "$code" -eq 1 ] || { echo "demo: unexpected exit code" >&2; exit 1; }
echo "--- the load balancer: ACP-LB-002 names the port and the node it never reached"
"$venv/bin/python" - "$out/results.json" <<'EOF' || { echo "demo: the load-balancer finding is missing" >&2; exit 1; }
import json, sys
results = json.load(open(sys.argv[1]))["results"]
found = [r for r in results if r["check"] == "ACP-LB-002" and r["status"] == "fail"]
for r in found:
    print(f"    {r['status'].upper()} {r['check']} [{r['target']}] {r['message']}")
sys.exit(0 if any(r["target"] == "node:cp2" and "port 11443" in r["message"] for r in found) else 1)
EOF
echo
echo "=== acpcheck remediate --plan $state/plan.yaml --from $out/results.json  (dry-run: what acpcheck would fix, and how)"
"$acpcheck" remediate --plan "$state/plan.yaml" --from "$out/results.json"
fix=$?; [ "$fix" -eq 1 ] || { echo "demo: remediate dry-run exit $fix (1 expected)" >&2; exit 1; }
echo "Read first: $out/summary.md  (also results.json, junit.xml, report.html, facts/)"

echo
echo "=== acpcheck run --fleet <fleet>/fleet.yaml -n 2  (global, east, west: each its own test API server)"
"$venv/bin/python" - "$fleet_dir" "$acpcheck" "$out-fleet" <<'EOF' || { echo "demo: the fleet run misbehaved" >&2; exit 1; }
import subprocess, sys
from pathlib import Path
from acpcheck_lab.fleet import TestFleet, three_cluster_fleet
directory, acpcheck, out = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
with TestFleet(three_cluster_fleet(), directory) as fleet:
    code = subprocess.run([acpcheck, "run", "--fleet", str(fleet.fleet_file), "-n", "2", "--out", out]).returncode
print(f"--- exit code {code} (1 expected: east's API server is not the version its plan says, west still uses a removed API)")
sys.exit(0 if code == 1 else 1)
EOF
echo "Read first: $out-fleet/summary.md  (one verdict per cluster; report.html opens with the same table)"
