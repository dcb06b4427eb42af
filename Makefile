# Every target creates .venv/ when it is missing and installs the project into it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Hashed pins for Python 3.11 on Linux, written by `make lock` (uv pip compile, from pyproject.toml):
#   requirements-dev.lock    everything `make install` puts in .venv: runtime dependencies and every extra;
#   requirements.lock        the runtime dependencies alone, at the same versions (the functions' source);
#   requirements-build.lock  the build backend ([build-system].requires) for the editable install.
DEV_LOCK := requirements-dev.lock
RUNTIME_LOCK := requirements.lock
BUILD_LOCK := requirements-build.lock
LOCK_FLAGS := --quiet --generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
	--custom-compile-command "make lock"
# Extra flags for `make lock`, e.g. LOCK_ARGS=--upgrade or LOCK_ARGS="--upgrade-package grpcio".
LOCK_ARGS ?=
# setuptools>=77 needs packaging>=24.2 while checkov holds packaging<24, so the build backend cannot live
# in .venv itself: it is installed (hashed) here and put on PYTHONPATH for the editable build only.
BUILD_BACKEND := $(VENV)/build-backend

.PHONY: install lock up down demo test test-unit test-functional test-integration test-e2e bench lint clean

# Only what the locks name, every file checked against its hash, then the project itself without
# build isolation (which would fetch an unpinned setuptools).
$(STAMP): pyproject.toml $(DEV_LOCK) $(BUILD_LOCK)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing Tunedrop into $(VENV) (log: $(VENV)/install.log) ..."
	@{ $(BIN)/python -m pip install --require-hashes -r $(DEV_LOCK) \
		&& rm -rf $(BUILD_BACKEND) \
		&& $(BIN)/python -m pip install --require-hashes --no-deps --no-warn-conflicts --target $(BUILD_BACKEND) \
			-r $(BUILD_LOCK) \
		&& PYTHONPATH=$(BUILD_BACKEND) $(BIN)/python -m pip install --no-deps --no-build-isolation -e .; } \
		> $(VENV)/install.log 2>&1 || { tail -30 $(VENV)/install.log; exit 1; }
	@touch $(STAMP)

install: $(STAMP)

# Re-resolve pyproject.toml into the three locks. Pins already in a lock are kept unless LOCK_ARGS asks
# for upgrades; the runtime lock is constrained by the development one, so both hold the same versions.
lock: $(STAMP)
	@$(BIN)/uv pip compile $(LOCK_FLAGS) $(LOCK_ARGS) --all-extras pyproject.toml -o $(DEV_LOCK)
	@$(BIN)/uv pip compile $(LOCK_FLAGS) --constraint $(DEV_LOCK) pyproject.toml -o $(RUNTIME_LOCK)
	@$(BIN)/python -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"], sep="\n")' \
		> $(VENV)/build-requires.txt
	@$(BIN)/uv pip compile $(LOCK_FLAGS) $(LOCK_ARGS) $(VENV)/build-requires.txt -o $(BUILD_LOCK)
	@echo "Wrote $(DEV_LOCK), $(RUNTIME_LOCK) and $(BUILD_LOCK); commit them."

up: $(STAMP)
	@$(BIN)/tunedrop local up

down: $(STAMP)
	@$(BIN)/tunedrop local down

demo: $(STAMP)
	@$(BIN)/tunedrop demo

# The HTML report's test renders it in headless Chromium (Debian's package `chromium`): installed when missing,
# as root or through sudo.
.PHONY: browser
browser:
	@command -v chromium >/dev/null 2>&1 || { if [ "$$(id -u)" = 0 ]; then apt=apt-get; else apt="sudo apt-get"; fi; \
		$$apt update -qq && $$apt install -y -qq chromium; }

# The end-to-end tests spend most of their time waiting on their stacks, so they run beside the rest (2 cores):
# their output follows the rest's, and `make test` fails if either part fails. A background command starts with
# SIGINT ignored: `env --default-signal=INT` gives it back, so Ctrl-C stops the end-to-end tests (and their stacks) too.
test: $(STAMP) browser
	@mkdir -p test-artifacts
	@env --default-signal=INT $(BIN)/python -m pytest tests/e2e -p no:cacheprovider > test-artifacts/e2e.log 2>&1 & e2e=$$!; \
		$(BIN)/python -m pytest tests --ignore=tests/e2e; rest=$$?; \
		wait $$e2e; e2e_status=$$?; \
		echo; echo "== end-to-end tests (run beside the others) =="; cat test-artifacts/e2e.log; \
		exit $$(( rest != 0 || e2e_status != 0 ))

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
