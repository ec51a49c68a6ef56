# The two commands of the README:
#   make demo   set up, start a dev mesh on the embedded defaults and run the heat-demand example
#   make test   set up and run the test suite (stub drift check included)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test protos dev multihost chaos-load lint format typecheck

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

# Lint (ruff: pycodestyle, pyflakes, bugbear, pyupgrade, simplify, import order), the format check
# and the import contracts between the layers (import-linter, [tool.importlinter] in pyproject.toml).
# The editable install maps the top-level folders into `workmesh` through an import hook that
# import-linter cannot read files through, so it reads them through the in-repo workmesh/ symlinks
# (README, Types and IDEs), as mypy does.
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	PYTHONPATH=. $(VENV)/bin/lint-imports --no-cache

# Type check (mypy, settings in pyproject.toml) the installed namespace through the same symlinks.
typecheck: $(VENV)/.installed
	$(VENV)/bin/mypy -p workmesh

# Rewrite the sources into the house format (ruff format) and apply ruff's safe fixes.
format: $(VENV)/.installed
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

protos: $(VENV)/.installed
	$(PY) protos/generate.py

# The multi-host test bed alone: every service in a network namespace of its own (root, ip, iptables).
multihost: $(VENV)/.installed
	$(PY) -m pytest -m multihost tests/multihost $(PYTEST_ARGS)

# The chaos suite 5 times in a row under stress-ng load, stopping at the first failure
# (tests/chaos/under_load.sh: RUNS, STRESS, RUN_LIMIT; each run's output kept in CHAOS_OUT).
chaos-load: $(VENV)/.installed
	tests/chaos/under_load.sh $(CHAOS_OUT)
