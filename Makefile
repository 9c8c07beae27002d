# memlens: every task for people and CI. `make help` lists them.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := .make
export PIP_DISABLE_PIP_VERSION_CHECK := 1

# Pinned build tools (kept equal to pyproject.toml's build-system.requires).
BUILD_TOOLS := scikit-build-core==0.11.6 pybind11==3.0.1
NATIVE_SRC  := $(wildcard native/*.cpp native/*.c native/*.h) CMakeLists.txt pyproject.toml

.PHONY: help setup build chromium gdb demo test test-python lint clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sort | awk -F ':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(STAMP)/venv: pyproject.toml
	@mkdir -p $(STAMP)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q $(BUILD_TOOLS)
	$(PY) -m pip install -q --no-build-isolation -e ".[dev]"
	@touch $@ $(STAMP)/native

# Incremental rebuild of memlens._native (scikit-build-core keeps build/ between runs).
$(STAMP)/native: $(STAMP)/venv $(NATIVE_SRC)
	$(PY) -m pip install -q --no-build-isolation --no-deps -e .
	@touch $@

# The demo needs memlens alone, not the dev tools: a runtime-only editable install, unless the
# dev venv (make setup) is already there, which it reuses (no second install).
$(STAMP)/runtime: $(NATIVE_SRC)
	@mkdir -p $(STAMP)
	[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q $(BUILD_TOOLS)
	$(PY) -m pip install -q --no-build-isolation -e .
	@touch $@

setup: $(STAMP)/venv ## create .venv, install memlens (editable) with its dev tools
build: $(STAMP)/native ## build the native tracker (incremental)

demo: $(if $(wildcard $(STAMP)/venv),$(STAMP)/native,$(STAMP)/runtime) ## profile the bundled example and print its top lines at peak
	@mkdir -p build
	$(VENV)/bin/memlens run -o build/demo.msgpack examples/demo.py
	$(VENV)/bin/memlens summary build/demo.msgpack

chromium: ## Debian's headless chromium, for the page and VS Code tests (apt, once)
	bash scripts/ensure-chromium.sh

gdb: ## Debian's gdb, for memlens attach and its tests (apt, once)
	bash scripts/ensure-gdb.sh

test-python: build chromium gdb ## unit, native, report, plugin and language-server tests
	$(PY) -m pytest -q -m "not e2e" tests

# mk/*.mk fragments add their test targets to TEST_TARGETS (extension, e2e).
TEST_TARGETS := test-python
include $(wildcard mk/*.mk)

test: ## every test tier (installs what it needs), then one summary: tier, result, time
	MAKE="$(MAKE)" bash scripts/test-tiers.sh $(TEST_TARGETS)

lint: build $(EXT_DIR)/node_modules/.memlens-ci ## ruff, mypy, function length, ESLint, clang-format (native/)
	$(VENV)/bin/ruff check server tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/python scripts/function-length.py server tests bench scripts
	cd $(EXT_DIR) && npm run -s lint
	bash scripts/ensure-clang-format.sh
	clang-format --dry-run --Werror $(wildcard native/*.cpp native/*.h native/*.c)

clean: ## remove build outputs and the venv
	rm -rf $(VENV) $(STAMP) build dist server/memlens/*.so
