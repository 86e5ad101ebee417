# The two commands of the README:
#   make demo   installs into .venv and runs the main job on the embedded demo catalog
#   make test   installs into .venv and runs the test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_ARGS ?=

.PHONY: install demo demo-quick test bench clean

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

test: install
	$(PY) -m pytest tests

bench: install
	$(PY) bench/data_pipeline.py

clean:
	rm -rf $(VENV) demo_out .pytest_cache
