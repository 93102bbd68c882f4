"""Self-supervised pre-training, the three-stage schedule of paper §4 and the label-fraction study (Fig. 4).

========  ==============================================  ==================  ============================
stage     network, initialised from                       trains              epochs [P]
========  ==============================================  ==================  ============================
pretext   encoder + classification branch with a 4-way    everything          ``ssl.pretext_epochs`` (20)
          head (``build_model("lc_net", n_classes=4)``),
          seeded
frozen    HCR&LC-Net; the pretext ``best.pt`` less its    :data:`NEW_LAYERS`  ``ssl.frozen_epochs`` (5)
          head (:data:`PRETEXT_SKIP`)
finetune  HCR&LC-Net; the frozen stage's ``best.pt``      everything          ``ssl.finetune_epochs`` (10)
========  ==============================================  ==================  ============================

``ssl_on_{f}`` runs the frozen and fine-tuning stages on the labelled subset of ``f`` % of the training split;
``ssl_off_{f}`` trains the same network from its seeded initialisation, all layers, on the same subset for
``ssl.scratch_epochs`` epochs (null, the default: ``training.epochs`` with the ``models.ssl`` overrides — 10, the
epochs of every model of the paper). Both validate on the whole validation split.

**Decisions** (the paper does not say; the authors' code has no pretext code):

* *Downstream network: HCR&LC-Net with uncertainty weighting* (``hcr_lc_uncertain``). §4 pre-trains "the
  classification part" and then adds "the new HCR layers", so the network that is fine-tuned has both branches
  on the shared encoder: an HCR&LC-Net. Of its two loss weightings the uncertainty weighting is the paper's
  proposed multi-task model, the better of the two in Table 2 (F1 0.6847), and the one whose 100 % F1 Fig. 4
  improves on (≈ 0.703 with the pretext).
* *What the pretext hands on*: the encoder and the classification convs. Its 4-way head (``classifier.head``)
  does not fit the 10 classes; it, the decoder and the reconstruction head are new (:data:`NEW_LAYERS`) and
  are the only layers the frozen stage trains. The loss weighting's log-variances start at 0 and train
  throughout. Frozen layers keep ``requires_grad`` False, are not in the optimiser, and stay in eval mode
  (their BatchNorm statistics are the pretext's); see :func:`hcrlc.training.train_model`.
* *The fine-tuning stage starts from the frozen stage's best epoch*, as every stage ends in a ``best.pt``
  chosen on validation micro-F1 — the rule that selects every model of this project — and it continues that
  stage's loss weighting; its Adam state is fresh (the optimiser now holds other parameters). With
  ``frozen_epochs: 0`` it starts from the pretext directly.
* *The run's model is the best epoch of its last stage* by validation micro-F1: for ``ssl_on`` the fine-tuning
  stage (stage 3, all layers), as the paper's final model is stage 3's — an epoch of the frozen stage, encoder
  still at its pretext weights, is never the result; for ``ssl_off`` its only stage. ``metrics.csv`` keeps the
  rows of every stage.
* *Pretext data.* Training anchors are the training split, and their neighbours too: no validation image
  trains any network, not even without labels. Validation anchors are the validation split with neighbours
  from training and validation patches of the same scene — with ``split.val_mode: patches`` two validation
  patches rarely neighbour each other; with ``scenes`` every neighbour of a validation anchor is itself a
  validation patch — and every (anchor, neighbour) pair is one validation item, so every epoch is scored on the
  same pairs and no direction a patch has is left out.
  Test scenes are never used. Anchors without a neighbour are left out.
* *Seeds.* A run's ``seed`` draws its labelled subset (:func:`~hcrlc.pretext.nested_label_subsets`: the same
  seed gives nested subsets, 25 % ⊂ 50 % ⊂ 75 % ⊂ 100 %, and the same subset to ``ssl_on`` and ``ssl_off``),
  initialises, shuffles and, in the pretext, draws directions; it replaces ``train_cfg["seed"]``.

**Files.** ``out_dir/best.pt`` (a :func:`~hcrlc.training.load_model`-able ``hcr_lc_uncertain`` checkpoint; its
``epoch`` counts over the whole run, ``stage`` names the stage it comes from) and ``out_dir/metrics.csv`` (one
row per epoch: ``stage``, the run's ``epoch``, ``stage_epoch``, then the training columns) are written once,
at the end. Until then ``out_dir/resume/`` holds ``run.pt`` (the run's identity: config, fraction, subset
size, pretext SHA-256) and one folder per stage, in which :func:`~hcrlc.training.train_model` trains; a killed
job continues in the stage and epoch where it stopped, and a run of another config is refused
(:class:`CheckpointError`).
TensorBoard event files go to ``out_dir/tensorboard/{stage}/`` (``frozen`` and ``finetune``, or ``scratch``),
written as each epoch ends: every metrics.csv column, step = the run's epoch (as in metrics.csv), so the
stages line up on one axis in TensorBoard and show as separate runs named after the stage. A run that starts
over (no ``resume/run.pt``) removes the event files of the run it replaces.
"""

