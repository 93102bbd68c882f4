"""Prediction on one's own scenes (hcrlc.predict), the hcrlc command, model cards, and `snakemake predict`.

Networks are tiny (widths 4–8) and trained for one epoch on a few samples: the tests check geometry, blending,
masks and files, not skill. Scenes are GeoTIFFs with real CRSs written here; the real-pixel tests use
s2cloudless's own Sentinel-2 L1C test scene (``python benchmarks/cloud_masks.py --fetch``) and are skipped
without it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest
import rasterio
import torch
import yaml
from pyproj import Transformer
from rasterio.crs import CRS
from rasterio.transform import array_bounds, from_origin
from rasterio.windows import Window
from test_training import TINY, LearnableTriplets

from conftest import REPO, SMOKE, snakemake
from hcrlc.cli import main as cli_main
from hcrlc.data import fast_cloud as fc
from hcrlc.data.dataset import prepare_s1, prepare_s2
from hcrlc.data.s2cloudless_scene import s2cloudless_scene_path
from hcrlc.demo_scene import write_demo_scene, write_geotiff
from hcrlc.errors import ConfigError, DataError
from hcrlc.model_card import with_test_metrics, write_model_card
from hcrlc.models import LOGITS, RECON
from hcrlc.paper import CLASSES, MASK_PRESETS
from hcrlc.predict import (
    CLOUD_FREE,
    CLOUD_MASK,
    LANDCOVER,
    MASK_NODATA,
    PREDICT_DEFAULTS,
    QUICKLOOK,
    SUMMARY,
    PredictSettings,
    SceneGrid,
    blend_weights,
    coarse_transform,
    predict_scene,
    s1_on_grid,
    to_dn,
    window_starts,
    write_cloud_mask,
)
from hcrlc.scene_resampling import resample_scene
from hcrlc.training import file_sha256, load_model, train_model

UTM = CRS.from_epsg(32633)
LONLAT = CRS.from_epsg(4326)
UTM_ORIGIN = (500_000.0, 5_200_000.0)
#: Settings for the 32-px test models: an explicit overlap of a quarter of the window (the default's share).
SMALL = PredictSettings(overlap=8)


def train_tiny(out, model: str, size: int, pixel_size_m: float | None = 10.0):
    cfg = {"epochs": 1, "batch_size": 2, "lr": 1e-2, "device": "cpu", "num_workers": 0}
    train_model(model, LearnableTriplets(4, size=size, pixel_size_m=pixel_size_m),
                LearnableTriplets(2, seed=1, size=size, pixel_size_m=pixel_size_m), out, model_cfg=TINY,
                train_cfg=cfg)
    return out / "best.pt"


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Tiny best.pt files: HCR&LC-Net (uncertain) on 256 px and on 32 px patches, LC-Net and HCR-Net on 32 px, all
    of 10 m pixels; HCR&LC-Net on 32 px patches of 40 m pixels (the demo's scale model) and of pixels it does not
    know."""
    root = tmp_path_factory.mktemp("models")
    torch.set_num_threads(1)
    specs = {"hcr_lc_uncertain_256": ("hcr_lc_uncertain", 256, 10.0),
             "hcr_lc_uncertain_32": ("hcr_lc_uncertain", 32, 10.0), "lc_net": ("lc_net", 32, 10.0),
             "hcr_net": ("hcr_net", 32, 10.0), "hcr_lc_uncertain_32_40m": ("hcr_lc_uncertain", 32, 40.0),
             "hcr_lc_uncertain_32_unknown": ("hcr_lc_uncertain", 32, None)}
    return {key: train_tiny(root / key, name, size, metres) for key, (name, size, metres) in specs.items()}


