"""ringrun.kernels.horovod under mpirun (-np 1, 2, 3, 4 in `make test`): Horovod's torch API as a training script
calls it, on ringrun's collectives - exact averages and sums, fp16 compression, broadcasts of parameters, optimizer
state and objects - and what ringrun does not do refused by name."""

import importlib.util

import pytest

pytestmark = [pytest.mark.mpi,
              pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                                 reason="torch is not installed: install the `torch` extra (make test does)")]


@pytest.fixture(scope="module")
def hvd():
    import ringrun.kernels.horovod as hvd

    hvd.init()
    return hvd


def exact_gradients(params, rank):
    """Rank- and index-dependent gradients whose mean over any number of ranks is exact in float16 too."""
    import torch

    for i, p in enumerate(params):
        index = torch.arange(p.numel(), dtype=torch.float32).reshape(p.shape)
        p.grad = (rank + 1) * 4.0 + (index % 17) + i


@pytest.mark.parametrize("compression", ["none", "fp16"])
@pytest.mark.parametrize("op", ["Average", "Sum"])
def test_the_optimizer_reduces_every_gradient_exactly(hvd, compression, op):
    import torch

    from mpi4py import MPI

    torch.manual_seed(7 + hvd.rank())
    model = torch.nn.Sequential(torch.nn.Linear(30, 200), torch.nn.ReLU(), torch.nn.Linear(200, 7))
    optimizer = hvd.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=1.0),
                                         named_parameters=model.named_parameters(),
                                         compression=getattr(hvd.Compression, compression), op=getattr(hvd, op))
    hvd.broadcast_parameters(model.state_dict(), root_rank=0)
    hvd.broadcast_optimizer_state(optimizer, root_rank=0)
    params = list(model.parameters())
    before = [p.detach().clone() for p in params]
    exact_gradients(params, hvd.rank())
    optimizer.step()
    n = hvd.size()
    for i, (p, old) in enumerate(zip(params, before)):
        index = torch.arange(p.numel(), dtype=torch.float32).reshape(p.shape)
        total = n * (n + 1) / 2 * 4.0 + n * ((index % 17) + i)
        want = total / n if op == "Average" else total
        assert p.grad.dtype == torch.float32 and torch.equal(p.grad, want), i
        assert torch.allclose(p.detach(), old - want)
    first = MPI.COMM_WORLD.bcast([p.detach() for p in params] if hvd.rank() == 0 else None, root=0)
    assert all(torch.equal(a, p.detach()) for a, p in zip(first, params)), "ranks disagree"
    if hasattr(optimizer, "close"):
        optimizer.close()


def test_the_ranks_and_the_queries(hvd):
    from mpi4py import MPI

    assert (hvd.rank(), hvd.size()) == (MPI.COMM_WORLD.Get_rank(), MPI.COMM_WORLD.Get_size())
    assert (hvd.local_rank(), hvd.local_size()) == (hvd.rank(), hvd.size())  # every rank on this machine
    assert (hvd.cross_rank(), hvd.cross_size()) == (0, 1)
    assert hvd.is_initialized() and hvd.mpi_built() and not hvd.nccl_built() and not hvd.gloo_built()


def test_collectives_on_tensors(hvd):
    import torch

    n, r = hvd.size(), hvd.rank()
    t = torch.arange(10, dtype=torch.float32) + r
    total = torch.arange(10, dtype=torch.float32) * n + n * (n - 1) / 2
    assert torch.equal(hvd.allreduce(t), total / n) and torch.equal(t, torch.arange(10, dtype=torch.float32) + r)
    assert torch.equal(hvd.allreduce(t, op=hvd.Sum), total)
    assert torch.equal(hvd.allreduce(t, average=False, compression=hvd.Compression.fp16), total)
    assert hvd.allreduce_(t, op=hvd.Sum) is t and torch.equal(t, total)
    b = torch.full((3, 2), float(r))
    assert torch.equal(hvd.broadcast(b, root_rank=n - 1), torch.full((3, 2), float(n - 1))) and b[0, 0] == r
    assert hvd.broadcast_(b, root_rank=0) is b and torch.equal(b, torch.zeros(3, 2))
    gathered = hvd.allgather(torch.full((2, 3), r, dtype=torch.int64))
    assert torch.equal(gathered, torch.arange(n).repeat_interleave(2)[:, None].expand(2 * n, 3))
    assert hvd.broadcast_object({"epoch": r}, root_rank=0) == {"epoch": 0}


