"""Patch geometry: the stride that goes with a patch size, whether a patch size fits the networks, and when two
pixel sizes are one.

A patch's size is a property of the data (the shards' arrays, ``index.parquet``'s ``patch_px``, a checkpoint's
``patch_size``), never a constant: the real SEN12MS trees hold 256 px patches (:data:`hcrlc.paper.PATCH_SIZE`,
checked when they are read), the synthetic tree whatever ``synthetic.patch_size`` asks for. Patches are always
cut as SEN12MS cuts them, with 50 % overlap, so the stride between neighbours is half the size.

The pixel size is a property of the data too (``index.parquet``'s ``res``, a checkpoint's ``pixel_size_m``): 10 m
in SEN12MS, ``synthetic.pixel_size_m`` in a synthetic tree.

The checks here are plain arithmetic (no torch import), so the workflow runs them on the config before any job
(:func:`check_patch_size`); the networks run the same functions on their inputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hcrlc.errors import ConfigError

#: a C-Net layer entry that is a 2x2 max-pool, not a conv
POOL = "M"
#: Pixel sizes that differ by less than this fraction are one size: georeferencing carries float noise, and a
#: resampling by less than 0.1 % would only blur.
PIXEL_SIZE_RTOL = 1e-3


def same_pixel_size(a: float, b: float) -> bool:
    """Whether pixel sizes ``a`` and ``b`` (same unit) are one size, within :data:`PIXEL_SIZE_RTOL`."""
    return abs(float(a) - float(b)) <= PIXEL_SIZE_RTOL * max(abs(float(a)), abs(float(b)))


def patch_stride(patch_px: int) -> int:
    """Pixels between the corners of neighbouring patches of ``patch_px`` px: half a patch (50 % overlap, as SEN12MS
    cuts its patches). Raises :class:`ConfigError` for an odd or non-positive size."""
    if patch_px < 2 or patch_px % 2:
        raise ConfigError(f"a patch size must be a positive even number of pixels (the stride between neighbours is "
                          f"half of it), got {patch_px}; set `synthetic.patch_size` to an even number")
    return patch_px // 2


def check_unet_input_size(size: int, widths: Sequence[int], cls_widths: Sequence[int] | None) -> None:
    """Raise :class:`ConfigError` unless an input of ``size`` × ``size`` pixels fits the U-Net.

    ``size`` must be a multiple of ``2**depth`` (``depth = len(widths) - 1``) and, when there is a
    classification branch, the centre (``size / 2**depth``) must keep at least 1 px after ``len(cls_widths)``
    unpadded 3×3 convs.
    """
    depth = len(widths) - 1
    if size <= 0 or size % 2**depth:
        raise ConfigError(
            f"input size {size} px is not a multiple of 2**{depth} = {2**depth} (model.widths has "
            f"{len(widths)} levels); use a patch size that is, or fewer entries in model.widths"
        )
    if cls_widths is not None:
        centre = size // 2**depth
        if centre - 2 * len(cls_widths) < 1:
            raise ConfigError(
                f"the U-Net centre of a {size} px input is {centre} px, too small for {len(cls_widths)} "
                f"unpadded 3x3 convs (model.cls_widths; each removes 2 px, so at least "
                f"{2 * len(cls_widths) + 1} px are needed); use larger patches, fewer entries in "
                f"model.widths, or fewer in model.cls_widths"
            )


def cnet_feature_size(layers: Sequence[int | str], patch_size: int) -> tuple[int, int]:
    """``(channels, side)`` of the last C-Net conv feature map for a ``patch_size`` × ``patch_size`` input.

    Raises :class:`ConfigError` when ``patch_size`` is not divisible by ``2**n_pools`` or there is no conv
    layer.
    """
    widths = [layer for layer in layers if layer != POOL]
    if not widths:
        raise ConfigError(f"model.cnet_layers {list(layers)} has no conv layer; give at least one width")
    bad = [layer for layer in layers if layer != POOL and not (isinstance(layer, int) and layer > 0)]
    if bad:
        raise ConfigError(f"model.cnet_layers entries must be positive ints or {POOL!r}, got {bad}")
    n_pools = sum(layer == POOL for layer in layers)
    if patch_size <= 0 or patch_size % 2**n_pools:
        raise ConfigError(
            f"patch size {patch_size} px is not divisible by 2**{n_pools} = {2**n_pools} "
            f"({n_pools} {POOL!r} entries in model.cnet_layers); drop some pools or change the patch size"
        )
    return int(widths[-1]), patch_size // 2**n_pools


def check_patch_size(patch_px: int, model_cfg: Mapping[str, Any], *, size_key: str) -> None:
    """Raise :class:`ConfigError` unless patches of ``patch_px`` px fit every network the workflow trains.

    ``model_cfg``: the config's ``model`` section with ``widths``, ``cls_widths`` and ``cnet_layers``. Checked: the
    stride (half the size) is whole; the U-Net with its classification branch (LC-Net, HCR&LC-Net, the pretext)
    takes the size; the C-Net's pools divide it. ``size_key`` says where the size comes from (e.g.
    ``synthetic.patch_size``), and the message names it beside the model key that does not fit.
    """
    try:
        patch_stride(patch_px)
        check_unet_input_size(patch_px, model_cfg["widths"], model_cfg["cls_widths"])
        cnet_feature_size(model_cfg["cnet_layers"], patch_px)
    except ConfigError as err:
        raise ConfigError(f"patches of {patch_px} px ({size_key}) do not fit the networks of `model`: {err}") from err
