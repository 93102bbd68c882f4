"""The paper's figures from saved evaluation outputs — never runs a network.

* Fig. 1 (:func:`fig1`): micro F1 versus cloud cover, from each model's ``predictions.npz``.
* Fig. 3 (:func:`fig3`): qualitative rows (cloudy S2, S1, reconstructions, clear S2), from ``examples.npz``
  and the test dataset.
* Fig. 4 (:func:`fig4`): micro F1 versus the fraction of labelled training data, with and without the
  self-supervised pretext, from the ``ssl_*`` runs' ``metrics.json``.

Figures are drawn on :class:`matplotlib.figure.Figure` objects with the Agg canvas (no pyplot, no display, no
global state) and written atomically; PDFs carry no creation date so reruns give the same bytes. When the data
source is synthetic, every title says so.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from torch.utils.data import Dataset

from hcrlc.atomic import atomic_output
from hcrlc.errors import DataError
from hcrlc.metrics import micro_f1
from hcrlc.paper import LABEL_FRACTIONS, PATCH_SIZE, PIXEL_SIZE_M, S1_MEAN, S1_STD, S2_BANDS
from hcrlc.tables import MODEL_LABELS, check_source, read_metrics

log = logging.getLogger(__name__)

#: Fig. 4 / §4: with the pretext and 100 % of the labels the paper reaches F1 ≈ 0.703 (its best) [P].
PAPER_FIG4_F1_100 = 0.703
#: Bands shown as RGB: B4, B3, B2 (0-based positions in the 13-band S2 stack) [MS].
RGB_BANDS = (3, 2, 1)
STRETCH_PERCENTILES = (2.0, 98.0)
SSL_RUN = re.compile(r"^ssl_(?P<pretext>on|off)_(?P<fraction>\d+)$")
DPI = 150


def _title(text: str, source: str) -> str:
    return f"{text} — synthetic data" if check_source(source) == "synthetic" else text


def _save(fig: Figure, out_png: str | Path, out_pdf: str | Path | None = None) -> None:
    """Write ``fig`` as PNG (and PDF) atomically."""
    with atomic_output(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight")
    if out_pdf is not None:
        with atomic_output(out_pdf) as tmp:
            fig.savefig(tmp, format="pdf", bbox_inches="tight", metadata={"CreationDate": None})


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    """All arrays of an evaluation ``.npz`` (predictions or examples); :class:`DataError` if it is missing."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "evaluation output missing",
                        "run the evaluation of this model (snakemake evaluate)")
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


# --- Fig. 1 -------------------------------------------------------------------------------------------------

