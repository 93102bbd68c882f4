"""Run a trained model on one's own Sentinel-1/2 scene of any size: georeferenced Cloud-Optimized GeoTIFFs.

Inputs (checked before any work; every refusal names the file and the fix):

* **S2**: a GeoTIFF of Sentinel-2 **L1C**, 13 bands in the order of :data:`hcrlc.paper.S2_BAND_NAMES` (B01 … B12
  with B8A and B10), integer reflectance × 10,000 (uint16, as SEN12MS stores it), all bands on one 10 m grid, in
  a projected CRS (UTM), at least one window (the checkpoint's patch size: 256 px for a model trained on SEN12MS)
  of the model's pixels per side. A declared nodata value marks pixels where all 13 bands equal it; they get
  nodata in the outputs and do not count in the scene statistics.
* **S1**: a GeoTIFF of VV and VH backscatter in dB (2 bands) on any grid and CRS that covers the S2 footprint. It
  is reprojected onto the S2 grid with bilinear resampling through GDAL (:class:`rasterio.vrt.WarpedVRT`),
  window by window; its nodata (or NaN) pixels stay out of the interpolation and become NaN, which the model's
  input preparation turns into 0 dB exactly as in training (:func:`hcrlc.data.dataset.prepare_s1`).

**The grid of the outputs** is the S2's (CRS, transform, width, height) when the model was trained on pixels of
the scene's size (the checkpoint's ``pixel_size_m``: 10 m for SEN12MS; within 0.1 %), or when the checkpoint does
not say. A model trained on coarser pixels (the demo's scale model: 40 m) sees coarser pixels: S2 and S1 are first
averaged onto the grid of the model's pixel size over the scene (same CRS and upper-left corner;
:mod:`hcrlc.scene_resampling`: S2 reflectance averaged, S1 averaged in linear power), and every output lies on
that grid. A scene coarser than the model's pixels is refused. ``summary.json`` records both pixel sizes.

What is computed, with bounded memory (one row of windows at a time; never the whole scene as floats):

* ``cloud_free.tif`` (models with a reconstruction head): the network runs on square windows of the training
  patch size (the checkpoint's ``patch_size``: a model trained on 64 px patches sees 64 px windows) whose starts
  are spread evenly over the scene so that neighbours share at least ``overlap`` pixels (default: a quarter of the
  window)
  and the last window ends on the scene's edge (:func:`window_starts`; no padding, every input is real data).
  Overlapping outputs are blended with a 2-D Hann weight with a floor (:func:`blend_weights`), which falls to
  almost nothing at a window's edge where convolutions saw zero padding, so no seam shows. Written as uint16
  reflectance × 10,000 clipped to [0, 10,000] (the range the model was trained on).
* ``cloud_mask.tif``: s2cloudless's mask of the input S2 (1 = cloud, 255 = nodata) with the config's ``masks``
  parameters, computed by :mod:`hcrlc.data.fast_cloud` on strips of rows with a halo of
  ``average_over + dilation_size`` rows, so that the disk averaging (OpenCV, reflected border) and the dilation
  see exactly what they see on the whole image: the mask equals stock s2cloudless run on the whole scene.
* ``landcover.tif`` (models with a classification head): sigmoid probabilities of the 10 classes
  (:data:`hcrlc.paper.CLASSES`), one value per window: a coarse grid whose cell ``(i, j)`` is centred on window
  ``(i, j)``'s centre and is one stride wide, so the grid lies inside the scene.
* ``summary.json`` and ``quicklook.png`` (:mod:`hcrlc.quicklook`).

GeoTIFF outputs are Cloud-Optimized GeoTIFFs (GDAL's COG driver: 512-px tiles, DEFLATE, internal overviews),
written through a temporary tiled GeoTIFF and moved into place atomically.

Caveat for real scenes: L1C products of processing baseline 04.00 and later (from 25 January 2022) store
reflectance × 10,000 **+ 1,000**; subtract the offset (``BOA_ADD_OFFSET`` in the product metadata) before
calling this, as SEN12MS (2017/2018) and s2cloudless know no offset.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.shutil
import torch
from rasterio.transform import Affine
from rasterio.windows import Window
from tqdm import tqdm

from hcrlc.atomic import atomic_output, write_json
from hcrlc.data.dataset import prepare_s1, prepare_s2
from hcrlc.data.fast_cloud import (
    ENGINES,
    cloud_masks_from_probabilities,
    cloud_probabilities,
    stock_cloud_probabilities,
)
from hcrlc.errors import CheckpointError, ConfigError
from hcrlc.model_specs import MODEL_NAMES
from hcrlc.models import LOGITS, N_CLASSES, RECON
from hcrlc.paper import CLASSES, MASK_PRESETS, S1_BANDS, S2_BAND_NAMES, S2_BANDS, S2_SCALE
from hcrlc.scene_inputs import SceneGrid, check_s1, check_s2
from hcrlc.scene_resampling import off_nodata, resample_scene, s1_on_grid, valid_pixels
from hcrlc.training import PRETEXT, file_sha256, load_checkpoint, load_model, resolve_device

__all__ = [
    "CLOUD_FREE",
    "CLOUD_MASK",
    "LANDCOVER",
    "MASK_NODATA",
    "PREDICT_DEFAULTS",
    "QUICKLOOK",
    "SUMMARY",
    "PredictSettings",
    "SceneGrid",
    "blend_weights",
    "check_s1",
    "check_s2",
    "coarse_transform",
    "predict_scene",
    "s1_on_grid",
    "window_starts",
    "write_cloud_mask",
]

log = logging.getLogger(__name__)

CLOUD_FREE, CLOUD_MASK, LANDCOVER = "cloud_free.tif", "cloud_mask.tif", "landcover.tif"
SUMMARY, QUICKLOOK = "summary.json", "quicklook.png"
#: Value of ``cloud_mask.tif`` where the S2 input is nodata (0 = clear, 1 = cloud).
MASK_NODATA = 255
#: Floor of the blending weight: a pixel that only one window's edge covers (the scene's border) keeps it.
WEIGHT_FLOOR = 1e-3
#: Rows of S2 per step of the cloud-mask pass (plus the halo): ~13 × 2 B × width per row in memory.
MASK_STRIP_ROWS = 512
#: GDAL's block cache (MB); its default, 5 % of the RAM, would let memory grow with the scene. One tile row of the
#: temporary cloud-free GeoTIFF (256 rows × width × 13 bands × 2 B: 33 MB at 5,000 px) should fit.
GDAL_CACHE_MB = 64
#: Tile side of the temporary GeoTIFFs; one tile row (this many image rows × width × bands) stays in GDAL's cache.
_TMP_BLOCK = 256
_COG_OPTIONS = {"COMPRESS": "DEFLATE", "PREDICTOR": "YES", "BLOCKSIZE": 512, "BIGTIFF": "IF_SAFER"}

#: How the inputs reach the model's grid when its pixels are coarser than the scene's (:mod:`hcrlc.scene_resampling`).
RESAMPLING = {"s2": "mean of the valid S2 pixels under each model pixel (GDAL average), rounded to DN",
              "s1": "bilinear onto the S2 grid in dB, then the mean in linear power under each model pixel"}

#: Defaults of the config's ``predict`` section without ``model`` and ``scenes`` (the schema repeats them; a test
#: keeps both equal). ``overlap`` None: :data:`DEFAULT_OVERLAP_FRACTION` of the window.
PREDICT_DEFAULTS: dict[str, Any] = {"overlap": None, "batch_size": 8, "device": "auto"}
#: The default overlap as a fraction of the window: 64 px for the paper's 256 px patches (the fixed default before
#: the window followed the checkpoint's patch size), 16 px for 64 px patches.
DEFAULT_OVERLAP_FRACTION = 0.25


@dataclass(frozen=True)
class PredictSettings:
    """How a scene is predicted. ``overlap``: pixels shared by neighbouring windows (at least; windows are spread
    evenly; None = :data:`DEFAULT_OVERLAP_FRACTION` of the window, set by :meth:`for_window`); ``batch_size``: windows per forward pass; ``device``: auto, cpu or cuda; ``threshold``,
    ``average_over``, ``dilation_size``: s2cloudless's mask parameters (config ``masks``); ``mask_engine``: fast
    or stock (same masks); ``threads``: CPU threads of the cloud-mask engine, GDAL and torch."""

    overlap: int | None = PREDICT_DEFAULTS["overlap"]
    batch_size: int = PREDICT_DEFAULTS["batch_size"]
    device: str = PREDICT_DEFAULTS["device"]
    threshold: float = MASK_PRESETS["authors"]["threshold"]
    average_over: int = int(MASK_PRESETS["authors"]["average_over"])
    dilation_size: int = int(MASK_PRESETS["authors"]["dilation_size"])
    mask_engine: str = "fast"
    threads: int = 1

    def __post_init__(self) -> None:
        if self.overlap is not None and self.overlap < 0:
            raise ConfigError(f"predict.overlap must be >= 0 pixels, got {self.overlap}")
        if self.batch_size < 1:
            raise ConfigError(f"predict.batch_size must be >= 1, got {self.batch_size}")
        if self.mask_engine not in ENGINES:
            raise ConfigError(f"masks.engine must be one of {ENGINES}, got {self.mask_engine!r}")
        if self.threads < 1:
            raise ConfigError(f"threads must be >= 1, got {self.threads}")

    def for_window(self, size: int) -> PredictSettings:
        """These settings for windows of ``size`` px: the default overlap resolved, an overlap that leaves no
        stride refused (:class:`ConfigError`)."""
        overlap = round(DEFAULT_OVERLAP_FRACTION * size) if self.overlap is None else self.overlap
        if overlap >= size:
            raise ConfigError(f"predict.overlap must be smaller than the {size}-px window (the checkpoint's patch "
                              f"size), got {overlap}; leave it unset for a quarter of the window")
        return replace(self, overlap=overlap)

    def result_key(self) -> dict[str, Any]:
        """The settings that change the outputs (not batch size, device, engine or threads)."""
        return {"overlap": self.overlap, "threshold": self.threshold, "average_over": self.average_over,
                "dilation_size": self.dilation_size}


# --- windows and blending ------------------------------------------------------------------------------------


def window_starts(length: int, size: int, overlap: int) -> np.ndarray:
    """Start offsets (pixels) of windows of ``size`` along an axis of ``length`` pixels: (n,) int64.

    The first window starts at 0 and the last ends at ``length``; the starts in between are spread evenly, so
    that neighbours share at least ``overlap`` pixels (more where the length asks for it): ``n = ceil((length -
    size) / (size - overlap)) + 1``.
    """
    if length < size:
        raise ValueError(f"an axis of {length} px is shorter than one window of {size} px")
    if not 0 <= overlap < size:
        raise ConfigError(f"predict.overlap must be in [0, {size}) pixels for {size}-px windows, got {overlap}")
    if length == size:
        return np.zeros(1, dtype=np.int64)
    n = math.ceil((length - size) / (size - overlap)) + 1
    return np.rint(np.arange(n) * ((length - size) / (n - 1))).astype(np.int64)


def blend_weights(size: int, floor: float = WEIGHT_FLOOR) -> np.ndarray:
    """(size, size) float64 blending weight of a window: the outer product of two Hann windows, at least ``floor``.

    Outputs of overlapping windows are averaged with these weights, so each window's contribution fades out
    towards its edges (where its convolutions saw zero padding) and neighbours cross-fade without a seam.
    """
    t = (np.arange(size) + 0.5) / size
    hann = np.sin(np.pi * t) ** 2
    return np.maximum(np.outer(hann, hann), floor)


def _grid_step(starts: np.ndarray, size: int, overlap: int) -> float:
    """Distance between window starts (pixels): their mean stride; the nominal one for a single window."""
    return float(starts[-1] / (len(starts) - 1)) if len(starts) > 1 else float(size - overlap)


def coarse_transform(transform: Affine, ys: np.ndarray, xs: np.ndarray, size: int, overlap: int) -> Affine:
    """Geotransform of the window grid: cell ``(i, j)`` is centred on window ``(i, j)``'s centre, one stride wide.

    The evenly spread starts lie within half a pixel of ``i * stride``; the grid spans from ``size/2 − stride/2``
    to ``length − size/2 + stride/2`` pixels, inside the scene since ``stride <= size``.
    """
    sy, sx = _grid_step(ys, size, overlap), _grid_step(xs, size, overlap)
    return transform @ Affine.translation(size / 2 - sx / 2, size / 2 - sy / 2) @ Affine.scale(sx, sy)


def to_dn(reflectance: np.ndarray, overwrite: bool = False) -> np.ndarray:
    """Reflectance (float64 array) -> uint16 reflectance × 10,000, rounded, clipped to [0, 10,000].

    ``overwrite``: compute in ``reflectance``'s own memory (no float64 temporaries the size of a window row).
    """
    values = reflectance if overwrite else reflectance.astype(np.float64)
    np.multiply(values, S2_SCALE, out=values)
    np.rint(values, out=values)
    np.clip(values, 0, S2_SCALE, out=values)
    return values.astype(np.uint16)


# --- writing ---------------------------------------------------------------------------------------------------


def _tmp_profile(grid: SceneGrid, count: int, dtype: str, nodata: float | None) -> dict[str, Any]:
    return {"driver": "GTiff", "width": grid.width, "height": grid.height, "count": count, "dtype": dtype,
            "crs": grid.crs, "transform": grid.transform, "nodata": nodata, "tiled": True,
            "blockxsize": _TMP_BLOCK, "blockysize": _TMP_BLOCK, "compress": "deflate", "zlevel": 1,
            "bigtiff": "if_safer"}


@contextlib.contextmanager
def _cog_writer(out: Path, profile: Mapping[str, Any], *, resampling: str, threads: int,
                descriptions: tuple[str, ...] | None = None) -> Iterator[rasterio.io.DatasetWriter]:
    """Yield a temporary tiled GeoTIFF to write windows into; on success it becomes the COG ``out`` (atomic)."""
    tmp = out.with_name(f".{out.stem}.tmp.tif")
    try:
        with rasterio.open(tmp, "w", **profile) as dst:
            if descriptions:
                dst.descriptions = descriptions
            yield dst
        with atomic_output(out) as final:
            rasterio.shutil.copy(tmp, final, driver="COG", OVERVIEW_RESAMPLING=resampling,
                                 NUM_THREADS=threads, **_COG_OPTIONS)
    finally:
        tmp.unlink(missing_ok=True)


# --- cloud mask --------------------------------------------------------------------------------------------------


def _probabilities(dn: np.ndarray, settings: PredictSettings) -> np.ndarray:
    """(13, H, W) DN -> (H, W) float32 s2cloudless probabilities."""
    if settings.mask_engine == "stock":
        return stock_cloud_probabilities(dn[None], threads=settings.threads)[0]
    return cloud_probabilities(dn[None], threads=settings.threads)[0]


def write_cloud_mask(s2_path: str | Path, out: str | Path, settings: PredictSettings,
                     strip_rows: int = MASK_STRIP_ROWS, progress: bool = True) -> dict[str, int]:
    """Write s2cloudless's cloud mask of the S2 at ``s2_path`` to ``out`` (uint8 COG on the S2 grid; 1 = cloud,
    0 = clear, :data:`MASK_NODATA` where the S2 is nodata) and return ``{"cloudy": n, "valid": n}`` pixels.

    Strips of ``strip_rows`` rows are classified with ``average_over + dilation_size`` extra rows above and below
    (fewer at the scene's edge), so the disk average and the dilation near a strip's edge see the same
    neighbours as on the whole image, and the mask equals stock s2cloudless's mask of the whole scene.
    """
    out = Path(out)
    halo = settings.average_over + settings.dilation_size
    cloudy = valid_total = 0
    with rasterio.open(s2_path) as src:
        grid = SceneGrid(src.crs, src.transform, src.width, src.height, src.nodata)
        profile = _tmp_profile(grid, 1, "uint8", MASK_NODATA)
        with _cog_writer(out, profile, resampling="MODE", threads=settings.threads,
                         descriptions=("cloud mask: 1 cloud, 0 clear (s2cloudless)",)) as dst:
            starts = range(0, grid.height, strip_rows)
            for y0 in tqdm(starts, desc="cloud mask", unit="strip", disable=not progress, mininterval=2):
                y1 = min(grid.height, y0 + strip_rows)
                a, b = max(0, y0 - halo), min(grid.height, y1 + halo)
                dn = src.read(window=Window(0, a, grid.width, b - a))
                mask = cloud_masks_from_probabilities(
                    _probabilities(dn, settings)[None], settings.threshold, settings.average_over,
                    settings.dilation_size)[0, y0 - a:y1 - a].astype(np.uint8)
                valid = valid_pixels(dn[:, y0 - a:y1 - a], grid.nodata)
                cloudy += int(mask[valid].sum())
                valid_total += int(valid.sum())
                mask[~valid] = MASK_NODATA
                dst.write(mask[None], window=Window(0, y0, grid.width, y1 - y0))
    return {"cloudy": cloudy, "valid": valid_total}


# --- the network over the scene -------------------------------------------------------------------------------


def _forward(model: torch.nn.Module, batch: np.ndarray, device: torch.device) -> dict[str, np.ndarray]:
    """(n, 15, P, P) float32 inputs -> ``recon`` (n, 13, P, P) float32 and/or ``probs`` (n, 10) float32."""
    with torch.inference_mode():
        out = model(torch.from_numpy(batch).to(device))
    result = {}
    if RECON in out:
        result["recon"] = out[RECON].float().cpu().numpy()
    if LOGITS in out:
        result["probs"] = torch.sigmoid(out[LOGITS].float()).cpu().numpy()
    return result


def _run_windows(model: torch.nn.Module, heads: tuple[str, ...], s2_path: Path, s1_path: Path, grid: SceneGrid,
                 size: int, settings: PredictSettings, device: torch.device, cloud_free: Path | None,
                 progress: bool) -> dict[str, Any]:
    """Slide the network over the scene one row of windows at a time; write ``cloud_free`` as rows complete.

    Returns the window grid (``ys``, ``xs``), the class probabilities (10, rows, cols) float32 (or None) and the
    fraction of S2 pixels whose S1 had no data.
    """
    ys = window_starts(grid.height, size, settings.overlap)
    xs = window_starts(grid.width, size, settings.overlap)
    weights = blend_weights(size)
    reconstructs, classifies = RECON in heads, LOGITS in heads
    probs = np.full((N_CLASSES, len(ys), len(xs)), np.nan, dtype=np.float32) if classifies else None
    # blended reconstruction of the rows of the current window row (float64: exact for a single window)
    acc = np.zeros((S2_BANDS, size, grid.width)) if reconstructs else None
    wsum = np.zeros((size, grid.width)) if reconstructs else None
    s1_missing = 0
    strip = np.empty((S2_BANDS + S1_BANDS, size, grid.width), dtype=np.float32)
    with contextlib.ExitStack() as stack:
        s2 = stack.enter_context(rasterio.open(s2_path))
        s1 = stack.enter_context(s1_on_grid(s1_path, grid))
        dst = None
        if reconstructs:
            dst = stack.enter_context(_cog_writer(
                cloud_free, _tmp_profile(grid, S2_BANDS, "uint16", grid.nodata), resampling="AVERAGE",
                threads=settings.threads, descriptions=S2_BAND_NAMES))
        bar = stack.enter_context(tqdm(total=len(ys) * len(xs), desc="windows", unit="window",
                                       disable=not progress, mininterval=2))
        for k, y in enumerate(ys):
            window = Window(0, int(y), grid.width, size)
            dn = s2.read(window=window)
            s1_db = s1.read(window=window)
            prepare_s2(dn, out=strip[:S2_BANDS])
            strip[S2_BANDS:] = prepare_s1(s1_db)
            # rows [y, next_y) are final after this window row: only they count once
            done = (int(ys[k + 1]) - int(y)) if k + 1 < len(ys) else size
            s1_missing += int(np.isnan(s1_db[:, :done]).any(axis=0).sum())
            for b in range(0, len(xs), settings.batch_size):
                cols = range(b, min(len(xs), b + settings.batch_size))
                batch = np.stack([strip[:, :, xs[j]:xs[j] + size] for j in cols])
                out = _forward(model, batch, device)
                for i, j in enumerate(cols):
                    if reconstructs:
                        acc[:, :, xs[j]:xs[j] + size] += weights * out["recon"][i]
                        wsum[:, xs[j]:xs[j] + size] += weights
                    if classifies:
                        probs[:, k, j] = out["probs"][i]
                bar.update(len(cols))
            if reconstructs:
                # the finished rows are normalised in place: they leave the accumulator below
                np.divide(acc[:, :done], wsum[:done], out=acc[:, :done])
                rows = to_dn(acc[:, :done], overwrite=True)
                if grid.nodata is not None:
                    valid = valid_pixels(dn[:, :done], grid.nodata)
                    rows[:, (rows == grid.nodata).all(axis=0) & valid] = off_nodata(grid.nodata)
                    rows[:, ~valid] = grid.nodata
                dst.write(rows, window=Window(0, int(y), grid.width, done))
                acc[:, : size - done] = acc[:, done:]
                acc[:, size - done:] = 0.0
                wsum[: size - done] = wsum[done:]
                wsum[size - done:] = 0.0
    return {"ys": ys, "xs": xs, "probs": probs, "s1_missing_fraction": s1_missing / (grid.width * grid.height)}


def _write_landcover(out: Path, probs: np.ndarray, grid: SceneGrid, ys: np.ndarray, xs: np.ndarray, size: int,
                     settings: PredictSettings) -> None:
    coarse = SceneGrid(grid.crs, coarse_transform(grid.transform, ys, xs, size, settings.overlap),
                       probs.shape[2], probs.shape[1], None)
    profile = {**_tmp_profile(coarse, N_CLASSES, "float32", None), "blockxsize": 16, "blockysize": 16,
               "tiled": probs.shape[1] >= 16 and probs.shape[2] >= 16}
    with _cog_writer(out, profile, resampling="AVERAGE", threads=settings.threads,
                     descriptions=tuple(f"p({c})" for c in CLASSES)) as dst:
        dst.write(probs)


# --- one scene, end to end -------------------------------------------------------------------------------------


def read_model_card(checkpoint: str | Path) -> dict[str, Any] | None:
    """The ``model_card.json`` beside ``checkpoint`` (written by the workflow), or None."""
    path = Path(checkpoint).with_name("model_card.json")
    return json.loads(path.read_text()) if path.is_file() else None


def _config_hash(ckpt: Mapping[str, Any], settings: PredictSettings) -> str:
    """12 hex digits of everything that decides the outputs besides the weights: model/training config, settings."""
    key = {"model_name": ckpt["model_name"], "model_cfg": ckpt["model_cfg"], "train_cfg": ckpt["train_cfg"],
           "patch_size": ckpt["patch_size"], "pixel_size_m": ckpt["pixel_size_m"], "predict": settings.result_key()}
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:12]


def predict_scene(checkpoint: str | Path, s2: str | Path, s1: str | Path, out_dir: str | Path,
                  settings: PredictSettings | None = None, *, name: str | None = None,
                  model_card: str | Path | None = None, progress: bool = True) -> dict[str, Any]:
    """Run the model of ``checkpoint`` (a ``best.pt``) on one scene; write the outputs listed in the module
    docstring into ``out_dir`` and return the summary (also ``summary.json``).

    ``s2``, ``s1``: GeoTIFF paths (see the module docstring). ``model_card``: the checkpoint's card (default: the
    ``model_card.json`` beside it, if any), for the summary's record of what data the model was trained on.
    """
    started = time.perf_counter()
    checkpoint, s2, s1, out_dir = Path(checkpoint), Path(s2), Path(s1), Path(out_dir)
    ckpt, scene, device, settings = _check_scene(checkpoint, s2, s1, settings or PredictSettings())
    torch.set_num_threads(settings.threads)
    model = load_model(checkpoint, device=device)
    card = json.loads(Path(model_card).read_text()) if model_card else read_model_card(checkpoint)
    out_dir.mkdir(parents=True, exist_ok=True)
    model_m = ckpt["pixel_size_m"]
    grid = scene.for_model(model_m)
    with contextlib.ExitStack() as stack:
        seconds: dict[str, float] = {}
        inputs = (s2, s1)
        if grid is not scene:
            # the scene on the model's grid, in a folder of its own that goes when the outputs are written
            t0 = time.perf_counter()
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=".model_grid-", dir=out_dir)))
            with rasterio.Env(GDAL_NUM_THREADS=settings.threads, GDAL_CACHEMAX=GDAL_CACHE_MB):
                inputs = resample_scene(s2, s1, scene, grid, tmp, threads=settings.threads)
            seconds["resample"] = round(time.perf_counter() - t0, 3)
            log.info("%s: %s m pixels averaged onto the model's %g m grid (%d × %d px)", s2, scene.pixel_size_text(),
                     model_m, grid.width, grid.height)
        summary = _predict_on_grid(model, ckpt, card, checkpoint, inputs, grid, settings, device, out_dir,
                                   name=name or s2.stem, seconds=seconds, progress=progress)
    summary["inputs"] |= {"s2": str(s2), "s1": str(s1), "grid": scene.describe(), "pixel_size_m": _metres(scene)}
    summary["resampling"] = None if grid is scene else RESAMPLING
    summary["seconds"]["total"] = round(time.perf_counter() - started, 3)
    write_json(summary, out_dir / SUMMARY)
    log.info("%s: cloud cover %.3f, outputs in %s (%.1f s)", summary["scene"], summary["cloud_cover"] or 0.0,
             out_dir, summary["seconds"]["total"])
    return summary


def _predict_on_grid(model: torch.nn.Module, ckpt: Mapping[str, Any], card: Mapping[str, Any] | None,
                     checkpoint: Path, inputs: tuple[Path, Path], grid: SceneGrid, settings: PredictSettings,
                     device: torch.device, out_dir: Path, *, name: str, seconds: dict[str, float],
                     progress: bool) -> dict[str, Any]:
    """Every output of one scene whose S2 (``inputs[0]``) lies on ``grid``, the grid of the outputs; the summary
    without the total time. ``inputs``: the S2 and S1 files the model reads (the user's, or resampled)."""
    from hcrlc.quicklook import write_quicklook  # matplotlib: only when a scene is predicted

    s2, s1 = inputs
    size = int(ckpt["patch_size"])
    heads = tuple(model.heads)
    log.info("%s on %s (%d × %d px, %s): windows of %d px, overlap >= %d, %s", ckpt["model_name"], s2,
             grid.width, grid.height, grid.crs.to_string(), size, settings.overlap, device)
    with rasterio.Env(GDAL_NUM_THREADS=settings.threads, GDAL_CACHEMAX=GDAL_CACHE_MB):
        t0 = time.perf_counter()
        clouds = write_cloud_mask(s2, out_dir / CLOUD_MASK, settings, progress=progress)
        seconds["cloud_mask"] = round(time.perf_counter() - t0, 3)
        t0 = time.perf_counter()
        windows = _run_windows(model, heads, s2, s1, grid, size, settings, device,
                               out_dir / CLOUD_FREE if RECON in heads else None, progress)
        seconds["windows"] = round(time.perf_counter() - t0, 3)
        if windows["probs"] is not None:
            _write_landcover(out_dir / LANDCOVER, windows["probs"], grid, windows["ys"], windows["xs"], size,
                             settings)

    summary = _scene_summary(ckpt, card, checkpoint, s2, s1, grid, settings, clouds, windows, heads, name=name,
                             seconds=seconds)
    t0 = time.perf_counter()
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB):
        write_quicklook(out_dir, out_dir / QUICKLOOK, s2_path=s2, title=f"{summary['scene']} — {ckpt['model_name']}",
                        synthetic=summary["trained_on"] == "synthetic")
    summary["seconds"]["quicklook"] = round(time.perf_counter() - t0, 3)
    return summary


