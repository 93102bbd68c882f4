"""The paper's figures from saved evaluation outputs — never runs a network.

* Fig. 1 (:func:`fig1`): micro F1 versus cloud cover, from each model's ``predictions.npz``, with 95 % bootstrap
  intervals over test patches (:mod:`hcrlc.bootstrap`) or the paper's std over random sub-groups as error bars;
  the constant prediction baseline (:mod:`hcrlc.baselines`) as a dashed line.
* Fig. 3 (:func:`fig3`): qualitative rows (cloudy S2, S1, reconstructions, clear S2), from ``examples.npz``
  and the test dataset.
* Fig. 4 (:func:`fig4`): micro F1 versus the fraction of labelled training data, with and without the
  self-supervised pretext, from the ``ssl_*`` runs' ``predictions.npz``, with 95 % bootstrap intervals, the range
  over seeds where a run has several, the constant prediction, and the number of labelled patches per fraction.
* Learning curves (:func:`curves`, not in the paper): loss and selection metric per epoch of every training
  run, from the runs' ``metrics.csv``.

Figures are drawn on :class:`matplotlib.figure.Figure` objects with the Agg canvas (no pyplot, no display, no
global state) and written atomically; PDFs carry no creation date so reruns give the same bytes. When the data
source is synthetic, every title says so.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator
from torch.utils.data import Dataset

from hcrlc.atomic import atomic_output
from hcrlc.bootstrap import (
    CONFIDENCE,
    cloud_bin,
    metric_values,
    percentile_interval,
    read_aligned,
    resample_counts,
)
from hcrlc.errors import DataError
from hcrlc.metrics import micro_f1
from hcrlc.model_specs import MODEL_LABELS, PRETEXT
from hcrlc.paper import LABEL_FRACTIONS, S1_MEAN, S1_STD, S2_BANDS
from hcrlc.tables import BASELINE_LABELS, check_source

log = logging.getLogger(__name__)

#: Fig. 4 / §4: with the pretext and 100 % of the labels the paper reaches F1 ≈ 0.703 (its best) [P]. Here, not in
#: hcrlc.paper, which every job's code hash covers: a new constant there would rerun every training.
FIG4_F1_PRETEXT_100 = 0.703

#: Bands shown as RGB: B4, B3, B2 (0-based positions in the 13-band S2 stack) [MS].
RGB_BANDS = (3, 2, 1)
STRETCH_PERCENTILES = (2.0, 98.0)
SSL_RUN = re.compile(r"^ssl_(?P<pretext>on|off)_(?P<fraction>\d+)$")
DPI = 150


def _title(text: str, source: str, geometry: str | None = None) -> str:
    """``text``, and on synthetic data the label "synthetic data" with the run's ``geometry`` (patch size, pixel
    size, U-Net; the workflow's ``GEOMETRY``) on a second line."""
    if check_source(source) != "synthetic":
        return text
    return f"{text} — synthetic data" + (f"\n{geometry}" if geometry else "")


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

def subgroup_split(members: np.ndarray, subgroups: int, seed: int, bin_index: int) -> list[np.ndarray]:
    """Split ``members`` (positions of one bin's samples) into ``subgroups`` random disjoint groups.

    Seeded by ``(seed, bin_index)`` alone, so every model sees the same groups of the same test samples.
    Groups differ in size by at most one; with fewer members than groups, some are empty.
    """
    rng = np.random.default_rng([seed, bin_index])
    return np.array_split(rng.permutation(np.sort(members)), subgroups)