def cloud_bin(cloud_fraction: np.ndarray, bins: int) -> np.ndarray:
    """Bin of each cloud fraction in [0, 1] among ``bins`` equal bins [lo, hi); the last bin includes 1."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    return np.searchsorted(edges[1:-1], np.asarray(cloud_fraction, dtype=np.float64), side="right")


def subgroup_split(members: np.ndarray, subgroups: int, seed: int, bin_index: int) -> list[np.ndarray]:
    """Split ``members`` (positions of one bin's samples) into ``subgroups`` random disjoint groups.

    Seeded by ``(seed, bin_index)`` alone, so every model sees the same groups of the same test samples.
    Groups differ in size by at most one; with fewer members than groups, some are empty.
    """
    rng = np.random.default_rng([seed, bin_index])
    return np.array_split(rng.permutation(np.sort(members)), subgroups)


def fig1_table(
    predictions: Mapping[str, str | Path], *, bins: int = 10, subgroups: int = 10, seed: int = 0
) -> pd.DataFrame:
    """Per classifying model and cloud-cover bin: ``n`` test samples, micro ``f1`` of the bin, and the mean
    and standard deviation (ddof 0) of the F1 of ``subgroups`` random disjoint sub-groups of the bin.

    ``predictions`` maps a model name to its predictions.npz; models without ``probs`` (HCR-Net) are skipped.
    All models must cover the same test samples. Columns: ``model``, ``bin``, ``cloud_lo_pct``,
    ``cloud_hi_pct``, ``n``, ``f1``, ``f1_subgroup_mean``, ``f1_subgroup_std``, ``n_subgroups`` (non-empty
    ones).
    """
    rows = []
    reference_idx: np.ndarray | None = None
    for model, path in predictions.items():
        data = load_npz(path)
        if "probs" not in data:
            log.info("fig1: %s has no classification output; skipped", model)
            continue
        order = np.argsort(data["idx"], kind="stable")
        idx, probs, targets = data["idx"][order], data["probs"][order], data["targets"][order]
        if reference_idx is None:
            reference_idx = idx
        elif not np.array_equal(idx, reference_idx):
            raise DataError(Path(path), f"{model} was evaluated on other test samples than the first model",
                            "re-evaluate all models on the same test split")
        which = cloud_bin(data["cloud_fraction"][order], bins)
        for b in range(bins):
            members = np.flatnonzero(which == b)
            groups = [g for g in subgroup_split(members, subgroups, seed, b) if g.size]
            scores = np.array([micro_f1(probs[g], targets[g]) for g in groups])
            rows.append({
                "model": model,
                "bin": b,
                "cloud_lo_pct": 100.0 * b / bins,
                "cloud_hi_pct": 100.0 * (b + 1) / bins,
                "n": int(members.size),
                "f1": micro_f1(probs[members], targets[members]) if members.size else np.nan,
                "f1_subgroup_mean": float(scores.mean()) if scores.size else np.nan,
                "f1_subgroup_std": float(scores.std()) if scores.size > 1 else np.nan,
                "n_subgroups": len(groups),
            })
    if not rows:
        raise DataError(Path(next(iter(predictions.values()), ".")),
                        "no classifying model among the predictions",
                        "pass predictions.npz files of models with a classification head")
    return pd.DataFrame(rows)


def fig1(
    predictions: Mapping[str, str | Path],
    out_png: str | Path,
    out_pdf: str | Path | None,
    *,
    source: str,
    bins: int = 10,
    subgroups: int = 10,
    seed: int = 0,
    out_csv: str | Path | None = None,
) -> pd.DataFrame:
    """Fig. 1: micro F1 versus the cloudy-pixel percentage, one line per classifying model, error bars = std
    over ``subgroups`` seeded random sub-groups per bin; a panel below counts the test patches per bin.

    Writes ``out_png``, ``out_pdf`` and the numbers (:func:`fig1_table`) to ``out_csv`` (default: beside the
    PNG with suffix ``.csv``); returns them.
    """
    check_source(source)
    table = fig1_table(predictions, bins=bins, subgroups=subgroups, seed=seed)
    models = list(dict.fromkeys(table["model"]))
    width = 100.0 / bins
    fig = Figure(figsize=(7.5, 6.5))
    grid = fig.add_gridspec(2, 1, height_ratios=(3, 1), hspace=0.08)
    ax = fig.add_subplot(grid[0])
    ax_n = fig.add_subplot(grid[1], sharex=ax)
    for i, model in enumerate(models):
        part = table[table["model"] == model]
        centre = (part["cloud_lo_pct"] + part["cloud_hi_pct"]) / 2 + (i - (len(models) - 1) / 2) * width * 0.1
        ax.errorbar(centre, part["f1"], yerr=part["f1_subgroup_std"], marker="o", ms=4, capsize=3, lw=1.2,
                    label=MODEL_LABELS.get(model, model))
    ax.set_ylabel("micro F1 on the test split")
    ax.legend(title=f"error bars: std of F1 over\n{subgroups} random sub-groups per bin",
              title_fontsize="small", fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(alpha=0.3)
    ax.tick_params(labelbottom=False)
    ax.set_title(_title("F1 versus cloud cover (Gu et al. 2022, Fig. 1)", source))

    counts = table[table["model"] == models[0]]
    centres = (counts["cloud_lo_pct"] + counts["cloud_hi_pct"]) / 2
    bars = ax_n.bar(centres, counts["n"], width=width * 0.85, color="0.6")
    ax_n.bar_label(bars, labels=[str(n) for n in counts["n"]], fontsize="x-small", padding=1)
    ax_n.set_ylim(0, max(1, counts["n"].max()) * 1.3)
    ax_n.set_ylabel("test patches\n(count)")
    ax_n.set_xlabel("cloudy pixels in the patch (%)")
    ax_n.set_xticks(np.linspace(0, 100, bins + 1))
    ax_n.set_xlim(0, 100)
    _save(fig, out_png, out_pdf)
    out_csv = Path(out_png).with_suffix(".csv") if out_csv is None else Path(out_csv)
    with atomic_output(out_csv) as tmp:
        table.to_csv(tmp, index=False)
    return table


# --- Fig. 3 -------------------------------------------------------------------------------------------------

def percentile_limits(image: np.ndarray) -> np.ndarray:
    """Per channel (axis 0) 2nd and 98th percentiles: (C, 2)."""
    flat = np.asarray(image, dtype=np.float64).reshape(image.shape[0], -1)
    return np.percentile(flat, STRETCH_PERCENTILES, axis=1).T


def stretch(image: np.ndarray, limits: np.ndarray | None = None) -> np.ndarray:
    """(C, H, W) -> (H, W, C) in [0, 1], each channel mapped linearly from its ``limits`` (default: its own
    2–98 percentiles) and clipped. Where a channel's limits coincide (a constant image) its values are only
    clipped to [0, 1], so a saturated reflectance stays white instead of turning black."""
    image = np.asarray(image, dtype=np.float64)
    limits = percentile_limits(image) if limits is None else np.asarray(limits, dtype=np.float64)
    lo, hi = limits[:, 0, None, None], limits[:, 1, None, None]
    flat = hi <= lo
    out = (image - np.where(flat, 0.0, lo)) / np.where(flat, 1.0, hi - lo)
    return np.clip(out, 0.0, 1.0).transpose(1, 2, 0)


def s1_false_colour(s1_standardised: np.ndarray) -> np.ndarray:
    """(2, H, W) standardised S1 -> (H, W, 3): R = VV, G = VH, B = VV − VH (VV/VH ratio in dB), stretched."""
    db = np.asarray(s1_standardised, dtype=np.float64) * np.asarray(S1_STD)[:, None, None]
    db += np.asarray(S1_MEAN)[:, None, None]
    return stretch(np.stack([db[0], db[1], db[0] - db[1]]))


def fig3(
    examples: Mapping[str, str | Path],
    dataset: Dataset,
    out_png: str | Path,
    *,
    source: str,
    out_pdf: str | Path | None = None,
) -> None:
    """Fig. 3: one row per example patch; columns cloudy S2, S1, each model's reconstruction, clear S2.

    ``examples`` maps a model name (columns in this order; the paper shows ``hcr_net`` and
    ``hcr_lc_uncertain``) to its examples.npz; all must hold the same ``rows`` of ``dataset`` (the test split
    the models were evaluated on). S2 is shown as RGB = B4, B3, B2, every S2 panel of a row with the same
    stretch — the clear target's 2nd–98th percentiles per band — so colours compare and clouds saturate to
    white. S1 as false colour (see :func:`s1_false_colour`). ``dataset`` is anything indexable by row that
    gives :class:`hcrlc.data.dataset.TripletDataset` items (``x``, ``s2``, ``cloud_fraction`` are used).
    """
    check_source(source)
    if not examples:
        raise ValueError("fig3 needs the examples.npz of at least one reconstructing model")
    loaded = {model: load_npz(path) for model, path in examples.items()}
    rows = next(iter(loaded.values()))["rows"]
    for model, data in loaded.items():
        if not np.array_equal(data["rows"], rows):
            raise DataError(Path(examples[model]),
                            f"{model}'s example rows {data['rows'].tolist()} differ from {rows.tolist()}",
                            "evaluate all Fig. 3 models with the same example_rows")
    rgb = list(RGB_BANDS)
    titles = ["cloudy S2 (B4, B3, B2)", "S1 (VV, VH, VV−VH)", *(MODEL_LABELS.get(m, m) for m in loaded),
              "clear S2 (target)"]
    n_rows, n_cols = max(len(rows), 1), len(titles)
    fig = Figure(figsize=(2.2 * n_cols, 2.2 * n_rows + 0.6))
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    for i, row in enumerate(rows):
        item = dataset[int(row)]
        x, clear = item["x"].numpy(), item["s2"].numpy()
        target_limits = percentile_limits(clear[rgb])
        recons = [data["recon"][i].astype(np.float32)[rgb] for data in loaded.values()]
        panels = [stretch(x[:S2_BANDS][rgb], target_limits), s1_false_colour(x[S2_BANDS:S2_BANDS + 2]),
                  *(stretch(r, target_limits) for r in recons), stretch(clear[rgb], target_limits)]
        for j, panel in enumerate(panels):
            ax = axes[i, j]
            ax.imshow(panel, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(titles[j], fontsize="small")
        axes[i, 0].set_ylabel(f"test row {int(row)}\n{100 * float(item['cloud_fraction']):.0f} % cloudy",
                              fontsize="small")
    size = clear.shape[-1] if len(rows) else PATCH_SIZE
    fig.suptitle(_title(f"Qualitative results (Gu et al. 2022, Fig. 3); {size}×{size} px patches at "
                        f"{PIXEL_SIZE_M:.0f} m", source), fontsize="medium")
    _save(fig, out_png, out_pdf)


def fig3_from_files(
    examples: Mapping[str, str | Path],
    index_path: str | Path,
    shards_dir: str | Path,
    masks_dir: str | Path,
    out_png: str | Path,
    *,
    source: str,
    out_pdf: str | Path | None = None,
) -> None:
    """:func:`fig3` with the test split read from ``index.parquet``, the shards and the cloud masks."""
    from hcrlc.data.dataset import TripletDataset, load_index  # the data stack is needed by this entry only

    dataset = TripletDataset(load_index(index_path, "test"), shards_dir, masks_dir)
    fig3(examples, dataset, out_png, source=source, out_pdf=out_pdf)


# --- Fig. 4 -------------------------------------------------------------------------------------------------

def fig4_table(metrics: Mapping[str, str | Path]) -> pd.DataFrame:
    """One row per expected self-supervision run (``ssl_on_*``, ``ssl_off_*`` × 25/50/75/100 %): ``run``,
    ``pretext`` (bool), ``label_fraction_pct``, ``f1`` (micro) and ``status`` ("ok" or "missing").

    ``metrics`` maps run names to metrics.json paths; runs not in it, whose file does not exist or whose F1 is
    null are "missing".
    """
    unknown = sorted(name for name in metrics if not SSL_RUN.match(name))
    if unknown:
        raise ValueError(f"fig4: run names {unknown} are not ssl_on_<pct> / ssl_off_<pct>")
    rows = []
    for pretext in (True, False):
        for fraction in LABEL_FRACTIONS:
            run = f"ssl_{'on' if pretext else 'off'}_{fraction}"
            path = metrics.get(run)
            f1 = read_metrics(path).get("f1") if path is not None and Path(path).is_file() else None
            rows.append({"run": run, "pretext": pretext, "label_fraction_pct": fraction,
                         "f1": np.nan if f1 is None else float(f1),
                         "status": "missing" if f1 is None else "ok"})
    return pd.DataFrame(rows)


def fig4(
    metrics: Mapping[str, str | Path], out_png: str | Path, out_pdf: str | Path | None, *, source: str
) -> pd.DataFrame:
    """Fig. 4: micro F1 versus the percentage of labelled training data, with and without the pretext.

    Draws the runs that exist and lists the missing ones in the figure; the paper's F1 ≈ 0.703 (with pretext,
    100 % of the labels) is a separate point labelled "paper". Returns :func:`fig4_table`.
    """
    check_source(source)
    table = fig4_table(metrics)
    fig = Figure(figsize=(6.5, 4.8))
    ax = fig.add_subplot()
    styles = ((True, "o", "with pretext (self-supervised)"), (False, "s", "without pretext"))
    for pretext, marker, label in styles:
        part = table[(table["pretext"] == pretext) & (table["status"] == "ok")]
        if len(part):
            ax.plot(part["label_fraction_pct"], part["f1"], marker=marker, lw=1.5, label=label)
    ax.plot([100], [PAPER_FIG4_F1_100], marker="*", ms=14, ls="none", color="black",
            label=f"paper: F1 ≈ {PAPER_FIG4_F1_100} (with pretext, 100 %)")
    ax.annotate("paper", (100, PAPER_FIG4_F1_100), textcoords="offset points", xytext=(-12, 0), ha="right",
                va="center")
    ax.margins(y=0.15)
    missing = table.loc[table["status"] == "missing", "run"].tolist()
    if missing:
        ax.text(0.0, -0.2, "not available (not run yet): " + ", ".join(missing), transform=ax.transAxes,
                fontsize="x-small", va="top", ha="left", color="0.3")
    ax.set_xticks(list(LABEL_FRACTIONS))
    ax.set_xlim(15, 110)
    ax.set_xlabel("labelled training data used (%)")
    ax.set_ylabel("micro F1 on the test split")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="best")
    ax.set_title(_title("F1 versus labelled data (Gu et al. 2022, Fig. 4)", source))
    _save(fig, out_png, out_pdf)
    return table