def write_s2(path, width: int, height: int, *, crs=UTM, bands: int = 13, seed: int = 0, dtype="uint16",
             nodata=None, res: float = 10.0):
    """Random L1C-like DN (bright clouds in the top-left quarter) on a ``res`` m grid (default 10) in ``crs``."""
    rng = np.random.default_rng(seed)
    dn = rng.integers(200, 3000, size=(bands, height, width)).astype(dtype)
    dn[:, : height // 2, : width // 2] = rng.integers(5000, 9000, size=(bands, height // 2, width // 2))
    origin = UTM_ORIGIN if crs.is_projected else (15.0, 47.0)
    res = res if crs.is_projected else 1e-4
    write_geotiff(path, dn, crs, from_origin(*origin, res, res), nodata=nodata)
    return path


def lonlat_grid_over(s2_path, margin: float = 0.002, cell: float = 1e-4):
    """A lon/lat grid (transform, width, height) covering the S2 footprint with a margin (degrees)."""
    with rasterio.open(s2_path) as src:
        west, south, east, north = rasterio.warp.transform_bounds(src.crs, LONLAT, *src.bounds, densify_pts=21)
    west, south, east, north = west - margin, south - margin, east + margin, north + margin
    width, height = int(np.ceil((east - west) / cell)), int(np.ceil((north - south) / cell))
    return from_origin(west, north, cell, cell), width, height


def linear_field(transform, width, height):
    """VV = -12 + 100 (lon - lon0) + 50 (lat - lat0) dB, VH = VV - 6: bilinear resampling reproduces it exactly."""
    lon = transform.c + (np.arange(width) + 0.5) * transform.a
    lat = transform.f + (np.arange(height) + 0.5) * transform.e
    vv = -12.0 + 100.0 * (lon[None, :] - transform.c) + 50.0 * (lat[:, None] - transform.f)
    return np.stack([vv, vv - 6.0]).astype(np.float32)


def write_s1_lonlat(path, s2_path, *, hole: bool = False, margin: float = 0.002):
    transform, width, height = lonlat_grid_over(s2_path, margin)
    s1 = linear_field(transform, width, height)
    if hole:  # a nodata block inside the S2 footprint
        s1[:, height // 2 - 5: height // 2 + 5, width // 2 - 5: width // 2 + 5] = -9999.0
    write_geotiff(path, s1, LONLAT, transform, nodata=-9999.0)
    return path


def write_scene(tmp_path, width, height, **kwargs):
    s2 = write_s2(tmp_path / "s2.tif", width, height, **kwargs)
    return s2, write_s1_lonlat(tmp_path / "s1.tif", s2)


def grid_of(path):
    with rasterio.open(path) as src:
        return src.crs, src.transform, src.width, src.height


# --- windows and weights --------------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [256, 257, 300, 448, 449, 640, 1000, 5000])
@pytest.mark.parametrize("overlap", [0, 64, 200])
def test_windows_cover_the_axis_with_at_least_the_overlap_and_no_more_windows_than_needed(length, overlap):
    starts = window_starts(length, 256, overlap)
    assert starts[0] == 0 and starts[-1] == length - 256
    gaps = np.diff(starts)
    assert (gaps <= 256 - overlap).all() and (gaps > 0).all()  # neighbours share >= overlap px, no gap
    if len(starts) > 2:  # with one window fewer, spread evenly, neighbours would share less than the overlap
        assert (length - 256) / (len(starts) - 2) > 256 - overlap
    if (length - 256) % (256 - overlap) == 0:  # an exact fit keeps the nominal stride
        assert (gaps == 256 - overlap).all()


def test_blend_weights_fade_to_the_edges_and_stay_positive():
    w = blend_weights(256)
    assert w.shape == (256, 256) and (w > 0).all()
    np.testing.assert_allclose(w, w.T)
    np.testing.assert_allclose(w, w[::-1, ::-1])
    assert w[128, 128] > 0.99 and w[0, 0] < 0.01 and w[0, 128] < 0.01


# --- tiled prediction -----------------------------------------------------------------------------------------


def test_tiled_prediction_of_one_window_equals_one_forward_pass(checkpoints, tmp_path):
    ckpt = checkpoints["hcr_lc_uncertain_256"]
    s2 = write_s2(tmp_path / "s2.tif", 256, 256)
    # S1 on the S2 grid itself: the reference reads it directly, without any resampling
    with rasterio.open(s2) as src:
        s1_db = (-15.0 + np.random.default_rng(1).normal(0, 3, (2, 256, 256))).astype(np.float32)
        write_geotiff(tmp_path / "s1.tif", s1_db, src.crs, src.transform)
        dn = src.read()
    predict_scene(ckpt, s2, tmp_path / "s1.tif", tmp_path / "out", PredictSettings(overlap=64), progress=False)

    x = np.concatenate([prepare_s2(dn), prepare_s1(s1_db)])[None]
    with torch.inference_mode():
        out = load_model(ckpt)(torch.from_numpy(x))
    with rasterio.open(tmp_path / "out" / CLOUD_FREE) as cf:
        np.testing.assert_array_equal(cf.read(), to_dn(out[RECON][0].numpy().astype(np.float64)))
    with rasterio.open(tmp_path / "out" / LANDCOVER) as lc:
        assert (lc.count, lc.width, lc.height) == (10, 1, 1)
        np.testing.assert_array_equal(lc.read()[:, 0, 0], torch.sigmoid(out[LOGITS][0]).numpy())
        # the one cell is centred on the window's centre
        with rasterio.open(s2) as src:
            assert lc.xy(0, 0) == src.xy(128, 128, offset="ul")


def test_outputs_lie_on_the_input_grid_for_a_size_that_is_no_multiple_of_the_stride(checkpoints, tmp_path):
    s2, s1 = write_scene(tmp_path, 101, 75)
    settings = PredictSettings(overlap=8, batch_size=3)
    summary = predict_scene(checkpoints["hcr_lc_uncertain_32"], s2, s1, tmp_path / "out", settings, name="odd",
                            progress=False)
    crs, transform, width, height = grid_of(s2)
    out = tmp_path / "out"
    for name, bands, dtype in [(CLOUD_FREE, 13, "uint16"), (CLOUD_MASK, 1, "uint8")]:
        with rasterio.open(out / name) as src:
            assert (src.crs, src.transform, src.width, src.height) == (crs, transform, width, height), name
            assert (src.count, src.dtypes[0]) == (bands, dtype)
            assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG", name
            data = src.read()
    ys, xs = window_starts(75, 32, 8), window_starts(101, 32, 8)
    with rasterio.open(out / LANDCOVER) as lc:
        probs = lc.read()
        assert (lc.count, lc.height, lc.width, lc.crs) == (10, len(ys), len(xs), crs)
        left, bottom, right, top = lc.bounds
        s2_left, s2_bottom, s2_right, s2_top = array_bounds(height, width, transform)
        assert s2_left <= left < right <= s2_right and s2_bottom <= bottom < top <= s2_top
    assert np.isfinite(probs).all() and ((probs >= 0) & (probs <= 1)).all()
    with rasterio.open(out / CLOUD_FREE) as cf:
        free = cf.read().astype(np.float64)
    # no seam: the jump across a window's edge is no larger than across any other column or row
    for axis, starts in [(2, xs), (1, ys)]:
        jumps = np.abs(np.diff(free, axis=axis)).mean(axis=tuple({0, 1, 2} - {axis}))
        edges = sorted({int(x) - 1 for x in starts[1:]} | {int(x) + 31 for x in starts[:-1]})
        assert (jumps[edges] < 1.5 * np.median(jumps)).all(), (axis, jumps[edges] / np.median(jumps))
    assert summary["windows"]["count"] == len(ys) * len(xs) == summary["windows"]["rows"] * summary["windows"]["cols"]
    assert set(summary["class_probabilities"]) == set(CLASSES)
    assert summary["scene"] == "odd" and summary["checkpoint_sha256"] == file_sha256(checkpoints["hcr_lc_uncertain_32"])
    assert (out / QUICKLOOK).stat().st_size > 0
    assert json.loads((out / SUMMARY).read_text())["cloud_cover"] == pytest.approx(data.mean())


def test_models_without_a_head_leave_out_its_product(checkpoints, tmp_path):
    s2, s1 = write_scene(tmp_path, 40, 40)
    lc = predict_scene(checkpoints["lc_net"], s2, s1, tmp_path / "lc", SMALL, progress=False)
    hcr = predict_scene(checkpoints["hcr_net"], s2, s1, tmp_path / "hcr", SMALL, progress=False)
    assert not (tmp_path / "lc" / CLOUD_FREE).exists() and (tmp_path / "lc" / LANDCOVER).exists()
    assert (tmp_path / "hcr" / CLOUD_FREE).exists() and not (tmp_path / "hcr" / LANDCOVER).exists()
    assert hcr["class_probabilities"] is None and CLOUD_FREE not in lc["outputs"]
    assert (tmp_path / "lc" / QUICKLOOK).is_file() and (tmp_path / "hcr" / QUICKLOOK).is_file()


def test_s2_nodata_stays_nodata_and_out_of_the_statistics(checkpoints, tmp_path):
    s2 = write_s2(tmp_path / "s2.tif", 64, 64, nodata=0)
    with rasterio.open(s2, "r+") as dst:  # a nodata block in the clear part
        dst.write(np.zeros((13, 16, 16), dtype=np.uint16), window=Window(40, 40, 16, 16))
    s1 = write_s1_lonlat(tmp_path / "s1.tif", s2)
    summary = predict_scene(checkpoints["hcr_lc_uncertain_32"], s2, s1, tmp_path / "out", SMALL, progress=False)
    with rasterio.open(tmp_path / "out" / CLOUD_MASK) as m, rasterio.open(tmp_path / "out" / CLOUD_FREE) as cf:
        mask, free = m.read(1), cf.read()
        assert m.nodata == MASK_NODATA and cf.nodata == 0
    assert (mask[40:56, 40:56] == MASK_NODATA).all() and (free[:, 40:56, 40:56] == 0).all()
    valid = mask != MASK_NODATA
    assert valid.sum() == 64 * 64 - 256 == summary["valid_pixels"]
    assert (free[:, valid] > 0).any(axis=0).all()  # no valid pixel is written as nodata
    assert summary["cloud_cover"] == pytest.approx(mask[valid].mean())


# --- S1 onto the S2 grid ------------------------------------------------------------------------------------------


def test_s1_on_lonlat_is_reprojected_bilinearly_and_its_nodata_kept_out(tmp_path):
    s2 = write_s2(tmp_path / "s2.tif", 120, 90)
    s1 = write_s1_lonlat(tmp_path / "s1.tif", s2, hole=True)
    crs, transform, width, height = grid_of(s2)
    with s1_on_grid(s1, SceneGrid(crs, transform, width, height, None)) as vrt:
        warped = vrt.read(window=Window(0, 0, width, height))
    # expected: the linear field at each S2 pixel centre's lon/lat
    cols, rows = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    east, north = transform @ (cols, rows)
    lon, lat = Transformer.from_crs(crs, LONLAT, always_xy=True).transform(east, north)
    s1_transform, _, _ = lonlat_grid_over(s2)
    vv = -12.0 + 100.0 * (lon - s1_transform.c) + 50.0 * (lat - s1_transform.f)
    hole = np.isnan(warped[0])
    assert 0 < hole.sum() < 0.05 * hole.size  # the nodata block, slightly grown by the bilinear footprint
    np.testing.assert_allclose(warped[0][~hole], vv[~hole], atol=0.02)  # 0.02 dB: GDAL's approximate transformer
    np.testing.assert_allclose(warped[1][~hole], vv[~hole] - 6.0, atol=0.02)
    assert np.isnan(warped[1][hole]).all()


# --- cloud masks on real Sentinel-2 pixels ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_scene(tmp_path_factory):
    path = s2cloudless_scene_path()
    if not path.is_file():
        pytest.skip(f"s2cloudless's real Sentinel-2 test scene is not in {path}: run "
                    "`python benchmarks/cloud_masks.py --fetch` once")
    return write_demo_scene(tmp_path_factory.mktemp("demo"), path)


@pytest.fixture(scope="module")
def stock_probabilities(demo_scene):
    from s2cloudless import S2PixelCloudDetector

    with rasterio.open(demo_scene[0]) as src:
        dn = src.read()
    x = np.moveaxis(fc.dn_to_model_input(dn[None]), 1, -1)
    return S2PixelCloudDetector(all_bands=True).get_cloud_probability_maps(x)


@pytest.fixture(scope="module")
def real_crop(demo_scene, tmp_path_factory):
    """A 300 × 256 px crop of the real scene (stock s2cloudless takes ~5 s on it) and stock's probabilities."""
    from s2cloudless import S2PixelCloudDetector

    with rasterio.open(demo_scene[0]) as src:
        dn = src.read(window=Window(128, 100, 256, 300))
        crop = write_geotiff(tmp_path_factory.mktemp("crop") / "s2.tif", dn, src.crs,
                             src.window_transform(Window(128, 100, 256, 300)))
    x = np.moveaxis(fc.dn_to_model_input(dn[None]), 1, -1)
    return crop, S2PixelCloudDetector(all_bands=True).get_cloud_probability_maps(x)


@pytest.mark.parametrize("preset", ["authors", "sen12mscr"])
def test_mask_of_real_pixels_in_strips_equals_stock_s2cloudless_on_the_whole_scene(real_crop, preset, tmp_path):
    from s2cloudless import S2PixelCloudDetector

    s2, probabilities = real_crop
    params = MASK_PRESETS[preset]
    stock = S2PixelCloudDetector(all_bands=True, **params).get_mask_from_prob(probabilities)[0]
    # strips of 64 rows: every strip edge inside the scene must be hidden by the halo
    counts = write_cloud_mask(s2, tmp_path / "mask.tif", PredictSettings(**params), strip_rows=64, progress=False)
    with rasterio.open(tmp_path / "mask.tif") as src:
        mask = src.read(1)
        assert (src.crs, src.transform, src.width, src.height) == grid_of(s2)
    np.testing.assert_array_equal(mask, stock)
    assert 0.1 < counts["cloudy"] / counts["valid"] < 0.9  # the real crop is partly cloudy


# --- bad input ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case, match", [
    ("l2a_12_bands", r"12 bands.*Level-2A.*B10.*Fix: use the L1C"),
    ("geographic_s2", r"geographic CRS EPSG:4326.*Fix: reproject"),
    ("smaller_than_a_window", r"20 × 40 px, smaller than one window of 32 × 32 px"),
    ("float_s2", r"float32 values.*Fix: convert"),
    ("s1_not_covering", r"does not cover the S2 footprint.*Fix:"),
    ("s1_linear", r"looks like linear power.*Fix: convert to dB"),
    ("s1_missing", r"S1 file not found.*Fix: check the path"),
])
def test_bad_input_is_refused_naming_the_file_and_the_fix(checkpoints, tmp_path, case, match):
    s2, s1 = tmp_path / "s2.tif", tmp_path / "s1.tif"
    kwargs = {"l2a_12_bands": {"bands": 12}, "geographic_s2": {"crs": LONLAT}, "float_s2": {"dtype": "float32"},
              "smaller_than_a_window": {}}.get(case)
    if kwargs is not None:
        write_s2(s2, 20 if case == "smaller_than_a_window" else 64, 40 if case == "smaller_than_a_window" else 64,
                 **kwargs)
        bad = s2
        write_geotiff(s1, np.full((2, 10, 10), -10, np.float32), LONLAT, from_origin(-180, 90, 36, 18))
    else:
        write_s2(s2, 64, 64)
        if case == "s1_not_covering":
            write_s1_lonlat(s1, s2, margin=-0.0002)  # a little short of the footprint on every side
        elif case == "s1_linear":
            transform, width, height = lonlat_grid_over(s2)
            write_geotiff(s1, np.full((2, height, width), 0.05, np.float32), LONLAT, transform)
        bad = s1
    with pytest.raises(DataError, match=match) as err:
        predict_scene(checkpoints["hcr_lc_uncertain_32"], s2, s1, tmp_path / "out", SMALL, progress=False)
    assert err.value.path == bad
    assert not (tmp_path / "out").exists()  # refused before any output


