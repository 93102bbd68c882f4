"""Trivial baselines against independent computations: the best constant class set by brute force over all
2^10 subsets with scikit-learn, the cloudy-input PSNR/SSIM with scikit-image straight from the GeoTIFFs."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest
import rasterio
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from sklearn.metrics import f1_score, precision_score, recall_score
from test_data_stage import run_stage

from hcrlc.baselines import (
    best_constant_classes,
    cloudy_input_baseline,
    constant_micro_f1,
    constant_prediction_baseline,
)
from hcrlc.metrics import METRIC_KEYS
from hcrlc.paper import CLASSES, TARGET_COLUMNS


def brute_force_best_f1(targets: np.ndarray) -> tuple[float, list[tuple[int, ...]]]:
    """The highest micro-F1 of any constant class set, and every set that reaches it (scikit-learn)."""
    n, c = targets.shape
    scores = {}
    for subset in itertools.chain.from_iterable(itertools.combinations(range(c), k) for k in range(c + 1)):
        pred = np.zeros((n, c), dtype=int)
        pred[:, list(subset)] = 1
        scores[subset] = f1_score(targets, pred, average="micro", zero_division=0)
    best = max(scores.values())
    return best, [s for s, v in scores.items() if v >= best - 1e-12]


@pytest.mark.parametrize("seed", range(6))
def test_best_constant_set_equals_brute_force_over_all_subsets(seed) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 60))
    frequency = rng.random(10) ** rng.uniform(0.5, 3)  # from nearly all to nearly none per class
    frequency[rng.integers(10)] = 0.0  # a class that never occurs
    targets = (rng.random((n, 10)) < frequency).astype(int)
    if seed == 5:
        targets[:, 3] = targets[:, 4]  # two equally frequent classes: ties are broken by class index
    chosen = best_constant_classes(targets)
    best, argmax = brute_force_best_f1(targets)
    pred = np.broadcast_to(chosen.astype(int), targets.shape)
    assert f1_score(targets, pred, average="micro", zero_division=0) == pytest.approx(best, abs=1e-12)
    assert constant_micro_f1(targets, chosen) == pytest.approx(best, abs=1e-12)
    assert tuple(np.flatnonzero(chosen)) in argmax
    if len(argmax) == 1:
        assert tuple(np.flatnonzero(chosen)) == argmax[0]


def test_best_constant_set_edge_cases() -> None:
    assert not best_constant_classes(np.zeros((4, 10))).any()  # no positive label: predict nothing (F1 0)
    assert best_constant_classes(np.ones((4, 10))).all()
    with pytest.raises(ValueError, match="N > 0"):
        best_constant_classes(np.zeros((0, 10)))


@pytest.fixture(scope="module")
def packed(tiny_tree_master, tmp_path_factory) -> dict:
    ms, cr, _ = tiny_tree_master
    work = tmp_path_factory.mktemp("packed")
    index, _ = run_stage(ms, cr, work)
    index.to_parquet(work / "index.parquet")
    return {"index_path": work / "index.parquet", "shards_dir": work / "shards", "masks_dir": work / "masks"}


def test_constant_prediction_is_chosen_on_train_and_scored_on_test(packed, tmp_path) -> None:
    metrics = constant_prediction_baseline(packed["index_path"], tmp_path)
    index = pd.read_parquet(packed["index_path"])
    train = index[index.split == "train"][list(TARGET_COLUMNS)].to_numpy(dtype=int)
    test = index[index.split == "test"].reset_index(drop=True)
    y_test = test[list(TARGET_COLUMNS)].to_numpy(dtype=int)

    best, argmax = brute_force_best_f1(train)
    chosen = tuple(CLASSES.index(name) for name in metrics["classes"])
    assert chosen in argmax and metrics["train_f1"] == pytest.approx(best, abs=1e-12)
    pred = np.zeros_like(y_test)
    pred[:, list(chosen)] = 1
    expected = {
        "precision": precision_score(y_test, pred, average="micro", zero_division=0),
        "recall": recall_score(y_test, pred, average="micro", zero_division=0),
        "f1": f1_score(y_test, pred, average="micro", zero_division=0),
        "f1_macro": f1_score(y_test, pred, average="macro", zero_division=0),
        "f1_samples": f1_score(y_test, pred, average="samples", zero_division=0),
    }
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk == metrics
    assert set(METRIC_KEYS) <= set(on_disk)
    for key, value in expected.items():
        assert on_disk[key] == pytest.approx(value, abs=1e-12), key
    assert on_disk["psnr"] is None and on_disk["ssim"] is None and on_disk["ssim_standard"] is None
    assert on_disk["n_test"] == len(test) and on_disk["baseline"] == "constant_prediction"
    assert "training split" in on_disk["definitions"]["baseline"]

    with np.load(tmp_path / "predictions.npz") as p:
        assert set(p.files) == {"idx", "targets", "cloud_fraction", "probs", "model"}
        assert np.array_equal(p["idx"], np.arange(len(test)))
        assert np.array_equal(p["targets"], y_test)
        assert np.array_equal(p["probs"] >= 0.5, pred.astype(bool))
        assert np.allclose(p["cloud_fraction"], test["cloud_fraction"])
        assert str(p["model"]) == "constant_prediction"


def read_prepared_s2(path: str) -> np.ndarray:
    """(13, H, W) reflectance in [0, 1] as the authors prepare it, read straight from the GeoTIFF."""
    with rasterio.open(path) as src:
        return np.clip(src.read().astype(np.float64), 0, 10_000) / 10_000


def test_cloudy_input_scores_equal_scikit_image_on_the_geotiffs(packed, tmp_path) -> None:
    metrics = cloudy_input_baseline(**packed, out_dir=tmp_path, batch_size=2, device="cpu", progress=False)
    test = pd.read_parquet(packed["index_path"]).query("split == 'test'").reset_index(drop=True)
    assert len(test) >= 2
    psnr, ssim, ssim_standard = [], [], []
    for row in test.itertuples():
        cloudy, clear = read_prepared_s2(row.s2_cloudy), read_prepared_s2(row.s2)
        psnr.append(peak_signal_noise_ratio(clear, cloudy, data_range=1))
        ssim.append(structural_similarity(clear, cloudy, data_range=2))
        ssim_standard.append(structural_similarity(clear, cloudy, channel_axis=0, gaussian_weights=True,
                                                   sigma=1.5, use_sample_covariance=False, data_range=1))
    assert np.isfinite(psnr).all()  # no patch's cloudy image equals its clear one here
    with np.load(tmp_path / "predictions.npz") as p:
        assert set(p.files) == {"idx", "targets", "cloud_fraction", "psnr", "ssim", "ssim_standard", "model"}
        assert np.allclose(p["psnr"], psnr, atol=1e-4)  # the shards hold the files' values exactly; float32 x
        assert np.allclose(p["ssim"], ssim, atol=1e-5)
        assert np.allclose(p["ssim_standard"], ssim_standard, atol=1e-5)
        assert np.array_equal(p["targets"], test[list(TARGET_COLUMNS)].to_numpy(dtype=np.uint8))
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk == metrics and set(METRIC_KEYS) <= set(on_disk)
    assert on_disk["psnr"] == pytest.approx(np.mean(psnr), abs=1e-4)
    assert on_disk["ssim"] == pytest.approx(np.mean(ssim), abs=1e-5)
    assert on_disk["ssim_standard"] == pytest.approx(np.mean(ssim_standard), abs=1e-5)
    assert all(on_disk[k] is None for k in ("precision", "recall", "f1", "f1_macro", "f1_samples"))
    assert on_disk["baseline"] == "cloudy_input" and "cloudy S2" in on_disk["definitions"]["baseline"]
