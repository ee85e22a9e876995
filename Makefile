# Entry points; the work is done by the scripts they call.
#   make demo   set up the machine, run the busybox bundle with pyrunc
#   make test   set up the machine, run the test suite
#   make bench  set up the machine, run the benchmarks

PYTHON := .venv/bin/python
PYTEST_ARGS ?= -q

.PHONY: all setup bundle demo test bench clean

all: demo

setup:
	bash scripts/setup.sh

bundle:
	bash bundles/build-bundle.sh

demo:
	bash scripts/demo.sh

test: setup
	$(PYTHON) -m pytest tests $(PYTEST_ARGS)

bench: setup
	$(PYTHON) -m pytest benchmarks $(PYTEST_ARGS)

clean:
	rm -rf bundles/busybox build .pytest_cache .benchmarks
