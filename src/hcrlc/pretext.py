"""Self-supervised pretext data (paper §4): which neighbour of the cloudy S2 patch is the paired S1 patch?

SEN12MS patches are cut with a stride of half a patch (128 px for its 256 px patches; the synthetic tree is cut the
same way at any patch size), so each patch has up to four neighbours that overlap it by 50 %: north, west, south
and east. The pretext sample for a cloudy S2 patch pairs it with the S1 of one of them; the label is the direction
(0 N, 1 W, 2 S, 3 E). Neighbours are found from the georeferencing — same scene and CRS, upper-left corner offset
by exactly one stride (half the data's own patch size, ``patch_px / 2`` pixels) in x or y — never from patch
numbers, so it works on the real trees. No land-cover label is used.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from hcrlc.data.dataset import TripletDataset
from hcrlc.errors import ConfigError
from hcrlc.patch_geometry import patch_stride

log = logging.getLogger(__name__)

DIRECTIONS: tuple[str, ...] = ("north", "west", "south", "east")
#: (dx, dy) of each neighbour's upper-left corner in strides; map y grows northwards, rows southwards.
_OFFSETS = {"north": (0, 1), "west": (-1, 0), "south": (0, -1), "east": (1, 0)}


def find_neighbours(frame: pd.DataFrame, tolerance: float = 1e-3) -> np.ndarray:
    """(N, 4) row numbers of each patch's N, W, S, E neighbour in ``frame`` (-1 where there is none).

    frame: columns season, scene, crs, x0, y0 (upper-left corner, CRS units), res (pixel size, CRS units) and
    patch_px (patch side, px), as ``index.parquet`` has them. A neighbour must be in the same season, scene and
    CRS, and its corner must be offset by exactly one stride, ``patch_px / 2 * res`` (within ``tolerance`` CRS
    units), along one axis and 0 along the other.
    """
    out = np.full((len(frame), len(DIRECTIONS)), -1, dtype=np.int64)
    for _, group in frame.reset_index(drop=True).groupby(["season", "scene", "crs"], sort=False):
        rows = group.index.to_numpy()
        x0, y0, res = (group[c].to_numpy(dtype=np.float64) for c in ("x0", "y0", "res"))
        px = group["patch_px"].to_numpy(dtype=np.int64)
        stride = np.zeros(len(px))
        for size in np.unique(px):  # one size per tree (the index checks it); any even size works here
            stride[px == size] = patch_stride(int(size))
        for d, direction in enumerate(DIRECTIONS):
            dx, dy = _OFFSETS[direction]
            # pairwise within the scene: scenes hold at most a few thousand patches
            tx = x0 + dx * stride * res
            ty = y0 + dy * stride * res
            hit = (np.abs(x0[None, :] - tx[:, None]) <= tolerance) & (np.abs(y0[None, :] - ty[:, None]) <= tolerance)
            hit &= (np.abs(res[None, :] - res[:, None]) <= 1e-9) & (px[None, :] == px[:, None])
            has = hit.any(axis=1)
            out[rows[has], d] = rows[hit[has].argmax(axis=1)]
    return out


def neighbour_pairs(anchors: np.ndarray, neighbours: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every (anchor, direction) pair whose neighbour exists: anchor rows and directions, anchor-major.

    anchors: distinct rows; neighbours: :func:`find_neighbours`' (N, 4) array. The neighbour of pair k is
    ``neighbours[rows[k], directions[k]]``.
    """
    anchors = np.asarray(anchors)
    index, directions = np.nonzero(neighbours[anchors] >= 0)
    return anchors[index], directions


def nested_label_subsets(n: int, fractions: list[int], seed: int) -> dict[int, np.ndarray]:
    """Rows of the labelled training split kept for each label fraction (percent), nested: 25 % ⊂ 50 % ⊂ ….

    One seeded permutation; fraction f keeps its first round(f/100 · n) rows (at least one), sorted.
    """
    order = np.random.default_rng(seed).permutation(n)
    return {f: np.sort(order[: max(1, round(f / 100 * n))]) for f in sorted(fractions)}


class PretextDataset(Dataset):
    """Pretext samples over a frame of patches (no labels used).

    Item: ``x`` (15, H, W) = the patch's 13 cloudy S2 bands then the 2 S1 bands of one neighbour, prepared as
    :class:`TripletDataset` prepares them; ``y`` () int64 direction (0 N, 1 W, 2 S, 3 E). The direction is drawn
    among the neighbours that exist, from a generator seeded by (seed, epoch, row), so an epoch is reproducible
    and resumable; call :meth:`set_epoch` before each epoch. Patches without any neighbour are left out (logged).

    Every row of ``frame`` can be a neighbour; ``anchor`` (bool, one per row; default all) says which rows are
    anchors. A validation set takes its anchors from the val split and its neighbours from train and val, since
    a random 10 % of a scene's patches rarely neighbour each other.

    ``every_pair=True`` (validation) makes every (anchor, existing neighbour) pair one fixed item instead: the
    set is the same in every epoch and weighs every direction a patch has, so the best epoch is not chosen on
    one random draw of directions (the demo has 11 validation anchors and 31 such pairs).
    ``anchors[i]`` is item ``i``'s anchor row in both modes.
    """

    def __init__(self, frame: pd.DataFrame, shards_dir: str | Path, masks_dir: str | Path, seed: int = 0,
                 anchor: np.ndarray | None = None, every_pair: bool = False) -> None:
        frame = frame.reset_index(drop=True)
        neighbours = find_neighbours(frame)
        eligible = np.ones(len(frame), dtype=bool) if anchor is None else np.asarray(anchor, dtype=bool)
        if eligible.shape != (len(frame),):
            raise ConfigError(f"anchor needs one bool per row of frame ({len(frame)}), got shape "
                              f"{eligible.shape}")
        keep = eligible & (neighbours >= 0).any(axis=1)
        if (eligible & ~keep).any():
            log.info("pretext: %d of %d anchor patches have no neighbour and are left out",
                     int((eligible & ~keep).sum()), int(eligible.sum()))
        self.anchors = np.flatnonzero(keep)
        self.neighbours = neighbours
        self._fixed: np.ndarray | None = None  # every_pair: the direction of each item
        if every_pair:
            self.anchors, self._fixed = neighbour_pairs(self.anchors, neighbours)
        self.triplets = TripletDataset(frame, shards_dir, masks_dir)
        self.pixel_size_m = self.triplets.pixel_size_m  # recorded in the pretext's best.pt
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.anchors)

    def direction(self, i: int) -> int:
        """The direction of item ``i``: fixed with ``every_pair``, else drawn for the current epoch."""
        if self._fixed is not None:
            return int(self._fixed[i])
        row = self.anchors[i]
        options = np.flatnonzero(self.neighbours[row] >= 0)
        rng = np.random.default_rng([self.seed, self.epoch, int(row)])
        return int(options[rng.integers(len(options))])

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        row = int(self.anchors[i])
        d = self.direction(i)
        cloudy = self.triplets.cloudy_s2(row)
        s1 = self.triplets.s1(int(self.neighbours[row, d]))
        return {"x": torch.from_numpy(np.concatenate([cloudy, s1], axis=0)), "y": torch.tensor(d, dtype=torch.int64),
                "idx": torch.tensor(i, dtype=torch.int64)}