# --- the model's pixel size ----------------------------------------------------------------------------------------


def speckled_s1_on(s2_path, seed: int = 2):
    """(2, H, W) float32 dB on the S2 grid itself: -12 / -19 dB with 4-look gamma speckle (averaging it in dB or in
    power differs by ~1 dB) and a block of NaN (no data)."""
    with rasterio.open(s2_path) as src:
        height, width = src.height, src.width
    rng = np.random.default_rng(seed)
    power = rng.gamma(4.0, 1 / 4.0, size=(2, height, width)) * np.array([10**-1.2, 10**-1.9])[:, None, None]
    db = (10 * np.log10(power)).astype(np.float32)
    db[:, 8:14, 20:27] = np.nan
    return db


def block_mean(a: np.ndarray, k: int) -> np.ndarray:
    """Mean of k × k blocks of (bands, H, W), ignoring NaN (NaN where a block has none); the last partial row and
    column of blocks left out."""
    b, h, w = a.shape[0], a.shape[1] // k, a.shape[2] // k
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "mean of empty slice" where a block holds only NaN
        return np.nanmean(a[:, : h * k, : w * k].reshape(b, h, k, w, k), axis=(2, 4))


def test_resampling_averages_s2_and_s1_in_linear_power_onto_the_models_grid(tmp_path):
    s2 = write_s2(tmp_path / "s2.tif", 130, 97, nodata=0)
    with rasterio.open(s2, "r+") as dst:  # a nodata block that covers whole coarse pixels and parts of others
        dst.write(np.zeros((13, 10, 9), dtype=np.uint16), window=Window(40, 40, 9, 10))
    crs, transform, width, height = grid_of(s2)
    s1_db = speckled_s1_on(s2)
    write_geotiff(tmp_path / "s1.tif", s1_db, crs, transform)
    scene = SceneGrid(crs, transform, width, height, 0)
    target = scene.with_pixel_size(40.0)
    assert (target.width, target.height) == (32, 24) and target.transform == from_origin(*UTM_ORIGIN, 40.0, 40.0)
    # strips of 3 coarse rows: the strip edges fall inside the scene
    s2_out, s1_out = resample_scene(s2, tmp_path / "s1.tif", scene, target, tmp_path / "out", source_rows=12)
    with rasterio.open(s2) as src:
        dn = src.read()
    with rasterio.open(s2_out) as a, rasterio.open(s1_out) as b:
        assert (a.crs, a.transform, a.width, a.height, a.nodata) == (crs, target.transform, 32, 24, 0)
        assert (b.crs, b.transform, b.dtypes[0]) == (crs, target.transform, "float32")
        got_dn, got_db = a.read(), b.read()
    # S2: the mean of the valid 10 m pixels under each 40 m pixel, rounded; nodata only where none is valid
    valid = (dn != 0).any(axis=0)
    expected = block_mean(np.where(valid, dn, np.nan).astype(np.float64), 4)
    none_valid = np.isnan(expected).all(axis=0)
    assert none_valid.sum() == 4  # rows 40-49 x columns 40-48 hold 2 x 2 whole coarse pixels
    np.testing.assert_array_equal(got_dn[:, ~none_valid], np.rint(expected[:, ~none_valid]))
    assert (got_dn[:, none_valid] == 0).all()
    # S1: the mean in linear power, not in dB (speckle makes them differ by about a dB)
    linear = 10 * np.log10(block_mean(10 ** (s1_db.astype(np.float64) / 10), 4))
    np.testing.assert_allclose(got_db, linear, atol=1e-4)
    assert np.nanmean(linear - block_mean(s1_db.astype(np.float64), 4)) > 0.5


