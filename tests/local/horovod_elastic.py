"""An elastic Horovod training loop (torch): a linear model, one committed epoch every --seconds, each rank printing
`EPOCH e RANK r SIZE s` so a test sees the world grow and shrink, then `DONE r s` on every rank at the end."""

import argparse
import time

import torch

import horovod.torch as hvd


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=0.2)
    args = parser.parse_args()
    hvd.init()
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    optimizer = hvd.DistributedOptimizer(torch.optim.SGD(model.parameters(), lr=0.01),
                                         named_parameters=model.named_parameters())

    @hvd.elastic.run
    def train(state):
        while state.epoch < args.epochs:
            loss = model(torch.ones(8, 4)).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            print(f"EPOCH {state.epoch} RANK {hvd.rank()} SIZE {hvd.size()}", flush=True)
            time.sleep(args.seconds)
            state.epoch += 1
            state.commit()

    state = hvd.elastic.TorchState(model, optimizer, epoch=0)
    train(state)
    print(f"DONE {hvd.rank()} {hvd.size()}", flush=True)


if __name__ == "__main__":
    main()
