"""Starting from other weights and training part of a network (the self-supervised schedule,
:mod:`hcrlc.selfsup`).

``init_checkpoint`` is a ``best.pt`` whose weights, less those under the ``init_skip`` prefixes, are loaded with
``strict=False``; every loaded key must exist in the network with the same shape, and a layer that is frozen
must be loaded, never left at its random initialisation. A checkpoint of the same model also hands on its loss
weighting (the log-variances). ``trainable`` (parameter-name prefixes such as ``"decoder"`` or
``"classifier.head"``) freezes every other parameter: ``requires_grad`` False and not in the optimiser; the
modules that hold no trainable layer stay in eval mode, so their BatchNorm running statistics do not move
either. The loss weighting always trains.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from torch import nn

from hcrlc.errors import CheckpointError, ConfigError
from hcrlc.training.checkpoints import file_sha256, load_checkpoint

log = logging.getLogger(__name__)


def _under(name: str, prefixes: Sequence[str]) -> bool:
    """Whether the dotted ``name`` is one of ``prefixes`` or lies below one (``decoder`` ∋ ``decoder.x``)."""
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def load_init(
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
    log.info("%s: %d tensors from %s (%s, epoch %s); newly initialised: %s", name, len(loaded), path,
             ckpt["model_name"], ckpt["epoch"], sorted({k.rsplit(".", 1)[0] for k in new}) or "none")
    return file_sha256(path)


def freeze_all_but(model: nn.Module, trainable: Sequence[str]) -> None:
    """``requires_grad`` only for the parameters under a ``trainable`` prefix (each must match one)."""
    names = [n for n, _ in model.named_parameters()]
    unmatched = [p for p in trainable if not any(_under(n, [p]) for n in names)]
    if unmatched or not trainable:
        raise ConfigError(f"trainable prefix(es) {unmatched or list(trainable)} match no parameter; the "
                          f"network's layers: {sorted({n.rsplit('.', 1)[0] for n in names})}")
    for n, param in model.named_parameters():
        if not _under(n, trainable):
            param.requires_grad_(False)


def frozen_modules(model: nn.Module, trainable: Sequence[str] | None) -> list[nn.Module]:
    """The submodules that hold no trainable layer: kept in eval mode (BatchNorm statistics stay put)."""
    if trainable is None:
        return []
    return [m for n, m in model.named_modules()
            if n and not _under(n, trainable) and not any(p.startswith(n + ".") for p in trainable)]

