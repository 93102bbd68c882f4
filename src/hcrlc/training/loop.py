"""Train one of the paper's networks or the pretext: one loop, read top to bottom in :func:`train_model`.

What is trained and how (paper §3, authors' code [A]):

=====================  ============================================  ==================================
model                  loss                                          best epoch chosen by
=====================  ============================================  ==================================
``lc_net``             BCE                                           validation micro-F1
``hcr_net``            CARL (cloudy = ``x[:, :13]``)                 validation PSNR
``hcr_lc_equal``       BCE + CARL, 1:1                               validation micro-F1
``hcr_lc_uncertain``   uncertainty weighting (learned log-variances)  validation micro-F1
``hcr_c_net``          BCE on the C-Net logits (HCR-Net frozen)      validation micro-F1
``pretext``            cross-entropy over the 4 directions (§4)      validation accuracy (chance 25 %)
=====================  ============================================  ==================================

``pretext`` is the self-supervised task of paper §4 (:mod:`hcrlc.pretext`): the encoder + classification
branch (``build_model("lc_net", cfg, n_classes=4)``) on :class:`~hcrlc.pretext.PretextDataset` items, whose
``y`` is a 0-d int64 direction. A training set with ``set_epoch`` gets it called before every epoch, so its
per-epoch random draw (the pretext direction) is a function of the epoch; its DataLoader workers are then not
persistent, since a persistent worker would keep the copy of the data set made at the first epoch.

Adam (``lr``, ``weight_decay``) over the trainable parameters plus, for ``hcr_lc_uncertain``, the two
log-variances (they are not model parameters, Table 1 does not count them).

**Precision** (``training.precision``, CUDA only; CPU always computes in fp32). ``fp32``: IEEE float32
throughout, TF32 off for matmuls and cuDNN convolutions (PyTorch's own default lets cuDNN convolutions use TF32)
— the authors' training script has no autocast [A]. ``tf32``: float32 tensors, TF32 tensor-core matmuls and
convolutions (10-bit mantissa products, fp32 accumulation). ``bf16``: bf16 autocast and channels_last, TF32 for
what autocast keeps in float32 — the fastest, and the furthest from the authors' numbers. Whatever the
setting, validation (and with it the choice of the best epoch) runs in fp32: no autocast, TF32 off.

**Starting from other weights, training part of a network** (the self-supervised schedule,
:mod:`hcrlc.selfsup`). ``init_checkpoint`` is a ``best.pt`` whose weights, less those under the ``init_skip``
prefixes, are loaded with ``strict=False``; every loaded key must exist in the network with the same shape,
and a layer that is frozen must be loaded, never left at its random initialisation. A checkpoint of the same
model also hands on its loss weighting (the log-variances). ``trainable`` (parameter-name prefixes such as
``"decoder"`` or ``"classifier.head"``) freezes every other parameter: ``requires_grad`` False and not in the
optimiser; the modules that hold no trainable layer stay in eval mode, so their BatchNorm running statistics
do not move either. The loss weighting always trains.

**Files.** ``out_dir/best.pt`` and ``out_dir/metrics.csv`` are written once, atomically, at the very end:
Snakemake treats declared outputs that exist after a killed job as incomplete, so they must not appear early.
Everything a run needs to continue lives in ``out_dir/resume/state.pt`` (model, optimiser, loss weighting,
completed epoch, best metric and best weights, metric rows), rewritten atomically after every epoch and
removed after success. The learning curves go to TensorBoard event files in ``out_dir/tensorboard/`` as
each epoch ends (every metrics.csv column, step = epoch; the pretext's ``chance_acc`` is the 0.25 of guessing
one of 4 directions): not declared outputs, so they may appear early, and a run started over replaces them.
It continues only a run of the same model, config, data sizes, init checkpoint
(SHA-256), ``init_skip`` and ``trainable`` set. ``best.pt`` holds only tensors and plain Python values and
loads with ``torch.load(weights_only=True)``; read it with :func:`load_checkpoint` / :func:`load_model`, which
check that it belongs to the expected model.

**Exact resume.** Nothing random depends on how many epochs ran in this process: the model is initialised from
``seed``; epoch ``e`` shuffles with a generator seeded by ``(seed, e)`` and re-seeds torch, numpy and Python's
``random`` (dropout) from ``(seed, e, rank)`` before its first step. The RNG state at the start of every epoch
is thus a function of the config alone, so a run resumed after epoch ``k`` replays epochs ``k+1…`` exactly;
with ``deterministic: true`` on CPU its ``best.pt`` equals an uninterrupted run's bit for bit (tested).
Re-seeding per epoch replaces saving RNG states: it needs no per-rank state under DDP and no DataLoader state.

**Several GPUs (DDP).** Launched by ``torchrun`` (``WORLD_SIZE`` > 1, see :func:`launch_command`), every rank
walks the same per-epoch permutation, takes every ``world_size``-th sample of each global batch of
``batch_size`` samples and scales its mean loss by ``n_local · world_size / n_global``, so that DDP's gradient
average equals the single-process gradient of the mean over the global batch. BatchNorm layers become
``SyncBatchNorm`` on CUDA, so batch statistics are also those of the global batch. ``SyncBatchNorm`` does not
run on CPU: gloo (CPU) DDP normalises each rank's share on its own and matches single-process training only
for networks whose trained part has no BatchNorm (``hcr_c_net``, whose HCR-Net is frozen in eval mode; with
dropout 0, as ranks draw different dropout masks). Rank 0 validates on the whole validation set and alone
writes files; the others wait at a barrier.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import logging
import math
import os
import random
import shutil
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from sklearn.metrics import f1_score
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm import tqdm

from hcrlc.atomic import atomic_output, remove_stale_temp_files
from hcrlc.data.dataset import prepare_batch
from hcrlc.devices import resolve_device
from hcrlc.errors import CheckpointError, ConfigError, TrainingError
from hcrlc.losses import UncertaintyWeighting, bce_loss, carl_loss, make_weighting
from hcrlc.metrics import psnr_per_image
from hcrlc.models import LOGITS, RECON, build_model, resolve_model_config
from hcrlc.paper import (
    BATCH_SIZE,
    EPOCHS,
    LEARNING_RATE,
    MODEL_NAMES,
    PREDICTION_THRESHOLD,
    S2_BANDS,
    WEIGHT_DECAY,
)
from hcrlc.pretext import DIRECTIONS

__all__ = [
    "BEST_FORMAT",
    "PRETEXT",
    "TRAINING_DEFAULTS",
    "DistributedContext",
    "EpochBatchSampler",
    "TrainingObjective",
    "batch_to_device",
    "check_resume_identity",
    "distributed_context",
    "file_sha256",
    "launch_command",
    "load_checkpoint",
    "load_model",
    "resolve_device",
    "resolve_training_config",
    "save_atomically",
    "train_model",
    "write_metrics_csv",
]

log = logging.getLogger(__name__)

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

BEST_FORMAT = "hcrlc.best/1"
RESUME_FORMAT = "hcrlc.resume/1"
METRIC_COLUMNS = ("epoch", "train_loss", "val_loss", "val_f1", "val_psnr", "seconds", "lr")
PRETEXT_COLUMNS = ("epoch", "train_loss", "val_loss", "val_acc", "chance_acc", "seconds", "lr")

#: The self-supervised pretext task (paper §4), trained by the same loop as the five models.
PRETEXT = "pretext"
#: Validation accuracy of guessing the pretext direction at random (1 of 4): written beside ``val_acc``.
PRETEXT_CHANCE_ACC = 1.0 / len(DIRECTIONS)
TRAINABLE_NAMES = (*MODEL_NAMES, PRETEXT)
LOG_VAR_COLUMNS = ("log_var_cls", "log_var_carl")

# domain tags keep the shuffling and dropout seed streams apart
_SHUFFLE, _DROPOUT = 1, 2


# --- configuration ------------------------------------------------------------------------------------------


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


# --- several processes --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands in a ``torchrun`` job (rank 0 of 1 when not launched by torchrun)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def distributed_context() -> DistributedContext:
    """Read ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` as set by ``torchrun``."""
    return DistributedContext(
        rank=int(os.environ.get("RANK", "0")),
        world_size=int(os.environ.get("WORLD_SIZE", "1")),
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
    )


def launch_command(n_procs: int, script: str | Path, args: Sequence[str] = ()) -> list[str]:
    """The command that runs ``script args`` on ``n_procs`` local GPUs: torchrun for > 1, else plain Python.

    A Snakemake rule that asks for ``gpus > 1`` runs, e.g. in its ``shell:``,
    ``launch_command(gpus, "workflow/scripts/train_cli.py", ["--model", "lc_net", ...])`` joined with spaces;
    the script calls :func:`train_model`, which reads the ranks from the environment torchrun sets.
    ``--standalone`` picks a free local rendezvous port, so several such jobs can share a node.
    """
    if n_procs < 1:
        raise ConfigError(f"training.gpus must be >= 1 to launch training, got {n_procs}")
    if n_procs == 1:
        return [sys.executable, str(script), *map(str, args)]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1",
            "--nproc_per_node", str(n_procs), str(script), *map(str, args)]


@contextlib.contextmanager
def _process_group(ctx: DistributedContext, device: torch.device) -> Iterator[None]:
    """Join the torchrun process group for the duration of training (nccl on CUDA, gloo on CPU)."""
    if not ctx.distributed or dist.is_initialized():
        yield
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    try:
        yield
    finally:
        dist.destroy_process_group()


# --- what one step sees -------------------------------------------------------------------------------------


def _derived_seed(*keys: int) -> int:
    """A 63-bit seed that depends on all of ``keys`` (seed, stream tag, epoch, rank)."""
    words = np.random.SeedSequence([int(k) for k in keys]).generate_state(2, np.uint32)
    return int(words.view(np.uint64)[0] >> np.uint64(1))


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class EpochBatchSampler(Sampler[list[int]]):
    """Index batches of one epoch: a permutation seeded by ``(seed, epoch)``, cut into global batches.

    ``max_samples`` keeps the first ``max_samples`` indices of each epoch's permutation (a seeded random
    subset). Under DDP every rank draws the same permutation and yields every ``world_size``-th index of each
    global batch of ``batch_size`` (which must be divisible by ``world_size``); the union over ranks of step
    ``i`` is the single-process batch ``i``. A last global batch with fewer samples than ranks is dropped
    (logged), so no rank gets an empty batch. Call :meth:`set_epoch` before iterating, as for
    ``DistributedSampler``.
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        *,
        seed: int,
        max_samples: int | None = None,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if n < 1:
            raise ConfigError("the training set is empty; check the split in index.parquet")
        if batch_size % world_size:
            raise ConfigError(
                f"training.batch_size {batch_size} is not divisible by the {world_size} DDP processes; "
                f"use a multiple of {world_size}"
            )
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.rank, self.world_size = rank, world_size
        n_epoch = min(n, max_samples or n)
        tail = n_epoch % batch_size
        if world_size > 1 and 0 < tail < world_size:
            log.warning("dropping the last %d sample(s) of every epoch: fewer than the %d DDP processes",
                        tail, world_size)
            n_epoch -= tail
        self.n_epoch = n_epoch
        self.epoch = 1

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def epoch_indices(self) -> torch.Tensor:
        """The indices of this epoch, in order, before sharding: ``(n_epoch,)`` int64."""
        generator = torch.Generator().manual_seed(_derived_seed(self.seed, _SHUFFLE, self.epoch))
        return torch.randperm(self.n, generator=generator)[: self.n_epoch]

    def global_batch_size(self, step: int) -> int:
        """Samples in global batch ``step`` (0-based), over all ranks."""
        return min(self.batch_size, self.n_epoch - step * self.batch_size)

    def __len__(self) -> int:
        return math.ceil(self.n_epoch / self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        indices = self.epoch_indices()
        for start in range(0, self.n_epoch, self.batch_size):
            yield indices[start : start + self.batch_size][self.rank :: self.world_size].tolist()


class TrainingObjective(nn.Module):
    """A network plus its training loss, so DDP (and ``torch.compile``) see one module.

    ``forward(x, s2, mask, y)`` takes a batch — ``x`` ``(N, 15, H, W)`` (13 cloudy S2 bands in [0, 1], 2 S1),
    ``s2`` ``(N, 13, H, W)`` clear target in [0, 1], ``mask`` ``(N, 1, H, W)`` in {0, 1}, ``y`` ``(N, 10)``
    multi-hot (``pretext``: ``s2`` and ``mask`` None, ``y`` ``(N,)`` int64 directions) — and returns
    ``(loss, outputs)``: the scalar float32 loss of model ``name`` (table in the module docstring) and the
    network's output dict. The uncertainty weighting's log-variances are parameters of this module, not of
    ``model``, so DDP averages their gradients too.
    """

    def __init__(self, name: str, model: nn.Module, weighting: nn.Module | None) -> None:
        super().__init__()
        self.name = name
        self.model = model
        self.weighting = weighting

    def forward(
        self, x: torch.Tensor, s2: torch.Tensor | None, mask: torch.Tensor | None, y: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        out = self.model(x)
        if self.name == PRETEXT:
            return F.cross_entropy(out[LOGITS].float(), y), out
        if self.name == "hcr_net":
            return carl_loss(out[RECON], s2, x[:, :S2_BANDS], mask), out
        l_cls = bce_loss(out[LOGITS], y)
        if self.weighting is None:  # lc_net, hcr_c_net
            return l_cls, out
        return self.weighting(l_cls, carl_loss(out[RECON], s2, x[:, :S2_BANDS], mask)), out


# --- checkpoints --------------------------------------------------------------------------------------------


def read_torch_file(path: Path, what: str, fix: str) -> Any:
    """``torch.load(path, weights_only=True)`` onto the CPU; a file that torch cannot read is a
    :class:`CheckpointError` naming ``what`` and giving our ``fix``.

    torch's own message for a file holding other objects advises retrying with ``weights_only=False``: wrong advice
    for a damaged or untrusted file (it runs arbitrary code), so only its diagnosis is kept.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for truncated or foreign files
        text = str(err)
        if "WeightsUnpickler error:" in text:
            detail = text.split("WeightsUnpickler error:", 1)[1].strip().splitlines()[0].split(". Please")[0]
            why = f"it holds Python objects that no file of this project contains ({detail}); it was not loaded"
        else:
            why = f"{type(err).__name__}: {text.strip().splitlines()[0] if text.strip() else 'no detail'}"
        raise CheckpointError(f"{path}: unreadable {what} ({why}). Fix: {fix}") from err


def load_checkpoint(path: str | Path, expected_name: str | None = None) -> dict[str, Any]:
    """Read a ``best.pt`` written by :func:`train_model` (``weights_only``; tensors on CPU).

    Raises :class:`CheckpointError` when the file is unreadable, is not such a checkpoint, or holds another
    model than ``expected_name``.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint missing. Fix: train the model first (snakemake train)")
    ckpt = read_torch_file(path, "checkpoint", "delete it and retrain the model (snakemake reruns it)")
    if not isinstance(ckpt, dict) or ckpt.get("format") != BEST_FORMAT:
        raise CheckpointError(
            f"{path}: not a best.pt of hcrlc.training (format {BEST_FORMAT!r} expected). Fix: pass the "
            "best.pt that train_model wrote, or retrain"
        )
    if expected_name is not None and ckpt["model_name"] != expected_name:
        raise CheckpointError(
            f"{path} holds model {ckpt['model_name']!r}, not {expected_name!r}. Fix: pass the best.pt of "
            f"{expected_name} (results/models/{expected_name}/best.pt)"
        )
    return ckpt


def load_model(
    path: str | Path,
    model_cfg: Mapping[str, Any] | None = None,
    *,
    expected_name: str | None = None,
    device: str | torch.device = "cpu",
) -> nn.Module:
    """The network stored in ``best.pt``, with its best-validation weights, in eval mode on ``device``.

    When ``model_cfg`` is given it must equal (after filling defaults) the config the checkpoint was trained
    with; otherwise :class:`CheckpointError` names the differing keys. ``expected_name`` is checked as in
    :func:`load_checkpoint`.
    """
    ckpt = load_checkpoint(path, expected_name)
    if model_cfg is not None:
        diff = _differences(ckpt["model_cfg"], resolve_model_config(model_cfg))
        if diff:
            raise CheckpointError(
                f"{path} was trained with another model config ({'; '.join(diff)}). Fix: retrain "
                f"{ckpt['model_name']} with the current config, or evaluate with the one it was trained with"
            )
    model = _build(ckpt["model_name"], ckpt["model_cfg"], ckpt["patch_size"], ckpt["n_classes"])
    try:
        model.load_state_dict(ckpt["state_dict"], strict=True)
    except RuntimeError as err:
        raise CheckpointError(
            f"{path}: weights do not fit {ckpt['model_name']} ({err}). Fix: retrain"
        ) from err
    return model.to(device).eval()


def _build(name: str, model_cfg: Mapping[str, Any], patch_size: int, n_classes: int) -> nn.Module:
    if name == PRETEXT:
        return build_model("lc_net", model_cfg, patch_size, n_classes=n_classes)
    if name == "hcr_net":  # no classification head to size
        return build_model(name, model_cfg, patch_size)
    return build_model(name, model_cfg, patch_size, n_classes=n_classes)


def _differences(
    found: Mapping[str, Any], expected: Mapping[str, Any], ignore: Sequence[str] = ()
) -> list[str]:
    """``"key: found → expected"`` for every key whose values differ."""
    keys = sorted((set(found) | set(expected)) - set(ignore))
    return [f"{k}: {found.get(k)!r} → {expected.get(k)!r}" for k in keys if found.get(k) != expected.get(k)]


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes (identifies the checkpoints a run starts from)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 24), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_resume_identity(state: Mapping[str, Any], identity: Mapping[str, Any], path: Path) -> None:
    """Raise :class:`CheckpointError` unless the resume ``state`` was written by a run with this ``identity``.

    ``identity`` holds ``model_name``, ``model_cfg``, ``train_cfg`` (whose :data:`EXECUTION_KEYS` may differ)
    and any other plain values, compared for equality; the message names every difference.
    """
    found = state.get("identity") if state.get("format") == RESUME_FORMAT else None
    if found is None:
        raise CheckpointError(
            f"{path} is not a resume state of hcrlc.training. Fix: delete the folder {path.parent} to start "
            "over"
        )
    diff = _differences(found, identity, ignore=("train_cfg", "model_cfg"))
    diff += [f"model.{d}" for d in _differences(found["model_cfg"], identity["model_cfg"])]
    diff += [f"training.{d}" for d in
             _differences(found["train_cfg"], identity["train_cfg"], ignore=EXECUTION_KEYS)]
    if diff:
        raise CheckpointError(
            f"{path} belongs to model {found['model_name']!r} with another config or data than this run of "
            f"{identity['model_name']!r} (found → now: {'; '.join(diff)}). Fix: delete the folder "
            f"{path.parent} to start over, or restore the config it was trained with to continue it"
        )


# --- starting from other weights, training part of a network ---------------------------------------------


def _under(name: str, prefixes: Sequence[str]) -> bool:
    """Whether the dotted ``name`` is one of ``prefixes`` or lies below one (``decoder`` ∋ ``decoder.x``)."""
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _load_init(
    model: nn.Module,
    weighting: nn.Module | None,
    name: str,
    path: Path,
    skip: Sequence[str],
    trainable: Sequence[str] | None,
) -> str:
    """Load ``path``'s weights except those under ``skip`` into ``model``; return the file's SHA-256.

    Every loaded key must exist in ``model`` with the same shape; with ``trainable`` set, every key left at
    its initialisation must be trainable. A checkpoint of model ``name`` also sets ``weighting``.
    """
    ckpt = load_checkpoint(path)
    stored = ckpt["state_dict"]
    unused_skip = [p for p in skip if not any(_under(k, [p]) for k in stored)]
    if unused_skip:
        raise ConfigError(f"init_skip prefix(es) {unused_skip} match no weight of {path}; its layers: "
                          f"{sorted({k.rsplit('.', 1)[0] for k in stored})}")
    loaded = {k: v for k, v in stored.items() if not _under(k, skip)}
    own = model.state_dict()
    misfits = [f"{k} {tuple(v.shape)}" + (f" vs {tuple(own[k].shape)}" if k in own else " (no such layer)")
               for k, v in loaded.items() if k not in own or own[k].shape != v.shape]
    if misfits:
        raise CheckpointError(
            f"{path} ({ckpt['model_name']}) does not fit {name}: {'; '.join(misfits[:5])}"
            f"{' …' if len(misfits) > 5 else ''}. Fix: start from a checkpoint trained with the same model "
            "config, or add the differing layers to init_skip"
        )
    new = [k for k in own if k not in loaded]
    untrained = [k for k in new if trainable is not None and not _under(k, trainable)]
    if untrained:
        raise CheckpointError(
            f"{path} holds no weights for {untrained[:5]}, which would stay at their random initialisation "
            f"while frozen. Fix: add their layers to trainable, or start from a checkpoint that has them"
        )
    model.load_state_dict(loaded, strict=False)
    if weighting is not None and ckpt["model_name"] == name and ckpt["weighting"] is not None:
        weighting.load_state_dict(ckpt["weighting"])
    log.info("%s: %d tensors from %s (%s, epoch %d); newly initialised: %s", name, len(loaded), path,
             ckpt["model_name"], ckpt["epoch"], sorted({k.rsplit(".", 1)[0] for k in new}) or "none")
    return file_sha256(path)


def _freeze_all_but(model: nn.Module, trainable: Sequence[str]) -> None:
    """``requires_grad`` only for the parameters under a ``trainable`` prefix (each must match one)."""
    names = [n for n, _ in model.named_parameters()]
    unmatched = [p for p in trainable if not any(_under(n, [p]) for n in names)]
    if unmatched or not trainable:
        raise ConfigError(f"trainable prefix(es) {unmatched or list(trainable)} match no parameter; the "
                          f"network's layers: {sorted({n.rsplit('.', 1)[0] for n in names})}")
    for n, param in model.named_parameters():
        if not _under(n, trainable):
            param.requires_grad_(False)


def _frozen_modules(model: nn.Module, trainable: Sequence[str] | None) -> list[nn.Module]:
    """The submodules that hold no trainable layer: kept in eval mode (BatchNorm statistics stay put)."""
    if trainable is None:
        return []
    return [m for n, m in model.named_modules()
            if n and not _under(n, trainable) and not any(p.startswith(n + ".") for p in trainable)]


# --- validation ---------------------------------------------------------------------------------------------


@torch.no_grad()
def _validate(
    objective: TrainingObjective,
    loader: DataLoader,
    device: torch.device,
    *,
    channels_last: bool,
    want_f1: bool,
    want_psnr: bool,
    want_acc: bool = False,
) -> dict[str, float | None]:
    """Mean loss, micro-F1 (sigmoid ≥ 0.5) and mean per-image PSNR of ``objective`` on ``loader``, in fp32
    whatever ``training.precision`` is (no autocast, TF32 off): the best epoch is chosen on full-precision scores.

    ``want_acc`` (pretext) adds ``val_acc``, the fraction of samples whose arg-max logit is ``y``.
    """
    objective.eval()
    loss_sum, n, n_correct = 0.0, 0, 0
    logits, targets, psnr = [], [], []
    for batch in loader:
        x, s2, mask, y = batch_to_device(batch, device, channels_last)
        with torch.autocast(device_type=device.type, enabled=False), tf32_math(False):
            loss, out = objective(x, s2, mask, y)
        loss_sum += loss.item() * len(x)
        n += len(x)
        if want_f1:
            logits.append(out[LOGITS].float().cpu())
            targets.append(y.cpu())
        if want_psnr:
            psnr.append(torch.from_numpy(psnr_per_image(out[RECON].float(), s2)))
        if want_acc:
            n_correct += int((out[LOGITS].argmax(dim=1) == y).sum())
    f1 = None
    if want_f1:
        predicted = (torch.sigmoid(torch.cat(logits)) >= PREDICTION_THRESHOLD).numpy()
        f1 = float(f1_score(torch.cat(targets).numpy() >= 0.5, predicted, average="micro", zero_division=0))
    mean_psnr = float(torch.cat(psnr).mean()) if want_psnr else None
    if want_acc:
        return {"val_loss": loss_sum / n, "val_acc": n_correct / n}
    return {"val_loss": loss_sum / n, "val_f1": f1, "val_psnr": mean_psnr}


def batch_to_device(
    batch: Mapping[str, torch.Tensor], device: torch.device, channels_last: bool
) -> list[torch.Tensor | None]:
    """``x``, ``s2``, ``mask``, ``y`` of a batch on ``device`` (None for what it lacks: pretext batches).

    A batch of raw items (``TripletDataset(raw=True)``: stored DN and packed masks) is prepared on ``device``, so
    loader workers only copy bytes; prepared batches pass through unchanged.
    """
    if "x" not in batch:
        batch = prepare_batch({k: v.to(device, non_blocking=True) for k, v in batch.items()})
    x = batch["x"].to(device, non_blocking=True)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return [x] + [batch[k].to(device, non_blocking=True) if k in batch else None for k in ("s2", "mask", "y")]


# --- output files -------------------------------------------------------------------------------------------


def write_metrics_csv(rows: Sequence[Mapping[str, Any]], path: Path, columns: Sequence[str]) -> None:
    """One row per epoch, ``columns`` in order, None as an empty cell; atomically."""
    with atomic_output(path) as tmp, tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if row.get(k) is None else row[k] for k in columns})


def save_atomically(obj: Mapping[str, Any], path: Path) -> None:
    """``torch.save`` a dict of tensors and plain values to ``path``, atomically."""
    with atomic_output(path) as tmp:
        torch.save(dict(obj), tmp)


def _tensorboard_writer(log_dir: Path, start_epoch: int, epoch_offset: int) -> Any:
    """A TensorBoard ``SummaryWriter`` into ``log_dir`` for epochs ``start_epoch``…, step = offset + epoch.

    A run that starts from its first epoch removes earlier event files in ``log_dir`` (a run started over
    must not show the curves of the run it replaces); a resumed run purges the steps from its first new one
    on, which a killed process may have written after its last resume state. Raises
    :class:`TrainingError` when the ``tensorboard`` package (a dependency) is missing.
    """
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as err:
        raise TrainingError(
            f"cannot write the learning curves to {log_dir}: the tensorboard package is missing ({err}). "
            "Fix: pip install tensorboard (a dependency of hcrlc: pip install -e .)"
        ) from err
    if start_epoch <= 1 or not log_dir.is_dir():
        shutil.rmtree(log_dir, ignore_errors=True)
        return SummaryWriter(str(log_dir))
    return SummaryWriter(str(log_dir), purge_step=epoch_offset + start_epoch)


def _cpu_copy(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in state.items()}


# --- the loop -----------------------------------------------------------------------------------------------


def train_model(
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
    code_version: str | None = None,
    progress: bool = True,
    tensorboard_dir: str | Path | None = None,
    epoch_offset: int = 0,
) -> dict[str, Any]:
    """Train model ``name``, pick its best epoch on ``val_ds``, write ``best.pt`` and ``metrics.csv``.

    Args:
        name: one of ``lc_net``, ``hcr_net``, ``hcr_lc_equal``, ``hcr_lc_uncertain``, ``hcr_c_net``,
            ``pretext``.
        train_ds, val_ds: datasets of :class:`~hcrlc.data.dataset.TripletDataset` items (dicts with ``x``
            ``(15, H, W)``, ``s2`` ``(13, H, W)``, ``mask`` ``(1, H, W)``, ``y`` ``(10,)``), ``H == W``; for
            ``pretext`` of :class:`~hcrlc.pretext.PretextDataset` items (``x``, ``y`` 0-d int64 direction).
        out_dir: receives ``best.pt`` and ``metrics.csv`` at the end; ``out_dir/resume/`` meanwhile.
        model_cfg: the config's ``model`` section; train_cfg: its ``training`` section (merged per model).
        hcr_checkpoint: for ``hcr_c_net`` only — the ``best.pt`` of the trained ``hcr_net``, frozen inside.
        init_checkpoint: a ``best.pt`` to start from instead of the seeded initialisation (module docstring).
        init_skip: parameter-name prefixes of ``init_checkpoint`` not to load (e.g. ``"classifier.head"``).
        trainable: parameter-name prefixes that train; None trains every parameter.
        code_version: the workflow's hash of the code this run executes (:mod:`hcrlc.provenance`); part of
            the resume identity, so a state written by other code is refused instead of continued.
        progress: draw tqdm progress bars on stderr.
        tensorboard_dir: where the TensorBoard event files go (default ``out_dir/tensorboard``): every
            column of metrics.csv per epoch, tag = column name, step = ``epoch_offset`` + epoch.
        epoch_offset: epochs that precede this training in a longer run (a later stage of an SSL run), so
            that its curves continue on the run's epoch axis.

    Returns:
        ``model_name``, ``metric`` (``val_f1``, ``val_psnr`` or, for ``pretext``, ``val_acc``) and
        ``rank``; on rank 0 also ``best_epoch``, ``best_value``, ``metrics`` (one dict per epoch) and
        ``best_path``, ``metrics_path``.

    Raises:
        ConfigError: unknown model or config key, wrong ``hcr_checkpoint`` use, unusable shapes, a
            ``trainable`` or ``init_skip`` prefix that matches nothing.
        CheckpointError: ``out_dir/resume/state.pt`` belongs to another model, config, init or code version;
            ``hcr_checkpoint`` or ``init_checkpoint`` does not fit the network.
        TrainingError: ``device: cuda`` without CUDA; a non-finite loss (the last epoch's resume state is
            kept).
    """
    # --- configuration and data shapes
    if name not in TRAINABLE_NAMES:
        raise ConfigError(f"unknown model {name!r}; choose one of {list(TRAINABLE_NAMES)}")
    if init_skip and init_checkpoint is None:
        raise ConfigError(f"init_skip {list(init_skip)} needs an init_checkpoint to skip keys of")
    if (name == "hcr_c_net") != (hcr_checkpoint is not None):
        raise ConfigError(
            "hcr_checkpoint is the trained hcr_net's best.pt: required for hcr_c_net and only for it "
            f"(model {name!r}, hcr_checkpoint={hcr_checkpoint!r})"
        )
    model_cfg = resolve_model_config(model_cfg)
    cfg = resolve_training_config(train_cfg)
    if len(val_ds) == 0:
        raise ConfigError("the validation set is empty; set split.val_fraction so that val gets samples")
    sample = train_ds[0]
    height, width = sample["x" if "x" in sample else "s2_cloudy"].shape[-2:]  # prepared or raw item
    if height != width:
        raise ConfigError(f"training needs square patches, got {height}x{width} px")
    if (name == PRETEXT) != (sample["y"].ndim == 0):
        raise ConfigError(
            f"model {name!r} got items whose y has shape {tuple(sample['y'].shape)}: pretext trains on "
            "PretextDataset items (y = one direction) and only pretext does"
        )
    patch_size = int(height)
    n_classes = len(DIRECTIONS) if name == PRETEXT else int(sample["y"].shape[0])
    out_dir = Path(out_dir)
    resume_dir = out_dir / "resume"
    state_path = resume_dir / "state.pt"

    # --- device, processes, determinism
    ctx = distributed_context()
    device = resolve_device(cfg["device"], ctx.local_rank)
    if ctx.world_size == 1 and cfg["gpus"] > 1:
        log.warning("training.gpus is %d but this process was not started by torchrun: training on one "
                    "device. Launch with hcrlc.training.launch_command to use several", cfg["gpus"])
    cuda = device.type == "cuda"
    bf16 = cuda and cfg["precision"] == "bf16"
    tf32 = cuda and cfg["precision"] in ("tf32", "bf16")
    if not cuda and cfg["precision"] != "fp32":
        log.info("training.precision %s applies on CUDA only: training in fp32 on %s", cfg["precision"], device)
    if cfg["deterministic"] and cuda:
        # cuBLAS reads this at its first call: reproducible matmuls need it set before then
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    deterministic_before = torch.are_deterministic_algorithms_enabled()
    benchmark_before = torch.backends.cudnn.benchmark
    torch.use_deterministic_algorithms(cfg["deterministic"])
    torch.backends.cudnn.benchmark = cuda and not cfg["deterministic"]
    tensorboard_dir = out_dir / "tensorboard" if tensorboard_dir is None else Path(tensorboard_dir)
    try:
        with _process_group(ctx, device), tf32_math(tf32):
            return _train(name, train_ds, val_ds, out_dir, state_path, model_cfg, cfg, hcr_checkpoint,
                          progress, ctx=ctx, device=device, bf16=bf16, patch_size=patch_size,
                          n_classes=n_classes, init_checkpoint=init_checkpoint, init_skip=tuple(init_skip),
                          trainable=None if trainable is None else tuple(trainable),
                          code_version=code_version, tensorboard_dir=tensorboard_dir,
                          epoch_offset=epoch_offset)
    finally:
        torch.use_deterministic_algorithms(deterministic_before)
        torch.backends.cudnn.benchmark = benchmark_before


def _train(
    name: str,
    train_ds: Dataset,
    val_ds: Dataset,
    out_dir: Path,
    state_path: Path,
    model_cfg: dict[str, Any],
    cfg: dict[str, Any],
    hcr_checkpoint: str | Path | None,
    progress: bool,
    *,
    ctx: DistributedContext,
    device: torch.device,
    bf16: bool,
    patch_size: int,
    n_classes: int,
    init_checkpoint: str | Path | None,
    init_skip: tuple[str, ...],
    trainable: tuple[str, ...] | None,
    code_version: str | None,
    tensorboard_dir: Path,
    epoch_offset: int,
) -> dict[str, Any]:
    """The body of :func:`train_model`, inside its device, process-group and determinism settings."""
    seed = cfg["seed"]
    resume_dir = state_path.parent

    # --- model, loss, optimiser
    _seed_everything(seed)
    model = _build(name, model_cfg, patch_size, n_classes)
    hcr_sha256 = None
    if hcr_checkpoint is not None:
        hcr = load_checkpoint(hcr_checkpoint, expected_name="hcr_net")
        model.load_hcr_state(hcr["state_dict"])
        hcr_sha256 = file_sha256(Path(hcr_checkpoint))
    weighting = None if name == PRETEXT else make_weighting(name)
    if trainable is not None:
        _freeze_all_but(model, trainable)
    init_sha256 = None
    if init_checkpoint is not None:
        init_sha256 = _load_init(model, weighting, name, Path(init_checkpoint), init_skip, trainable)
    objective = TrainingObjective(name, model, weighting).to(device)
    if bf16:
        objective = objective.to(memory_format=torch.channels_last)
    if ctx.distributed and device.type == "cuda":
        objective = nn.SyncBatchNorm.convert_sync_batchnorm(objective)
    # after the SyncBatchNorm conversion, which replaces modules
    frozen_modules = _frozen_modules(model, trainable)
    optimizer = torch.optim.Adam(
        [p for p in objective.parameters() if p.requires_grad], lr=cfg["lr"], weight_decay=cfg["weight_decay"]
    )
    if name == PRETEXT:
        metric, want_psnr, columns = "val_acc", False, PRETEXT_COLUMNS
    else:
        metric = "val_f1" if LOGITS in model.heads else "val_psnr"
        want_psnr = RECON in model.heads and name != "hcr_c_net"  # hcr_c_net's reconstruction is frozen
        columns = METRIC_COLUMNS + (LOG_VAR_COLUMNS if isinstance(weighting, UncertaintyWeighting) else ())

    # --- resume
    identity = {
        "model_name": name,
        "model_cfg": model_cfg,
        "train_cfg": cfg,
        "n_train": len(train_ds),
        "n_val": len(val_ds),
        "patch_size": patch_size,
        "n_classes": n_classes,
        "hcr_checkpoint_sha256": hcr_sha256,
        "init_checkpoint_sha256": init_sha256,
        "init_skip": sorted(init_skip) if init_checkpoint is not None else None,
        "trainable": sorted(trainable) if trainable is not None else None,
        "code_version": code_version,
    }
    start_epoch, rows = 1, []
    best = {"epoch": 0, "value": -math.inf, "state_dict": None, "weighting": None}
    if state_path.is_file():
        state = read_torch_file(state_path, "resume state", f"delete the folder {resume_dir} to start over")
        check_resume_identity(state, identity, state_path)
        model.load_state_dict(state["model"])
        if weighting is not None:
            weighting.load_state_dict(state["weighting"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch, rows, best = state["epoch"] + 1, list(state["metrics"]), dict(state["best"])
        log.info("%s: resuming after epoch %d from %s", name, state["epoch"], state_path)
    if ctx.is_main:
        remove_stale_temp_files(state_path)  # left by a save of the resume state that was killed

    # --- execution wrappers and data loaders
    runner: nn.Module = objective
    if ctx.distributed:
        device_ids = [device.index] if device.type == "cuda" else None
        runner = nn.parallel.DistributedDataParallel(objective, device_ids=device_ids)
    if cfg["compile"]:
        runner = torch.compile(runner)
    autocast = torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16)
    sampler = EpochBatchSampler(len(train_ds), cfg["batch_size"], seed=seed,
                                max_samples=cfg["max_train_samples"], rank=ctx.rank,
                                world_size=ctx.world_size)
    loader_options = {
        "num_workers": cfg["num_workers"],
        "pin_memory": device.type == "cuda",
        "persistent_workers": cfg["num_workers"] > 0,
        "generator": torch.Generator().manual_seed(seed),  # worker seeds must not draw from the global RNG
    }
    redraws = hasattr(train_ds, "set_epoch")  # its workers must see each epoch's set_epoch
    persistent = loader_options["persistent_workers"] and not redraws
    train_options = dict(loader_options, persistent_workers=persistent)
    train_loader = DataLoader(train_ds, batch_sampler=sampler, **train_options)
    val_loader = DataLoader(val_ds, batch_size=cfg["batch_size"], shuffle=False, **loader_options)
    writer = _tensorboard_writer(tensorboard_dir, start_epoch, epoch_offset) if ctx.is_main else None
    log.info("%s: %d train / %d val samples of %d px on %s (%d process(es)), epochs %d..%d, training in %s, "
             "%s selects%s (validated in fp32)", name, sampler.n_epoch, len(val_ds), patch_size, device,
             ctx.world_size, start_epoch, cfg["epochs"], cfg["precision"] if device.type == "cuda" else "fp32",
             metric, f" (chance {PRETEXT_CHANCE_ACC:.2f})" if name == PRETEXT else "")

    for epoch in range(start_epoch, cfg["epochs"] + 1):
        # --- train one epoch
        started = time.perf_counter()
        _seed_everything(_derived_seed(seed, _DROPOUT, epoch, ctx.rank))
        sampler.set_epoch(epoch)
        if redraws:
            train_ds.set_epoch(epoch)
        objective.train()
        for module in frozen_modules:
            module.eval()
        loss_sum, n_seen = 0.0, 0
        bar = tqdm(train_loader, desc=f"{name} epoch {epoch}/{cfg['epochs']}", leave=False,
                   disable=not (progress and ctx.is_main),
                   mininterval=1.0 if sys.stderr.isatty() else 30.0)  # a log file gets a line per 30 s
        for step, batch in enumerate(bar):
            x, s2, mask, y = batch_to_device(batch, device, bf16)
            n_global = sampler.global_batch_size(step)
            with autocast:
                loss, _ = runner(x, s2, mask, y)
            # DDP averages gradients over ranks: weight each rank's mean by its share of the global batch
            loss = loss * (len(x) * ctx.world_size / n_global)
            batch_loss = loss.detach().clone()
            if ctx.distributed:
                dist.all_reduce(batch_loss)
                batch_loss /= ctx.world_size
            value = batch_loss.item()
            if not math.isfinite(value):
                kept = (f"the resume state of epoch {epoch - 1} in {state_path} is intact" if epoch > 1
                        else "no epoch had completed, so there is nothing to resume")
                raise TrainingError(
                    f"{name}: non-finite training loss ({value}) at epoch {epoch}, batch {step + 1} of "
                    f"{len(sampler)}; {kept}. Fix: check the inputs for NaN/inf or lower training.lr, then "
                    "rerun"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += value * n_global
            n_seen += n_global
            bar.set_postfix(loss=f"{value:.4f}", refresh=False)
        bar.close()

        # --- validate, remember the best epoch, save the resume state (rank 0)
        if ctx.is_main:
            row: dict[str, Any] = {"epoch": epoch, "train_loss": loss_sum / n_seen}
            row |= _validate(objective, val_loader, device, channels_last=bf16,
                             want_f1=metric == "val_f1", want_psnr=want_psnr, want_acc=metric == "val_acc")
            if name == PRETEXT:
                row["chance_acc"] = PRETEXT_CHANCE_ACC
            row |= {"seconds": time.perf_counter() - started, "lr": optimizer.param_groups[0]["lr"]}
            if isinstance(weighting, UncertaintyWeighting):
                row |= {"log_var_cls": weighting.log_var_cls.item(),
                        "log_var_carl": weighting.log_var_carl.item()}
            rows.append(row)
            if row[metric] > best["value"]:
                best = {"epoch": epoch, "value": row[metric], "state_dict": _cpu_copy(model.state_dict()),
                        "weighting": _cpu_copy(weighting.state_dict()) if weighting is not None else None}
            if writer is not None:
                # before the resume state: a process killed in between redoes this epoch, whose steps the
                # resumed writer purges
                for key, value in row.items():
                    if key != "epoch" and value is not None:
                        writer.add_scalar(key, value, epoch_offset + epoch)
                writer.flush()
            save_atomically({
                "format": RESUME_FORMAT,
                "identity": identity,
                "epoch": epoch,
                "model": model.state_dict(),
                "weighting": weighting.state_dict() if weighting is not None else None,
                "optimizer": optimizer.state_dict(),
                "best": best,
                "metrics": rows,
            }, state_path)
            log.info("%s epoch %d/%d: %s", name, epoch, cfg["epochs"],
                     ", ".join(f"{k} {v:.5g}" for k, v in row.items() if k != "epoch" and v is not None))
        if ctx.distributed:
            dist.barrier()

    # --- the job's outputs, written once at the end
    summary: dict[str, Any] = {"model_name": name, "metric": metric, "rank": ctx.rank}
    if ctx.is_main:
        if writer is not None:
            writer.close()
        metrics_path, best_path = out_dir / "metrics.csv", out_dir / "best.pt"
        write_metrics_csv(rows, metrics_path, columns)
        save_atomically({
            "format": BEST_FORMAT,
            "model_name": name,
            "model_cfg": model_cfg,
            "train_cfg": cfg,
            "patch_size": patch_size,
            "n_classes": n_classes,
            "epoch": best["epoch"],
            "metric": metric,
            "value": best["value"],
            "state_dict": best["state_dict"],
            "weighting": best["weighting"],
            "init_checkpoint_sha256": init_sha256,
            "trainable": identity["trainable"],
        }, best_path)
        shutil.rmtree(resume_dir, ignore_errors=True)
        log.info("%s: best %s %.5g at epoch %d -> %s", name, metric, best["value"], best["epoch"], best_path)
        summary |= {"best_epoch": best["epoch"], "best_value": best["value"], "metrics": rows,
                    "best_path": best_path, "metrics_path": metrics_path}
    if ctx.distributed:
        dist.barrier()
    return summary
