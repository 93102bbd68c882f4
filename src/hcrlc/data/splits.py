"""The paper's split: SEN12MS hold-out scenes -> test, the rest -> train, a seeded part of train -> val.

Validation is drawn in one of two ways (config ``split.val_mode``):

* ``scenes`` (the authors' code [A]): whole training scenes, so that no validation patch shares pixels with a
  training patch. SEN12MS patches overlap by 50 % (stride 128 px, 256 px patches; the synthetic tree's, at any
  size, too): a patch drawn alone for validation shares pixels with up to eight training neighbours, and the
  best-checkpoint choice is then made on partly seen data.
* ``patches`` (the paper's text, "a fixed 10 % random sub-set of the training split"): single patches.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from hcrlc.errors import ConfigError
from hcrlc.paper import HOLDOUT_SCENES

log = logging.getLogger(__name__)

VAL_MODES: tuple[str, ...] = ("patches", "scenes")
_SCENE = ["season", "scene"]


def is_holdout(season: str, scene: int) -> bool:
    """Whether a SEN12MS scene is one of the official hold-out (test) scenes."""
    return int(scene) in HOLDOUT_SCENES[season]


def assign_split(keys: pd.DataFrame, val_fraction: float, seed: int, *, mode: str) -> pd.Series:
    """Split label per row of ``keys`` (columns season, scene, patch).

    ``mode`` ``patches``: round(val_fraction * n) of the n train+val patches, drawn without replacement.
    ``mode`` ``scenes``: whole train+val scenes in a seeded random order until at least val_fraction * n patches
    are in val; no scene is in both. Either draw runs over patches (scenes) sorted by (season, scene, patch), so it
    does not depend on row order or on the file system.

    Raises:
        ConfigError: unknown ``mode``; ``scenes`` would have to take every training scene.
    """
    if mode not in VAL_MODES:
        raise ConfigError(f"split.val_mode must be one of {list(VAL_MODES)}, got {mode!r}")
    holdout = np.array([is_holdout(s, c) for s, c in zip(keys["season"], keys["scene"])], dtype=bool)
    split = pd.Series(np.where(holdout, "test", "train"), index=keys.index, dtype=object)
    train = keys.loc[~holdout].sort_values(["season", "scene", "patch"])
    target = val_fraction * len(train)
    rng = np.random.default_rng(seed)
    if mode == "patches":
        n_val = round(target)
        if n_val:
            split.loc[train.index[rng.choice(len(train), size=n_val, replace=False)]] = "val"
        return split
    if target <= 0:
        return split
    sizes = train.groupby(_SCENE, sort=True).size()
    order = rng.permutation(len(sizes))
    n_scenes = int(np.searchsorted(np.cumsum(sizes.to_numpy()[order]), target)) + 1  # first prefix >= target
    if n_scenes >= len(sizes):
        raise ConfigError(
            f"split.val_mode scenes: {val_fraction:g} of the {len(train)} train+val patches needs all "
            f"{len(sizes)} training scene(s) in validation, leaving none to train on. Fix: lower "
            "split.val_fraction, or set split.val_mode: patches"
        )
    chosen = sizes.index[order[:n_scenes]]
    in_val = pd.MultiIndex.from_frame(train[_SCENE]).isin(chosen)
    split.loc[train.index[in_val]] = "val"
    log.info("validation: %d of %d training scenes, %d of %d train+val patches (%.1f %%; split.val_fraction %g): %s",
             n_scenes, len(sizes), int(in_val.sum()), len(train), 100 * in_val.mean(), val_fraction,
             ", ".join(f"{s}_{c}" for s, c in sorted(chosen)))
    return split


def count_val_overlapping_train(index: pd.DataFrame) -> int:
    """Number of validation patches that share at least one pixel with a training patch of the same scene.

    index: columns season, scene, split, crs, x0, y0 (upper-left corner, CRS units), res (pixel size, CRS units)
    and patch_px (patch side, px), as in ``index.parquet``. Two P px patches share pixels when their corners are
    less than P px apart along both axes (half a pixel of slack absorbs float noise in the georeferencing).
    """
    n = 0
    for _, group in index[index["split"].isin(["train", "val"])].groupby([*_SCENE, "crs"], sort=False):
        val, train = group[group["split"] == "val"], group[group["split"] == "train"]
        if val.empty or train.empty:
            continue
        reach = ((val["patch_px"].to_numpy(dtype=np.float64) - 0.5) * val["res"].to_numpy(dtype=np.float64))[:, None]
        dx = np.abs(val["x0"].to_numpy(dtype=np.float64)[:, None] - train["x0"].to_numpy(dtype=np.float64)[None])
        dy = np.abs(val["y0"].to_numpy(dtype=np.float64)[:, None] - train["y0"].to_numpy(dtype=np.float64)[None])
        n += int(((dx < reach) & (dy < reach)).any(axis=1).sum())
    return n
