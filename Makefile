# fedbench: `make bench METHOD=fedavg` and `make test` install what they need first.
# bench, leaderboard and perf write results/ and leaderboards/ into the current folder: from
# anywhere but the checkout (`make -f path/to/Makefile bench`) they would scatter a results folder
# there, so they refuse and say how to run them in the checkout.
ROOT := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
ifneq ($(filter bench leaderboard perf,$(MAKECMDGOALS)),)
ifneq ($(abspath $(CURDIR)),$(ROOT))
$(error make $(filter bench leaderboard perf,$(MAKECMDGOALS)) writes results/ and leaderboards/ into the current folder, and $(CURDIR) is not the fedbench checkout; run it there: make -C $(ROOT) $(MAKECMDGOALS))
endif
endif
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
METHOD ?= fedavg
PROFILE ?= quick
RATES ?=
SEEDS ?=
TYPES ?=
ABLATIONS ?=
WORKERS ?=
DATASET ?=
EXECUTOR ?=
CELLS ?=
PRECISION ?=
ACCELERATOR ?=
SMOKE ?=
RESULTS ?=
LEADERBOARDS ?=

.PHONY: install test bench perf gpu-check mutants leaderboard lint clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt torch==2.13.0
	PIP_CONSTRAINT=constraints.txt $(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

test: install
	$(PY) -m pytest

bench: install
	$(PY) -m fedbench.cli bench --method $(METHOD) --profile $(PROFILE) $(if $(DATASET),--dataset $(DATASET)) $(if $(EXECUTOR),--executor $(EXECUTOR)) $(if $(CELLS),--cells $(CELLS)) $(if $(PRECISION),--precision $(PRECISION)) $(if $(ACCELERATOR),--accelerator $(ACCELERATOR)) $(if $(SMOKE),--smoke true) $(if $(ROUNDS),--rounds $(ROUNDS)) \
		$(if $(RATES),--rates "$(RATES)") $(if $(SEEDS),--seeds "$(SEEDS)") $(if $(TYPES),--types "$(TYPES)") \
		$(if $(ABLATIONS),--ablations true) $(if $(WORKERS),--workers $(WORKERS)) \
		$(if $(RESULTS),--results $(RESULTS)) $(if $(LEADERBOARDS),--leaderboards $(LEADERBOARDS))

perf: install
	OMP_NUM_THREADS=1 $(PY) benchmarks/perf.py --command "make perf"

mutants: install
	$(PY) benchmarks/mutants.py

gpu-check: install
	$(PY) benchmarks/gpu_check.py

leaderboard: install
	$(PY) -m fedbench.cli leaderboard

lint: install
	$(VENV)/bin/ruff check fedbench tests benchmarks
	$(VENV)/bin/ruff format --check fedbench tests benchmarks
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