from __future__ import annotations

import csv
import logging
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset, Subset

from hcrlc.data.dataset import TripletDataset, load_index
from hcrlc.errors import ConfigError
from hcrlc.model_specs import SSL_MODEL
from hcrlc.models import resolve_model_config
from hcrlc.paper import LABEL_FRACTIONS
from hcrlc.pretext import PretextDataset, nested_label_subsets
from hcrlc.training import (
    PRETEXT,
    RESUME_FORMAT,
    check_resume_identity,
    file_sha256,
    load_checkpoint,
    read_torch_file,
    resolve_training_config,
    save_atomically,
    train_model,
    write_metrics_csv,
)

__all__ = ["NEW_LAYERS", "PRETEXT_SKIP", "SSL_MODEL", "pretext_datasets", "pretext_job", "ssl_job"]

log = logging.getLogger(__name__)

#: Pretext weights that do not carry over: the 4-way direction head.
PRETEXT_SKIP = ("classifier.head",)
#: The layers the pretext network lacks: the only ones the frozen stage trains.
NEW_LAYERS = ("decoder", "recon_head", "classifier.head")
STAGE_COLUMNS = ("stage", "epoch", "stage_epoch")


def pretext_datasets(
    index_path: str | Path, shards_dir: str | Path, masks_dir: str | Path, seed: int
) -> tuple[PretextDataset, PretextDataset]:
    """(train, validation) pretext data sets of the index; anchors and neighbours: module docstring.

    Training draws one direction per anchor and epoch; validation holds every (anchor, neighbour) pair once.
    """
    frame = load_index(index_path)
    pool = frame[frame["split"].isin(["train", "val"])].reset_index(drop=True)
    train = pool[pool["split"] == "train"]
    train_ds = PretextDataset(train, shards_dir, masks_dir, seed=seed)
    val_anchor = (pool["split"] == "val").to_numpy()
    val_ds = PretextDataset(pool, shards_dir, masks_dir, seed=seed, anchor=val_anchor, every_pair=True)
    return train_ds, val_ds


def pretext_job(
    index_path: str | Path,
    shards_dir: str | Path,
    masks_dir: str | Path,
    out_dir: str | Path,
    *,
    model_cfg: Mapping[str, Any] | None,
    train_cfg: Mapping[str, Any] | None,
    epochs: int,
    seed: int,
    code_version: str | None = None,
) -> dict[str, Any]:
    """Stage 1: train the pretext network; ``out_dir/best.pt`` is its best epoch by validation accuracy.

    ``train_cfg`` is the config's ``training`` section with the ``models.pretext`` overrides; ``epochs`` and
    ``seed`` replace its own. Returns :func:`~hcrlc.training.train_model`'s summary plus ``n_train`` and
    ``n_val``.
    """
    train_ds, val_ds = pretext_datasets(index_path, shards_dir, masks_dir, seed)
    log.info("pretext: %d train anchors / %d val pairs", len(train_ds), len(val_ds))
    summary = train_model(PRETEXT, train_ds, val_ds, out_dir, model_cfg=model_cfg,
                          train_cfg={**(train_cfg or {}), "epochs": epochs, "seed": seed},
                          code_version=code_version)
    return summary | {"n_train": len(train_ds), "n_val": len(val_ds)}


