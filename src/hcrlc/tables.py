"""The paper's tables from our models and results, with the paper's values beside ours.

Table 1 needs no training: parameter counts come from the networks built on the meta device (no weights are
allocated, so even the 100 M-parameter defaults take milliseconds). Table 2 reads the evaluation's
``metrics.json`` files (one per training seed) and never runs a network; below the paper's models it shows the
trivial baselines of :mod:`hcrlc.baselines` (no paper values) as their own labelled rows. Each value gets a 95 %
bootstrap interval over test patches, recomputed from the saved ``predictions.npz`` (:mod:`hcrlc.bootstrap`: for a
model with several seeds, the interval of the mean over seeds with the networks held fixed).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hcrlc.atomic import atomic_output
from hcrlc.bootstrap import (
    CONFIDENCE,
    has_metric,
    metric_values,
    percentile_interval,
    read_aligned,
    resample_counts,
)
from hcrlc.errors import DataError
from hcrlc.model_specs import BASELINE_LABELS, MODEL_LABELS, MODELS
from hcrlc.models import learnable_parameters
from hcrlc.paper import TABLE1_PARAMS, TABLE2

DATA_SOURCES = ("synthetic", "real")

#: Table 1 row → the network that is counted (HCR&LC-Net 1:1 and uncertain share one architecture).
TABLE1_MODELS: dict[str, str] = {spec.table1_row: name for name, spec in MODELS.items() if spec.table1_row}


def table1(model_cfg: Mapping[str, Any] | None, patch_px: int) -> pd.DataFrame:
    """Table 1, learnable parameters: columns ``model`` (lc_net, hcr_lc, hcr_c_net), ``ours``, ``paper``,
    ``match``, ``patch_px``.

    ``model_cfg`` is the config's ``model`` section; ``patch_px`` the run's patch size (the C-Net's first Linear
    layer depends on it; the paper's is 256). ``match`` is True where our count equals the paper's exactly (it
    does with the default, Table-1 sizes at 256 px).
    """
    rows = []
    for row, name in TABLE1_MODELS.items():
        ours = learnable_parameters(name, model_cfg, patch_px)
        paper = TABLE1_PARAMS[row]
        rows.append({"model": row, "ours": ours, "paper": paper, "match": ours == paper, "patch_px": patch_px})
    return pd.DataFrame(rows, columns=["model", "ours", "paper", "match", "patch_px"])


def write_table1(model_cfg: Mapping[str, Any] | None, patch_px: int, out_csv: str | Path) -> pd.DataFrame:
    """Write :func:`table1` to ``out_csv`` atomically (temp file in the same folder, then ``os.replace``)."""
    frame = table1(model_cfg, patch_px)
    with atomic_output(out_csv) as tmp:
        frame.to_csv(tmp, index=False)
    return frame


#: Table 2 metrics that the paper reports, and ours only (the standard SSIM, see hcrlc.metrics).
TABLE2_METRICS: tuple[str, ...] = ("precision", "recall", "f1", "psnr", "ssim")
TABLE2_OURS_ONLY: tuple[str, ...] = ("ssim_standard",)
IMAGE_QUALITY: tuple[str, ...] = ("psnr", "ssim", "ssim_standard")
#: Rows whose image-quality cells stay empty, as in the paper: HCR-Net + C-Net's reconstruction is its frozen
#: HCR-Net's, whose numbers are the HCR-Net row's (its metrics.json still holds them): every model that
#: reconstructs without training the reconstruction.
NO_IMAGE_QUALITY: frozenset[str] = frozenset(
    name for name, spec in MODELS.items() if spec.reconstructs and not spec.trains_reconstruction
)


def check_source(source: str) -> str:
    """``source`` if it names a data source (synthetic or real), else :class:`ValueError`."""
    if source not in DATA_SOURCES:
        raise ValueError(f"data source must be one of {DATA_SOURCES}, got {source!r}")
    return source


def read_metrics(path: str | Path) -> dict[str, Any]:
    """One evaluation's ``metrics.json`` as a dict; :class:`DataError` if it is missing or not JSON."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as err:
        raise DataError(path, "metrics file missing",
                        "run the evaluation of this model (snakemake evaluate)") from err
    except json.JSONDecodeError as err:
        raise DataError(path, f"not valid JSON ({err})", "delete it and rerun the evaluation") from err


def _seed_stats(values: list[float | None]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (ddof 1; None for one seed) of the non-null values."""
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not vals:
        return None, None
    return float(np.mean(vals)), (float(np.std(vals, ddof=1)) if len(vals) > 1 else None)


def _table2_row(name: str, label: str, paths: Sequence[str | Path], paper: Mapping[str, float | None],
                runs: Sequence[Mapping[str, np.ndarray]], weights: np.ndarray | None) -> dict[str, Any]:
    metrics = [read_metrics(p) for p in paths]
    row: dict[str, Any] = {
        "model": name,
        "label": label,
        "status": "ok" if metrics else "missing",
        "n_seeds": len(metrics),
        "n_test": metrics[0].get("n_test") if metrics else None,
    }
    if name in NO_IMAGE_QUALITY:
        metrics = [{k: v for k, v in r.items() if k not in IMAGE_QUALITY} for r in metrics]
    for key in (*TABLE2_METRICS, *TABLE2_OURS_ONLY):
        row[key], row[f"{key}_std"] = _seed_stats([r.get(key) for r in metrics])
        lo = hi = None
        if row[key] is not None and weights is not None and runs and all(has_metric(r, key) for r in runs):
            lo, hi, _ = percentile_interval(metric_values(weights, runs, key))
        row[f"{key}_lo"], row[f"{key}_hi"] = lo, hi
        if key in TABLE2_METRICS:
            row[f"{key}_paper"] = paper.get(key)
    return row


def table2(
    metrics: Mapping[str, Sequence[str | Path]],
    source: str,
    config_hash: str,
    baselines: Mapping[str, str | Path] | None = None,
    predictions: Mapping[str, Sequence[str | Path]] | None = None,
    *,
    n_resamples: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Table 2, one row per model of the paper (in its order), ours beside the paper's; then the baselines.

    ``metrics`` maps a model name to its metrics.json paths, one per training seed; models absent from it (or
    with no path) get ``status`` "missing" and empty values. ``baselines`` maps a baseline of
    :data:`BASELINE_LABELS` to its one metrics.json; each gets a row after the models, labelled
    "… (baseline)", with empty paper columns and ``n_seeds`` empty (a baseline is not trained).
    ``predictions`` maps a model or baseline name to its predictions.npz paths (the seeds in the order of
    ``metrics``); a row's intervals come from them (:mod:`hcrlc.bootstrap`, ``n_resamples`` resamples of the
    test patches drawn from ``seed``; the same resamples for every row) and stay empty for a row without them.

    Columns: ``model``, ``label``, ``status``, ``n_seeds``, ``n_test``; per metric m of precision, recall, f1,
    psnr, ssim: ``m`` (our mean over seeds), ``m_std`` (sample std over seeds, empty for one seed), ``m_lo`` and
    ``m_hi`` (the 95 % bootstrap interval of ``m``) and ``m_paper``; then ``ssim_standard``,
    ``ssim_standard_std``, ``ssim_standard_lo``, ``ssim_standard_hi`` (ours only: the paper reports no standard
    SSIM); then ``source``, ``config_hash``, ``n_resamples`` and ``bootstrap_seed``. Our values are empty where
    the model has no such output, and image quality for :data:`NO_IMAGE_QUALITY`.
    """
    check_source(source)
    unknown = sorted(set(metrics) - set(TABLE2))
    if unknown:
        raise ValueError(f"table2: unknown model(s) {unknown}; Table 2 has {list(TABLE2)}")
    baselines = dict(baselines or {})
    unknown = sorted(set(baselines) - set(BASELINE_LABELS))
    if unknown:
        raise ValueError(f"table2: unknown baseline(s) {unknown}; known: {list(BASELINE_LABELS)}")
    loaded = read_aligned(predictions or {})
    n_test = {len(runs[0]["idx"]) for runs in loaded.values() if runs}
    weights = resample_counts(n_test.pop(), n_resamples, seed) if n_test else None
    rows = [_table2_row(model, MODEL_LABELS[model], metrics.get(model, ()), paper, loaded.get(model, []), weights)
            for model, paper in TABLE2.items()]
    for name, path in baselines.items():
        rows.append(_table2_row(name, BASELINE_LABELS[name], [path], {}, loaded.get(name, []), weights)
                    | {"n_seeds": None})
    for row in rows:
        row |= {"source": source, "config_hash": config_hash, "n_resamples": n_resamples, "bootstrap_seed": seed}
    frame = pd.DataFrame(rows)
    integers = ("n_seeds", "n_test", "n_resamples", "bootstrap_seed")
    numeric = [c for c in frame.columns if c not in ("model", "label", "status", "source", "config_hash", *integers)]
    frame[numeric] = frame[numeric].astype(float)
    for column in integers:  # a baseline has no seeds, so the columns are nullable
        frame[column] = frame[column].astype("Int64")
    return frame


def _cell(mean: float, std: float, lo: float = float("nan"), hi: float = float("nan")) -> str:
    """4 decimals like the paper's Table 2, ``± std`` over seeds and ``[lo, hi]`` (the bootstrap interval) where
    they exist; ``—`` where there is no value."""
    if pd.isna(mean):
        return "—"
    text = f"{mean:.4f}" if pd.isna(std) else f"{mean:.4f} ± {std:.4f}"
    return text if pd.isna(lo) else f"{text} [{lo:.4f}, {hi:.4f}]"


def table2_markdown(frame: pd.DataFrame, source: str, config_hash: str) -> str:
    """Markdown of :func:`table2`: a header naming the data source and config hash, then ours and the paper's
    values in separate columns (``—``: no such output; "missing": the model has no results yet)."""
    resamples = frame["n_resamples"].dropna()
    lines = [
        "# Table 2: land-cover classification and haze & cloud removal on the test split",
        "",
        f"- Data source: **{source}**" + (" (generated data: the numbers are not comparable to the paper's)"
                                          if source == "synthetic" else ""),
        f"- Config hash: `{config_hash}`",
        ("- P, R, F1: micro averages (sigmoid >= 0.5). PSNR in dB, per image on [0, 1]. SSIM: as the authors "
        "coded it (3-D 7x7x7 window, data range 2); SSIM std.: per band, Gaussian σ 1.5, data range 1 "
        "(not in the paper)."),
        "- Ours: mean ± sample std over seeds when there are several. Paper: Gu et al. 2022, Table 2.",
        (f"- [lo, hi]: {100 * CONFIDENCE:.0f} % percentile bootstrap interval over test patches "
         f"({int(resamples.iloc[0]) if len(resamples) else 0} resamples, seed "
         f"{int(frame['bootstrap_seed'].dropna().iloc[0]) if len(resamples) else 0}; P, R and F1 recomputed "
         "from the resampled patches' counts; with several seeds, the interval of the mean over seeds, the "
         "networks held fixed). It measures the test set's sampling noise, not the training's."),
        ("- Baselines (no network, no training): *cloudy input* scores the cloudy S2 as the reconstruction "
         "of the clear S2; *constant prediction* predicts, for every test patch, the class set with the best "
         "micro-F1 on the training split. A model that does not beat them has not learnt."),
        "",
    ]
    header = ["model", "seeds"]
    for key in TABLE2_METRICS:
        name = {"precision": "P", "recall": "R", "f1": "F1", "psnr": "PSNR", "ssim": "SSIM"}[key]
        header += [f"{name} (ours)", f"{name} (paper)"]
    header.append("SSIM std. (ours)")
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in frame.itertuples(index=False):
        cells = [row.label, "—" if pd.isna(row.n_seeds) else str(row.n_seeds)]
        for key in (*TABLE2_METRICS, *TABLE2_OURS_ONLY):
            values = (getattr(row, key), getattr(row, f"{key}_std"), getattr(row, f"{key}_lo"),
                      getattr(row, f"{key}_hi"))
            cells.append("missing" if row.status == "missing" else _cell(*values))
            if key in TABLE2_METRICS:
                cells.append(_cell(getattr(row, f"{key}_paper"), float("nan")))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_table2(
    metrics: Mapping[str, Sequence[str | Path]],
    source: str,
    config_hash: str,
    out_csv: str | Path,
    out_md: str | Path,
    baselines: Mapping[str, str | Path] | None = None,
    predictions: Mapping[str, Sequence[str | Path]] | None = None,
    *,
    n_resamples: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Write :func:`table2` as CSV and :func:`table2_markdown` as Markdown, both atomically."""
    frame = table2(metrics, source, config_hash, baselines, predictions, n_resamples=n_resamples, seed=seed)
    with atomic_output(out_csv) as tmp:
        frame.to_csv(tmp, index=False)
    with atomic_output(out_md) as tmp:
        tmp.write_text(table2_markdown(frame, source, config_hash))
    return frame


def write_html(frame: pd.DataFrame, out_html: str | Path, title: str) -> None:
    """A table as a small standalone HTML page (the Snakemake report shows it inline), atomically."""
    body = frame.to_html(index=False, na_rep="—", float_format=lambda v: f"{v:.4f}", border=0)
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title><style>"
            "body{font-family:sans-serif;font-size:13px} table{border-collapse:collapse}"
            "td,th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right}</style></head>"
            f"<body><h3>{title}</h3>{body}</body></html>\n")
    with atomic_output(out_html) as tmp:
        tmp.write_text(page)
