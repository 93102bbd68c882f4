"""10-class multi-label targets from IGBP class fractions (Schmitt & Wu 2021 simplification).

Two sources give the same fractions: the official ``IGBP_probability_labels.pkl`` (S2 file name -> 17 fractions)
or a histogram of lc band 1 (IGBP class ids 1..17) of the patch itself.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from hcrlc.errors import DataError
from hcrlc.paper import CLASSES, IGBP_TO_CLASS, LABEL_THRESHOLD, N_IGBP

#: (17, 10) 0/1 matrix: IGBP fractions @ M = the 10 simplified class fractions.
IGBP_TO_CLASS_MATRIX = np.zeros((N_IGBP, len(CLASSES)), dtype=np.float64)
for _j, _name in enumerate(CLASSES):
    for _igbp in IGBP_TO_CLASS[_name]:
        IGBP_TO_CLASS_MATRIX[_igbp - 1, _j] = 1.0


def igbp_fractions_from_lc(igbp: np.ndarray) -> np.ndarray:
    """Fractions of IGBP classes 1..17 in lc band 1.

    igbp: (H, W) integer class ids; ids outside 1..17 (no-data) are not counted. Returns (17,) float64 summing to 1
    (or all zeros if the patch holds no valid id).
    """
    counts = np.bincount(igbp.ravel().astype(np.int64), minlength=N_IGBP + 1)[1 : N_IGBP + 1].astype(np.float64)
    total = counts.sum()
    return counts / total if total > 0 else counts


def class_fractions(igbp_fractions: np.ndarray) -> np.ndarray:
    """(..., 17) IGBP fractions -> (..., 10) simplified class fractions."""
    return np.asarray(igbp_fractions, dtype=np.float64) @ IGBP_TO_CLASS_MATRIX


def multi_hot(igbp_fractions: np.ndarray, threshold: float = LABEL_THRESHOLD) -> np.ndarray:
    """(..., 17) IGBP fractions -> (..., 10) bool targets: class present if its fraction >= threshold.

    A small tolerance absorbs float error in sums such as 0.05 + 0.05 (two IGBP ids in one class).
    """
    return class_fractions(igbp_fractions) >= threshold - 1e-9


def load_probability_labels(path: str | Path) -> dict[str, np.ndarray]:
    """Read the official ``IGBP_probability_labels.pkl``: S2 file name -> (17,) IGBP fractions."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "label file does not exist",
                        "set `data.labels` to IGBP_probability_labels.pkl, or to null to derive labels from lc band 1")
    try:
        with path.open("rb") as f:
            table = pickle.load(f)
    except Exception as exc:  # pickle raises many types on corrupt input
        raise DataError(path, f"cannot be read as a pickle ({exc})",
                        "download IGBP_probability_labels.pkl again, or set `data.labels: null`") from exc
    if not isinstance(table, dict):
        raise DataError(path, f"holds a {type(table).__name__}, expected a dict S2 file name -> 17 fractions",
                        "use the official IGBP_probability_labels.pkl of SEN12MS")
    return {str(k): np.asarray(v, dtype=np.float64).reshape(N_IGBP) for k, v in table.items()}
