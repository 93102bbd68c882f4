"""Figures from small fake evaluation outputs: files are valid, the plotted numbers are right."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.image import imread
from sklearn.metrics import f1_score

from hcrlc import figures
from hcrlc.errors import DataError
from hcrlc.evaluation import choose_fig3_examples, evaluate
from hcrlc.figures import (
    curves,
    curves_figure,
    fig1,
    fig1_figure,
    fig1_table,
    fig3,
    fig4,
    read_curve,
    stretch,
    true_colour_limits,
)
from hcrlc.models import build_model

torch.set_num_threads(1)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path) -> np.ndarray:
    assert path.read_bytes()[:8] == PNG_MAGIC
    image = imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    return image


def assert_pdf(path: Path) -> None:
    data = path.read_bytes()
    assert data[:5] == b"%PDF-" and b"%%EOF" in data[-64:]


def fake_predictions(path: Path, *, n: int, seed: int, classify: bool = True, noise: float = 0.4) -> Path:
    """A predictions.npz as evaluate writes it for ``n`` test samples (idx, cloud, targets alike for all)."""
    rng = np.random.default_rng(100)
    cloud = np.round(rng.random(n), 3).astype(np.float32)
    cloud[:5] = [0.0, 0.1, 0.5, 0.95, 1.0]  # bin edges and the closed last bin
    targets = (rng.random((n, 10)) < 0.3).astype(np.uint8)
    arrays = {"idx": np.arange(n), "targets": targets, "cloud_fraction": cloud, "model": np.array(path.stem)}
    if classify:
        model_rng = np.random.default_rng(seed)
        arrays["probs"] = np.clip(targets * 0.7 + noise * model_rng.random((n, 10)), 0, 1).astype(np.float32)
    else:
        arrays["psnr"] = np.full(n, 25.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        np.savez(f, **arrays)
    return path


def test_fig1_numbers_equal_an_independent_computation(tmp_path) -> None:
    n = 230
    predictions = {
        "lc_net": fake_predictions(tmp_path / "lc_net.npz", n=n, seed=1, noise=0.9),
        "hcr_net": fake_predictions(tmp_path / "hcr_net.npz", n=n, seed=2, classify=False),
        "hcr_lc_uncertain": fake_predictions(tmp_path / "hcr_lc_uncertain.npz", n=n, seed=3, noise=0.9),
    }
    out_png, out_pdf = tmp_path / "figures" / "fig1.png", tmp_path / "figures" / "fig1.pdf"
    table = fig1(predictions, out_png, out_pdf, source="synthetic", seed=7)
    assert_png(out_png)
    assert_pdf(out_pdf)
    assert pd.read_csv(tmp_path / "figures" / "fig1.csv").shape == table.shape
    assert list(dict.fromkeys(table["model"])) == ["lc_net", "hcr_lc_uncertain"]  # hcr_net does not classify

    for model in ("lc_net", "hcr_lc_uncertain"):
        with np.load(predictions[model]) as p:
            cloud, probs, targets = p["cloud_fraction"].astype(np.float64), p["probs"], p["targets"]
        part = table[table["model"] == model].reset_index(drop=True)
        assert part["n"].sum() == n
        for b in range(10):
            lo, hi = b / 10, (b + 1) / 10
            members = np.flatnonzero((cloud >= lo) & ((cloud < hi) if b < 9 else (cloud <= hi)))
            row = part.iloc[b]
            assert (row["cloud_lo_pct"], row["cloud_hi_pct"]) == pytest.approx((10 * b, 10 * b + 10))
            assert row["n"] == members.size
            expected = f1_score(targets[members], probs[members] >= 0.5, average="micro", zero_division=0)
            assert row["f1"] == pytest.approx(expected, abs=1e-12)
            # sub-groups: the documented split, seeded by (seed, bin)
            groups = np.array_split(np.random.default_rng([7, b]).permutation(members), 10)
            scores = [f1_score(targets[g], probs[g] >= 0.5, average="micro", zero_division=0) for g in groups]
            assert sum(g.size for g in groups) == members.size
            assert row["f1_subgroup_std"] == pytest.approx(np.std(scores), abs=1e-12)
            assert row["f1_subgroup_mean"] == pytest.approx(np.mean(scores), abs=1e-12)
    assert set(table.loc[table["bin"] == 0, "n"]) == {int(np.sum(cloud < 0.1))}
    # the bootstrap interval of each bin's F1 (hcrlc.bootstrap's resamples of the whole test split)
    full = table[table["n"] > 1]
    assert (full["f1_lo"] <= full["f1"]).all() and (full["f1"] <= full["f1_hi"]).all()
    assert (full["f1_hi"] > full["f1_lo"]).any()


def test_fig1_perfect_predictions_have_no_spread_and_empty_bins_are_nan(tmp_path) -> None:
    path = fake_predictions(tmp_path / "p.npz", n=40, seed=0)
    with np.load(path) as p:
        arrays = dict(p)
    arrays["probs"] = arrays["targets"].astype(np.float32)
    arrays["cloud_fraction"] = np.where(np.arange(40) < 20, 0.05, 0.97).astype(np.float32)
    with path.open("wb") as f:
        np.savez(f, **arrays)
    table = fig1_table({"lc_net": path}, subgroups=4)
    full = table[table["n"] > 0]
    assert full["bin"].tolist() == [0, 9] and full["n"].tolist() == [20, 20]
    assert (full["f1"] == 1.0).all() and (full["f1_subgroup_std"] == 0.0).all()
    assert table.loc[table["n"] == 0, "f1"].isna().all()


def test_fig4_draws_with_missing_runs(tmp_path, monkeypatch) -> None:
    def run(name: str, seed: int, classify: bool = True) -> Path:
        return fake_predictions(tmp_path / name / "predictions.npz", n=60, seed=seed, classify=classify, noise=0.9)

    predictions = {"ssl_on_25": run("ssl_on_25", 1), "ssl_on_100": run("ssl_on_100", 2),
                   "ssl_off_50": tmp_path / "never_ran" / "predictions.npz",
                   "ssl_off_100": run("ssl_off_100", 3, classify=False)}
    table = fig4(predictions, tmp_path / "fig4.png", tmp_path / "fig4.pdf", source="real", n_resamples=200)
    assert_png(tmp_path / "fig4.png")
    assert_pdf(tmp_path / "fig4.pdf")
    ok = table[table["status"] == "ok"]
    assert ok["run"].tolist() == ["ssl_on_25", "ssl_on_100"]
    for row in ok.itertuples():
        with np.load(predictions[row.run]) as p:
            assert row.f1 == pytest.approx(f1_score(p["targets"], p["probs"] >= 0.5, average="micro"), abs=1e-12)
        assert row.f1_lo < row.f1 < row.f1_hi and row.n_seeds == 1 and np.isnan(row.f1_seed_min)
    assert len(table) == 8 and (table["status"] == "missing").sum() == 6
    assert table["n_labelled"].isna().all()

    fig4(predictions, tmp_path / "again.png", tmp_path / "again.pdf", source="real", n_resamples=200)
    assert (tmp_path / "again.pdf").read_bytes() == (tmp_path / "fig4.pdf").read_bytes()  # reruns: same bytes
    assert (tmp_path / "again.png").read_bytes() == (tmp_path / "fig4.png").read_bytes()

    saved = []
    monkeypatch.setattr(figures, "_save", lambda fig, *paths: saved.append(fig))
    fig4(predictions, tmp_path / "base.png", None, source="real", constant_f1=0.457, n_resamples=200)
    dashed = [line for line in saved[0].axes[0].get_lines() if line.get_linestyle() == "--"]
    assert len(dashed) == 1 and set(dashed[0].get_ydata()) == {0.457}
    assert "constant prediction" in dashed[0].get_label()
    monkeypatch.undo()

    empty = fig4({}, tmp_path / "empty.png", None, source="synthetic")
    assert_png(tmp_path / "empty.png")
    assert (empty["status"] == "missing").all()
    with pytest.raises(ValueError, match="ssl_on_<pct>"):
        fig4({"lc_net": predictions["ssl_on_25"]}, tmp_path / "bad.png", None, source="real")


def test_fig4_intervals_seed_band_and_labelled_counts(tmp_path, monkeypatch) -> None:
    seeds = [fake_predictions(tmp_path / f"on25_{s}.npz", n=60, seed=s, noise=0.9) for s in (1, 2, 3)]
    predictions = {"ssl_on_25": seeds,
                   "ssl_off_25": [fake_predictions(tmp_path / "off25.npz", n=60, seed=4, noise=0.9)]}
    saved = []
    monkeypatch.setattr(figures, "_save", lambda fig, *paths: saved.append(fig))
    labelled = {25: 1, 50: 12, 75: 18, 100: 24}
    table = fig4(predictions, tmp_path / "x.png", None, source="synthetic", labelled=labelled, n_resamples=200)
    on = table.set_index("run").loc["ssl_on_25"]
    per_seed = []
    for path in seeds:
        with np.load(path) as p:
            per_seed.append(f1_score(p["targets"], p["probs"] >= 0.5, average="micro"))
    assert on["n_seeds"] == 3 and on["f1"] == pytest.approx(np.mean(per_seed))
    assert (on["f1_seed_min"], on["f1_seed_max"]) == pytest.approx((min(per_seed), max(per_seed)))
    assert on["f1_seed_std"] == pytest.approx(np.std(per_seed, ddof=1))
    assert table["n_labelled"].tolist() == [1, 12, 18, 24] * 2
    ax = saved[0].axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["25 %\n1 patch", "50 %\n12 patches",
                                                            "75 %\n18 patches", "100 %\n24 patches"]
    bands = [c for c in ax.collections if "range over 3 seeds" in c.get_label()]
    assert len(bands) == 1  # the run with several seeds; the one-seed run has none
    assert "bootstrap interval" in ax.get_legend().get_title().get_text()
    assert ax.get_title().endswith("synthetic data")
    # the workflow passes the synthetic run's geometry (workflow/rules/common.smk GEOMETRY): a second title line
    geometry = "scale model: 32 px patches at 80 m, U-Net depth 1, widths [8, 16]"
    fig4(predictions, tmp_path / "x.png", None, source="synthetic", labelled=labelled, n_resamples=100,
         geometry=geometry)
    assert saved[1].axes[0].get_title().splitlines() == [
        "F1 versus labelled data (Gu et al. 2022, Fig. 4) — synthetic data", geometry]
    fig4(predictions, tmp_path / "x.png", None, source="real", labelled=labelled, n_resamples=100,
         geometry=geometry)
    assert saved[2].axes[0].get_title() == "F1 versus labelled data (Gu et al. 2022, Fig. 4)"


def test_stretch_maps_percentiles_to_unit_range() -> None:
    image = np.stack([np.linspace(0, 1, 10_000).reshape(100, 100), np.full((100, 100), 0.3),
                      np.full((100, 100), 1.7)])
    out = stretch(image)
    assert out.shape == (100, 100, 3)
    assert out[..., 0].min() == 0.0 and out[..., 0].max() == 1.0
    assert np.mean(out[..., 0] == 0.0) == pytest.approx(0.02, abs=0.002)
    # constant bands keep their (clipped) value
    assert (out[..., 1] == 0.3).all() and (out[..., 2] == 1.0).all()
    shared = stretch(image[:1] * 2, limits=np.array([[0.0, 1.0]]))
    assert np.mean(shared == 1.0) == pytest.approx(0.5, abs=0.001)


def test_true_colour_limits_keep_the_balance_of_the_bands() -> None:
    rng = np.random.default_rng(0)
    rgb = np.stack([rng.uniform(0.10, 0.20, (50, 50)), rng.uniform(0.05, 0.08, (50, 50)),
                    rng.uniform(0.02, 0.04, (50, 50))])
    limits = true_colour_limits(rgb)
    assert limits.shape == (3, 2) and (limits == limits[0]).all()
    assert limits[0, 0] == pytest.approx(np.percentile(rgb[2], 2)) and limits[0, 1] == pytest.approx(
        np.percentile(rgb[0], 98))
    out = stretch(rgb, limits)
    # a reddish surface stays reddish: red brightest, blue darkest in every pixel
    assert (out[..., 0] >= out[..., 1]).all() and (out[..., 1] >= out[..., 2]).all()
    # a per-band stretch would map all three to the same range and lose that
    assert abs(stretch(rgb)[..., 0].mean() - stretch(rgb)[..., 2].mean()) < 0.05


class Patches(list):
    """TripletDataset items in memory, with the pixel size a TripletDataset reads from the index."""

    pixel_size_m = 40.0


def test_fig3_from_the_evaluation_of_two_tiny_models(tmp_path, monkeypatch) -> None:
    size, n = 32, 5
    g = torch.Generator().manual_seed(0)
    dataset = Patches()
    for i in range(n):
        s2 = torch.rand(13, size, size, generator=g)
        cloud = float(i) / (n - 1)
        x = torch.cat([torch.clamp(s2 + cloud, 0, 1), torch.randn(2, size, size, generator=g)])
        dataset.append({"x": x, "s2": s2, "mask": torch.zeros(1, size, size), "y": torch.zeros(10),
                        "cloud_fraction": torch.tensor(cloud), "idx": torch.tensor(i)})
    rows = choose_fig3_examples(np.array([float(d["cloud_fraction"]) for d in dataset]), 3, seed=0)
    examples = {}
    for name in ("hcr_net", "hcr_lc_uncertain"):
        torch.manual_seed(0)
        model = build_model(name, {"widths": [4, 8], "cls_widths": [8]}, patch_size=size)
        evaluate(model, dataset, tmp_path / name, batch_size=2, model_name=name, example_rows=rows,
                 progress=False)
        examples[name] = tmp_path / name / "examples.npz"
    saved = []
    save = figures._save
    monkeypatch.setattr(figures, "_save", lambda fig, *paths: saved.append(fig) or save(fig, *paths))
    fig3(examples, dataset, tmp_path / "fig3.png", source="synthetic", out_pdf=tmp_path / "fig3.pdf")
    image = assert_png(tmp_path / "fig3.png")
    assert image.shape[1] > image.shape[0]  # 5 columns, 3 rows
    assert_pdf(tmp_path / "fig3.pdf")
    # the title names the data's patch and pixel size (the scale model's: not the paper's 256 px at 10 m)
    assert "32×32 px patches at 40 m — synthetic data" in saved[0]._suptitle.get_text()
    fig3(examples, list(dataset), tmp_path / "plain.png", source="synthetic")  # data that does not say
    assert "32×32 px patches — synthetic data" in saved[1]._suptitle.get_text()


def test_fig1_draws_the_constant_prediction_as_a_dashed_line_with_its_numbers(tmp_path) -> None:
    n = 120
    lc_net = fake_predictions(tmp_path / "lc_net.npz", n=n, seed=1)
    constant = fake_predictions(tmp_path / "constant_prediction.npz", n=n, seed=0)
    chosen = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 1], dtype=np.float32)
    for path in (lc_net, constant):
        with np.load(path) as p:
            arrays = dict(p)
        empty = (arrays["cloud_fraction"] >= 0.3) & (arrays["cloud_fraction"] < 0.4)
        arrays["cloud_fraction"][empty] = 0.45  # no patch in the 30-40 % bin
        if path == constant:
            arrays["probs"] = np.broadcast_to(chosen, arrays["targets"].shape).copy()  # as the baseline has it
        with path.open("wb") as f:
            np.savez(f, **arrays)

    table = fig1({"lc_net": lc_net}, tmp_path / "fig1.png", None, source="synthetic",
                 baselines={"constant_prediction": constant})
    csv = pd.read_csv(tmp_path / "fig1.csv")
    assert list(dict.fromkeys(csv["model"])) == ["lc_net", "constant_prediction"]
    part = csv[csv["model"] == "constant_prediction"].reset_index(drop=True)
    cloud, targets = arrays["cloud_fraction"].astype(np.float64), arrays["targets"]
    for b in range(10):
        members = np.flatnonzero((cloud >= b / 10) & ((cloud < (b + 1) / 10) if b < 9 else (cloud <= 1)))
        pred = np.broadcast_to(chosen.astype(int), (members.size, 10))
        if not members.size:
            assert np.isnan(part.loc[b, "f1"])
            continue
        expected = f1_score(targets[members], pred, average="micro", zero_division=0)
        assert part.loc[b, "f1"] == pytest.approx(expected, abs=1e-12)

    for error_bars, title in (("bootstrap", "95 % bootstrap interval"), ("subgroups", "10 random sub-groups")):
        legend = fig1_figure(table, source="synthetic", bins=10, subgroups=10,
                             error_bars=error_bars).axes[0].get_legend()
        assert title in legend.get_title().get_text()
    with pytest.raises(ValueError, match="error_bars"):
        fig1_figure(table, source="synthetic", bins=10, subgroups=10, error_bars="std")
    ax = fig1_figure(table, source="synthetic", bins=10, subgroups=10).axes[0]
    dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert [line.get_label() for line in dashed] == ["constant prediction (baseline)"]
    assert part.loc[3, "n"] == 0
    drawn = part[part["n"] > 0]  # bins without patches are left out of the line
    assert np.allclose(dashed[0].get_xdata(), drawn["cloud_lo_pct"] + 5)
    assert np.allclose(dashed[0].get_ydata(), drawn["f1"])
    assert "constant prediction (baseline)" in [t.get_text() for t in ax.get_legend().get_texts()]
    assert "LC-Net" in [t.get_text() for t in ax.get_legend().get_texts()]
    with pytest.raises(ValueError, match="unknown baseline"):
        fig1({"lc_net": lc_net}, tmp_path / "x.png", None, source="real", baselines={"lc_net": lc_net})


def write_curve(path: Path, **columns) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(columns).to_csv(path, index=False)
    return path


def test_curves_from_metrics_csv_of_models_pretext_and_ssl_stages(tmp_path) -> None:
    runs = {
        "lc_net": write_curve(tmp_path / "lc_net.csv", epoch=[1, 2, 3], train_loss=[0.7, 0.5, 0.4],
                              val_loss=[0.7, 0.6, 0.65], val_f1=[0.3, 0.5, 0.5], val_psnr=[None] * 3),
        "hcr_net": write_curve(tmp_path / "hcr_net.csv", epoch=[1, 2], train_loss=[0.2, 0.1],
                               val_loss=[0.2, 0.1], val_f1=[None, None], val_psnr=[14.0, 17.5]),
        "pretext": write_curve(tmp_path / "pretext.csv", epoch=[1, 2], train_loss=[1.39, 1.38],
                               val_loss=[1.39, 1.39], val_acc=[0.31, 0.27], chance_acc=[0.25, 0.25]),
        "ssl_on_25": write_curve(tmp_path / "ssl_on_25.csv", stage=["frozen", "frozen", "finetune"],
                                 epoch=[1, 2, 3], stage_epoch=[1, 2, 1], train_loss=[0.9, 0.8, 0.6],
                                 val_loss=[0.9, 0.8, 0.7], val_f1=[0.2, 0.4, 0.35], val_psnr=[10.0, 11, 12]),
    }
    summary = curves(runs, tmp_path / "curves.png", tmp_path / "curves.pdf", source="synthetic")
    assert_png(tmp_path / "curves.png")
    assert_pdf(tmp_path / "curves.pdf")
    by_run = summary.set_index("run")
    # the metric each run selects by, and the first best epoch (a later tie does not replace it); an SSL run's
    # model is its last stage's best (epoch 3), even where a frozen epoch validated better (epoch 2)
    assert by_run["metric"].tolist() == ["val_f1", "val_psnr", "val_acc", "val_f1"]
    assert by_run["best_epoch"].tolist() == [2, 2, 1, 3]
    assert by_run.loc["ssl_on_25", "stages"] == "frozen,finetune"

    fig, _ = curves_figure({run: read_curve(path) for run, path in runs.items()}, source="synthetic")
    assert "synthetic data" in fig._suptitle.get_text()
    panels = {ax.get_label(): ax for ax in fig.axes}
    for run, path in runs.items():
        loss, metric = panels[f"{run}: loss"], panels[f"{run}: metric"]
        assert loss.get_xlabel() == "epoch" and loss.get_ylabel() == "loss" and metric.get_ylabel()
        lines = {line.get_label(): line for line in loss.get_lines() + metric.get_lines()}
        frame = read_curve(path)
        for column in ("train_loss", "val_loss", by_run.loc[run, "metric"]):
            assert np.allclose(lines[column].get_xdata(), frame["epoch"]), (run, column)
            assert np.allclose(lines[column].get_ydata(), frame[column]), (run, column)
    # the pretext panel: accuracy on the right, chance drawn at 0.25
    pretext = panels["pretext: metric"]
    assert pretext.get_ylabel() == "val. accuracy"
    dotted = [line for line in pretext.get_lines() if line.get_linestyle() == ":"]
    assert len(dotted) == 1 and np.allclose(dotted[0].get_ydata(), 0.25)
    # the SSL panel: one shaded band per stage and their names; the best epoch starred on the metric axis
    ssl_loss, ssl_metric = panels["ssl_on_25: loss"], panels["ssl_on_25: metric"]
    assert len(ssl_loss.patches) == 2
    texts = [t.get_text() for t in ssl_loss.texts]
    assert "stage: frozen" in texts and "stage: finetune" in texts
    stars = [line for line in ssl_metric.get_lines() if line.get_marker() == "*"]
    assert [(float(s.get_xdata()[0]), float(s.get_ydata()[0])) for s in stars] == [(3.0, 0.35)]

    with pytest.raises(DataError, match="metrics.csv missing"):
        curves({"lc_net": tmp_path / "nope.csv"}, tmp_path / "x.png", None, source="real")


def test_geometry_label_names_a_scale_model_only_below_sen12ms_patches() -> None:
    from hcrlc.figure_labels import geometry_label

    assert geometry_label(32, 80, [8, 16]) == "scale model: 32 px patches at 80 m, U-Net depth 1, widths [8, 16]"
    assert geometry_label(256, 10.0, (4, 8, 16, 32, 64)) == (
        "256 px patches at 10 m, U-Net depth 4, widths [4, 8, 16, 32, 64]")
