"""BCE, CARL and the loss weightings against values computed by hand and with numpy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hcrlc.errors import ConfigError
from hcrlc.losses import EqualWeighting, UncertaintyWeighting, bce_loss, carl_loss, make_weighting


def test_bce_matches_the_formula() -> None:
    logits = torch.tensor([[0.0, 2.0], [-1.0, 3.0]])
    targets = torch.tensor([[True, False], [False, True]])
    z, y = logits.numpy().astype(np.float64), targets.numpy().astype(np.float64)
    p = 1 / (1 + np.exp(-z))
    expected = -(y * np.log(p) + (1 - y) * np.log(1 - p)).mean()
    assert bce_loss(logits, targets).item() == pytest.approx(expected, rel=1e-6)
    assert bce_loss(torch.zeros(1, 1), torch.ones(1, 1)).item() == pytest.approx(math.log(2), rel=1e-6)


def test_bce_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="same shape"):
        bce_loss(torch.zeros(2, 10), torch.zeros(2, 9))


def _constant(value: float, n: int = 1, size: int = 2) -> torch.Tensor:
    return torch.full((n, 13, size, size), value)


@pytest.mark.parametrize(
    ("mask_value", "lam", "expected"),
    [
        (1.0, 1.0, 0.5 + 0.5),  # all cloud: |P-T| = 0.5, plus λ·0.5
        (0.0, 1.0, 0.3 + 0.5),  # no cloud: |P-I| = 0.3, plus λ·0.5
        (1.0, 0.0, 0.5),
        (0.0, 0.0, 0.3),
        (0.0, 2.0, 0.3 + 2 * 0.5),
    ],
)
def test_carl_by_hand_for_uniform_masks(mask_value: float, lam: float, expected: float) -> None:
    pred, clear, cloudy = _constant(0.5), _constant(0.0), _constant(0.8)
    mask = torch.full((1, 1, 2, 2), mask_value)
    assert carl_loss(pred, clear, cloudy, mask, lam=lam).item() == pytest.approx(expected, rel=1e-6)


def test_carl_by_hand_for_half_cloudy_mask() -> None:
    pred, clear, cloudy = _constant(0.5), _constant(0.0), _constant(0.8)
    mask = torch.tensor([[[True, False], [False, True]]])  # (N, H, W), bool
    assert carl_loss(pred, clear, cloudy, mask).item() == pytest.approx(0.5 * 0.5 + 0.5 * 0.3 + 0.5, rel=1e-6)


def test_carl_matches_numpy_on_random_data() -> None:
    rng = np.random.default_rng(0)
    p, t, i = (rng.random((2, 13, 5, 4)) for _ in range(3))
    m = (rng.random((2, 1, 5, 4)) > 0.5).astype(np.float64)
    m_full = np.repeat(m, 13, axis=1)  # the authors repeat the mask over the bands
    expected = (m_full * np.abs(p - t) + (1 - m_full) * np.abs(p - i)).mean() + 0.7 * np.abs(p - t).mean()
    args = [torch.from_numpy(a).float() for a in (p, t, i)]
    got = carl_loss(*args, torch.from_numpy(m).float(), lam=0.7)
    got_3d = carl_loss(*args, torch.from_numpy(m[:, 0] > 0), lam=0.7)
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(expected, rel=1e-6)
    assert got_3d.item() == pytest.approx(expected, rel=1e-6)


def test_carl_gradient_pulls_to_target_on_clouds_and_to_input_elsewhere() -> None:
    pred = _constant(0.5).requires_grad_(True)
    clear, cloudy = _constant(0.0), _constant(0.8)
    mask = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    carl_loss(pred, clear, cloudy, mask, lam=0.0).backward()
    n = pred.numel()
    assert pred.grad[0, :, 0, 0].tolist() == pytest.approx([1 / n] * 13)  # d|P-T|/dP = +1 (P > T)
    assert pred.grad[0, :, 1, 1].tolist() == pytest.approx([-1 / n] * 13)  # d|P-I|/dP = -1 (P < I)


def test_carl_rejects_bad_shapes() -> None:
    x = _constant(0.0)
    with pytest.raises(ValueError, match="x\\[:, :13\\]"):
        carl_loss(x, x, torch.zeros(1, 15, 2, 2), torch.zeros(1, 2, 2))
    with pytest.raises(ValueError, match="mask"):
        carl_loss(x, x, x, torch.zeros(1, 13, 2, 2))


def test_equal_weighting_is_the_sum() -> None:
    assert EqualWeighting()(torch.tensor(0.25), torch.tensor(1.5)).item() == pytest.approx(1.75)
    assert list(EqualWeighting().parameters()) == []


def test_uncertainty_weighting_starts_at_zero_and_follows_the_authors_form() -> None:
    w = UncertaintyWeighting()
    assert [p.item() for p in w.parameters()] == [0.0, 0.0]
    l_cls, l_carl = torch.tensor(0.6), torch.tensor(0.2)
    assert w(l_cls, l_carl).item() == pytest.approx(0.6 + 0.5 * 0.2)
    with torch.no_grad():
        w.log_var_cls.fill_(math.log(2.0))
        w.log_var_carl.fill_(math.log(4.0))
    expected = 0.6 / 2 + 0.5 * math.log(2) + 0.5 * 0.2 / 4 + 0.5 * math.log(4)
    assert w(l_cls, l_carl).item() == pytest.approx(expected, rel=1e-6)


def test_uncertainty_weighting_gradients() -> None:
    w = UncertaintyWeighting()
    w(torch.tensor(0.6), torch.tensor(0.2)).backward()
    assert w.log_var_cls.grad.item() == pytest.approx(-0.6 + 0.5)  # d/da (e^-a L + a/2) at a = 0
    assert w.log_var_carl.grad.item() == pytest.approx(-0.5 * 0.2 + 0.5)


def test_make_weighting() -> None:
    assert isinstance(make_weighting("hcr_lc_equal"), EqualWeighting)
    assert isinstance(make_weighting("hcr_lc_uncertain"), UncertaintyWeighting)
    assert all(make_weighting(name) is None for name in ("lc_net", "hcr_net", "hcr_c_net"))
    with pytest.raises(ConfigError, match="unknown model"):
        make_weighting("hcr_lc")