def ssl_job(
    run: str,
    index_path: str | Path,
    shards_dir: str | Path,
    masks_dir: str | Path,
    out_dir: str | Path,
    *,
    model_cfg: Mapping[str, Any] | None,
    train_cfg: Mapping[str, Any] | None,
    fraction: int,
    pretext_checkpoint: str | Path | None,
    frozen_epochs: int,
    finetune_epochs: int,
    seed: int,
    scratch_epochs: int | None = None,
    code_version: str | None = None,
) -> dict[str, Any]:
    """``ssl_on_*`` (frozen + fine-tuning stages from ``pretext_checkpoint``) or ``ssl_off_*`` (from scratch).

    Args:
        run: the run's name, ``ssl_on_…`` with a ``pretext_checkpoint`` or ``ssl_off_…`` without.
        index_path, shards_dir, masks_dir: the data stage's outputs.
        out_dir: receives ``best.pt`` and ``metrics.csv`` at the end; ``out_dir/resume/`` meanwhile.
        model_cfg: the config's ``model`` section; train_cfg: ``training`` with the ``models.ssl`` overrides
            (its ``epochs`` and ``seed`` are replaced).
        fraction: percent of the training split that keeps its labels, one of 25, 50, 75, 100.
        pretext_checkpoint: the pretext's ``best.pt`` (ssl_on) or None (ssl_off).
        frozen_epochs, finetune_epochs: epochs of the two stages of ssl_on.
        seed: draws the labelled subset and seeds training (module docstring).
        scratch_epochs: epochs of ssl_off; None = ``train_cfg``'s ``epochs`` (10 by default, as every model of
            the paper).
        code_version: the workflow's hash of the code (:mod:`hcrlc.provenance`); a run or stage left by other
            code is refused rather than continued.

    Returns:
        ``run``, ``best_stage`` (the last stage), ``best_epoch`` (counted over the whole run), ``best_value``
        (validation micro-F1), ``n_train`` (the labelled subset), ``n_val``, ``metrics`` (one dict per epoch), ``best_path``,
        ``metrics_path``.
    """
    ssl_on = pretext_checkpoint is not None
    _check_ssl_arguments(run, pretext_checkpoint, fraction, frozen_epochs, finetune_epochs, scratch_epochs)
    out_dir = Path(out_dir)
    train_ds, val_ds = _labelled_split(run, index_path, shards_dir, masks_dir, fraction, seed)
    model_cfg = resolve_model_config(model_cfg)
    cfg = resolve_training_config({**(train_cfg or {}), "seed": seed})
    scratch_epochs = cfg["epochs"] if scratch_epochs is None else scratch_epochs
    pretext_sha256 = None
    if ssl_on:
        load_checkpoint(pretext_checkpoint, expected_name=PRETEXT)
        pretext_sha256 = file_sha256(Path(pretext_checkpoint))
    ssl = _SslRun(run, train_ds, val_ds, out_dir, model_cfg, cfg, code_version)
    _start_run(ssl, {
        "model_name": run,
        "model_cfg": model_cfg,
        "train_cfg": {k: v for k, v in cfg.items() if k != "epochs"},  # each stage sets its own
        "label_fraction": fraction,
        "n_train": len(train_ds),
        "n_val": len(val_ds),
        "pretext_checkpoint_sha256": pretext_sha256,
        "frozen_epochs": frozen_epochs,
        "finetune_epochs": finetune_epochs,
        "scratch_epochs": None if ssl_on else scratch_epochs,
        "code_version": code_version,
    })
    stages = _run_stages(ssl, pretext_checkpoint, frozen_epochs, finetune_epochs, scratch_epochs)
    return _write_run_outputs(run, stages, out_dir, extra={
        "label_fraction": fraction, "n_train": len(train_ds), "n_val": len(val_ds),
        "pretext_checkpoint_sha256": pretext_sha256})


