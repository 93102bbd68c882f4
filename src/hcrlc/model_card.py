"""Model cards: what a user needs to share or reuse a ``best.pt``, as JSON beside it.

``results/models/{run}/model_card.json`` (:func:`model_card`, written when the run is trained): the model, its
config and training settings, the hash of the code that trained it, the data it saw (synthetic or real, split
sizes), the inputs it expects and the outputs it makes, the software versions. ``results/eval/{run}/model_card.json``
(:func:`with_test_metrics`) is that card plus the test metrics once the run is evaluated — a second file rather
than an update of the first, so each file has one producing job.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

import hcrlc
from hcrlc.atomic import write_json
from hcrlc.errors import DataError
from hcrlc.models import LOGITS, RECON, count_parameters
from hcrlc.paper import CLASSES, S1_CLIP_DB, S1_MEAN, S1_STD, S2_BAND_NAMES, S2_SCALE
from hcrlc.training import PRETEXT, file_sha256, load_checkpoint, load_model

CARD_FORMAT = "hcrlc.model_card/1"

#: How the network's 15 input channels are made from the files (hcrlc.data.dataset.prepare_s2 / prepare_s1); the
#: card adds the checkpoint's ``pixel_size_m``.
INPUTS = {
    "channels": [*S2_BAND_NAMES, "VV", "VH"],
    "s2": f"Sentinel-2 L1C top-of-atmosphere reflectance x {S2_SCALE:g} (uint16), clipped to [0, {S2_SCALE:g}] "
          f"and divided by {S2_SCALE:g}",
    "s1": f"Sentinel-1 backscatter in dB, NaN -> 0, clipped to {list(S1_CLIP_DB)} dB, standardised with mean "
          f"{list(S1_MEAN)} and std {list(S1_STD)} (VV, VH)",
}


def split_sizes(index_path: str | Path) -> dict[str, int]:
    """Samples per split (train/val/test) of ``index.parquet``."""
    index_path = Path(index_path)
    if not index_path.is_file():
        raise DataError(index_path, "index missing", "run the data stage first: snakemake data")
    counts = pd.read_parquet(index_path, columns=["split"])["split"].value_counts()
    return {split: int(counts.get(split, 0)) for split in ("train", "val", "test")}


def model_card(checkpoint: str | Path, *, run: str, data_source: str, splits: Mapping[str, int],
               training_code: str | None) -> dict[str, Any]:
    """The card of the ``best.pt`` at ``checkpoint`` (see the module docstring) as a JSON-ready dict.

    ``data_source``: "synthetic" or "real"; ``splits``: samples per split of the index the run was trained on;
    ``training_code``: the workflow's code hash of the training script and the library modules it imports.
    """
    checkpoint = Path(checkpoint)
    ckpt = load_checkpoint(checkpoint)
    model = load_model(checkpoint)
    heads = tuple(model.heads)
    train_cfg = ckpt["train_cfg"]
    outputs = {}
    if RECON in heads:
        outputs["recon"] = "(N, 13, H, W) cloud-free S2 reflectance (x 1/10,000 scale, unclipped)"
    if LOGITS in heads:
        outputs["logits"] = (f"(N, {ckpt['n_classes']}) logits; sigmoid >= 0.5 = class present"
                             + (f", classes {list(CLASSES)}" if ckpt["model_name"] != PRETEXT else
                                ": the pretext's N/W/S/E directions"))
    return {
        "format": CARD_FORMAT,
        "run": run,
        "model": ckpt["model_name"],
        "checkpoint": {"file": checkpoint.name, "sha256": file_sha256(checkpoint),
                       "bytes": checkpoint.stat().st_size},
        "parameters": count_parameters(model, trainable_only=False),
        # the side of the training patches, as the checkpoint records it (every best.pt does: load_checkpoint
        # refuses one without it rather than guess); predict cuts windows of this size
        "patch_size": int(ckpt["patch_size"]),
        # the side of the training pixels in metres, as the checkpoint records it (10 for one that predates the
        # key, :func:`~hcrlc.training.load_checkpoint`; None when the training data did not say): predict
        # resamples a scene of another pixel size onto this one
        "pixel_size_m": _metres(ckpt["pixel_size_m"]),
        "model_config": ckpt["model_cfg"],
        "training_config": train_cfg,
        # None where a checkpoint does not know them (one imported by hcrlc.authors_checkpoint)
        "best_epoch": None if ckpt["epoch"] is None else int(ckpt["epoch"]),
        "selected_by": {"metric": ckpt["metric"], "value": None if ckpt["value"] is None else float(ckpt["value"])},
        "init_checkpoint_sha256": ckpt.get("init_checkpoint_sha256"),
        "trainable": ckpt.get("trainable"),
        "code_version": training_code,
        "data": {
            "source": data_source,
            "note": ("SYNTHETIC training data: this checkpoint shows that the pipeline runs; it is not a model "
                     "of real land cover") if data_source == "synthetic" else "SEN12MS + SEN12MS-CR",
            "splits": dict(splits),
            "max_train_samples": train_cfg.get("max_train_samples"),
        },
        "inputs": {**INPUTS, "pixel_size_m": _metres(ckpt["pixel_size_m"])},
        "outputs": outputs,
        "software": {"hcrlc": hcrlc.__version__, "torch": torch.__version__, "numpy": np.__version__,
                     "python": platform.python_version()},
        "test_metrics": None,
    }


def _metres(value: float | None) -> float | None:
    return None if value is None else float(value)


def write_model_card(checkpoint: str | Path, out: str | Path, **kwargs: Any) -> dict[str, Any]:
    """Write :func:`model_card` (same keyword arguments) to ``out`` atomically; return it."""
    card = model_card(checkpoint, **kwargs)
    write_json(card, out)
    return card


def with_test_metrics(card_path: str | Path, metrics_path: str | Path, out: str | Path) -> dict[str, Any]:
    """Write the card at ``card_path`` with ``test_metrics`` from the run's ``metrics.json`` to ``out``."""
    card = json.loads(Path(card_path).read_text())
    card["test_metrics"] = json.loads(Path(metrics_path).read_text())
    write_json(card, out)
    return card
