"""Cloud masks: stock s2cloudless against the fast engine (hcrlc.data.fast_cloud) on the same patches, one run.

Patches are 256 × 256 crops of s2cloudless's own real Sentinel-2 L1C test scene (856 × 512 px, 41 % cloudy;
``--fetch`` has pip download it once into ``~/.cache/hcrlc``): first the 15 patches a stride-128 grid cuts from
it, as SEN12MS cuts its scenes, then random crops (random offsets, flips, quarter turns) up to ``--n``.
``--synthetic G`` adds the G × G patches of one synthetic SEN12MS-CR scene (written by
:mod:`hcrlc.data.synthetic` as GeoTIFFs and read back).

For each patch set both engines compute probabilities and masks (``--preset``). It prints wall and CPU seconds,
patches/s per core (patches / CPU seconds, which stays meaningful on a machine shared with other jobs), the
ratio, the agreement (identical mask pixels, max |Δ cloud fraction|, max |Δ probability|) and the hours that
122,218 patches (SEN12MS-CR) would take on one core. Then the overlap lever: ``scene_cloud_masks`` classifies
each grid scene's mosaic once instead of four times per ground pixel.

    python benchmarks/cloud_masks.py --fetch
    python benchmarks/cloud_masks.py --n 64 --threads 1
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from hcrlc.data import fast_cloud as fc
from hcrlc.data.s2cloudless_scene import fetch_s2cloudless_scene, load_s2cloudless_scene
from hcrlc.paper import MASK_PRESETS, PATCH_SIZE, PATCH_STRIDE

SEN12MSCR_PATCHES = 122_218  # patch triplets in SEN12MS-CR [CR]


def real_patches(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` crops of the real test scene: the stride-128 grid first (with its rows and cols), then random ones."""
    scene = load_s2cloudless_scene()[0]
    _, h, w = scene.shape
    grid_h, grid_w = (h - PATCH_SIZE) // PATCH_STRIDE + 1, (w - PATCH_SIZE) // PATCH_STRIDE + 1
    grid = [divmod(i, grid_w) for i in range(min(n, grid_h * grid_w))]
    rng = np.random.default_rng(seed)
    patches = [scene[:, r * PATCH_STRIDE:r * PATCH_STRIDE + PATCH_SIZE, c * PATCH_STRIDE:c * PATCH_STRIDE + PATCH_SIZE]
               for r, c in grid]
    while len(patches) < n:
        y, x = rng.integers(0, h - PATCH_SIZE + 1), rng.integers(0, w - PATCH_SIZE + 1)
        crop = scene[:, y:y + PATCH_SIZE, x:x + PATCH_SIZE]
        crop = np.rot90(crop, k=int(rng.integers(4)), axes=(1, 2))
        patches.append(crop[:, :, ::-1] if rng.random() < 0.5 else crop)
    rows, cols = (np.array([g[i] for g in grid], dtype=np.int64) for i in (0, 1))
    return np.ascontiguousarray(np.stack(patches)), rows, cols


