# The two commands of the README:
#   make demo   installs into .venv and runs the main job on the embedded demo catalog
#   make test   installs into .venv and runs the test suite
#   make search-demo  the catalog search page over the demo's outputs (after make demo)
#   make browser-test  the search page in headless Chromium over the demo's outputs (after make demo-quick)
#   make lint   ruff (lint and format check) and import-linter's layering contracts (docs/architecture.md)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_ARGS ?=

.PHONY: install demo demo-quick search-demo browser-test test lint bench clean

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
# The page over the demo's outputs, with the arguments the demo recorded in summary.json["serve"].
SERVE_DEMO_ARGS = $(PY) -c 'import json, shlex, sys; print(shlex.join(json.load(open(sys.argv[1]))["serve"]["args"]))'
search-demo: install
	eval $(VENV)/bin/kaleido-serve "$$($(SERVE_DEMO_ARGS) $(DEMO_OUT)/summary.json)" $(SERVE_ARGS)

# The search page in headless Chromium (Debian's chromium + chromium-driver) over the demo's outputs (after
# make demo-quick or make demo); screenshots and the share of test products passing each check land in
# $(DEMO_OUT)/browser/.
browser-test: install
	KALEIDO_DEMO_OUT=$(DEMO_OUT) $(PY) -m pytest browser_tests -q

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
