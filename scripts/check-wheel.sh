#!/usr/bin/env bash
# Proves the wheel, not the checkout: builds it from a clean copy of the source tree,
# installs it into a fresh virtualenv (dependencies from the package index) and uses it
# from a directory outside the checkout, where only the installed files can be found:
#
#   - the wheel holds acpcheck/checks/*.py, acpcheck/profiles/*.yaml and
#     acpcheck/reports/{report.html.j2,results.schema.json}, and no reports/out/
#   - `acpcheck list` shows the same catalogue as the checkout's
#   - `acpcheck run --profile plan` on an example plan exits 0 and writes its reports
#   - `pytest --pyargs acpcheck.checks` (the plain-plugin way) passes
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

# 2. What the wheel holds.
"$PY" - "$wheel" >>"$LOG" 2>&1 <<'EOF' || fail "wheel contents ($(basename "$wheel"))"
import fnmatch, sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
missing = [p for p in ("acpcheck/checks/*.py", "acpcheck/profiles/*.yaml", "acpcheck/reports/report.html.j2", "acpcheck/reports/results.schema.json") if not fnmatch.filter(names, p)]
leaked = [n for n in names if "reports/out/" in n]
print("missing:", missing, "leaked:", leaked)
sys.exit(1 if missing or leaked else 0)
EOF

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

echo "check-wheel: OK $(basename "$wheel"): fresh venv, $(tail -n 1 <<<"$listed"), acpcheck run exit 0, pytest --pyargs acpcheck.checks: $(tail -n 1 "$WORK/pytest.out" | tr -d '=' | xargs) — $((SECONDS - start)) s"
