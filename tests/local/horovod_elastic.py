"""An elastic Horovod training loop (torch): a linear model, one committed epoch every --seconds, each rank printing
`EPOCH e RANK r SIZE s` so a test sees the world grow and shrink, then `DONE r s` on every rank at the end. With
--until FILE it trains until that file exists (--epochs bounds it)."""

import argparse
import os
import time

import torch

import horovod.torch as hvd


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=0.2)
    parser.add_argument("--until", metavar="FILE", help="train until FILE exists (--epochs is then the bound)")
    args = parser.parse_args()
    hvd.init()
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    optimizer = hvd.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.01),
                                         named_parameters=model.named_parameters())

    @hvd.elastic.run
    def train(state):
        while state.epoch < args.epochs and not (args.until and state.stop):
            loss = model(torch.ones(8, 4)).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            print(f"EPOCH {state.epoch} RANK {hvd.rank()} SIZE {hvd.size()}", flush=True)
            time.sleep(args.seconds)
            state.epoch += 1
            # every rank must stop at the same epoch: rank 0 looks, all learn it from a broadcast
            seen = torch.tensor([int(hvd.rank() == 0 and bool(args.until) and os.path.exists(args.until))])
            state.stop = bool(hvd.broadcast(seen, root_rank=0, name="stop")[0])
            state.commit()

    state = hvd.elastic.TorchState(model, optimizer, epoch=0, stop=False)
    train(state)
    print(f"DONE {hvd.rank()} {hvd.size()}", flush=True)


if __name__ == "__main__":
    main()
