"""ringrun.kernels.torch under mpirun (-np 1, 2, 3, 4 in `make test`): gradients averaged exactly over the ranks,
parameters broadcast from the root, and tensors it cannot reduce where they lie refused by name."""

import importlib.util

import pytest

pytestmark = [pytest.mark.mpi,
              pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                                 reason="torch is not installed: install the `torch` extra (make test does)")]


@pytest.fixture(scope="module")
def rr():
    import ringrun.kernels.torch as rr
    from mpi4py import MPI

    rr.init(MPI.COMM_WORLD)
    return rr


def model():
    import torch

    return torch.nn.Sequential(torch.nn.Linear(300, 2000), torch.nn.ReLU(), torch.nn.Linear(2000, 7))


def test_step_averages_every_gradient_exactly(rr):
    import torch

    net = model()
    params = list(net.parameters())
    rr.broadcast_parameters(net.state_dict())
    before = [p.detach().clone() for p in params]
    n, r = rr.size(), rr.rank()
    for i, p in enumerate(params):  # rank- and index-dependent, exactly representable: the mean is exact
        index = torch.arange(p.numel(), dtype=torch.float32).reshape(p.shape)
        p.grad = (r + 1) * 4.0 + (index % 17) + i
    params[-1].grad = None  # a parameter without a gradient is left out
    optimizer = rr.DistributedOptimizer(torch.optim.SGD(params, lr=1.0), net.named_parameters())
    optimizer.step()
    for i, (p, old) in enumerate(zip(params, before)):
        if i == len(params) - 1:
            assert torch.equal(p.detach(), old)
            continue
        index = torch.arange(p.numel(), dtype=torch.float32).reshape(p.shape)
        mean = (n + 1) / 2 * 4.0 + (index % 17) + i
        assert torch.equal(p.grad, mean), i
        assert torch.allclose(p.detach(), old - mean)
    optimizer.zero_grad()
    assert all(p.grad is None for p in params)


def test_broadcast_parameters_copies_the_roots(rr):
    import torch

    torch.manual_seed(1234 + rr.rank())  # every rank starts different
    net = model()
    rr.broadcast_parameters(net.state_dict(), root=rr.size() - 1)
    from mpi4py import MPI

    flat = torch.cat([p.detach().reshape(-1) for p in net.parameters()]).numpy()
    everyone = MPI.COMM_WORLD.allgather(flat.tobytes())
    assert all(b == everyone[0] for b in everyone)
    torch.manual_seed(1234 + rr.size() - 1)
    assert torch.equal(torch.cat([p.detach().reshape(-1) for p in model().parameters()]),
                       torch.from_numpy(flat))


def test_a_non_contiguous_gradient_is_refused_by_name(rr):
    import torch

    net = torch.nn.Linear(4, 3)
    net.weight.grad = torch.ones(4, 3).t()  # right shape, not contiguous
    optimizer = rr.DistributedOptimizer(torch.optim.SGD(net.parameters(), lr=0.1), net.named_parameters())
    with pytest.raises(TypeError, match="gradient of weight: only contiguous CPU tensors"):
        optimizer.synchronize()


def train(rr, steps, overlap, passes=1, bucket_bytes=64 << 10):
    """A 3-layer MLP (with a layer forward never uses) trained `steps` steps on rank-dependent data; its parameters."""
    import torch

    torch.manual_seed(7)
    net = torch.nn.Sequential(torch.nn.Linear(30, 200), torch.nn.Tanh(), torch.nn.Linear(200, 100), torch.nn.Tanh(),
                              torch.nn.Linear(100, 5))
    unused = torch.nn.Linear(3, 3)
    params = list(net.parameters()) + list(unused.parameters())
    optimizer = rr.DistributedOptimizer(torch.optim.SGD(params, lr=0.1), list(net.named_parameters()),
                                        overlap=overlap, bucket_bytes=bucket_bytes, backward_passes_per_step=passes)
    assert (optimizer._overlap is not None) == (overlap and rr.size() > 1)
    for step in range(steps):
        for part in range(passes):
            generator = torch.Generator().manual_seed(1000 * step + 10 * part + rr.rank())
            x = torch.randn(16, 30, generator=generator)
            y = torch.randn(16, 5, generator=generator)
            (torch.nn.functional.mse_loss(net(x), y) / passes).backward()
        optimizer.step()
        optimizer.zero_grad()
    return [p.detach().clone() for p in params]


