"""The paper's five networks, built by name from the ``model`` section of the config.

=====================  ==============================================  ===================  ===============
name                   network                                         ``heads``            training loss
=====================  ==============================================  ===================  ===============
``lc_net``             U-Net encoder + classification branch           ``("logits",)``      BCE
``hcr_net``            U-Net encoder + decoder + reconstruction head   ``("recon",)``       CARL
``hcr_lc_equal``       shared U-Net with both heads                    both                 BCE + CARL
``hcr_lc_uncertain``   same network as ``hcr_lc_equal``                both                 uncertainty
``hcr_c_net``          frozen ``hcr_net`` → C-Net                      both (C-Net trains)  BCE
=====================  ==============================================  ===================  ===============

Every model's ``forward(x)`` takes ``x``: ``(N, 15, H, W)`` float32 (13 cloudy S2 bands in [0, 1], then 2
standardised S1 bands) and returns a dict: ``"recon"``: ``(N, 13, H, W)`` and/or ``"logits"``: ``(N, 10)``.

The self-supervised pretext model (which S1 neighbour, N/W/S/E, goes with the cloudy S2 patch) is
``build_model("lc_net", cfg, n_classes=4)``: its state dict matches an HCR&LC-Net's except
``classifier.head``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from hcrlc.errors import ConfigError
from hcrlc.model_specs import LOGITS, MODEL_NAMES, MODELS, RECON
from hcrlc.models.cnet import CNet, HcrCNet
from hcrlc.models.unet import UNet
from hcrlc.paper import S1_BANDS, S2_BANDS
from hcrlc.patch_geometry import check_unet_input_size, cnet_feature_size

__all__ = [
    "LOGITS",
    "MODEL_DEFAULTS",
    "MODEL_NAMES",
    "RECON",
    "CNet",
    "HcrCNet",
    "UNet",
    "build_model",
    "count_parameters",
    "learnable_parameters",
    "resolve_model_config",
]

N_CLASSES = 10  # simplified land-cover classes [L]
IN_CHANNELS = S2_BANDS + S1_BANDS

#: Defaults of the config's ``model`` section (the schema repeats them; a test keeps both equal).
#: They reproduce Table 1 [A].
MODEL_DEFAULTS: dict[str, Any] = {
    "widths": [32, 64, 128, 256, 512],
    "cls_widths": [1024, 2048, 4096],
    "cnet_layers": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M",
                    512, 512, 512, 512],
    "cnet_hidden": [2048, 4096],
    "cnet_dropout": 0.5,
    "recon_head_init": "default",
    "cls_batchnorm": False,
    "cls_init": "default",
}


def resolve_model_config(model_cfg: Mapping[str, Any] | None) -> dict[str, Any]:
    """``model_cfg`` with missing keys filled from :data:`MODEL_DEFAULTS`.

    Unknown keys raise :class:`ConfigError`.
    """
    model_cfg = dict(model_cfg or {})
    unknown = sorted(set(model_cfg) - set(MODEL_DEFAULTS))
    if unknown:
        raise ConfigError(f"unknown key(s) in config `model`: {unknown}; allowed: {sorted(MODEL_DEFAULTS)}")
    return {**MODEL_DEFAULTS, **model_cfg}


def build_model(
    name: str, model_cfg: Mapping[str, Any] | None, patch_size: int, n_classes: int = N_CLASSES
) -> nn.Module:
    """Build the network ``name`` (one of :data:`MODEL_NAMES`) with freshly initialised weights.

    ``model_cfg`` is the config's ``model`` section (missing keys take the defaults). ``patch_size`` (pixels, the
    data's: a checkpoint's ``patch_size``, the training items' side) is checked against the U-Net depth and
    classification branch and fixes the C-Net's first Linear layer.
    ``n_classes`` sets the classification outputs (10 land-cover classes; 4 for the N/W/S/E pretext task).
    The returned module has a ``heads`` attribute: the keys its ``forward`` returns. Build inside
    ``with torch.device("meta"):`` to get the structure without allocating weights.
    """
    if name not in MODEL_NAMES:
        raise ConfigError(f"unknown model {name!r}; choose one of {list(MODEL_NAMES)}")
    spec = MODELS[name]
    cfg = resolve_model_config(model_cfg)
    widths, cls_widths = list(cfg["widths"]), list(cfg["cls_widths"])
    if not spec.classifies and n_classes != N_CLASSES:
        raise ConfigError(f"model {name!r} has no classification head; n_classes={n_classes} does not apply")
    # a model that freezes a trained model inside builds that one's U-Net, and its own classifier after it
    unet_spec = MODELS[spec.frozen_inside] if spec.frozen_inside else spec
    check_unet_input_size(patch_size, widths, cls_widths if unet_spec.classifies else None)
    if spec.frozen_inside:
        cnet_feature_size(cfg["cnet_layers"], patch_size)  # fail before allocating the U-Net
    unet = UNet(widths, cls_widths, reconstruct=unet_spec.reconstructs, classify=unet_spec.classifies,
                in_channels=IN_CHANNELS, out_bands=S2_BANDS, n_classes=n_classes,
                recon_head_init=cfg["recon_head_init"], cls_batchnorm=bool(cfg["cls_batchnorm"]),
                cls_init=cfg["cls_init"])
    if not spec.frozen_inside:
        return unet
    cnet = CNet(cfg["cnet_layers"], cfg["cnet_hidden"], float(cfg["cnet_dropout"]), patch_size=patch_size,
                in_channels=IN_CHANNELS, n_classes=n_classes)
    return HcrCNet(unet, cnet)


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of parameter elements of ``model`` (only those with ``requires_grad`` when ``trainable_only``).

    Buffers (BatchNorm running statistics) are not parameters and are never counted.
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def learnable_parameters(name: str, model_cfg: Mapping[str, Any] | None, patch_size: int) -> int:
    """Parameters of model ``name`` for ``patch_size`` px inputs, as Table 1 counts them: every parameter of the
    network (the input size matters only to the C-Net, whose first Linear layer takes the flattened features).

    For ``hcr_c_net`` that is HCR-Net + C-Net together, although the HCR-Net is frozen while the C-Net trains.
    The uncertainty-weighting log-variances are not part of the network and not counted. The model is built on
    the meta device, so no weights are allocated (milliseconds even for the 100 M-parameter defaults).
    """
    with torch.device("meta"):
        model = build_model(name, model_cfg, patch_size)
    return count_parameters(model, trainable_only=False)
