"""The mask stage through Snakemake on real-pixel scenes: stock s2cloudless against the fast engine, end to end.

Writes (once, under ``--tree``) a SEN12MS + SEN12MS-CR tree in the real layout with :mod:`hcrlc.data.synthetic`
(``--grid`` × ``--grid`` patches per scene, stride 128 px, the last ``--drop`` cloudy S2 files removed so a scene
holds ``grid² − drop`` triplets: 12² − 12 = 132 by default), then overwrites every cloudy S2 GeoTIFF's pixels with
real Sentinel-2 L1C pixels: s2cloudless's own test scene (``python benchmarks/cloud_masks.py --fetch``), mirrored
to cover the scene and cut with the same stride, so overlapping patches agree as SEN12MS's do. Then runs
``snakemake masks --cores 1`` twice in fresh workdirs, ``masks.engine`` fast and stock, and compares the mask
jobs' own Snakemake benchmark records (``results/benchmarks/masks/{scene}.tsv``: the whole job, interpreter
start-up and imports included) and the ``cloud_fraction`` of every patch (must be identical).

    python benchmarks/mask_stage.py --tree /tmp/mask_stage        # bar: >= 20x stock, identical cloud fractions
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import rasterio
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from hcrlc.data import fast_cloud as fc
from hcrlc.data.layout import sen12mscr_path
from hcrlc.data.synthetic import generate_trees
from hcrlc.paper import PATCH_SIZE, PATCH_STRIDE


def write_tree(tree: Path, scenes: list[tuple[str, int]], grid: int, drop: int) -> None:
    """The synthetic tree with real cloudy-S2 pixels (see the module doc); skipped when ``tree`` exists."""
    if (tree / "done").is_file():
        return
    shutil.rmtree(tree, ignore_errors=True)
    table = generate_trees(tree / "SEN12MS", tree / "SEN12MS-CR", scenes=scenes, grid=grid, seed=0,
                           only_in_one_tree=0)
    real = fc.load_s2cloudless_scene()[0]  # (13, 856, 512) uint16
    size = (grid + 1) * PATCH_STRIDE
    pad = [(0, 0), (0, max(0, size - real.shape[1])), (0, max(0, size - real.shape[2]))]
    mosaic = np.pad(real, pad, mode="symmetric")[:, :size, :size]  # mirrored: real pixels, no seams of nonsense
    for (season, scene), rows in table.groupby(["season", "scene"]):
        for row in rows.sort_values(["row", "col"]).itertuples():
            path = sen12mscr_path(tree / "SEN12MS-CR", "s2_cloudy", season, scene, row.patch)
            y, x = row.row * PATCH_STRIDE, row.col * PATCH_STRIDE
            with rasterio.open(path, "r+") as dst:
                dst.write(mosaic[:, y:y + PATCH_SIZE, x:x + PATCH_SIZE])
        for row in rows.sort_values("patch").tail(drop).itertuples():
            sen12mscr_path(tree / "SEN12MS-CR", "s2_cloudy", season, scene, row.patch).unlink()
    (tree / "done").write_text("ok\n")


def run_masks(tree: Path, work: Path, engine: str) -> tuple[float, pd.DataFrame, pd.DataFrame]:
    """``snakemake masks`` in a fresh ``work`` with ``engine``; (wall s, per-scene job benchmarks, cloud table)."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    overlay = work / "overlay.yaml"
    overlay.write_text(yaml.safe_dump({"data": {"sen12ms": str(tree / "SEN12MS"), "sen12mscr": str(tree / "SEN12MS-CR")},
                                       "masks": {"engine": engine}}))
    cmd = [sys.executable, "-m", "snakemake", "masks", "-s", str(REPO / "Snakefile"), "-d", str(work), "--cores", "1",
           "--configfile", str(overlay), "--quiet", "rules"]
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    t = time.perf_counter()
    subprocess.run(cmd, check=True, env=env)
    wall = time.perf_counter() - t
    bench = pd.concat([pd.read_csv(p, sep="\t").assign(scene=p.stem)
                       for p in sorted((work / "results" / "benchmarks" / "masks").glob("*.tsv"))])
    cloud = pd.concat([pd.read_parquet(p) for p in sorted((work / "results" / "masks").glob("*/cloud.parquet"))])
    return wall, bench, cloud.sort_values(["season", "scene", "patch"]).reset_index(drop=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tree", type=Path, default=Path("/tmp/mask_stage"))
    ap.add_argument("--grid", type=int, default=12)
    ap.add_argument("--drop", type=int, default=12, help="cloudy S2 files removed per scene")
    ap.add_argument("--scenes", nargs="+", default=["spring_1"], help="season_scene names")
    args = ap.parse_args()
    scenes = [(s.split("_")[0], int(s.split("_")[1])) for s in args.scenes]
    write_tree(args.tree, scenes, args.grid, args.drop)
    out = {}
    for engine in ("stock", "fast"):
        out[engine] = run_masks(args.tree, args.tree / f"work_{engine}", engine)
    (_, b_stock, c_stock), (_, b_fast, c_fast) = out["stock"], out["fast"]
    n = int(c_fast["cloud_fraction"].notna().sum())
    print(f"machine: {os.cpu_count()} cores, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"scenes {args.scenes}: {n} patches with masks, real S2 L1C pixels; the mask jobs as Snakemake records "
          "them (whole job: interpreter, imports, reading, masks, writing)")
    for engine, (wall, bench, _) in out.items():
        print(f"  {engine:>5}: jobs {bench['s'].sum():8.2f} s wall, {bench['cpu_time'].sum():8.2f} s CPU, "
              f"{n / bench['cpu_time'].sum():7.2f} patches per CPU-s; whole snakemake run (listing, shards, masks) "
              f"{wall:.1f} s")
    print(f"  ratio: {b_stock['cpu_time'].sum() / b_fast['cpu_time'].sum():.1f}x per CPU-s, "
          f"{b_stock['s'].sum() / b_fast['s'].sum():.1f}x wall")
    same = c_stock["cloud_fraction"].equals(c_fast["cloud_fraction"])
    print(f"  cloud fractions identical: {same} (mean {c_fast['cloud_fraction'].mean():.3f}, "
          f"max |Δ| {np.nanmax(np.abs(c_stock['cloud_fraction'] - c_fast['cloud_fraction'])):.1e})")
    if not same:
        raise SystemExit("cloud fractions differ")


if __name__ == "__main__":
    main()
