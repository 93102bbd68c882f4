"""fast_cloud: the fast engine gives stock s2cloudless's probabilities and masks, with every kernel variant."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from hcrlc.data import fast_cloud as fc
from hcrlc.data.s2cloudless_scene import load_s2cloudless_scene, s2cloudless_scene_path
from hcrlc.errors import ConfigError, DataError
from hcrlc.paper import MASK_PRESETS

needs_kernel = pytest.mark.skipif(not fc.available_kernels(), reason="no C compiler to build the fast kernel")
PRESETS = sorted(MASK_PRESETS)


def assert_same_as_stock(dn: np.ndarray, **fast_kwargs) -> np.ndarray:
    """Fast vs stock on the same DN: probabilities within 1e-6 (in practice bit-identical), masks identical."""
    fast = fc.cloud_probabilities(dn, **fast_kwargs)
    stock = fc.stock_cloud_probabilities(dn)
    assert fast.shape == stock.shape == (dn.shape[0], *dn.shape[2:]) and fast.dtype == np.float32
    np.testing.assert_allclose(fast, stock, rtol=0, atol=1e-6)
    for preset in PRESETS:
        np.testing.assert_array_equal(fc.cloud_masks_from_probabilities(fast, **MASK_PRESETS[preset]),
                                      fc.cloud_masks_from_probabilities(stock, **MASK_PRESETS[preset]))
    return fast


@pytest.fixture(scope="module")
def real_scene() -> np.ndarray:
    path = s2cloudless_scene_path()
    if not path.is_file():
        pytest.skip(f"s2cloudless's real Sentinel-2 test scene is not in {path}: run "
                    "`python benchmarks/cloud_masks.py --fetch` (pip downloads the s2cloudless 1.2.0 sdist)")
    return load_s2cloudless_scene(path)


def smooth_scene(rng: np.random.Generator, size: int) -> np.ndarray:
    """(1, 13, size, size) uint16 DN: a dark textured ground under smooth bright clouds, clear and cloudy parts."""
    def field(scale: int) -> np.ndarray:
        coarse = rng.random((size // scale + 2, size // scale + 2))
        y = np.arange(size) / scale
        i, f = y.astype(int), y % 1
        rows = coarse[i] * (1 - f)[:, None] + coarse[i + 1] * f[:, None]
        return rows[:, i] * (1 - f)[None] + rows[:, i + 1] * f[None]

    cloud = np.clip(field(24) * 2 - 0.7, 0, 1)
    ground = 0.05 + 0.15 * field(4)
    bands = [ground * (1 + 0.1 * b) * (1 - cloud) + (0.35 + 0.25 * cloud) * cloud + 0.01 * rng.random((size, size))
             for b in range(13)]
    return np.rint(np.stack(bands)[None] * 10_000).astype(np.uint16)


# --- the model and its bins ----------------------------------------------------------------------------------------
def test_constants_match_the_installed_s2cloudless():
    from s2cloudless.cloud_detector import MODEL_FILENAME
    from s2cloudless.utils import MODEL_BAND_IDS

    assert fc.MODEL_BAND_IDS == tuple(MODEL_BAND_IDS) and fc.MODEL_FILENAME == MODEL_FILENAME


def test_bins_reproduce_every_split_for_every_dn():
    """For all 10,001 DN of every feature: lut(dn) <= j exactly when LightGBM's `x(dn) <= threshold_j`."""
    forest = fc.stock_forest()
    x = fc.dn_to_model_input(np.arange(fc.DN_MAX + 1)).astype(np.float64)  # float32 widened, as LightGBM does
    assert forest.n_trees == 170 and forest.n_features == 10
    for f, thresholds in enumerate(forest.thresholds):
        goes_left = x[:, None] <= thresholds[None, :]
        by_bin = forest.lut[f][:, None] <= np.arange(len(thresholds))[None, :]
        np.testing.assert_array_equal(goes_left, by_bin, err_msg=f"feature {f}")


def test_forest_from_lightgbm_model_to_string_is_the_same():
    from lightgbm import Booster

    ours = fc.stock_forest()
    again = fc.parse_forest(Booster(model_file=str(fc.stock_model_path())).model_to_string())
    for name in ("node_off", "leaf_off", "nodes", "values", "lut"):
        np.testing.assert_array_equal(getattr(ours, name), getattr(again, name), err_msg=name)


