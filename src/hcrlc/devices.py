"""Which torch device a job runs on: the config's ``training.device`` (``auto``, ``cpu`` or ``cuda``).

Its own module so that jobs without a network (the baselines) choose their device as the trainings do without
importing the training code (and rerunning when it changes; see :mod:`hcrlc.provenance`).
"""

from __future__ import annotations

import logging

import torch

from hcrlc.errors import ConfigError, TrainingError

log = logging.getLogger(__name__)


def resolve_device(requested: str, local_rank: int = 0) -> torch.device:
    """``"cpu"``, ``"cuda"`` or ``"auto"`` (CUDA when available, else CPU, logged) → this rank's device.

    Raises :class:`TrainingError` for ``"cuda"`` on a machine without a usable CUDA device.
    """
    if requested not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"training.device must be auto, cpu or cuda, got {requested!r}")
    if requested == "cuda" and not torch.cuda.is_available():
        raise TrainingError(
            "training.device is 'cuda' but torch sees no CUDA device "
            f"(torch {torch.__version__}, CUDA build {torch.version.cuda}). Fix: run on a GPU node, install "
            "a CUDA build of torch, or set training.device to 'auto' or 'cpu'"
        )
    if requested == "auto" and not torch.cuda.is_available():
        log.info("training.device is 'auto' and no CUDA device is available: training on CPU")
    if requested == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", local_rank)
