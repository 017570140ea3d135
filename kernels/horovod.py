"""Horovod's PyTorch API on ringrun's collectives: a Horovod training script runs on ringrun with one import changed.

    import horovod.torch as hvd          ->      import ringrun.kernels.horovod as hvd

What a training script calls (Horovod 0.28's `horovod.torch`): init, rank, size, local_rank, local_size, cross_rank,
cross_size, DistributedOptimizer (named_parameters, compression, backward_passes_per_step, op), broadcast_parameters,
broadcast_optimizer_state, broadcast_object, allreduce(_), broadcast(_), allgather, Average / Sum, Compression.none /
fp16, Min / Max / Product for allreduce, skip_synchronize, and the *_built() queries; a parameter without a gradient on
this rank contributes zeros, as in Horovod. What ringrun does not do is refused by name, never ignored: Adasum, a
gradient_predivide_factor other than 1, process sets and groups, sparse gradients, GPU tensors. The optimizer wraps
the torch optimizer rather than subclassing its class, so torch's lr_scheduler, which checks isinstance, needs the
wrapped one (`optimizer._optimizer`). The ranks are those of
MPI_COMM_WORLD (or `init(comm)`): run the script under `ringrun launch`, mpirun, or in an MPIJob.
"""

from . import torch as _rr
from .allreduce import allreduce as _allreduce
from .collectives import allgather as _allgather, broadcast as _broadcast

Average, Sum, Adasum, Min, Max, Product = "average", "sum", "adasum", "min", "max", "prod"
_OPS = {Average, Sum}  # the optimizer's, as Horovod's
_ALLREDUCE_OPS = {Average, Sum, Min, Max, Product}


class _NoneCompressor:
    """Gradients travel as they are."""

    dtype = None


class _FP16Compressor:
    """Floating-point gradients travel as float16 (half the bytes), and are summed in float16."""

    dtype = "float16"


class Compression:
    """Horovod's names for the gradient compressions: none and fp16."""

    none = _NoneCompressor
    fp16 = _FP16Compressor


def init(comm=None):
    """Use `comm` (default MPI.COMM_WORLD); Horovod's `comm` argument (a list of ranks) is not supported."""
    if isinstance(comm, (list, tuple)):
        raise ValueError("hvd.init(comm=[ranks]): process subsets are not supported by ringrun; pass an mpi4py "
                         "communicator or nothing")
    _rr.init(comm)
    _local.clear()
    _where()  # collective (MPI splits): every rank calls init, not every rank asks for local_rank()


def shutdown():
    _rr._state["comm"] = None
    _local.clear()


def is_initialized():
    return _rr._state["comm"] is not None


rank, size = _rr.rank, _rr.size
_local = {}


def _where():
    """(local rank, local size, cross rank, cross size): the ranks sharing this host, from MPI's COMM_TYPE_SHARED."""
    if not _local:
        comm = _rr._comm()
        if getattr(comm, "comm", None) is None:
            _local["where"] = (comm.rank, comm.size, 0, 1)
        else:
            from mpi4py import MPI

            node = comm.comm.Split_type(MPI.COMM_TYPE_SHARED, key=comm.rank)
            local, per_host = node.Get_rank(), node.Get_size()
            cross = comm.comm.Split(local, comm.rank)
            _local["where"] = (local, per_host, cross.Get_rank(), cross.Get_size())
            node.Free()
            cross.Free()
    return _local["where"]


def local_rank():
    return _where()[0]


def local_size():
    return _where()[1]


def cross_rank():
    return _where()[2]


def cross_size():
    return _where()[3]


def mpi_built():
    return True


def mpi_enabled():
    return True


def gloo_built():
    return False


def nccl_built():
    return 0


def cuda_built():
    return False


def rocm_built():
    return False


def mpi_threads_supported():
    from mpi4py import MPI

    return MPI.Query_thread() == MPI.THREAD_MULTIPLE


def _op(op, average=None, allowed=_OPS):
    """ringrun's op for Horovod's `op` / legacy `average` arguments."""
    if op is not None and average is not None:
        raise ValueError("The op parameter supersedes average. Please provide only one of them.")
    if op is None:
        op = Sum if average is False else Average
    if op == Adasum:
        raise ValueError("op=hvd.Adasum: Adasum is not implemented by ringrun (use hvd.Average or hvd.Sum)")
    if op not in allowed:
        names = {Average: "Average", Sum: "Sum", Min: "Min", Max: "Max", Product: "Product"}
        raise ValueError(f"op={op!r}: ringrun supports " + ", ".join(f"hvd.{names[o]}" for o in sorted(allowed)))
    return op


def _unsupported(**given):
    for name, (value, default) in given.items():
        if value != default:
            raise ValueError(f"{name}={value!r}: not supported by ringrun (only {default!r})")


def _array(tensor, what):
    return _rr._arrays([(what, tensor)], what)[0]


def allreduce_(tensor, average=None, name=None, op=None, prescale_factor=1.0, postscale_factor=1.0):
    """Reduce `tensor` over the ranks in place (a contiguous CPU tensor) and return it."""
    _unsupported(prescale_factor=(prescale_factor, 1.0), postscale_factor=(postscale_factor, 1.0))
    _allreduce(_array(tensor, name or "tensor"), _op(op, average, _ALLREDUCE_OPS), comm=_rr._comm())
    return tensor


