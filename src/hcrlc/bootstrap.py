"""Bootstrap intervals over test patches, from the saved per-patch predictions — never runs a network.

Every test metric of Table 2 is a ratio of two sums over patches (:func:`patch_terms`): micro precision, recall
and F1 from each patch's true-positive, false-positive and false-negative counts over the 10 classes (so they are
recomputed from the resampled counts, not averaged per patch); PSNR, SSIM and standard SSIM as means over images
(PSNR over the finite ones, as :func:`hcrlc.metrics.mean_finite`). A resample of the N test patches is a row of
counts (how often each patch was drawn), so B resamples are a (B, N) matrix and every metric of every model on all
of them is one matrix product (:func:`resample_counts`, :func:`metric_values`).

* **Percentile intervals.** The 95 % interval is the 2.5th and 97.5th percentile of the B resampled values
  (:func:`percentile_interval`), as ``scipy.stats.bootstrap(..., method="percentile")`` computes it; the indices
  are drawn as SciPy draws them (``rng.integers(0, N, (B, N))`` of ``numpy.random.default_rng(seed)``), and the
  tests compare the two on the same data.
* **Paired.** The counts depend on N, B and the seed only, so every model, Table 2, the claims table and the
  figures use the same resampled patches: a difference between two models is computed on each resample (its
  interval is the paired bootstrap interval).
* **Several training seeds.** A model trained with several ``seeds`` has one prediction file per seed; its value
  on a resample is the mean over seeds of each seed's metric on the same resampled patches. The interval is thus
  that of Table 2's mean over seeds under the sampling of test patches, with the trained networks held fixed;
  the spread between seeds is the ``± std`` beside it, not part of the interval.
* **Subsets** (Fig. 1's cloud-cover bins, the claims' halves): the metric of the resampled patches that fall in
  the subset; a resample that draws none of them gives NaN, left out of the percentiles
  (:func:`percentile_interval` counts them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from hcrlc.errors import DataError
from hcrlc.paper import PREDICTION_THRESHOLD

#: The intervals' confidence level (two-sided).
CONFIDENCE = 0.95
#: The metrics :func:`patch_terms` knows, as the keys of metrics.json name them.
CLASSIFICATION_METRICS: tuple[str, ...] = ("precision", "recall", "f1")
IMAGE_METRICS: tuple[str, ...] = ("psnr", "ssim", "ssim_standard")
METRICS: tuple[str, ...] = (*CLASSIFICATION_METRICS, *IMAGE_METRICS)

Predictions = Mapping[str, np.ndarray]


def read_predictions(path: str | Path) -> dict[str, np.ndarray]:
    """An evaluation's ``predictions.npz`` (:mod:`hcrlc.evaluation`, :mod:`hcrlc.baselines`) as arrays sorted by
    ``idx``; :class:`DataError` if it is missing or has no ``idx``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "predictions missing", "run the evaluation of this model (snakemake evaluate)")
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    if "idx" not in arrays:
        raise DataError(path, "no `idx` array: not an evaluation's predictions.npz",
                        "delete it and rerun the evaluation (snakemake evaluate)")
    order = np.argsort(arrays["idx"], kind="stable")
    return {k: (v[order] if v.ndim and v.shape[0] == order.size else v) for k, v in arrays.items()}


def read_aligned(paths: Mapping[str, Sequence[str | Path]]) -> dict[str, list[dict[str, np.ndarray]]]:
    """:func:`read_predictions` of every path (name -> one path per training seed), checked to cover the same test
    patches in the same order; :class:`DataError` naming the first file that does not."""
    loaded: dict[str, list[dict[str, np.ndarray]]] = {}
    reference: tuple[Path, np.ndarray] | None = None
    for name, files in paths.items():
        loaded[name] = []
        for path in files:
            arrays = read_predictions(path)
            if reference is None:
                reference = (Path(path), arrays["idx"])
            elif not np.array_equal(arrays["idx"], reference[1]):
                raise DataError(Path(path), f"evaluated on other test patches than {reference[0]}",
                                "re-evaluate every model on the same test split (snakemake evaluate)")
            loaded[name].append(arrays)
    return loaded


def classification_counts(probs: np.ndarray, targets: np.ndarray) -> dict[str, np.ndarray]:
    """Per patch, over the classes: ``tp``, ``fp``, ``fn`` (N,) float64 of the predictions ``probs >= 0.5``
    against the multi-hot ``targets`` (both (N, C))."""
    predicted = np.asarray(probs) >= PREDICTION_THRESHOLD
    actual = np.asarray(targets) > 0.5
    return {"tp": (predicted & actual).sum(axis=1).astype(np.float64),
            "fp": (predicted & ~actual).sum(axis=1).astype(np.float64),
            "fn": (~predicted & actual).sum(axis=1).astype(np.float64)}


