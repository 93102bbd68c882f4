"""The ``training`` section of the config, the numerical precision it asks for, and :class:`RunSpec`: one run
of the training loop, resolved and checked, in one value instead of a long parameter list.

**Precision** (``training.precision``, CUDA only; CPU always computes in fp32). ``fp32``: IEEE float32
throughout, TF32 off for matmuls and cuDNN convolutions (PyTorch's own default lets cuDNN convolutions use TF32)
— the authors' training script has no autocast [A]. ``tf32``: float32 tensors, TF32 tensor-core matmuls and
convolutions (10-bit mantissa products, fp32 accumulation). ``bf16``: bf16 autocast and channels_last, TF32 for
what autocast keeps in float32 — the fastest, and the furthest from the authors' numbers. Whatever the
setting, validation (and with it the choice of the best epoch) runs in fp32: no autocast, TF32 off.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset, Subset

from hcrlc.errors import ConfigError
from hcrlc.model_specs import TRAINABLE, ModelSpec
from hcrlc.models import resolve_model_config
from hcrlc.paper import BATCH_SIZE, EPOCHS, LEARNING_RATE, WEIGHT_DECAY
from hcrlc.patch_geometry import same_pixel_size
from hcrlc.pretext import DIRECTIONS

__all__ = ["PRECISIONS", "TRAINING_DEFAULTS", "RunSpec", "data_pixel_size", "resolve_training_config", "tf32_math"]

#: Defaults of the config's ``training`` section (the schema repeats them; a test keeps both equal) [P].
TRAINING_DEFAULTS: dict[str, Any] = {
    "epochs": EPOCHS,
    "batch_size": BATCH_SIZE,
    "lr": LEARNING_RATE,
    "weight_decay": WEIGHT_DECAY,
    "seed": 0,
    "device": "auto",
    "deterministic": False,
    "num_workers": 4,
    "compile": False,
    "precision": "fp32",
    "max_train_samples": None,
    "gpus": 1,
}
#: ``training.precision`` values (module docstring) [A: the authors train in fp32].
PRECISIONS = ("fp32", "tf32", "bf16")
#: ``training`` keys that say how the work is spread, not what is computed: a run may resume with them
#: changed.
EXECUTION_KEYS = ("num_workers", "gpus")


def resolve_training_config(train_cfg: Mapping[str, Any] | None) -> dict[str, Any]:
    """``train_cfg`` with missing keys filled from :data:`TRAINING_DEFAULTS`.

    Unknown keys and an unknown ``precision`` raise :class:`ConfigError`.
    """
    train_cfg = dict(train_cfg or {})
    unknown = sorted(set(train_cfg) - set(TRAINING_DEFAULTS))
    if unknown:
        raise ConfigError(
            f"unknown key(s) in config `training`: {unknown}; allowed: {sorted(TRAINING_DEFAULTS)}"
            + (" (`amp: true` is now `precision: bf16`)" if "amp" in unknown else "")
        )
    cfg = {**TRAINING_DEFAULTS, **train_cfg}
    if cfg["precision"] not in PRECISIONS:
        raise ConfigError(f"training.precision must be one of {list(PRECISIONS)}, got {cfg['precision']!r}")
    return cfg


@contextlib.contextmanager
def tf32_math(enabled: bool) -> Iterator[None]:
    """Allow (or forbid) TF32 in CUDA matmuls and cuDNN convolutions inside the block; restore afterwards."""
    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before



def data_pixel_size(dataset: Dataset) -> float | None:
    """The pixel side in metres of the patches ``dataset`` serves: its ``pixel_size_m`` (as
    :class:`~hcrlc.data.dataset.TripletDataset` and :class:`~hcrlc.pretext.PretextDataset` read it from the index),
    looking through ``torch.utils.data.Subset``; None when the data set does not say (an in-memory one)."""
    while isinstance(dataset, Subset):
        dataset = dataset.dataset
    size = getattr(dataset, "pixel_size_m", None)
    return None if size is None else float(size)


@dataclass(frozen=True)
class RunSpec:
    """One run of the training loop: the arguments of :func:`~hcrlc.training.train_model`, checked, with the
    config sections resolved and the data's patch size and class count.

    ``model_cfg`` and ``train_cfg`` are the config's ``model`` and ``training`` sections with every default
    filled in; ``patch_size`` is in pixels; ``pixel_size_m`` is the data's pixel side in metres
    (:func:`data_pixel_size`; None when the data sets do not say); ``n_classes`` is the classifier's output count
    (4 directions for the pretext). The other fields are :func:`~hcrlc.training.train_model`'s arguments of the
    same names.
    """

    model: ModelSpec
    out_dir: Path
    model_cfg: dict[str, Any]
    train_cfg: dict[str, Any]
    patch_size: int
    n_classes: int
    tensorboard_dir: Path
    pixel_size_m: float | None = None
    hcr_checkpoint: Path | None = None
    init_checkpoint: Path | None = None
    init_skip: tuple[str, ...] = ()
    trainable: tuple[str, ...] | None = None
    code_version: str | None = None
    progress: bool = True
    epoch_offset: int = 0

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def state_path(self) -> Path:
        """Everything a killed run needs to continue (module docstring of :mod:`hcrlc.training`)."""
        return self.out_dir / "resume" / "state.pt"

    @classmethod
    def from_arguments(
        cls,
        name: str,
        train_ds: Dataset,
        val_ds: Dataset,
        out_dir: str | Path,
        *,
        model_cfg: Mapping[str, Any] | None,
        train_cfg: Mapping[str, Any] | None,
        hcr_checkpoint: str | Path | None = None,
        init_checkpoint: str | Path | None = None,
        init_skip: Sequence[str] = (),
        trainable: Sequence[str] | None = None,
        tensorboard_dir: str | Path | None = None,
        **options: Any,
    ) -> RunSpec:
        """Check :func:`~hcrlc.training.train_model`'s arguments (its Raises: ``ConfigError``) and resolve
        them; ``options`` are the remaining fields (``code_version``, ``progress``, ``epoch_offset``)."""
        model = TRAINABLE.get(name)
        if model is None:
            raise ConfigError(f"unknown model {name!r}; choose one of {list(TRAINABLE)}")
        if init_skip and init_checkpoint is None:
            raise ConfigError(f"init_skip {list(init_skip)} needs an init_checkpoint to skip keys of")
        if (model.frozen_inside is not None) != (hcr_checkpoint is not None):
            needing = [s.name for s in TRAINABLE.values() if s.frozen_inside is not None]
            raise ConfigError(
                "hcr_checkpoint is the trained hcr_net's best.pt: required for "
                f"{' and '.join(needing)} and only for it (model {name!r}, hcr_checkpoint={hcr_checkpoint!r})"
            )
        model_cfg = resolve_model_config(model_cfg)
        cfg = resolve_training_config(train_cfg)
        if len(val_ds) == 0:
            raise ConfigError("the validation set is empty; set split.val_fraction so that val gets samples")
        sample = train_ds[0]
        height, width = sample["x" if "x" in sample else "s2_cloudy"].shape[-2:]  # prepared or raw item
        if height != width:
            raise ConfigError(f"training needs square patches, got {height}x{width} px")
        directions = model.target == "direction"
        if directions != (sample["y"].ndim == 0):
            raise ConfigError(
                f"model {name!r} got items whose y has shape {tuple(sample['y'].shape)}: pretext trains on "
                "PretextDataset items (y = one direction) and only pretext does"
            )
        pixel_size_m = _one_pixel_size(train_ds, val_ds)
        out_dir = Path(out_dir)
        return cls(
            model, out_dir, model_cfg, cfg, patch_size=int(height), pixel_size_m=pixel_size_m,
            n_classes=len(DIRECTIONS) if directions else int(sample["y"].shape[0]),
            tensorboard_dir=out_dir / "tensorboard" if tensorboard_dir is None else Path(tensorboard_dir),
            hcr_checkpoint=None if hcr_checkpoint is None else Path(hcr_checkpoint),
            init_checkpoint=None if init_checkpoint is None else Path(init_checkpoint),
            init_skip=tuple(init_skip), trainable=None if trainable is None else tuple(trainable), **options,
        )


def _one_pixel_size(train_ds: Dataset, val_ds: Dataset) -> float | None:
    """The pixel size (m) of the training data, which the validation data must share (either may not say)."""
    train_m, val_m = data_pixel_size(train_ds), data_pixel_size(val_ds)
    if train_m is not None and val_m is not None and not same_pixel_size(train_m, val_m):
        raise ConfigError(f"the training data has {train_m:g} m pixels, the validation data {val_m:g} m: a run "
                          "trains and selects on patches of one pixel size; build both from one index")
    return train_m if train_m is not None else val_m
