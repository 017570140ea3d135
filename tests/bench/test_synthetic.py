"""scripts/synthetic.py: a Horovod script run unchanged on Horovod and with its one import changed on ringrun, and the
same procedure on DDP, under `ringrun launch`; bench/resnet.py's ResNet-50 stands in for torchvision's."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT

HAVE_TORCH = importlib.util.find_spec("torch") is not None
HAVE_HOROVOD = importlib.util.find_spec("horovod") is not None


def load_runner():
    spec = importlib.util.spec_from_file_location("synthetic", ROOT / "scripts" / "synthetic.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# A Horovod training script in the shape of Horovod's pytorch_synthetic_benchmark.py (its arguments, its calls, its
# closing line), small enough for a test: written here, not Horovod's.
SCRIPT = '''import argparse, timeit
import torch
import torch.nn.functional as F
import horovod.torch as hvd
parser = argparse.ArgumentParser()
parser.add_argument("--model", default="resnet50")
parser.add_argument("--batch-size", type=int, default=2)
parser.add_argument("--num-warmup-batches", type=int, default=1)
parser.add_argument("--num-batches-per-iter", type=int, default=1)
parser.add_argument("--num-iters", type=int, default=2)
args = parser.parse_args()
hvd.init()
model = torch.nn.Linear(20, 10)
optimizer = hvd.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.01 * hvd.size()),
                                     named_parameters=model.named_parameters(), op=hvd.Average)
hvd.broadcast_parameters(model.state_dict(), root_rank=0)
hvd.broadcast_optimizer_state(optimizer, root_rank=0)
data, target = torch.randn(args.batch_size, 20), torch.arange(args.batch_size) % 10
def step():
    optimizer.zero_grad()
    F.cross_entropy(model(data), target).backward()
    optimizer.step()
timeit.timeit(step, number=args.num_warmup_batches)
rates = [args.batch_size * args.num_batches_per_iter / timeit.timeit(step, number=args.num_batches_per_iter)
         for _ in range(args.num_iters)]
same = hvd.allreduce(torch.cat([p.detach().reshape(-1) for p in model.parameters()]), op=hvd.Sum)
assert torch.allclose(same, hvd.size() * torch.cat([p.detach().reshape(-1) for p in model.parameters()]))
if hvd.rank() == 0:
    print("Img/sec per CPU: %.1f +-%.1f" % (sum(rates) / len(rates), 0.0))
'''


def test_the_ringrun_copy_changes_exactly_the_import_line(tmp_path):
    runner = load_runner()
    script = tmp_path / "bench.py"
    script.write_text(SCRIPT)
    work = tmp_path / "work"
    work.mkdir()
    tails, path = runner.prepare(str(script), str(work))
    assert tails["horovod"] == [str(script)]
    changed = (work / "ringrun_bench.py").read_text()
    assert changed == SCRIPT.replace("import horovod.torch as hvd", "import ringrun.kernels.horovod as hvd")
    assert tails["ddp"] == [str(ROOT / "scripts" / "synthetic_ddp.py")]
    has_torchvision = subprocess.run([sys.executable, "-c", "import torchvision"], capture_output=True).returncode == 0
    assert (path == []) if has_torchvision else (path == [str(work / "standin")])


def test_a_script_without_the_import_line_is_refused(tmp_path):
    script = tmp_path / "other.py"
    script.write_text("import horovod.torch as hvd\nimport horovod.torch as hvd\n")
    with pytest.raises(SystemExit, match="must have exactly one line 'import horovod.torch as hvd'"):
        load_runner().prepare(str(script), str(tmp_path))


@pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed: install the `torch` extra (make test does)")
def test_the_stand_in_resnet50_has_torchvisions_parameter_tensors():
    from ringrun.bench.models import RESNET50_SHAPES
    from ringrun.bench.resnet import models

    shapes = [tuple(p.shape) for p in models.resnet50().parameters()]
    assert len(shapes) == 161 and sorted(shapes) == sorted(tuple(s) for s in RESNET50_SHAPES)


@pytest.mark.skipif(not (HAVE_TORCH and HAVE_HOROVOD),
                    reason="needs torch and Horovod: `make test` installs both (make horovod)")
def test_horovod_and_ringrun_and_ddp_run_side_by_side(tmp_path):
    script = tmp_path / "bench.py"
    script.write_text(SCRIPT)
    out = tmp_path / "result.json"
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "synthetic.py"), "--script", str(script), "-np", "2",
                           "--json", str(out), "--", "--batch-size", "1", "--num-warmup-batches", "0",
                           "--num-batches-per-iter", "1", "--num-iters", "1"],
                          capture_output=True, text=True, timeout=900, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(out.read_text())
    assert result["np"] == 2 and sorted(result["results"]) == ["ddp", "horovod", "ringrun"]
    assert all(len(runs) == 1 and runs[0]["img_per_sec"] > 0 for runs in result["results"].values())
    for backend in ("horovod", "ringrun", "ddp"):
        assert f"{backend}: median" in done.stdout
