"""Cloud masks of the cloudy S2 with s2cloudless, one scene at a time.

Parameters default to the authors' code (threshold 0.4, average_over 1, dilation_size 1); SEN12MS-CR's tooling
used average_over 4, dilation_size 2 (``configs/masks_sen12mscr.yaml``). Masks are stored bit-packed,
``mask.npy`` (n, ceil(P*P/8)) uint8 in the row order of the scene shard (P = the shard's patch size, 256 for
SEN12MS: 8192 bytes a patch), beside ``cloud.parquet`` with, per patch, ``cloud_fraction`` (masked pixels / valid
pixels) and ``nodata_fraction`` (no-data pixels / all pixels).

A no-data pixel has all 13 bands of the cloudy S2 equal to 0 (the fill value outside a Sentinel-2 swath). It is
neither cloud nor clear: whatever s2cloudless says there is left out of the coverage, and the index excludes a
patch that is mostly no-data (``masks.max_nodata_fraction``).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from hcrlc.atomic import atomic_output
from hcrlc.data.fast_cloud import cloud_masks, scene_cloud_masks
from hcrlc.data.index import KEY
from hcrlc.data.shards import check_scene_shard, open_shard, shard_patch_px
from hcrlc.patch_geometry import patch_stride

log = logging.getLogger(__name__)


def packed_bytes(patch_px: int) -> int:
    """Bytes of one bit-packed ``patch_px`` x ``patch_px`` mask (8192 at SEN12MS's 256 px)."""
    return -(-patch_px * patch_px // 8)


def pack_masks(masks: np.ndarray) -> np.ndarray:
    """(n, H, W) bool -> (n, ceil(H*W/8)) uint8."""
    return np.packbits(masks.reshape(len(masks), -1), axis=1)


def unpack_masks(packed: np.ndarray, size: int | None = None) -> np.ndarray:
    """(..., ceil(P*P/8)) uint8 -> (..., P, P) bool. ``size`` P defaults to the one the row length gives: for an
    even P (every patch size, the stride being half of it) no other P packs into as many bytes."""
    if size is None:
        size = math.isqrt(packed.shape[-1] * 8)
    if packed.shape[-1] != packed_bytes(size):
        raise ValueError(f"a packed {size} x {size} px mask has {packed_bytes(size)} bytes, got {packed.shape[-1]}")
    return np.unpackbits(packed, axis=-1, count=size * size).reshape(*packed.shape[:-1], size, size).astype(bool)


def grid_positions(table: pd.DataFrame, stride_px: int) -> tuple[np.ndarray, np.ndarray]:
    """Grid row and column (in strides of ``stride_px``, half the patch size) of each patch from its upper-left
    corner (x0, y0, res).

    Row 0 is the northernmost patch. Patches off the stride grid get positions that will not overlap any other
    patch's pixels consistently; ``scene_cloud_masks`` then classifies them on their own (its fallback).
    """
    step = table["res"].to_numpy(dtype=np.float64) * stride_px
    col = np.round((table["x0"].to_numpy(dtype=np.float64) - table["x0"].min()) / step).astype(np.int64)
    row = np.round((table["y0"].max() - table["y0"].to_numpy(dtype=np.float64)) / step).astype(np.int64)
    return row, col


def _grid_row_bands(grid_rows: np.ndarray, band_rows: int) -> list[np.ndarray]:
    """Indices grouped into bands of ``band_rows`` consecutive grid rows (bounds the mosaic's memory)."""
    return [np.flatnonzero((grid_rows >= r) & (grid_rows < r + band_rows))
            for r in range(int(grid_rows.min()), int(grid_rows.max()) + 1, band_rows)] if grid_rows.size else []


def compute_scene_masks(
    shard_dir: str | Path,
    out_dir: str | Path,
    *,
    threshold: float,
    average_over: int,
    dilation_size: int,
    engine: str = "fast",
    band_rows: int = 8,
    threads: int = 1,
    progress: bool = True,
) -> pd.DataFrame:
    """Masks for every usable patch of a scene shard; rows that failed the scan get an empty mask and NaN coverage.

    Returns the ``cloud.parquet`` table: KEY, row, cloud_fraction, nodata_fraction (fractions in [0, 1]; see the
    module doc).

    engine "fast": patches of a scene overlap by half, so each ground pixel is classified once per band of
    ``band_rows`` grid rows (``scene_cloud_masks``), then averaged/thresholded/dilated per patch — identical to
    per-patch s2cloudless. engine "stock": s2cloudless itself, patch by patch (the reference).
    """
    shard_dir, out_dir = Path(shard_dir), Path(out_dir)
    n = check_scene_shard(shard_dir)  # complete arrays that agree with the table
    patch_px = shard_patch_px(shard_dir)
    table = pd.read_parquet(shard_dir / "table.parquet")
    cloudy = open_shard(shard_dir, "s2_cloudy")
    ok = table[table["ok"].astype(bool)]
    ok_rows = ok["row"].to_numpy(dtype=np.int64)
    packed = np.zeros((n, packed_bytes(patch_px)), dtype=np.uint8)
    fraction = np.full(n, np.nan)
    nodata = np.full(n, np.nan)
    params = {"threshold": threshold, "average_over": average_over, "dilation_size": dilation_size}
    if engine == "fast" and len(ok):
        stride = patch_stride(patch_px)
        grid_row, grid_col = grid_positions(ok, stride)
        groups = _grid_row_bands(grid_row, band_rows)
    else:
        groups = [np.arange(a, min(a + 16, len(ok_rows))) for a in range(0, len(ok_rows), 16)]
    bar = tqdm(total=len(ok_rows), desc=f"masks ({engine})", unit="patch", disable=not progress, mininterval=2)
    fallbacks = 0
    for group in groups:
        rows = ok_rows[group]
        dn = np.asarray(cloudy[rows])
        if engine == "fast":
            _, masks, info = scene_cloud_masks(dn, grid_row[group], grid_col[group], stride=stride,
                                               **params, threads=threads)
            fallbacks += info["fallback"]
        else:
            _, masks = cloud_masks(dn, **params, engine=engine, threads=threads)
        packed[rows] = pack_masks(masks)
        valid = dn.any(axis=1).reshape(len(rows), -1)  # (k, H*W): some band non-zero
        n_valid = valid.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):  # a patch without valid pixels has no coverage: NaN
            fraction[rows] = (masks.reshape(len(rows), -1) & valid).sum(axis=1) / n_valid
        nodata[rows] = 1.0 - n_valid / valid.shape[1]
        bar.update(len(rows))
    bar.close()
    if fallbacks:
        log.warning("%s: %d patches disagreed with their neighbours' overlap and were classified on their own",
                    shard_dir.name, fallbacks)
    out = table[[*KEY, "row"]].assign(cloud_fraction=fraction, nodata_fraction=nodata)
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_output(out_dir / "mask.npy") as tmp:
        np.save(tmp, packed)
    with atomic_output(out_dir / "cloud.parquet") as tmp:
        out.to_parquet(tmp, index=False)
    some_nodata = int((nodata[ok_rows] > 0).sum())
    log.info("%s: mean coverage %.3f over %d patches; %d hold no-data pixels", shard_dir.name,
             np.nanmean(fraction) if np.isfinite(fraction).any() else float("nan"), len(ok_rows), some_nodata)
    return out
