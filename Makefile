# The two commands the README promises. Both create ./.venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install install-runtime test test-quick lint run bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test,postgres,production,uwsgi]'

# The embedded default needs no test or production extras.
install-runtime: $(BIN)/python
	$(BIN)/pip install --quiet -e .

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

# No service needed: lint, types, unit and API tests.
test-quick: lint
	$(BIN)/pytest tests/unit tests/api

run: install-runtime
	$(BIN)/scimflow migrate
	$(BIN)/scimflow serve --host 127.0.0.1 --port 8000

bench: install
	$(BIN)/python benchmarks/validation.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
