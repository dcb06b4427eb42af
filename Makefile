# Every target creates .venv/ when it is missing and installs the project into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Hashed pins for Python 3.11 on Linux, written by `make lock`: requirements-dev.lock holds everything
# `make install` puts in .venv (runtime, every extra, the build backend); requirements.lock holds the
# runtime dependencies alone, at the same versions, for the functions' source (deploy/build_source.py).
DEV_LOCK := requirements-dev.lock
RUNTIME_LOCK := requirements.lock
LOCK_TARGET := --python-version 3.11 --python-platform x86_64-manylinux_2_28
# Extra flags for `make lock`, e.g. LOCK_ARGS=--upgrade or LOCK_ARGS="--upgrade-package grpcio".
LOCK_ARGS ?=

.PHONY: install lock up down demo test test-unit test-functional test-integration test-e2e bench lint clean

# Only what the lock names, each file checked against its hashes; then the project itself. The build
# backend comes from the lock too (--no-build-isolation), so nothing is fetched unpinned.
$(STAMP): pyproject.toml $(DEV_LOCK)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing Tunedrop into $(VENV) (log: $(VENV)/install.log) ..."
	@{ $(BIN)/python -m pip install --require-hashes -r $(DEV_LOCK) \
		&& $(BIN)/python -m pip install --no-deps --no-build-isolation -e .; } \
		> $(VENV)/install.log 2>&1 || { tail -30 $(VENV)/install.log; exit 1; }
	@touch $(STAMP)

install: $(STAMP)

# Re-resolve pyproject.toml's dependencies into both lock files; pins already in a lock are kept unless
# LOCK_ARGS asks for upgrades. The build backend ([build-system].requires, fed in on stdin as `-`) is
# locked alongside, for --no-build-isolation.
lock: $(STAMP)
	@$(BIN)/python -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"], sep="\n")' \
		| $(BIN)/uv pip compile --quiet --generate-hashes $(LOCK_TARGET) $(LOCK_ARGS) \
			--all-extras pyproject.toml - -o $(DEV_LOCK)
	@$(BIN)/uv pip compile --quiet --generate-hashes $(LOCK_TARGET) \
		--constraint $(DEV_LOCK) pyproject.toml -o $(RUNTIME_LOCK)
	@echo "Wrote $(DEV_LOCK) and $(RUNTIME_LOCK); commit both."

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