def allreduce(tensor, average=None, name=None, compression=Compression.none, op=None, prescale_factor=1.0,
              postscale_factor=1.0):
    """The reduction of `tensor` over the ranks, as a new tensor (`tensor` is unchanged)."""
    import torch

    work = tensor.detach().clone().contiguous()
    if compression.dtype is not None and work.is_floating_point():
        return allreduce_(work.to(getattr(torch, compression.dtype)), average, name, op, prescale_factor,
                          postscale_factor).to(tensor.dtype)
    return allreduce_(work, average, name, op, prescale_factor, postscale_factor)


def broadcast_(tensor, root_rank, name=None):
    """Copy rank `root_rank`'s `tensor` into every rank's, in place, and return it."""
    array = _array(tensor, name or "tensor")
    if array.size:
        _broadcast(array, root_rank, _rr._comm())
    return tensor


def broadcast(tensor, root_rank, name=None):
    return broadcast_(tensor.detach().clone().contiguous(), root_rank, name)


def allgather(tensor, name=None):
    """Every rank's `tensor` concatenated along the first dimension, in rank order."""
    import torch

    return torch.from_numpy(_allgather(_array(tensor.detach().contiguous(), name or "tensor"), _rr._comm()))


def broadcast_object(obj, root_rank=0, name=None):
    """Rank `root_rank`'s picklable `obj`, on every rank."""
    comm = _rr._comm()
    if getattr(comm, "comm", None) is None:
        raise TypeError("broadcast_object needs an MPI communicator (hvd.init() with mpi4py)")
    return comm.comm.bcast(obj if comm.rank == root_rank else None, root=root_rank)


def broadcast_parameters(params, root_rank):
    """Copy rank `root_rank`'s parameters into every rank's: a state_dict or named_parameters()."""
    _rr.broadcast_parameters(params, root=root_rank)


def broadcast_optimizer_state(optimizer, root_rank):
    """Give every rank the optimizer state (hyperparameters and per-parameter state) of rank `root_rank`."""
    optimizer.load_state_dict(broadcast_object(optimizer.state_dict(), root_rank))


class _Optimizer(_rr.DistributedOptimizer):
    """ringrun's DistributedOptimizer with Horovod's behaviour around it: a parameter that needs a gradient and has
    none on this rank (another rank's graph may have reached it) contributes zeros, and `skip_synchronize()`."""

    _skip = False

    def _fill_missing(self):
        for group in self._optimizer.param_groups:
            for p in group["params"]:
                if p.requires_grad and p.grad is None:
                    p.grad = p.detach().new_zeros(p.shape)

    def synchronize(self):
        self._fill_missing()
        super().synchronize()

    def skip_synchronize(self):
        """`with optimizer.skip_synchronize(): optimizer.step()`: step without reducing (after synchronize())."""
        import contextlib

        @contextlib.contextmanager
        def skipping():
            self._skip = True
            try:
                yield
            finally:
                self._skip = False
        return skipping()

    def step(self, closure=None):
        if not self._skip:
            self.synchronize()
        return self._optimizer.step(closure) if closure is not None else self._optimizer.step()


class _Compressed(_Optimizer):
    """Gradients cast to `dtype` for the reduction and back (Compression.fp16): reduced in step()."""

    def __init__(self, optimizer, named_parameters, op, dtype, backward_passes_per_step):
        super().__init__(optimizer, named_parameters, op=op, overlap=False,
                         backward_passes_per_step=backward_passes_per_step)
        self._dtype = dtype

    def synchronize(self):
        import torch

        self._fill_missing()
        grads = self._gradients()
        cast = [(name, grad.to(getattr(torch, self._dtype)) if grad.is_floating_point() else grad)
                for name, grad in grads]
        arrays = _rr._arrays(cast, "gradient of")
        if arrays and _rr.size() > 1:
            self._fusion.allreduce_many(arrays, self._op, comm=_rr._comm())
        for (_, grad), (_, low) in zip(grads, cast):
            if low is not grad:
                grad.copy_(low)


def DistributedOptimizer(optimizer, named_parameters=None, compression=Compression.none, backward_passes_per_step=1,
                         op=Average, gradient_predivide_factor=1.0, num_groups=0, groups=None,
                         sparse_as_dense=False):
    """Wrap `optimizer`: step() first averages (op=Sum: sums) every gradient over the ranks. Without compression the
    gradients are reduced in buckets while backward still runs (ringrun.kernels.torch.DistributedOptimizer);
    with Compression.fp16 they are cast, reduced in step() and cast back."""
    _unsupported(gradient_predivide_factor=(gradient_predivide_factor, 1.0), num_groups=(num_groups, 0),
                 groups=(groups, None), sparse_as_dense=(sparse_as_dense, False))
    op = _op(op)
    named = list(named_parameters) if named_parameters is not None else None
    if compression.dtype is not None:
        return _Compressed(optimizer, named, op, compression.dtype, backward_passes_per_step)
    return _Optimizer(optimizer, named, op=op, backward_passes_per_step=backward_passes_per_step)
