"""What one step computes: :class:`TrainingObjective` (a network plus its training loss, from the model's spec
in :mod:`hcrlc.model_specs`), a batch moved to the device, and the validation pass that picks the best epoch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from sklearn.metrics import f1_score
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader

from hcrlc.data.dataset import prepare_batch
from hcrlc.losses import bce_loss, carl_loss
from hcrlc.metrics import psnr_per_image
from hcrlc.model_specs import LOGITS, RECON, model_spec
from hcrlc.paper import PREDICTION_THRESHOLD, S2_BANDS
from hcrlc.training.config import tf32_math

#: A spec's loss term → the scalar float32 loss of ``(outputs, x, s2, mask, y)`` (shapes: :class:`TrainingObjective`).
LOSS_TERMS: dict[str, Callable[..., torch.Tensor]] = {
    "cross_entropy": lambda out, x, s2, mask, y: F.cross_entropy(out[LOGITS].float(), y),
    "bce": lambda out, x, s2, mask, y: bce_loss(out[LOGITS], y),
    "carl": lambda out, x, s2, mask, y: carl_loss(out[RECON], s2, x[:, :S2_BANDS], mask),
}


class TrainingObjective(nn.Module):
    """A network plus its training loss, so DDP (and ``torch.compile``) see one module.

    ``forward(x, s2, mask, y)`` takes a batch — ``x`` ``(N, 15, H, W)`` (13 cloudy S2 bands in [0, 1], 2 S1),
    ``s2`` ``(N, 13, H, W)`` clear target in [0, 1], ``mask`` ``(N, 1, H, W)`` in {0, 1}, ``y`` ``(N, 10)``
    multi-hot (``pretext``: ``s2`` and ``mask`` None, ``y`` ``(N,)`` int64 directions) — and returns
    ``(loss, outputs)``: the scalar float32 loss of model ``name`` (its spec's ``loss`` terms, combined by
    ``weighting``) and the network's output dict. The uncertainty weighting's log-variances are parameters of this module, not of
    ``model``, so DDP averages their gradients too.
    """

    def __init__(self, name: str, model: nn.Module, weighting: nn.Module | None) -> None:
        super().__init__()
        self.name = name
        self.model = model
        self.weighting = weighting
        self.loss_terms = model_spec(name).loss

    def forward(
        self, x: torch.Tensor, s2: torch.Tensor | None, mask: torch.Tensor | None, y: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        out = self.model(x)
        losses = [LOSS_TERMS[term](out, x, s2, mask, y) for term in self.loss_terms]
        if self.weighting is None:  # one loss term: lc_net, hcr_net, hcr_c_net, pretext
            return losses[0], out
        return self.weighting(*losses), out


@torch.no_grad()
def validate(
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