def _metres(grid: SceneGrid) -> float | list[float]:
    """A grid's pixel size (m): one number for square pixels, else [x, y]."""
    rx, ry = grid.pixel_size
    return rx if rx == ry else [rx, ry]


def _check_scene(
    checkpoint: Path, s2: Path, s1: Path, settings: PredictSettings
) -> tuple[dict[str, Any], SceneGrid, torch.device, PredictSettings]:
    """The checkpoint (refused if it is the pretext's), the S2 grid (inputs checked), the device to run on and the
    settings for windows of the checkpoint's patch size (:meth:`PredictSettings.for_window`)."""
    ckpt = load_checkpoint(checkpoint)
    if ckpt["model_name"] == PRETEXT or ckpt["n_classes"] != N_CLASSES:
        raise CheckpointError(
            f"{checkpoint} holds the self-supervised pretext network ({ckpt['n_classes']} direction classes), "
            f"not a cloud-removal or land-cover model. Fix: pass the best.pt of {', '.join(MODEL_NAMES)} "
            "or an ssl_* run")
    size = int(ckpt["patch_size"])
    settings = settings.for_window(size)
    grid = check_s2(s2, size, ckpt["pixel_size_m"])
    check_s1(s1, grid)
    # "auto" without CUDA is simply the CPU here (resolve_device would log it as a training decision)
    device = resolve_device("cpu" if settings.device == "auto" and not torch.cuda.is_available() else settings.device)
    return ckpt, grid, device, settings