def test_pixel_sizes_that_are_no_multiples_average_the_covered_area(tmp_path):
    # S2 DN linear in x and y: the area-weighted mean over a 25 m pixel is the ramp at its centre
    rows, cols = np.mgrid[0:101, 0:83]
    dn = np.broadcast_to(1000 + 6 * cols + 4 * rows, (13, 101, 83)).astype(np.uint16)
    s2 = write_geotiff(tmp_path / "s2.tif", dn, UTM, from_origin(*UTM_ORIGIN, 10.0, 10.0))
    s1 = write_geotiff(tmp_path / "s1.tif", np.full((2, 101, 83), -11.0, np.float32), UTM,
                       from_origin(*UTM_ORIGIN, 10.0, 10.0))
    scene = SceneGrid(UTM, from_origin(*UTM_ORIGIN, 10.0, 10.0), 83, 101, None)
    target = scene.with_pixel_size(25.0)
    assert (target.width, target.height) == (33, 40)
    s2_out, s1_out = resample_scene(s2, s1, scene, target, tmp_path / "out", source_rows=18)  # 7 rows a strip
    centre = (np.arange(40)[:, None] + 0.5) * 2.5 - 0.5, (np.arange(33)[None, :] + 0.5) * 2.5 - 0.5
    with rasterio.open(s2_out) as a, rasterio.open(s1_out) as b:
        assert np.abs(a.read(1).astype(float) - (1000 + 6 * centre[1] + 4 * centre[0])).max() <= 0.5
        np.testing.assert_allclose(b.read(), -11.0, atol=1e-5)


