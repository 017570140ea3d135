"""Data-parallel training of one small model on scikit-learn's digits (8x8 images, shipped with the package), with
the same model, data order and hyper-parameters whatever moves the gradients:

    --backend ring      ringrun.kernels.torch: gradients averaged by ringrun, while backward runs if they fill more
                        than one bucket (resnet50), else in step() (mpirun / an MPIJob)
    --backend ring_sync the same, every gradient averaged in step() (no overlap with backward)
    --backend ddp       torch DistributedDataParallel over gloo, env:// (plain processes / a PyTorchJob)
    --backend horovod   horovod.torch in MPI mode (mpirun / an MPIJob)
    --backend single    one process on the combined batch: the reference the others must match

Every epoch takes the same shuffled order (seeded); each global batch of --batch samples is split evenly between the
ranks, so averaging the ranks' gradients is exactly the gradient of the whole batch. Rank 0 prints one line per epoch
(the mean training loss over the epoch's samples, all ranks) and the final test accuracy. With --json, rank 0 then
trains the single-process reference itself and the row is `verified` only if every epoch's loss is within 1e-4
(relative) of it, the test accuracy within one test sample of it, and every trained parameter tensor within 1e-4 of
the reference's (relative to its largest value): the distributed run must compute what one process computes, however
many epochs were asked for.

`--model resnet50` adds ResNet-50's 161 parameter tensors (25,557,032 values, zeros at first) to the same network, for
communication-heavy timing: tensor i adds its mean to the logit of class i mod 10 (a class bias spread over many
values), so every one gets a real gradient, different on every rank, to average each step - produced in reverse
order by backward, for the cost of a few memory passes.
"""

import argparse
import collections
import os
import sys
import time


def load(seed):
    """(x_train, y_train, x_test, y_test): 75/25 split, fixed by `seed`, pixels scaled to [0, 1]."""
    import numpy as np
    from sklearn.datasets import load_digits

    data = load_digits()
    order = np.random.default_rng(seed).permutation(len(data.target))
    x = (data.data / 16.0).astype(np.float32)[order]
    y = data.target.astype(np.int64)[order]
    cut = len(y) * 3 // 4
    return x[:cut], y[:cut], x[cut:], y[cut:]


def model(seed, kind="mlp"):
    import torch

    torch.manual_seed(seed)
    mlp = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    return mlp if kind == "mlp" else ballasted_class()(mlp)


def ballasted_class():
    """The resnet50 model's class, made on use so that importing this file needs no torch."""
    import torch

    from ringrun.bench.models import RESNET50_SHAPES

    class Ballasted(torch.nn.Module):
        """The MLP plus ResNet-50's parameter shapes, tensor i adding its mean to class i mod 10's logit (see the
        module doc)."""

        def __init__(self, mlp):
            super().__init__()
            self.mlp = mlp
            self.ballast = torch.nn.ParameterList(torch.nn.Parameter(torch.zeros(shape)) for shape in RESNET50_SHAPES)

        def forward(self, x):
            means = torch.stack([parameter.mean() for parameter in self.ballast])
            return self.mlp(x) + torch.stack([means[c::10].sum() for c in range(10)])
    return Ballasted


class Single:
    rank, size = 0, 1

    def wrap(self, net, optimizer):
        return net, optimizer

    def mean(self, value):
        return value


class Ring:
    overlap = True

    def __init__(self):
        import ringrun.kernels.torch as rr

        self.rr = rr
        rr.init()
        self.rank, self.size = rr.rank(), rr.size()

    def wrap(self, net, optimizer):
        self.rr.broadcast_parameters(net.state_dict())
        optimizer = self.rr.DistributedOptimizer(optimizer, net.named_parameters(), overlap=self.overlap)
        self.overlapped = optimizer._overlap is not None  # False when the gradients fit in one bucket
        return net, optimizer

    def mean(self, value):
        import numpy as np

        from ringrun.kernels import allreduce

        return float(allreduce(np.array([value]), "average")[0])


class DDP:
    def __init__(self):
        import torch.distributed as dist

        dist.init_process_group("gloo", init_method="env://")
        self.dist, self.rank, self.size = dist, dist.get_rank(), dist.get_world_size()

    def wrap(self, net, optimizer):
        import torch

        return torch.nn.parallel.DistributedDataParallel(net), optimizer

    def mean(self, value):
        import torch

        tensor = torch.tensor([value], dtype=torch.float64)
        self.dist.all_reduce(tensor)
        return float(tensor[0]) / self.size

    def close(self):
        # a gloo process group left to the interpreter's exit can abort it ("terminate called without an active
        # exception", exit 134) after training succeeded: end it first, every rank together
        self.dist.barrier()
        self.dist.destroy_process_group()


class Horovod:
    def __init__(self):
        import horovod.torch as hvd

        hvd.init()
        self.hvd, self.rank, self.size = hvd, hvd.rank(), hvd.size()

    def wrap(self, net, optimizer):
        self.hvd.broadcast_parameters(net.state_dict(), root_rank=0)
        return net, self.hvd.DistributedOptimizer(optimizer, named_parameters=net.named_parameters())

    def mean(self, value):
        import torch

        return float(self.hvd.allreduce(torch.tensor([value], dtype=torch.float64), op=self.hvd.Average)[0])


