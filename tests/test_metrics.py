"""The metrics equal the reference library calls the authors made (scikit-learn, scikit-image)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from sklearn.metrics import f1_score, precision_score, recall_score

from hcrlc.metrics import (
    classification_metrics,
    mean_finite,
    micro_f1,
    psnr_per_image,
    reconstruction_metrics,
    ssim_as_coded,
    ssim_standard,
)

torch.set_num_threads(1)


def sklearn_reference(probs: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    pred = (probs >= 0.5).astype(int)
    true = targets.astype(int)
    return {
        "precision": precision_score(true, pred, average="micro", zero_division=0),
        "recall": recall_score(true, pred, average="micro", zero_division=0),
        "f1": f1_score(true, pred, average="micro", zero_division=0),
        "f1_macro": f1_score(true, pred, average="macro", zero_division=0),
        "f1_samples": f1_score(true, pred, average="samples", zero_division=0),
    }


def ssim_coded_reference(pred: np.ndarray, target: np.ndarray) -> float:
    return structural_similarity(target.astype(np.float64), pred.astype(np.float64), data_range=2)


def ssim_standard_reference(pred: np.ndarray, target: np.ndarray) -> float:
    return structural_similarity(target.astype(np.float64), pred.astype(np.float64), channel_axis=0,
                                 gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1)


def psnr_reference(pred: np.ndarray, target: np.ndarray) -> float:
    return peak_signal_noise_ratio(target.astype(np.float64), pred.astype(np.float64), data_range=1)


def assert_scores_equal(ours: dict[str, float], reference: dict[str, float]) -> None:
    assert set(ours) == set(reference)
    for key, value in reference.items():
        assert ours[key] == pytest.approx(value, abs=1e-12), key


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_classification_equals_sklearn_on_random_inputs(seed: int) -> None:
    rng = np.random.default_rng(seed)
    probs = rng.random((200, 10)).astype(np.float32)
    targets = rng.random((200, 10)) < 0.3
    assert_scores_equal(classification_metrics(probs, targets), sklearn_reference(probs, targets))
    assert micro_f1(probs, targets) == pytest.approx(sklearn_reference(probs, targets)["f1"], abs=1e-12)


def test_classification_edge_cases() -> None:
    rng = np.random.default_rng(5)
    targets = rng.random((40, 10)) < 0.3
    targets[:5] = False  # empty label rows
    targets[:, 7] = False  # a class that never occurs
    probs = rng.random((40, 10))
    assert_scores_equal(classification_metrics(probs, targets), sklearn_reference(probs, targets))

    none_predicted = classification_metrics(np.zeros((40, 10)), targets)
    assert none_predicted["precision"] == none_predicted["recall"] == none_predicted["f1"] == 0.0
    assert_scores_equal(none_predicted, sklearn_reference(np.zeros((40, 10)), targets))

    perfect = classification_metrics(targets.astype(np.float32), targets)
    assert perfect["precision"] == perfect["recall"] == perfect["f1"] == 1.0
    assert_scores_equal(perfect, sklearn_reference(targets.astype(np.float64), targets))

    # the threshold is inclusive: sigmoid exactly 0.5 predicts the class [A]
    half = classification_metrics(np.full((2, 10), 0.5), np.ones((2, 10)))
    assert half["f1"] == 1.0


def test_classification_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="must both be"):
        classification_metrics(np.zeros((3, 10)), np.zeros((3, 9)))
    with pytest.raises(ValueError, match="at least one sample"):
        classification_metrics(np.zeros((0, 10)), np.zeros((0, 10)))


def noisy_pair(seed: int, shape=(3, 13, 40, 36), noise=0.15) -> tuple[np.ndarray, np.ndarray]:
    """A target in [0, 1] and an unbounded prediction (some values outside [0, 1], as a network gives)."""
    rng = np.random.default_rng(seed)
    target = rng.random(shape).astype(np.float32)
    pred = (target + noise * rng.standard_normal(shape)).astype(np.float32)
    return pred, target


@pytest.mark.parametrize("seed", [0, 1])
def test_image_metrics_equal_skimage_per_image(seed: int) -> None:
    pred, target = noisy_pair(seed)
    assert pred.min() < 0 and pred.max() > 1  # not clipped, as the authors' call
    got = reconstruction_metrics(torch.from_numpy(pred), torch.from_numpy(target))
    for i in range(pred.shape[0]):
        assert got["psnr"][i] == pytest.approx(psnr_reference(pred[i], target[i]), abs=1e-9)
        assert got["ssim"][i] == pytest.approx(ssim_coded_reference(pred[i], target[i]), abs=1e-9)
        assert got["ssim_standard"][i] == pytest.approx(ssim_standard_reference(pred[i], target[i]), abs=1e-9)
        # the single-image forms and numpy inputs give the same floats
        assert psnr_per_image(pred[i], target[i]) == pytest.approx(got["psnr"][i], abs=1e-12)
        assert ssim_as_coded(pred[i], target[i]) == pytest.approx(got["ssim"][i], abs=1e-12)
        assert ssim_standard(pred[i], target[i]) == pytest.approx(got["ssim_standard"][i], abs=1e-12)


def test_image_metrics_chunking_does_not_change_values() -> None:
    pred, target = noisy_pair(3, shape=(5, 13, 24, 24))
    one = ssim_as_coded(pred, target, chunk=1)
    assert np.allclose(one, ssim_as_coded(pred, target, chunk=4), atol=1e-14, rtol=0)
    assert np.allclose(ssim_standard(pred, target, chunk=1), ssim_standard(pred, target, chunk=3), atol=1e-14,
                       rtol=0)


def test_the_two_ssims_differ_and_match_their_definitions_on_structured_images() -> None:
    # smooth images with band-to-band structure: where the 3-D window and data range 2 matter
    yy, xx = np.mgrid[0:32, 0:32] / 32.0
    target = np.stack([0.5 + 0.4 * np.sin(6 * xx + b) * np.cos(4 * yy) for b in range(13)])
    pred = np.clip(target + 0.05 * np.cos(9 * yy)[None], 0, 1)
    coded, standard = ssim_as_coded(pred, target), ssim_standard(pred, target)
    assert coded == pytest.approx(ssim_coded_reference(pred, target), abs=1e-9)
    assert standard == pytest.approx(ssim_standard_reference(pred, target), abs=1e-9)
    assert abs(coded - standard) > 1e-3


def test_identical_images() -> None:
    _, target = noisy_pair(4, shape=(2, 13, 16, 16))
    assert np.all(np.isposinf(psnr_per_image(target, target)))
    assert np.allclose(ssim_as_coded(target, target), 1.0, atol=1e-12)
    assert np.allclose(ssim_standard(target, target), 1.0, atol=1e-12)
    with np.errstate(divide="ignore"):
        assert np.isposinf(peak_signal_noise_ratio(target[0], target[0], data_range=1))


def test_mean_finite_leaves_out_infinite_psnr() -> None:
    assert mean_finite(np.array([20.0, np.inf, 30.0])) == (25.0, 1)
    assert mean_finite(np.array([np.inf])) == (None, 1)
    assert mean_finite(np.array([10.0, 12.0])) == (11.0, 0)


def test_image_metrics_reject_bad_shapes() -> None:
    with pytest.raises(ValueError, match="differ in shape"):
        psnr_per_image(np.zeros((13, 8, 8)), np.zeros((13, 8, 9)))
    with pytest.raises(ValueError, match="at least 7"):
        ssim_as_coded(np.zeros((4, 16, 16)), np.zeros((4, 16, 16)))  # fewer than 7 bands
    with pytest.raises(ValueError, match="at least 11"):
        ssim_standard(np.zeros((13, 8, 8)), np.zeros((13, 8, 8)))
    with pytest.raises(ValueError, match="one image"):
        psnr_per_image(np.zeros((8, 8)), np.zeros((8, 8)))