@pytest.mark.parametrize("passes", [1, 2])
def test_overlapped_buckets_train_as_the_step_time_reduction_and_as_one_process(rr, passes):
    """Several buckets (64 KiB) reduced while backward runs: the same parameters as reducing in step(), within 1e-6,
    and as one process on every rank's batch (the average of the ranks' gradients), within 1e-5."""
    import torch

    overlapped = train(rr, 4, True, passes)
    stepped = train(rr, 4, False, passes)
    for a, b in zip(overlapped, stepped):
        assert torch.allclose(a, b, rtol=1e-6, atol=1e-7)
    torch.manual_seed(7)
    net = torch.nn.Sequential(torch.nn.Linear(30, 200), torch.nn.Tanh(), torch.nn.Linear(200, 100), torch.nn.Tanh(),
                              torch.nn.Linear(100, 5))
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    for step in range(4):
        for part in range(passes):
            for rank in range(rr.size()):
                generator = torch.Generator().manual_seed(1000 * step + 10 * part + rank)
                x = torch.randn(16, 30, generator=generator)
                y = torch.randn(16, 5, generator=generator)
                (torch.nn.functional.mse_loss(net(x), y) / passes / rr.size()).backward()
        optimizer.step()
        optimizer.zero_grad()
    for a, b in zip(overlapped, net.parameters()):
        assert torch.allclose(a, b.detach(), rtol=1e-5, atol=1e-6)
    assert torch.equal(overlapped[-1], stepped[-1])  # the unused layer: no gradient, never stepped


def test_gradients_within_one_bucket_are_reduced_in_step_without_a_thread(rr):
    """Nothing to overlap in one bucket: step() reduces it (no hooks, no thread), the average of the ranks'."""
    import torch

    net = torch.nn.Linear(4, 2)
    optimizer = rr.DistributedOptimizer(torch.optim.SGD(net.parameters(), lr=0.1), list(net.named_parameters()))
    assert optimizer._overlap is None
    net(torch.full((1, 4), float(rr.rank() + 1))).sum().backward()
    net(torch.full((1, 4), float(rr.rank() + 1))).sum().backward()  # accumulates, as torch does
    optimizer.synchronize()
    assert torch.equal(net.weight.grad, torch.full((2, 4), float(rr.size() + 1)))  # mean of 2 * (rank + 1)
    assert torch.equal(net.bias.grad, torch.full((2,), 2.0))


def test_a_gradient_computed_more_often_than_declared_is_an_error(rr):
    import torch

    net = torch.nn.Linear(4, 2)
    optimizer = rr.DistributedOptimizer(torch.optim.SGD(net.parameters(), lr=0.1), list(net.named_parameters()),
                                        bucket_bytes=16)  # 40 bytes of gradients: several buckets, overlapped
    net(torch.ones(1, 4)).sum().backward()
    if rr.size() == 1:  # one rank: nothing to reduce, no hooks; the gradients simply accumulate
        net(torch.ones(1, 4)).sum().backward()
        assert optimizer._overlap is None and torch.equal(net.weight.grad, torch.full((2, 4), 2.0))
        return
    with pytest.raises(RuntimeError, match="gradient of .* computed more than backward_passes_per_step=1 times"):
        net(torch.ones(1, 4)).sum().backward()


def test_a_second_optimizer_over_the_same_model_replaces_the_first(rr):
    """Horovod's users hit it: a new DistributedOptimizer over a model (a new learning-rate schedule, a restart)
    while the first one's hooks still count the gradients. The first one's overlap is closed; the second works."""
    import torch

    net = model()
    first = rr.DistributedOptimizer(torch.optim.SGD(net.parameters(), lr=0.1), list(net.named_parameters()),
                                    bucket_bytes=1 << 20)
    second = rr.DistributedOptimizer(torch.optim.SGD(net.parameters(), lr=0.1), list(net.named_parameters()),
                                     bucket_bytes=1 << 20)
    assert first._overlap is None or not first._overlap.thread.is_alive()
    from mpi4py import MPI

    for _ in range(2):  # two steps: the first optimizer's hooks would have raised on the second backward
        second.zero_grad()
        x = torch.full((1, 300), float(rr.rank() + 1))
        # the expected mean from a copy without hooks (the overlap thread reduces net's gradients as backward runs)
        ref = model()
        ref.load_state_dict(net.state_dict())
        ref(x).sum().backward()
        mean = [torch.from_numpy(MPI.COMM_WORLD.allreduce(p.grad.numpy()) / rr.size()) for p in ref.parameters()]
        net(x).sum().backward()
        second.synchronize()
        for got, want in zip((p.grad for p in net.parameters()), mean):
            assert torch.allclose(got, want, rtol=1e-5, atol=1e-6)
    with rr.DistributedOptimizer(torch.optim.SGD(net.parameters(), lr=0.1), list(net.named_parameters()),
                                 bucket_bytes=1 << 20) as third:
        overlap = third._overlap
    assert third._overlap is None and (overlap is None or not overlap.thread.is_alive())
    net(torch.ones(1, 300)).sum().backward()  # no hook of any closed optimizer counts it
    net(torch.ones(1, 300)).sum().backward()
