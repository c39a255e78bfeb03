# The two commands: `make run` (set up, migrate, seed the demo org, serve) and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3.13 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint install system-deps bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml setup.py
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

run: install
	$(BIN)/feedback demo --host $(HOST) --port $(PORT)

system-deps:
	bash scripts/system-deps.sh

lint: install
	$(BIN)/ruff check feedback tests bench
	$(BIN)/ruff format --check feedback tests bench
	$(BIN)/mypy feedback

# The whole suite twice: on SQLite, then on PostgreSQL (each test on its own cloned database).
test: install system-deps lint
	$(BIN)/pytest
	FEEDBACK_TEST_DATABASE=postgres $(BIN)/pytest

bench: install
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) build dist *.egg-info feedback/_web
