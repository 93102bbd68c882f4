"""The training loop: :func:`train_model`, read top to bottom in :func:`_train`.

A run builds its network and loss from the model's spec (:mod:`hcrlc.model_specs`), resumes from
``out_dir/resume/state.pt`` when one of the same identity is there, then trains epoch after epoch: one pass
over the training set (:func:`_train_epoch`), then on rank 0 validation, the best epoch so far, the learning
curves and the resume state (:func:`_end_epoch`); at the end it writes the outputs (:func:`_finish`).

Adam (``lr``, ``weight_decay``) over the trainable parameters plus, for ``hcr_lc_uncertain``, the two
log-variances (they are not model parameters, Table 1 does not count them). A training set with
``set_epoch`` gets it called before every epoch, so its per-epoch random draw (the pretext direction) is a
function of the epoch; its DataLoader workers are then not persistent, since a persistent worker would keep the
copy of the data set made at the first epoch.

**Files.** ``out_dir/best.pt`` and ``out_dir/metrics.csv`` are written once, atomically, at the very end:
Snakemake treats declared outputs that exist after a killed job as incomplete, so they must not appear early.
Everything a run needs to continue lives in ``out_dir/resume/state.pt`` (model, optimiser, loss weighting,
completed epoch, best metric and best weights, metric rows), rewritten atomically after every epoch and
removed after success. The learning curves go to TensorBoard event files in ``out_dir/tensorboard/`` as
each epoch ends (every metrics.csv column, step = epoch; the pretext's ``chance_acc`` is the 0.25 of guessing
one of 4 directions): not declared outputs, so they may appear early, and a run started over replaces them.
With ``deterministic: true`` on CPU a resumed run's ``best.pt`` equals an uninterrupted run's bit for bit
(tested; :mod:`hcrlc.training.distributed` says why).

**Several GPUs.** BatchNorm layers become ``SyncBatchNorm`` on CUDA, so batch statistics are those of the
global batch. ``SyncBatchNorm`` does not run on CPU: gloo (CPU) DDP normalises each rank's share on its own
and matches single-process training only for networks whose trained part has no BatchNorm (``hcr_c_net``,
whose HCR-Net is frozen in eval mode; with dropout 0, as ranks draw different dropout masks). Rank 0
validates on the whole validation set and alone writes files; the others wait at a barrier.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from hcrlc.atomic import remove_stale_temp_files
from hcrlc.data.dataset import collate_items
from hcrlc.devices import resolve_device
from hcrlc.errors import CheckpointError, TrainingError
from hcrlc.losses import WEIGHTINGS, UncertaintyWeighting
from hcrlc.pretext import DIRECTIONS
from hcrlc.training.checkpoints import (
    BEST_FORMAT,
    RESUME_FORMAT,
    build_network,
    check_pixel_size,
    check_resume_identity,
    file_sha256,
    load_checkpoint,
    read_torch_file,
    save_atomically,
    write_metrics_csv,
)
from hcrlc.training.config import RunSpec, tf32_math
from hcrlc.training.distributed import (
    DROPOUT,
    DistributedContext,
    EpochBatchSampler,
    derived_seed,
    distributed_context,
    process_group,
    seed_everything,
)
from hcrlc.training.objective import TrainingObjective, batch_to_device, validate
from hcrlc.training.transfer import freeze_all_but, frozen_modules, load_init

log = logging.getLogger(__name__)

METRIC_COLUMNS = ("epoch", "train_loss", "val_loss", "val_f1", "val_psnr", "seconds", "lr")
PRETEXT_COLUMNS = ("epoch", "train_loss", "val_loss", "val_acc", "chance_acc", "seconds", "lr")
LOG_VAR_COLUMNS = ("log_var_cls", "log_var_carl")
#: Validation accuracy of guessing the pretext direction at random (1 of 4): written beside ``val_acc``.
PRETEXT_CHANCE_ACC = 1.0 / len(DIRECTIONS)


@dataclass(frozen=True)
class _Placement:
    """Where a run computes: its place in the torchrun job, its device, and whether it trains in bf16."""

    ctx: DistributedContext
    device: torch.device
    bf16: bool


@dataclass
class _Network:
    """The network of a run with its loss weighting, training objective and optimiser, on the device."""

    model: nn.Module
    weighting: nn.Module | None
    objective: TrainingObjective
    frozen_modules: list[nn.Module]
    optimizer: torch.optim.Optimizer
    identity: dict[str, Any]  # what a resume state must match (:func:`check_resume_identity`)


@dataclass
class _Progress:
    """How far a run is: the first epoch still to train, one metrics row per epoch done, the best epoch."""

    start_epoch: int
    rows: list[dict[str, Any]]
    best: dict[str, Any]


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
    run = RunSpec.from_arguments(
        name, train_ds, val_ds, out_dir, model_cfg=model_cfg, train_cfg=train_cfg, hcr_checkpoint=hcr_checkpoint,
        init_checkpoint=init_checkpoint, init_skip=init_skip, trainable=trainable, tensorboard_dir=tensorboard_dir,
        code_version=code_version, progress=progress, epoch_offset=epoch_offset,
    )
    with _placement(run.train_cfg) as where:
        return _train(run, train_ds, val_ds, where)


@contextlib.contextmanager
def _placement(cfg: Mapping[str, Any]) -> Iterator[_Placement]:
    """Device, process group, precision and determinism of a run (``cfg``: the ``training`` section), set for
    the block and restored afterwards."""
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
    try:
        with process_group(ctx, device), tf32_math(tf32):
            yield _Placement(ctx, device, bf16)
    finally:
        torch.use_deterministic_algorithms(deterministic_before)
        torch.backends.cudnn.benchmark = benchmark_before


def _train(run: RunSpec, train_ds: Dataset, val_ds: Dataset, where: _Placement) -> dict[str, Any]:
    """The loop of :func:`train_model`, inside its device, process-group and determinism settings."""
    net = _network(run, where, n_train=len(train_ds), n_val=len(val_ds))
    progress = _resume(run, net, where)
    runner: nn.Module = net.objective  # what the steps call: wrapped for DDP and compiled when asked
    if where.ctx.distributed:
        device_ids = [where.device.index] if where.device.type == "cuda" else None
        runner = nn.parallel.DistributedDataParallel(net.objective, device_ids=device_ids)
    if run.train_cfg["compile"]:
        runner = torch.compile(runner)
    sampler, train_loader, val_loader = _loaders(run, train_ds, val_ds, where)
    writer = _tensorboard_writer(run.tensorboard_dir, progress.start_epoch, run.epoch_offset) \
        if where.ctx.is_main else None
    cfg, metric = run.train_cfg, run.model.selection_metric
    log.info("%s: %d train / %d val samples of %d px (%s m pixels) on %s (%d process(es)), epochs %d..%d, training "
             "in %s, %s selects%s (validated in fp32)", run.name, sampler.n_epoch, len(val_ds), run.patch_size,
             "?" if run.pixel_size_m is None else f"{run.pixel_size_m:g}", where.device, where.ctx.world_size, progress.start_epoch, cfg["epochs"],
             cfg["precision"] if where.device.type == "cuda" else "fp32", metric,
             f" (chance {PRETEXT_CHANCE_ACC:.2f})" if metric == "val_acc" else "")

    for epoch in range(progress.start_epoch, cfg["epochs"] + 1):
        started = time.perf_counter()
        loss_sum, n_seen = _train_epoch(run, net, runner, sampler, train_loader, epoch, where)
        if where.ctx.is_main:
            row: dict[str, Any] = {"epoch": epoch, "train_loss": loss_sum / n_seen}
            _end_epoch(run, net, progress, row, val_loader, started, writer, where)
        if where.ctx.distributed:
            dist.barrier()
    return _finish(run, net, progress, writer, where)


def _network(run: RunSpec, where: _Placement, *, n_train: int, n_val: int) -> _Network:
    """The seeded network of ``run``, the weights it starts from, its loss and optimiser, on the device."""
    cfg = run.train_cfg
    seed_everything(cfg["seed"])
    model = build_network(run.name, run.model_cfg, run.patch_size, run.n_classes)
    hcr_sha256 = None
    if run.hcr_checkpoint is not None:
        hcr = load_checkpoint(run.hcr_checkpoint, expected_name=run.model.frozen_inside)
        if int(hcr["patch_size"]) != run.patch_size:
            raise CheckpointError(f"{run.hcr_checkpoint} was trained on {hcr['patch_size']} px patches, {run.name} "
                                  f"trains on {run.patch_size} px patches. Fix: retrain {run.model.frozen_inside} "
                                  "on this data")
        check_pixel_size(run.hcr_checkpoint, hcr, run.pixel_size_m,
                         f"retrain {run.model.frozen_inside} on this data")
        model.load_hcr_state(hcr["state_dict"])
        hcr_sha256 = file_sha256(run.hcr_checkpoint)
    weighting = None if run.model.weighting is None else WEIGHTINGS[run.model.weighting]()
    if run.trainable is not None:
        freeze_all_but(model, run.trainable)
    init_sha256 = None
    if run.init_checkpoint is not None:
        check_pixel_size(run.init_checkpoint, load_checkpoint(run.init_checkpoint), run.pixel_size_m,
                         "start from a checkpoint trained on this data")
        init_sha256 = load_init(model, weighting, run.name, run.init_checkpoint, run.init_skip, run.trainable)
    objective = TrainingObjective(run.name, model, weighting).to(where.device)
    if where.bf16:
        objective = objective.to(memory_format=torch.channels_last)
    if where.ctx.distributed and where.device.type == "cuda":
        objective = nn.SyncBatchNorm.convert_sync_batchnorm(objective)
    optimizer = torch.optim.Adam(
        [p for p in objective.parameters() if p.requires_grad], lr=cfg["lr"], weight_decay=cfg["weight_decay"]
    )
    identity = {
        "model_name": run.name,
        "model_cfg": run.model_cfg,
        "train_cfg": cfg,
        "n_train": n_train,
        "n_val": n_val,
        "patch_size": run.patch_size,
        "pixel_size_m": run.pixel_size_m,
        "n_classes": run.n_classes,
        "hcr_checkpoint_sha256": hcr_sha256,
        "init_checkpoint_sha256": init_sha256,
        "init_skip": sorted(run.init_skip) if run.init_checkpoint is not None else None,
        "trainable": sorted(run.trainable) if run.trainable is not None else None,
        "code_version": run.code_version,
    }
    # after the SyncBatchNorm conversion, which replaces modules
    return _Network(model, weighting, objective, frozen_modules(model, run.trainable), optimizer, identity)


def _resume(run: RunSpec, net: _Network, where: _Placement) -> _Progress:
    """Load ``run``'s resume state into ``net`` when there is one (of the same identity); the run's progress."""
    progress = _Progress(1, [], {"epoch": 0, "value": -math.inf, "state_dict": None, "weighting": None})
    state_path = run.state_path
    if state_path.is_file():
        state = read_torch_file(state_path, "resume state", f"delete the folder {state_path.parent} to start over")
        check_resume_identity(state, net.identity, state_path)
        net.model.load_state_dict(state["model"])
        if net.weighting is not None:
            net.weighting.load_state_dict(state["weighting"])
        net.optimizer.load_state_dict(state["optimizer"])
        progress = _Progress(state["epoch"] + 1, list(state["metrics"]), dict(state["best"]))
        log.info("%s: resuming after epoch %d from %s", run.name, state["epoch"], state_path)
    if where.ctx.is_main:
        remove_stale_temp_files(state_path)  # left by a save of the resume state that was killed
    return progress


def _loaders(
    run: RunSpec, train_ds: Dataset, val_ds: Dataset, where: _Placement
) -> tuple[EpochBatchSampler, DataLoader, DataLoader]:
    """The training batch sampler, the training loader it drives, and the validation loader."""
    cfg = run.train_cfg
    sampler = EpochBatchSampler(len(train_ds), cfg["batch_size"], seed=cfg["seed"],
                                max_samples=cfg["max_train_samples"], rank=where.ctx.rank,
                                world_size=where.ctx.world_size)
    loader_options = {
        "num_workers": cfg["num_workers"],
        "pin_memory": where.device.type == "cuda",
        "persistent_workers": cfg["num_workers"] > 0,
        "collate_fn": collate_items,  # TripletDataset batches arrive built (its __getitems__)
        # worker seeds must not draw from the global RNG
        "generator": torch.Generator().manual_seed(cfg["seed"]),
    }
    redraws = hasattr(train_ds, "set_epoch")  # its workers must see each epoch's set_epoch
    persistent = loader_options["persistent_workers"] and not redraws
    train_options = dict(loader_options, persistent_workers=persistent)
    train_loader = DataLoader(train_ds, batch_sampler=sampler, **train_options)
    val_loader = DataLoader(val_ds, batch_size=cfg["batch_size"], shuffle=False, **loader_options)
    return sampler, train_loader, val_loader


def _train_epoch(
    run: RunSpec,
    net: _Network,
    runner: nn.Module,
    sampler: EpochBatchSampler,
    loader: DataLoader,
    epoch: int,
    where: _Placement,
) -> tuple[float, int]:
    """One pass over the training set: the sum over steps of (global mean loss × global batch size), and the
    number of samples that sum covers (all ranks together)."""
    ctx, cfg = where.ctx, run.train_cfg
    seed_everything(derived_seed(cfg["seed"], DROPOUT, epoch, ctx.rank))
    sampler.set_epoch(epoch)
    if hasattr(loader.dataset, "set_epoch"):
        loader.dataset.set_epoch(epoch)
    net.objective.train()
    for module in net.frozen_modules:
        module.eval()
    autocast = torch.autocast(device_type=where.device.type, dtype=torch.bfloat16, enabled=where.bf16)
    loss_sum, n_seen = 0.0, 0
    bar = tqdm(loader, desc=f"{run.name} epoch {epoch}/{cfg['epochs']}", leave=False,
               disable=not (run.progress and ctx.is_main),
               mininterval=1.0 if sys.stderr.isatty() else 30.0)  # a log file gets a line per 30 s
    for step, batch in enumerate(bar):
        x, s2, mask, y = batch_to_device(batch, where.device, where.bf16)
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
            raise _non_finite_loss(run, value, epoch, step, len(sampler))
        net.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        net.optimizer.step()
        loss_sum += value * n_global
        n_seen += n_global
        bar.set_postfix(loss=f"{value:.4f}", refresh=False)
    bar.close()
    return loss_sum, n_seen


def _non_finite_loss(run: RunSpec, value: float, epoch: int, step: int, n_steps: int) -> TrainingError:
    kept = (f"the resume state of epoch {epoch - 1} in {run.state_path} is intact" if epoch > 1
            else "no epoch had completed, so there is nothing to resume")
    return TrainingError(
        f"{run.name}: non-finite training loss ({value}) at epoch {epoch}, batch {step + 1} of "
        f"{n_steps}; {kept}. Fix: check the inputs for NaN/inf or lower training.lr, then rerun"
    )


def _end_epoch(
    run: RunSpec,
    net: _Network,
    progress: _Progress,
    row: dict[str, Any],
    val_loader: DataLoader,
    started: float,
    writer: Any,
    where: _Placement,
) -> None:
    """Rank 0 after an epoch: complete its metrics ``row`` (``epoch``, ``train_loss`` so far) by validating,
    remember the best epoch, write the learning curves and the resume state."""
    epoch, metric, weighting = row["epoch"], run.model.selection_metric, net.weighting
    row |= validate(net.objective, val_loader, where.device, channels_last=where.bf16,
                    want_f1=metric == "val_f1", want_psnr=run.model.trains_reconstruction,
                    want_acc=metric == "val_acc")
    if metric == "val_acc":
        row["chance_acc"] = PRETEXT_CHANCE_ACC
    row |= {"seconds": time.perf_counter() - started, "lr": net.optimizer.param_groups[0]["lr"]}
    if isinstance(weighting, UncertaintyWeighting):
        row |= {"log_var_cls": weighting.log_var_cls.item(), "log_var_carl": weighting.log_var_carl.item()}
    progress.rows.append(row)
    if row[metric] > progress.best["value"]:
        progress.best = {"epoch": epoch, "value": row[metric], "state_dict": _cpu_copy(net.model.state_dict()),
                         "weighting": _cpu_copy(weighting.state_dict()) if weighting is not None else None}
    if writer is not None:
        # before the resume state: a process killed in between redoes this epoch, whose steps the resumed
        # writer purges
        for key, value in row.items():
            if key != "epoch" and value is not None:
                writer.add_scalar(key, value, run.epoch_offset + epoch)
        writer.flush()
    save_atomically({
        "format": RESUME_FORMAT,
        "identity": net.identity,
        "epoch": epoch,
        "model": net.model.state_dict(),
        "weighting": weighting.state_dict() if weighting is not None else None,
        "optimizer": net.optimizer.state_dict(),
        "best": progress.best,
        "metrics": progress.rows,
    }, run.state_path)
    log.info("%s epoch %d/%d: %s", run.name, epoch, run.train_cfg["epochs"],
             ", ".join(f"{k} {v:.5g}" for k, v in row.items() if k != "epoch" and v is not None))


def _finish(run: RunSpec, net: _Network, progress: _Progress, writer: Any, where: _Placement) -> dict[str, Any]:
    """The job's outputs, written once at the end by rank 0; the summary :func:`train_model` returns."""
    metric, best = run.model.selection_metric, progress.best
    summary: dict[str, Any] = {"model_name": run.name, "metric": metric, "rank": where.ctx.rank}
    if where.ctx.is_main:
        if writer is not None:
            writer.close()
        metrics_path, best_path = run.out_dir / "metrics.csv", run.out_dir / "best.pt"
        write_metrics_csv(progress.rows, metrics_path, _columns(run))
        save_atomically({
            "format": BEST_FORMAT,
            "model_name": run.name,
            "model_cfg": run.model_cfg,
            "train_cfg": run.train_cfg,
            "patch_size": run.patch_size,
            "pixel_size_m": run.pixel_size_m,
            "n_classes": run.n_classes,
            "epoch": best["epoch"],
            "metric": metric,
            "value": best["value"],
            "state_dict": best["state_dict"],
            "weighting": best["weighting"],
            "init_checkpoint_sha256": net.identity["init_checkpoint_sha256"],
            "trainable": net.identity["trainable"],
        }, best_path)
        shutil.rmtree(run.state_path.parent, ignore_errors=True)
        log.info("%s: best %s %.5g at epoch %d -> %s", run.name, metric, best["value"], best["epoch"], best_path)
        summary |= {"best_epoch": best["epoch"], "best_value": best["value"], "metrics": progress.rows,
                    "best_path": best_path, "metrics_path": metrics_path}
    if where.ctx.distributed:
        dist.barrier()
    return summary


def _columns(run: RunSpec) -> tuple[str, ...]:
    """The columns of ``metrics.csv``: the pretext's accuracy, or F1 and PSNR (and the learned weighting)."""
    if run.model.selection_metric == "val_acc":
        return PRETEXT_COLUMNS
    return METRIC_COLUMNS + (LOG_VAR_COLUMNS if run.model.weighting == "uncertain" else ())


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

