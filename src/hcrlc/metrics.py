"""Test metrics as the authors coded them: multi-label precision/recall/F1, per-image PSNR and two SSIMs.

Classification ([A] ``metrics.py``): scikit-learn precision, recall and F1 on predictions ``sigmoid >= 0.5``.
The paper's Table 2 reports *micro* averages (F1 there is the harmonic mean of the micro P and R); macro and
per-sample F1 are reported beside them. ``zero_division=0`` everywhere: a class (macro) or a sample (samples)
without any true or predicted label scores 0 instead of raising a warning — the value scikit-learn's default
``"warn"`` also returns, so the numbers equal the authors' calls.

Reconstruction ([A] ``test_decloud.py``): per test image, on the ``(13, H, W)`` clear target in [0, 1] and the
network's unbounded output, averaged over images afterwards:

* **PSNR** = ``skimage.metrics.peak_signal_noise_ratio(target, pred)`` with the default data range, which is 1
  for a float target in [0, 1]: ``10·log10(1 / MSE)`` = ``20·log10(1 / RMSE)``. The prediction is **not**
  clipped to [0, 1]: the authors passed the raw network output, and clipping would change the metric. An image
  predicted exactly has MSE 0 and PSNR ``+inf`` (kept per image; :func:`mean_finite` leaves such images out of
  the average and the evaluation says how many it left out).
* **SSIM as coded** ("ssim" in results) = ``structural_similarity(target, pred, data_range=2)`` on the 3-D
  array *without* a channel axis: a 7×7×7 uniform window that also runs across the 13 bands, sample
  covariance, and the float data range scikit-image defaulted to at the time (dtype range of floats, −1…1 →
  2; current scikit-image makes it explicit). This is the number comparable to Table 2.
* **SSIM standard** ("ssim_standard") = the usual definition (Wang et al. 2004): per band, an 11-tap Gaussian
  window with σ = 1.5, population covariance, data range 1; averaged over the 13 bands —
  ``structural_similarity(target, pred, channel_axis=0, gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=1)``.

The image metrics run batched in torch (on the device the predictions are on, in float64) instead of one
scikit-image call per image, which takes ≈0.2 s per 13×256×256 image on a CPU core. scikit-image crops the
filter radius off every border before averaging, so only windows that lie fully inside the image count; the
filters here are therefore "valid" (unpadded) separable convolutions, which equal scikit-image's to rounding
(tests compare both to 1e-6 and more). scikit-image ≥ 0.19 keeps float32 inputs in float32; the authors'
version (and this module) computes in float64.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping

import numpy as np
import torch
from sklearn.metrics import f1_score, precision_score, recall_score

from hcrlc.paper import PREDICTION_THRESHOLD

log = logging.getLogger(__name__)

#: SSIM stabilising constants (Wang et al. 2004; scikit-image defaults).
K1, K2 = 0.01, 0.03
#: "As coded": uniform window of 7 px (and 7 bands), data range 2 (scikit-image's old float default) [A].
CODED_WIN, CODED_DATA_RANGE = 7, 2.0
#: Standard: Gaussian σ = 1.5 truncated at 3.5 σ -> an 11-tap window, data range 1 [Wang et al. 2004].
GAUSS_SIGMA, GAUSS_TRUNCATE, STANDARD_DATA_RANGE = 1.5, 3.5, 1.0

ArrayLike = np.ndarray | torch.Tensor


# --- Classification -----------------------------------------------------------------------------------------

def _binarise(probs: ArrayLike, targets: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """(y_true, y_pred) as 0/1 integer arrays: targets are multi-hot, predictions are ``probs >= 0.5`` [A]."""
    y_pred = (np.asarray(probs) >= PREDICTION_THRESHOLD).astype(np.int64)
    y_true = (np.asarray(targets) > 0.5).astype(np.int64)
    return y_true, y_pred


def classification_metrics(probs: ArrayLike, targets: ArrayLike) -> dict[str, float]:
    """Multi-label scores of sigmoid probabilities ``probs`` (N, C) against multi-hot ``targets`` (N, C).

    A class is predicted where ``probs >= 0.5`` [A]. Returns ``precision``, ``recall``, ``f1`` (all micro: the
    paper's), ``f1_macro`` and ``f1_samples``, computed by scikit-learn with ``zero_division=0``.
    """
    probs, targets = np.asarray(probs), np.asarray(targets)
    if probs.ndim != 2 or probs.shape != targets.shape:
        raise ValueError(f"probs {probs.shape} and targets {targets.shape} must both be (N, n_classes)")
    if probs.shape[0] == 0:
        raise ValueError("classification metrics need at least one sample; got N = 0")
    y_true, y_pred = _binarise(probs, targets)
    return {
        "precision": float(precision_score(y_true, y_pred, average="micro", zero_division=0)),
        "recall": float(recall_score(y_true, y_pred, average="micro", zero_division=0)),
        "f1": float(f1_score(y_true, y_pred, average="micro", zero_division=0)),
        "f1_macro": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "f1_samples": float(f1_score(y_true, y_pred, average="samples", zero_division=0)),
    }


def micro_f1(probs: np.ndarray, targets: np.ndarray) -> float:
    """Micro F1 of ``probs >= 0.5`` against ``targets`` (both (N, C)), as :func:`classification_metrics`."""
    y_true, y_pred = _binarise(probs, targets)
    return float(f1_score(y_true, y_pred, average="micro", zero_division=0))


# --- Reconstruction -----------------------------------------------------------------------------------------

def _batched(pred: ArrayLike, target: ArrayLike) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Both inputs as float64 tensors (N, C, H, W) on ``pred``'s device, and whether it was one image."""
    p = pred if isinstance(pred, torch.Tensor) else torch.from_numpy(np.asarray(pred))
    t = target if isinstance(target, torch.Tensor) else torch.from_numpy(np.asarray(target))
    if p.shape != t.shape:
        raise ValueError(f"prediction {tuple(p.shape)} and target {tuple(t.shape)} differ in shape")
    if p.ndim not in (3, 4):
        raise ValueError(f"expected one image (C, H, W) or a batch (N, C, H, W), got shape {tuple(p.shape)}")
    single = p.ndim == 3
    p = p.detach().to(dtype=torch.float64)
    t = t.detach().to(device=p.device, dtype=torch.float64)
    return (p[None], t[None], True) if single else (p, t, False)


def _result(values: torch.Tensor, single: bool) -> float | np.ndarray:
    out = values.cpu().numpy()
    return float(out[0]) if single else out


def _psnr(p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    mse = ((t - p) ** 2).mean(dim=(1, 2, 3))
    # 1 / 0 -> +inf, as numpy gives for an exact prediction (without its RuntimeWarning)
    return 10.0 * torch.log10(1.0 / mse)


def _ssim_map(p: torch.Tensor, t: torch.Tensor, smooth, cov_norm: float, data_range: float) -> torch.Tensor:
    """scikit-image's SSIM map over the valid region; ``smooth`` is the (unpadded) local weighted mean."""
    ux, uy = smooth(t), smooth(p)
    vx = cov_norm * (smooth(t * t) - ux * ux)
    vy = cov_norm * (smooth(p * p) - uy * uy)
    vxy = cov_norm * (smooth(t * p) - ux * uy)
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    return ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))


