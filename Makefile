# The README's commands. Longer shell logic lives in bin/.
VENV := .venv
PY := $(VENV)/bin/python
RUFF := $(VENV)/bin/ruff
PYTEST_ARGS ?=
#: Queues of the worker of `make run` and `make worker`.
QUEUES ?= debates,diagnostics,webhook_delivery,tasks,transcriptions,routing
export QUEUES

.PHONY: setup run shell worker manage test lint checks bench bench-peers chaos lock verify

setup:
	bin/setup

run: setup
	bin/run

# A second terminal next to `make run`: its Redis and database (bin/with-run-env reads .run/env).
shell: setup
	bin/with-run-env $(PY) manage.py shell

worker: setup
	bin/with-run-env $(PY) manage.py queue_worker --queues $(QUEUES)

# Any manage.py command against `make run`'s Redis and database: make manage ARGS="queue_ledger --once"
manage: setup
	bin/with-run-env $(PY) manage.py $(ARGS)

test:
	bin/setup --test
	$(MAKE) --no-print-directory checks
	$(PY) -m pytest $(PYTEST_ARGS)

lint: setup checks

# Style, types (strict on the library and workers) and the import layering of STYLE.md.
checks:
	$(RUFF) check .
	$(RUFF) format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# Every bench/*.py script; names starting with _ are helpers they import.
bench: setup
	@set -e; for script in bench/[!_]*.py; do \
	  [ -e "$$script" ] || { echo "no bench/*.py scripts"; exit 0; }; \
	  echo "== $$script"; $(PY) "$$script"; \
	done

# 20,000 jobs through 4 queue_worker processes while workers and Redis are killed (RELIABILITY.md);
# prints a summary table, writes test-output/chaos-*.json, exits 1 on any violation.
# CHAOS_ARGS="--jobs 2000 --kills 3" changes the plan (python -m chaos --help).
chaos:
	bin/setup --test
	$(PY) -m chaos $(CHAOS_ARGS)

# This project beside huey, Dramatiq, Celery, RQ, arq and taskiq (bench/README.md); the peers go
# into .run/peers-venv. ARGS="--update-readme" also rewrites the README's performance table.
bench-peers: setup
	bin/bench-peers $(ARGS)

# Regenerate constraints.txt from a clean install of pyproject.toml's dependencies.
lock: setup
	bin/lock

# Model-check the delivery protocol (queue_app/queue/redis/model/) with spin: 3 workers; 2 workers
# with more faults; 2 workers and 2 jobs (about a minute in all).
verify: setup
	bin/verify-model
	bin/verify-model -DWORKERS=2 -DMAX_ATTEMPTS=3 -DCRASHES=2 -DLOST_REPLIES=2
	bin/verify-model -DWORKERS=2 -DJOBS=2 -DLOST_REPLIES=0 -DREQUEUES=0