def test_a_model_of_40_m_pixels_predicts_a_10_m_scene_on_its_own_grid(checkpoints, tmp_path):
    ckpt = checkpoints["hcr_lc_uncertain_32_40m"]
    s2 = write_s2(tmp_path / "s2.tif", 210, 150)
    crs, transform, width, height = grid_of(s2)
    s1_db = speckled_s1_on(s2)
    s1 = write_geotiff(tmp_path / "s1.tif", s1_db, crs, transform)
    out = tmp_path / "out"
    summary = predict_scene(ckpt, s2, s1, out, SMALL, progress=False)
    # every output on the 40 m grid over the scene (same corner), nothing else left in the folder
    coarse = from_origin(*UTM_ORIGIN, 40.0, 40.0)
    assert sorted(p.name for p in out.iterdir()) == sorted([CLOUD_FREE, CLOUD_MASK, LANDCOVER, SUMMARY, QUICKLOOK])
    for name in (CLOUD_FREE, CLOUD_MASK):
        with rasterio.open(out / name) as src:
            assert (src.crs, src.transform, src.width, src.height) == (crs, coarse, 52, 37), name
    with rasterio.open(out / LANDCOVER) as lc:
        ys, xs = window_starts(37, 32, 8), window_starts(52, 32, 8)
        assert (lc.height, lc.width) == (len(ys), len(xs))
        assert lc.transform == coarse_transform(coarse, ys, xs, 32, 8)
    assert summary["pixel_size_m"] == {"model": 40.0, "outputs": 40.0}
    assert summary["inputs"]["pixel_size_m"] == 10.0 and summary["inputs"]["s2"] == str(s2)
    assert summary["inputs"]["grid"]["width"] == 210 and summary["grid"]["width"] == 52
    assert summary["resampling"] is not None and summary["seconds"]["resample"] >= 0
    assert (summary["windows"]["rows"], summary["windows"]["cols"]) == (len(ys), len(xs))
    # the same as predicting the scene averaged onto 40 m pixels beforehand (where nothing is resampled)
    pre = tmp_path / "pre"
    pre_s2, pre_s1 = resample_scene(s2, s1, SceneGrid(crs, transform, width, height, None),
                                    SceneGrid(crs, transform, width, height, None).with_pixel_size(40.0), pre)
    again = predict_scene(ckpt, pre_s2, pre_s1, tmp_path / "again", SMALL, progress=False)
    assert again["resampling"] is None and again["inputs"]["pixel_size_m"] == 40.0
    for name in (CLOUD_FREE, CLOUD_MASK, LANDCOVER):
        with rasterio.open(out / name) as a, rasterio.open(tmp_path / "again" / name) as b:
            np.testing.assert_array_equal(a.read(), b.read(), err_msg=name)