@needs_kernel
@pytest.mark.parametrize("labels", ["rule", "constant"])  # "constant": LightGBM writes single-leaf trees
def test_any_binary_lightgbm_model_equals_its_booster(labels):
    import lightgbm

    rng = np.random.default_rng(7)
    dn = rng.integers(0, 10_001, size=(2, 13, 40, 50), dtype=np.uint16)
    x = np.moveaxis(fc.dn_to_model_input(dn)[:, list(fc.MODEL_BAND_IDS)], 1, -1).reshape(-1, 10)
    y = (x[:, 0] + x[:, 3] * x[:, 6] > 0.6) if labels == "rule" else np.ones(len(x))
    booster = lightgbm.train({"objective": "binary", "num_leaves": 63, "max_bin": 127, "verbose": -1},
                             lightgbm.Dataset(x[::3], y[::3].astype(float)), num_boost_round=12)
    forest = fc.parse_forest(booster.model_to_string())
    expected = booster.predict(x, num_threads=1).astype(np.float32).reshape(dn.shape[0], *dn.shape[2:])
    for kernel in fc.available_kernels():
        np.testing.assert_allclose(fc.cloud_probabilities(dn, kernel=kernel, forest=forest), expected, rtol=0,
                                   atol=1e-6)


def test_unsupported_models_are_refused():
    text = fc.stock_model_path().read_text()
    with pytest.raises(DataError, match="engine='stock'"):
        fc.parse_forest(text.replace("decision_type=2 ", "decision_type=10 ", 1))  # missing type "NaN"
    with pytest.raises(DataError, match="engine='stock'"):
        fc.parse_forest(text.replace("objective=binary", "objective=regression", 1))


# --- fast == stock ----------------------------------------------------------------------------------------------------
@needs_kernel
def test_random_dn_equal_stock():
    rng = np.random.default_rng(0)
    dn = rng.integers(0, 12_001, size=(2, 13, 45, 77), dtype=np.uint16)  # partial words and super blocks; >10000
    assert_same_as_stock(dn)
    # other integer dtypes are clipped like stock (negative DN -> 0)
    assert_same_as_stock(rng.integers(-500, 11_000, size=(1, 13, 9, 70)).astype(np.int32))


@needs_kernel
def test_edge_values_equal_stock():
    """Every DN where a bin changes (and its neighbours), 0, 10000 and beyond, in each model band."""
    forest = fc.stock_forest()
    rng = np.random.default_rng(1)
    per_band = []
    for f in range(forest.n_features):
        steps = np.flatnonzero(np.diff(forest.lut[f].astype(int))) + 1
        values = np.unique(np.concatenate([steps - 1, steps, steps + 1, [0, 1, 9_999, 10_000, 10_001, 65_535]]))
        per_band.append(np.clip(values, 0, 65_535))
    width = max(len(v) for v in per_band)
    dn = rng.integers(0, 10_001, size=(1, 13, len(per_band) + 1, width), dtype=np.uint16)
    for f, values in enumerate(per_band):
        dn[0, fc.MODEL_BAND_IDS[f], f, : len(values)] = values
        dn[0, fc.MODEL_BAND_IDS[f], -1, : len(values)] = values  # all bands at edges at once in the last row
    assert_same_as_stock(dn)


@needs_kernel
def test_real_sentinel2_pixels_equal_stock(real_scene):
    assert_same_as_stock(real_scene[:, :, 300:428])  # 128 x 512 pixels, clear and cloudy


def assert_kernels_agree(dn: np.ndarray) -> None:
    reference = fc.cloud_probabilities(dn, kernel="portable")
    for kernel in fc.available_kernels():
        for threads in (1, 2, 4):
            np.testing.assert_array_equal(fc.cloud_probabilities(dn, kernel=kernel, threads=threads), reference,
                                          err_msg=f"{kernel}, {threads} threads")


@needs_kernel
def test_all_kernels_and_thread_counts_agree():
    rng = np.random.default_rng(2)
    assert_kernels_agree(rng.integers(0, 10_001, size=(3, 13, 70, 66), dtype=np.uint16))
    assert_kernels_agree(smooth_scene(rng, 96))


@needs_kernel
def test_all_kernels_agree_on_real_pixels(real_scene):
    assert_kernels_agree(real_scene[:, :, :200])


