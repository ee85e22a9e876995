# Entry points; the work is done by the scripts they call.
#   make demo   set up the machine, run the busybox bundle with pyrunc
#   make test   set up the machine, run the test suite
#   make bench  set up the machine, run the benchmarks

PYTHON := .venv/bin/python
PYTEST_ARGS ?= -q -rs

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

# The bench extra (matplotlib, for the plots) is installed from
# pyproject's list, not by reinstalling pyrunc: that would replace the
# launcher scripts/setup.sh wrote with pip's slower console script.
BENCH_EXTRA := import tomllib; \
	p = tomllib.load(open("pyproject.toml", "rb")); \
	print(" ".join(p["project"]["optional-dependencies"]["bench"]))

bench: setup
	$(PYTHON) -c 'import matplotlib' 2>/dev/null \
		|| $(PYTHON) -m pip install -q $$($(PYTHON) -c '$(BENCH_EXTRA)')
	$(PYTHON) -m pytest benchmarks $(PYTEST_ARGS)

# Build products and results; .venv stays (setup.sh rebuilds the rest).
clean:
	rm -rf bundles/busybox build .pytest_cache .benchmarks
	rm -f pyrunc/_native/*.so pyrunc/_native/launcher.c \
		pyrunc/_native/seccomp.c pyrunc/_native/pyrunc-dmz \
		pyrunc/_native/pyrunc-prewarm \
		pyrunc/cri/pyrunc-pause
	find benchmarks/results -mindepth 1 ! -name .gitignore -delete

# make test-vm: the cgroup tests on a pure cgroup v2 kernel in a VM (qemu
# TCG via virtme-ng); scripts/vm-setup.sh installs what it needs.
# VM_TESTS picks other tests (pytest arguments), e.g. VM_TESTS=tests/vm.
VM_TESTS ?=
.PHONY: test-vm
test-vm: setup
	bash scripts/vm-setup.sh
	bash scripts/vm-run.sh $(VM_TESTS)
