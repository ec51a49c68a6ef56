# The two commands of the README:
#   make demo   set up, start a dev mesh on the embedded defaults and run the heat-demand example
#   make test   set up and run the test suite (stub drift check included)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test protos dev multihost

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/workmesh demo

dev: $(VENV)/.installed
	$(VENV)/bin/workmesh dev

test: $(VENV)/.installed
	$(PY) protos/generate.py --check
	$(PY) -m pytest $(PYTEST_ARGS)

protos: $(VENV)/.installed
	$(PY) protos/generate.py

# The multi-host test bed alone: every service in a network namespace of its own (root, ip, iptables).
multihost: $(VENV)/.installed
	$(PY) -m pytest -m multihost tests/multihost $(PYTEST_ARGS)
