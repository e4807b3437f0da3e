# Two commands do all set-up: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEVSTAMP := $(VENV)/.installed-dev
DASHSTAMP := $(VENV)/.installed-dashboard
DOCSSTAMP := $(VENV)/.installed-docs
SCENARIOS ?= scenarios/ndpr_oxide.toml

.PHONY: run test docs lint lab bench bench-measures bench-chain bench-pathway bench-pipeline bench-sweep bench-dashboard bench-dashboard-load clean install install-dev

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(DEVSTAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP) $@

# `make run` installs what the README's next commands need: the dashboard and briefs
$(DASHSTAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dashboard,reports]"
	touch $(STAMP) $@

# `make docs` installs the docs extra (mkdocs-material, mkdocstrings-python, mkdocs-gen-files)
$(DOCSSTAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[docs]"
	touch $(STAMP) $@

install: $(STAMP)
install-dev: $(DEVSTAMP)

run: $(DASHSTAMP)
	$(BIN)/tradepolicy run $(SCENARIOS) -o results.nc
	$(BIN)/tradepolicy dashboard --results results.nc $(DASHBOARD_ARGS)

# the modules whose docstring examples run as doctests in `make test` (short, no solves)
DOCTEST_MODULES := tradepolicy/units.py tradepolicy/reports/formatting.py tradepolicy/results/accessor.py \
	tradepolicy/regions.py tradepolicy/market.py tradepolicy/chain.py tradepolicy/scenario.py \
	tradepolicy/errors.py tradepolicy/measures/base.py

test: $(DEVSTAMP)
	$(BIN)/ruff check tradepolicy tests benchmarks notebooks dashboards docs/scripts
	$(BIN)/python -m mypy
	$(BIN)/python -m pytest --durations=20
	$(BIN)/python -m pytest --doctest-modules $(DOCTEST_MODULES)

# the documentation site, built offline into site/ (git-ignored); `make test` builds it --strict
docs: $(DOCSSTAMP)
	DISABLE_MKDOCS_2_WARNING=true NO_MKDOCS_2_WARNING=1 $(BIN)/python -m mkdocs build --strict --site-dir site

lab: $(DEVSTAMP)
	$(BIN)/jupyter lab --notebook-dir=notebooks

lint: $(DEVSTAMP)
	$(BIN)/ruff check tradepolicy tests benchmarks notebooks dashboards docs/scripts
	$(BIN)/ruff format --check tradepolicy tests benchmarks notebooks dashboards
	$(BIN)/python -m mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_solver.py --quick

bench-measures: $(STAMP)
	$(BIN)/python benchmarks/bench_measures.py --quick

bench-chain: $(STAMP)
	$(BIN)/python benchmarks/bench_chain.py --quick

bench-pathway: $(STAMP)
	$(BIN)/python benchmarks/bench_pathway.py --quick

bench-pipeline: $(STAMP)
	$(BIN)/python benchmarks/bench_pipeline.py --quick

bench-sweep: $(DEVSTAMP)
	$(BIN)/python benchmarks/bench_sweep.py

bench-dashboard: $(DEVSTAMP)
	$(BIN)/python benchmarks/bench_dashboard.py

bench-dashboard-load: $(DEVSTAMP)
	$(BIN)/python benchmarks/bench_dashboard_load.py

clean:
	rm -rf $(VENV) build dist site *.egg-info .pytest_cache .ruff_cache results.nc
