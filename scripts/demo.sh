#!/usr/bin/env bash
# `make demo`: the pre-install assessment on the local lab. Brings up 4 real sshd
# nodes (3 control-plane, 1 worker; two with realistic defects, the worker reachable
# only through a SOCKS5 proxy), runs the `preinstall` profile against the lab's plan,
# shows where the reports are, and tears the lab down again, also on failure.
# Exits non-zero only if acpcheck itself misbehaves: the lab's defects must give exit 1.
set -uo pipefail
venv=${1:-.venv}
acpcheck="$venv/bin/acpcheck"
state=${ACPCHECK_DEMO_STATE:-/tmp/acpcheck-demo-lab}
out=reports/out/demo

"$acpcheck" lab down --state "$state" >/dev/null 2>&1  # a lab left over from an interrupted demo
trap '"$acpcheck" lab down --state "$state" --purge >/dev/null 2>&1' EXIT

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
echo "Read first: $out/summary.md  (also results.json, junit.xml, report.html, facts/)"
