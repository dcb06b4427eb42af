# Every target creates .venv/ when it is missing and installs the project into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install up down demo test test-unit test-functional test-integration test-e2e bench lint clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing Tunedrop into $(VENV) (log: $(VENV)/install.log) ..."
	@{ $(BIN)/python -m pip install --upgrade pip setuptools wheel && $(BIN)/python -m pip install -e '.[dev]'; } \
		> $(VENV)/install.log 2>&1 || { tail -30 $(VENV)/install.log; exit 1; }
	@touch $(STAMP)

install: $(STAMP)

up: $(STAMP)
	@$(BIN)/tunedrop local up

down: $(STAMP)
	@$(BIN)/tunedrop local down

demo: $(STAMP)
	@$(BIN)/tunedrop demo

test: $(STAMP)
	@$(BIN)/python -m pytest tests

test-unit: $(STAMP)
	@$(BIN)/python -m pytest tests/unit

test-functional: $(STAMP)
	@$(BIN)/python -m pytest tests/functional

test-integration: $(STAMP)
	@$(BIN)/python -m pytest tests/integration

test-e2e: $(STAMP)
	@$(BIN)/python -m pytest tests/e2e

bench: $(STAMP)
	@$(BIN)/python -m tests.bench

lint: $(STAMP)
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check .
	@$(BIN)/mypy
	@$(BIN)/checkov --quiet --compact --skip-download --framework terraform -d deploy/terraform

clean: down
	rm -rf $(VENV) .tunedrop
