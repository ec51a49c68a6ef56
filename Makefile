# The two commands of the README:
#   make demo   set up, start a dev mesh on the embedded defaults and run the heat-demand example
#   make test   set up and run the test suite (stub drift check included)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test protos dev multihost chaos-load lint format typecheck bench-celery

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

# Issue 10's comparison: Celery + RabbitMQ (deploy/bench/celery, its own scratch venv in /tmp and
# Debian's rabbitmq-server), then `workmesh bench dispatch --store all --jobs 2000 --concurrency 64`,
# ROUNDS times back to back, with the issue's ratios; DATABASE_URL adds PostgreSQL, OUT keeps the JSON.
# CELERY_ARGS: the worker settings measured each round (Celery's best of them is compared against).
ROUNDS ?= 3
CELERY_ARGS ?= --worker threads:64:1 --worker solo:1:64 --worker prefork:2:32
bench-celery: $(VENV)/.installed
	$(PYTHON) deploy/bench/celery/compare.py --rounds $(ROUNDS) --workmesh $(VENV)/bin/workmesh \
		$(if $(DATABASE_URL),--database-url $(DATABASE_URL)) $(if $(OUT),--out $(OUT)) -- $(CELERY_ARGS)