def test_the_scenes_own_pixel_size_changes_nothing(checkpoints, tmp_path):
    """A 10 m model (recorded, or from before the key) and one whose data did not say predict a 10 m scene on its
    own grid, byte for byte alike, with no resampling."""
    legacy = torch.load(checkpoints["hcr_lc_uncertain_32"], weights_only=True)
    del legacy["pixel_size_m"]
    (tmp_path / "legacy").mkdir()
    torch.save(legacy, tmp_path / "legacy" / "best.pt")
    s2 = write_s2(tmp_path / "s2.tif", 101, 75, nodata=0)
    s1 = write_s1_lonlat(tmp_path / "s1.tif", s2, hole=True)
    outputs = {}
    for key, ckpt in (("recorded", checkpoints["hcr_lc_uncertain_32"]), ("legacy", tmp_path / "legacy" / "best.pt")):
        summary = predict_scene(ckpt, s2, s1, tmp_path / key, SMALL, progress=False)
        assert summary["resampling"] is None and summary["pixel_size_m"] == {"model": 10.0, "outputs": 10.0}
        assert summary["grid"] == summary["inputs"]["grid"]
        outputs[key] = {name: (tmp_path / key / name).read_bytes() for name in (CLOUD_FREE, CLOUD_MASK, LANDCOVER)}
    assert outputs["recorded"] == outputs["legacy"]
    # the same weights trained on data that did not say its pixel size: the scene's own grid, as before the key
    unknown = torch.load(checkpoints["hcr_lc_uncertain_32"], weights_only=True) | {"pixel_size_m": None}
    (tmp_path / "unknown").mkdir()
    torch.save(unknown, tmp_path / "unknown" / "best.pt")
    summary = predict_scene(tmp_path / "unknown" / "best.pt", s2, s1, tmp_path / "u", SMALL, progress=False)
    assert summary["pixel_size_m"] == {"model": None, "outputs": 10.0}
    assert {n: (tmp_path / "u" / n).read_bytes() for n in outputs["recorded"]} == outputs["recorded"]


@pytest.mark.parametrize("case, match", [
    ("coarser_scene", (r"has 40 m pixels, coarser than the 10 m pixels the model was trained on.*Fix: pass the "
                       r"scene at 10 m or finer")),
    ("small_on_the_models_grid", (r"is 100 × 100 px \(25 × 25 px of the model's 40 m pixels\), smaller than one "
                                  r"window of 32 × 32 px. Fix: use a crop of at least 128 px per side")),
])
def test_scenes_the_models_pixels_cannot_be_made_from_are_refused(checkpoints, tmp_path, case, match):
    coarse = case == "coarser_scene"
    s2 = write_s2(tmp_path / "s2.tif", 100, 100, res=40.0 if coarse else 10.0)
    s1 = write_s1_lonlat(tmp_path / "s1.tif", s2)
    ckpt = checkpoints["hcr_lc_uncertain_32" if coarse else "hcr_lc_uncertain_32_40m"]
    with pytest.raises(DataError, match=match) as err:
        predict_scene(ckpt, s2, s1, tmp_path / "out", SMALL, progress=False)
    assert err.value.path == s2 and not (tmp_path / "out").exists()


# --- the hcrlc command ------------------------------------------------------------------------------------------


def test_console_script_is_declared_and_callable():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, func = scripts["hcrlc"].partition(":")
    assert (module, func) == ("hcrlc.cli", "main")
    assert getattr(__import__(module, fromlist=[func]), func) is cli_main


