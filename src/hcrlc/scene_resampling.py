"""A user's scene on the grid the model sees: the S1 on the S2 grid, and both on the model's pixel size.

A model sees pixels of the size it was trained on (its checkpoint's ``pixel_size_m``: SEN12MS's 10 m, or the
coarser pixels of the demo's scale model). Sentinel-2 L1C comes at 10 m, so for a model of coarser pixels
:func:`resample_scene` writes the scene onto :meth:`SceneGrid.with_pixel_size` of the S2 grid (same CRS and
upper-left corner) before anything else runs, strip by strip (bounded memory):

* **S2**: each coarse pixel is the mean of the S2 pixels it covers (GDAL's ``average``, weighted by the covered
  fraction where the pixel sizes are no multiples), rounded to integer DN. Pixels that are nodata in every band
  (the input's declared nodata) stay out of the mean; a coarse pixel that covers only such pixels is nodata. A
  coarse pixel averages the reflectance of the ground it covers, as a coarser sensor would measure it, which is
  what the synthetic tree's coarse pixels model (:class:`hcrlc.data.synthetic._Pixel`).
* **S1**: first onto the S2 grid as for a 10 m model (:func:`s1_on_grid`: bilinear in dB, NaN where it has no
  data), then averaged onto the coarse grid **in linear power**: dB → ``10**(dB/10)``, mean of the valid pixels,
  → ``10 * log10``. Backscatter adds up in power, not in dB: averaging speckle in dB would bias the result low
  (by ≈ 1 dB for the speckle of 4-look data) and is not what a coarser radar pixel (more looks) measures.

The model's predictions are then made on the coarse grid exactly as on a scene of that pixel size; nothing is
upsampled back to 10 m.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.transform import Affine
from rasterio.vrt import WarpedVRT
from rasterio.warp import reproject
from rasterio.windows import Window

from hcrlc.paper import S1_BANDS, S2_BAND_NAMES, S2_BANDS, S2_SCALE
from hcrlc.scene_inputs import SceneGrid

__all__ = ["RESAMPLE_SOURCE_ROWS", "off_nodata", "resample_scene", "s1_on_grid", "valid_pixels"]

#: Rows of the S2 grid per step of the resampling (~13 × 2 B + 4 B per pixel of them in memory at once).
RESAMPLE_SOURCE_ROWS = 256


def valid_pixels(dn: np.ndarray, nodata: float | None) -> np.ndarray:
    """(13, H, W) DN -> (H, W) bool: False where every band equals the declared nodata value."""
    if nodata is None:
        return np.ones(dn.shape[1:], dtype=bool)
    return ~(dn == nodata).all(axis=0)


def off_nodata(nodata: float) -> int:
    """The DN a valid pixel whose value rounds to the nodata value is written as: one DN off it."""
    return int(nodata) + 1 if nodata < S2_SCALE else int(nodata) - 1


@contextlib.contextmanager
def s1_on_grid(path: str | Path, grid: SceneGrid) -> Iterator[WarpedVRT]:
    """The S1 GeoTIFF as a virtual raster on ``grid`` (bilinear, float32, NaN where S1 has no data).

    Read windows of it like a file: ``vrt.read(window=Window(0, row, width, rows))`` -> (2, rows, width).
    """
    with rasterio.open(path) as src:
        src_nodata = src.nodata
        if src_nodata is None and np.issubdtype(np.dtype(src.dtypes[0]), np.floating):
            src_nodata = float("nan")  # NaN is no-data for GDAL only when declared
        with WarpedVRT(src, crs=grid.crs, transform=grid.transform, width=grid.width, height=grid.height,
                       resampling=Resampling.bilinear, src_nodata=src_nodata, nodata=float("nan"),
                       dtype="float32") as vrt:
            yield vrt


def resample_scene(s2: str | Path, s1: str | Path, grid: SceneGrid, target: SceneGrid, out_dir: str | Path, *,
                   threads: int = 1, source_rows: int = RESAMPLE_SOURCE_ROWS) -> tuple[Path, Path]:
    """Write the scene (S2 ``s2`` on ``grid``, S1 ``s1`` on any grid covering it) onto ``target`` (a grid of
    coarser pixels over ``grid``, :meth:`SceneGrid.with_pixel_size`) as ``out_dir/s2.tif`` (uint16 DN, the input's
    nodata) and ``out_dir/s1.tif`` (float32 dB, NaN where no S1 pixel was valid); return their paths.

    Averaging as the module docstring says, through GDAL (``rasterio.warp.reproject``) in strips of about
    ``source_rows`` rows of ``grid``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    s2_out, s1_out = out_dir / "s2.tif", out_dir / "s1.tif"
    step = target.pixel_size[1] / grid.pixel_size[1]  # rows of grid per row of target
    strip = max(1, math.floor(source_rows / step))
    with contextlib.ExitStack() as stack:
        s2_src = stack.enter_context(rasterio.open(s2))
        s1_src = stack.enter_context(s1_on_grid(s1, grid))
        s2_dst = stack.enter_context(rasterio.open(s2_out, "w", **_profile(target, S2_BANDS, "uint16", grid.nodata)))
        s1_dst = stack.enter_context(rasterio.open(s1_out, "w", **_profile(target, S1_BANDS, "float32", float("nan"))))
        s2_dst.descriptions = S2_BAND_NAMES
        s1_dst.descriptions = ("VV", "VH")
        for top in range(0, target.height, strip):
            rows = min(strip, target.height - top)
            # the rows of grid under target rows [top, top + rows): whole ones, and the partial ones at the ends
            first = math.floor(top * step + 1e-9)
            last = min(grid.height, math.ceil((top + rows) * step - 1e-9))
            window = Window(0, first, grid.width, last - first)
            source = grid.transform @ Affine.translation(0, first)
            onto = target.transform @ Affine.translation(0, top)
            dn = s2_src.read(window=window)
            s2_dst.write(_average_s2(dn, grid.nodata, source, onto, (rows, target.width), grid.crs, threads),
                         window=Window(0, top, target.width, rows))
            s1_db = s1_src.read(window=window)
            s1_dst.write(_average_s1(s1_db, source, onto, (rows, target.width), grid.crs, threads),
                         window=Window(0, top, target.width, rows))
    return s2_out, s1_out


