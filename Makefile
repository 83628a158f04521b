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
	@mkdir -p $(DEMO)
	@echo "dvc repro: the pipeline on synthetic steel (one line per stage; full log in $(DEMO)/repro.log)"
	@source $(VENV)/bin/activate && set -o pipefail && dvc repro 2>&1 \
		 | $(PY) scripts/demo_progress.py $(DEMO)/repro.log
	@$(BIN)/inspection inspect outputs/pipeline/export/data_centric/model.onnx data/synth_steel/images \
		--out $(DEMO)/inspect.csv --report $(DEMO)/report.html --overwrite --quiet >$(DEMO)/inspect.log 2>&1 \
		|| { cat $(DEMO)/inspect.log; exit 1; }
	@echo "inspect: the data-centric ONNX model on data/synth_steel/images → $(DEMO)/inspect.csv"
	@echo; awk '/^\| arm /{f=1} f && /^$$/{exit} f' outputs/pipeline/compare/report.md
	@echo "Read more: outputs/pipeline/compare/report.md (audit, curation, per-class recall), compare.png beside it,"
	@echo "  $(DEMO)/report.html (the inspected folder), outputs/pipeline/ (baseline, data-centric: train/export/verify),"
	@echo "  source $(VENV)/bin/activate && dvc metrics show."
	@echo
	@$(PY) scripts/demo_progress.py --summary outputs/pipeline/compare/report.json
	@echo "Your own images (one folder per class):"
	@echo "  inspection data import folder PATH/TO/CLASS_FOLDERS --out data/mine"
	@echo "  inspection audit data/mine/manifest.csv --out outputs/audit_mine   # what to relabel: review_queue.png"
	@echo "  inspection compare data=folder data.manifest=data/mine/manifest.csv compare=quick"

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