class RingSync(Ring):
    overlap = False


BACKENDS = {"single": Single, "ring": Ring, "ring_sync": RingSync, "ddp": DDP, "horovod": Horovod}
MODELS = ("mlp", "resnet50")
Run = collections.namedtuple("Run", "losses accuracy seconds params tests")


def train(backend, epochs, batch, lr, seed, out=sys.stdout, kind="mlp"):
    """Train; returns a `Run`: per-epoch losses, test accuracy, each step's seconds on this rank, copies of the trained
    parameters and the number of test images. The model itself is not returned: a DDP wrapper outliving its process
    group aborts the interpreter at exit (see DDP.close)."""
    import numpy as np
    import torch

    torch.set_num_threads(1)
    x_train, y_train, x_test, y_test = load(seed)
    if batch % backend.size:
        raise SystemExit(f"--batch {batch} does not split evenly between {backend.size} ranks")
    share = batch // backend.size
    net = model(seed, kind)
    net, optimizer = backend.wrap(net, torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9))
    loss_fn = torch.nn.CrossEntropyLoss()
    steps = len(y_train) // batch
    losses, seconds = [], []
    for epoch in range(epochs):
        order = np.random.default_rng(seed + 1 + epoch).permutation(len(y_train))
        total = 0.0
        for step in range(steps):
            mine = order[step * batch + backend.rank * share:step * batch + (backend.rank + 1) * share]
            started = time.perf_counter()
            optimizer.zero_grad()
            loss = loss_fn(net(torch.from_numpy(x_train[mine])), torch.from_numpy(y_train[mine]))
            loss.backward()
            optimizer.step()
            seconds.append(time.perf_counter() - started)
            total += loss.item()
        losses.append(backend.mean(total / steps))
        if backend.rank == 0:
            print(f"epoch {epoch + 1} loss {losses[-1]:.6f}", file=out, flush=True)
    with torch.no_grad():
        predicted = net(torch.from_numpy(x_test)).argmax(dim=1).numpy()
    accuracy = float((predicted == y_test).mean())
    if backend.rank == 0:
        print(f"test accuracy {accuracy:.4f} ({backend.size} ranks, {sorted(seconds)[len(seconds) // 2] * 1e3:.3f} "
              "ms/step median)", file=out, flush=True)
    params = [p.detach().clone() for p in getattr(net, "module", net).parameters()]
    return Run(losses, accuracy, seconds, params, len(y_test))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=tuple(BACKENDS), required=True)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--batch", type=int, default=64, help="global batch, split evenly between the ranks")
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", choices=MODELS, default="mlp", help="mlp (default), or resnet50: the same "
                        "MLP with ResNet-50's 161 parameter tensors to reduce every step (communication-heavy)")
    parser.add_argument("--json", metavar="FILE", help="rank 0 writes losses, accuracy and every step's time here "
                                                        "(what `ringrun bench train` reads)")
    args = parser.parse_args(argv)
    try:
        backend = BACKENDS[args.backend]()
    except ImportError as exc:
        if not args.json:
            raise
        return write_json(args.json, {"results": [], "unavailable": {args.backend: f"cannot import: {exc}"}})
    run = train(backend, args.epochs, args.batch, args.lr, args.seed, kind=args.model)
    getattr(backend, "close", lambda: None)()
    if args.json and backend.rank == 0:
        values = sum(p.numel() for p in run.params)  # one step's allreduce
        with open(os.devnull, "w", encoding="utf-8") as quiet:
            reference = train(Single(), args.epochs, args.batch, args.lr, args.seed, out=quiet, kind=args.model)
        row = {"impl": args.backend, "model": args.model, "bytes": 4 * values, "count": values, "ranks": backend.size,
               "verified": agrees(run, reference), "accuracy": run.accuracy, "losses": run.losses,
               "reference_losses": reference.losses, "reference_accuracy": reference.accuracy,
               "samples": run.seconds, "overlapped": getattr(backend, "overlapped", None)}
        write_json(args.json, {"results": [row], "unavailable": {}})
    return 0


def agrees(run, reference, rtol=1e-4):
    """True if a `Run` computed what the single-process reference did: every epoch's loss within `rtol` (relative),
    the test accuracy within one test image, every trained parameter tensor within `rtol` of the reference's
    (relative to its largest magnitude)."""
    import torch

    losses = len(run.losses) == len(reference.losses) and all(
        abs(a - b) <= rtol * abs(b) for a, b in zip(run.losses, reference.losses))
    accuracy = abs(run.accuracy - reference.accuracy) <= 1.0 / reference.tests + 1e-12
    with torch.no_grad():
        params = len(run.params) == len(reference.params) and all(
            a.shape == b.shape and float((a.double() - b.double()).abs().max()) <= rtol * float(b.double().abs().max())
            + 1e-12 for a, b in zip(run.params, reference.params))
    return losses and accuracy and params


def write_json(path, document):
    import json

    import torch

    document.update({"library": f"torch {torch.__version__}", "dtype": "float32"})
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(document, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
