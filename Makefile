# inspection — `make help` lists the targets. Every target creates .venv and installs the project if needed.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
DEMO := outputs/demo
PYTEST_ARGS ?=

.PHONY: help install demo pipeline test test-fast lint browser clean

help:  ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -e '.[train,dev,serve,cluster]'
	$(PY) -m pip install -q --no-deps 'tritonclient>=2.40'  # the [triton] extra, without its clashing pins
	touch $@

install: $(VENV)/.installed  ## create .venv and install inspection[train,dev,serve,cluster] (+ tritonclient)

browser:  ## install Debian chromium for the HTML-report browser test (needs root; skipped otherwise)
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || echo "chromium not installed (not root): browser test will be skipped"; }

demo: install  ## the DVC pipeline on the synthetic default (dvc repro), then inspect a folder; prints the compare table
	source $(VENV)/bin/activate && dvc repro
	$(BIN)/inspection inspect outputs/pipeline/export/data_centric/model.onnx data/synth_steel/images \
		--out $(DEMO)/inspect.csv --report $(DEMO)/report.html --overwrite
	@echo; echo "Pipeline outputs under outputs/pipeline/: train/<arm>/ (model.pt, training_curves.png), evaluate/<arm>/"
	@echo "  (metrics.json + confusion.png on the gold test split), export/<arm>/ (model.onnx + model.json), compare/;"
	@echo "  label sets v1/v2 under labels/; inspection rows + HTML report under $(DEMO)/."
	@echo "  All metrics: source $(VENV)/bin/activate && dvc metrics show. Compare table:"; echo
	@cat outputs/pipeline/compare/report.md

pipeline: install  ## the pipeline as a DVC experiment with overrides: make pipeline ARGS="-S data=neu"
	source $(VENV)/bin/activate && dvc exp run $(ARGS) && dvc metrics show

test: install browser  ## run the whole test suite (unit + integration, real data from ../shared/data)
	$(BIN)/pytest -q $(PYTEST_ARGS)

test-fast: install  ## unit tests only
	$(BIN)/pytest -q tests/unit

lint: install  ## ruff
	$(BIN)/ruff check inspection tests scripts

clean:  ## remove outputs and caches (not .venv, not data/)
	rm -rf outputs .cache .pytest_cache