def fig1_table(
    predictions: Mapping[str, str | Path], *, bins: int = 10, subgroups: int = 10, seed: int = 0,
    n_resamples: int = 1000, bootstrap_seed: int = 0,
) -> pd.DataFrame:
    """Per classifying model and cloud-cover bin: ``n`` test samples, micro ``f1`` of the bin, its 95 % bootstrap
    interval over test patches (``f1_lo``, ``f1_hi``; :mod:`hcrlc.bootstrap`: ``n_resamples`` resamples of the
    whole test split drawn from ``bootstrap_seed``, the bin's F1 on each), and the mean and standard deviation
    (ddof 0) of the F1 of ``subgroups`` random disjoint sub-groups of the bin (the paper's error bars).

    ``predictions`` maps a model name to its predictions.npz; models without ``probs`` (HCR-Net) are skipped.
    All models must cover the same test samples. Columns: ``model``, ``bin``, ``cloud_lo_pct``,
    ``cloud_hi_pct``, ``n``, ``f1``, ``f1_lo``, ``f1_hi``, ``f1_subgroup_mean``, ``f1_subgroup_std``,
    ``n_subgroups`` (non-empty ones).
    """
    rows = []
    loaded = read_aligned({model: [path] for model, path in predictions.items()})
    weights = None
    for model, (data,) in loaded.items():
        if "probs" not in data:
            log.info("fig1: %s has no classification output; skipped", model)
            continue
        probs, targets = data["probs"], data["targets"]
        if weights is None:
            weights = resample_counts(len(data["idx"]), n_resamples, bootstrap_seed)
        which = cloud_bin(data["cloud_fraction"], bins)
        for b in range(bins):
            members = np.flatnonzero(which == b)
            groups = [g for g in subgroup_split(members, subgroups, seed, b) if g.size]
            scores = np.array([micro_f1(probs[g], targets[g]) for g in groups])
            lo = hi = np.nan
            if members.size:
                lo, hi, _ = percentile_interval(metric_values(weights, [data], "f1", which == b))
            rows.append({
                "model": model,
                "bin": b,
                "cloud_lo_pct": 100.0 * b / bins,
                "cloud_hi_pct": 100.0 * (b + 1) / bins,
                "n": int(members.size),
                "f1": micro_f1(probs[members], targets[members]) if members.size else np.nan,
                "f1_lo": lo,
                "f1_hi": hi,
                "f1_subgroup_mean": float(scores.mean()) if scores.size else np.nan,
                "f1_subgroup_std": float(scores.std()) if scores.size > 1 else np.nan,
                "n_subgroups": len(groups),
            })
    if not rows:
        raise DataError(Path(next(iter(predictions.values()), ".")),
                        "no classifying model among the predictions",
                        "pass predictions.npz files of models with a classification head")
    return pd.DataFrame(rows)


#: What Fig. 1's error bars can show: the bootstrap interval over test patches, or the paper's sub-group std.
FIG1_ERROR_BARS = ("bootstrap", "subgroups")


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
    baselines: Mapping[str, str | Path] | None = None,
    error_bars: str = "bootstrap",
    n_resamples: int = 1000,
    bootstrap_seed: int = 0,
    geometry: str | None = None,
) -> pd.DataFrame:
    """Fig. 1: micro F1 versus the cloudy-pixel percentage, one line per classifying model; a panel below counts
    the test patches per bin.

    ``error_bars`` chooses what the bars show: "bootstrap", the 95 % bootstrap interval of the bin's F1 over test
    patches (``n_resamples`` resamples from ``bootstrap_seed``), or "subgroups", the paper's std over
    ``subgroups`` seeded random sub-groups per bin (``seed``); the legend says which, and the CSV holds both.
    ``baselines`` maps a baseline name (:data:`~hcrlc.tables.BASELINE_LABELS`, e.g. ``constant_prediction``)
    to its predictions.npz: each is drawn as a dashed line without error bars, labelled in the legend. Writes
    ``out_png``, ``out_pdf`` and the numbers of models and baselines (:func:`fig1_table`) to ``out_csv``
    (default: beside the PNG with suffix ``.csv``); returns them.
    """
    check_source(source)
    baselines = dict(baselines or {})
    unknown = sorted(set(baselines) - set(BASELINE_LABELS))
    if unknown:
        raise ValueError(f"fig1: unknown baseline(s) {unknown}; known: {list(BASELINE_LABELS)}")
    table = fig1_table({**predictions, **baselines}, bins=bins, subgroups=subgroups, seed=seed,
                       n_resamples=n_resamples, bootstrap_seed=bootstrap_seed)
    fig = fig1_figure(table, source=source, bins=bins, subgroups=subgroups, error_bars=error_bars,
                      n_resamples=n_resamples, geometry=geometry)
    _save(fig, out_png, out_pdf)
    out_csv = Path(out_png).with_suffix(".csv") if out_csv is None else Path(out_csv)
    with atomic_output(out_csv) as tmp:
        table.to_csv(tmp, index=False)
    return table


