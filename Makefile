# The two commands the README promises. Both create ./.venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install install-runtime chromium test test-quick lint run bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python chromium
	$(BIN)/pip install --quiet -e '.[test,postgres,production,uwsgi]'

# The console's browser tests (tests/browser) drive Debian's chromium, never a downloaded
# browser: installed when missing if we are root, else said how (the tests then skip, or fail
# under CI=true).
CHROMIUM := /usr/bin/chromium
chromium:
	@if [ ! -x $(CHROMIUM) ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get install -y chromium || { apt-get update && apt-get install -y chromium; }; \
	  else \
	    echo "$(CHROMIUM) is missing: run 'sudo apt-get install -y chromium' for the console's browser tests (tests/browser)" >&2; \
	  fi; \
	fi

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
