"""Table 1 from the config's model sizes, without training or allocating weights; Table 2 from metrics."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import DEMO_MODEL as SMALL  # the demo's scale model: depth 1, a 5-pool C-Net
from conftest import DEMO_PATCH
from hcrlc.errors import DataError
from hcrlc.evaluation import METRIC_KEYS
from hcrlc.models import learnable_parameters
from hcrlc.paper import PATCH_SIZE, TABLE1_PARAMS, TABLE2
from hcrlc.tables import table1, table2, table2_markdown, write_table1, write_table2


def test_table1_with_default_sizes_matches_the_paper_quickly() -> None:
    start = time.perf_counter()
    frame = table1({}, PATCH_SIZE)
    elapsed = time.perf_counter() - start
    assert list(frame.columns) == ["model", "ours", "paper", "match", "patch_px"]
    assert frame["model"].tolist() == ["lc_net", "hcr_lc", "hcr_c_net"]
    assert frame["ours"].tolist() == [103_851_050, 106_899_319, 107_473_335]
    assert frame["paper"].tolist() == [TABLE1_PARAMS[k] for k in frame["model"]]
    assert frame["match"].tolist() == [True, True, True]
    assert elapsed < 2.0  # built on the meta device: no 100 M-parameter allocations


def test_table1_with_shrunk_sizes_reports_mismatch() -> None:
    frame = table1(SMALL, DEMO_PATCH)
    assert not frame["match"].any()
    assert frame["ours"].tolist() == [
        learnable_parameters(name, SMALL, DEMO_PATCH) for name in ("lc_net", "hcr_lc_equal", "hcr_c_net")
    ]


def test_write_table1_is_atomic_and_round_trips(tmp_path) -> None:
    out = tmp_path / "tables" / "table1.csv"
    out.parent.mkdir()
    out.write_text("stale\n")
    frame = write_table1({}, PATCH_SIZE, out)
    assert pd.read_csv(out).equals(frame)
    assert sorted(p.name for p in out.parent.iterdir()) == ["table1.csv"]  # no temp file left behind


# --- Table 2 ------------------------------------------------------------------------------------------------

def _metrics_file(path: Path, **values: float) -> str:
    record = {**dict.fromkeys(METRIC_KEYS), "n_test": 12, **values, "definitions": {}}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))
    return str(path)


def test_table2_means_and_stds_over_seeds_beside_the_paper(tmp_path) -> None:
    cls = {"precision": 0.6, "recall": 0.5, "f1": 0.55, "f1_macro": 0.4, "f1_samples": 0.5}
    metrics = {
        "lc_net": [_metrics_file(tmp_path / f"lc_{s}.json", **{**cls, "f1": f1})
                   for s, f1 in enumerate([0.5, 0.6])],
        "hcr_net": [_metrics_file(tmp_path / "hcr.json", psnr=25.0, ssim=0.8, ssim_standard=0.7)],
        "hcr_lc_uncertain": [_metrics_file(tmp_path / "unc.json", **cls, psnr=24.0, ssim=0.75,
                                           ssim_standard=0.6)],
        # its evaluation scores the frozen HCR-Net's reconstruction too; Table 2 leaves those cells empty
        "hcr_c_net": [_metrics_file(tmp_path / "cnet.json", **cls, psnr=25.0, ssim=0.8, ssim_standard=0.7)],
    }
    frame = table2(metrics, "synthetic", "abc123")
    assert frame["model"].tolist() == list(TABLE2)
    by_model = frame.set_index("model")
    assert by_model.loc["lc_net", "n_seeds"] == 2
    assert by_model.loc["lc_net", "f1"] == pytest.approx(0.55)
    assert by_model.loc["lc_net", "f1_std"] == pytest.approx(np.std([0.5, 0.6], ddof=1))
    assert np.isnan(by_model.loc["lc_net", "psnr"])  # LC-Net does not reconstruct
    assert by_model.loc["hcr_net", "psnr"] == 25.0 and np.isnan(by_model.loc["hcr_net", "psnr_std"])
    assert by_model.loc["hcr_net", "ssim_standard"] == 0.7
    for model, paper in TABLE2.items():
        for key, value in paper.items():
            got = by_model.loc[model, f"{key}_paper"]
            assert (np.isnan(got) if value is None else got == value), (model, key)
    assert by_model.loc["hcr_lc_equal", "status"] == "missing"
    assert by_model.loc["hcr_lc_equal", "n_seeds"] == 0
    assert np.isnan(by_model.loc["hcr_lc_equal", "f1"])

    out_csv, out_md = tmp_path / "tables" / "table2.csv", tmp_path / "tables" / "table2.md"
    written = write_table2(metrics, "synthetic", "abc123", out_csv, out_md)
    assert pd.read_csv(out_csv)["f1"].equals(written["f1"])
    md = out_md.read_text()
    assert "synthetic" in md and "`abc123`" in md
    lines = {line.split("|")[1].strip(): line for line in md.splitlines() if line.startswith("| ")}
    assert "0.5500 ± 0.0707" in lines["LC-Net"] and "0.6704" in lines["LC-Net"]  # ours, then the paper's
    assert "missing" in lines["HCR&LC-Net 1:1"] and "0.6799" in lines["HCR&LC-Net 1:1"]
    assert lines["HCR-Net"].count("25.0000") == 1 and "27.9342" in lines["HCR-Net"]
    assert by_model.loc["hcr_c_net", "f1"] == pytest.approx(0.55)
    assert by_model.loc["hcr_c_net", ["psnr", "ssim", "ssim_standard"]].isna().all()
    assert "25.0000" not in lines["HCR-Net + C-Net"] and lines["HCR-Net + C-Net"].count("—") == 5  # as the paper


def test_table2_rejects_unknown_models_and_sources(tmp_path) -> None:
    with pytest.raises(ValueError, match="unknown model"):
        table2({"ssl_on_25": []}, "real", "h")
    with pytest.raises(ValueError, match="data source"):
        table2({}, "fake", "h")
    with pytest.raises(DataError, match="metrics file missing"):
        table2({"lc_net": [tmp_path / "nope.json"]}, "real", "h")
    assert (table2({}, "real", "h")["status"] == "missing").all()


def test_table2_shows_the_baselines_as_their_own_rows_without_paper_values(tmp_path) -> None:
    cls = {"precision": 0.6, "recall": 0.5, "f1": 0.55, "f1_macro": 0.4, "f1_samples": 0.5}
    metrics = {"lc_net": [_metrics_file(tmp_path / "lc.json", **cls)]}
    baselines = {
        "cloudy_input": _metrics_file(tmp_path / "cloudy.json", psnr=12.5, ssim=0.41, ssim_standard=0.3),
        "constant_prediction": _metrics_file(tmp_path / "const.json", precision=0.3, recall=0.9, f1=0.45),
    }
    without = table2(metrics, "synthetic", "h")
    frame = table2(metrics, "synthetic", "h", baselines)
    # the model rows are those of a table without baselines; the baselines follow, in their own rows
    pd.testing.assert_frame_equal(frame.iloc[:len(TABLE2)], without)
    assert frame["model"].tolist() == [*TABLE2, "cloudy_input", "constant_prediction"]
    extra = frame.iloc[len(TABLE2):].set_index("model")
    assert extra["label"].tolist() == ["cloudy input (baseline)",
                                       "constant prediction (baseline)"]
    assert extra.loc["cloudy_input", "psnr"] == 12.5 and np.isnan(extra.loc["cloudy_input", "f1"])
    assert extra.loc["constant_prediction", "f1"] == 0.45
    assert np.isnan(extra.loc["constant_prediction", "psnr"])
    assert extra[[f"{k}_paper" for k in ("precision", "recall", "f1", "psnr", "ssim")]].isna().all().all()
    assert extra["n_seeds"].isna().all() and (extra["status"] == "ok").all()

    out_csv, out_md = tmp_path / "table2.csv", tmp_path / "table2.md"
    write_table2(metrics, "synthetic", "h", out_csv, out_md, baselines)
    assert pd.read_csv(out_csv)["label"].tolist()[-2:] == extra["label"].tolist()
    lines = {line.split("|")[1].strip(): line
             for line in out_md.read_text().splitlines() if line.startswith("| ")}
    cells = [c.strip() for c in lines["cloudy input (baseline)"].split("|")[2:-1]]
    # seeds, then P ours/paper, R ours/paper, F1 ours/paper, PSNR ours/paper, SSIM ours/paper, SSIM std.
    assert cells == ["—", "—", "—", "—", "—", "—", "—", "12.5000", "—", "0.4100", "—", "0.3000"]
    assert "0.4500" in lines["constant prediction (baseline)"]
    with pytest.raises(ValueError, match="unknown baseline"):
        table2(metrics, "synthetic", "h", {"mean_image": baselines["cloudy_input"]})


def _predictions_file(path: Path, seed: int, *, classify: bool = True, reconstruct: bool = False) -> str:
    """A predictions.npz of 50 test patches as the evaluation writes it."""
    rng = np.random.default_rng(seed)
    targets = (np.random.default_rng(0).random((50, 10)) < 0.3).astype(np.uint8)
    arrays = {"idx": np.arange(50), "targets": targets, "cloud_fraction": np.random.default_rng(0).random(50)}
    if classify:
        arrays["probs"] = (0.35 * targets + 0.6 * rng.random((50, 10))).astype(np.float32)
    if reconstruct:
        arrays |= {"psnr": rng.normal(25, 2, 50), "ssim": rng.random(50), "ssim_standard": rng.random(50)}
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return str(path)


def test_table2_bootstrap_intervals_from_the_predictions(tmp_path) -> None:
    from hcrlc.bootstrap import metric_values, percentile_interval, read_predictions, resample_counts
    from hcrlc.metrics import summarise_test_metrics

    def evaluated(name: str, seed: int, **heads) -> tuple[str, str]:
        pred = _predictions_file(tmp_path / name / "predictions.npz", seed, **heads)
        values = {k: v for k, v in summarise_test_metrics(read_predictions(pred), 50).items() if k != "n_test"}
        return _metrics_file(tmp_path / name / "metrics.json", **values), pred

    runs = {"lc_net": [evaluated("lc_net", 1), evaluated("lc_net_s1", 2)],
            "hcr_net": [evaluated("hcr_net", 3, classify=False, reconstruct=True)],
            "hcr_c_net": [evaluated("hcr_c_net", 4, reconstruct=True)]}
    cloudy = evaluated("cloudy_input", 5, classify=False, reconstruct=True)
    metrics = {m: [r[0] for r in rs] for m, rs in runs.items()}
    predictions = {m: [r[1] for r in rs] for m, rs in runs.items()} | {"cloudy_input": [cloudy[1]]}
    frame = table2(metrics, "synthetic", "h", {"cloudy_input": cloudy[0]}, predictions, n_resamples=300, seed=4)
    by_model = frame.set_index("model")
    weights = resample_counts(50, 300, 4)
    loaded = [read_predictions(p) for p in predictions["lc_net"]]
    # two seeds: the interval of their mean F1, on the same resampled patches for both
    expected = percentile_interval(metric_values(weights, loaded, "f1"))[:2]
    assert (by_model.loc["lc_net", "f1_lo"], by_model.loc["lc_net", "f1_hi"]) == pytest.approx(expected)
    for model, key in [("lc_net", "f1"), ("lc_net", "precision"), ("hcr_net", "psnr"), ("hcr_net", "ssim"),
                       ("hcr_net", "ssim_standard"), ("hcr_c_net", "recall"), ("cloudy_input", "psnr")]:
        lo, value, hi = by_model.loc[model, [f"{key}_lo", key, f"{key}_hi"]]
        assert lo < value < hi, (model, key)
    # no interval where there is no value: LC-Net's PSNR, HCR-Net + C-Net's image quality (as in the paper)
    assert by_model.loc["lc_net", ["psnr_lo", "psnr_hi"]].isna().all()
    assert by_model.loc["hcr_c_net", ["psnr_lo", "ssim_hi", "ssim_standard_lo"]].isna().all()
    assert by_model.loc["hcr_lc_equal", ["f1_lo", "f1_hi"]].isna().all()  # missing
    assert (frame["n_resamples"] == 300).all() and (frame["bootstrap_seed"] == 4).all()
    md = table2_markdown(frame, "synthetic", "h")
    assert "300 resamples, seed 4" in md
    lc = by_model.loc["lc_net"]
    assert (f"{lc['f1']:.4f} ± {lc['f1_std']:.4f} [{lc['f1_lo']:.4f}, {lc['f1_hi']:.4f}]"
            in next(line for line in md.splitlines() if line.startswith("| LC-Net |")))
