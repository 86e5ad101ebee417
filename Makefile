# The two commands of the README:
#   make demo   installs into .venv and runs the main job on the embedded demo catalog
#   make test   installs into .venv and runs the test suite
#   make search-demo  the catalog search page over the demo's outputs (after make demo)
#   make browser-test  the search page in headless Chromium over the demo's outputs (after make demo-quick)
#   make lint   ruff (lint and format check) and import-linter's layering contracts (docs/architecture.md)
#   make serving-compat  the demo's exports answer the same under TF Serving's TensorFlow (after make demo-quick)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_ARGS ?=

.PHONY: install demo demo-quick search-demo browser-test serving-compat test lint bench clean

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

# A second virtualenv with the TensorFlow and TensorFlow Text of the newest TF Serving release, nothing else:
# the demo's SavedModels must load there and answer as in the exporting environment (docs/serving.md).
COMPAT_VENV ?= .venv-compat
COMPAT_TF ?= 2.20.*
$(COMPAT_VENV)/.installed:
	$(PYTHON) -m venv $(COMPAT_VENV)
	$(COMPAT_VENV)/bin/python -m pip install -q --upgrade pip
	$(COMPAT_VENV)/bin/python -m pip install -q "tensorflow==$(COMPAT_TF)" "tensorflow-text==$(COMPAT_TF)" numpy
	touch $@

serving-compat: install $(COMPAT_VENV)/.installed
	$(PY) tools/serving_compat.py record --demo_dir $(DEMO_OUT)
	$(COMPAT_VENV)/bin/python tools/serving_compat.py check --demo_dir $(DEMO_OUT)

# The suite runs in one worker per logical CPU (pytest-xdist), whole modules per worker so that a module's
# fixtures are built once; TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= logical
test: install
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile tests

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

bench: install
	$(PY) bench/data_pipeline.py

clean:
	rm -rf $(VENV) $(COMPAT_VENV) demo_out .pytest_cache
