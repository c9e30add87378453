#!/usr/bin/env bash
# `make demo`: assess a compliant plan and a plan with realistic defects, with the
# `plan` profile, and show where the reports are. Exits non-zero only if acpcheck
# itself misbehaves (the defective plan is expected to exit 1).
set -uo pipefail
venv=${1:-.venv}
acpcheck="$venv/bin/acpcheck"
out=reports/out/demo

run() {  # run <name> <plan> <expected exit>
  echo
  echo "=== acpcheck run --plan $2 --profile plan"
  "$acpcheck" run --plan "$2" --profile plan --out "$out/$1"
  local code=$?
  echo "--- exit code $code (expected $3); reports in $out/$1/"
  [ "$code" -eq "$3" ] || { echo "demo: unexpected exit code" >&2; exit 1; }
}

run compliant examples/workload-kube-ovn.yaml 0
run defective examples/defective/workload-with-defects.yaml 1
echo
echo "Read first: $out/defective/summary.md  (also results.json, junit.xml, report.html)"