def fig1_figure(table: pd.DataFrame, *, source: str, bins: int, subgroups: int, error_bars: str = "bootstrap",
                n_resamples: int | None = None, geometry: str | None = None) -> Figure:
    """Draw :func:`fig1`'s figure from a :func:`fig1_table`: models as lines with ``error_bars`` ("bootstrap":
    ``f1_lo`` to ``f1_hi``; "subgroups": ± ``f1_subgroup_std``), the baselines among its ``model`` values
    (:data:`~hcrlc.tables.BASELINE_LABELS`) as dashed lines."""
    if error_bars not in FIG1_ERROR_BARS:
        raise ValueError(f"fig1: error_bars must be one of {FIG1_ERROR_BARS}, got {error_bars!r}")
    baselines = [m for m in dict.fromkeys(table["model"]) if m in BASELINE_LABELS]
    models = [m for m in dict.fromkeys(table["model"]) if m not in BASELINE_LABELS]
    width = 100.0 / bins
    fig = Figure(figsize=(7.5, 6.5))
    grid = fig.add_gridspec(2, 1, height_ratios=(3, 1), hspace=0.08)
    ax = fig.add_subplot(grid[0])
    ax_n = fig.add_subplot(grid[1], sharex=ax)
    for i, model in enumerate(models):
        part = table[table["model"] == model]
        centre = (part["cloud_lo_pct"] + part["cloud_hi_pct"]) / 2 + (i - (len(models) - 1) / 2) * width * 0.1
        if error_bars == "bootstrap":
            yerr = np.vstack([part["f1"] - part["f1_lo"], part["f1_hi"] - part["f1"]]).clip(min=0)
        else:
            yerr = part["f1_subgroup_std"]
        ax.errorbar(centre, part["f1"], yerr=yerr, marker="o", ms=4, capsize=3, lw=1.2,
                    label=MODEL_LABELS.get(model, model))
    for name in baselines:
        # bins without patches left out, so that the dashed line joins the bins that have them
        part = table[(table["model"] == name) & table["f1"].notna()]
        # the same F1 per bin as the models', no spread: the baseline predicts the same set everywhere
        ax.plot((part["cloud_lo_pct"] + part["cloud_hi_pct"]) / 2, part["f1"], ls="--", lw=1.5, color="0.25",
                marker="x", ms=5, label=BASELINE_LABELS[name])
    ax.set_ylabel("micro F1 on the test split")
    if error_bars == "bootstrap":
        how = f" ({n_resamples} resamples)" if n_resamples else ""
        title = f"error bars: {100 * CONFIDENCE:.0f} % bootstrap interval\nover test patches{how}"
    else:
        title = f"error bars: std of F1 over\n{subgroups} random sub-groups per bin (paper)"
    ax.legend(title=title, title_fontsize="small", fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(alpha=0.3)
    ax.tick_params(labelbottom=False)
    ax.set_title(_title("F1 versus cloud cover (Gu et al. 2022, Fig. 1)", source, geometry))

    counts = table[table["model"] == table["model"].iloc[0]]  # every model and baseline has the same bins
    centres = (counts["cloud_lo_pct"] + counts["cloud_hi_pct"]) / 2
    bars = ax_n.bar(centres, counts["n"], width=width * 0.85, color="0.6")
    ax_n.bar_label(bars, labels=[str(n) for n in counts["n"]], fontsize="x-small", padding=1)
    ax_n.set_ylim(0, max(1, counts["n"].max()) * 1.3)
    ax_n.set_ylabel("test patches\n(count)")
    ax_n.set_xlabel("cloudy pixels in the patch (%)")
    ax_n.set_xticks(np.linspace(0, 100, bins + 1))
    ax_n.set_xlim(0, 100)
    return fig


# --- Fig. 3 -------------------------------------------------------------------------------------------------

def percentile_limits(image: np.ndarray) -> np.ndarray:
    """Per channel (axis 0) 2nd and 98th percentiles: (C, 2)."""
    flat = np.asarray(image, dtype=np.float64).reshape(image.shape[0], -1)
    return np.percentile(flat, STRETCH_PERCENTILES, axis=1).T


def true_colour_limits(rgb: np.ndarray) -> np.ndarray:
    """One range for all three bands of (3, H, W) reflectance: the 2nd percentile of the darkest band's values to
    the 98th of the brightest's, as (3, 2). Unlike per-band limits it keeps the bands' balance, so an image shows
    its true colour and a reconstruction that is off by 0.01 in one band does not turn that band's colour."""
    bands = percentile_limits(rgb)
    return np.tile([bands[:, 0].min(), bands[:, 1].max()], (rgb.shape[0], 1))


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
    geometry: str | None = None,
) -> None:
    """Fig. 3: one row per example patch; columns cloudy S2, S1, each model's reconstruction, clear S2.

    ``examples`` maps a model name (columns in this order; the paper shows ``hcr_net`` and
    ``hcr_lc_uncertain``) to its examples.npz; all must hold the same ``rows`` of ``dataset`` (the test split
    the models were evaluated on). S2 is shown as RGB = B4, B3, B2, every S2 panel of a row with the same
    true-colour stretch — one range for the three bands from the clear target's percentiles
    (:func:`true_colour_limits`) — so colours compare and clouds saturate to white. S1 as false colour (see
    :func:`s1_false_colour`). ``dataset`` is anything indexable by row that gives :class:`hcrlc.data.dataset.TripletDataset` items (``x``, ``s2``, ``cloud_fraction`` are used);
    its ``pixel_size_m`` (m), where it has one, goes into the title with the patch size.
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
        target_limits = true_colour_limits(clear[rgb])
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
    # the patch and pixel size as the data has them (each panel is one whole patch): the paper's are 256 px at 10 m
    pixel_size_m = getattr(dataset, "pixel_size_m", None)
    at = f" at {pixel_size_m:g} m" if pixel_size_m is not None else ""
    size = f"; {clear.shape[-2]}×{clear.shape[-1]} px patches{at}" if len(rows) else ""
    fig.suptitle(_title(f"Qualitative results (Gu et al. 2022, Fig. 3){size}", source, geometry), fontsize="medium")
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
    geometry: str | None = None,
) -> None:
    """:func:`fig3` with the test split read from ``index.parquet``, the shards and the cloud masks."""
    from hcrlc.data.dataset import TripletDataset, load_index  # the data stack is needed by this entry only

    dataset = TripletDataset(load_index(index_path, "test"), shards_dir, masks_dir)
    fig3(examples, dataset, out_png, source=source, out_pdf=out_pdf, geometry=geometry)


# --- Fig. 4 -------------------------------------------------------------------------------------------------

def labelled_patches(index_path: str | Path, seed: int) -> dict[int, int]:
    """Labelled training patches of each Fig. 4 fraction (percent -> count): the subsets the SSL runs of
    ``seed`` (config ``ssl.seed``) train on, :func:`hcrlc.pretext.nested_label_subsets` of the index's train
    split."""
    from hcrlc.data.dataset import load_index  # the data stack is needed by this entry only
    from hcrlc.pretext import nested_label_subsets

    n_train = len(load_index(index_path, "train"))
    return {f: len(rows) for f, rows in nested_label_subsets(n_train, list(LABEL_FRACTIONS), seed).items()}


def fig4_table(
    predictions: Mapping[str, str | Path | Sequence[str | Path]], *, n_resamples: int = 1000, seed: int = 0,
    labelled: Mapping[int, int] | None = None,
) -> pd.DataFrame:
    """One row per expected self-supervision run (``ssl_on_*``, ``ssl_off_*`` × 25/50/75/100 %): ``run``,
    ``pretext`` (bool), ``label_fraction_pct``, ``n_labelled`` (from ``labelled``, else empty), ``n_seeds``,
    ``f1`` (micro; the mean over seeds), ``f1_lo`` and ``f1_hi`` (its 95 % bootstrap interval over test patches,
    :mod:`hcrlc.bootstrap`, ``n_resamples`` resamples from ``seed``), ``f1_seed_min``, ``f1_seed_max`` and
    ``f1_seed_std`` (over seeds; empty for one) and ``status`` ("ok" or "missing").

    ``predictions`` maps run names to their predictions.npz (one path, or one per seed); runs not in it, whose
    files do not all exist or that do not classify are "missing".
    """
    unknown = sorted(name for name in predictions if not SSL_RUN.match(name))
    if unknown:
        raise ValueError(f"fig4: run names {unknown} are not ssl_on_<pct> / ssl_off_<pct>")
    paths = {run: [p] if isinstance(p, str | Path) else list(p) for run, p in predictions.items()}
    present = {run: files for run, files in paths.items() if files and all(Path(f).is_file() for f in files)}
    loaded = {run: runs for run, runs in read_aligned(present).items() if all("probs" in r for r in runs)}
    n_test = {len(runs[0]["idx"]) for runs in loaded.values()}
    weights = resample_counts(n_test.pop(), n_resamples, seed) if n_test else None
    rows = []
    for pretext in (True, False):
        for fraction in LABEL_FRACTIONS:
            run = f"ssl_{'on' if pretext else 'off'}_{fraction}"
            row = {"run": run, "pretext": pretext, "label_fraction_pct": fraction,
                   "n_labelled": (labelled or {}).get(fraction), "n_seeds": 0, "f1": np.nan, "f1_lo": np.nan,
                   "f1_hi": np.nan, "f1_seed_min": np.nan, "f1_seed_max": np.nan, "f1_seed_std": np.nan,
                   "status": "missing"}
            runs = loaded.get(run)
            if runs:
                per_seed = [micro_f1(r["probs"], r["targets"]) for r in runs]
                lo, hi, _ = percentile_interval(metric_values(weights, runs, "f1"))
                row |= {"n_seeds": len(runs), "f1": float(np.mean(per_seed)), "f1_lo": lo, "f1_hi": hi,
                        "status": "ok"}
                if len(runs) > 1:
                    row |= {"f1_seed_min": min(per_seed), "f1_seed_max": max(per_seed),
                            "f1_seed_std": float(np.std(per_seed, ddof=1))}
            rows.append(row)
    frame = pd.DataFrame(rows)
    frame["n_labelled"] = frame["n_labelled"].astype("Int64")
    return frame


def fig4(
    predictions: Mapping[str, str | Path | Sequence[str | Path]], out_png: str | Path, out_pdf: str | Path | None,
    *, source: str, constant_f1: float | None = None, labelled: Mapping[int, int] | None = None,
    n_resamples: int = 1000, seed: int = 0, geometry: str | None = None,
) -> pd.DataFrame:
    """Fig. 4: micro F1 versus the percentage of labelled training data, with and without the pretext.

    Draws the runs that exist (:func:`fig4_table`) with their 95 % bootstrap intervals over test patches as error
    bars and, where a run has several seeds, a band from the lowest to the highest seed's F1; lists the missing
    runs in the figure. The paper's F1 ≈ 0.703 (with pretext, 100 % of the labels) is a separate point labelled
    "paper"; ``constant_f1`` (the constant prediction's test F1, see :mod:`hcrlc.baselines`) a dashed line: a
    run below it has learnt nothing. ``labelled`` (percent -> labelled training patches,
    :func:`labelled_patches`) names the count under each fraction. Returns :func:`fig4_table`.
    """
    check_source(source)
    table = fig4_table(predictions, n_resamples=n_resamples, seed=seed, labelled=labelled)
    fig = Figure(figsize=(6.8, 5.0))
    ax = fig.add_subplot()
    styles = ((True, "o", "with pretext (self-supervised)", "tab:blue", -1.0),
              (False, "s", "without pretext", "tab:orange", 1.0))
    seeds = int(table["n_seeds"].max())
    for pretext, marker, label, colour, shift in styles:
        part = table[(table["pretext"] == pretext) & (table["status"] == "ok")]
        if not len(part):
            continue
        x = part["label_fraction_pct"] + shift  # the two curves' error bars side by side
        yerr = np.vstack([part["f1"] - part["f1_lo"], part["f1_hi"] - part["f1"]]).clip(min=0)
        ax.errorbar(x, part["f1"], yerr=yerr, marker=marker, lw=1.5, capsize=3, color=colour, label=label)
        several = part[part["n_seeds"] > 1]
        if len(several):
            ax.fill_between(several["label_fraction_pct"] + shift, several["f1_seed_min"], several["f1_seed_max"],
                            color=colour, alpha=0.18, lw=0,
                            label=f"{label}: range over {int(several['n_seeds'].max())} seeds")
    if constant_f1 is not None:
        ax.axhline(constant_f1, ls="--", lw=1.2, color="0.4",
                   label=f"constant prediction (no training): F1 {constant_f1:.3f}")
    ax.plot([100], [FIG4_F1_PRETEXT_100], marker="*", ms=14, ls="none", color="black",
            label=f"paper: F1 ≈ {FIG4_F1_PRETEXT_100} (with pretext, 100 %)")
    ax.annotate("paper", (100, FIG4_F1_PRETEXT_100), textcoords="offset points", xytext=(-12, 0), ha="right",
                va="center")
    ax.margins(y=0.15)
    missing = table.loc[table["status"] == "missing", "run"].tolist()
    if missing:
        ax.text(0.0, -0.24, "not available (not run yet): " + ", ".join(missing), transform=ax.transAxes,
                fontsize="x-small", va="top", ha="left", color="0.3")
    ax.set_xticks(list(LABEL_FRACTIONS))
    counts = dict(zip(table["label_fraction_pct"], table["n_labelled"]))
    ax.set_xticklabels([f"{f} %" if pd.isna(counts[f]) else
                        f"{f} %\n{counts[f]} patch{'' if counts[f] == 1 else 'es'}" for f in LABEL_FRACTIONS])
    ax.set_xlim(15, 110)
    ax.set_xlabel("labelled training data used (% of the training split; labelled patches below)")
    ax.set_ylabel("micro F1 on the test split")
    ax.grid(alpha=0.3)
    legend_title = (f"error bars: {100 * CONFIDENCE:.0f} % bootstrap interval over test patches"
                    + ("" if seeds > 1 else "\n(one training seed per run)"))
    ax.legend(fontsize="small", loc="best", title=legend_title, title_fontsize="x-small")
    ax.set_title(_title("F1 versus labelled data (Gu et al. 2022, Fig. 4)", source, geometry))
    _save(fig, out_png, out_pdf)
    return table


# --- Learning curves ----------------------------------------------------------------------------------------

#: How the curves figure names each run's selection metric (the column training selects its best epoch by).
SELECTION_LABELS = {"val_f1": "val. micro F1", "val_psnr": "val. PSNR (dB)", "val_acc": "val. accuracy"}
TRAIN_COLOUR, VAL_LOSS_COLOUR, METRIC_COLOUR = "tab:blue", "tab:cyan", "tab:red"
STAGE_SHADES = ("0.88", "white")
CURVES_COLUMNS = 5


def read_curve(path: str | Path) -> pd.DataFrame:
    """A run's ``metrics.csv`` (one row per epoch, as :mod:`hcrlc.training` / :mod:`hcrlc.selfsup` write it).

    :class:`DataError` if it is missing, empty or lacks ``epoch`` and ``train_loss``.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "metrics.csv missing", "train the run first (snakemake train / snakemake ssl)")
    frame = pd.read_csv(path)
    missing = {"epoch", "train_loss"} - set(frame.columns)
    if frame.empty or missing:
        raise DataError(path, f"no epochs or missing columns {sorted(missing)}",
                        "delete the run's folder and train it again")
    return frame