def test_cli_help_lists_predict(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli_main(["--help"])
    assert exit_.value.code == 0
    assert "predict" in capsys.readouterr().out


def test_cli_predicts_a_scene_and_refuses_bad_input_with_status_2(checkpoints, tmp_path):
    s2, s1 = write_scene(tmp_path, 48, 40)
    cmd = [sys.executable, "-m", "hcrlc.cli", "predict", "--checkpoint", str(checkpoints["hcr_lc_uncertain_32"]),
           "--s2", str(s2), "--s1", str(s1), "--out", str(tmp_path / "out"), "--overlap", "4", "--quiet"]
    done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert {CLOUD_FREE, CLOUD_MASK, LANDCOVER, SUMMARY, QUICKLOOK} <= {p.name for p in (tmp_path / "out").iterdir()}
    l2a = write_s2(tmp_path / "l2a.tif", 48, 40, bands=12)
    assert cli_main(["predict", "--checkpoint", str(checkpoints["hcr_lc_uncertain_32"]), "--s2", str(l2a),
                     "--s1", str(s1), "--out", str(tmp_path / "out2"), "--overlap", "4", "--quiet"]) == 2


# --- model cards ----------------------------------------------------------------------------------------------------


def test_model_card_describes_the_checkpoint_and_gains_the_test_metrics(checkpoints, tmp_path):
    ckpt = checkpoints["hcr_lc_uncertain_32"]
    card_path = ckpt.with_name("model_card.json")
    card = write_model_card(ckpt, card_path, run="hcr_lc_uncertain", data_source="synthetic",
                            splits={"train": 4, "val": 2, "test": 3}, training_code="abc")
    assert card["checkpoint"]["sha256"] == file_sha256(ckpt) and card["model"] == "hcr_lc_uncertain"
    assert card["model_config"]["widths"] == TINY["widths"] and card["training_config"]["epochs"] == 1
    assert card["software"]["torch"] == torch.__version__ and card["data"]["source"] == "synthetic"
    assert set(card["outputs"]) == {"recon", "logits"} and card["test_metrics"] is None
    assert card["patch_size"] == 32  # the checkpoint's: its training patches
    assert card["pixel_size_m"] == 10.0 == card["inputs"]["pixel_size_m"]  # and the pixels of its data
    assert json.loads(card_path.read_text()) == card
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"f1": 0.5, "psnr": 20.0}))
    evaluated = with_test_metrics(card_path, metrics, tmp_path / "eval_card.json")
    assert evaluated["test_metrics"] == {"f1": 0.5, "psnr": 20.0}
    # predict reads the card beside the checkpoint: the summary says what data the model was trained on
    s2, s1 = write_scene(tmp_path, 32, 32)
    summary = predict_scene(ckpt, s2, s1, tmp_path / "out", SMALL, progress=False)
    assert summary["trained_on"] == "synthetic" and "SYNTHETIC" in summary["note"]
    card_path.unlink()


def test_windows_take_the_checkpoints_patch_size_and_overlap_a_quarter_of_it_by_default(checkpoints, tmp_path):
    assert PredictSettings().for_window(256).overlap == 64 and PredictSettings().for_window(64).overlap == 16
    assert PredictSettings(overlap=5).for_window(64).overlap == 5
    with pytest.raises(ConfigError, match=r"predict.overlap must be smaller than the 32-px window"):
        PredictSettings(overlap=32).for_window(32)
    s2, s1 = write_scene(tmp_path, 80, 70)
    summary = predict_scene(checkpoints["hcr_lc_uncertain_32"], s2, s1, tmp_path / "out", PredictSettings(),
                            progress=False)
    assert summary["windows"]["size"] == 32 and summary["settings"]["overlap"] == 8
    assert (summary["windows"]["rows"], summary["windows"]["cols"]) == (len(window_starts(70, 32, 8)),
                                                                        len(window_starts(80, 32, 8)))
    with rasterio.open(tmp_path / "out" / CLOUD_FREE) as cf:
        assert (cf.width, cf.height) == (80, 70)


def test_predict_defaults_match_the_schema():
    schema = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
    props = schema["properties"]["predict"]["properties"]
    assert {k: props[k]["default"] for k in PREDICT_DEFAULTS} == PREDICT_DEFAULTS
    assert props["scenes"]["default"] == {} and props["model"]["default"] == "hcr_lc_uncertain"


# --- the workflow -------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_snakemake_predict_on_an_unseen_real_scene_meets_the_bar(demo_scene, stock_probabilities, tmp_path):
    """`snakemake predict` with the demo overlay (real L1C pixels in UTM, S1 in lon/lat) trains the model it needs
    and writes the outputs; a 12-band S2 is refused naming the file."""
    from s2cloudless import S2PixelCloudDetector

    work = tmp_path / "work"
    snakemake(work, "predict", "--configfile", str(SMOKE), str(REPO / "configs" / "predict_demo.yaml"))
    out = work / "results" / "predict" / "demo"
    s2 = work / "results" / "predict_demo" / "s2_l1c.tif"
    grid = grid_of(s2)
    assert grid[0].to_epsg() == 32738
    with rasterio.open(out / CLOUD_FREE) as cf:
        assert (cf.crs, cf.transform, cf.width, cf.height) == grid and cf.count == 13
        assert np.isfinite(cf.read().astype(np.float64)).all()
        assert cf.overviews(1)
    params = {k: v for k, v in yaml.safe_load(SMOKE.read_text()).get("masks", MASK_PRESETS["authors"]).items()
              if k != "engine"}
    stock = S2PixelCloudDetector(all_bands=True, **params).get_mask_from_prob(stock_probabilities)[0]
    with rasterio.open(out / CLOUD_MASK) as m:
        assert (m.crs, m.transform, m.width, m.height) == grid
        assert (m.read(1) == stock).mean() >= 0.999
    with rasterio.open(out / LANDCOVER) as lc:
        probs = lc.read()
        assert lc.count == 10 and ((probs >= 0) & (probs <= 1)).all()
        s2_bounds = array_bounds(grid[3], grid[2], grid[1])
        assert s2_bounds[0] <= lc.bounds.left and lc.bounds.right <= s2_bounds[2]
        assert s2_bounds[1] <= lc.bounds.bottom and lc.bounds.top <= s2_bounds[3]
    summary = json.loads((out / SUMMARY).read_text())
    assert summary["trained_on"] == "synthetic" and summary["model"] == "hcr_lc_uncertain"
    assert (work / "results" / "models" / "hcr_lc_uncertain" / "model_card.json").is_file()

    l2a = tmp_path / "l2a.tif"
    with rasterio.open(s2) as src:
        write_geotiff(l2a, src.read()[[*range(10), 11, 12]], src.crs, src.transform)
    overlay = tmp_path / "l2a.yaml"
    overlay.write_text(yaml.safe_dump({"predict": {"scenes": {"l2a": {"s2": str(l2a), "s1": str(s2.with_name(
        "s1_db.tif"))}}}}))
    proc = snakemake(work, "predict", "--configfile", str(SMOKE), str(overlay), check=False)
    assert proc.returncode != 0
    log = (work / "results" / "logs" / "predict" / "l2a.log").read_text()
    assert f"{l2a}: has 12 bands" in log and "Level-2A" in log


