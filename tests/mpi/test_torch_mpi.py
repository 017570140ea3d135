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
