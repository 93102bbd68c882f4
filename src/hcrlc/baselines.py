"""Trivial baselines on the test split, computed without training: what a network must beat to have learnt.

* **cloudy input** (:func:`cloudy_input_baseline`): the cloudy S2 — the first 13 input channels, prepared
  exactly as the networks see them (clipped to [0, 10000], / 10,000, in [0, 1]) — taken as the prediction of
  the clear S2. A reconstruction whose PSNR or SSIM is not above this one has not removed any cloud.
* **constant prediction** (:func:`constant_prediction_baseline`): the one set of classes that maximises the
  micro-F1 on the *training* split (:func:`best_constant_classes`), predicted for every test patch. A
  classifier whose F1 is not above it has learnt nothing from the images.

Both write what a model's evaluation writes (:mod:`hcrlc.evaluation`, the output contract): ``metrics.json``
with every contract key (null where the baseline has no such output), computed by the same functions
(:func:`hcrlc.metrics.summarise_test_metrics`), plus ``baseline`` (its name), ``definitions["baseline"]`` (a
sentence saying what it is) and, for the constant prediction, ``classes`` (the chosen class names) and
``train_f1``; and ``predictions.npz`` with the same keys as a model's (``idx``, ``targets``,
``cloud_fraction``, then ``probs`` (N, 10) float32 — 1.0 for a predicted class, 0.0 otherwise — or ``psnr``,
``ssim``, ``ssim_standard``; ``model`` = the baseline's name), so Fig. 1 reads it like a model's.

Nothing here reads a checkpoint or imports a network: the baselines depend on the index, the shards and the
masks only, and do not rerun when a model or its training changes.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from hcrlc.atomic import write_json, write_npz
from hcrlc.data.dataset import TripletDataset, load_index
from hcrlc.devices import resolve_device
from hcrlc.errors import DataError
from hcrlc.metrics import reconstruction_metrics, summarise_test_metrics
from hcrlc.model_specs import CLOUDY_INPUT, CONSTANT_PREDICTION
from hcrlc.paper import CLASSES, S2_BANDS, TARGET_COLUMNS
from hcrlc.test_pass import run_test_pass

log = logging.getLogger(__name__)

BASELINE_DEFINITIONS: dict[str, str] = {
    CLOUDY_INPUT: "no network: the cloudy S2 (the first 13 input channels, clipped to [0, 10000] and "
                  "divided by 10,000 as the networks see them) taken as the prediction of the clear S2; PSNR "
                  "and both SSIMs as for a model's reconstruction",
    CONSTANT_PREDICTION: "no network: the set of classes with the highest micro-F1 on the training split, "
                         "predicted for every test patch (see `classes`); precision, recall and F1 as for a "
                         "model's sigmoid >= 0.5 predictions",
}


def _require_rows(frame: pd.DataFrame, index_path: str | Path, what: str) -> None:
    if frame.empty:
        raise DataError(Path(index_path), f"no rows with split == '{what}'",
                        "rebuild the index (snakemake data) from trees that hold such patches")


# --- constant prediction ------------------------------------------------------------------------------------

def constant_micro_f1(targets: np.ndarray, classes: np.ndarray) -> float:
    """Micro-F1 of predicting the class set ``classes`` ((C,) bool) for every row of ``targets`` ((N, C)).

    With n_c positives of class c, T = Σ n_c and the set S of k classes: TP = Σ_{c∈S} n_c, FP = k·N − TP,
    FN = T − TP, so F1 = 2·TP / (2·TP + FP + FN) = 2·TP / (k·N + T); 0 when that denominator is 0
    (scikit-learn's ``zero_division=0``).
    """
    targets = np.asarray(targets) > 0.5
    classes = np.asarray(classes, dtype=bool)
    tp = float(targets[:, classes].sum())
    denominator = float(classes.sum() * targets.shape[0] + targets.sum())
    return 2.0 * tp / denominator if denominator else 0.0


def best_constant_classes(targets: np.ndarray) -> np.ndarray:
    """The class set ((C,) bool) whose constant prediction has the highest micro-F1 on ``targets`` ((N, C)).

    By :func:`constant_micro_f1`, among sets of k classes the F1 grows with TP alone, so the best set of size
    k is the k most frequent classes, and the best set overall is the best of these C + 1 prefixes of the
    classes sorted by frequency (ties between classes: the lower class index first; ties between sizes: the
    smaller set). Exact, as the tests confirm against all 2^C subsets; O(C log C).
    """
    targets = np.asarray(targets) > 0.5
    if targets.ndim != 2 or targets.shape[0] == 0:
        raise ValueError(f"targets must be (N, C) with N > 0, got shape {targets.shape}")
    counts = targets.sum(axis=0)
    order = np.lexsort((np.arange(counts.size), -counts))  # most frequent first, then class index
    best, best_f1 = np.zeros(counts.size, dtype=bool), 0.0
    chosen = np.zeros(counts.size, dtype=bool)
    for c in order:
        chosen[c] = True
        f1 = constant_micro_f1(targets, chosen)
        if f1 > best_f1:
            best, best_f1 = chosen.copy(), f1
    return best


def constant_prediction_baseline(index_path: str | Path, out_dir: str | Path) -> dict:
    """Choose :func:`best_constant_classes` on the index's train split; score that set on its test split.

    Reads ``index.parquet`` only (its ``y_*`` targets and ``cloud_fraction``). Writes ``out_dir/metrics.json``
    and ``out_dir/predictions.npz`` (module docstring) and returns the metrics.
    """
    train = load_index(index_path, "train")
    test = load_index(index_path, "test")
    _require_rows(train, index_path, "train")
    _require_rows(test, index_path, "test")
    train_targets = train[list(TARGET_COLUMNS)].to_numpy(dtype=bool)
    classes = best_constant_classes(train_targets)
    names = [name for name, chosen in zip(CLASSES, classes) if chosen]
    test_targets = test[list(TARGET_COLUMNS)].to_numpy(dtype=np.uint8)
    arrays = {
        "idx": np.arange(len(test), dtype=np.int64),
        "targets": test_targets,
        "cloud_fraction": test["cloud_fraction"].to_numpy(dtype=np.float32),
        "probs": np.broadcast_to(classes.astype(np.float32), test_targets.shape).copy(),
    }
    metrics = summarise_test_metrics(arrays, len(test))
    metrics["definitions"]["baseline"] = BASELINE_DEFINITIONS[CONSTANT_PREDICTION]
    metrics |= {"baseline": CONSTANT_PREDICTION, "classes": names,
                "train_f1": constant_micro_f1(train_targets, classes), "n_train": len(train)}
    out_dir = Path(out_dir)
    write_npz(out_dir / "predictions.npz", model=np.array(CONSTANT_PREDICTION), **arrays)
    write_json(metrics, out_dir / "metrics.json")
    log.info("constant prediction %s: train micro-F1 %.4f on %d patches; test micro-F1 %.4f on %d patches",
             names, metrics["train_f1"], len(train), metrics["f1"], len(test))
    return metrics


# --- cloudy input -------------------------------------------------------------------------------------------

def cloudy_input_arrays(
    dataset: Dataset, *, batch_size: int, device: str | torch.device = "cpu", progress: bool = True
) -> dict[str, np.ndarray]:
    """Per test sample: ``idx``, ``targets``, ``cloud_fraction`` and ``psnr``, ``ssim``, ``ssim_standard`` of
    the cloudy S2 (``x[:13]``) against the clear S2 (``s2``), sorted by ``idx``.

    ``dataset`` gives :class:`~hcrlc.data.dataset.TripletDataset` items, prepared or raw (raw batches are
    prepared on ``device``, as the evaluation of a model does: both run :func:`~hcrlc.test_pass.run_test_pass`).
    """
    def score(on_device: dict[str, torch.Tensor], idx: np.ndarray) -> dict[str, np.ndarray]:
        return reconstruction_metrics(on_device["x"][:, :S2_BANDS], on_device["s2"])

    return run_test_pass(dataset, score, batch_size=batch_size, device=torch.device(device),
                         desc="baseline cloudy input", progress=progress)


def cloudy_input_baseline(
    index_path: str | Path,
    shards_dir: str | Path,
    masks_dir: str | Path,
    out_dir: str | Path,
    *,
    batch_size: int,
    device: str = "auto",
    progress: bool = True,
) -> dict:
    """Score the cloudy S2 as the reconstruction of the clear S2 on the index's test split.

    Reads the test rows of ``index.parquet`` through the shards and masks (as a model's evaluation does);
    ``device`` is the config's ``training.device``. Writes ``out_dir/metrics.json`` and
    ``out_dir/predictions.npz`` (module docstring) and returns the metrics.
    """
    device = resolve_device(device)
    test = load_index(index_path, "test")
    _require_rows(test, index_path, "test")
    dataset = TripletDataset(test, shards_dir, masks_dir, raw=device.type == "cuda")
    arrays = cloudy_input_arrays(dataset, batch_size=batch_size, device=device, progress=progress)
    metrics = summarise_test_metrics(arrays, len(test))
    metrics["definitions"]["baseline"] = BASELINE_DEFINITIONS[CLOUDY_INPUT]
    metrics["baseline"] = CLOUDY_INPUT
    out_dir = Path(out_dir)
    write_npz(out_dir / "predictions.npz", model=np.array(CLOUDY_INPUT), **arrays)
    write_json(metrics, out_dir / "metrics.json")
    log.info("cloudy input on %d test patches: PSNR %s dB, SSIM (as coded) %.4f, SSIM (standard) %.4f",
             len(test), "n/a" if metrics["psnr"] is None else f"{metrics['psnr']:.4f}", metrics["ssim"],
             metrics["ssim_standard"])
    return metrics
