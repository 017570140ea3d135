"""The digits model of digits.py trained with MXNet Gluon and a dist_sync kvstore (an MXJob: scheduler, servers and
workers wired by DMLC_* variables). The same split, data order, global batch split between the workers, model shape
and optimizer as digits.py; MXNet initialises the weights its own way, so the losses differ from the torch runs, the
accuracy does not. Worker 0 prints one line per epoch and the final test accuracy.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main(argv=None):
    import mxnet as mx  # the scheduler and server roles serve inside this import and return when the job is done

    if os.environ.get("DMLC_ROLE", "worker") != "worker":
        return 0
    import numpy as np

    from digits import load

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    kv = mx.kv.create("dist_sync" if "DMLC_PS_ROOT_URI" in os.environ else "local")
    rank, size = kv.rank, kv.num_workers
    share = args.batch // size
    mx.random.seed(args.seed)
    x_train, y_train, x_test, y_test = load(args.seed)
    net = mx.gluon.nn.Sequential()
    net.add(mx.gluon.nn.Dense(64, activation="relu"), mx.gluon.nn.Dense(10))
    net.initialize(mx.init.Xavier())
    # dist_sync sums the workers' gradients on the servers; step(batch) divides by the whole global batch
    trainer = mx.gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": args.lr, "momentum": 0.9}, kvstore=kv)
    loss_fn = mx.gluon.loss.SoftmaxCrossEntropyLoss()
    steps = len(y_train) // args.batch
    for epoch in range(args.epochs):
        order = np.random.default_rng(args.seed + 1 + epoch).permutation(len(y_train))
        total = 0.0
        for step in range(steps):
            mine = order[step * args.batch + rank * share:step * args.batch + (rank + 1) * share]
            data, label = mx.nd.array(x_train[mine]), mx.nd.array(y_train[mine])
            with mx.autograd.record():
                loss = loss_fn(net(data), label)
            loss.backward()
            trainer.step(args.batch)
            total += float(loss.mean().asscalar())
        if rank == 0:
            print(f"epoch {epoch + 1} loss {total / steps:.6f} (worker 0)", flush=True)
    predicted = net(mx.nd.array(x_test)).argmax(axis=1).asnumpy().astype(np.int64)
    accuracy = float((predicted == y_test).mean())
    print(f"worker {rank}: test accuracy {accuracy:.4f} ({size} workers)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