@needs_kernel
def test_cloud_masks_fast_equals_stock_engine():
    dn = smooth_scene(np.random.default_rng(3), 96)
    for preset in PRESETS:
        probs_fast, masks_fast = fc.cloud_masks(dn, **MASK_PRESETS[preset], engine="fast")
        probs_stock, masks_stock = fc.cloud_masks(dn, **MASK_PRESETS[preset], engine="stock")
        np.testing.assert_allclose(probs_fast, probs_stock, rtol=0, atol=1e-6)
        np.testing.assert_array_equal(masks_fast, masks_stock)
        assert masks_fast.dtype == bool and 0.05 < masks_fast.mean() < 0.95, "the scene should be partly cloudy"


@pytest.mark.parametrize("params", [MASK_PRESETS[p] for p in PRESETS]
                         + [{"threshold": 0.3, "average_over": 0, "dilation_size": 0},
                            {"threshold": 0.5, "average_over": None, "dilation_size": None},
                            {"threshold": 0.4, "average_over": 2, "dilation_size": 0}])
def test_postprocessing_equals_s2cloudless_get_mask_from_prob(params):
    """Masks from probabilities are made without importing s2cloudless, by the same calls: equal bit for bit."""
    from s2cloudless import S2PixelCloudDetector

    rng = np.random.default_rng(7)
    probs = np.clip(rng.normal(0.4, 0.2, (3, 64, 48)), 0, 1).astype(np.float32)
    probs[:, 10:30, 5:20] = 0.9  # a cloud block, so averaging and dilation both change pixels
    stock = S2PixelCloudDetector(all_bands=True, **params).get_mask_from_prob(probs).astype(bool)
    ours = fc.cloud_masks_from_probabilities(probs, **params)
    assert ours.dtype == bool and 0 < stock.mean() < 1
    np.testing.assert_array_equal(ours, stock)


def test_parsed_forest_is_cached_once_and_loads_equal(tmp_path, monkeypatch):
    """The second process (here: a cleared lru_cache) loads the forest from the cache: every array equal."""
    import dataclasses

    monkeypatch.setenv("HCRLC_CACHE_DIR", str(tmp_path))
    fc.stock_forest.cache_clear()
    try:
        first = fc.stock_forest()
        (cached,) = tmp_path.glob("forest-*.npz")
        fc.stock_forest.cache_clear()
        loaded = fc.stock_forest()
        cached.write_bytes(b"damaged")  # a damaged cache file is parsed again and rewritten
        fc.stock_forest.cache_clear()
        reparsed = fc.stock_forest()
    finally:
        fc.stock_forest.cache_clear()
    path = fc.stock_model_path()
    parsed = fc.parse_forest(path.read_text(), path)
    for forest in (first, loaded, reparsed):
        for field in dataclasses.fields(fc.Forest):
            a, b = getattr(forest, field.name), getattr(parsed, field.name)
            if field.name == "thresholds":
                assert len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))
            elif isinstance(b, np.ndarray):
                assert a.dtype == b.dtype and np.array_equal(a, b), field.name
            else:
                assert a == b, field.name
    assert np.load(cached)["lut"].shape == parsed.lut.shape


