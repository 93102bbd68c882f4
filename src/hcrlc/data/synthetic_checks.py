"""Checks on the synthetic trees of :mod:`hcrlc.data.synthetic`: labels in the official pickle format, and how
well stock s2cloudless finds the true clouds.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import rasterio

from hcrlc.atomic import atomic_output
from hcrlc.data.labels import igbp_fractions_from_lc
from hcrlc.data.layout import patch_filename, walk_sen12ms, walk_sen12mscr
from hcrlc.data.synthetic import read_truth
from hcrlc.paper import S2_SCALE

__all__ = ["measure_cloud_iou", "write_igbp_probability_labels"]


def write_igbp_probability_labels(sen12ms_root: str | Path, out_pkl: str | Path) -> None:
    """Write labels in the format of the official ``IGBP_probability_labels.pkl``.

    A pickled dict: S2 file name (e.g. ``ROIs1158_spring_s2_1_p407.tif``) → (17,) float64 fractions of IGBP
    classes 1–17 in lc band 1 of that patch.
    """
    files = walk_sen12ms(sen12ms_root)
    labels: dict[str, np.ndarray] = {}
    for row in files[files["kind"] == "lc"].itertuples(index=False):
        with rasterio.open(row.path) as src:
            igbp = src.read(1)
        labels[patch_filename("s2", row.season, row.scene, row.patch)] = igbp_fractions_from_lc(igbp)
    with atomic_output(Path(out_pkl)) as tmp:
        tmp.write_bytes(pickle.dumps(labels, protocol=pickle.HIGHEST_PROTOCOL))


def measure_cloud_iou(
    sen12mscr_root: str | Path,
    truth_dir: str | Path,
    threshold: float = 0.4,
    average_over: int = 1,
    dilation_size: int = 1,
) -> float:
    """IoU of stock s2cloudless masks of every cloudy S2 patch against the true masks, pooled over all pixels.

    s2cloudless runs as the authors ran it (``all_bands=True`` on reflectance clipped to [0, 10000] / 10000).
    Pooled (sum of intersections / sum of unions) because a clear patch has no IoU of its own.
    """
    from s2cloudless import S2PixelCloudDetector  # slow import (LightGBM), only needed here

    detector = S2PixelCloudDetector(
        threshold=threshold, average_over=average_over, dilation_size=dilation_size, all_bands=True
    )
    files = walk_sen12mscr(sen12mscr_root)
    cloudy = files[files["kind"] == "s2_cloudy"]
    intersection = union = 0
    for (season, scene), group in cloudy.groupby(["season", "scene"], sort=True):
        truth = read_truth(truth_dir, season, scene)
        images = []
        for path in group["path"]:
            with rasterio.open(path) as src:
                images.append(np.moveaxis(src.read(), 0, -1))
        data = np.clip(np.stack(images).astype(np.float32), 0, S2_SCALE) / S2_SCALE
        predicted = detector.get_cloud_masks(data).astype(bool)
        true = np.stack([truth[int(p)] for p in group["patch"]])
        intersection += int(np.sum(predicted & true))
        union += int(np.sum(predicted | true))
    return intersection / union if union else 1.0
