"""Plain processes joined by torch.distributed's env:// (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT), and gloo's
allreduce."""

WORLD = "gloo"


class GlooWorld:
    """The ranks of torch.distributed's default process group, gloo backend."""

    name = WORLD

    def __init__(self):
        import torch
        import torch.distributed as dist

        dist.init_process_group("gloo", init_method="env://")
        self.torch, self.dist = torch, dist
        self.rank, self.size = dist.get_rank(), dist.get_world_size()

    def library(self):
        return f"torch {self.torch.__version__} gloo"

    def close(self):
        self.dist.destroy_process_group()

    def barrier(self):
        self.dist.barrier()

    def slowest(self, seconds):
        value = self.torch.tensor([seconds], dtype=self.torch.float64)
        self.dist.all_reduce(value, op=self.dist.ReduceOp.MAX)
        return float(value[0])

    def all_true(self, flag):
        value = self.torch.tensor([0 if flag else 1], dtype=self.torch.int64)
        self.dist.all_reduce(value, op=self.dist.ReduceOp.SUM)
        return int(value[0]) == 0


def allreduce(world):
    torch, dist = world.torch, world.dist

    def run(buf):
        dist.all_reduce(torch.from_numpy(buf), op=dist.ReduceOp.SUM)
        return buf
    return run


IMPLS = {"allreduce": {"gloo": allreduce}}
