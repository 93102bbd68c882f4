"""Cloud masks of the cloudy S2 with s2cloudless, one scene at a time.

Parameters default to the authors' code (threshold 0.4, average_over 1, dilation_size 1); SEN12MS-CR's tooling
used average_over 4, dilation_size 2 (``configs/masks_sen12mscr.yaml``). Masks are stored bit-packed,
``mask.npy`` (n, 256*256/8) uint8 in the row order of the scene shard, beside ``cloud.parquet`` with the coverage
(masked pixels / all pixels) per patch.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from hcrlc.atomic import atomic_output
from hcrlc.data.fast_cloud import cloud_masks
from hcrlc.data.index import KEY
from hcrlc.data.shards import open_shard
from hcrlc.paper import PATCH_SIZE

log = logging.getLogger(__name__)

PACKED_BYTES = PATCH_SIZE * PATCH_SIZE // 8


def pack_masks(masks: np.ndarray) -> np.ndarray:
    """(n, H, W) bool -> (n, H*W/8) uint8."""
    return np.packbits(masks.reshape(len(masks), -1), axis=1)


def unpack_masks(packed: np.ndarray, size: int = PATCH_SIZE) -> np.ndarray:
    """(n, H*W/8) uint8 -> (n, H, W) bool."""
    return np.unpackbits(packed, axis=-1, count=size * size).reshape(*packed.shape[:-1], size, size).astype(bool)


def compute_scene_masks(
    shard_dir: str | Path,
    out_dir: str | Path,
    *,
    threshold: float,
    average_over: int,
    dilation_size: int,
    engine: str = "stock",
    batch: int = 16,
    progress: bool = True,
) -> pd.DataFrame:
    """Masks for every usable patch of a scene shard; rows that failed the scan get an empty mask and NaN coverage."""
    shard_dir, out_dir = Path(shard_dir), Path(out_dir)
    table = pd.read_parquet(shard_dir / "table.parquet")
    cloudy = open_shard(shard_dir, "s2_cloudy")
    n = len(table)
    ok_rows = table.loc[table["ok"].astype(bool), "row"].to_numpy(dtype=np.int64)
    packed = np.zeros((n, PACKED_BYTES), dtype=np.uint8)
    fraction = np.full(n, np.nan)
    bar = tqdm(total=len(ok_rows), desc=f"masks ({engine})", unit="patch", disable=not progress, mininterval=2)
    for start in range(0, len(ok_rows), batch):
        rows = ok_rows[start : start + batch]
        _, masks = cloud_masks(np.asarray(cloudy[rows]), threshold=threshold, average_over=average_over,
                               dilation_size=dilation_size, engine=engine)
        packed[rows] = pack_masks(masks)
        fraction[rows] = masks.reshape(len(rows), -1).mean(axis=1)
        bar.update(len(rows))
    bar.close()
    out = table[[*KEY, "row"]].assign(cloud_fraction=fraction)
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_output(out_dir / "mask.npy") as tmp:
        np.save(tmp, packed)
    with atomic_output(out_dir / "cloud.parquet") as tmp:
        out.to_parquet(tmp, index=False)
    log.info("%s: mean coverage %.3f over %d patches", shard_dir.name, np.nanmean(fraction) if len(ok_rows) else
             float("nan"), len(ok_rows))
    return out