def selection_metric(frame: pd.DataFrame) -> str:
    """The column a run was selected by: ``val_acc`` (pretext), else ``val_f1`` where the run classifies,
    else ``val_psnr`` (HCR-Net) — as :func:`hcrlc.training.train_model` chooses it."""
    for column in ("val_acc", "val_f1", "val_psnr"):
        if column in frame.columns and frame[column].notna().any():
            return column
    raise ValueError(f"metrics.csv has no selection metric among val_acc, val_f1, val_psnr: "
                     f"columns {list(frame.columns)}")


def best_epoch(frame: pd.DataFrame, metric: str) -> int:
    """The epoch training kept: the first one with the highest ``metric`` (later ties do not replace it), within
    the last stage for a self-supervised run (its model is the last stage's best, :mod:`hcrlc.selfsup`)."""
    if "stage" in frame.columns:
        frame = frame[frame["stage"] == frame["stage"].iloc[-1]]
    values = frame[metric].to_numpy(dtype=np.float64)
    return int(frame["epoch"].iloc[int(np.nanargmax(values))])


def _run_title(run: str) -> str:
    match = SSL_RUN.match(run)
    if match:
        how = "with pretext" if match["pretext"] == "on" else "from scratch"
        return f"{run}: {how}, {match['fraction']} % labels"
    if run == PRETEXT:
        return "pretext (4-way neighbour direction)"
    model, _, seed = run.partition("_s")
    label = MODEL_LABELS.get(model, run)
    return f"{label} (seed {seed})" if seed and model in MODEL_LABELS else label


