"""Import a checkpoint saved by the authors' training script (GitHub ``Gu-ZQ/HCR-LC-Net``) as one of our
``best.pt`` files, with a ``model_card.json`` that says where it came from.

    hcrlc import-authors-checkpoint --network hcr_lc_uncertain --checkpoint 20211105_170929_model_best.pth \\
        --out results/models/hcr_lc_uncertain

**What their script saves.** ``torch.save`` of ``{"epoch", "arch", "model_state_dict", "optimizer_state_dict",
"best_prec"}`` (``epoch`` counted from 0, ``best_prec`` the best validation micro-F1 so far, a NumPy float);
``*_model_best.pth`` is the copy made at the best epoch. Also accepted: the same under ``"state_dict"`` (the key
their resume code reads), a bare state dict, and keys prefixed ``module.`` (``nn.DataParallel``).

**Their names → ours** (``K`` encoder levels below the centre; K = 4 in their code):

=======================================  ==========================================================
authors (``unetConv2`` / ``unetUp``)     ours (:mod:`hcrlc.models.unet`)
=======================================  ==========================================================
``conv{i}.conv1.0`` / ``.conv1.1``       ``encoder.blocks.{i-1}.0`` (3×3 conv) / ``.1`` (BatchNorm)
``conv{i}.conv2.0`` / ``.conv2.1``       ``encoder.blocks.{i-1}.3`` / ``.4``
``center.*``                             ``encoder.blocks.{K}.*`` (same sub-names)
``up_concat{j}.up``                      ``decoder.ups.{K-j}`` (2×2 transposed conv)
``up_concat{j}.conv.conv1.0`` / ``conv2.0``  ``decoder.blocks.{K-j}.0`` / ``.2``
``final_decloud``                        ``recon_head``
``conv{K+1}``, ``conv{K+2}``, …          ``classifier.convs.0``, ``.2``, … (unpadded, bias-free)
``inter_class``                          ``classifier.head``
C-Net ``features.N``, ``classifier.N``   ``cnet.features.N``, ``cnet.classifier.N`` (same indices)
``log_var_a``, ``log_var_b``             the loss weighting's ``log_var_cls``, ``log_var_carl``
=======================================  ==========================================================

Both orders of the decoder's concatenation are [upsampled, skip], so the weights carry over unchanged. The
widths come from the file's shapes; the patch size is not in the weights (``patch_size``, 256 px by default as in
the paper), except that the C-Net's first Linear layer must fit it. The pixel size is not in the file either: the
authors trained on SEN12MS, so the ``best.pt`` records its 10 m (``pixel_size_m``). HCR-Net + C-Net was trained as two networks:
pass the C-Net's file as the checkpoint and the HCR-Net's (also in the authors' format) as ``hcr_source``.

``log_var_a``/``log_var_b`` (uncertainty weighting: ``a`` weighs the classification loss, ``b`` the CARL loss)
are module-level tensors in their script, outside ``model_state_dict``, so their files normally lack them; when
a file has them (top level or in the state dict) they are kept as our ``weighting``. They do not change what the
network predicts.

A key that has no place in the chosen network, a weight the network needs that the file lacks, or a shape that
does not fit is a :class:`~hcrlc.errors.CheckpointError` naming the key and the file. The only exception:
BatchNorm's ``num_batches_tracked`` counters, which PyTorch before 0.4.1 did not save, start at 0 when absent.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hcrlc.atomic import write_json
from hcrlc.errors import CheckpointError, ConfigError, HcrlcError
from hcrlc.model_card import model_card
from hcrlc.model_specs import MODEL_NAMES, MODELS
from hcrlc.models import IN_CHANNELS, N_CLASSES, resolve_model_config
from hcrlc.models.cnet import POOL
from hcrlc.paper import PATCH_SIZE, PIXEL_SIZE_M
from hcrlc.training.checkpoints import BEST_FORMAT, build_network, file_sha256, save_atomically

log = logging.getLogger(__name__)

AUTHORS_REPOSITORY = "Gu-ZQ/HCR-LC-Net"
IMPORTED_HOW = f"imported from the authors' training script ({AUTHORS_REPOSITORY})"
#: Keys under which their script (and its resume code) keep the network's state dict.
WRAPPER_KEYS = ("model_state_dict", "state_dict")
#: Their uncertainty-weighting tensors → our :class:`hcrlc.losses.UncertaintyWeighting` parameters.
LOG_VARS = {"log_var_a": "log_var_cls", "log_var_b": "log_var_carl"}
#: Authors' network → what a file of it holds (for the hint when the wrong ``network`` is chosen).
_KINDS = {"lc_net": "LC-Net", "hcr_net": "HCR-Net", "hcr_lc": "HCR&LC-Net", "c_net": "C-Net (VGG)"}
_LAYERS_OF = {
    "lc_net": "keys conv1…, center, conv5…, inter_class",
    "hcr_net": "keys conv1…, center, up_concat…, final_decloud",
    "hcr_lc": "keys conv1…, center, up_concat…, final_decloud, conv5…, inter_class",
    "c_net": "keys features.N, classifier.N",
}
_KIND_OF = {"lc_net": "lc_net", "hcr_net": "hcr_net", "hcr_lc_equal": "hcr_lc", "hcr_lc_uncertain": "hcr_lc",
            "hcr_c_net": "c_net"}
try:
    from numpy._core.multiarray import scalar as _numpy_scalar
except ImportError:  # NumPy 1.x
    from numpy.core.multiarray import scalar as _numpy_scalar
#: NumPy objects a pickled NumPy scalar needs (their ``best_prec``), under the names NumPy 1.x and 2.x pickle.
_NUMPY_SCALAR_GLOBALS = [
    (_numpy_scalar, "numpy.core.multiarray.scalar"),
    (_numpy_scalar, "numpy._core.multiarray.scalar"),
    np.dtype,
    *{type(np.dtype(t)) for t in (np.float64, np.float32, np.int64, np.int32)},
]
_BN_COUNTER = "num_batches_tracked"


@dataclass
class AuthorsFile:
    """One file saved by the authors' code: the network's state dict (``module.`` removed), the log-variances
    found in it (our names), and the other values saved beside the weights (``epoch``, ``arch``, ``best_prec``)."""

    path: Path
    state: dict[str, torch.Tensor]
    log_vars: dict[str, torch.Tensor] = field(default_factory=dict)
    saved: dict[str, Any] = field(default_factory=dict)


def read_authors_file(path: str | Path) -> AuthorsFile:
    """Read ``path`` with ``torch.load(weights_only=True)`` (NumPy scalars allowed) onto the CPU.

    Raises :class:`CheckpointError` when the file is missing, unreadable, or holds no state dict.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file. Fix: pass the .pth file the authors' training script saved")
    try:
        with torch.serialization.safe_globals(_NUMPY_SCALAR_GLOBALS):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for truncated or foreign files
        first = (str(err).strip().splitlines() or ["no detail"])[0]
        raise CheckpointError(
            f"{path}: not readable as a PyTorch checkpoint of tensors and plain values ({type(err).__name__}: "
            f"{first}); it was not loaded. Fix: pass the .pth file that torch.save wrote in the authors' script"
        ) from err
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path}: holds a {type(obj).__name__}, not a dict. Fix: pass the .pth file the "
                              "authors' script saved (a dict with 'model_state_dict', or a state dict)")
    wrapper = next((k for k in WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
    raw = dict(obj[wrapper]) if wrapper else dict(obj)
    outside = {k: v for k, v in obj.items() if k != wrapper} if wrapper else {}
    log_vars = {ours: raw.pop(theirs) for theirs, ours in LOG_VARS.items() if theirs in raw}
    log_vars |= {ours: outside[theirs] for theirs, ours in LOG_VARS.items() if theirs in outside}
    not_tensors = sorted(k for k, v in raw.items() if not isinstance(v, torch.Tensor))
    if not raw or not_tensors:
        raise CheckpointError(
            f"{path}: no state dict found (top-level keys {sorted(map(str, obj))[:8]}; expected one of "
            f"{list(WRAPPER_KEYS)} or a dict of tensors{f', not {not_tensors[:3]}' if not_tensors else ''}). "
            "Fix: pass the .pth file the authors' training script saved")
    if all(k.startswith("module.") for k in raw):  # saved from nn.DataParallel
        raw = {k.removeprefix("module."): v for k, v in raw.items()}
    saved = {k: _plain(outside[k]) for k in ("epoch", "arch", "best_prec") if k in outside}
    return AuthorsFile(path, raw, log_vars, saved)


def _plain(value: Any) -> Any:
    """A NumPy scalar or 0-d tensor as a Python number; other values unchanged."""
    if isinstance(value, (np.generic, torch.Tensor)):
        return value.item()
    return value


# --- what a file holds -----------------------------------------------------------------------------------------

_ENCODER = re.compile(r"conv(\d+)\.conv[12]\.")
_PLAIN_CONV = re.compile(r"conv(\d+)\.weight$")


def encoder_depth(state: Mapping[str, torch.Tensor]) -> int:
    """K: the number of ``conv{i}`` encoder levels (``unetConv2`` blocks) below ``center``."""
    levels = {int(m.group(1)) for k in state if (m := _ENCODER.match(k))}
    return max(levels, default=0)


def authors_network_kind(state: Mapping[str, torch.Tensor]) -> str | None:
    """Which of the authors' networks ``state`` looks like: ``lc_net``, ``hcr_net``, ``hcr_lc``, ``c_net``,
    or None."""
    if any(k.startswith("features.") for k in state):
        return "c_net"
    decodes = any(k.startswith(("up_concat", "final_decloud.")) for k in state)
    classifies = any(k.startswith("inter_class.") for k in state)
    if decodes and classifies:
        return "hcr_lc"
    return "hcr_net" if decodes else "lc_net" if classifies else None


def infer_unet_widths(source: AuthorsFile) -> tuple[list[int], list[int] | None]:
    """``(widths, cls_widths)`` of the U-Net in ``source`` from its weights' shapes (``cls_widths`` None without a
    classification branch). Checks the input channels (15) and class count (10) this pipeline uses."""
    state, path = source.state, source.path
    depth = encoder_depth(state)
    names = [f"conv{i}.conv1.0.weight" for i in range(1, depth + 1)] + ["center.conv1.0.weight"]
    missing = [n for n in names if n not in state]
    if depth == 0 or missing:
        raise CheckpointError(
            f"{path}: no U-Net encoder found (missing {missing[:3] or names[:1]}; its keys start "
            f"{sorted(state)[:5]}). Fix: pass a file of the authors' LC-Net, HCR-Net or HCR&LC-Net, or "
            "--network hcr_c_net for a C-Net")
    first = state[names[0]]
    if first.ndim != 4 or first.shape[1] != IN_CHANNELS:
        raise CheckpointError(
            f"{path}: {names[0]!r} has shape {tuple(first.shape)}, but this pipeline's networks take "
            f"{IN_CHANNELS} input channels (13 cloudy S2 bands, then S1 VV, VH). Fix: import a network trained on "
            "S2 + S1 (the authors' --use_s1 --use_ALL)")
    widths = [int(state[n].shape[0]) for n in names]
    cls_convs = sorted(int(m.group(1)) for k in state if (m := _PLAIN_CONV.match(k)) and int(m.group(1)) > depth)
    if "inter_class.weight" not in state:
        return widths, None
    n_classes = int(state["inter_class.weight"].shape[0])
    if n_classes != N_CLASSES:
        raise CheckpointError(
            f"{path}: 'inter_class.weight' has shape {tuple(state['inter_class.weight'].shape)}: {n_classes} classes, "
            f"this pipeline's {N_CLASSES} (the simplified IGBP scheme). Fix: import a network trained with "
            "--IGBP_simple")
    return widths, [int(state[f"conv{i}.weight"].shape[0]) for i in cls_convs]


def infer_cnet_layers(source: AuthorsFile, patch_size: int) -> tuple[list[int | str], list[int]]:
    """``(cnet_layers, cnet_hidden)`` of the VGG C-Net in ``source`` for ``patch_size``-px inputs.

    Max-pools hold no weights: those between convs show as gaps in the ``features.N`` indices (conv, ReLU = 2
    indices; pool = 1); those after the last conv follow from the first Linear layer's input size, which is
    ``channels · (patch_size / 2**pools)²``.
    """
    state, path = source.state, source.path
    convs = sorted(int(m.group(1)) for k in state if (m := re.match(r"features\.(\d+)\.weight$", k)))
    linears = sorted(int(m.group(1)) for k in state if (m := re.match(r"classifier\.(\d+)\.weight$", k)))
    if not convs or not linears:
        raise CheckpointError(f"{path}: no C-Net found (no 'features.N.weight' or 'classifier.N.weight' keys). "
                              "Fix: pass the C-Net's file as --checkpoint and the HCR-Net's as --hcr-checkpoint")
    layers: list[int | str] = []
    position = 0  # the index the next layer would have
    for index in convs:
        if index < position:
            raise CheckpointError(f"{path}: 'features.{index}' directly follows the conv 'features.{index - 1}'; "
                                  "a VGG conv is followed by a ReLU. Fix: pass an unmodified C-Net file")
        layers += [POOL] * (index - position) + [int(state[f"features.{index}.weight"].shape[0])]
        position = index + 2
    if linears != [3 * i for i in range(len(linears))]:
        raise CheckpointError(f"{path}: Linear layers at classifier indices {linears}; the C-Net has them at "
                              "0, 3, 6 (Linear, ReLU, Dropout). Fix: pass an unmodified C-Net file")
    n_in, channels, seen = int(state["classifier.0.weight"].shape[1]), int(layers[-1]), layers.count(POOL)
    side = round((n_in / channels) ** 0.5)
    pools = (patch_size // side).bit_length() - 1 if side > 0 else -1
    if side * side * channels != n_in or pools < seen or side * 2**pools != patch_size:
        raise CheckpointError(
            f"{path}: 'classifier.0.weight' takes {n_in} features, which {channels} channels of a {patch_size}-px "
            f"input after {seen} or more 2x2 pools cannot give. Fix: pass the patch size the C-Net was trained "
            "on (--patch-size)")
    layers += [POOL] * (pools - seen)
    hidden = [int(state[f"classifier.{i}.weight"].shape[0]) for i in linears[:-1]]
    n_classes = int(state[f"classifier.{linears[-1]}.weight"].shape[0])
    if n_classes != N_CLASSES:
        raise CheckpointError(f"{path}: the C-Net has {n_classes} outputs, this pipeline's {N_CLASSES} classes. Fix: "
                              "import a network trained with --IGBP_simple")
    return layers, hidden


# --- names ------------------------------------------------------------------------------------------------------

def authors_unet_key(ours: str, depth: int) -> str:
    """The authors' name of our U-Net state-dict key ``ours`` (table in the module docstring)."""
    parts = ours.split(".")
    if parts[0] == "encoder":  # encoder.blocks.{i}.{0,1,3,4}.param
        i, j = int(parts[2]), int(parts[3])
        level = f"conv{i + 1}" if i < depth else "center"
        return f"{level}.{ {0: 'conv1.0', 1: 'conv1.1', 3: 'conv2.0', 4: 'conv2.1'}[j] }.{'.'.join(parts[4:])}"
    if parts[0] == "decoder":  # decoder.ups.{l}.param | decoder.blocks.{l}.{0,2}.param
        level = f"up_concat{depth - int(parts[2])}"
        if parts[1] == "ups":
            return f"{level}.up.{'.'.join(parts[3:])}"
        return f"{level}.conv.{ {0: 'conv1.0', 2: 'conv2.0'}[int(parts[3])] }.{'.'.join(parts[4:])}"
    if parts[0] == "recon_head":
        return f"final_decloud.{'.'.join(parts[1:])}"
    if parts[:2] == ["classifier", "convs"]:  # classifier.convs.{2k}.weight
        return f"conv{depth + 1 + int(parts[2]) // 2}.{'.'.join(parts[3:])}"
    if parts[:2] == ["classifier", "head"]:
        return f"inter_class.{'.'.join(parts[2:])}"
    raise ConfigError(f"no authors' name for U-Net key {ours!r}")


def _place(ours: Mapping[str, torch.Tensor], source: AuthorsFile, theirs_of: Mapping[str, str], network: str
           ) -> dict[str, torch.Tensor]:
    """Our state dict filled from ``source`` through ``theirs_of`` (our key → their key); every file key must be
    used, every one of ours found, with our shape."""
    path, state = source.path, source.state
    unplaced = sorted(set(state) - set(theirs_of.values()))
    if unplaced:
        kind = authors_network_kind(state)
        raise CheckpointError(
            f"{path}: key(s) {unplaced[:5]}{' …' if len(unplaced) > 5 else ''} ({len(unplaced)} in all) have no "
            f"place in {network} ({MODELS[network].label}); the file looks like the authors' "
            f"{_KINDS.get(kind or '', 'unknown network')}. Fix: pass the {MODELS[network].label} file, or "
            f"choose the --network the file holds")
    missing = [(k, t) for k, t in theirs_of.items() if t not in state and not k.endswith(_BN_COUNTER)]
    if missing:
        raise CheckpointError(
            f"{path}: no weight {missing[0][1]!r} (for our {missing[0][0]!r}; {len(missing)} missing in all, e.g. "
            f"{[t for _, t in missing[1:4]]}), which {network} ({MODELS[network].label}) needs. Fix: pass the "
            f"file of the authors' {MODELS[network].label}, or choose the --network the file holds")
    out = {}
    for key, own in ours.items():
        theirs = theirs_of[key]
        value = state.get(theirs, torch.zeros((), dtype=own.dtype))
        if tuple(value.shape) != tuple(own.shape):
            raise CheckpointError(
                f"{path}: {theirs!r} has shape {tuple(value.shape)}, {network} built from the file's widths needs "
                f"{tuple(own.shape)} (our {key!r}). Fix: pass an unmodified file of the authors' "
                f"{MODELS[network].label}")
        out[key] = value.detach().to(dtype=own.dtype).contiguous()
    return out


# --- the import -------------------------------------------------------------------------------------------------

def convert_authors_checkpoint(network: str, source: str | Path, *, hcr_source: str | Path | None = None,
                               patch_size: int = PATCH_SIZE) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(best, provenance)``: the content of our ``best.pt`` for ``network`` (one of :data:`MODEL_NAMES`) made
    from the authors' file ``source`` (and, for ``hcr_c_net``, their HCR-Net file ``hcr_source``), and the
    record of where it came from for the model card."""
    if network not in MODEL_NAMES:
        raise ConfigError(f"unknown network {network!r}; choose one of {list(MODEL_NAMES)}")
    spec = MODELS[network]
    if (hcr_source is not None) != (spec.frozen_inside is not None):
        raise ConfigError(
            f"{network}: " + ("pass the authors' HCR-Net file as hcr_source (--hcr-checkpoint): HCR-Net + C-Net "
                              "was trained as two networks" if hcr_source is None else
                              "hcr_source (--hcr-checkpoint) applies only to hcr_c_net"))
    main = read_authors_file(source)
    unet_file = read_authors_file(hcr_source) if hcr_source is not None else main
    _check_kind(network, main)
    if hcr_source is not None:
        _check_kind(spec.frozen_inside, unet_file)
    widths, cls_widths = infer_unet_widths(unet_file)
    model_cfg: dict[str, Any] = {"widths": widths}
    if cls_widths is not None:
        model_cfg["cls_widths"] = cls_widths
    if hcr_source is not None:
        model_cfg["cnet_layers"], model_cfg["cnet_hidden"] = infer_cnet_layers(main, patch_size)
    model_cfg = resolve_model_config(model_cfg)
    with torch.device("meta"):
        ours = build_network(network, model_cfg, patch_size, N_CLASSES).state_dict()
    depth = len(widths) - 1
    if hcr_source is None:
        state = _place(ours, main, {k: authors_unet_key(k, depth) for k in ours}, network)
    else:
        hcr_keys = {k.removeprefix("hcr."): v for k, v in ours.items() if k.startswith("hcr.")}
        cnet_keys = {k.removeprefix("cnet."): v for k, v in ours.items() if k.startswith("cnet.")}
        hcr = _place(hcr_keys, unet_file, {k: authors_unet_key(k, depth) for k in hcr_keys}, spec.frozen_inside)
        cnet = _place(cnet_keys, main, {k: k for k in cnet_keys}, network)
        state = {f"hcr.{k}": v for k, v in hcr.items()} | {f"cnet.{k}": v for k, v in cnet.items()}
    weighting = _weighting(network, main)
    epoch = main.saved.get("epoch")
    best = {
        "format": BEST_FORMAT,
        "model_name": network,
        "model_cfg": model_cfg,
        "train_cfg": {},  # trained by the authors' script: its settings are not in the file
        "patch_size": int(patch_size),
        "pixel_size_m": PIXEL_SIZE_M,  # SEN12MS's: the data the authors trained on
        "n_classes": N_CLASSES,
        "epoch": int(epoch) + 1 if isinstance(epoch, int) else None,  # theirs count from 0, ours from 1
        "metric": spec.selection_metric,
        "value": float(main.saved["best_prec"]) if "best_prec" in main.saved else None,
        "state_dict": state,
        "weighting": weighting,
        "init_checkpoint_sha256": None,
        "trainable": None,
    }
    provenance = {
        "how": IMPORTED_HOW,
        "network": network,
        "network_label": spec.label,
        "file": str(main.path.resolve()),
        "sha256": file_sha256(main.path),
        "saved_beside_the_weights": main.saved,
        "log_variances": ("from the file" if weighting else
                          "not in the file (their script keeps log_var_a/log_var_b outside the saved state dict)"
                          if spec.weighting == "uncertain" else None),
    }
    if hcr_source is not None:
        provenance["hcr_file"] = str(unet_file.path.resolve())
        provenance["hcr_sha256"] = file_sha256(unet_file.path)
    return best, provenance


def _check_kind(network: str, source: AuthorsFile) -> None:
    """Refuse a file of another of the authors' networks, naming what it holds."""
    kind, wanted = authors_network_kind(source.state), _KIND_OF[network]
    if kind is not None and kind != wanted:
        raise CheckpointError(
            f"{source.path}: holds the authors' {_KINDS[kind]} ({_LAYERS_OF[kind]}), not the {_KINDS[wanted]} "
            f"that {network} ({MODELS[network].label}) needs ({_LAYERS_OF[wanted]}). Fix: choose the --network "
            "the file holds" + (", and pass the HCR-Net's file as --hcr-checkpoint" if wanted == "c_net" else ""))


def _weighting(network: str, source: AuthorsFile) -> dict[str, torch.Tensor] | None:
    """Our ``weighting`` state (``log_var_cls``, ``log_var_carl``) from the file's log-variances, if any."""
    if not source.log_vars:
        return None
    names = {ours: theirs for theirs, ours in LOG_VARS.items()}
    if MODELS[network].weighting != "uncertain":
        raise CheckpointError(
            f"{source.path}: {[names[k] for k in source.log_vars]} (uncertainty-weighting log-variances) have no "
            f"place in {network}, whose loss has no learned weights. Fix: choose --network hcr_lc_uncertain")
    if set(source.log_vars) != set(LOG_VARS.values()):
        lacking = [t for t, o in LOG_VARS.items() if o not in source.log_vars]
        raise CheckpointError(f"{source.path}: has {[names[k] for k in source.log_vars]} but not {lacking}. "
                              "Fix: save both log-variances, or neither")
    out = {}
    for ours, value in source.log_vars.items():
        value = torch.as_tensor(_plain(value), dtype=torch.float32)
        if value.numel() != 1:
            raise CheckpointError(f"{source.path}: {names[ours]!r} has shape {tuple(value.shape)}, a log-variance is "
                                  "one number. Fix: pass an unmodified file")
        out[ours] = value.reshape(())
    return out


def import_authors_checkpoint(network: str, source: str | Path, out_dir: str | Path, *,
                              hcr_source: str | Path | None = None, patch_size: int = PATCH_SIZE) -> dict[str, Any]:
    """Write ``out_dir/best.pt`` (as :mod:`hcrlc.training` writes it) and ``out_dir/model_card.json`` for the
    authors' file ``source`` (see :func:`convert_authors_checkpoint`); return the card.

    The written ``best.pt`` is read back with :func:`hcrlc.training.load_model` (strict) before the card is made,
    so a file that converts is one that ``evaluate`` and ``predict`` load.
    """
    out_dir = Path(out_dir)
    best, provenance = convert_authors_checkpoint(network, source, hcr_source=hcr_source, patch_size=patch_size)
    best_path = out_dir / "best.pt"
    save_atomically(best, best_path)
    try:
        card = model_card(best_path, run=network, data_source="unknown", splits={}, training_code=None)
    except HcrlcError:
        best_path.unlink(missing_ok=True)
        raise
    card["data"] = {
        "source": "unknown",
        "note": "trained by the authors' training script on data this pipeline did not see (the file does not say "
                "which; the paper used SEN12MS + SEN12MS-CR)",
        "splits": None,
        "max_train_samples": None,
    }
    card["training_config"] = None
    card["imported_from"] = provenance
    write_json(card, out_dir / "model_card.json")
    log.info("%s (%s) from %s -> %s", network, MODELS[network].label, source, best_path)
    return card
