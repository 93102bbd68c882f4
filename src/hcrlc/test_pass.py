"""One pass over a test split: the loop a model's evaluation and the cloudy-input baseline share.

It imports no network, so a module that calls it (:mod:`hcrlc.baselines`) does not rerun when a model changes.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from hcrlc.data.dataset import collate_items, prepare_batch

#: what ``per_batch`` gets: the prepared ``x``, ``s2``, ``mask`` on the device, and the batch's rows (idx).
PerBatch = Callable[[dict[str, torch.Tensor], np.ndarray], dict[str, np.ndarray]]


def run_test_pass(
    dataset: Dataset,
    per_batch: PerBatch,
    *,
    batch_size: int,
    device: torch.device,
    num_workers: int = 0,
    desc: str = "test",
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """Call ``per_batch`` on every batch of ``dataset`` (:class:`~hcrlc.data.dataset.TripletDataset` items,
    prepared or raw: raw batches are prepared on ``device``) inside ``torch.inference_mode``.

    Returns, per sample and sorted by ``idx`` (the dataset row): ``idx`` (N,) int64, ``targets`` (N, 10) uint8,
    ``cloud_fraction`` (N,) float32, and every array ``per_batch`` returned (one value per sample of the batch,
    concatenated over batches). Raises ``ValueError`` for an empty ``dataset``.
    """
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        pin_memory=device.type == "cuda", collate_fn=collate_items)
    parts: dict[str, list[np.ndarray]] = {"idx": [], "targets": [], "cloud_fraction": []}
    with torch.inference_mode():
        for batch in tqdm(loader, desc=desc, disable=not progress, unit="batch"):
            on_device = prepare_batch({k: batch[k].to(device, non_blocking=True)
                                       for k in batch if k not in ("idx", "y", "cloud_fraction")})
            idx = batch["idx"].numpy().astype(np.int64)
            parts["idx"].append(idx)
            parts["targets"].append((batch["y"].numpy() > 0.5).astype(np.uint8))
            parts["cloud_fraction"].append(batch["cloud_fraction"].numpy().astype(np.float32))
            for key, values in per_batch(on_device, idx).items():
                parts.setdefault(key, []).append(values)
    if not parts["idx"]:
        raise ValueError("a test pass needs at least one sample; the dataset is empty")
    order = np.argsort(np.concatenate(parts["idx"]), kind="stable")
    return {k: np.concatenate(v)[order] for k, v in parts.items()}
