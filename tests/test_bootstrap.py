"""Bootstrap intervals over test patches (hcrlc.bootstrap) against scipy.stats.bootstrap and the evaluation's own
metrics."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from hcrlc.bootstrap import (
    classification_counts,
    metric_values,
    percentile_interval,
    read_aligned,
    resample_counts,
)
from hcrlc.errors import DataError
from hcrlc.metrics import summarise_test_metrics

N, B = 80, 400


def predictions(seed: int, n: int = N) -> dict[str, np.ndarray]:
    """One model's per-patch outputs as evaluate writes them: both heads, one image predicted exactly."""
    rng = np.random.default_rng(seed)
    targets = (np.random.default_rng(0).random((n, 10)) < 0.3).astype(np.uint8)
    psnr = rng.normal(25.0, 3.0, n)
    psnr[3] = np.inf
    return {"idx": np.arange(n), "targets": targets, "cloud_fraction": np.random.default_rng(0).random(n),
            "probs": (0.35 * targets + 0.6 * rng.random((n, 10))).astype(np.float32),  # errors both ways
            "psnr": psnr, "ssim": rng.random(n), "ssim_standard": rng.random(n)}


def micro(metric: str):
    """The micro metric from per-patch (tp, fp, fn), vectorised over the last axis, as scipy calls it."""
    def statistic(tp, fp, fn, axis=-1):
        tp, fp, fn = tp.sum(axis), fp.sum(axis), fn.sum(axis)
        return {"precision": tp / (tp + fp), "recall": tp / (tp + fn), "f1": 2 * tp / (2 * tp + fp + fn)}[metric]
    return statistic


def finite_mean(values, axis=-1):
    finite = np.isfinite(values)
    return np.where(finite, values, 0).sum(axis) / finite.sum(axis)


@pytest.mark.parametrize("metric", ["precision", "recall", "f1", "psnr", "ssim"])
def test_interval_equals_scipy_percentile_bootstrap_on_the_same_seed(metric):
    pred = predictions(1)
    if metric in ("psnr", "ssim"):
        data, statistic = (pred[metric],), finite_mean
    else:
        c = classification_counts(pred["probs"], pred["targets"])
        data, statistic = (c["tp"], c["fp"], c["fn"]), micro(metric)
    # scipy draws rng.integers(0, n, (B, n)) from the generator, as resample_counts does: the same resamples
    ref = stats.bootstrap(data, statistic, paired=True, vectorized=True, method="percentile", n_resamples=B,
                          rng=np.random.default_rng(5))
    lo, hi, left_out = percentile_interval(metric_values(resample_counts(N, B, 5), [pred], metric))
    assert left_out == 0
    assert (lo, hi) == pytest.approx(tuple(ref.confidence_interval), abs=1e-12)
    assert hi - lo > 0.01  # an interval that could differ


def test_paired_difference_equals_scipy_paired_bootstrap():
    a, b = predictions(1), predictions(2)
    ca, cb = (classification_counts(p["probs"], p["targets"]) for p in (a, b))
    f1 = micro("f1")

    def difference(tpa, fpa, fna, tpb, fpb, fnb, axis=-1):
        return f1(tpa, fpa, fna, axis) - f1(tpb, fpb, fnb, axis)

    ref = stats.bootstrap((ca["tp"], ca["fp"], ca["fn"], cb["tp"], cb["fp"], cb["fn"]), difference, paired=True,
                          vectorized=True, method="percentile", n_resamples=B, rng=np.random.default_rng(9))
    weights = resample_counts(N, B, 9)
    ours = metric_values(weights, [a], "f1") - metric_values(weights, [b], "f1")
    assert percentile_interval(ours)[:2] == pytest.approx(tuple(ref.confidence_interval), abs=1e-12)
    # paired: narrower than the two models' intervals drawn independently would make it
    independent = metric_values(weights, [a], "f1") - metric_values(resample_counts(N, B, 10), [b], "f1")
    assert np.std(ours) < np.std(independent)


def test_values_on_the_test_split_equal_the_evaluations_metrics():
    pred = predictions(3)
    expected = summarise_test_metrics(pred, N)
    for metric in ("precision", "recall", "f1", "psnr", "ssim", "ssim_standard"):
        assert float(metric_values(np.ones(N), [pred], metric)) == pytest.approx(expected[metric], abs=1e-12)


def test_resample_counts_are_seeded_draws_of_every_patch():
    counts = resample_counts(N, B, 0)
    assert counts.shape == (B, N) and (counts.sum(axis=1) == N).all()
    assert np.array_equal(counts, resample_counts(N, B, 0))
    assert not np.array_equal(counts, resample_counts(N, B, 1))
    assert 0.55 < (counts > 0).mean() < 0.72  # a resample holds 1 - 1/e of the patches


def test_several_seeds_average_on_the_same_resamples_and_subsets_can_be_empty():
    a, b = predictions(1), predictions(2)
    weights = resample_counts(N, B, 0)
    both = metric_values(weights, [a, b], "f1")
    assert np.allclose(both, (metric_values(weights, [a], "f1") + metric_values(weights, [b], "f1")) / 2)
    one_patch = np.arange(N) == 7
    values = metric_values(weights, [a], "f1", one_patch)
    missing = (weights[:, 7] == 0).sum()
    assert np.isnan(values).sum() == missing > 0
    lo, hi, left_out = percentile_interval(values)
    assert left_out == missing and lo <= hi
    assert percentile_interval(np.full(5, np.nan))[2] == 5


def test_read_aligned_refuses_predictions_of_other_test_patches(tmp_path):
    paths = {}
    for name, n in (("lc_net", N), ("hcr_net", N - 1)):
        paths[name] = [tmp_path / f"{name}.npz"]
        np.savez(paths[name][0], **predictions(1, n))
    shuffled = predictions(1)
    order = np.random.default_rng(0).permutation(N)
    np.savez(tmp_path / "shuffled.npz", **{k: v[order] for k, v in shuffled.items()})
    loaded = read_aligned({"lc_net": paths["lc_net"], "again": [tmp_path / "shuffled.npz"]})
    assert np.array_equal(loaded["again"][0]["probs"], loaded["lc_net"][0]["probs"])  # sorted by idx
    with pytest.raises(DataError, match="other test patches"):
        read_aligned(paths)
    with pytest.raises(DataError, match="predictions missing"):
        read_aligned({"x": [tmp_path / "nope.npz"]})
