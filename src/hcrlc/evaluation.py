"""Evaluate a trained network on the test split: one pass, per-sample predictions, Table 2 metrics.

Outputs in ``out_dir`` (every file written atomically):

* ``predictions.npz`` — one entry per test sample, sorted by ``idx`` (the dataset row): ``idx`` (N,) int64,
  ``targets`` (N, 10) uint8, ``cloud_fraction`` (N,) float32, ``probs`` (N, 10) float32 sigmoid probabilities
  (classifying models only), ``psnr``, ``ssim``, ``ssim_standard`` (N,) float64 (reconstructing models only),
  and ``model`` (the model name, a 0-d string array).
* ``metrics.json`` — exactly the output contract's keys ``precision``, ``recall``, ``f1`` (micro),
  ``f1_macro``, ``f1_samples``, ``psnr``, ``ssim``, ``ssim_standard`` (null where the model has no such
  output) and ``n_test``, plus ``definitions``: one sentence per metric saying how it is computed (which
  SSIM is which).
* ``examples.npz`` (only with ``example_rows``) — ``rows`` (n,) int64 dataset rows in the order asked,
  ``recon`` (n, 13, H, W) float16 reconstructions, ``model``: the qualitative rows of Fig. 3.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from hcrlc.atomic import atomic_output, write_json, write_npz
from hcrlc.data.dataset import TripletDataset, load_index
from hcrlc.devices import resolve_device
from hcrlc.errors import ConfigError, DataError
from hcrlc.metrics import (  # noqa: F401  (METRIC_KEYS, DEFINITIONS: re-exported, the contract's keys)
    DEFINITIONS,
    METRIC_KEYS,
    RECONSTRUCTION_KEYS,
    reconstruction_metrics,
    summarise_test_metrics,
)
from hcrlc.models import LOGITS, RECON
from hcrlc.test_pass import run_test_pass
from hcrlc.training import load_model

log = logging.getLogger(__name__)

def choose_fig3_examples(cloud_fraction: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Pick ``n`` distinct rows for Fig. 3, spread over the cloud cover range; deterministic given ``seed``.

    ``cloud_fraction`` (N,) in [0, 1], one per test row. For each of ``n`` evenly spaced cover levels
    ((k + 0.5) / n, k = 0 … n-1) one row is drawn at random among the up to 5 not yet chosen rows closest to
    that level. Returns the rows (int64) ordered by cloud fraction, then row.
    """
    cloud_fraction = np.asarray(cloud_fraction, dtype=np.float64)
    if cloud_fraction.ndim != 1:
        raise ValueError(f"cloud_fraction must be 1-D, got shape {cloud_fraction.shape}")
    if not 0 <= n <= cloud_fraction.size:
        raise ValueError(f"cannot choose {n} examples from {cloud_fraction.size} test rows")
    rng = np.random.default_rng(seed)
    available = np.ones(cloud_fraction.size, dtype=bool)
    chosen = []
    for level in (np.arange(n) + 0.5) / max(n, 1):
        candidates = np.flatnonzero(available)
        distance = np.abs(cloud_fraction[candidates] - level)
        nearest = candidates[np.lexsort((candidates, distance))[:5]]
        row = int(rng.choice(nearest))
        available[row] = False
        chosen.append(row)
    chosen = np.asarray(chosen, dtype=np.int64)
    return chosen[np.lexsort((chosen, cloud_fraction[chosen]))]


def _heads(model: nn.Module) -> tuple[str, ...]:
    heads = tuple(getattr(model, "heads", ()))
    if not heads or set(heads) - {RECON, LOGITS}:
        raise ConfigError(f"model has heads {heads!r}; expected a model from hcrlc.models.build_model whose "
                          f"`heads` lists {RECON!r} and/or {LOGITS!r}")
    return heads


