"""Digits trained four ways with `ringrun run` (2 workers each): ringrun's ring in an MPIJob, DDP over gloo in a
PyTorchJob, Horovod in an MPIJob, MXNet dist_sync in an MXJob. Each reaches >= 95% test accuracy; the ring and DDP
give the same per-epoch losses, and the ring on 2 workers gives those of one process on the combined batch (the
gradient averaging is exact). `make test` installs torch, scikit-learn, Horovod and .venv-mxnet for these."""

import importlib.util
import os
import re
import subprocess
import sys

import pytest

from conftest import ROOT

VENV_BIN = os.path.dirname(sys.executable)
MXNET_BIN = ROOT / ".venv-mxnet" / "bin"
JOBS = {"ring": ("mpijob-ring.yaml", VENV_BIN, "launcher-0"), "ddp": ("pytorchjob-ddp.yaml", VENV_BIN, "master-0"),
        "horovod": ("mpijob-horovod.yaml", VENV_BIN, "launcher-0"),
        "mxnet": ("mxjob-mxnet.yaml", str(MXNET_BIN), "worker-")}


def needs(module, bin_dir, how):
    python = os.path.join(bin_dir, "python")
    probe = f"import importlib.util, sys; sys.exit(not importlib.util.find_spec({module!r}))"
    found = subprocess.run([python, "-c", probe], capture_output=True, timeout=60) if os.path.exists(python) else None
    if found is None or found.returncode != 0:
        pytest.fail(f"{module} is missing in {bin_dir}: {how}")


def losses(text):
    return [float(v) for v in re.findall(r"epoch \d+ loss ([0-9.]+)", text)]


def accuracy(text):
    return [float(v) for v in re.findall(r"test accuracy ([0-9.]+)", text)]


def run_job(name):
    spec, bin_dir, _ = JOBS[name]
    result = subprocess.run([os.path.join(bin_dir, "ringrun"), "run", f"examples/train/{spec}"], cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


@pytest.fixture(scope="module")
def outputs():
    return {}


@pytest.mark.parametrize("name,module,how", [
    ("ring", "sklearn", "install the `examples` extra (make test does)"),
    ("ddp", "torch", "install the `torch` extra (make test does)"),
    ("horovod", "horovod", "make horovod"),
    ("mxnet", "mxnet", "make .venv-mxnet/.installed"),
])
def test_each_way_reaches_95_percent_on_2_workers(outputs, name, module, how):
    needs(module, JOBS[name][1], how)
    out = outputs[name] = run_job(name)
    found = accuracy(out)
    assert found and min(found) >= 0.95, out[-2000:]
    assert len(losses(out)) == 12 and losses(out)[-1] < losses(out)[0]
    if name != "mxnet":
        assert re.search(r"test accuracy [0-9.]+ \(2 ranks", out), out[-500:]
    else:
        assert len(found) == 2  # both workers evaluate the same synchronised model


def test_ring_and_ddp_give_the_same_losses(outputs):
    for name in ("ring", "ddp"):
        if name not in outputs:
            outputs[name] = run_job(name)
    ring, ddp = losses(outputs["ring"]), losses(outputs["ddp"])
    assert len(ring) == len(ddp) == 12
    assert all(abs(a - b) <= 1e-4 * abs(b) for a, b in zip(ring, ddp)), (ring, ddp)


@pytest.mark.skipif(importlib.util.find_spec("torch") is None or importlib.util.find_spec("sklearn") is None,
                    reason="needs the `torch` and `examples` extras (make test installs them)")
def test_ring_on_2_workers_matches_one_process_on_the_combined_batch(outputs):
    if "ring" not in outputs:
        outputs["ring"] = run_job("ring")
    single = subprocess.run([sys.executable, "examples/train/digits.py", "--backend", "single"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr
    ring, one = losses(outputs["ring"]), losses(single.stdout)
    assert len(ring) == len(one) == 12
    assert all(abs(a - b) <= 1e-4 * abs(b) for a, b in zip(ring, one)), (ring, one)
    assert re.search(r"test accuracy ([0-9.]+) \(1 ranks", single.stdout)
