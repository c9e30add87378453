#!/usr/bin/env bash
# Proves the wheel, not the checkout: builds it from a clean copy of the source tree,
# installs it into a fresh virtualenv (dependencies from the package index) and uses it
# from a directory outside the checkout, where only the installed files can be found:
#
#   - the wheel holds acpcheck/checks/*.py, acpcheck/profiles/*.yaml and
#     acpcheck/reports/{report.html.j2,results.schema.json}, the checkout's LICENSE in its
#     dist-info, and no reports/out/ and no lab (the lab is its own distribution,
#     acpcheck-lab, built from lab/, with its own copy of LICENSE)
#   - `acpcheck list` shows the same catalogue as the checkout's; `acpcheck explain` works
#   - `acpcheck run --profile plan` on an example plan exits 0 and writes its reports
#   - `pytest --pyargs acpcheck.checks` (the plain-plugin way) passes
#   - evidence saved by `acpcheck gather` replays (`run --facts`, no connection), and
#     `acpcheck remediate --from` that run's results.json shows its dry-run
#   - without acpcheck-lab, `acpcheck lab` says what to install and exits 4; with the
#     lab's wheel installed next to the product's, `acpcheck lab --help` and
#     `acpcheck lab scenarios` (its package data) work
#
# It prints the product wheel's file list, summed up per directory.
#
# Usage: scripts/check-wheel.sh [VENV]   (VENV: the development virtualenv, default .venv)
# `make test` runs it before pytest, so no lab is up while pip installs.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=$(cd "${1:-$ROOT/.venv}" && pwd)
PY=$VENV/bin/python
BASE_PYTHON=${PYTHON:-python3}
PLAN=$ROOT/examples/workload-kube-ovn.yaml
WORK=$(mktemp -d "${TMPDIR:-/tmp}/acpcheck-wheel.XXXXXX")
LOG=$WORK/log
trap 'rm -rf "$WORK"' EXIT
start=$SECONDS

fail() {
    echo "check-wheel: FAILED: $*" >&2
    [ -s "$LOG" ] && tail -n 40 "$LOG" >&2
    exit 1
}

# Run a command with no trace of the checkout in its environment, from $WORK.
outside() { (cd "$WORK" && env -u PYTHONPATH -u PYTEST_ADDOPTS -u PYTEST_PLUGINS "$@"); }

# 1. The source tree as a fresh clone has it (tracked and new files, nothing git ignores),
#    so stale build/ output in the checkout cannot leak into the wheel, plus run output
#    in reports/out/ that the wheel must leave out.
mkdir -p "$WORK/src" "$WORK/dist"
git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1 || fail "$ROOT is not a git checkout"
(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard | tar --null --files-from=- --ignore-failed-read -cf - 2>>"$LOG") | tar -xf - -C "$WORK/src"
mkdir -p "$WORK/src/reports/out/run-1" && echo '{}' >"$WORK/src/reports/out/run-1/results.json"

"$PY" -m pip wheel --quiet --no-deps --disable-pip-version-check -w "$WORK/dist" "$WORK/src" >>"$LOG" 2>&1 || fail "pip wheel"
wheel=$(ls "$WORK"/dist/acpcheck-*.whl)
mkdir -p "$WORK/dist-lab"
"$PY" -m pip wheel --quiet --no-deps --disable-pip-version-check -w "$WORK/dist-lab" "$WORK/src/lab" >>"$LOG" 2>&1 || fail "pip wheel lab/"
lab_wheel=$(ls "$WORK"/dist-lab/acpcheck_lab-*.whl)

