"""The shared U-Net of LC-Net, HCR-Net and HCR&LC-Net, built from config widths.

Architecture (authors' code [A]; reproduces Table 1 with the default widths):

* **Encoder** — one block per entry of ``widths``: 2 × (3×3 conv with bias → BatchNorm → ReLU), with a 2×2
  max-pool between consecutive blocks. ``depth = len(widths) - 1`` poolings; the last block is the *centre*
  (``widths[-1]`` channels at ``H / 2**depth``).
* **Decoder** — per level, from the centre up: 2×2 transposed conv (stride 2, with bias) to ``widths[i]``
  channels, concatenated with the encoder's skip (``widths[i]`` channels) in the order **[upsampled, skip]**
  (the authors' ``unetUp``: input channels ``0 … widths[i]-1`` of the level's first conv are the upsampled
  path, the rest the skip), 2 × (3×3 conv with bias → ReLU), no BatchNorm. The order does not change what the
  network can learn, but it decides which half of that conv's weights meets which path, so only with the
  authors' order are their trained weights usable here (:mod:`hcrlc.authors_checkpoint`).
* **Reconstruction head** — 1×1 conv ``widths[0] → 13`` with bias, no activation; PyTorch's default
  initialisation, or zeros with ``recon_head_init="zero"`` (:func:`init_recon_head`).
* **Classification branch** — on the centre: unpadded 3×3 convs without bias through ``cls_widths``, each
  followed by ReLU (the centre loses 2 px per conv), a 1×1 conv to ``n_classes`` with bias, global average
  pooling. ``cls_batchnorm=True`` (not the authors') puts a BatchNorm between each conv and its ReLU: with
  PyTorch's default initialisation, which the authors' U-Net keeps, each bias-free conv shrinks its input by
  about √6, and in a short training the pretext then never leaves chance (tests/test_learning.py).
  ``cls_init="kaiming"`` (not the authors', though their code defines the helper) draws the branch's convs from
  ``kaiming_normal_`` (fan-in, ReLU gain) instead of PyTorch's default (:func:`init_classification_branch`).

Submodule names (``encoder``, ``decoder``, ``recon_head``, ``classifier.convs``, ``classifier.head``) are the
same in every variant, so the state dict of an encoder + classifier network (LC-Net, or the self-supervised
pretext model with a 4-way ``classifier.head``) is a subset of the HCR&LC-Net's: load it with ``strict=False``
after dropping the ``classifier.head.*`` keys when the number of outputs differs.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import nn

from hcrlc.errors import ConfigError
from hcrlc.model_specs import LOGITS, RECON
from hcrlc.patch_geometry import check_unet_input_size

#: ``model.recon_head_init`` values: PyTorch's default (the authors'), or all zeros.
RECON_HEAD_INITS = ("default", "zero")


def init_recon_head(head: nn.Conv2d, how: str) -> None:
    """Initialise the reconstruction head: ``"default"`` keeps PyTorch's (the authors' code), ``"zero"`` zeroes
    its weight and bias, so the network starts by predicting 0 reflectance in every band.

    Why it matters at small scale: the default init draws the 13 band offsets from U(±1/sqrt(widths[0])), up to
    0.35 reflectance at the demo's widths[0] = 8, and Adam moves a bias by about lr per step, so the first few
    hundred steps go to finding each band's brightness. The paper's ~17,000 steps per model do not notice; the
    demo's ~450 do, and its reconstructions keep visible colour casts (measured: docs/demo.md).
    """
    if how not in RECON_HEAD_INITS:
        raise ConfigError(f"model.recon_head_init must be one of {list(RECON_HEAD_INITS)}, got {how!r}")
    if how == "zero":
        nn.init.zeros_(head.weight)
        nn.init.zeros_(head.bias)


#: ``model.cls_init`` values: PyTorch's default (the authors'), or Kaiming normal.
CLS_INITS = ("default", "kaiming")


def kaiming_normal_weights(module: nn.Module, kinds: tuple[type[nn.Module], ...]) -> None:
    """Draw the weight of every submodule of ``module`` of a type in ``kinds`` from ``kaiming_normal_`` (fan-in,
    ReLU gain √2: variance 2 / fan-in); biases keep PyTorch's default."""
    for sub in module.modules():
        if isinstance(sub, kinds):
            nn.init.kaiming_normal_(sub.weight, nonlinearity="relu")


def init_classification_branch(branch: nn.Module, how: str) -> None:
    """Initialise ``branch``'s convs (head included) as ``model.cls_init`` says; ``default`` leaves PyTorch's."""
    if how not in CLS_INITS:
        raise ConfigError(f"model.cls_init must be one of {list(CLS_INITS)}, got {how!r}")
    if how == "kaiming":
        kaiming_normal_weights(branch, (nn.Conv2d,))


