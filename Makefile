# The two commands of the README: `make demo` (the main job) and `make test` (the tests).
# Each creates or updates the local virtual environment from the pinned versions in pyproject.toml.

VENV   ?= .venv
PYTHON ?= python3
STAMP  := $(VENV)/.qhw-installed
JOBS   ?= 2

.PHONY: demo test test-slow bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e ".[test]"
	touch $@

demo: $(STAMP)
	$(VENV)/bin/qhw demo

test: $(STAMP)
	$(VENV)/bin/python -m pytest -n $(JOBS) --durations=15

test-slow: $(STAMP)
	$(VENV)/bin/python -m pytest -n $(JOBS) -m slow --durations=15

bench: $(STAMP)
	$(VENV)/bin/python bench/bench_binconv.py
	$(VENV)/bin/python bench/bench_bamconv.py
	$(VENV)/bin/python bench/bench_gru.py
	$(VENV)/bin/python bench/bench_expmul.py
	$(VENV)/bin/python bench/bench_finn_rtl.py -o docs
	$(VENV)/bin/python bench/bench_network_folding.py
	$(VENV)/bin/python bench/bench_dnsmos.py --whole -o docs
	$(VENV)/bin/python bench/bench_sweep_dask.py --repeat 3
	$(VENV)/bin/python bench/bench_gru_tasks.py -o build/bench
	$(VENV)/bin/python bench/bench_search_area.py
	$(VENV)/bin/python bench/bench_search_network.py -o build/bench

clean:
	rm -rf build .pytest_cache
