"""Train one of the paper's networks or the pretext (paper §3, §4; the authors' code [A]).

What each model trains on and how its best epoch is chosen is its spec in :mod:`hcrlc.model_specs`; the
modules here read those specs and never a model's name:

================================  ==================================================================
module                            responsibility
================================  ==================================================================
:mod:`~hcrlc.training.loop`       :func:`train_model`, the epoch loop read top to bottom
:mod:`~hcrlc.training.config`     the config's ``training`` section, precision, :class:`RunSpec`
:mod:`~hcrlc.training.objective`  network + loss as one module, a batch on the device, validation
:mod:`~hcrlc.training.distributed`  torchrun context and launch, per-epoch sampler, derived seeds
:mod:`~hcrlc.training.transfer`   starting from other weights, freezing all but some layers
:mod:`~hcrlc.training.checkpoints`  ``best.pt``, the resume state and ``metrics.csv``
================================  ==================================================================

``pretext`` is the self-supervised task of paper §4 (:mod:`hcrlc.pretext`): the encoder + classification
branch (``build_model("lc_net", cfg, n_classes=4)``) on :class:`~hcrlc.pretext.PretextDataset` items, whose
``y`` is a 0-d int64 direction, trained by the same loop.
"""

from __future__ import annotations

from hcrlc.devices import resolve_device
from hcrlc.model_specs import PRETEXT
from hcrlc.training.checkpoints import (
    BEST_FORMAT,
    RESUME_FORMAT,
    check_resume_identity,
    file_sha256,
    load_checkpoint,
    load_model,
    read_torch_file,
    save_atomically,
    write_metrics_csv,
)
from hcrlc.training.config import PRECISIONS, TRAINING_DEFAULTS, RunSpec, resolve_training_config, tf32_math
from hcrlc.training.distributed import (
    DistributedContext,
    EpochBatchSampler,
    distributed_context,
    launch_command,
)
from hcrlc.training.loop import PRETEXT_COLUMNS, train_model
from hcrlc.training.objective import TrainingObjective, batch_to_device

__all__ = [
    "BEST_FORMAT",
    "PRECISIONS",
    "PRETEXT",
    "PRETEXT_COLUMNS",
    "RESUME_FORMAT",
    "TRAINING_DEFAULTS",
    "DistributedContext",
    "EpochBatchSampler",
    "RunSpec",
    "TrainingObjective",
    "batch_to_device",
    "check_resume_identity",
    "distributed_context",
    "file_sha256",
    "launch_command",
    "load_checkpoint",
    "load_model",
    "read_torch_file",
    "resolve_device",
    "resolve_training_config",
    "save_atomically",
    "tf32_math",
    "train_model",
    "write_metrics_csv",
]
