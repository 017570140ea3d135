"""Run by every replica of examples/mxjob-kvstore.yaml. For the scheduler and servers, `import mxnet` runs the role
(ps-lite) and returns when the job is done; workers push rank- and index-dependent values to a dist_sync kvstore,
pull the aggregate and check the exact sum. Exits 1 on a wrong result."""

import os
import sys


def main():
    import mxnet as mx  # scheduler and server roles serve inside this import

    if os.environ.get("DMLC_ROLE") != "worker":
        return 0
    kv = mx.kv.create("dist_sync")
    rank, size = kv.rank, kv.num_workers
    shape = (3, 1001)
    index = mx.nd.arange(shape[0] * shape[1]).reshape(shape)
    kv.init(7, mx.nd.zeros(shape))
    kv.push(7, (rank + 1) * 10 + index % 17)
    out = mx.nd.zeros(shape)
    kv.pull(7, out=out)
    expected = size * (size + 1) // 2 * 10 + size * (index % 17)
    ok = bool((out == expected).asnumpy().all())
    print(f"worker {rank}/{size}: dist_sync push/pull {'OK' if ok else 'WRONG'}", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
