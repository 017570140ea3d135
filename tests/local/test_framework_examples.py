"""The PyTorchJob and MXJob examples run to Succeeded with the real frameworks (`make test` installs the `torch` extra
into .venv and builds .venv-mxnet with the `mxnet` extra, which needs numpy<1.24)."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT

MXNET_VENV = ROOT / ".venv-mxnet"


def run_example(ringrun, name, env=None, sets=()):
    argv = [str(ringrun), "run", f"examples/{name}"] + [a for s in sets for a in ("--set", s)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    document = json.loads(result.stdout[result.stdout.index("\n{") + 1:])
    return result, document


def succeeded(document, kind):
    return any(c["type"] == "Succeeded" and c["reason"] == f"{kind}Succeeded" for c in document["status"]["conditions"])


@pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                    reason="torch is not installed: install the `torch` extra (make test does)")
def test_pytorchjob_example_joins_one_gloo_group():
    result, document = run_example(os.path.join(os.path.dirname(sys.executable), "ringrun"), "pytorchjob-gloo.yaml")
    assert result.returncode == 0, result.stderr
    lines = sorted(line for line in result.stdout.splitlines() if "gloo allreduce" in line)
    assert lines == ["[master-0] rank 0/3 (RANK=0): gloo allreduce OK",
                     "[worker-0] rank 1/3 (RANK=1): gloo allreduce OK",
                     "[worker-1] rank 2/3 (RANK=2): gloo allreduce OK"]
    assert succeeded(document, "PyTorchJob")
    assert document["status"]["replicaStatuses"] == {"Master": {"succeeded": 1}, "Worker": {"succeeded": 2}}


@pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                    reason="torch is not installed: install the `torch` extra (make test does)")
def test_pytorchjob_with_two_processes_per_pod_runs_them_under_torchrun():
    ringrun = os.path.join(os.path.dirname(sys.executable), "ringrun")
    result, document = run_example(ringrun, "pytorchjob-gloo.yaml", sets=['spec.nprocPerNode="2"'])
    assert result.returncode == 0, result.stderr
    lines = sorted(line for line in result.stdout.splitlines() if "gloo allreduce" in line)
    replicas = ["master-0", "master-0", "worker-0", "worker-0", "worker-1", "worker-1"]
    assert lines == [f"[{r}] rank {i}/6 (RANK={i}): gloo allreduce OK" for i, r in enumerate(replicas)]
    assert succeeded(document, "PyTorchJob")


@pytest.mark.skipif(not (MXNET_VENV / "bin" / "ringrun").exists(),
                    reason=".venv-mxnet is missing: `make test` builds it with the `mxnet` extra")
def test_mxjob_example_dist_sync_even_with_a_leaked_port():
    env = dict(os.environ, PORT="5555")
    result, document = run_example(MXNET_VENV / "bin" / "ringrun", "mxjob-kvstore.yaml", env=env)
    assert result.returncode == 0, result.stderr
    lines = sorted(line.split("] ", 1)[1] for line in result.stdout.splitlines() if "push/pull" in line)
    assert lines == ["worker 0/2: dist_sync push/pull OK", "worker 1/2: dist_sync push/pull OK"]
    assert succeeded(document, "MXJob")
    assert document["status"]["replicaStatuses"]["Worker"] == {"succeeded": 2}


@pytest.mark.skipif(not (MXNET_VENV / "bin" / "ringrun").exists(),
                    reason=".venv-mxnet is missing: `make test` builds it with the `mxnet` extra")
def test_mxjob_example_with_two_servers():
    result, document = run_example(MXNET_VENV / "bin" / "ringrun", "mxjob-kvstore.yaml", sets=["Server.replicas=2"])
    assert result.returncode == 0, result.stderr
    lines = sorted(line.split("] ", 1)[1] for line in result.stdout.splitlines() if "push/pull" in line)
    assert lines == ["worker 0/2: dist_sync push/pull OK", "worker 1/2: dist_sync push/pull OK"]
    assert document["status"]["replicaStatuses"]["Server"] == {"succeeded": 2}
