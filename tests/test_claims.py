"""The claims table on constructed predictions whose answers are known: a clearly better model supports a claim,
an identical one leaves it inconclusive, a clearly worse one does not support it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from hcrlc.claims import (
    INCONCLUSIVE,
    NOT_SUPPORTED,
    NOT_TESTABLE,
    SUPPORTED,
    claims_table,
    verdict,
    write_claims,
)
from hcrlc.paper import TABLE2

N = 600
LOW_CLOUD = np.arange(N) < N // 2  # half the patches 10 % cloudy, half 90 %


def write(path: Path, *, error: float | tuple[float, float] | None = None, seed: int = 0,
          psnr: float | None = None) -> Path:
    """A predictions.npz whose predictions flip each true label with probability ``error`` (low-, high-cloud
    patches), and/or whose PSNR is about ``psnr`` dB."""
    rng = np.random.default_rng(seed)
    targets = (np.random.default_rng(99).random((N, 10)) < 0.3).astype(np.uint8)
    arrays = {"idx": np.arange(N), "targets": targets,
              "cloud_fraction": np.where(LOW_CLOUD, 0.1, 0.9).astype(np.float32), "model": np.array(path.stem)}
    if error is not None:
        low, high = (error, error) if isinstance(error, float) else error
        flip = rng.random((N, 10)) < np.where(LOW_CLOUD, low, high)[:, None]
        arrays["probs"] = (targets.astype(bool) ^ flip).astype(np.float32)
    if psnr is not None:
        arrays |= {"psnr": rng.normal(psnr, 1.0, N), "ssim": rng.random(N), "ssim_standard": rng.random(N)}
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return path


@pytest.fixture(scope="module")
def known(tmp_path_factory) -> dict[str, list[Path]]:
    d = tmp_path_factory.mktemp("eval")
    runs = {
        "lc_net": write(d / "lc_net.npz", error=(0.05, 0.3), seed=1),  # falls with cloud
        "hcr_net": write(d / "hcr_net.npz", psnr=30.0, seed=2),
        "hcr_lc_equal": write(d / "hcr_lc_equal.npz", error=0.05, psnr=25.0, seed=3),  # flat, better
        "hcr_c_net": write(d / "hcr_c_net.npz", error=0.45, seed=4),  # flat, clearly worse than LC-Net
    }
    # the same classifications as HCR&LC-Net 1:1 (same seed), a better PSNR
    runs["hcr_lc_uncertain"] = write(d / "hcr_lc_uncertain.npz", error=0.05, psnr=28.0, seed=3)
    for fraction in (25, 50, 75, 100):
        runs[f"ssl_on_{fraction}"] = write(d / f"ssl_on_{fraction}.npz", error=0.05, seed=5)
        # without the pretext clearly worse, except at 75 %: the same predictions
        runs[f"ssl_off_{fraction}"] = write(d / f"ssl_off_{fraction}.npz", error=0.05 if fraction == 75 else 0.3,
                                            seed=5)
    return {name: [path] for name, path in runs.items()}


def test_verdicts_of_intervals():
    assert verdict(0.01, 0.2, ">", 0.0) == SUPPORTED
    assert verdict(-0.2, -0.01, ">", 0.0) == NOT_SUPPORTED
    assert verdict(-0.1, 0.1, ">", 0.0) == INCONCLUSIVE
    assert verdict(0.0, 0.0, ">", 0.0) == INCONCLUSIVE  # identical models: no evidence either way
    assert verdict(-0.2, -0.01, "<", 0.0) == SUPPORTED and verdict(0.01, 0.2, "<", 0.0) == NOT_SUPPORTED
    assert verdict(0.95, 1.0, ">=", 0.95) == SUPPORTED and verdict(0.8, 0.94, ">=", 0.95) == NOT_SUPPORTED
    assert verdict(0.9, 1.0, ">=", 0.95) == INCONCLUSIVE
    assert verdict(float("nan"), 0.1, ">", 0.0) == NOT_TESTABLE
    with pytest.raises(ValueError, match="claimed"):
        verdict(0.0, 1.0, "!=", 0.0)


def test_known_answers(known):
    frame = claims_table(known, source="real", n_resamples=400, seed=0)
    rows = {(r.claim_id, r.comparison): r for r in frame.itertuples()}
    expected = {
        ("hcr_beats_lc_net", "HCR&LC-Net 1:1 − LC-Net"): SUPPORTED,
        ("hcr_beats_lc_net", "HCR&LC-Net uncertain − LC-Net"): SUPPORTED,
        ("hcr_beats_lc_net", "HCR-Net + C-Net − LC-Net"): NOT_SUPPORTED,
        ("uncertain_best_f1", "HCR&LC-Net uncertain − LC-Net"): SUPPORTED,
        ("uncertain_best_f1", "HCR&LC-Net uncertain − HCR&LC-Net 1:1"): INCONCLUSIVE,  # identical
        ("uncertain_best_f1", "HCR&LC-Net uncertain − HCR-Net + C-Net"): SUPPORTED,
        ("uncertain_second_psnr", "HCR&LC-Net uncertain − HCR-Net"): SUPPORTED,  # below HCR-Net
        ("uncertain_second_psnr", "HCR&LC-Net uncertain − HCR&LC-Net 1:1"): SUPPORTED,  # above 1:1
        ("pretext_25_reaches_95pct", "ssl_on_25 / ssl_on_100"): SUPPORTED,  # the same F1: ratio 1
        ("pretext_beats_scratch", "ssl_on_25 − ssl_off_25"): SUPPORTED,
        ("pretext_beats_scratch", "ssl_on_50 − ssl_off_50"): SUPPORTED,
        ("pretext_beats_scratch", "ssl_on_75 − ssl_off_75"): INCONCLUSIVE,
        ("pretext_beats_scratch", "ssl_on_100 − ssl_off_100"): SUPPORTED,
        ("lc_net_f1_falls_with_cloud", "LC-Net: less − more cloudy"): SUPPORTED,
        ("hcr_flat_with_cloud", "cloud drop: LC-Net − HCR&LC-Net 1:1"): SUPPORTED,
        ("hcr_flat_with_cloud", "cloud drop: LC-Net − HCR&LC-Net uncertain"): SUPPORTED,
        ("hcr_flat_with_cloud", "cloud drop: LC-Net − HCR-Net + C-Net"): SUPPORTED,
    }
    assert {key: r.verdict for key, r in rows.items()} == expected
    for r in frame.itertuples():
        assert r.lo <= r.effect <= r.hi, r
    identical = rows[("uncertain_best_f1", "HCR&LC-Net uncertain − HCR&LC-Net 1:1")]
    assert (identical.effect, identical.lo, identical.hi) == (0.0, 0.0, 0.0)

    # the sides are the metrics of the predictions, the paper's effect its Table 2 difference
    with np.load(known["lc_net"][0]) as p:
        lc_f1 = f1_score(p["targets"], p["probs"] >= 0.5, average="micro")
        low = p["cloud_fraction"] < 0.5
        drop = (f1_score(p["targets"][low], p["probs"][low] >= 0.5, average="micro")
                - f1_score(p["targets"][~low], p["probs"][~low] >= 0.5, average="micro"))
    row = rows[("hcr_beats_lc_net", "HCR&LC-Net 1:1 − LC-Net")]
    assert row.b == pytest.approx(lc_f1, abs=1e-12) and row.effect == pytest.approx(row.a - row.b)
    assert row.paper == pytest.approx(TABLE2["hcr_lc_equal"]["f1"] - TABLE2["lc_net"]["f1"])
    assert rows[("lc_net_f1_falls_with_cloud", "LC-Net: less − more cloudy")].effect == pytest.approx(drop)
    assert rows[("pretext_25_reaches_95pct", "ssl_on_25 / ssl_on_100")].paper == 0.95
    assert (frame["source"] == "real").all() and (frame["n_test"] == N).all()


def test_synthetic_labels_and_missing_runs(known, tmp_path):
    fewer = {name: paths for name, paths in known.items() if name not in ("ssl_on_25", "ssl_off_25", "ssl_off_50")}
    out_csv, out_md = tmp_path / "claims.csv", tmp_path / "claims.md"
    frame = write_claims(fewer, out_csv, out_md, source="synthetic", config_hash="abc", fractions=[25, 100],
                         n_resamples=200)
    assert frame["verdict"].str.endswith(" (synthetic)").all()
    pretext = frame[frame["claim_id"] == "pretext_25_reaches_95pct"].iloc[0]
    assert pretext["verdict"] == f"{NOT_TESTABLE} (synthetic)" and "ssl_on_25" in pretext["note"]
    # only the configured fractions; 50 % is not asked for
    scratch = frame[frame["claim_id"] == "pretext_beats_scratch"]
    assert scratch["comparison"].tolist() == ["ssl_on_25 − ssl_off_25", "ssl_on_100 − ssl_off_100"]
    assert scratch["verdict"].tolist() == [f"{NOT_TESTABLE} (synthetic)", f"{SUPPORTED} (synthetic)"]
    assert pd.read_csv(out_csv)["verdict"].tolist() == frame["verdict"].tolist()
    md = out_md.read_text()
    assert "**synthetic**" in md and "`abc`" in md and "200 resamples" in md
    assert md.count("(synthetic)**") == len(frame)  # every verdict, in the table's rows
    assert "| HCR&LC-Net 1:1 − LC-Net | > 0 |" in md