# 2. What the wheels hold; the product's file list, summed up per directory, is kept for the last line.
contents=$("$PY" - "$wheel" "$lab_wheel" "$ROOT/LICENSE" 2>>"$LOG" <<'EOF'
import collections, fnmatch, sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
# The license travels in each wheel's dist-info (license-files, PEP 639), byte for byte the checkout's LICENSE.
license = open(sys.argv[3], "rb").read()
licensed = [n for n in names if fnmatch.fnmatch(n, "acpcheck-*.dist-info/licenses/LICENSE") and zipfile.ZipFile(sys.argv[1]).read(n) == license]
missing = [p for p in ("acpcheck/checks/*.py", "acpcheck/profiles/*.yaml", "acpcheck/reports/report.html.j2", "acpcheck/reports/results.schema.json") if not fnmatch.filter(names, p)] + ([] if licensed else ["acpcheck-*.dist-info/licenses/LICENSE"])
leaked = [n for n in names if "reports/out/" in n]
lab = [n for n in names if n.startswith(("acpcheck_lab", "acpcheck/lab/"))]
lab_names = zipfile.ZipFile(sys.argv[2]).namelist()
lab_missing = [p for p in ("acpcheck_lab/cli.py", "acpcheck_lab/apiserver.py", "acpcheck_lab/scenarios/demo.yaml", "acpcheck_lab/crds/*.yaml", "acpcheck_lab-*.dist-info/entry_points.txt", "acpcheck_lab-*.dist-info/licenses/LICENSE") if not fnmatch.filter(lab_names, p)]
lab_strays = [n for n in lab_names if not n.startswith("acpcheck_lab")]
print("license:", licensed, "missing:", missing, "leaked:", leaked, "lab modules:", lab, "lab wheel missing:", lab_missing, "lab wheel strays:", lab_strays, file=sys.stderr)
if missing or leaked or lab or lab_missing or lab_strays:
    sys.exit(1)
per_directory = collections.Counter(name.rpartition("/")[0] + "/" for name in names)
print(f"{len(names)} files (license: {licensed[0]}):", ", ".join(f"{directory} {count}" for directory, count in sorted(per_directory.items())))
EOF
) || fail "wheel contents ($(basename "$wheel"), $(basename "$lab_wheel"))"

# 3. A fresh virtualenv with only the wheel and its dependencies.
"$BASE_PYTHON" -m venv "$WORK/venv" >>"$LOG" 2>&1 || fail "python -m venv"
"$WORK/venv/bin/python" -m pip install --quiet --disable-pip-version-check "$wheel" >>"$LOG" 2>&1 || fail "pip install the wheel"
where=$(outside "$WORK/venv/bin/python" -c 'import acpcheck.checks, acpcheck.reports; print(acpcheck.checks.__file__)')
[[ $where == "$WORK/venv/"* ]] || fail "acpcheck.checks imported from $where, not from the installed wheel"

# 4. Used from outside the checkout.
expected=$(cd "$ROOT" && "$VENV/bin/acpcheck" list) || fail "the checkout's acpcheck list"
listed=$(outside "$WORK/venv/bin/acpcheck" list) || fail "acpcheck list"
[ "$listed" = "$expected" ] || fail "acpcheck list differs from the checkout's: $(tail -n 1 <<<"$listed") vs $(tail -n 1 <<<"$expected")"

outside "$WORK/venv/bin/acpcheck" run --plan "$PLAN" --profile plan --out "$WORK/out" >>"$LOG" 2>&1 || fail "acpcheck run exited $?"
for report in results.json report.html; do
    [ -s "$WORK/out/$report" ] || fail "acpcheck run wrote no $report"
done

outside "$WORK/venv/bin/python" -m pytest --pyargs acpcheck.checks --acp-plan="$PLAN" --acp-profile=plan --acp-out="$WORK/out-pytest" \
    -p no:cacheprovider -q >"$WORK/pytest.out" 2>&1 || { cat "$WORK/pytest.out" >>"$LOG"; fail "pytest --pyargs acpcheck.checks"; }

check=$(head -n 1 <<<"$listed" | cut -d' ' -f1)
outside "$WORK/venv/bin/acpcheck" explain "$check" >"$WORK/explain.out" 2>>"$LOG" || fail "acpcheck explain $check"
grep -q "$check" "$WORK/explain.out" || fail "acpcheck explain $check does not name it"