def evaluate(
    model: nn.Module,
    dataset: Dataset,
    out_dir: str | Path,
    *,
    batch_size: int,
    model_name: str,
    device: str | torch.device = "cpu",
    example_rows: Sequence[int] | np.ndarray | None = None,
    num_workers: int = 0,
    progress: bool = True,
) -> dict:
    """Run ``model`` once over ``dataset`` (items as :class:`hcrlc.data.dataset.TripletDataset` gives them)
    and write ``predictions.npz``, ``metrics.json`` and, with ``example_rows``, ``examples.npz`` to
    ``out_dir``.

    ``example_rows`` are dataset rows (see :func:`choose_fig3_examples`) whose reconstructions are kept; they
    need a reconstructing model. Returns the content of metrics.json.
    """
    heads = _heads(model)
    n_test = len(dataset)
    if n_test == 0:
        raise DataError(Path(out_dir), f"no test samples to evaluate {model_name} on",
                        "check that index.parquet has rows with split == 'test'")
    wanted = None if example_rows is None else np.asarray(example_rows, dtype=np.int64).reshape(-1)
    if wanted is not None:
        if RECON not in heads:
            raise ConfigError(f"example_rows asks for reconstructions, but {model_name} has heads {heads} "
                              "(no 'recon'); pass example_rows only for reconstructing models")
        out_of_range = wanted.size and (wanted.min() < 0 or wanted.max() >= n_test)
        if out_of_range or np.unique(wanted).size != wanted.size:
            raise ConfigError(f"example_rows {wanted.tolist()} must be distinct rows of the {n_test}-sample "
                              "test dataset")
    device = torch.device(device)
    was_training = model.training
    model.to(device).eval()
    examples: dict[int, np.ndarray] = {}

    def predict(on_device: dict[str, torch.Tensor], idx: np.ndarray) -> dict[str, np.ndarray]:
        out = model(on_device["x"])
        per_sample: dict[str, np.ndarray] = {}
        if LOGITS in heads:
            per_sample["probs"] = torch.sigmoid(out[LOGITS].float()).cpu().numpy()
        if RECON in heads:
            recon = out[RECON]
            per_sample |= reconstruction_metrics(recon, on_device["s2"])
            if wanted is not None:
                for j in np.flatnonzero(np.isin(idx, wanted)):
                    examples[int(idx[j])] = recon[j].float().cpu().numpy().astype(np.float16)
        return per_sample

    try:
        arrays = run_test_pass(dataset, predict, batch_size=batch_size, device=device, num_workers=num_workers,
                               desc=f"evaluate {model_name}", progress=progress)
    finally:
        model.train(was_training)
    metrics = summarise_test_metrics(arrays, n_test)

    out_dir = Path(out_dir)
    write_npz(out_dir / "predictions.npz", model=np.array(model_name), **arrays)
    write_json(metrics, out_dir / "metrics.json")
    if wanted is not None:
        recon = np.stack([examples[int(r)] for r in wanted]) if wanted.size else np.zeros((0,), np.float16)
        write_npz(out_dir / "examples.npz", rows=wanted, recon=recon, model=np.array(model_name))
    log.info("%s on %d test samples: %s", model_name, n_test,
             ", ".join(f"{k}={v:.4f}" for k, v in metrics.items() if isinstance(v, float)))
    return metrics


def evaluate_job(checkpoint: str | Path, index_path: str | Path, shards_dir: str | Path, masks_dir: str | Path,
                 out_dir: str | Path, *, run: str, batch_size: int, n_examples: int, device: str = "auto",
                 examples_seed: int = 0, num_workers: int = 0) -> dict:
    """Evaluate a trained checkpoint on the test split; keep Fig. 3 reconstructions when the model makes them.

    ``num_workers`` DataLoader worker processes read the test split (the rule passes `training.num_workers`).
    Always writes ``examples.npz`` (so the rule's outputs are fixed): the chosen rows, plus reconstructions for
    models with a reconstruction head.
    """
    device = resolve_device(device)
    test_ds = TripletDataset(load_index(index_path, "test"), shards_dir, masks_dir, raw=device.type == "cuda")
    model = load_model(checkpoint, device=device, patch_px=test_ds.patch_px, pixel_size_m=test_ds.pixel_size_m)
    rows = choose_fig3_examples(test_ds.frame["cloud_fraction"].to_numpy(), min(n_examples, len(test_ds)),
                                examples_seed)
    reconstructs = RECON in getattr(model, "heads", ())
    metrics = evaluate(model, test_ds, out_dir, batch_size=batch_size, model_name=run, device=device,
                       example_rows=rows if reconstructs else None, num_workers=num_workers)
    if not reconstructs:
        with atomic_output(Path(out_dir) / "examples.npz") as tmp:
            np.savez(tmp, rows=rows, model_name=np.array(run))
    return metrics
