# callflow: one command to try it (make demo), one to test it (make test). Run as root on Debian.
SHELL := /bin/bash
# Debian's python3 when there is one: it is built with PGO and LTO, and the daemon runs on it with
# about 8% less CPU per call than on a plain source build such as pyenv's (BENCHMARKS.md).
PYTHON ?= $(firstword $(wildcard /usr/bin/python3) python3)
VENV := .venv
PY := $(VENV)/bin/python
DEBIAN_PACKAGES := debootstrap sip-tester mosquitto sox python3 python3-venv python3-dev gcc libc6-dev \
                   valgrind
# The daemon's hot path, compiled with mypyc (scripts/compiled-modules; BENCHMARKS.md).
COMPILED := $(shell grep -v '^\#' scripts/compiled-modules)

.PHONY: help deps venv compiled pure system-deps chroot sandbox-up sandbox-down sandbox-cli sandbox-log \
        test test-fast lint fmt demo bench footprint clean

help:
	@echo "make demo          sandbox PBX + daemon + real SIPp calls + a CDR report"
	@echo "make test          install everything needed, then run all tests (real Asterisk)"
	@echo "make lint          ruff + mypy"
	@echo "make bench         load generator + floor + real PBX figures -> BENCHMARKS.md"
	@echo "make footprint     code and data a call fetches when each wake-up is cold (callgrind)"
	@echo "make sandbox-up    start the sandbox Asterisk (sandbox-down, sandbox-cli, sandbox-log)"

deps: system-deps venv compiled

# Debian packages: SIPp, debootstrap (the sandbox chroot), Mosquitto, sox, python3 with venv,
# a C compiler with Python's headers for the compiled modules, valgrind for `make footprint`.
system-deps:
	@missing=""; for p in $(DEBIAN_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" -ne 0 ]; then echo "missing Debian packages:$$missing (run as root, or apt-get install them)"; exit 1; fi; \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

venv:
	@want=$$($(PYTHON) -c 'import sys; print(sys.base_prefix)'); \
	if [ -x $(PY) ] && [ "$$($(PY) -c 'import sys; print(sys.base_prefix)')" != "$$want" ]; then \
	  echo "$(VENV) was made with another Python: making it again with $(PYTHON)"; rm -rf $(VENV); \
	fi
	@$(MAKE) --no-print-directory $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,fast]'
	touch $@

# A C extension beside each listed module, built again when one of them changes. callflow
# refuses to import a compiled module older than its source; `make pure` removes them all.
compiled: venv
	@$(MAKE) --no-print-directory callflow/.compiled

callflow/.compiled: scripts/compiled-modules scripts/compile.py $(COMPILED) $(VENV)/.installed
	$(PY) scripts/compile.py
	touch $@

pure:
	$(PY) scripts/compile.py --pure
	rm -f callflow/.compiled

chroot: system-deps
	@scripts/asterisk-chroot.sh >/dev/null

sandbox-up: deps chroot
	$(PY) -m callflow.testing.sandbox up

sandbox-down: venv compiled
	$(PY) -m callflow.testing.sandbox down

sandbox-cli: venv compiled
	$(PY) -m callflow.testing.sandbox cli

sandbox-log: venv compiled
	$(PY) -m callflow.testing.sandbox log

# All tests, real Asterisk included. pytest's exit code 5 (no tests ran) fails like any other.
test: deps chroot
	$(PY) -m pytest -p no:cacheprovider $(PYTEST_ARGS)

# Tests that need no PBX (protocol, rules, store): quick feedback while editing.
test-fast: venv compiled
	$(PY) -m pytest -p no:cacheprovider -m "not pbx" $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

fmt: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .mypy_cache callflow/.compiled
	find callflow -name '*.so' -delete

# The main job: sandbox Asterisk + callflow serve + real SIPp calls, then a CDR report.
demo: deps chroot
	$(PY) scripts/demo.py

# Speed and memory figures (never timed unit tests): writes BENCHMARKS.md.
bench: deps chroot
	$(PY) scripts/bench.py $(BENCH_ARGS)

# Deterministic counts behind the fixed-rate CPU figures (callflow/bench/footprint.py).
footprint: deps
	$(PY) -m callflow.bench.footprint $(FOOTPRINT_ARGS)