def test_mask_job_imports_neither_s2cloudless_nor_torch():
    """A mask job's start-up: the fast engine's path imports no s2cloudless (LightGBM, scikit-learn, sentinelhub:
    ~1.5 s), no rasterio (boto3 with it: ~0.2 s; shards are .npy) and no torch."""
    code = ("import sys, numpy as np; import hcrlc.data.clouds, hcrlc.logs; from hcrlc.data import fast_cloud as fc;"
            "fc.cloud_masks_from_probabilities(np.zeros((1, 8, 8), np.float32));"
            "print(sorted(m for m in ('s2cloudless', 'lightgbm', 'sklearn', 'torch', 'rasterio') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


# --- the scene mosaic ------------------------------------------------------------------------------------------------
def cut_patches(scene: np.ndarray, size: int, stride: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    grid = (scene.shape[-1] - size) // stride + 1
    rows, cols = (a.ravel() for a in np.meshgrid(np.arange(grid), np.arange(grid), indexing="ij"))
    patches = np.stack([scene[0, :, r * stride:r * stride + size, c * stride:c * stride + size]
                        for r, c in zip(rows, cols)])
    return patches, rows, cols


@needs_kernel
@pytest.mark.parametrize("preset", PRESETS)
def test_scene_masks_equal_per_patch_stock(preset):
    patches, rows, cols = cut_patches(smooth_scene(np.random.default_rng(4), 128), size=64, stride=32)
    keep = np.random.default_rng(5).permutation(len(patches))[:-1]  # shuffled, one patch missing
    patches, rows, cols = patches[keep], rows[keep], cols[keep]
    probs, masks, info = fc.scene_cloud_masks(patches, rows, cols, stride=32, **MASK_PRESETS[preset])
    stock_probs, stock_masks = fc.cloud_masks(patches, **MASK_PRESETS[preset], engine="stock")
    np.testing.assert_allclose(probs, stock_probs, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(masks, stock_masks)
    assert info["fallback"] == 0 and info["patches"] == len(patches)
    assert info["pixels_classified"] == 128 * 128 < info["pixels_in_patches"]


@needs_kernel
def test_scene_patch_that_disagrees_on_its_overlap_falls_back():
    patches, rows, cols = cut_patches(smooth_scene(np.random.default_rng(6), 128), size=64, stride=32)
    tampered = int(np.flatnonzero((rows == 1) & (cols == 1))[0])
    patches[tampered, :, 0, 0] = 9_000  # its corner overlaps the patch at (0, 0), which comes first
    probs, masks, info = fc.scene_cloud_masks(patches, rows, cols, stride=32, **MASK_PRESETS["sen12mscr"])
    assert info["fallback"] == 1 and info["fallback_index"] == [tampered]
    stock_probs, stock_masks = fc.cloud_masks(patches, **MASK_PRESETS["sen12mscr"], engine="stock")
    np.testing.assert_allclose(probs, stock_probs, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(masks, stock_masks)


# --- interface -------------------------------------------------------------------------------------------------------
def test_bad_inputs_say_what_to_do():
    dn = np.zeros((1, 13, 8, 8), dtype=np.uint16)
    with pytest.raises(ValueError, match=r"\(N, 13, H, W\)"):
        fc.cloud_probabilities(dn[0])
    with pytest.raises(ValueError, match="integer DN"):
        fc.cloud_masks(dn.astype(np.float32))
    with pytest.raises(ConfigError, match="engine"):
        fc.cloud_masks(dn, engine="gpu")
    with pytest.raises(ValueError, match="one grid row"):
        fc.scene_cloud_masks(dn, [0, 1], [0], 4)


@needs_kernel
def test_unknown_kernel_and_threads_are_config_errors():
    dn = np.zeros((1, 13, 8, 8), dtype=np.uint16)
    with pytest.raises(ConfigError, match="kernel"):
        fc.cloud_probabilities(dn, kernel="sse9")
    with pytest.raises(ConfigError, match="threads"):
        fc.cloud_probabilities(dn, threads=0)


@needs_kernel
def test_import_compiles_nothing_and_first_use_builds_into_the_cache(tmp_path):
    env = {**os.environ, "HCRLC_CACHE_DIR": str(tmp_path)}
    subprocess.run([sys.executable, "-c", "import hcrlc.data.fast_cloud"], env=env, check=True)
    assert not any(tmp_path.iterdir()), "importing must not compile"
    code = "import hcrlc.data.fast_cloud as fc; lib = fc.kernel_library(); print(lib.path, lib.build_seconds)"
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True).stdout
    path, seconds = out.split()
    assert path.startswith(str(tmp_path)) and os.path.isfile(path) and float(seconds) > 0
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True).stdout
    assert float(out.split()[1]) == 0, "the second process loads the cached library"


def test_every_non_python_file_of_the_package_is_declared_package_data():
    """A non-editable install ships only .py files and declared package data: the kernel's C source must be there."""
    import fnmatch
    from pathlib import Path

    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    src = Path(fc.__file__).parents[2]
    pyproject = tomllib.loads((src.parent / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]
    data = [p for p in (src / "hcrlc").rglob("*") if p.is_file() and p.suffix not in (".py", ".pyc")]
    assert src / "hcrlc" / "data" / "fast_cloud.c" in data
    for path in data:
        package = ".".join(path.parent.relative_to(src).parts)
        assert any(fnmatch.fnmatch(path.name, pat) for pat in patterns.get(package, [])), \
            f"{path} is not in pyproject's [tool.setuptools.package-data] {package!r}"