# 5. Evidence replayed, and the remediation dry-run of that run. The plan's one node is this
#    machine's loopback on a closed port: `gather` saves its failure at once, the replay reads
#    it back without connecting, and `remediate --from` that run's results shows what it would
#    change (nothing: an unreachable node is an ERROR, not a finding with a remediation step).
#    remediate has no --facts: it grades the findings again on the nodes themselves.
ssh-keygen -q -t ed25519 -N "" -f "$WORK/id_ed25519" >>"$LOG" 2>&1 || fail "ssh-keygen"
"$PY" - "$PLAN" "$WORK/id_ed25519" >"$WORK/loopback.yaml" 2>>"$LOG" <<'EOF' || fail "the loopback plan"
import sys
text = open(sys.argv[1]).read().split("  nodes:")[0]
text = text.replace("port: 22", "port: 1\n    connectTimeoutSeconds: 2").replace("~/.ssh/id_ed25519", sys.argv[2])
print(text + "  nodes:\n    - {name: cp1, role: control-plane, ipv4: 192.0.2.11, sshHost: 127.0.0.1}")
EOF
code=0
outside "$WORK/venv/bin/acpcheck" gather --plan "$WORK/loopback.yaml" --out "$WORK/facts" >>"$LOG" 2>&1 || code=$?
[ "$code" = 2 ] && [ -s "$WORK/facts/nodes/cp1.json" ] || fail "acpcheck gather exited $code (2 expected: its node is unreachable) or saved no facts"
code=0
outside "$WORK/venv/bin/acpcheck" run --plan "$WORK/loopback.yaml" --profile preinstall --facts "$WORK/facts" \
    --out "$WORK/out-replay" >>"$LOG" 2>&1 || code=$?
[ "$code" = 2 ] && [ -s "$WORK/out-replay/results.json" ] || fail "acpcheck run --facts exited $code (2 expected: the replayed node is an ERROR)"
code=0
outside "$WORK/venv/bin/acpcheck" remediate --plan "$WORK/loopback.yaml" --from "$WORK/out-replay/results.json" \
    >"$WORK/remediate.out" 2>>"$LOG" || code=$?
[ "$code" = 0 ] && grep -q "dry-run: nothing is changed" "$WORK/remediate.out" \
    || { cat "$WORK/remediate.out" >>"$LOG"; fail "acpcheck remediate --from exited $code (0 expected)"; }

# 6. The lab: not in the product, which says how to get it (exit 4); then its own wheel, next to the product's.
code=0
outside "$WORK/venv/bin/acpcheck" lab up >"$WORK/lab.out" 2>&1 || code=$?
[ "$code" = 4 ] && grep -q "pip install ./lab" "$WORK/lab.out" \
    || { cat "$WORK/lab.out" >>"$LOG"; fail "acpcheck lab without acpcheck-lab exited $code (4 expected)"; }
"$WORK/venv/bin/python" -m pip install --quiet --disable-pip-version-check "$lab_wheel" >>"$LOG" 2>&1 || fail "pip install the lab's wheel"
where=$(outside "$WORK/venv/bin/python" -c 'import acpcheck_lab; print(acpcheck_lab.__file__)')
[[ $where == "$WORK/venv/"* ]] || fail "acpcheck_lab imported from $where, not from the installed wheel"
outside "$WORK/venv/bin/acpcheck" lab --help >>"$LOG" 2>&1 || fail "acpcheck lab --help with the lab's wheel"
scenarios=$(outside "$WORK/venv/bin/acpcheck" lab scenarios 2>>"$LOG") || fail "acpcheck lab scenarios"
grep -q "^demo " <<<"$scenarios" || fail "acpcheck lab scenarios lists no demo scenario"

echo "check-wheel: $(basename "$wheel") holds $contents"
echo "check-wheel: OK $(basename "$wheel"): fresh venv, no lab inside, $(tail -n 1 <<<"$listed"), acpcheck run exit 0, explain $check," \
    "pytest --pyargs acpcheck.checks: $(tail -n 1 "$WORK/pytest.out" | tr -d '=' | xargs), gather + replay + remediate dry-run;" \
    "acpcheck lab: exit 4 without the lab, --help and $(grep -c . <<<"$scenarios") scenario lines with $(basename "$lab_wheel") — $((SECONDS - start)) s"
