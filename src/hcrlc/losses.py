"""Training losses: BCE for land cover, CARL for cloud removal, and the two ways HCR&LC-Net combines them.

* Classification [P], [A]: ``BCEWithLogits`` on the 10 multi-label targets, mean over all elements.
* Cloud-adaptive regularised loss (CARL, from DSen2-CR) [P], [A]::

      L = mean(m·|P − T| + (1 − m)·|P − I|) + λ·mean|P − T|

  P prediction, T clear S2 target, I cloudy S2 input (the first 13 input channels), m cloud mask (1 = cloud),
  broadcast over the 13 bands; λ = 1. On clouds the prediction is pulled to the clear target, elsewhere to the
  cloudy input; the λ term pulls it to the target everywhere.
* Uncertainty weighting (Kendall et al. 2018) as the authors coded it [A]::

      L = exp(−a)·L_cls + ½·a + ½·exp(−b)·L_CARL + ½·b

  with learned log-variances a (classification) and b (CARL), both starting at 0 — the paper's
  ``½e^(−s₁)L_rec + e^(−s₂)L_cls + ½s₁ + ½s₂`` with s₁ = b and s₂ = a. They are not counted in Table 1; put
  them in the optimiser (Adam, with weight decay, as the authors do).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hcrlc.errors import ConfigError
from hcrlc.model_specs import MODELS

#: Default λ of CARL [P].
CARL_LAMBDA = 1.0


def bce_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy of ``logits`` ``(N, C)`` against ``targets`` ``(N, C)``, bool or 0/1."""
    if logits.shape != targets.shape:
        raise ValueError(
            f"logits {tuple(logits.shape)} and targets {tuple(targets.shape)} must have the same shape"
        )
    return F.binary_cross_entropy_with_logits(logits.float(), targets.float())


def carl_loss(
    pred: torch.Tensor,
    clear: torch.Tensor,
    cloudy: torch.Tensor,
    mask: torch.Tensor,
    lam: float = CARL_LAMBDA,
) -> torch.Tensor:
    """Cloud-adaptive regularised loss, a scalar float32 tensor.

    Args:
        pred: ``(N, 13, H, W)`` reconstructed S2 (reflectance / 10,000).
        clear: ``(N, 13, H, W)`` cloud-free S2 target, same scale.
        cloudy: ``(N, 13, H, W)`` cloudy S2 input, same scale — the first 13 input channels, ``x[:, :13]``.
        mask: ``(N, 1, H, W)`` or ``(N, H, W)`` cloud mask, bool or float in [0, 1] (1 = cloud); broadcast
            over the bands.
        lam: weight λ of the ``mean|P − T|`` term.
    """
    if not (pred.shape == clear.shape == cloudy.shape) or pred.ndim != 4:
        raise ValueError(
            f"pred {tuple(pred.shape)}, clear {tuple(clear.shape)} and cloudy {tuple(cloudy.shape)} must all "
            f"be (N, 13, H, W); pass the cloudy S2 as x[:, :13]"
        )
    m = mask.float()
    if m.ndim == 3:
        m = m.unsqueeze(1)
    n, _, h, w = pred.shape
    if m.shape != (n, 1, h, w):
        raise ValueError(
            f"mask {tuple(mask.shape)} must be (N, 1, H, W) or (N, H, W) with N, H, W = {n}, {h}, {w}"
        )
    pred = pred.float()
    err_clear = (pred - clear.float()).abs()
    err_cloudy = (pred - cloudy.float()).abs()
    return (m * err_clear + (1.0 - m) * err_cloudy).mean() + lam * err_clear.mean()


class EqualWeighting(nn.Module):
    """HCR&LC-Net 1:1 — ``L = L_cls + L_CARL``. No parameters."""

    def forward(self, l_cls: torch.Tensor, l_carl: torch.Tensor) -> torch.Tensor:
        return l_cls + l_carl


class UncertaintyWeighting(nn.Module):
    """HCR&LC-Net uncertain — ``L = exp(−a)·L_cls + ½a + ½·exp(−b)·L_CARL + ½b`` with learned a, b (start 0).

    ``log_var_cls`` is a and ``log_var_carl`` is b, both 0-d parameters; optimise them with the network.
    """

    def __init__(self) -> None:
        super().__init__()
        self.log_var_cls = nn.Parameter(torch.zeros(()))
        self.log_var_carl = nn.Parameter(torch.zeros(()))

    def forward(self, l_cls: torch.Tensor, l_carl: torch.Tensor) -> torch.Tensor:
        a, b = self.log_var_cls, self.log_var_carl
        return torch.exp(-a) * l_cls + 0.5 * a + 0.5 * torch.exp(-b) * l_carl + 0.5 * b


#: A model spec's ``weighting`` → the module that combines its two losses.
WEIGHTINGS: dict[str, type[nn.Module]] = {"equal": EqualWeighting, "uncertain": UncertaintyWeighting}


def make_weighting(model_name: str) -> EqualWeighting | UncertaintyWeighting | None:
    """The loss combination of ``model_name``.

    :class:`EqualWeighting` for ``hcr_lc_equal``, :class:`UncertaintyWeighting` for ``hcr_lc_uncertain``, None
    for the single-loss models (``lc_net``, ``hcr_net``, ``hcr_c_net``: their one loss is the total).
    """
    spec = MODELS.get(model_name)
    if spec is None:
        raise ConfigError(f"unknown model {model_name!r}; choose one of {list(MODELS)}")
    return None if spec.weighting is None else WEIGHTINGS[spec.weighting]()