def _check_ssl_arguments(
    run: str,
    pretext_checkpoint: str | Path | None,
    fraction: int,
    frozen_epochs: int,
    finetune_epochs: int,
    scratch_epochs: int | None,
) -> None:
    """:class:`ConfigError` for arguments of :func:`ssl_job` that do not make a run of Fig. 4."""
    if not run.startswith("ssl_on_" if pretext_checkpoint is not None else "ssl_off_"):
        raise ConfigError(
            f"run {run!r}: ssl_on_… runs start from a pretext checkpoint and ssl_off_… runs from scratch; "
            f"got pretext_checkpoint={pretext_checkpoint!r}"
        )
    if fraction not in LABEL_FRACTIONS:
        raise ConfigError(f"label fraction {fraction} % is not one of Fig. 4's {list(LABEL_FRACTIONS)}")
    if frozen_epochs < 0 or finetune_epochs < 1:
        raise ConfigError(f"ssl needs frozen_epochs >= 0 and finetune_epochs >= 1, got {frozen_epochs} and "
                          f"{finetune_epochs}")
    if scratch_epochs is not None and scratch_epochs < 1:
        raise ConfigError(f"ssl.scratch_epochs must be >= 1 or null (= training.epochs), got {scratch_epochs}")


def _labelled_split(
    run: str, index_path: str | Path, shards_dir: str | Path, masks_dir: str | Path, fraction: int, seed: int
) -> tuple[Dataset, Dataset]:
    """The labelled ``fraction`` % of the training split (drawn from ``seed``) and the whole validation split."""
    train_split = TripletDataset(load_index(index_path, "train"), shards_dir, masks_dir)
    val_ds = TripletDataset(load_index(index_path, "val"), shards_dir, masks_dir)
    rows = nested_label_subsets(len(train_split), list(LABEL_FRACTIONS), seed)[fraction]
    train_ds = Subset(train_split, rows.tolist())
    log.info("%s: %d of %d labelled training patches (%d %%), %d val", run, len(train_ds), len(train_split),
             fraction, len(val_ds))
    return train_ds, val_ds


@dataclass(frozen=True)
class _SslRun:
    """What every stage of one SSL run shares: its data, folders and resolved config sections."""

    run: str
    train_ds: Dataset
    val_ds: Dataset
    out_dir: Path
    model_cfg: dict[str, Any]
    train_cfg: dict[str, Any]
    code_version: str | None

    @property
    def resume_dir(self) -> Path:
        return self.out_dir / "resume"

    @property
    def tensorboard_dir(self) -> Path:
        return self.out_dir / "tensorboard"


def _start_run(ssl: _SslRun, identity: dict[str, Any]) -> None:
    """Start the run over (no curves of the one it replaces) or check that its stages may be continued."""
    if not (ssl.resume_dir / "run.pt").is_file():
        shutil.rmtree(ssl.tensorboard_dir, ignore_errors=True)
    _check_run_identity(ssl.resume_dir / "run.pt", identity)