def _draw_curve(ax, frame: pd.DataFrame, run: str) -> tuple[str, int]:
    """One panel: losses on ``ax``, the selection metric on a twin axis, stages, best epoch, chance."""
    epochs = frame["epoch"].to_numpy()
    if "stage" in frame.columns:
        starts = np.flatnonzero(frame["stage"].to_numpy() != np.roll(frame["stage"].to_numpy(), 1))
        starts = starts if starts.size and starts[0] == 0 else np.r_[0, starts]
        bounds = list(starts) + [len(frame)]
        for k, (lo, hi) in enumerate(pairwise(bounds)):
            left, right = epochs[lo] - 0.5, epochs[hi - 1] + 0.5
            if len(bounds) > 2:  # one stage alone needs no band, only its name
                ax.axvspan(left, right, color=STAGE_SHADES[k % 2], zorder=0, lw=0)
            if k:
                ax.axvline(left, color="0.4", lw=0.8, ls="-", zorder=1)
            ax.text((left + right) / 2, 0.97, f"stage: {frame['stage'].iloc[lo]}",
                    transform=ax.get_xaxis_transform(), ha="center", va="top", fontsize="x-small",
                    color="0.25")
    ax.plot(epochs, frame["train_loss"], color=TRAIN_COLOUR, marker="o", ms=3, lw=1.3, label="train_loss")
    if "val_loss" in frame.columns:
        ax.plot(epochs, frame["val_loss"], color=VAL_LOSS_COLOUR, marker="o", ms=2.5, lw=1.0, ls="--",
                label="val_loss")
    ax.set_xlabel("epoch", fontsize="small")
    ax.set_ylabel("loss", fontsize="small", color=TRAIN_COLOUR)
    ax.tick_params(labelsize="x-small")
    ax.set_xlim(epochs.min() - 0.5, epochs.max() + 0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    ax.margins(y=0.25)  # room for the stage names at the top

    metric = selection_metric(frame)
    best = best_epoch(frame, metric)
    twin = ax.twinx()
    ax.set_label(f"{run}: loss")
    twin.set_label(f"{run}: metric")
    twin.plot(epochs, frame[metric], color=METRIC_COLOUR, marker="s", ms=3, lw=1.3, label=metric)
    best_value = float(frame.loc[frame["epoch"] == best, metric].iloc[0])
    twin.plot([best], [best_value], marker="*", ms=11, color=METRIC_COLOUR, mec="black", mew=0.6, ls="none",
              zorder=5)
    if metric == "val_acc":
        chance = float(frame["chance_acc"].iloc[0]) if "chance_acc" in frame.columns else 0.25
        twin.axhline(chance, color=METRIC_COLOUR, ls=":", lw=1.2)
        twin.annotate(f"chance {chance:.2f}", (0.98, chance), xycoords=("axes fraction", "data"),
                      textcoords="offset points", xytext=(0, -3), ha="right", va="top", fontsize="x-small",
                      color=METRIC_COLOUR)
        twin.set_ylim(0, 1)
    else:
        twin.margins(y=0.3)
        if metric == "val_f1":  # an F1 lies in [0, 1]: no axis far beyond (a little, so 0 and 1 show)
            low, high = twin.get_ylim()
            twin.set_ylim(max(low, -0.02), min(high, 1.02))
    twin.set_ylabel(SELECTION_LABELS[metric], fontsize="small", color=METRIC_COLOUR)
    twin.tick_params(labelsize="x-small", colors=METRIC_COLOUR, axis="y")
    number = f"{best_value:.2f}" if metric == "val_psnr" else f"{best_value:.3f}"
    ax.set_title(f"{_run_title(run)}\nbest: epoch {best}, {SELECTION_LABELS[metric]} {number}",
                 fontsize="small")
    return metric, best


def curves(
    metrics: Mapping[str, str | Path], out_png: str | Path, out_pdf: str | Path | None, *, source: str,
    geometry: str | None = None,
) -> pd.DataFrame:
    """Learning curves: one panel per run (``metrics`` maps a run name to its ``metrics.csv``, panels in
    that order), train loss (and validation loss, dashed) per epoch on the left axis, the run's selection
    metric (``val_f1``, ``val_psnr`` or the pretext's ``val_acc``) on the right; the best epoch (the one the
    run kept) starred; SSL stages shaded and named; chance accuracy (0.25) on the pretext panel.

    Returns one row per run: ``run``, ``metric``, ``best_epoch``, ``best_value``, ``epochs``, ``stages``
    (comma-separated, empty for single-stage runs).
    """
    if not metrics:
        raise ValueError("curves needs the metrics.csv of at least one run")
    fig, table = curves_figure({run: read_curve(path) for run, path in metrics.items()}, source=source,
                               geometry=geometry)
    _save(fig, out_png, out_pdf)
    return table


def curves_figure(frames: Mapping[str, pd.DataFrame], *, source: str,
                  geometry: str | None = None) -> tuple[Figure, pd.DataFrame]:
    """Draw :func:`curves`' figure from the runs' metrics tables (:func:`read_curve`); returns it and the
    per-run summary. A run's panel is the axes labelled ``"{run}: loss"`` (``Axes.get_label``), its right
    axis ``"{run}: metric"``."""
    check_source(source)
    n = len(frames)
    n_cols = min(CURVES_COLUMNS, n)
    n_rows = -(-n // n_cols)
    spare = n_rows * n_cols - n
    fig = Figure(figsize=(3.9 * n_cols, 3.1 * n_rows + (0.9 if not spare else 0.5)))
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    rows = []
    for ax, (run, frame) in zip(axes.flat, frames.items()):
        metric, best = _draw_curve(ax, frame, run)
        stages = list(dict.fromkeys(frame["stage"])) if "stage" in frame.columns else []
        rows.append({"run": run, "metric": metric, "best_epoch": best,
                     "best_value": float(frame.loc[frame["epoch"] == best, metric].iloc[0]),
                     "epochs": len(frame), "stages": ",".join(stages)})
    for ax in list(axes.flat)[n:]:
        ax.set_axis_off()
    handles = [Line2D([], [], color=TRAIN_COLOUR, marker="o", ms=3, label="train loss (left axis)"),
               Line2D([], [], color=VAL_LOSS_COLOUR, marker="o", ms=3, ls="--",
                      label="validation loss (left axis)"),
               Line2D([], [], color=METRIC_COLOUR, marker="s", ms=3,
                      label="validation metric the run selects by (right axis)"),
               Line2D([], [], color=METRIC_COLOUR, marker="*", ms=10, mec="black", ls="none",
                      label="best epoch (the checkpoint kept)"),
               Line2D([], [], color=METRIC_COLOUR, ls=":", label="chance accuracy (pretext: 1 of 4)"),
               Patch(facecolor=STAGE_SHADES[0], edgecolor="0.4", label="SSL stage (named at the top)")]
    if spare:  # in the first unused panel
        axes.flat[n].legend(handles=handles, loc="center", fontsize="small", frameon=False)
    else:
        fig.legend(handles=handles, loc="lower center", ncol=3, fontsize="small", frameon=False)
    fig.suptitle(_title("Learning curves of every training run (per epoch, from metrics.csv)", source, geometry),
                 fontsize="medium")
    fig.tight_layout(rect=(0, 0 if spare else 0.07, 1, 0.97))
    return fig, pd.DataFrame(rows)