def run_predict_demo(work, *configs):
    """`snakemake predict` with the demo overlay on top of ``configs``; the demo scene's S2 and the outputs' folder."""
    snakemake(work, "predict", "--configfile", *map(str, configs), str(REPO / "configs" / "predict_demo.yaml"))
    return work / "results" / "predict_demo" / "s2_l1c.tif", work / "results" / "predict" / "demo"


@pytest.mark.slow
def test_snakemake_predict_with_the_40_m_scale_model_averages_the_10_m_demo_scene_onto_its_grid(
        demo_scene, tmp_path):
    """The demo's scale model (64 px patches of 40 m pixels; here the smoke preset at 40 m) predicts the 10 m demo
    scene on a 40 m grid over it: the cloud mask is stock s2cloudless's of the S2 averaged onto 40 m."""
    from s2cloudless import S2PixelCloudDetector

    work = tmp_path / "work"
    overlay = tmp_path / "scale_model.yaml"
    overlay.write_text(yaml.safe_dump({"synthetic": {"pixel_size_m": 40}}))
    s2, out = run_predict_demo(work, SMOKE, overlay)
    card = json.loads((work / "results" / "models" / "hcr_lc_uncertain" / "model_card.json").read_text())
    assert (card["patch_size"], card["pixel_size_m"]) == (64, 40.0)
    crs, transform, width, height = grid_of(s2)
    assert (transform.a, width * height) == (10.0, 856 * 512)
    coarse = (crs, from_origin(transform.c, transform.f, 40.0, 40.0), width // 4, height // 4)
    for name in (CLOUD_FREE, CLOUD_MASK):
        with rasterio.open(out / name) as src:
            assert (src.crs, src.transform, src.width, src.height) == coarse, name
    with rasterio.open(s2) as src:
        dn = src.read().astype(np.float64)
    averaged = np.rint(block_mean(dn, 4))[None]  # the demo scene has no nodata
    params = {k: v for k, v in yaml.safe_load(SMOKE.read_text()).get("masks", MASK_PRESETS["authors"]).items()
              if k != "engine"}
    x = np.moveaxis(fc.dn_to_model_input(averaged.astype(np.uint16)), 1, -1)
    stock = S2PixelCloudDetector(all_bands=True, **params).get_cloud_masks(x)[0]
    with rasterio.open(out / CLOUD_MASK) as m:
        np.testing.assert_array_equal(m.read(1), stock)
    with rasterio.open(out / LANDCOVER) as lc:
        assert lc.crs == crs and transform.c <= lc.bounds.left and lc.bounds.right <= transform.c + width * 10.0
    summary = json.loads((out / SUMMARY).read_text())
    assert summary["pixel_size_m"] == {"model": 40.0, "outputs": 40.0} and summary["inputs"]["pixel_size_m"] == 10.0
    assert summary["resampling"] is not None and summary["windows"]["size"] == 64


@pytest.mark.slow
def test_snakemake_predict_with_a_256_px_10_m_model_keeps_the_demo_scenes_grid(paper_geometry_run):
    """The paper's geometry (256 px patches of 10 m pixels, depth 4) predicts the demo scene on its own grid."""
    s2, out = run_predict_demo(paper_geometry_run, SMOKE, paper_geometry_run / "paper_geometry.yaml")
    card = json.loads((paper_geometry_run / "results" / "models" / "hcr_lc_uncertain" / "model_card.json").read_text())
    assert (card["patch_size"], card["pixel_size_m"]) == (256, 10.0)
    grid = grid_of(s2)
    for name in (CLOUD_FREE, CLOUD_MASK):
        with rasterio.open(out / name) as src:
            assert (src.crs, src.transform, src.width, src.height) == grid, name
    summary = json.loads((out / SUMMARY).read_text())
    assert summary["pixel_size_m"] == {"model": 10.0, "outputs": 10.0} and summary["resampling"] is None
    assert summary["windows"]["size"] == 256 and summary["grid"] == summary["inputs"]["grid"]