def synthetic_patches(grid: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The cloudy S2 of one synthetic SEN12MS-CR scene, read from the GeoTIFFs the synthetic module writes."""
    import rasterio

    from hcrlc.data.layout import sen12mscr_path
    from hcrlc.data.synthetic import generate_trees

    with tempfile.TemporaryDirectory() as tmp:
        table = generate_trees(f"{tmp}/ms", f"{tmp}/cr", scenes=[("spring", 1)], grid=grid, seed=seed,
                               only_in_one_tree=0)
        patches = []
        for row in table.itertuples():
            with rasterio.open(sen12mscr_path(f"{tmp}/cr", "s2_cloudy", row.season, row.scene, row.patch)) as src:
                patches.append(src.read())
    return np.stack(patches), table["row"].to_numpy(), table["col"].to_numpy()


def timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """(result, wall seconds, CPU seconds of this process)."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def agreement(masks: np.ndarray, reference: np.ndarray, probs: np.ndarray, ref_probs: np.ndarray) -> str:
    same = (masks == reference).mean() * 100
    frac = np.abs(masks.mean(axis=(1, 2)) - reference.mean(axis=(1, 2))).max()
    return (f"identical mask pixels {same:.4f} %, max |Δ cloud fraction| {frac:.2e}, "
            f"max |Δ probability| {np.abs(probs - ref_probs).max():.2e}")


def compare(name: str, patches: np.ndarray, args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, float]:
    """Stock vs fast on ``patches``; returns stock's probabilities and masks and the fast CPU s per patch."""
    n, params = len(patches), MASK_PRESETS[args.preset]
    print(f"\n== {name}: {n} patches of {patches.shape[2]}x{patches.shape[3]} px, preset {args.preset} {params}")
    (sp, sm), s_wall, s_cpu = timed(lambda: fc.cloud_masks(patches, **params, engine="stock", threads=args.threads))
    (fp, fm), f_wall, f_cpu = timed(lambda: fc.cloud_masks(patches, **params, engine="fast", kernel=args.kernel,
                                                           threads=args.threads))
    for label, wall, cpu in (("stock s2cloudless", s_wall, s_cpu), (f"fast ({args.kernel})", f_wall, f_cpu)):
        print(f"{label:>20}: {wall:8.2f} s wall, {cpu:8.2f} s CPU, {n / cpu:8.2f} patches/s per core, "
              f"{SEN12MSCR_PATCHES * cpu / n / 3600:7.2f} h for {SEN12MSCR_PATCHES:,} patches on one core")
    print(f"{'ratio':>20}: {s_cpu / f_cpu:.1f}x per core (CPU), {s_wall / f_wall:.1f}x wall")
    print(f"{'agreement':>20}: {agreement(fm, sm, fp, sp)}; mean cloud fraction {sm.mean():.3f}")
    return sp, sm, f_cpu / n


def overlap_lever(name: str, patches: np.ndarray, rows: np.ndarray, cols: np.ndarray, stock: tuple,
                  per_patch_cpu: float, args: argparse.Namespace) -> None:
    """scene_cloud_masks on a grid scene against per-patch fast (its CPU time) and per-patch stock (its masks)."""
    (sp, sm) = stock
    (probs, masks, info), wall, cpu = timed(lambda: fc.scene_cloud_masks(
        patches, rows, cols, PATCH_STRIDE, **MASK_PRESETS[args.preset], kernel=args.kernel, threads=args.threads))
    n = len(patches)
    print(f"\n== overlap lever, {name}: {n} patches, mosaic {info['mosaic_shape']}, "
          f"{info['pixels_classified'] / info['pixels_in_patches']:.2f} of the patch pixels classified, "
          f"{info['fallback']} fallback(s)")
    print(f"{'scene_cloud_masks':>20}: {wall:8.2f} s wall, {cpu:8.2f} s CPU, {n / cpu:8.2f} patches/s per core; "
          f"{per_patch_cpu * n / cpu:.1f}x per-patch fast")
    print(f"{'agreement':>20}: {agreement(masks, sm, probs, sp)} (vs per-patch stock)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=64, help="real patches (the first 15 form the grid scene)")
    parser.add_argument("--threads", type=int, default=1, help="threads for both engines")
    parser.add_argument("--preset", choices=sorted(MASK_PRESETS), default="authors")
    parser.add_argument("--kernel", default="auto", help="auto, avx512, avx2 or portable")
    parser.add_argument("--synthetic", type=int, default=0, metavar="G", help="add a synthetic G x G scene")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fetch", action="store_true", help="download the real test scene with pip, then exit")
    args = parser.parse_args()
    if args.fetch:
        print(fetch_s2cloudless_scene())
        return

    print(f"machine: {os.cpu_count()} cores, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
          "(CPU seconds are this process's; other jobs on the machine slow both engines alike)")
    (lib, wall, _) = timed(fc.kernel_library)
    if lib is None:
        raise SystemExit("no C compiler: the fast engine would only fall back to stock")
    cached = "loaded from cache" if lib.build_seconds == 0 else f"compiled in {lib.build_seconds:.2f} s"
    print(f"kernel: {lib.path} ({cached}; {wall:.2f} s), variants {lib.available}, 'auto' = {lib.best}")
    _, wall, _ = timed(fc.stock_forest)
    print(f"forest: parsed s2cloudless's booster in {wall:.2f} s (once per process)")
    warm = np.zeros((1, 13, 8, 8), dtype=np.uint16)  # load the booster / detectors before timing
    fc.cloud_masks(warm, engine="stock")
    fc.cloud_masks(warm, engine="fast")

    patches, rows, cols = real_patches(args.n, args.seed)
    stock_probs, stock_masks, fast_cpu = compare("real S2 (s2cloudless test scene)", patches, args)
    if len(rows) > 1:
        k = len(rows)
        overlap_lever(f"the test scene's {k}-patch grid", patches[:k], rows, cols,
                      (stock_probs[:k], stock_masks[:k]), fast_cpu, args)
    if args.synthetic:
        patches, rows, cols = synthetic_patches(args.synthetic, args.seed)
        stock_probs, stock_masks, fast_cpu = compare("synthetic SEN12MS-CR scene", patches, args)
        overlap_lever("the synthetic scene", patches, rows, cols, (stock_probs, stock_masks), fast_cpu, args)


if __name__ == "__main__":
    main()
