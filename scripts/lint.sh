#!/usr/bin/env bash
# Style and types, the checks `make test` runs so that CI fails on any finding:
#
#   - ruff check          the rules in pyproject.toml ([tool.ruff]: pycodestyle, pyflakes,
#                         import order, pyupgrade, bugbear; lines up to 120 characters)
#   - ruff format --check the code is as `ruff format` leaves it
#   - mypy                the product's types ([tool.mypy] names what it checks)
#
# Usage: scripts/lint.sh [VENV]   (VENV: the development virtualenv, default .venv)
# All three run even when one fails, so one run shows every finding; the exit status is 1
# when any of them found something.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=$(cd "${1:-$ROOT/.venv}" && pwd)
PY=$VENV/bin/python
cd "$ROOT"

status=0
"$PY" -m ruff check --quiet . || status=1
"$PY" -m ruff format --check --quiet . || status=1
"$PY" -m mypy || status=1
exit $status
