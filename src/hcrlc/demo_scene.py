"""A scene for trying ``snakemake predict`` / ``hcrlc predict``: real Sentinel-2 L1C pixels, synthetic S1.

* ``s2_l1c.tif``: s2cloudless's own test scene (real L1C top-of-atmosphere reflectance, 13 bands, 856 × 512 px,
  about 40 % cloudy; :func:`hcrlc.data.s2cloudless_scene.fetch_s2cloudless_scene` downloads it once with pip) as uint16
  reflectance × 10,000 on a 10 m grid in UTM zone 38S. **The position is made up**: the test scene ships without
  georeference, so the pixels are placed at :data:`DEMO_ORIGIN` (a river delta on a tropical coast by its look —
  zone 38S is a guess, not a fact); nobody has labelled its land cover.
* ``s1_db.tif``: **synthetic** VV/VH backscatter (dB) on a lon/lat grid (EPSG:4326, ≈ 7 × 11 m cells) that covers
  the S2 footprint with a margin: smooth fields plus speckle, with a nodata frame (-9999) outside the
  footprint. It exists to exercise the reprojection, not to carry information.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.transform import Affine, from_origin
from rasterio.warp import transform_bounds

from hcrlc.atomic import atomic_output
from hcrlc.data.s2cloudless_scene import fetch_s2cloudless_scene, load_s2cloudless_scene
from hcrlc.paper import PIXEL_SIZE_M, S2_BAND_NAMES

#: EPSG code and upper-left corner (m) where the demo's S2 pixels are placed (made up; UTM 38S, ≈ 15.7° S 46.4° E).
DEMO_EPSG = 32738
DEMO_ORIGIN = (650_000.0, 8_265_000.0)
#: Cell size of the demo S1 in degrees, and its margin around the S2 footprint (degrees).
S1_CELL_DEG = 1e-4
S1_MARGIN_DEG = 2e-3
S1_NODATA = -9999.0


def write_geotiff(path: str | Path, array: np.ndarray, crs: CRS, transform: Affine, nodata: float | None = None,
                  descriptions: tuple[str, ...] | None = None) -> Path:
    """Write a (bands, H, W) array as a tiled, compressed GeoTIFF, atomically; return ``path``."""
    bands, height, width = array.shape
    with atomic_output(path) as tmp, rasterio.open(
            tmp, "w", driver="GTiff", width=width, height=height, count=bands, dtype=array.dtype.name, crs=crs,
            transform=transform, nodata=nodata, tiled=True, compress="deflate") as dst:
        dst.write(array)
        if descriptions:
            dst.descriptions = descriptions
    return Path(path)


def demo_s1(bounds_lonlat: tuple[float, float, float, float], seed: int = 0, cell: float = S1_CELL_DEG,
            margin: float = S1_MARGIN_DEG) -> tuple[np.ndarray, Affine]:
    """Synthetic (2, H, W) float32 VV/VH in dB on a lon/lat grid of ``cell`` degrees over ``bounds_lonlat`` plus
    ``margin`` degrees, the outer half of the margin nodata (:data:`S1_NODATA`).

    VV: -11 dB ± 2 dB of smooth structure (a few km across) with gamma speckle (4 looks); VH: VV − 7 dB with its own speckle.
    """
    west, south, east, north = bounds_lonlat
    west, south, east, north = west - margin, south - margin, east + margin, north + margin
    width, height = int(np.ceil((east - west) / cell)), int(np.ceil((north - south) / cell))
    transform = from_origin(west, north, cell, cell)
    rng = np.random.default_rng(seed)
    lon = west + (np.arange(width) + 0.5) * cell
    lat = north - (np.arange(height) + 0.5) * cell
    structure = np.sin(2 * np.pi * lon / 0.03)[None, :] * np.cos(2 * np.pi * lat / 0.02)[:, None]
    vv = -11.0 + 2.0 * structure
    speckle = rng.gamma(4.0, 1 / 4.0, size=(2, height, width))
    s1 = np.stack([vv, vv - 7.0]) + 10 * np.log10(speckle)
    frame = max(1, int(margin / cell) // 2)  # half the margin: outside the S2 footprint
    s1[:, :frame], s1[:, -frame:], s1[:, :, :frame], s1[:, :, -frame:] = (S1_NODATA,) * 4
    return s1.astype(np.float32), transform


def write_demo_scene(out_dir: str | Path, scene: str | Path | None = None) -> tuple[Path, Path]:
    """Write ``s2_l1c.tif`` and ``s1_db.tif`` (module docstring) into ``out_dir``; return their paths.

    ``scene``: s2cloudless's ``input_arrays.npz`` (default: the cached copy, downloaded with pip if missing).
    """
    out_dir = Path(out_dir)
    s2 = load_s2cloudless_scene(scene if scene is not None else fetch_s2cloudless_scene())[0]
    crs = CRS.from_epsg(DEMO_EPSG)
    transform = from_origin(*DEMO_ORIGIN, PIXEL_SIZE_M, PIXEL_SIZE_M)
    s2_path, s1_path = out_dir / "s2_l1c.tif", out_dir / "s1_db.tif"
    write_geotiff(s2_path, s2, crs, transform, descriptions=S2_BAND_NAMES)
    height, width = s2.shape[1:]
    left, top = DEMO_ORIGIN
    bounds = transform_bounds(crs, "EPSG:4326", left, top - height * PIXEL_SIZE_M, left + width * PIXEL_SIZE_M,
                              top, densify_pts=21)
    s1, s1_transform = demo_s1(bounds)
    write_geotiff(s1_path, s1, CRS.from_epsg(4326), s1_transform, nodata=S1_NODATA, descriptions=("VV", "VH"))
    return s2_path, s1_path
