"""Checkpoints: ``best.pt`` (read with :func:`load_checkpoint` / :func:`load_model`), the resume state and
the metrics file, each written atomically.

``best.pt`` holds only tensors and plain Python values and loads with ``torch.load(weights_only=True)``;
:func:`load_checkpoint` and :func:`load_model` check that it belongs to the expected model. The resume state
continues only a run of the same identity (:func:`check_resume_identity`): model, config, data sizes, init
checkpoint (SHA-256), ``init_skip`` and ``trainable`` set, code version.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hcrlc.atomic import atomic_output
from hcrlc.errors import CheckpointError
from hcrlc.model_specs import model_spec
from hcrlc.models import build_model, resolve_model_config
from hcrlc.paper import PIXEL_SIZE_M
from hcrlc.patch_geometry import same_pixel_size
from hcrlc.training.config import EXECUTION_KEYS

BEST_FORMAT = "hcrlc.best/1"
RESUME_FORMAT = "hcrlc.resume/1"
#: what every best.pt of BEST_FORMAT holds and the loaders read; ``patch_size`` (px) is the side of the patches the
#: network was trained on, written by every version of the training loop
BEST_KEYS = ("model_name", "model_cfg", "train_cfg", "patch_size", "n_classes", "state_dict")
#: ``pixel_size_m`` (the side of the training pixels in metres; None where the data sets did not say) is written by
#: the training loop since the synthetic tree could be coarser than SEN12MS; :func:`load_checkpoint` fills it in
#: for a best.pt without it: every such file was trained on 10 m pixels (SEN12MS, the synthetic tree before
#: ``synthetic.pixel_size_m``, the authors' checkpoints, which ``hcrlc import-authors-checkpoint`` now marks
#: explicitly). A workflow run retrains over older checkpoints anyway (the training code changed).
LEGACY_PIXEL_SIZE_M = PIXEL_SIZE_M


def read_torch_file(path: Path, what: str, fix: str) -> Any:
    """``torch.load(path, weights_only=True)`` onto the CPU; a file that torch cannot read is a
    :class:`CheckpointError` naming ``what`` and giving our ``fix``.

    torch's own message for a file holding other objects advises retrying with ``weights_only=False``: wrong advice
    for a damaged or untrusted file (it runs arbitrary code), so only its diagnosis is kept.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for truncated or foreign files
        text = str(err)
        if "WeightsUnpickler error:" in text:
            detail = text.split("WeightsUnpickler error:", 1)[1].strip().splitlines()[0].split(". Please")[0]
            why = f"it holds Python objects that no file of this project contains ({detail}); it was not loaded"
        else:
            why = f"{type(err).__name__}: {text.strip().splitlines()[0] if text.strip() else 'no detail'}"
        raise CheckpointError(f"{path}: unreadable {what} ({why}). Fix: {fix}") from err


