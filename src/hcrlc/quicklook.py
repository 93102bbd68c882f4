"""``quicklook.png`` of a predicted scene: cloudy RGB | cloud-free RGB | cloud mask | dominant land-cover class.

Read from the files :func:`hcrlc.predict.predict_scene` wrote (and the input S2), decimated by GDAL to at most
:data:`MAX_SIDE` pixels per side (the COGs' overviews serve this), so a scene of any size draws in bounded memory.
A panel whose product the model does not make (no reconstruction head, no classification head) says so.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from rasterio.enums import Resampling

from hcrlc.atomic import atomic_output
from hcrlc.figures import RGB_BANDS, stretch
from hcrlc.paper import CLASSES, S2_SCALE

MAX_SIDE = 1024
#: Reflectance shown as full brightness in both RGB panels (same stretch, so they compare).
RGB_MAX_REFLECTANCE = 0.3
#: One colour per class of :data:`hcrlc.paper.CLASSES`, in that order (IGBP-like: greens for vegetation).
CLASS_COLOURS = ("#1b7837", "#a6761d", "#d9b365", "#9acd32", "#4aa3a3", "#f0e442", "#d7301f", "#e0f3f8",
                 "#bdbdbd", "#2166ac")
MASK_COLOURS = ListedColormap(["#404040", "#ffffff"])


def _decimated(path: Path, indexes: list[int], resampling: Resampling) -> np.ndarray:
    """(len(indexes), h, w) float64 read at most MAX_SIDE px per side; nodata as NaN."""
    with rasterio.open(path) as src:
        scale = max(src.width, src.height) / MAX_SIDE
        shape = (len(indexes), max(1, round(src.height / max(scale, 1))), max(1, round(src.width / max(scale, 1))))
        data = src.read(indexes, out_shape=shape, resampling=resampling, masked=True)
    return np.ma.filled(data.astype(np.float64), np.nan)


def _rgb(path: Path) -> np.ndarray:
    rgb = _decimated(path, [b + 1 for b in RGB_BANDS], Resampling.average) / S2_SCALE
    limits = np.tile([0.0, RGB_MAX_REFLECTANCE], (3, 1))
    return stretch(np.nan_to_num(rgb), limits)


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=9)
    ax.set_facecolor("#f0f0f0")


def write_quicklook(out_dir: str | Path, out_png: str | Path, *, s2_path: str | Path, title: str,
                    synthetic: bool) -> None:
    """Draw the four panels from ``out_dir``'s GeoTIFFs and the input ``s2_path``; write ``out_png`` atomically."""
    out_dir = Path(out_dir)
    fig = Figure(figsize=(16, 4.8), layout="constrained")
    axes = fig.subplots(1, 4)
    cloudy = _rgb(Path(s2_path))
    height, width = cloudy.shape[:2]
    extent = (0, width, height, 0)
    axes[0].imshow(cloudy, extent=extent)
    axes[0].set_title("cloudy S2 (B4, B3, B2)")
    if (out_dir / "cloud_free.tif").is_file():
        axes[1].imshow(_rgb(out_dir / "cloud_free.tif"), extent=extent)
    else:
        _empty(axes[1], "this model has no\nreconstruction head")
    axes[1].set_title("cloud-free S2 (model)")
    mask = _decimated(out_dir / "cloud_mask.tif", [1], Resampling.nearest)[0]
    axes[2].imshow(np.ma.masked_invalid(mask), cmap=MASK_COLOURS, vmin=0, vmax=1, interpolation="nearest",
                   extent=extent)
    cover = np.nanmean(mask) if np.isfinite(mask).any() else float("nan")
    axes[2].set_title(f"cloud mask (s2cloudless, white = cloud): {cover:.0%}")
    landcover = out_dir / "landcover.tif"
    if landcover.is_file():
        with rasterio.open(landcover) as lc, rasterio.open(s2_path) as s2:
            probs = lc.read()
            # the coarse grid's corners in the decimated S2 image's pixel coordinates
            cols, rows = ~s2.transform @ (lc.transform @ (0, 0))
            cols2, rows2 = ~s2.transform @ (lc.transform @ (lc.width, lc.height))
            sx, sy = width / s2.width, height / s2.height
        dominant = probs.argmax(axis=0)
        cmap = ListedColormap(CLASS_COLOURS)
        axes[3].imshow(dominant, cmap=cmap, vmin=-0.5, vmax=len(CLASSES) - 0.5, interpolation="nearest",
                       extent=(cols * sx, cols2 * sx, rows2 * sy, rows * sy))
        axes[3].set_xlim(0, width)
        axes[3].set_ylim(height, 0)
        present = sorted(set(dominant.ravel().tolist()))
        axes[3].legend(handles=[Patch(color=CLASS_COLOURS[c], label=CLASSES[c]) for c in present],
                       loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    else:
        _empty(axes[3], "this model has no\nclassification head")
    axes[3].set_title("dominant land-cover class (per window)")
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"{title} — model trained on synthetic data" if synthetic else title)
    with atomic_output(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
