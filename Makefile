# Peekaboo: `make demo` and `make test` work on a fresh machine (they install into .venv first if needed).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TORCH := torch==2.13.0
PORT ?= 7860

.DEFAULT_GOAL := help
.PHONY: help install demo app test test-full bench bench-full train-prior check-prior lint format clean

help: ## show this help
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install $(TORCH)
	$(PY) -m pip install -e ".[dev,app]"
	touch $(STAMP)

install: $(STAMP) ## create .venv and install torch (CPU build here, CUDA on GPU machines) + peekaboo[dev,app]

demo: $(STAMP) ## segment 16 toy-world scenes on the CPU: prints a table, writes overlays and a contact sheet
	$(PY) run.py experiment=demo

app: $(STAMP) ## web demo at http://127.0.0.1:7860 (other port: make app PORT=8000); see docs/app.md
	$(PY) -m peekaboo.app --host 127.0.0.1 --port $(PORT)

test: $(STAMP) ## fast test suite (< 10 min on 2 cores)
	$(PY) -m pytest -q

test-full: $(STAMP) ## every test, including the slow quality floors
	$(PY) -m pytest -q -m "slow or not slow"

bench: $(STAMP) ## throughput benchmark: one-item loop vs batched engine (tiny_sd, toy world), ratios
	$(PY) -m benchmarks.bench

bench-full: $(STAMP) ## also time one full-size SD1.5 step built from configs (fp32 vs bf16)
	$(PY) -m benchmarks.bench --full

train-prior: $(STAMP) ## retrain the toy SD (model=toy_sd) on 2 CPU cores and install it as the shipped weights
	$(PY) -m peekaboo.toy.train_prior install=true

check-prior: $(STAMP) ## sample check of the toy SD: 8 DDIM samples per class, shape and colour accuracy, grid PNG
	$(PY) -m peekaboo.toy.check_prior --grid outputs/toy_sd_samples.png

lint: $(STAMP) ## ruff
	$(PY) -m ruff check src tests experiments benchmarks run.py

format: $(STAMP) ## ruff autofix
	$(PY) -m ruff check --fix src tests experiments benchmarks run.py

clean: ## remove caches and outputs (keeps .venv)
	rm -rf outputs/* multirun .pytest_cache .ruff_cache wandb
	touch outputs/.gitkeep
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
