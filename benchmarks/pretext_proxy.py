"""Is the pretext learnable from a tree? A small CNN on downsampled pretext items, as a diagnostic.

The pretext network (the authors' classification part) has to relate the cloudy S2 to the S1 of a neighbour
shifted by 128 px. This script asks the easier question of whether the *data* carry the direction: it takes the
items of :func:`hcrlc.selfsup.pretext_datasets` (the workflow's own anchors, neighbours and validation pairs),
average-pools them by ``--downsample``, and trains a 5-conv CNN with BatchNorm and global pooling on them,
printing train loss and validation accuracy (chance 0.25) every few epochs. It is not part of the workflow.

    python benchmarks/pretext_proxy.py --results /tmp/pretext_check/results --downsample 4 --epochs 60

``--results`` is a finished run's ``results/`` (``configs/pretext_check.yaml`` makes one with ~600 anchors; the
demo's has 97). Measured numbers: docs/demo.md, "The pretext and Fig. 4".
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hcrlc.pretext import neighbour_pairs
from hcrlc.selfsup import pretext_datasets


def cached_pairs(ds, factor: int) -> tuple[torch.Tensor, torch.Tensor, list[tuple[int, int, int]]]:
    """Downsampled cloudy S2 and S1 of every row of ``ds``'s frame, and its (anchor, direction, neighbour) pairs."""
    t = ds.triplets
    pool = lambda a: F.avg_pool2d(torch.from_numpy(a)[None], factor)[0]
    s2 = torch.stack([pool(t.cloudy_s2(i)) for i in range(len(t))])
    s1 = torch.stack([pool(t.s1(i)) for i in range(len(t))])
    rows, directions = neighbour_pairs(np.unique(ds.anchors), ds.neighbours)
    pairs = [(int(a), int(d), int(ds.neighbours[a, d])) for a, d in zip(rows, directions)]
    return s2, s1, pairs


def proxy_net() -> nn.Module:
    def block(a: int, b: int) -> list[nn.Module]:
        return [nn.Conv2d(a, b, 3, padding=1), nn.BatchNorm2d(b), nn.ReLU(), nn.MaxPool2d(2)]

    return nn.Sequential(*block(15, 16), *block(16, 32), *block(32, 64), *block(64, 64),
                         nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(64, 4))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", required=True, help="a finished run's results/ folder")
    ap.add_argument("--downsample", type=int, default=4, help="average-pooling factor (1 = full resolution)")
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--every", type=int, default=10, help="print every N epochs")
    args = ap.parse_args()
    torch.manual_seed(0)
    r = args.results
    train_ds, val_ds = pretext_datasets(f"{r}/data/index.parquet", f"{r}/shards", f"{r}/masks", seed=0)
    s2, s1, train_pairs = cached_pairs(train_ds, args.downsample)
    s2v, s1v, val_pairs = cached_pairs(val_ds, args.downsample)
    x_val = torch.stack([torch.cat([s2v[a], s1v[n]]) for a, _, n in val_pairs])
    y_val = torch.tensor([d for _, d, _ in val_pairs])
    options: dict[int, list[tuple[int, int]]] = {}
    for a, d, n in train_pairs:
        options.setdefault(a, []).append((d, n))
    anchors = sorted(options)
    print(f"{len(anchors)} train anchors ({len(train_pairs)} pairs), {len(val_pairs)} validation pairs, "
          f"inputs {tuple(x_val.shape[1:])}; chance 0.25", flush=True)
    net, rng, start = proxy_net(), np.random.default_rng(0), time.perf_counter()
    opt = torch.optim.Adam(net.parameters(), args.lr)
    for epoch in range(1, args.epochs + 1):
        net.train()
        losses = []
        order = rng.permutation(len(anchors))
        for k in range(0, len(order), args.batch_size):
            draws = [options[anchors[j]][rng.integers(len(options[anchors[j]]))] for j in order[k:k + args.batch_size]]
            x = torch.stack([torch.cat([s2[anchors[j]], s1[n]]) for j, (_, n) in zip(order[k:], draws)])
            loss = F.cross_entropy(net(x), torch.tensor([d for d, _ in draws]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        if epoch % args.every == 0 or epoch in (1, args.epochs):
            net.eval()
            with torch.no_grad():
                acc = (net(x_val).argmax(1) == y_val).float().mean().item()
            print(f"epoch {epoch:4d}  train loss {np.mean(losses):.3f}  val accuracy {acc:.3f}  "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
