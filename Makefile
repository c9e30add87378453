# The front door. Both targets set themselves up on a fresh Debian machine (as root):
# system packages, a virtualenv in .venv, and acpcheck installed into it.
VENV   ?= .venv
PYTHON ?= python3
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup test lint fuzz demo bench clean

setup: $(STAMP)

# The product and the local lab (its own distribution, acpcheck-lab: lab/), both editable.
$(STAMP): pyproject.toml lab/pyproject.toml scripts/setup-system.sh
	./scripts/setup-system.sh
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]' -e ./lab
	touch $@

# The wheel check installs packages, so it runs first: before any test brings up a lab.
test: setup
	PYTHON=$(PYTHON) ./scripts/check-wheel.sh $(VENV)
	./scripts/lint.sh $(VENV)
	$(PY) -m pytest -n auto --dist loadgroup -q

# Style and types alone (make test runs them too): ruff check, ruff format --check, mypy.
lint: setup
	./scripts/lint.sh $(VENV)

# The long fuzzing run (the default suite runs a short, derandomised one): every kind of
# hostile input, FUZZ_EXAMPLES cases each, outcomes counted at the end (and in
# reports/out/fuzz.json).
FUZZ_EXAMPLES ?= 2000
fuzz: setup
	mkdir -p reports/out
	ACPCHECK_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) ACPCHECK_FUZZ_REPORT=reports/out/fuzz.json \
		$(PY) -m pytest tests/fuzz -q -p no:cacheprovider --hypothesis-profile=long --hypothesis-show-statistics

demo: setup
	./scripts/demo.sh $(VENV)

bench: setup
	$(PY) -m pip install --quiet --disable-pip-version-check pytest-testinfra ansible-core  # the peers we measure against
	$(PY) bench/plan_bench.py
	$(PY) bench/node_bench.py
	$(PY) bench/lb_bench.py
	$(PY) bench/etcd_bench.py
	$(PY) bench/secret_scan_bench.py
	$(PY) bench/fleet_bench.py

clean:
	rm -rf $(VENV) reports/out bench/out *.egg-info lab/*.egg-info