def _run_stages(
    ssl: _SslRun,
    pretext_checkpoint: str | Path | None,
    frozen_epochs: int,
    finetune_epochs: int,
    scratch_epochs: int,
) -> list[tuple[str, int, Path]]:
    """Train the run's stages in order (module docstring); each stage's ``(name, epochs, best.pt)``."""
    if pretext_checkpoint is None:
        return [_train_stage(ssl, "scratch", scratch_epochs, 0)]
    if frozen_epochs == 0:
        return [_train_stage(ssl, "finetune", finetune_epochs, 0, init_checkpoint=pretext_checkpoint,
                             init_skip=PRETEXT_SKIP)]
    frozen = _train_stage(ssl, "frozen", frozen_epochs, 0, init_checkpoint=pretext_checkpoint,
                          init_skip=PRETEXT_SKIP, trainable=NEW_LAYERS)
    return [frozen, _train_stage(ssl, "finetune", finetune_epochs, frozen_epochs, init_checkpoint=frozen[2])]


def _train_stage(ssl: _SslRun, stage_name: str, epochs: int, offset: int, **init: Any) -> tuple[str, int, Path]:
    """Train one stage in ``resume/<stage_name>/`` unless it is complete; ``(stage_name, epochs, best.pt)``."""
    stage_dir = ssl.resume_dir / stage_name
    if (stage_dir / "best.pt").is_file() and not (stage_dir / "resume" / "state.pt").is_file():
        log.info("%s: stage %s already complete in %s", ssl.run, stage_name, stage_dir)
    else:
        log.info("%s: stage %s, %d epoch(s)", ssl.run, stage_name, epochs)
        # the stage's curves outlive resume/: the run's own tensorboard/, one sub-folder (a TensorBoard
        # run) per stage, steps on the run's epoch axis
        train_model(SSL_MODEL, ssl.train_ds, ssl.val_ds, stage_dir, model_cfg=ssl.model_cfg,
                    train_cfg={**ssl.train_cfg, "epochs": epochs}, code_version=ssl.code_version,
                    tensorboard_dir=ssl.tensorboard_dir / stage_name, epoch_offset=offset, **init)
    return stage_name, epochs, stage_dir / "best.pt"


def _check_run_identity(path: Path, identity: dict[str, Any]) -> None:
    """Refuse to continue stages of a run with another identity; record the identity of a new run."""
    if path.is_file():
        check_resume_identity(read_torch_file(path, "run identity", f"delete the folder {path.parent} to start over"),
                              identity, path)
    else:
        save_atomically({"format": RESUME_FORMAT, "identity": identity}, path)


def _write_run_outputs(
    run: str, stages: list[tuple[str, int, Path]], out_dir: Path, extra: Mapping[str, Any]
) -> dict[str, Any]:
    """Join the stages' metrics, take the last stage's best epoch as the run's, write metrics.csv and best.pt,
    clean up."""
    rows: list[dict[str, Any]] = []
    offset = 0
    for stage_name, epochs, stage_best in stages:
        with (stage_best.parent / "metrics.csv").open(newline="") as f:
            for row in csv.DictReader(f):
                rows.append({"stage": stage_name, "epoch": offset + int(row["epoch"]),
                             "stage_epoch": int(row["epoch"]),
                             **{k: float(v) if v != "" else None for k, v in row.items() if k != "epoch"}})
        offset += epochs
    last_name, last_epochs, last_best = stages[-1]
    ckpt = load_checkpoint(last_best, expected_name=SSL_MODEL)
    best = ckpt | {"epoch": offset - last_epochs + ckpt["epoch"], "stage": last_name}
    columns = STAGE_COLUMNS + tuple(k for k in rows[0] if k not in STAGE_COLUMNS)
    metrics_path, best_path = out_dir / "metrics.csv", out_dir / "best.pt"
    write_metrics_csv(rows, metrics_path, columns)
    save_atomically(best | {"run": run, **extra}, best_path)
    shutil.rmtree(out_dir / "resume", ignore_errors=True)
    log.info("%s: best val_f1 %.5g at epoch %d (stage %s) -> %s", run, best["value"], best["epoch"],
             best["stage"], best_path)
    return {"run": run, "best_stage": best["stage"], "best_epoch": best["epoch"], "best_value": best["value"],
            "metrics": rows, "best_path": best_path, "metrics_path": metrics_path, **extra}