def test_optimizer_state_comes_from_the_root(hvd):
    import torch

    torch.manual_seed(3)
    model = torch.nn.Linear(4, 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1 * (hvd.rank() + 1), momentum=0.9)
    if hvd.rank() == 0:  # only the root has momentum buffers
        model(torch.ones(2, 4)).sum().backward()
        optimizer.step()
    hvd.broadcast_optimizer_state(optimizer, root_rank=0)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1)
    state = [optimizer.state[p]["momentum_buffer"] for p in model.parameters()]
    assert all(torch.equal(s, torch.full_like(s, 2.0)) for s in state)  # the root's first step: the gradient


@pytest.mark.parametrize("kwargs,message", [
    ({"op": "adasum"}, r"op=hvd.Adasum: Adasum is not implemented by ringrun"),
    ({"gradient_predivide_factor": 2.0}, r"gradient_predivide_factor=2.0: not supported by ringrun"),
    ({"groups": 2}, r"groups=2: not supported by ringrun"),
    ({"op": "max"}, r"op='max': ringrun supports hvd.Average, hvd.Sum"),
])
def test_what_ringrun_does_not_do_is_refused_by_name(hvd, kwargs, message):
    import torch

    model = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match=message):
        hvd.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1), model.named_parameters(), **kwargs)


def test_a_gradient_missing_on_some_ranks_counts_as_zeros(hvd):
    import torch

    model = torch.nn.Linear(3, 2)
    hvd.broadcast_parameters(model.state_dict(), root_rank=0)
    optimizer = hvd.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.0),
                                         named_parameters=model.named_parameters())
    for p in model.parameters():
        p.grad = None if hvd.rank() == 0 else torch.full_like(p, 6.0)
    optimizer.step()  # every rank takes part in the same reductions, rank 0 with zeros
    n = hvd.size()
    assert all(torch.equal(p.grad, torch.full_like(p, 6.0 * (n - 1) / n)) for p in model.parameters())
    optimizer.close()


def test_skip_synchronize_steps_without_reducing_again(hvd):
    import torch

    model = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(1.0)
    optimizer = hvd.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=1.0), op=hvd.Sum,
                                         compression=hvd.Compression.fp16)
    model.weight.grad = torch.full((1, 2), float(hvd.rank() + 1))
    optimizer.synchronize()
    total = hvd.size() * (hvd.size() + 1) / 2
    with optimizer.skip_synchronize():
        optimizer.step()
    assert torch.equal(model.weight.grad, torch.full((1, 2), total))  # reduced once, not twice
    assert torch.equal(model.weight.detach(), torch.full((1, 2), 1.0 - total))


def test_allreduce_min_max_product_and_one_of_op_or_average(hvd):
    import torch

    n, r = hvd.size(), hvd.rank()
    t = torch.tensor([r + 1.0, -(r + 1.0)])
    assert torch.equal(hvd.allreduce(t, op=hvd.Min), torch.tensor([1.0, -float(n)]))
    assert torch.equal(hvd.allreduce(t, op=hvd.Max), torch.tensor([float(n), -1.0]))
    product = float(torch.arange(1, n + 1).prod())
    assert torch.equal(hvd.allreduce(t, op=hvd.Product), torch.tensor([product, product * (-1) ** n]))
    with pytest.raises(ValueError, match="The op parameter supersedes average"):
        hvd.allreduce(t, average=True, op=hvd.Sum)