def patch_terms(predictions: Predictions, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Numerator and denominator per patch, (N,) each, whose sums over any set of patches give ``metric`` on it.

    precision = Σtp / Σ(tp + fp), recall = Σtp / Σ(tp + fn), F1 = Σ2tp / Σ(2tp + fp + fn) (micro, as
    scikit-learn); psnr = Σ finite PSNR / number of finite ones; ssim, ssim_standard = Σ value / number of images.
    :class:`KeyError` if ``predictions`` lacks the arrays of ``metric`` (a model without that output).
    """
    if metric in CLASSIFICATION_METRICS:
        c = classification_counts(predictions["probs"], predictions["targets"])
        if metric == "precision":
            return c["tp"], c["tp"] + c["fp"]
        if metric == "recall":
            return c["tp"], c["tp"] + c["fn"]
        return 2 * c["tp"], 2 * c["tp"] + c["fp"] + c["fn"]
    if metric in IMAGE_METRICS:
        values = np.asarray(predictions[metric], dtype=np.float64)
        finite = np.isfinite(values)
        return np.where(finite, values, 0.0), finite.astype(np.float64)
    raise ValueError(f"unknown metric {metric!r}; known: {list(METRICS)}")


def has_metric(predictions: Predictions, metric: str) -> bool:
    """Whether ``predictions`` hold what ``metric`` needs (``probs`` for P/R/F1, the per-image value else)."""
    return ("probs" in predictions) if metric in CLASSIFICATION_METRICS else (metric in predictions)


def cloud_bin(cloud_fraction: np.ndarray, bins: int) -> np.ndarray:
    """Bin of each cloud fraction in [0, 1] among ``bins`` equal bins [lo, hi); the last bin includes 1 (Fig. 1's
    bins, and the claims' halves of them)."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    return np.searchsorted(edges[1:-1], np.asarray(cloud_fraction, dtype=np.float64), side="right")


def resample_counts(n: int, n_resamples: int, seed: int) -> np.ndarray:
    """(B, N) float64: how often each of ``n`` patches is drawn in each of ``n_resamples`` resamples with
    replacement. Row b holds the counts of the indices ``rng.integers(0, n, (B, n))[b]`` of
    ``numpy.random.default_rng(seed)`` — the draws of ``scipy.stats.bootstrap`` given that generator."""
    if n < 1 or n_resamples < 1:
        raise ValueError(f"need at least one patch and one resample, got n={n}, n_resamples={n_resamples}")
    indices = np.random.default_rng(seed).integers(0, n, (n_resamples, n))
    indices += n * np.arange(n_resamples)[:, None]  # row b's patches counted in bins b·n … b·n + n − 1
    return np.bincount(indices.ravel(), minlength=n_resamples * n).reshape(n_resamples, n).astype(np.float64)


def ratio_of_sums(weights: np.ndarray, numerator: np.ndarray, denominator: np.ndarray,
                  members: np.ndarray | None = None) -> np.ndarray:
    """Σ w·num / Σ w·den per row of ``weights`` ((B, N), or (N,) for one sample), over ``members`` ((N,) bool,
    default all patches).

    A ratio 0/0 over patches that exist is 0 (scikit-learn's ``zero_division=0``: no predicted or true label);
    where the weights hold no member at all the result is NaN (the subset is empty in that resample).
    """
    weights = np.asarray(weights, dtype=np.float64)
    if members is not None:
        weights = weights * np.asarray(members, dtype=np.float64)
    sums = weights @ np.stack([numerator, denominator, np.ones_like(numerator)], axis=1)
    num, den, count = sums[..., 0], sums[..., 1], sums[..., 2]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
    return np.where(count > 0, out, np.nan)


def metric_values(weights: np.ndarray, runs: Sequence[Predictions], metric: str,
                  members: np.ndarray | None = None) -> np.ndarray:
    """``metric`` of a model on each resample (rows of ``weights``; (N,) ones: the test split itself): the mean
    over ``runs`` (one per training seed) of each run's metric on the same patches (module docstring)."""
    if not runs:
        raise ValueError(f"no predictions to compute {metric!r} from")
    per_seed = [ratio_of_sums(weights, *patch_terms(run, metric), members) for run in runs]
    return np.mean(per_seed, axis=0)


def percentile_interval(values: np.ndarray, level: float = CONFIDENCE) -> tuple[float, float, int]:
    """The two-sided percentile interval of the resampled ``values`` (B,): (lower, upper, resamples left out).

    Non-finite values (a resample without any patch of a subset) are left out and counted; (NaN, NaN, B) if none
    is finite. Percentiles interpolate linearly (``numpy.percentile``'s default, as SciPy's).
    """
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return float("nan"), float("nan"), int(values.size)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.percentile(finite, [100 * alpha, 100 * (1 - alpha)])
    return float(lo), float(hi), int(values.size - finite.size)