def _valid_filter1d(x: torch.Tensor, weights: list[float], dim: int) -> torch.Tensor:
    """Weighted sum over every window of ``len(weights)`` along ``dim`` that fits (an unpadded correlation).

    Shifted in-place multiply-adds: on a CPU this is >10x faster than a float64 ``conv2d``.
    """
    n = x.shape[dim] - len(weights) + 1
    out = x.narrow(dim, 0, n) * weights[0]
    for k in range(1, len(weights)):
        out.add_(x.narrow(dim, k, n), alpha=weights[k])
    return out


def _box3d(x: torch.Tensor) -> torch.Tensor:
    """Mean over every 7×7×7 window (bands × rows × cols) that fits: (N, C, H, W) -> (N, C-6, H-6, W-6)."""
    w = [1.0 / CODED_WIN] * CODED_WIN
    for dim in (1, 2, 3):
        x = _valid_filter1d(x, w, dim)
    return x


def _gaussian_kernel() -> list[float]:
    # scipy.ndimage's 1-D Gaussian (as scikit-image's ``gaussian`` uses it): radius int(3.5 σ + 0.5) = 5
    radius = int(GAUSS_TRUNCATE * GAUSS_SIGMA + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    phi = np.exp(-0.5 / GAUSS_SIGMA**2 * x**2)
    return (phi / phi.sum()).tolist()


def _gauss2d(x: torch.Tensor) -> torch.Tensor:
    """Per band, Gaussian-weighted mean over every 11×11 window that fits: (N, C, H, W) -> (N, C, H-10,
    W-10)."""
    w = _gaussian_kernel()
    return _valid_filter1d(_valid_filter1d(x, w, 2), w, 3)


def _check_window(shape: torch.Size, bands_too: bool, win: int, name: str) -> None:
    extent = tuple(shape[1:]) if bands_too else tuple(shape[2:])
    if min(extent) < win:
        raise ValueError(f"{name} needs every image axis{' (bands included)' if bands_too else ''} to be at "
                         f"least {win} long; got image shape {tuple(shape[1:])}")


def _ssim_coded(p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    _check_window(p.shape, True, CODED_WIN, "SSIM as coded (7x7x7 window)")
    n_window = CODED_WIN**3
    return _ssim_map(p, t, _box3d, n_window / (n_window - 1), CODED_DATA_RANGE).mean(dim=(1, 2, 3))


def _ssim_standard(p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    win = 2 * int(GAUSS_TRUNCATE * GAUSS_SIGMA + 0.5) + 1
    _check_window(p.shape, False, win, "standard SSIM (11x11 Gaussian window)")
    # mean over the valid region per band, then over bands (= scikit-image's channel_axis average)
    return _ssim_map(p, t, _gauss2d, 1.0, STANDARD_DATA_RANGE).mean(dim=(2, 3)).mean(dim=1)


def _chunked(fn, p: torch.Tensor, t: torch.Tensor, chunk: int | None) -> torch.Tensor:
    """``fn`` over ``chunk`` images at a time: a 13×256×256 float64 image needs ≈100 MB of temporaries.

    The default is one image on a CPU (larger chunks fall out of the cache: 2-3x slower per image) and 32 on
    an accelerator.
    """
    if chunk is None:
        chunk = 1 if p.device.type == "cpu" else 32
    return torch.cat([fn(p[i:i + chunk], t[i:i + chunk]) for i in range(0, p.shape[0], chunk)])


def psnr_per_image(pred: ArrayLike, target: ArrayLike) -> float | np.ndarray:
    """PSNR in dB of ``pred`` against ``target`` in [0, 1], data range 1, per image; ``+inf`` where equal.

    One image (C, H, W) gives a float, a batch (N, C, H, W) an (N,) array. ``pred`` is not clipped (see module
    docstring). Equals ``skimage.metrics.peak_signal_noise_ratio(target, pred, data_range=1)``.
    """
    p, t, single = _batched(pred, target)
    return _result(_psnr(p, t), single)


def ssim_as_coded(pred: ArrayLike, target: ArrayLike, *, chunk: int | None = None) -> float | np.ndarray:
    """The authors' SSIM: ``structural_similarity(target, pred, data_range=2)`` on the whole (C, H, W) array.

    3-D 7×7×7 uniform window across bands and pixels, sample covariance. One image gives a float, a batch
    (N, C, H, W) an (N,) array; ``chunk`` images are processed at a time (default: 1 on CPU, 32 on GPU).
    """
    p, t, single = _batched(pred, target)
    return _result(_chunked(_ssim_coded, p, t, chunk), single)


def ssim_standard(pred: ArrayLike, target: ArrayLike, *, chunk: int | None = None) -> float | np.ndarray:
    """Standard SSIM per band (Gaussian σ 1.5, 11 taps, population covariance, data range 1), mean over bands.

    Equals ``structural_similarity(target, pred, channel_axis=0, gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=1)``. One image gives a float, a batch an (N,) array.
    """
    p, t, single = _batched(pred, target)
    return _result(_chunked(_ssim_standard, p, t, chunk), single)


def reconstruction_metrics(
    pred: ArrayLike, target: ArrayLike, *, chunk: int | None = None
) -> dict[str, np.ndarray]:
    """``psnr``, ``ssim`` (as coded) and ``ssim_standard`` per image of a batch (N, C, H, W): (N,) arrays."""
    p, t, _ = _batched(pred, target)
    if p.shape[0] == 0:
        return {k: np.zeros(0) for k in ("psnr", "ssim", "ssim_standard")}
    return {
        "psnr": _psnr(p, t).cpu().numpy(),
        "ssim": _chunked(_ssim_coded, p, t, chunk).cpu().numpy(),
        "ssim_standard": _chunked(_ssim_standard, p, t, chunk).cpu().numpy(),
    }


def mean_finite(values: np.ndarray) -> tuple[float | None, int]:
    """Mean of the finite entries of ``values`` and how many were left out (±inf, NaN); None if none is.

    Used for PSNR, which is ``+inf`` for an exactly predicted image: averaging it in would make the mean
    infinite.
    """
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    left_out = int(values.size - finite.sum())
    if not finite.any():
        return None, left_out
    mean = float(values[finite].mean())
    return (mean if math.isfinite(mean) else None), left_out


# --- A test evaluation's metrics.json -----------------------------------------------------------------------

CLASSIFICATION_KEYS = ("precision", "recall", "f1", "f1_macro", "f1_samples")
RECONSTRUCTION_KEYS = ("psnr", "ssim", "ssim_standard")
#: The keys of every test evaluation's metrics.json (models and baselines) fixed by the output contract
#: (ARCHITECTURE.md), in order.
#: The keys of metrics.json fixed by the output contract (ARCHITECTURE.md), in order.
METRIC_KEYS = (*CLASSIFICATION_KEYS, *RECONSTRUCTION_KEYS, "n_test")

DEFINITIONS: dict[str, str] = {
    "precision": "micro-averaged precision (scikit-learn, zero_division=0) of sigmoid >= 0.5 over all test "
                 "samples and the 10 classes, as in the paper's Table 2",
    "recall": "micro-averaged recall, as precision",
    "f1": "micro-averaged F1 (harmonic mean of the micro precision and recall): the paper's F1",
    "f1_macro": "F1 per class, averaged over the 10 classes (a class without true or predicted labels "
                "scores 0)",
    "f1_samples": "F1 per sample, averaged over samples (a sample without true or predicted labels scores 0)",
    "psnr": "per test image 10*log10(1/MSE) in dB on the 13 bands in [0, 1] (data range 1, prediction not "
            "clipped), averaged over images; images predicted exactly (infinite PSNR) are left out of the "
            "average: {n_inf} of {n}",
    "ssim": "SSIM as the authors coded it (comparable to the paper's Table 2): scikit-image "
            "structural_similarity on the whole (13, H, W) array without a channel axis, i.e. a 3-D 7x7x7 "
            "uniform window across bands and pixels, data_range=2 (scikit-image's former float default), "
            "averaged over test images",
    "ssim_standard": "standard SSIM (Wang et al. 2004): per band, 11-tap Gaussian window with sigma 1.5, "
                     "population covariance, data_range=1, averaged over the 13 bands, then over test images",
    "n_test": "number of test samples evaluated",
}


def summarise_test_metrics(arrays: Mapping[str, np.ndarray], n_test: int) -> dict:
    """The content of a test evaluation's ``metrics.json`` from its per-sample arrays.

    ``arrays`` holds ``probs`` (N, 10) and ``targets`` (N, 10) for a classifier, ``psnr``, ``ssim`` and
    ``ssim_standard`` (N,) for a reconstruction, or both; a key that is absent leaves its metrics null.
    Returns :data:`METRIC_KEYS` (``n_test`` = ``n_test``) plus ``definitions`` (:data:`DEFINITIONS`, with
    the number of images left out of the PSNR mean filled in). Models (:mod:`hcrlc.evaluation`) and
    baselines (:mod:`hcrlc.baselines`) share it, so their numbers mean the same.
    """
    metrics: dict = dict.fromkeys(METRIC_KEYS)
    metrics["n_test"] = n_test
    definitions = dict(DEFINITIONS)
    if "probs" in arrays:
        metrics.update(classification_metrics(arrays["probs"], arrays["targets"]))
    n_inf = 0
    if "psnr" in arrays:
        metrics["psnr"], n_inf = mean_finite(arrays["psnr"])
        metrics["ssim"] = float(np.mean(arrays["ssim"]))
        metrics["ssim_standard"] = float(np.mean(arrays["ssim_standard"]))
        if n_inf:
            log.warning("%d of %d test images are predicted exactly (PSNR = inf); left out of the mean PSNR",
                        n_inf, n_test)
    definitions["psnr"] = definitions["psnr"].format(n_inf=n_inf, n=n_test)
    metrics["definitions"] = definitions
    return metrics
