"""The checks of a user's own scene before :func:`hcrlc.predict.predict_scene` runs a model on it: the S2 L1C
and S1 GeoTIFFs and the grid every output lies on (requirements: the module docstring of :mod:`hcrlc.predict`).
Every refusal is a :class:`~hcrlc.errors.DataError` that names the file and the fix.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.transform import Affine
from rasterio.warp import transform_bounds

from hcrlc.errors import DataError
from hcrlc.paper import S1_BANDS, S2_BAND_NAMES, S2_BANDS
from hcrlc.patch_geometry import same_pixel_size

__all__ = ["SceneGrid", "check_s1", "check_s2"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SceneGrid:
    """A north-up grid: the S2 input's, or the grid of the model's pixel size over it
    (:meth:`with_pixel_size`), on which every output lies (``landcover.tif`` on a coarser grid derived from it)."""

    crs: Any
    transform: Affine
    width: int
    height: int
    nodata: float | None

    def describe(self) -> dict[str, Any]:
        return {"crs": self.crs.to_string(), "transform": list(self.transform)[:6], "width": self.width,
                "height": self.height}

    @property
    def pixel_size(self) -> tuple[float, float]:
        """(x, y) side of a pixel in CRS units (metres in a projected CRS)."""
        return abs(self.transform.a), abs(self.transform.e)

    def pixel_size_text(self) -> str:
        """The pixel size for messages: ``"10"``, or ``"10 × 20"`` for pixels that are not square."""
        rx, ry = self.pixel_size
        return f"{rx:g}" if rx == ry else f"{rx:g} × {ry:g}"

    def has_pixel_size(self, metres: float) -> bool:
        """Whether this grid's pixels are ``metres`` on both sides (within
        :data:`~hcrlc.patch_geometry.PIXEL_SIZE_RTOL`)."""
        return all(same_pixel_size(r, metres) for r in self.pixel_size)

    def for_model(self, pixel_size_m: float | None) -> SceneGrid:
        """The grid a model trained on ``pixel_size_m`` pixels sees over this one: this grid itself when its pixels
        have that size or the size is unknown (None), else :meth:`with_pixel_size`."""
        if pixel_size_m is None or self.has_pixel_size(pixel_size_m):
            return self
        return self.with_pixel_size(pixel_size_m)

    def with_pixel_size(self, metres: float) -> SceneGrid:
        """The grid of square ``metres`` pixels over this one: same CRS and upper-left corner, as many whole pixels
        as fit in its extent (a partial last column and row, less than one new pixel, are left out)."""
        rx, ry = self.pixel_size
        width = math.floor(self.width * rx / metres + 1e-9)
        height = math.floor(self.height * ry / metres + 1e-9)
        t = self.transform
        transform = Affine(math.copysign(metres, t.a), 0.0, t.c, 0.0, math.copysign(metres, t.e), t.f)
        return SceneGrid(self.crs, transform, width, height, self.nodata)


#: side (px) of the decimated read of the S1 whose median tells dB from linear power (not a patch size)
_S1_SAMPLE_PX = 256


def _open_input(path: Path, key: str, expected: str) -> rasterio.io.DatasetReader:
    """Open an input raster; a missing or unreadable file is a :class:`DataError` naming it."""
    if not path.is_file():
        raise DataError(path, f"{key.upper()} file not found", f"check the path (predict.scenes.<name>.{key} or --{key})")
    try:
        return rasterio.open(path)
    except rasterio.errors.RasterioIOError as err:
        raise DataError(path, f"not readable as a raster ({err})", f"pass {expected}") from err


def check_s2(path: str | Path, min_size: int, pixel_size_m: float | None = None) -> SceneGrid:
    """Open the S2 L1C GeoTIFF at ``path`` and check it (see the module docstring); return its grid.

    ``min_size``: the window side in pixels (the checkpoint's patch size); ``pixel_size_m``: the side of the
    pixels the model was trained on (the checkpoint's; None: unknown), onto which a scene of finer pixels is
    resampled (:func:`hcrlc.scene_resampling.resample_scene`), so the scene must hold one window of them. A scene
    coarser than the model's pixels is refused: resampling cannot give it the detail the model learned from.
    """
    path = Path(path)
    with _open_input(path, "s2", "a GeoTIFF of the 13 L1C bands") as src:
        if src.count != S2_BANDS:
            hint = (" A 12-band Sentinel-2 file is usually Level-2A, which has no B10 (cirrus, 1375 nm)."
                    if src.count == S2_BANDS - 1 else "")
            raise DataError(
                path, f"has {src.count} bands; the model needs the {S2_BANDS} bands of Sentinel-2 Level-1C "
                f"({', '.join(S2_BAND_NAMES)}).{hint}",
                "use the L1C product of the same date, all 13 bands resampled to 10 m and stacked in that order "
                "(e.g. gdalbuildvrt -separate -resolution user -tr 10 10 stack.vrt B01.jp2 … B12.jp2, then "
                "gdal_translate stack.vrt s2.tif)")
        dtype = np.dtype(src.dtypes[0])
        if not np.issubdtype(dtype, np.integer):
            raise DataError(
                path, f"holds {dtype} values; expected integer reflectance × 10,000 (uint16) like L1C",
                "convert reflectance r with round(r * 10000) to uint16 (gdal_calc.py or numpy)")
        if src.crs is None:
            raise DataError(path, "has no coordinate reference system",
                            "write the scene with its UTM CRS (gdal_translate -a_srs EPSG:326xx)")
        learned = "pixels" if pixel_size_m is None else f"{pixel_size_m:g} m pixels"
        if not src.crs.is_projected:
            raise DataError(
                path, f"is in the geographic CRS {src.crs.to_string()}; windows of {min_size} px and the {learned} "
                "the model learned need a projected grid",
                "reproject it to the scene's UTM zone at 10 m, e.g. gdalwarp -t_srs EPSG:32633 -tr 10 10 -r "
                "bilinear in.tif out.tif")
        if src.transform.b or src.transform.d:
            raise DataError(path, "has a rotated geotransform", "warp it to a north-up grid with gdalwarp")
        grid = SceneGrid(src.crs, src.transform, src.width, src.height, src.nodata)
    res = grid.pixel_size_text()
    if pixel_size_m is None:
        log.warning("%s: the checkpoint does not record the pixel size it was trained on; the scene's own %s m "
                    "pixels are used", path, res)
    elif not grid.has_pixel_size(pixel_size_m) and any(r > pixel_size_m for r in grid.pixel_size):
        raise DataError(
            path, f"has {res} m pixels, coarser than the {pixel_size_m:g} m pixels the model was trained on",
            f"pass the scene at {pixel_size_m:g} m or finer (Sentinel-2 L1C: all 13 bands resampled to 10 m, "
            "e.g. gdalbuildvrt -separate -resolution user -tr 10 10); predict averages it onto the model's grid")
    seen = grid.for_model(pixel_size_m)
    if seen.width < min_size or seen.height < min_size:
        onto = "" if seen is grid else (f" ({seen.width} × {seen.height} px of the model's {pixel_size_m:g} m "
                                         f"pixels)")
        need = min_size if seen is grid else math.ceil(min_size * pixel_size_m / min(grid.pixel_size))
        raise DataError(
            path, f"is {grid.width} × {grid.height} px{onto}, smaller than one window of {min_size} × {min_size} px",
            f"use a crop of at least {need} px per side")
    return grid


def check_s1(path: str | Path, grid: SceneGrid) -> None:
    """Check that the S1 GeoTIFF at ``path`` holds VV and VH in dB and covers the S2 ``grid``'s footprint."""
    path = Path(path)
    with _open_input(path, "s1", "a GeoTIFF of VV and VH in dB") as src:
        if src.count != S1_BANDS:
            raise DataError(path, f"has {src.count} bands; expected {S1_BANDS} (VV, VH backscatter in dB)",
                            "stack VV and VH (in that order) into one GeoTIFF")
        if src.crs is None:
            raise DataError(path, "has no coordinate reference system", "write it with its CRS")
        left, bottom, right, top = rasterio.transform.array_bounds(grid.height, grid.width, grid.transform)
        need = transform_bounds(grid.crs, src.crs, left, bottom, right, top, densify_pts=21)
        have = src.bounds
        # half a source pixel of slack: bilinear sampling at the very edge still has its neighbours
        tol_x, tol_y = abs(src.transform.a) / 2, abs(src.transform.e) / 2
        if (need[0] < have.left - tol_x or need[2] > have.right + tol_x or need[1] < have.bottom - tol_y
                or need[3] > have.top + tol_y):
            raise DataError(
                path, f"does not cover the S2 footprint: S2 spans {_fmt_bounds(need)} in {src.crs.to_string()}, "
                f"the S1 only {_fmt_bounds(tuple(have))}",
                "use an S1 acquisition (or mosaic) that covers the whole S2 scene, or crop the S2 to the S1")
        sample = src.read(1, out_shape=(min(_S1_SAMPLE_PX, src.height), min(_S1_SAMPLE_PX, src.width)), masked=True)
        values = np.ma.masked_invalid(sample.astype(np.float64)).compressed()
        if values.size and np.median(values) > 0:
            raise DataError(
                path, f"VV has a median of {np.median(values):.3g}; backscatter in dB is mostly negative "
                "(≈ -25 … 0 dB), so this looks like linear power",
                "convert to dB with 10 * log10(value) (e.g. gdal_calc.py --calc='10*log10(A)')")


def _fmt_bounds(b: tuple[float, ...]) -> str:
    return "(" + ", ".join(f"{v:.6g}" for v in b) + ")"
