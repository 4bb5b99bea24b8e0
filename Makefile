# vmtui developer tasks.
#
#   make host         install/start libvirtd + QEMU on this machine (root/sudo)
#   make venv         create .venv and install vmtui[test] (cheap when done)
#   make demo         run the TUI against a demo setup
#   make test         check the layer contracts, run the test suite (what CI
#                     runs via .ci/run)
#   make screenshots  regenerate screenshots
#   make bench        run the list benchmark
#
# Variables: PYTHON (interpreter for the venv), PYTEST_ARGS (extra pytest
# arguments, e.g. `make test PYTEST_ARGS="-m 'not real'"`).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.vmtui-installed
PYTEST_ARGS ?=

# System steps need root; use sudo when we are not root.
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

# Prerequisites run in the order listed (host before venv: building
# libvirt-python needs libvirt-dev, pkg-config and gcc from `make host`).
.NOTPARALLEL:

.PHONY: venv host demo test screenshots bench clean-venv

venv: $(STAMP)

# Re-install only when pyproject.toml changed (or the venv is new).
$(STAMP): pyproject.toml
	@if ! pkg-config --exists libvirt 2>/dev/null; then \
	    echo "libvirt-dev/pkg-config missing: run 'make host' first" >&2; exit 1; fi
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q -e '.[test]'
	touch $@

host:
	$(SUDO) bash scripts/setup-host.sh

demo: host venv
	$(VENV)/bin/vmtui --demo

# The layer contracts first (import-linter, [tool.importlinter] in
# pyproject.toml): a broken one fails the run before any test.
# pytest exits 5 when it collected no tests: report that instead of failing.
test: host venv
	$(VENV)/bin/lint-imports --no-cache
	@rc=0; $(VPY) -m pytest -q --durations=25 $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest: no tests were collected"; rc=0; fi; \
	exit $$rc

screenshots: venv
	$(VPY) scripts/make_screenshots.py

bench: venv
	$(VPY) bench/bench_list.py

clean-venv:
	rm -rf $(VENV)
