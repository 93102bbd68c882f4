"""Prediction on a large scene: seconds per megapixel and peak memory of ``hcrlc predict`` on the CPU.

Writes a ``--size`` × ``--size`` px Sentinel-2 L1C scene in UTM (s2cloudless's real 856 × 512 px test pixels,
mirrored to fill it; ``python benchmarks/cloud_masks.py --fetch`` downloads them once) and a synthetic S1 on a
lon/lat grid (30 m cells) covering it, both written strip by strip, then runs ``python -m hcrlc.cli predict`` on
them in a child process and reports its wall time, seconds per megapixel, the time per stage (from
``summary.json``) and its peak resident memory — beside what the whole scene would take as float32 arrays
(15 input + 13 output channels), which the windowed design avoids.

    python benchmarks/predict.py --checkpoint <workdir>/results/models/hcr_lc_uncertain/best.pt --size 5000

The checkpoint should be the demo model (config.yaml's hcr_lc_uncertain: widths 8 … 128); any best.pt works. A
model trained on coarser pixels than the scene's 10 m (the demo's 40 m scale model) predicts on a grid of its pixel
size: the time to average the inputs onto it is printed on its own line; Mpx are always the scene's 10 m pixels.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.transform import from_origin
from rasterio.warp import transform_bounds
from rasterio.windows import Window

from hcrlc.data.s2cloudless_scene import load_s2cloudless_scene
from hcrlc.demo_scene import DEMO_EPSG, DEMO_ORIGIN, demo_s1, write_geotiff
from hcrlc.paper import PIXEL_SIZE_M, S1_BANDS, S2_BANDS

#: Bytes per pixel if the whole scene were held as float32: 15 input channels and 13 reconstructed bands.
WHOLE_SCENE_FLOAT_BYTES = 4 * (S2_BANDS + S1_BANDS + S2_BANDS)


def mirrored(n: int, period: int) -> np.ndarray:
    """Indices 0 … n-1 folded into [0, period) by mirroring (0, 1, …, p-1, p-1, …, 0, 0, 1, …): no seams."""
    j = np.arange(n) % (2 * period)
    return np.where(j < period, j, 2 * period - 1 - j)


def write_big_scene(out_dir: Path, size: int, strip: int = 512) -> tuple[Path, Path]:
    """The benchmark's S2 (uint16, UTM, tiled + deflate) and S1 (float32 dB, EPSG:4326, 30 m cells)."""
    scene = load_s2cloudless_scene()[0]
    cols = mirrored(size, scene.shape[2])
    crs = CRS.from_epsg(DEMO_EPSG)
    transform = from_origin(*DEMO_ORIGIN, PIXEL_SIZE_M, PIXEL_SIZE_M)
    s2 = out_dir / "s2_l1c.tif"
    with rasterio.open(s2, "w", driver="GTiff", width=size, height=size, count=S2_BANDS, dtype="uint16", crs=crs,
                       transform=transform, tiled=True, compress="deflate", bigtiff="if_safer") as dst:
        for y in range(0, size, strip):
            rows = mirrored(size, scene.shape[1])[y:y + strip]
            dst.write(scene[:, rows][:, :, cols], window=Window(0, y, size, len(rows)))
    left, top = DEMO_ORIGIN
    bounds = transform_bounds(crs, "EPSG:4326", left, top - size * PIXEL_SIZE_M, left + size * PIXEL_SIZE_M, top,
                              densify_pts=21)
    s1, s1_transform = demo_s1(bounds, cell=3e-4, margin=3e-3)
    return s2, write_geotiff(out_dir / "s1_db.tif", s1, CRS.from_epsg(4326), s1_transform, nodata=-9999.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True, type=Path, help="a best.pt (the demo's hcr_lc_uncertain)")
    ap.add_argument("--size", type=int, default=2000, help="scene side in pixels (the README's figure: 5000)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--overlap", type=int, default=64)
    ap.add_argument("--tmp", type=Path, default=None, help="folder for the scene and outputs (default: a temp dir)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        s2, s1 = write_big_scene(tmp, args.size)
        print(f"scene: {args.size} x {args.size} px S2 (UTM) + S1 (EPSG:4326), written in "
              f"{time.perf_counter() - t0:.1f} s; S2 file {s2.stat().st_size / 1e6:.0f} MB")
        cmd = [sys.executable, "-m", "hcrlc.cli", "predict", "--checkpoint", str(args.checkpoint), "--s2", str(s2),
               "--s1", str(s1), "--out", str(tmp / "out"), "--threads", str(args.threads), "--batch-size",
               str(args.batch_size), "--overlap", str(args.overlap), "--device", "cpu", "--quiet"]
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, env=env)
        wall = time.perf_counter() - t0
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
        summary = json.loads((tmp / "out" / "summary.json").read_text())
        sizes = {p.name: p.stat().st_size / 1e6 for p in (tmp / "out").iterdir()}

    mpx = args.size * args.size / 1e6
    whole_mb = WHOLE_SCENE_FLOAT_BYTES * args.size * args.size / 2**20
    seconds = summary["seconds"]
    print(f"model {summary['model']} ({Path(args.checkpoint)}), {summary['windows']['count']} windows of "
          f"{summary['windows']['size']} px, overlap >= {args.overlap}, batch {args.batch_size}, "
          f"{args.threads} thread(s), CPU")
    if "resample" in seconds:  # a model of coarser pixels than the scene's 10 m: the inputs averaged onto its grid
        print(f"inputs averaged from 10 m onto the model's {summary['pixel_size_m']['model']:g} m grid "
              f"({summary['grid']['width']} x {summary['grid']['height']} px) in {seconds['resample']:.1f} s")
    print(f"wall {wall:.1f} s for {mpx:.1f} Mpx: {wall / mpx:.2f} s/Mpx  (cloud mask {seconds['cloud_mask']:.1f} s, "
          f"windows + cloud_free COG {seconds['windows']:.1f} s, quicklook {seconds['quicklook']:.1f} s, "
          f"startup and the rest {wall - seconds['total']:.1f} s)")
    print(f"peak RSS of the predict process: {peak_mb:.0f} MiB; the whole scene as float32 arrays would be "
          f"{whole_mb:.0f} MiB ({whole_mb / peak_mb:.1f}x)")
    print("outputs (MB): " + ", ".join(f"{k} {v:.1f}" for k, v in sorted(sizes.items())))


if __name__ == "__main__":
    main()
