"""Evaluation of tiny, randomly initialised networks: files, contract keys, values against reference calls."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from sklearn.metrics import f1_score, precision_score, recall_score
from torch.utils.data import Dataset

from hcrlc.errors import ConfigError, DataError
from hcrlc.evaluation import METRIC_KEYS, choose_fig3_examples, evaluate
from hcrlc.models import build_model

torch.set_num_threads(1)

TINY = {"widths": [4, 8, 16], "cls_widths": [8]}
SIZE = 64
N = 7


class ItemDataset(Dataset):
    """Samples in the TripletDataset item format, generated in memory."""

    def __init__(self, n: int, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.s2 = torch.rand(n, 13, SIZE, SIZE, generator=g)
        cloud = torch.rand(n, 1, SIZE, SIZE, generator=g) < torch.linspace(0, 1, n)[:, None, None, None]
        cloudy = torch.where(cloud, 0.8 + 0.2 * torch.rand(n, 13, SIZE, SIZE, generator=g), self.s2)
        self.x = torch.cat([cloudy, torch.randn(n, 2, SIZE, SIZE, generator=g)], dim=1)
        self.mask = cloud.float()
        self.y = (torch.rand(n, 10, generator=g) < 0.3).float()
        self.cf = self.mask.mean(dim=(1, 2, 3))

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"x": self.x[i], "s2": self.s2[i], "mask": self.mask[i], "y": self.y[i],
                "cloud_fraction": self.cf[i], "idx": torch.tensor(i, dtype=torch.int64)}


def tiny_model(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(name, TINY, patch_size=SIZE)


@pytest.fixture(scope="module")
def dataset() -> ItemDataset:
    return ItemDataset(N)


def test_evaluate_both_heads_matches_reference_calls(dataset, tmp_path) -> None:
    model = tiny_model("hcr_lc_uncertain")
    model.train()
    metrics = evaluate(model, dataset, tmp_path, batch_size=3, model_name="hcr_lc_uncertain",
                       example_rows=[5, 1], progress=False)
    assert model.training  # the caller's mode is restored

    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk == metrics
    assert list(on_disk) == [*METRIC_KEYS, "definitions"]
    assert "as the authors coded" in on_disk["definitions"]["ssim"]
    assert "Gaussian" in on_disk["definitions"]["ssim_standard"]
    assert on_disk["n_test"] == N

    model.eval()
    with torch.no_grad():
        out = model(dataset.x)
    probs = torch.sigmoid(out["logits"]).numpy()
    recon = out["recon"].numpy().astype(np.float64)
    target = dataset.s2.numpy().astype(np.float64)
    true, pred = dataset.y.numpy().astype(int), (probs >= 0.5).astype(int)
    for key, score, average in (("precision", precision_score, "micro"), ("recall", recall_score, "micro"),
                                ("f1", f1_score, "micro"), ("f1_macro", f1_score, "macro"),
                                ("f1_samples", f1_score, "samples")):
        assert metrics[key] == pytest.approx(score(true, pred, average=average, zero_division=0)), key
    psnr = [peak_signal_noise_ratio(target[i], recon[i], data_range=1) for i in range(N)]
    ssim = [structural_similarity(target[i], recon[i], data_range=2) for i in range(N)]
    ssim_std = [structural_similarity(target[i], recon[i], data_range=1, channel_axis=0,
                                      gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
                for i in range(N)]
    assert metrics["psnr"] == pytest.approx(np.mean(psnr), abs=1e-5)
    assert metrics["ssim"] == pytest.approx(np.mean(ssim), abs=1e-6)
    assert metrics["ssim_standard"] == pytest.approx(np.mean(ssim_std), abs=1e-6)

    with np.load(tmp_path / "predictions.npz") as p:
        assert set(p.files) == {"idx", "targets", "cloud_fraction", "probs", "psnr", "ssim", "ssim_standard",
                                "model"}
        assert str(p["model"]) == "hcr_lc_uncertain"
        assert p["idx"].tolist() == list(range(N))
        assert np.array_equal(p["targets"], true)
        assert np.allclose(p["cloud_fraction"], dataset.cf.numpy())
        assert np.allclose(p["probs"], probs, atol=1e-5)
        assert np.allclose(p["psnr"], psnr, atol=1e-4)
        assert np.allclose(p["ssim"], ssim, atol=1e-6)

    with np.load(tmp_path / "examples.npz") as e:
        assert e["rows"].tolist() == [5, 1]
        assert e["recon"].dtype == np.float16 and e["recon"].shape == (2, 13, SIZE, SIZE)
        assert np.allclose(e["recon"].astype(np.float32), recon[[5, 1]], atol=2e-3, rtol=2e-3)
    assert sorted(q.name for q in tmp_path.iterdir()) == ["examples.npz", "metrics.json", "predictions.npz"]


@pytest.mark.parametrize(("name", "null_keys", "absent"), [
    ("lc_net", ("psnr", "ssim", "ssim_standard"), {"psnr", "ssim", "ssim_standard"}),
    ("hcr_net", ("precision", "recall", "f1", "f1_macro", "f1_samples"), {"probs"}),
])
def test_missing_outputs_are_null(dataset, tmp_path, name, null_keys, absent) -> None:
    metrics = evaluate(tiny_model(name), dataset, tmp_path, batch_size=4, model_name=name, progress=False)
    assert list(metrics) == [*METRIC_KEYS, "definitions"]
    for key in METRIC_KEYS:
        assert (metrics[key] is None) == (key in null_keys), key
    with np.load(tmp_path / "predictions.npz") as p:
        assert not absent & set(p.files)
    assert not (tmp_path / "examples.npz").exists()


def test_example_rows_need_a_reconstruction_and_valid_rows(dataset, tmp_path) -> None:
    with pytest.raises(ConfigError, match="no 'recon'"):
        evaluate(tiny_model("lc_net"), dataset, tmp_path, batch_size=4, model_name="lc_net", example_rows=[0],
                 progress=False)
    with pytest.raises(ConfigError, match="distinct rows"):
        evaluate(tiny_model("hcr_net"), dataset, tmp_path, batch_size=4, model_name="hcr_net",
                 example_rows=[0, N], progress=False)
    with pytest.raises(DataError, match="no test samples"):
        evaluate(tiny_model("hcr_net"), ItemDataset(0), tmp_path, batch_size=4, model_name="hcr_net",
                 progress=False)
    assert list(tmp_path.iterdir()) == []


def test_choose_fig3_examples_is_deterministic_and_spread() -> None:
    rng = np.random.default_rng(0)
    cloud = np.concatenate([rng.random(300), np.ones(300)])  # many fully cloudy patches, as in SEN12MS-CR
    rows = choose_fig3_examples(cloud, 5, seed=1)
    assert np.array_equal(rows, choose_fig3_examples(cloud, 5, seed=1))
    assert len(set(rows.tolist())) == 5 and rows.dtype == np.int64
    levels = cloud[rows]
    assert np.all(np.diff(levels) >= 0)
    assert np.allclose(levels, [0.1, 0.3, 0.5, 0.7, 0.9], atol=0.05)
    assert not np.array_equal(rows, choose_fig3_examples(cloud, 5, seed=2))
    assert choose_fig3_examples(cloud[:3], 3, seed=0).tolist() == sorted(range(3), key=lambda r: cloud[r])
    with pytest.raises(ValueError, match="cannot choose"):
        choose_fig3_examples(cloud[:3], 4, seed=0)