def _average_s2(dn: np.ndarray, nodata: float | None, source: Affine, onto: Affine, shape: tuple[int, int], crs,
                threads: int) -> np.ndarray:
    """(13, h, w) DN on ``source`` -> (13, *shape) uint16 DN on ``onto``: the mean of the valid pixels under each
    coarse pixel, rounded; ``nodata`` where there is none."""
    valid = valid_pixels(dn, nodata)
    out = np.empty((dn.shape[0], *shape), dtype=np.uint16)
    any_valid = np.zeros(shape, dtype=bool)
    for b in range(dn.shape[0]):
        band = dn[b].astype(np.float32)
        band[~valid] = np.nan
        mean = _average(band, source, onto, shape, crs, threads)
        finite = np.isfinite(mean)
        any_valid |= finite
        out[b] = np.rint(np.where(finite, mean, 0.0))
    if nodata is not None:
        # a valid coarse pixel whose mean rounds to the nodata value in every band moves one DN off it
        on_nodata = (out == nodata).all(axis=0) & any_valid
        out[:, on_nodata] = off_nodata(nodata)
        out[:, ~any_valid] = nodata
    return out


def _average_s1(db: np.ndarray, source: Affine, onto: Affine, shape: tuple[int, int], crs,
                threads: int) -> np.ndarray:
    """(2, h, w) float32 dB on ``source`` (NaN: no data) -> (2, *shape) float32 dB on ``onto``, averaged in linear
    power over the valid pixels under each coarse pixel (NaN where there is none)."""
    out = np.empty((db.shape[0], *shape), dtype=np.float32)
    with np.errstate(divide="ignore", over="ignore"):
        for b in range(db.shape[0]):
            power = np.power(np.float32(10.0), db[b] / np.float32(10.0), dtype=np.float32)
            out[b] = np.float32(10.0) * np.log10(_average(power, source, onto, shape, crs, threads))
    return out


def _average(band: np.ndarray, source: Affine, onto: Affine, shape: tuple[int, int], crs,
             threads: int) -> np.ndarray:
    """GDAL's area-weighted mean of the float32 ``band`` on ``source`` over each pixel of the ``shape`` grid
    ``onto`` (same CRS); NaN is no data, in and out."""
    out = np.full(shape, np.nan, dtype=np.float32)
    reproject(band, out, src_transform=source, src_crs=crs, dst_transform=onto, dst_crs=crs,
              resampling=Resampling.average, src_nodata=np.nan, dst_nodata=np.nan, num_threads=threads)
    return out


def _profile(grid: SceneGrid, count: int, dtype: str, nodata: float | None) -> dict:
    """A tiled, lightly compressed GeoTIFF on ``grid``: the resampled inputs are read once or twice, then deleted."""
    return {"driver": "GTiff", "width": grid.width, "height": grid.height, "count": count, "dtype": dtype,
            "crs": grid.crs, "transform": grid.transform, "nodata": nodata, "tiled": True, "blockxsize": 256,
            "blockysize": 256, "compress": "deflate", "zlevel": 1, "bigtiff": "if_safer"}
