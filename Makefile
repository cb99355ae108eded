# The two commands the README promises. Both create ./.venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install test lint run bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test,postgres,production]'

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

run: install
	$(BIN)/scimflow validate User tests/samples/idp/okta/okta-create-user.json
	$(BIN)/scimflow validate Group tests/samples/idp/entra/entra-patch-remove-members-value-array.json --patch --current tests/samples/group-with-members.json

bench: install
	$(BIN)/python benchmarks/validation.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
