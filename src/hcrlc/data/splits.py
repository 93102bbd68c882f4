"""The paper's split: SEN12MS hold-out scenes -> test, the rest -> train, a seeded fraction of train -> val."""

from __future__ import annotations

import numpy as np
import pandas as pd

from hcrlc.paper import HOLDOUT_SCENES


def is_holdout(season: str, scene: int) -> bool:
    """Whether a SEN12MS scene is one of the official hold-out (test) scenes."""
    return int(scene) in HOLDOUT_SCENES[season]


def assign_split(keys: pd.DataFrame, val_fraction: float, seed: int) -> pd.Series:
    """Split label per row of ``keys`` (columns season, scene, patch).

    Validation is round(val_fraction * n_train) patches drawn without replacement by a seeded generator over the
    train patches sorted by (season, scene, patch), so the draw does not depend on row order or on the file system.
    """
    holdout = np.array([is_holdout(s, c) for s, c in zip(keys["season"], keys["scene"])], dtype=bool)
    split = pd.Series(np.where(holdout, "test", "train"), index=keys.index, dtype=object)
    train = keys.loc[~holdout].sort_values(["season", "scene", "patch"])
    n_val = round(val_fraction * len(train))
    if n_val:
        rng = np.random.default_rng(seed)
        chosen = rng.choice(len(train), size=n_val, replace=False)
        split.loc[train.index[chosen]] = "val"
    return split
