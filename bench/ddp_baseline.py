#!/usr/bin/python3
"""PyTorch DDP over Gloo, as a user runs it: the baseline of bench/distributed_bench.

The same LeNet as Chiron's recipe (src/worker/recipes/lenet.cc; bench/torch_baseline.py's model,
data reader and transform, u8 / 255), SGD lr 0.01 momentum 0.9, the same global batch
split over the ranks, Fashion-MNIST's training set split into one contiguous shard per rank
(as Chiron's nodes each hold their shard), each rank shuffling its own shard (DistributedSampler
would need every rank to hold the whole set). PyTorch's defaults otherwise (no OMP_WAIT_POLICY),
torch.set_num_threads(threads) per process. Clear text between the processes: Gloo has no TLS.

  /usr/bin/python3 bench/ddp_baseline.py --nodes 2 --threads 1 --epochs 1 --batch 64

Prints one line of JSON: img/s over the training loop (the slowest rank's wall time), test
accuracy on t10k, steps.
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_baseline import LeNet, accuracy, fashion_mnist, transform  # noqa: E402


def run(rank, args, port, results):
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    if args.nodes > 1:
        os.environ["MASTER_ADDR"] = "127.0.0.1"
        os.environ["MASTER_PORT"] = str(port)
        dist.init_process_group("gloo", rank=rank, world_size=args.nodes)
    images, labels = fashion_mnist("train", args.train_limit or None)
    lo = len(images) * rank // args.nodes
    hi = len(images) * (rank + 1) // args.nodes
    x = transform(images[lo:hi])
    y = labels[lo:hi]
    model = LeNet()
    if args.nodes > 1:
        model = nn.parallel.DistributedDataParallel(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    local_batch = args.batch // args.nodes + (1 if rank < args.batch % args.nodes else 0)
    # Every rank runs the same steps per epoch: the largest shard's (smaller ones wrap around).
    largest = max(len(images) * (j + 1) // args.nodes - len(images) * j // args.nodes
                  for j in range(args.nodes))
    steps = (largest + local_batch - 1) // local_batch
    generator = torch.Generator().manual_seed(args.seed + rank)
    if args.nodes > 1:
        dist.barrier()
    start = time.perf_counter()
    for _ in range(args.epochs):
        order = torch.randperm(len(x), generator=generator)
        order = order.repeat((steps * local_batch + len(order) - 1) // len(order))
        for step in range(steps):
            idx = order[step * local_batch:(step + 1) * local_batch]
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            optimizer.step()
    if args.nodes > 1:
        dist.barrier()
    seconds = time.perf_counter() - start
    if rank == 0:
        test_images, test_labels = fashion_mnist("t10k")
        net = model.module if args.nodes > 1 else model
        results.put({"images_per_second": steps * args.batch * args.epochs / seconds,
                     "seconds": seconds, "steps": steps * args.epochs,
                     "test_accuracy": accuracy(net, test_images, test_labels)})
    if args.nodes > 1:
        dist.destroy_process_group()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--train-limit", type=int, default=0)
    parser.add_argument("--port", type=int, default=29517)
    args = parser.parse_args()
    context = mp.get_context("spawn")
    results = context.SimpleQueue()
    if args.nodes == 1:
        run(0, args, args.port, results)
    else:
        processes = [context.Process(target=run, args=(r, args, args.port, results))
                     for r in range(args.nodes)]
        for p in processes:
            p.start()
        for p in processes:
            p.join()
        if any(p.exitcode != 0 for p in processes):
            sys.exit("ddp_baseline: a rank failed")
    print(json.dumps(results.get()))


if __name__ == "__main__":
    main()
