# erlang_python: Erlang programs running CPython in the same OS process, through a Rust NIF.
#
# The one entry point for building and testing; `make help` lists the targets. Every target is
# idempotent and incremental. PYTHON picks the interpreter: a pyenv version matched by prefix
# (3.12 -> the newest installed 3.12.x; 3.13t -> a free-threaded 3.13.xt). Each Python gets its
# own build dir _build/py$(PYTHON)/ holding venv/ (tools), cargo/ (NIF build) and maturin/
# (pip extension build): switching PYTHON never rebuilds another version's artifacts.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:
MAKEFLAGS += --no-print-directory

PYTHON ?= 3.12
# `make ci` runs the whole `test` on $(PYTHON), then on these others what depends on the Python
# version: the Common Test suites (a NIF built against it), the Python suites (pytest and
# stubtest on an extension built against it; recursion limits, error messages and typing differ
# between versions) and the docs' examples. Lint is the same on every version, so it runs once.
# 3.13t, the free-threaded build, is built from source when missing (see below): about 8 minutes
# more in all.
CI_PYTHONS ?= 3.11 3.12 3.13 3.13t
# Extra arguments for ct_run, e.g. `make test-ct CT_ARGS='-suite py_SUITE -case call_ok'`.
CT_ARGS ?=
# Extra arguments for pytest, e.g. `make test-python PYTEST_ARGS='-k bytes -x'`.
PYTEST_ARGS ?=
# Extra arguments for mix test, e.g. `make test-elixir MIX_TEST_ARGS='test/kwargs_test.exs'`.
MIX_TEST_ARGS ?=
# Extra arguments for bench/bench.escript, e.g. `make bench BENCH_ARGS='--only faults'`.
BENCH_ARGS ?=
# Arguments of bench/web/run.sh after the paths: seconds per server and connections, e.g. `20 100`.
BENCH_WEB_ARGS ?=
# `make fuzz`: cases per property of each tool (hours at these defaults; lower them for a look,
# e.g. `make fuzz PROPER_NUMTESTS=2000 PROPER_FAULT_NUMTESTS=20 HYPOTHESIS_MAX_EXAMPLES=2000
# PROPTEST_CASES=20000`). A value in the environment wins over these defaults.
PROPER_NUMTESTS ?= 1000000
PROPER_FAULT_NUMTESTS ?= 2000
HYPOTHESIS_MAX_EXAMPLES ?= 100000
PROPTEST_CASES ?= 1000000

# CI logs are read as plain text.
ifdef CI
export REBAR_COLOR := none
endif

# cargo from rustup lives here when a non-login shell (CI) has not put it on PATH.
ifeq ($(shell command -v cargo),)
export PATH := $(HOME)/.cargo/bin:$(PATH)
endif

# --- Python selection -----------------------------------------------------------------------
ifndef PYENV_ROOT
PYENV_ROOT := $(shell pyenv root 2>/dev/null || echo "$$HOME/.pyenv")
endif
PY_FT := $(if $(filter %t,$(PYTHON)),t)
PY_PREFIX := $(patsubst %t,%,$(PYTHON))
PY_FULL := $(shell ls -1 "$(PYENV_ROOT)/versions" 2>/dev/null \
    | grep -E '^$(subst .,\.,$(PY_PREFIX))(\.[0-9]+)*$(PY_FT)$$' | sort -V | tail -n 1)
PY_HOME := $(PYENV_ROOT)/versions/$(PY_FULL)
PY_MM := $(word 1,$(subst ., ,$(PY_FULL))).$(word 2,$(subst ., ,$(patsubst %t,%,$(PY_FULL))))$(PY_FT)
# Deferred (=): only targets that need the interpreter fail when it is missing; help and clean
# still work.
PY_BASE = $(if $(PY_FULL),$(PY_HOME)/bin/python$(PY_MM),$(error Python $(PYTHON) is not \
    installed under $(PYENV_ROOT)/versions (found: $(shell ls "$(PYENV_ROOT)/versions" \
    2>/dev/null | tr '\n' ' ')). Install it with `pyenv install $(PYTHON)` or choose another \
    with PYTHON=3.11|3.12|3.13|3.13t))

