# audiogan: the two commands that matter are `make demo` and `make test`.
# Each sets up .venv first when it is missing or older than pyproject.toml.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.audiogan-installed
RUN    ?= runs/demo
DATASET ?= tones

.PHONY: setup demo test test-fast lab lint clean help bench-torch
help:
	@echo "make setup  create $(VENV), install audiogan with dev extras, register the Jupyter kernel"
	@echo "make demo   run notebooks 01 -> 04 headless on the embedded tones into $(RUN)/"
	@echo "make test   the whole test suite, notebooks included (what CI runs)"
	@echo "make test-fast  the suite without the slow tests (notebooks, subprocesses, long training)"
	@echo "make lab    open JupyterLab on notebooks/"

setup: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "audiogan needs Python 3.11 or newer, found " + sys.version.split()[0]'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name audiogan --display-name "Python (audiogan)"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m audiogan.cli.demo --run-dir $(RUN) --dataset $(DATASET)

test: $(STAMP)
	$(BIN)/python -m pytest -q  # tests/conftest.py gives each run a fresh dataset cache

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check lib tests benchmarks

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/

clean:
	rm -rf build runs data/cache/*.npy data/cache/*.json

# A grid of notebook parameters, each point through papermill into its own run folder:
#   make sweep SWEEP=sweeps/loss_ablation.yaml JOBS=2   (summary.csv and notebooks/06_compare.ipynb)
SWEEP ?= sweeps/loss_ablation.yaml
JOBS  ?= 1
.PHONY: sweep
sweep: $(STAMP)
	$(BIN)/python -m audiogan.cli.sweep $(SWEEP) --jobs $(JOBS)

# Benchmark-only: PyTorch versions of the models for `benchmarks/train_step.py --vs-torch`, in a venv
# of their own (torch is never a dependency of the package). The CPU build: no CUDA libraries.
TORCH_VENV := .venv-torch
bench-torch: $(TORCH_VENV)/.installed
$(TORCH_VENV)/.installed: pyproject.toml
	test -x $(TORCH_VENV)/bin/python || python3.11 -m venv $(TORCH_VENV)
	$(TORCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(TORCH_VENV)/bin/python -m pip install --quiet -e .
	$(TORCH_VENV)/bin/python -m pip install --quiet 'torch==2.13.0+cpu'
	touch $@
