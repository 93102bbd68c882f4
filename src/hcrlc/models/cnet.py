"""C-Net (a VGG-style classifier) and the sequential ensemble HCR-Net + C-Net.

C-Net (authors' code [A]): 3×3 convs with bias (padding 1) + ReLU, no BatchNorm, ``"M"`` = 2×2 max-pool,
then flatten → (Linear → ReLU → Dropout) per hidden size → Linear → ``n_classes``. Every conv and Linear weight
is initialised as the authors do, with ``kaiming_normal_`` (fan-in, gain √2: variance 2 / fan-in); biases keep
PyTorch's default. PyTorch's default weight init has a variance of 1 / (3 · fan-in), 6× smaller, so without
BatchNorm the signal of a deep stack shrinks by ≈ √6 per conv + ReLU: after the 17 layers of the paper's C-Net the
logits hardly depend on the input and the network starts at the label prior. Its input is fixed to
``patch_size`` × ``patch_size`` pixels because the first Linear takes
``last_conv_width · (patch_size / 2**n_pools)²`` features (512 · 8² = 32,768 with the default layers at
256 px).

HCR-Net + C-Net: a frozen, trained HCR-Net de-clouds the 13 cloudy S2 bands; its output, concatenated with the
2 S1 bands of the input, feeds the C-Net, which is the only part trained.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from hcrlc.errors import CheckpointError, ConfigError
from hcrlc.models.unet import LOGITS, RECON, UNet, kaiming_normal_weights
from hcrlc.patch_geometry import POOL, cnet_feature_size


class CNet(nn.Module):
    """VGG-style classifier: ``(N, in_channels, patch_size, patch_size)`` → ``{"logits": (N, n_classes)}``."""

    def __init__(
        self,
        layers: Sequence[int | str],
        hidden: Sequence[int],
        dropout: float,
        *,
        patch_size: int,
        in_channels: int = 15,
        n_classes: int = 10,
    ) -> None:
        super().__init__()
        channels, side = cnet_feature_size(layers, patch_size)
        self.patch_size = patch_size
        self.heads: tuple[str, ...] = (LOGITS,)
        features: list[nn.Module] = []
        for layer in layers:
            if layer == POOL:
                features.append(nn.MaxPool2d(2))
            else:
                width = int(layer)
                features += [nn.Conv2d(in_channels, width, 3, padding=1, bias=True), nn.ReLU(inplace=True)]
                in_channels = width
        self.features = nn.Sequential(*features)
        fc: list[nn.Module] = []
        n_in = channels * side * side
        for n_out in hidden:
            fc += [nn.Linear(n_in, n_out), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            n_in = n_out
        fc.append(nn.Linear(n_in, n_classes))
        self.classifier = nn.Sequential(*fc)
        kaiming_normal_weights(self, (nn.Conv2d, nn.Linear))  # the authors' init [A]; see the module docstring

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if tuple(x.shape[-2:]) != (self.patch_size, self.patch_size):
            raise ConfigError(
                f"C-Net was built for {self.patch_size}x{self.patch_size} px inputs, got "
                f"{tuple(x.shape[-2:])}; build it with patch_size={x.shape[-1]}"
            )
        return {LOGITS: self.classifier(torch.flatten(self.features(x), 1))}


class HcrCNet(nn.Module):
    """HCR-Net (frozen, always in eval mode) followed by a C-Net.

    ``forward(x)`` takes ``x``: ``(N, 15, H, W)`` (13 cloudy S2 bands in [0, 1], then 2 standardised S1 bands)
    and returns ``{"recon": (N, 13, H, W), "logits": (N, 10)}``; the C-Net sees ``cat(recon, x[:, 13:])``.
    ``recon`` is computed without autograd: gradients reach the C-Net only. Load the trained HCR-Net with
    :meth:`load_hcr_state` before training the C-Net.
    """

    def __init__(self, hcr: UNet, cnet: CNet) -> None:
        super().__init__()
        if hcr.heads != (RECON,):
            raise ConfigError(f"HcrCNet needs a reconstruction-only UNet (HCR-Net), got heads {hcr.heads}")
        self.hcr = hcr
        self.cnet = cnet
        self.heads: tuple[str, ...] = (RECON, LOGITS)
        self.hcr.requires_grad_(False)
        self.hcr.eval()

    def train(self, mode: bool = True) -> HcrCNet:
        """Set the C-Net's mode; the frozen HCR-Net stays in eval mode (its BatchNorm keeps running stats)."""
        super().train(mode)
        self.hcr.eval()
        return self

    def load_hcr_state(self, state_dict: Mapping[str, Any]) -> None:
        """Load a trained HCR-Net's ``state_dict`` (keys as in ``UNet.state_dict()``) into the frozen part.

        Raises :class:`CheckpointError` when the keys or shapes do not match (e.g. other ``model.widths``).
        """
        try:
            self.hcr.load_state_dict(state_dict, strict=True)
        except RuntimeError as err:
            raise CheckpointError(
                f"the HCR-Net weights do not fit HCR-Net + C-Net's frozen part: {err}. Fix: load the best.pt "
                f"of hcr_net trained with the same model.widths"
            ) from err
        self.hcr.requires_grad_(False)
        self.hcr.eval()

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            recon = self.hcr(x)[RECON]
        s2_bands = recon.shape[1]
        logits = self.cnet(torch.cat([recon, x[:, s2_bands:]], dim=1))[LOGITS]
        return {RECON: recon, LOGITS: logits}