# --- Layout -----------------------------------------------------------------------------------
BUILD := _build/py$(PYTHON)
VENV := $(BUILD)/venv
VENV_BIN := $(CURDIR)/$(VENV)/bin
VENV_PY := $(VENV_BIN)/python
VENV_STAMP := $(BUILD)/venv-$(PY_FULL).stamp
# Free-threaded Pythons get the tools that install there (scripts/requirements-ft.txt).
REQUIREMENTS := scripts/requirements-$(if $(PY_FT),ft,dev).txt
# What the examples need besides the tools, in the same venv (see the file for --no-deps).
EXAMPLES_REQUIREMENTS := examples/requirements.txt
EXAMPLES_STAMP := $(BUILD)/examples-deps.stamp
CARGO_DIR := $(CURDIR)/$(BUILD)/cargo
MATURIN_DIR := $(CURDIR)/$(BUILD)/maturin
CT_DIR := $(BUILD)/ct
CT_LOGS := _build/ct_logs
APP_DIR := $(BUILD)/lib/erlang_python
EBIN := $(APP_DIR)/ebin
PRIV := $(APP_DIR)/priv
# rebar.config's `strict' profile: warnings are errors. The beams are the same for every Python.
REBAR_EBIN := _build/strict/lib/erlang_python/ebin
REBAR = ERLANG_PYTHON_SKIP_NIF=1 rebar3 as strict

# The NIF links the pyenv libpython (PYO3_PYTHON) and defaults sys.executable to the venv's
# python, so the venv's site-packages (numpy) are importable inside the BEAM.
CARGO_ENV = PYO3_PYTHON=$(PY_BASE) ERLANG_PYTHON_DEFAULT_EXECUTABLE=$(VENV_PY) \
    CARGO_TARGET_DIR=$(CARGO_DIR)
# The same build through scripts/build_nif.sh, the one rebar3 and mix run.
DEP_ENV = PYO3_PYTHON=$(PY_BASE) ERLANG_PYTHON_EXECUTABLE=$(VENV_PY) CARGO_TARGET_DIR=$(CARGO_DIR)
NIF_ENV = $(DEP_ENV) ERLANG_PYTHON_PRIV_DIR=$(CURDIR)/$(PRIV)
# Test binaries and the pyext crate link libpython without an rpath of their own.
LIBPATH_ENV = LD_LIBRARY_PATH=$(PY_HOME)/lib$${LD_LIBRARY_PATH:+:$$LD_LIBRARY_PATH}

# A free-threaded Python (PYTHON=3.13t) that is not installed is built from source into pyenv's
# versions dir before anything else (scripts/build_python_ft.sh, about 3 minutes on 2 cores:
# pyenv cannot download it on the build machines). It is built as the recipe of an included
# makefile: GNU make remakes those first and then starts over, finding the new interpreter. Only
# goals that need Python build it.
PY_NEEDLESS_GOALS := help clean deps-system erlang lint-erlang lint-elixir
ifneq ($(PY_FT),)
ifeq ($(PY_FULL),)
ifneq ($(filter-out $(PY_NEEDLESS_GOALS),$(or $(MAKECMDGOALS),$(.DEFAULT_GOAL))),)
PY_FT_MK := $(BUILD)/python-ft.mk
$(shell rm -f $(PY_FT_MK))
include $(PY_FT_MK)
$(PY_FT_MK):
	scripts/build_python_ft.sh $(word 1,$(subst ., ,$(PY_PREFIX))).$(word 2,$(subst ., ,$(PY_PREFIX)))
	@mkdir -p $(@D) && echo '# Python $(PYTHON) was built by scripts/build_python_ft.sh' >$@
endif
endif
endif

# Erlang/OTP from Debian, installed only when a tool is missing (a fresh CI machine).
ERLANG_TOOLS := erl erlc escript rebar3 ct_run dialyzer elixir mix
APT_PACKAGES := erlang-nox erlang-dev rebar3 erlang-common-test erlang-dialyzer erlang-eunit elixir \
    erlang-proper
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