def load_checkpoint(path: str | Path, expected_name: str | None = None) -> dict[str, Any]:
    """Read a ``best.pt`` written by :func:`train_model` (``weights_only``; tensors on CPU).

    Raises :class:`CheckpointError` when the file is unreadable, is not such a checkpoint, or holds another
    model than ``expected_name``. ``pixel_size_m`` is always there (:data:`LEGACY_PIXEL_SIZE_M` for a file
    without it).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint missing. Fix: train the model first (snakemake train)")
    ckpt = read_torch_file(path, "checkpoint", "delete it and retrain the model (snakemake reruns it)")
    if not isinstance(ckpt, dict) or ckpt.get("format") != BEST_FORMAT:
        raise CheckpointError(
            f"{path}: not a best.pt of hcrlc.training (format {BEST_FORMAT!r} expected). Fix: pass the "
            "best.pt that train_model wrote, or retrain"
        )
    missing = [key for key in BEST_KEYS if key not in ckpt]
    if missing:
        raise CheckpointError(f"{path}: a best.pt without {', '.join(missing)}. Fix: retrain the model "
                              "(snakemake reruns it when the file is deleted)")
    if expected_name is not None and ckpt["model_name"] != expected_name:
        raise CheckpointError(
            f"{path} holds model {ckpt['model_name']!r}, not {expected_name!r}. Fix: pass the best.pt of "
            f"{expected_name} (results/models/{expected_name}/best.pt)"
        )
    ckpt.setdefault("pixel_size_m", LEGACY_PIXEL_SIZE_M)
    return ckpt


def check_pixel_size(path: str | Path, ckpt: Mapping[str, Any], pixel_size_m: float | None, fix: str) -> None:
    """:class:`CheckpointError` when the checkpoint ``ckpt`` (read from ``path``) was trained on pixels of another
    size than ``pixel_size_m`` (m); nothing when either does not say."""
    trained = ckpt.get("pixel_size_m")
    if trained is not None and pixel_size_m is not None and not same_pixel_size(trained, pixel_size_m):
        raise CheckpointError(f"{path} was trained on {trained:g} m pixels, the data it is given has "
                              f"{pixel_size_m:g} m pixels. Fix: {fix}")


def load_model(
    path: str | Path,
    model_cfg: Mapping[str, Any] | None = None,
    *,
    expected_name: str | None = None,
    device: str | torch.device = "cpu",
    patch_px: int | None = None,
    pixel_size_m: float | None = None,
) -> nn.Module:
    """The network stored in ``best.pt``, with its best-validation weights, in eval mode on ``device``.

    When ``model_cfg`` is given it must equal (after filling defaults) the config the checkpoint was trained
    with; otherwise :class:`CheckpointError` names the differing keys. ``expected_name`` is checked as in
    :func:`load_checkpoint`; ``patch_px``, the size of the patches the network is to see, against the checkpoint's
    ``patch_size``, and ``pixel_size_m``, the side of their pixels (m), against its ``pixel_size_m``.
    """
    ckpt = load_checkpoint(path, expected_name)
    if patch_px is not None and int(ckpt["patch_size"]) != int(patch_px):
        raise CheckpointError(
            f"{path} was trained on {ckpt['patch_size']} px patches, the data it is given has {patch_px} px "
            f"patches. Fix: retrain {ckpt['model_name']} on this data (snakemake reruns it when the index changes)"
        )
    check_pixel_size(path, ckpt, pixel_size_m, f"retrain {ckpt['model_name']} on this data (snakemake reruns it "
                     "when the index changes)")
    if model_cfg is not None:
        diff = _differences(ckpt["model_cfg"], resolve_model_config(model_cfg))
        if diff:
            raise CheckpointError(
                f"{path} was trained with another model config ({'; '.join(diff)}). Fix: retrain "
                f"{ckpt['model_name']} with the current config, or evaluate with the one it was trained with"
            )
    model = build_network(ckpt["model_name"], ckpt["model_cfg"], ckpt["patch_size"], ckpt["n_classes"])
    try:
        model.load_state_dict(ckpt["state_dict"], strict=True)
    except RuntimeError as err:
        raise CheckpointError(
            f"{path}: weights do not fit {ckpt['model_name']} ({err}). Fix: retrain"
        ) from err
    return model.to(device).eval()


def build_network(name: str, model_cfg: Mapping[str, Any], patch_size: int, n_classes: int) -> nn.Module:
    """A freshly initialised network of trainable model ``name`` (:data:`hcrlc.model_specs.TRAINABLE`)."""
    spec = model_spec(name)
    if not spec.classifies:  # no classification head to size
        return build_model(spec.network_name, model_cfg, patch_size)
    return build_model(spec.network_name, model_cfg, patch_size, n_classes=n_classes)
def _differences(
    found: Mapping[str, Any], expected: Mapping[str, Any], ignore: Sequence[str] = ()
) -> list[str]:
    """``"key: found → expected"`` for every key whose values differ."""
    keys = sorted((set(found) | set(expected)) - set(ignore))
    return [f"{k}: {found.get(k)!r} → {expected.get(k)!r}" for k in keys if found.get(k) != expected.get(k)]


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes (identifies the checkpoints a run starts from)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 24), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_resume_identity(state: Mapping[str, Any], identity: Mapping[str, Any], path: Path) -> None:
    """Raise :class:`CheckpointError` unless the resume ``state`` was written by a run with this ``identity``.

    ``identity`` holds ``model_name``, ``model_cfg``, ``train_cfg`` (whose :data:`EXECUTION_KEYS` may differ)
    and any other plain values, compared for equality; the message names every difference.
    """
    found = state.get("identity") if state.get("format") == RESUME_FORMAT else None
    if found is None:
        raise CheckpointError(
            f"{path} is not a resume state of hcrlc.training. Fix: delete the folder {path.parent} to start "
            "over"
        )
    diff = _differences(found, identity, ignore=("train_cfg", "model_cfg"))
    diff += [f"model.{d}" for d in _differences(found["model_cfg"], identity["model_cfg"])]
    diff += [f"training.{d}" for d in
             _differences(found["train_cfg"], identity["train_cfg"], ignore=EXECUTION_KEYS)]
    if diff:
        raise CheckpointError(
            f"{path} belongs to model {found['model_name']!r} with another config or data than this run of "
            f"{identity['model_name']!r} (found → now: {'; '.join(diff)}). Fix: delete the folder "
            f"{path.parent} to start over, or restore the config it was trained with to continue it"
        )



def write_metrics_csv(rows: Sequence[Mapping[str, Any]], path: Path, columns: Sequence[str]) -> None:
    """One row per epoch, ``columns`` in order, None as an empty cell; atomically."""
    with atomic_output(path) as tmp, tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if row.get(k) is None else row[k] for k in columns})


def save_atomically(obj: Mapping[str, Any], path: Path) -> None:
    """``torch.save`` a dict of tensors and plain values to ``path``, atomically."""
    with atomic_output(path) as tmp:
        torch.save(dict(obj), tmp)