def _scene_summary(ckpt: Mapping[str, Any], card: Mapping[str, Any] | None, checkpoint: Path, s2: Path, s1: Path,
                   grid: SceneGrid, settings: PredictSettings, clouds: Mapping[str, int],
                   windows: Mapping[str, Any], heads: tuple[str, ...], *, name: str,
                   seconds: dict[str, float]) -> dict[str, Any]:
    """The content of ``summary.json`` (module docstring), before the quicklook's and the total time."""
    ys, xs, probs, size = windows["ys"], windows["xs"], windows["probs"], int(ckpt["patch_size"])
    trained_on = card.get("data", {}).get("source", "unknown") if card else "unknown"
    summary: dict[str, Any] = {
        "scene": name,
        "model": ckpt["model_name"],
        "run": card.get("run") if card else None,
        "checkpoint": str(checkpoint),
        "checkpoint_sha256": file_sha256(checkpoint),
        "config_hash": _config_hash(ckpt, settings),
        "trained_on": trained_on,
        "note": ("the model was trained on SYNTHETIC data: these outputs show that the pipeline runs, not what "
                 "a model trained on SEN12MS would predict") if trained_on == "synthetic" else None,
        "model_card": card,
        "settings": asdict(settings),
        "inputs": {"s2": str(s2), "s1": str(s1), "grid": grid.describe(), "pixel_size_m": _metres(grid),
                   "s2_nodata": grid.nodata, "s1_missing_fraction": windows["s1_missing_fraction"]},
        # the pixels the model was trained on (None: the checkpoint does not say) and those of every output
        "pixel_size_m": {"model": ckpt["pixel_size_m"], "outputs": _metres(grid)},
        "grid": grid.describe(),
        "windows": {"size": size, "rows": len(ys), "cols": len(xs),
                    "stride_px": [_grid_step(ys, size, settings.overlap), _grid_step(xs, size, settings.overlap)],
                    "count": len(ys) * len(xs)},
        "cloud_cover": clouds["cloudy"] / clouds["valid"] if clouds["valid"] else None,
        "valid_pixels": clouds["valid"],
        "class_probabilities": ({c: float(p) for c, p in zip(CLASSES, probs.reshape(N_CLASSES, -1).mean(axis=1))}
                                if probs is not None else None),
        "outputs": [CLOUD_MASK] + ([CLOUD_FREE] if RECON in heads else []) + ([LANDCOVER] if probs is not None
                                                                              else []) + [SUMMARY, QUICKLOOK],
        "seconds": seconds,
        "software": {"torch": torch.__version__, "rasterio": rasterio.__version__,
                     "gdal": rasterio.__gdal_version__, "python": sys.version.split()[0]},
    }
    if summary["class_probabilities"]:
        summary["dominant_class"] = max(summary["class_probabilities"], key=summary["class_probabilities"].get)
    return summary