PY_LINT_PATHS = python $(wildcard tests/python) tests/web scripts examples/python
DOC_FILES = README.md $(wildcard docs/*.md)

.PHONY: help deps deps-system deps-venv examples-deps nif erlang build pyext demo examples shell \
    test test-rust test-ct test-asyncio test-python test-docs test-elixir test-deps fuzz \
    lint lint-rust lint-python lint-erlang lint-elixir lint-docs ci bench bench-web bench-loop \
    clean

help: ## List the targets
	@echo "Usage: make TARGET [PYTHON=3.11|3.12|3.13|3.13t]   (PYTHON=$(PYTHON) -> $(or $(PY_FULL),not installed))"
	@echo
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) \
	    | awk 'BEGIN {FS = ":.*## "} {printf "  %-14s %s\n", $$1, $$2}'

# --- Dependencies -----------------------------------------------------------------------------
deps: deps-system deps-venv ## Install Erlang/OTP (apt, if missing) and the per-Python venv

deps-system:
	@missing=""; \
	for tool in $(ERLANG_TOOLS); do command -v "$$tool" >/dev/null || missing+=" $$tool"; done; \
	if [[ -z "$$missing" ]] && ! erl -noshell -eval \
	    'halt(case code:lib_dir(proper) of {error, _} -> 1; _ -> 0 end)' >/dev/null 2>&1; then \
	    missing+=" proper"; \
	fi; \
	if [[ -n "$$missing" ]]; then \
	    echo "==> Erlang tools missing:$$missing; installing $(APT_PACKAGES)"; \
	    $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq; \
	    $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	        -o Dpkg::Use-Pty=0 $(APT_PACKAGES) </dev/null; \
	fi; \
	command -v cargo >/dev/null || { echo "cargo not found: install Rust with rustup" >&2; exit 1; }

deps-venv: $(VENV_STAMP)

# The stamp's name carries the full version: a new pyenv patch release rebuilds the venv. The
# free-threaded file includes the dev one (`-r`), so a change to either reinstalls.
$(VENV_STAMP): $(REQUIREMENTS) scripts/requirements-dev.txt
	@echo "==> venv $(VENV) from $(PY_BASE)"
	@if ! grep -qxF 'home = $(PY_HOME)/bin' $(VENV)/pyvenv.cfg 2>/dev/null; then \
	    rm -rf $(VENV) && $(PY_BASE) -m venv $(VENV); \
	fi
	@PIP_DISABLE_PIP_VERSION_CHECK=1 $(VENV_PY) -m pip install -q -r $(REQUIREMENTS)
	@rm -f $(BUILD)/venv-*.stamp && touch $@

# Only on `make examples` (and so `make test`): the other CI Pythons never install them.
examples-deps: $(EXAMPLES_STAMP) ## Install the examples' packages (examples/requirements.txt) into the venv

$(EXAMPLES_STAMP): $(EXAMPLES_REQUIREMENTS) $(VENV_STAMP)
	@echo "==> examples' packages into $(VENV)"
	@PIP_DISABLE_PIP_VERSION_CHECK=1 $(VENV_PY) -m pip install -q --no-deps \
	    -r $(EXAMPLES_REQUIREMENTS)
	@touch $@

# --- Build ------------------------------------------------------------------------------------
nif: deps-venv ## Build the NIF for PYTHON into _build/py$(PYTHON)/lib/erlang_python/priv/
	$(NIF_ENV) sh scripts/build_nif.sh

# rebar3 compiles once for every Python (its pre-compile hook, which builds the NIF into priv/
# for dependents, is skipped); the beams are copied into this Python's application directory.
erlang: deps-system ## Compile the Erlang application (rebar3) into _build/py$(PYTHON)/lib/
	$(REBAR) compile
	@mkdir -p $(EBIN)
	@if ! diff -rq $(REBAR_EBIN) $(EBIN) >/dev/null 2>&1; then \
	    rm -rf $(EBIN).tmp && cp -R $(REBAR_EBIN) $(EBIN).tmp && \
	    rm -rf $(EBIN) && mv $(EBIN).tmp $(EBIN); \
	fi

build: deps nif erlang ## deps + nif + erlang

pyext: deps-venv ## Install erlang._native (maturin develop) into the venv for pytest
	VIRTUAL_ENV=$(CURDIR)/$(VENV) PATH=$(VENV_BIN):$$PATH CARGO_TARGET_DIR=$(MATURIN_DIR) \
	    $(LIBPATH_ENV) $(VENV_BIN)/maturin develop --release -q

demo: build ## Build everything and run examples/demo.escript
	escript examples/demo.escript $(EBIN)

# Each example checks what it does and exits non-zero when something is wrong (examples/README.md).
examples: build examples-deps ## Build, install the examples' packages and run every example
	@start=$$SECONDS; \
	for run in $(foreach s,$(sort $(wildcard examples/*.escript)),"escript $(s) $(EBIN)") \
	    "elixir -pa $(EBIN) examples/elixir_example.exs"; do \
	    echo "==> $$run"; t=$$SECONDS; \
	    $$run || { echo "==> FAILED: $$run" >&2; exit 1; }; \
	    echo "==> passed in $$((SECONDS - t)) s"; \
	done; \
	echo "==> every example passed, in $$((SECONDS - start)) s"

shell: build ## Build everything and start an Erlang shell with erlang_python running
	erl -pa $(EBIN) -eval 'application:ensure_all_started(erlang_python)'

bench: build ## Build everything and run bench/bench.escript (options in BENCH_ARGS)
	escript bench/bench.escript $(EBIN) $(BENCH_ARGS)

# The web benchmark's peers (uvloop, httptools, granian; yaws and mochiweb from apt) and load
# tool (wrk, from apt) are installed here only: no test needs them, and uvloop and granian have
# no free-threaded wheels.
bench-web: build ## py_http against uvicorn, granian and gunicorn under wrk (bench/web/run.sh)
	@command -v wrk >/dev/null && ls -d /usr/lib/yaws-*/ebin /usr/lib/erlang/lib/mochiweb*/ebin \
	    >/dev/null 2>&1 || { echo "==> installing wrk, erlang-yaws, erlang-mochiweb"; \
	    $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk erlang-yaws \
	    erlang-mochiweb </dev/null; }
	@PIP_DISABLE_PIP_VERSION_CHECK=1 $(VENV_PY) -m pip install -q -r bench/web/requirements.txt
	bench/web/run.sh $(CURDIR)/$(EBIN) $(VENV_PY) $(BENCH_WEB_ARGS)

bench-loop: pyext ## bench/loop_bench.py: erlang.ErlangEventLoop beside asyncio's loop (BENCH_ARGS)
	$(LIBPATH_ENV) $(VENV_PY) bench/loop_bench.py $(BENCH_ARGS)

# --- Tests ------------------------------------------------------------------------------------
# What `test` runs after `build`; `ci` runs each on its own. `examples` comes before
# `test-python`: it installs the model that tests/python/test_examples_minilm.py checks (skipped
# where it is not installed: the other CI Pythons).
TEST_TARGETS := lint test-rust test-ct examples test-python test-docs test-elixir test-deps

test: build $(TEST_TARGETS) ## build + lint + every test suite and example, on PYTHON

test-rust: deps-venv ## cargo test --workspace
	$(CARGO_ENV) $(LIBPATH_ENV) cargo test --workspace --release

# ct_run compiles suites next to their sources: run a copy so tests/erlang stays clean. Its
# default node name is ct@host: a unique one lets two runs (two checkouts) share a machine.
test-ct: build ## Common Test suites in tests/erlang (logs: _build/ct_logs)
	@ls tests/erlang/*_SUITE.erl >/dev/null 2>&1 || { echo "no suites in tests/erlang" >&2; exit 1; }
	@rm -rf $(CT_DIR) && mkdir -p $(CT_DIR) $(CT_LOGS) && cp -r tests/erlang/. $(CT_DIR)/
	ct_run -noshell -sname ct_py$(subst .,,$(PYTHON))_$$$$ -pa $(CURDIR)/$(EBIN) \
	    -dir $(CT_DIR) -logdir $(CT_LOGS) $(CT_ARGS)

# CPython's own asyncio tests against erlang.ErlangEventLoop inside the BEAM (a Common Test
# suite, so test-ct runs it too; docs/asyncio.md, "Conformance").
test-asyncio: build ## CPython's test.test_asyncio against erlang.ErlangEventLoop in the BEAM
	$(MAKE) test-ct CT_ARGS='-suite py_asyncio_conformance_SUITE'

# Every test runs standalone against the mocked BEAM; those marked `embedded` run again inside
# the real BEAM (tests/erlang/py_embedded_SUITE.erl, in test-ct).
test-python: pyext ## pytest tests/python (skipped while it has no tests)
	@if ! find tests/python -name 'test_*.py' 2>/dev/null | grep -q .; then \
	    echo "==> tests/python has no tests: skipped"; exit 0; \
	fi; \
	rc=0; $(LIBPATH_ENV) $(VENV_BIN)/pytest tests/python $(PYTEST_ARGS) || rc=$$?; \
	if [[ $$rc -eq 5 ]]; then echo "==> no standalone Python tests collected"; rc=0; fi; \
	exit $$rc
	@if [[ -f python/erlang/_native.pyi ]]; then \
	    echo "==> stubtest erlang._native"; \
	    $(LIBPATH_ENV) MYPYPATH=python $(VENV_PY) -m mypy.stubtest erlang._native; \
	fi

# The examples of README.md and docs/*.md, run: Erlang ones in a fresh BEAM per page (shell
# prompts compared with the output the page shows), Python ones inside that BEAM or in plain
# Python against the pip-installed package (scripts/check_docs.py; lint-docs only reads them).
test-docs: build pyext ## Run the examples of README.md and docs/*.md
	$(VENV_PY) scripts/check_docs.py --run --ebin $(CURDIR)/$(EBIN) $(DOC_FILES)

# The ExUnit suite: tests/elixir is a mix project depending on this checkout by path, so its
# compile builds the NIF through mix.exs as a dependent project's does, into priv/ (with
# DEP_ENV, the build `nif` made: cargo has nothing to do). It runs the tests, and every ```elixir
# block of docs/elixir.md, against the real BEAM and Python; _build stays in tests/elixir.
test-elixir: deps ## ExUnit suite in tests/elixir, docs/elixir.md's examples included
	cd tests/elixir && env -u ERLANG_PYTHON_PRIV_DIR -u ERLANG_PYTHON_SKIP_NIF $(DEP_ENV) \
	    MIX_ENV=test HEX_OFFLINE=1 mix test --warnings-as-errors $(MIX_TEST_ARGS)

# A rebar3 and a mix project depending on this checkout (path and git), each compiled (which
# builds the NIF through rebar.config / mix.exs), checked, released and checked in the release.
# The cargo dir is shared, so only this repository's crates compile again for a git clone.
test-deps: deps ## Sample rebar3 and mix projects depending on erlang_python (tests/deps)
	$(DEP_ENV) tests/deps/run.sh

# Long runs of the property tests only, each tool bounded by its count (above): proptest
# (rust/core/tests/*_props.rs), hypothesis (the tests with @given, profile `fuzz` of
# tests/python/conftest.py), PropEr (py_prop_SUITE: round trips, then fault interleavings).
# Each says how many cases it ran and how long it took; hypothesis's per-test statistics are
# kept to their counts.
fuzz: pyext ## Long property runs: proptest, hypothesis, PropEr (counts: PROPTEST_CASES etc.)
	@start=$$SECONDS; \
	seed=$${PROPTEST_RNG_SEED:-$$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}; \
	PROPTEST_CASES=$(PROPTEST_CASES) PROPTEST_RNG_SEED=$$seed $(CARGO_ENV) $(LIBPATH_ENV) \
	    cargo test -p erlang-python-core --release --test etf_props --test convert_props; \
	echo "==> proptest: $(PROPTEST_CASES) cases per property in $$((SECONDS - start)) s" \
	    "(PROPTEST_RNG_SEED=$$seed replays it)"
	@start=$$SECONDS; \
	HYPOTHESIS_PROFILE=fuzz HYPOTHESIS_MAX_EXAMPLES=$(HYPOTHESIS_MAX_EXAMPLES) $(LIBPATH_ENV) \
	    $(VENV_BIN)/pytest tests/python -m hypothesis --hypothesis-show-statistics \
	    | grep -vE '^ +(\* |- Events:)'; \
	echo "==> hypothesis: $(HYPOTHESIS_MAX_EXAMPLES) examples per property" \
	    "in $$((SECONDS - start)) s"
	@start=$$SECONDS; \
	PROPER_NUMTESTS=$(PROPER_NUMTESTS) PROPER_FAULT_NUMTESTS=$(PROPER_FAULT_NUMTESTS) \
	    PROPER_SEED=$${PROPER_SEED:-random} $(MAKE) test-ct CT_ARGS='-suite py_prop_SUITE'; \
	echo "==> PropEr: $(PROPER_NUMTESTS) round trips and $(PROPER_FAULT_NUMTESTS) fault" \
	    "interleavings in $$((SECONDS - start)) s"

# --- Lint -------------------------------------------------------------------------------------
lint: lint-rust lint-python lint-erlang lint-elixir lint-docs ## rustfmt, clippy, ruff, mypy, dialyzer, xref, mix format, docs

lint-rust: deps-venv
	cargo fmt --all --check
	$(CARGO_ENV) cargo clippy --workspace --all-targets -- -D warnings
	$(VENV_PY) scripts/check_module_cycles.py rust/core rust/nif rust/pyext

lint-python: deps-venv
	$(VENV_BIN)/ruff check $(PY_LINT_PATHS)
	$(VENV_BIN)/ruff format --check $(PY_LINT_PATHS)
	$(VENV_BIN)/mypy --strict python/erlang python/erlang_loop.py scripts examples/python

lint-erlang: erlang
	$(REBAR) dialyzer
	$(REBAR) xref

lint-elixir: deps-system
	cd tests/elixir && HEX_OFFLINE=1 mix format --check-formatted
	cd examples && HEX_OFFLINE=1 mix format --check-formatted

lint-docs: deps-venv
	$(VENV_PY) scripts/check_docs.py $(DOC_FILES)

# --- Everything -------------------------------------------------------------------------------
# Every Python of CI_PYTHONS runs, whatever failed before it: each target is run on its own and
# its failure recorded, the summary names every Python/target that failed, and the exit status
# is non-zero if any did. On PYTHON: the targets of `test`; on the others: what depends on the
# Python version (see CI_PYTHONS), the docs' examples included.
CI_OTHER_TARGETS := test-ct test-python test-docs

ci: ## What .ci/run runs: test on PYTHON, then test-ct, test-python, test-docs on the others
	@passed=(); failed=(); \
	run() { \
	    echo "==> ci: $$2 on Python $$1"; \
	    if $(MAKE) "$$2" PYTHON="$$1"; then passed+=("$$1 $$2"); else failed+=("$$1 $$2"); fi; \
	}; \
	if $(MAKE) build PYTHON=$(PYTHON); then \
	    for t in $(TEST_TARGETS); do run $(PYTHON) "$$t"; done; \
	else \
	    failed+=("$(PYTHON) build"); \
	fi; \
	for v in $(filter-out $(PYTHON),$(CI_PYTHONS)); do \
	    for t in $(CI_OTHER_TARGETS); do run "$$v" "$$t"; done; \
	done; \
	echo "==> ci summary"; \
	for r in "$${passed[@]}"; do echo "    passed  Python $${r% *}: $${r#* }"; done; \
	for r in "$${failed[@]}"; do echo "    FAILED  Python $${r% *}: $${r#* }"; done; \
	if (( $${#failed[@]} )); then \
	    echo "==> ci failed: $${#failed[@]} of $$(( $${#passed[@]} + $${#failed[@]} )) runs"; exit 1; \
	fi; \
	echo "==> ci passed: test on $(PYTHON), $(CI_OTHER_TARGETS) on" \
	    "$(filter-out $(PYTHON),$(CI_PYTHONS))"

clean: ## Remove every build output (venvs, cargo dirs, _build, priv/)
	rm -rf _build priv erlang/_build erlang/priv tests/elixir/_build tests/elixir/deps \
	    .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find python tests -name __pycache__ -prune -exec rm -rf {} +
	find python -name '*.so' -delete
