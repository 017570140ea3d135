"""Data-parallel PyTorch training on ringrun's collectives (the part of Horovod's torch API a training loop needs).

    import ringrun.kernels.torch as rr
    rr.init()                                     # MPI.COMM_WORLD, or any communicator
    rr.broadcast_parameters(model.state_dict())   # every rank starts from rank 0's weights
    optimizer = rr.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.1), model.named_parameters())
    loss.backward(); optimizer.step()             # gradients averaged over the ranks (while backward runs)

CPU tensors share memory with numpy (`Tensor.numpy()`), so gradients are reduced where they are: small ones packed
into the fusion buffer, large ones reduced in place by the same ring (`kernels.fusion`). No torch.distributed
process group is needed, and nothing here starts processes: run the script under `ringrun launch` or in an MPIJob.
"""

from .collectives import broadcast
from .comm import as_communicator
from .fusion import Fusion
from .overlap import Overlap, buckets as overlap_buckets, usable as overlap_usable

_state = {"comm": None}


def init(comm=None):
    """Use `comm` (an mpi4py communicator or a `kernels.comm` protocol object; default MPI.COMM_WORLD)."""
    _state["comm"] = as_communicator(comm)
    return _state["comm"]


def _comm():
    if _state["comm"] is None:
        raise RuntimeError("ringrun.kernels.torch: call init() first")
    return _state["comm"]


def rank():
    return _comm().rank


def size():
    return _comm().size


def _arrays(tensors, what):
    """numpy views of CPU tensors (no copy); TypeError for anything ringrun cannot reduce where it lies."""
    arrays = []
    for name, tensor in tensors:
        if tensor.device.type != "cpu" or not tensor.is_contiguous():
            raise TypeError(f"{what} {name}: only contiguous CPU tensors are supported, got {tensor.device} "
                            f"{'contiguous' if tensor.is_contiguous() else 'non-contiguous'}")
        arrays.append(tensor.detach().numpy())
    return arrays


def broadcast_parameters(params, root=0):
    """Copy rank `root`'s tensors into every rank's, in place: a state_dict, named_parameters() or a list of tensors."""
    if hasattr(params, "items"):
        named = list(params.items())
    else:
        named = [item if isinstance(item, tuple) else (str(i), item) for i, item in enumerate(params)]
    for array in _arrays(named, "parameter"):
        if array.size:
            broadcast(array, root, _comm())


class DistributedOptimizer:
    """Wraps a torch optimizer: `step()` first averages every parameter's gradient over the ranks, then steps.
    Everything else (zero_grad, param_groups, state_dict, ...) is the wrapped one's.

    named_parameters: the model's named_parameters(), to name a tensor in errors (optional).
    overlap: reduce gradients in buckets of `bucket_bytes` while backward still runs (`kernels/overlap.py`: a hook per
    parameter, one background thread on a duplicate of the communicator), so `step()` waits only for what is still
    in flight; needs an MPI communicator with MPI_THREAD_MULTIPLE and more than one bucket, else (and with
    overlap=False) every gradient is reduced in `step()` by one fused collective. bucket_bytes: 64 MiB by default,
    measured best on one host, where the reduction is work for the cores that run backward (BENCHMARKS.md, "Training
    step"); across hosts, smaller buckets (DDP's 25 MiB) start the network sooner. backward_passes_per_step: backward
    calls between steps (gradient accumulation; while overlapping, a gradient computed more often is a RuntimeError).
    """

    def __init__(self, optimizer, named_parameters=None, op="average", fusion=None, overlap=True,
                 bucket_bytes=64 << 20, backward_passes_per_step=1):
        self._optimizer = optimizer
        self._names = {id(p): n for n, p in (named_parameters or ())}
        self._op = op
        self._fusion = fusion or Fusion()
        self._overlap = None
        comm = _comm()
        cut = []
        if overlap and comm.size > 1 and overlap_usable(comm):
            cut = overlap_buckets([p for group in optimizer.param_groups for p in group["params"]], bucket_bytes)
        # a single bucket is complete only when backward ends: reduced then by step(), without the thread's hand-off
        # (0.1 ms a step for a small model). Every rank has the same parameters, so all decide alike.
        if len(cut) > 1:
            from .comm import MPIComm

            # collective: every rank builds its optimizer; the thread's communicator is its own
            self._overlap = Overlap(cut, MPIComm(comm.comm.Dup()), Fusion(), lambda named: _arrays(named,
                                    "gradient of"), op, backward_passes_per_step)
            self._overlap.names = self._names

    def __getattr__(self, name):
        return getattr(self._optimizer, name)

    def close(self):
        """Stop overlapping: the gradient hooks removed, the background thread ended (every rank calls it, as it
        made the optimizer). step() still works, reducing in one fused collective. A second DistributedOptimizer over
        the same parameters closes the first one's overlap by itself."""
        if self._overlap is not None:
            self._overlap.close()
            self._overlap = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def synchronize(self):
        """Average the gradients now (step() does it); the parameters without a gradient are left out."""
        if self._overlap is not None:
            self._overlap.finish()
            return
        arrays = _arrays(self._gradients(), "gradient of")
        if arrays and size() > 1:
            self._fusion.allreduce_many(arrays, self._op, comm=_comm())

    def _gradients(self):
        """[(name, gradient)] of the parameters that have one, in the optimizer's order."""
        return [(self._names.get(id(p), f"param {i}"), p.grad)
                for i, p in enumerate(p for group in self._optimizer.param_groups for p in group["params"])
                if p.grad is not None]

    def step(self, closure=None):
        self.synchronize()
        return self._optimizer.step(closure) if closure is not None else self._optimizer.step()

    def zero_grad(self, set_to_none=True):
        return self._optimizer.zero_grad(set_to_none=set_to_none)
