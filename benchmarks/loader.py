"""Loader throughput: per-sample GeoTIFF reading (as a loader over the raw trees does) vs our packed shards.

Both sides produce the same training sample (cloudy S2 + S1 input, clear S2 target, cloud mask, prepared as the
authors' code prepares them) for the same triplets, in one run, on one core. The baseline reads the three
GeoTIFFs of the triplet with rasterio and takes the cloud mask precomputed (the authors' own loader ran
s2cloudless per sample on top: ``--with-s2cloudless`` adds that, with our own fast engine to be generous).

    python benchmarks/loader.py --workdir <snakemake workdir with results/> [--n 64] [--epochs 3]

Also prints how many loader workers would sustain a given GPU training rate (``--gpu-rate`` samples/s, e.g. from
benchmarks/train_throughput.py on a lent GPU).
"""

from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path

import numpy as np
import rasterio
import torch
from torch.utils.data import default_collate

from hcrlc.data.clouds import unpack_masks
from hcrlc.data.dataset import TripletDataset, load_index, prepare_batch, prepare_s1, prepare_s2
from hcrlc.data.fast_cloud import cloud_masks


def geotiff_sample(row, mask: np.ndarray | None, with_s2cloudless: bool) -> dict[str, torch.Tensor]:
    with rasterio.open(row.s2_cloudy) as src:
        cloudy = src.read()
    with rasterio.open(row.s1) as src:
        s1 = src.read()
    with rasterio.open(row.s2) as src:
        clear = src.read()
    if with_s2cloudless:
        mask = cloud_masks(cloudy[None], engine="fast")[1][0]
    x = np.concatenate([prepare_s2(cloudy), prepare_s1(s1)], axis=0)
    return {"x": torch.from_numpy(x), "s2": torch.from_numpy(prepare_s2(clear)),
            "mask": torch.from_numpy(mask[None].astype(np.float32))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", type=Path, default=Path("."), help="snakemake workdir holding results/")
    ap.add_argument("--n", type=int, default=64, help="triplets per epoch")
    ap.add_argument("--epochs", type=int, default=3, help="timed passes (first pass warms the page cache)")
    ap.add_argument("--with-s2cloudless", action="store_true", help="baseline also computes the mask per sample")
    ap.add_argument("--gpu-rate", type=float, default=None, help="GPU training samples/s to sustain")
    args = ap.parse_args()
    torch.set_num_threads(1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    r = args.workdir / "results"
    frame = load_index(r / "data" / "index.parquet")
    frame = frame.iloc[np.random.default_rng(0).permutation(len(frame))[: args.n]].reset_index(drop=True)
    for kind in ("s1", "s2", "s2_cloudy"):  # the index keeps paths as the workflow saw them (workdir-relative)
        frame[kind] = [str(args.workdir / p) for p in frame[kind]]
    ours = TripletDataset(frame, r / "shards", r / "masks")
    masks = [unpack_masks(np.asarray(ours._arrays(ours._scene[i])["mask"][ours._row[i]])) for i in range(len(ours))]

    def run(fn) -> float:
        best = math.inf
        for _ in range(args.epochs):
            t = time.perf_counter()
            for i in range(len(frame)):
                fn(i)
            best = min(best, time.perf_counter() - t)
        return best

    # correctness first: both paths give the same sample
    for i in range(min(4, len(frame))):
        a, b = geotiff_sample(frame.iloc[i], masks[i], False), ours[i]
        for k in ("x", "s2", "mask"):
            assert torch.equal(a[k], b[k]), k

    n = len(frame)
    t_base = run(lambda i: geotiff_sample(frame.iloc[i], masks[i], args.with_s2cloudless))
    t_ours = run(lambda i: ours[i])

    # I/O alone (raw arrays, no preparation): what a loader worker must do when the batch is prepared on the GPU
    def read_tiffs(i: int) -> None:
        for kind in ("s2_cloudy", "s1", "s2"):
            with rasterio.open(frame.loc[i, kind]) as src:
                src.read()

    def read_packed(i: int) -> None:
        a = ours._arrays(ours._scene[i])
        for kind in ("s2_cloudy", "s1", "s2", "mask"):
            np.array(a[kind][ours._row[i]])

    t_io_base, t_io_ours = run(read_tiffs), run(read_packed)

    # what training uses: raw items in the loader workers, preparation per batch on the training device
    raw = TripletDataset(frame, r / "shards", r / "masks", raw=True)
    t_raw = run(lambda i: raw[i])
    batch = default_collate([raw[i] for i in range(min(16, n))])
    t = time.perf_counter()
    for _ in range(5):
        prepare_batch(batch)
    prep_cpu = (time.perf_counter() - t) / 5 / len(batch["idx"])
    base_rate, our_rate = n / t_base, n / t_ours
    label = "GeoTIFF per sample" + (" + s2cloudless (fast engine)" if args.with_s2cloudless else "")
    print(f"triplets: {n}, best of {args.epochs} passes, 1 thread")
    print(f"baseline ({label}): {t_base:.3f} s  {base_rate:8.1f} triplets/s per core")
    print(f"ours (packed shards, memory-mapped): {t_ours:.3f} s  {our_rate:8.1f} triplets/s per core")
    print(f"ratio: {t_base / t_ours:.1f}x")
    print(f"ours, raw items (the loader's share when batches are prepared on the GPU): {n / t_raw:8.1f} "
          f"triplets/s per core, ratio {t_base / t_raw:.1f}x; prepare_batch on this CPU: {1 / prep_cpu:.0f}/s")
    print(f"I/O only (raw arrays, preparation left to the GPU): GeoTIFF {n / t_io_base:.1f}/s, packed "
          f"{n / t_io_ours:.1f}/s per core, ratio {t_io_base / t_io_ours:.1f}x")
    if args.gpu_rate:
        need = math.ceil(args.gpu_rate * t_raw / n)
        print(f"to sustain {args.gpu_rate:.0f} samples/s: {need} loader worker(s) with packed shards, "
              f"{math.ceil(args.gpu_rate / base_rate)} with per-sample GeoTIFF reading")


if __name__ == "__main__":
    main()
