"""Run by every replica of examples/pytorchjob-gloo.yaml: join the gloo group from the environment (env://: MASTER_ADDR,
MASTER_PORT, WORLD_SIZE, RANK, as the operator or ringrun sets them), allreduce a rank- and index-dependent tensor and
check the exact sum. Exits 1 on a wrong result."""

import os
import sys


def main():
    import torch
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method="env://")
    rank, size = dist.get_rank(), dist.get_world_size()
    index = torch.arange(10007, dtype=torch.int64)
    tensor = (rank + 1) * 100 + index % 31
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    expected = size * (size + 1) // 2 * 100 + size * (index % 31)
    ok = bool(torch.equal(tensor, expected))
    # one write for the whole line: ranks started by one torchrun share its stdout, and with PYTHONUNBUFFERED (which
    # the operators set) print() would write the text and its newline separately, interleaving the ranks' lines
    sys.stdout.write(f"rank {rank}/{size} (RANK={os.environ['RANK']}): gloo allreduce {'OK' if ok else 'WRONG'}\n")
    sys.stdout.flush()
    dist.destroy_process_group()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