def _encoder_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=True),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=True),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def _decoder_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=True),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=True),
        nn.ReLU(inplace=True),
    )


class Encoder(nn.Module):
    """U-Net encoder: ``(N, C_in, H, W)`` → list of ``len(widths)`` feature maps, the last one the centre.

    Feature ``i`` has shape ``(N, widths[i], H / 2**i, W / 2**i)``.
    """

    def __init__(self, in_channels: int, widths: Sequence[int]) -> None:
        super().__init__()
        channels = [in_channels, *widths]
        self.blocks = nn.ModuleList(_encoder_block(a, b) for a, b in itertools.pairwise(channels))
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for i, block in enumerate(self.blocks):
            x = block(x if i == 0 else self.pool(x))
            features.append(x)
        return features


class Decoder(nn.Module):
    """U-Net decoder: the encoder's feature list → ``(N, widths[0], H, W)``; each level concatenates
    [upsampled, skip] (module docstring)."""

    def __init__(self, widths: Sequence[int]) -> None:
        super().__init__()
        levels = range(len(widths) - 2, -1, -1)  # from just above the centre to full resolution
        self.ups = nn.ModuleList(
            nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2, bias=True) for i in levels
        )
        self.blocks = nn.ModuleList(_decoder_block(2 * widths[i], widths[i]) for i in levels)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = features[-1]
        for up, block, skip in zip(self.ups, self.blocks, reversed(features[:-1])):
            x = block(torch.cat([up(x), skip], dim=1))
        return x


class ClassificationBranch(nn.Module):
    """Centre ``(N, C, h, w)`` → logits ``(N, n_classes)``.

    Unpadded 3×3 convs without bias (each + ReLU, with a BatchNorm between them when ``batchnorm``) through
    ``widths``, a 1×1 conv with bias to ``n_classes``, then global average pooling. ``n_classes`` is 10 for land
    cover and 4 for the N/W/S/E pretext task.
    """

    def __init__(self, in_channels: int, widths: Sequence[int], n_classes: int, batchnorm: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for width in widths:
            layers.append(nn.Conv2d(in_channels, width, 3, padding=0, bias=False))
            if batchnorm:
                layers.append(nn.BatchNorm2d(width))
            layers.append(nn.ReLU(inplace=True))
            in_channels = width
        self.convs = nn.Sequential(*layers)
        self.head = nn.Conv2d(in_channels, n_classes, 1, bias=True)

    def forward(self, centre: torch.Tensor) -> torch.Tensor:
        return self.head(self.convs(centre)).mean(dim=(2, 3))


class UNet(nn.Module):
    """Encoder plus a decoder + reconstruction head and/or a classification branch.

    ``forward(x)`` takes ``x``: ``(N, in_channels, H, W)`` float32 — by default 15 channels, the 13 cloudy S2
    bands in [0, 1] then the 2 standardised S1 bands — with ``H`` and ``W`` multiples of
    ``2**(len(widths) - 1)``, and returns a dict with ``"recon"``: ``(N, out_bands, H, W)`` (de-clouded S2,
    unbounded) when ``reconstruct`` and ``"logits"``: ``(N, n_classes)`` when ``classify``. ``heads`` lists
    those keys.
    """

    def __init__(
        self,
        widths: Sequence[int],
        cls_widths: Sequence[int],
        *,
        reconstruct: bool,
        classify: bool,
        in_channels: int = 15,
        out_bands: int = 13,
        n_classes: int = 10,
        recon_head_init: str = "default",
        cls_batchnorm: bool = False,
        cls_init: str = "default",
    ) -> None:
        super().__init__()
        if not (reconstruct or classify):
            raise ConfigError("a UNet needs a reconstruction head, a classification branch, or both")
        if len(widths) < 2:
            raise ConfigError(f"model.widths needs at least 2 levels, got {list(widths)}")
        self.widths = tuple(widths)
        self.cls_widths = tuple(cls_widths) if classify else None
        self.heads: tuple[str, ...] = ((RECON,) if reconstruct else ()) + ((LOGITS,) if classify else ())
        self.encoder = Encoder(in_channels, widths)
        if reconstruct:
            self.decoder = Decoder(widths)
            self.recon_head = nn.Conv2d(widths[0], out_bands, 1, bias=True)
            init_recon_head(self.recon_head, recon_head_init)
        if classify:
            self.classifier = ClassificationBranch(widths[-1], cls_widths, n_classes, batchnorm=cls_batchnorm)
            init_classification_branch(self.classifier, cls_init)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        for size in x.shape[-2:]:
            check_unet_input_size(int(size), self.widths, self.cls_widths)
        features = self.encoder(x)
        out: dict[str, torch.Tensor] = {}
        if RECON in self.heads:
            out[RECON] = self.recon_head(self.decoder(features))
        if LOGITS in self.heads:
            out[LOGITS] = self.classifier(features[-1])
        return out
