#!/usr/bin/python3
"""PyTorch as a user runs it: the baseline of Chiron's training and prediction benches.

Debian's python3-torch (1.13, the same libtorch as Chiron's worker) with its defaults: no
OMP_WAIT_POLICY, no GOMP_SPINCOUNT, only torch.set_num_threads(THREADS). The model is the
built-in "lenet" recipe (src/worker/recipes/lenet.cc) written in Python: conv 5x5 x20, max-pool,
conv 5x5 x50, max-pool, fc 500, fc 10; input u8 pixels / 255; mean cross-entropy; SGD lr 0.01
momentum 0.9; batch 64. Batches are gathered from tensors in memory with index_select (the
fastest way in plain PyTorch; a DataLoader over a per-sample Dataset is slower).

Call it as /usr/bin/python3 (a python3 on PATH may not see Debian's packages). Two modes:

  torch_baseline.py serve --threads N --train-limit N --batches FILE
      Driven by build/bin/train_bench over stdin/stdout, one command a line, one reply a line:
        params FILE            load the initial parameters (float32, the tensors in registration
                               order, unpadded) -> "ok"
        train FIRST END        run batches [FIRST, END) of the batch file -> "seconds S"
        accuracy               test-set accuracy -> "accuracy A"
        predict1 N             N one-image forwards, the first dropped -> "micros T1 T2 ..."
        batched CHUNK          the test set in calls of CHUNK images -> "rate IMAGES_PER_SECOND"
        quit
      The batch file: u64 batch count B, u64 offsets[B + 1], u32 indices[offsets[B]].

  torch_baseline.py epoch --threads N [--epochs N] [--validation-fraction F] [--seed N]
      What `chiron train --recipe lenet --epochs 1` does, timed as a whole command: read
      Fashion-MNIST's 60,000 training images, hold out a seeded 10 % (54,000 train / 6,000
      validation), train one epoch in shuffled batches of 64, evaluate the validation split,
      print the figures.
"""

import argparse
import gzip
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DATA = "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, count = struct.unpack(">II", data[:8])
    if magic == 0x803:
        rows, cols = struct.unpack(">II", data[8:16])
        return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(count, rows * cols)
    if magic == 0x801:
        return np.frombuffer(data, dtype=np.uint8, offset=8).astype(np.int64)
    raise ValueError(f"{path}: not an IDX image or label file")


def fashion_mnist(split, limit=None):
    images = read_idx(f"{DATA}/{split}-images-idx3-ubyte.gz")
    labels = read_idx(f"{DATA}/{split}-labels-idx1-ubyte.gz")
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.copy())


class LeNet(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 20, 5)
        self.conv2 = nn.Conv2d(20, 50, 5)
        self.fc1 = nn.Linear(50 * 4 * 4, 500)
        self.fc2 = nn.Linear(500, classes)

    def forward(self, x):
        x = x.reshape(x.size(0), 1, 28, 28)
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.relu(self.fc1(x.flatten(1)))
        return self.fc2(x)


def transform(pixels):
    return pixels.to(torch.float32).div_(255.0)


def train_batches(model, optimizer, images, labels, batches):
    model.train()
    for index in batches:
        x = transform(images.index_select(0, index))
        y = labels.index_select(0, index)
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()


def accuracy(model, images, labels, chunk=500):
    model.eval()
    correct = 0
    with torch.no_grad():
        for at in range(0, images.size(0), chunk):
            logits = model(transform(images[at:at + chunk]))
            correct += int(logits.argmax(1).eq(labels[at:at + chunk]).sum())
    return correct / images.size(0)


def serve(args):
    torch.set_num_threads(args.threads)
    images, labels = fashion_mnist("train", args.train_limit)
    test_images, test_labels = fashion_mnist("t10k")
    with open(args.batches, "rb") as f:
        count = struct.unpack("<Q", f.read(8))[0]
        offsets = np.frombuffer(f.read(8 * (count + 1)), dtype="<u8")
        indices = np.frombuffer(f.read(4 * int(offsets[-1])), dtype="<u4").astype(np.int64)
    batches = [torch.from_numpy(indices[offsets[b]:offsets[b + 1]].copy()) for b in range(count)]
    torch.manual_seed(1)
    model = LeNet()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    reply = lambda text: (sys.stdout.write(text + "\n"), sys.stdout.flush())
    reply("ready")
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "params":
            flat = torch.from_numpy(np.fromfile(words[1], dtype="<f4"))
            with torch.no_grad():
                at = 0
                for p in model.parameters():
                    p.copy_(flat[at:at + p.numel()].reshape(p.shape))
                    at += p.numel()
            reply("ok" if at == flat.numel() else "error parameter count")
        elif words[0] == "train":
            first, end = int(words[1]), int(words[2])
            start = time.perf_counter()
            train_batches(model, optimizer, images, labels, batches[first:end])
            reply(f"seconds {time.perf_counter() - start:.6f}")
        elif words[0] == "accuracy":
            reply(f"accuracy {accuracy(model, test_images, test_labels):.6f}")
        elif words[0] == "predict1":
            model.eval()
            one = test_images[:1]
            times = []
            with torch.no_grad():
                for i in range(int(words[1])):
                    start = time.perf_counter()
                    model(transform(one))
                    if i > 0:
                        times.append((time.perf_counter() - start) * 1e6)
            reply("micros " + " ".join(f"{t:.1f}" for t in times))
        elif words[0] == "batched":
            chunk = int(words[1])
            model.eval()
            start = time.perf_counter()
            done = 0
            with torch.no_grad():
                for at in range(0, test_images.size(0) - chunk + 1, chunk):
                    model(transform(test_images[at:at + chunk]))
                    done += chunk
            reply(f"rate {done / (time.perf_counter() - start):.1f}")
        elif words[0] == "quit":
            return
        else:
            reply("error unknown command")


def epoch(args):
    start = time.perf_counter()
    torch.set_num_threads(args.threads)
    images, labels = fashion_mnist("train")
    generator = torch.Generator().manual_seed(args.seed)
    order = torch.randperm(images.size(0), generator=generator)
    held_out = int(args.validation_fraction * images.size(0))
    validation, train = order[:held_out].sort().values, order[held_out:].sort().values
    train_images, train_labels = images[train], labels[train]
    validation_images, validation_labels = images[validation], labels[validation]
    torch.manual_seed(args.seed)
    model = LeNet()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    trained = 0.0
    for e in range(args.epochs):
        t = time.perf_counter()
        batches = torch.randperm(train_images.size(0), generator=generator).split(64)
        train_batches(model, optimizer, train_images, train_labels, batches)
        trained += time.perf_counter() - t
        print(f"epoch {e + 1}: validation accuracy "
              f"{accuracy(model, validation_images, validation_labels):.4f}")
    print(f"{train_images.size(0)} train / {validation_images.size(0)} validation images, "
          f"{args.threads} thread(s): training {train_images.size(0) * args.epochs / trained:.0f} "
          f"img/s, whole script {time.perf_counter() - start:.2f} s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--threads", type=int, default=2)
    s.add_argument("--train-limit", type=int, default=60000)
    s.add_argument("--batches", required=True)
    e = sub.add_parser("epoch")
    e.add_argument("--threads", type=int, default=2)
    e.add_argument("--epochs", type=int, default=1)
    e.add_argument("--validation-fraction", type=float, default=0.1)
    e.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    serve(args) if args.mode == "serve" else epoch(args)


if __name__ == "__main__":
    main()
