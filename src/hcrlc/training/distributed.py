"""Several processes and what each step sees: the ``torchrun`` context, the launch command, the per-epoch
batch sampler and the seeds derived from ``(seed, epoch, rank)``.

**Exact resume.** Nothing random depends on how many epochs ran in this process: the model is initialised from
``seed``; epoch ``e`` shuffles with a generator seeded by ``(seed, e)`` and re-seeds torch, numpy and Python's
``random`` (dropout) from ``(seed, e, rank)`` before its first step. The RNG state at the start of every epoch
is thus a function of the config alone, so a run resumed after epoch ``k`` replays epochs ``k+1…`` exactly.
Re-seeding per epoch replaces saving RNG states: it needs no per-rank state under DDP and no DataLoader state.

**Several GPUs (DDP).** Launched by ``torchrun`` (``WORLD_SIZE`` > 1, see :func:`launch_command`), every rank
walks the same per-epoch permutation, takes every ``world_size``-th sample of each global batch of
``batch_size`` samples and scales its mean loss by ``n_local · world_size / n_global``, so that DDP's gradient
average equals the single-process gradient of the mean over the global batch (:mod:`hcrlc.training.loop`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import Sampler

from hcrlc.errors import ConfigError

log = logging.getLogger(__name__)

# domain tags keep the shuffling and dropout seed streams apart
SHUFFLE, DROPOUT = 1, 2


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
def process_group(ctx: DistributedContext, device: torch.device) -> Iterator[None]:
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


def derived_seed(*keys: int) -> int:
    """A 63-bit seed that depends on all of ``keys`` (seed, stream tag, epoch, rank)."""
    words = np.random.SeedSequence([int(k) for k in keys]).generate_state(2, np.uint32)
    return int(words.view(np.uint64)[0] >> np.uint64(1))


def seed_everything(seed: int) -> None:
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
        generator = torch.Generator().manual_seed(derived_seed(self.seed, SHUFFLE, self.epoch))
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

