# The two commands of the README:
#   make demo   installs into .venv and runs the main job on the embedded demo catalog
#   make test   installs into .venv and runs the test suite
#   make search-demo  the catalog search page over the demo's outputs (after make demo)
#   make lint   ruff (lint and format check) and import-linter's layering contracts (docs/architecture.md)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_ARGS ?=

.PHONY: install demo demo-quick search-demo test lint bench clean

$(VENV)/.installed: setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(PY) -m kaleido_tf.demo.run $(DEMO_ARGS)

demo-quick: install
	$(PY) -m kaleido_tf.demo.run --quick $(DEMO_ARGS)

DEMO_OUT ?= demo_out
search-demo: install
	$(VENV)/bin/kaleido-serve --export_dir $(DEMO_OUT)/export --index_dir $(DEMO_OUT)/index \
		--catalog $(DEMO_OUT)/catalog/catalog.jsonl $(SERVE_ARGS)

test: install
	$(PY) -m pytest tests

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

bench: install
	$(PY) bench/data_pipeline.py

clean:
	rm -rf $(VENV) demo_out .pytest_cache
