# Two commands do all the set-up: `make run` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 5000
HOST ?= 127.0.0.1
# Test processes side by side (pytest-xdist): the tests are mostly CPU-bound, and on the 2-core machine
# two beat three or four (more only compete for the cores). TEST_PROCESSES=0 runs them in this process.
TEST_PROCESSES ?= 2

.PHONY: run test lint typecheck bench clean-venv

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/activate
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

run: $(VENV)/.installed
	PORTAL_PUBLIC_BASE_URL=$${PORTAL_PUBLIC_BASE_URL:-http://$(HOST):$(PORT)} $(BIN)/flask --app app init
	PORTAL_PUBLIC_BASE_URL=$${PORTAL_PUBLIC_BASE_URL:-http://$(HOST):$(PORT)} PORTAL_BIND=$(HOST):$(PORT) $(BIN)/gunicorn -c gunicorn.conf.py app:app

test: $(VENV)/.installed
	$(BIN)/pytest -n $(TEST_PROCESSES) --dist worksteal $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(BIN)/ruff check portal tests bench migrations setup.py gunicorn.conf.py

typecheck: $(VENV)/.installed
	$(BIN)/mypy

bench: $(VENV)/.installed
	$(BIN)/python bench/signing.py
	$(BIN)/python bench/api_webhooks.py
	$(BIN)/python bench/load.py --vendors 10
	$(BIN)/python bench/search.py --contracts 20000
	$(BIN)/python bench/audit_log.py --events 50000 --repeats 3
	$(BIN)/python bench/verify.py --documents 40
	$(BIN)/python bench/storage.py --files 50
	$(BIN)/python bench/health.py
	$(BIN)/python bench/printing.py --runs 3
	$(BIN)/python bench/backup.py --contracts 10
	$(BIN)/python bench/page_render.py

clean-venv:
	rm -rf $(VENV)
