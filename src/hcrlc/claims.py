"""The paper's claims, each tested on this run: an effect size, its paired bootstrap interval and a verdict.

Everything comes from the saved per-patch ``predictions.npz`` (no network runs). Each row compares two sides on
the same resampled test patches (:mod:`hcrlc.bootstrap`: the resamples Table 2's intervals use), so the interval of
the difference is paired. The claims (Gu et al. 2022; ``claim_id`` groups the rows of one claim):

* ``hcr_beats_lc_net``: models with haze & cloud removal classify better than LC-Net — F1(model) − F1(LC-Net) > 0
  for HCR&LC-Net 1:1, HCR&LC-Net uncertain and HCR-Net + C-Net (Table 2);
* ``uncertain_best_f1``: HCR&LC-Net uncertain has the best F1 — F1(uncertain) − F1(other) > 0 for every other
  classifier (Table 2);
* ``uncertain_second_psnr``: it is second only to HCR-Net on PSNR — PSNR(uncertain) − PSNR(HCR-Net) < 0 and
  PSNR(uncertain) − PSNR(HCR&LC-Net 1:1) > 0 (Table 2; HCR-Net + C-Net reconstructs with its frozen HCR-Net);
* ``pretext_25_reaches_95pct``: with the pretext, 25 % of the labels reach at least 95 % of the F1 with 100 % —
  F1(ssl_on_25) / F1(ssl_on_100) ≥ 0.95 (§4, Fig. 4);
* ``pretext_beats_scratch``: the pretext beats training without it at every label fraction —
  F1(ssl_on_f) − F1(ssl_off_f) > 0 for each fraction f the config runs (Fig. 4);
* ``lc_net_f1_falls_with_cloud``: LC-Net's F1 falls as cloud cover grows — the **cloud drop**, F1 of the test
  patches in the lower half of Fig. 1's cloud-cover bins (below 50 % cloudy with the default 10 bins) minus F1
  of those in the upper half (50 % and more), is > 0 (the middle bin is left out when the number of bins is odd);
* ``hcr_flat_with_cloud``: models trained with HCR stay flat where LC-Net drops — cloud drop(LC-Net) − cloud
  drop(model) > 0 for each HCR classifier (Fig. 1; the model's own drop is the row's ``a``).

Verdicts (:func:`verdict`): **supported** when the 95 % interval lies entirely on the claim's side of its
threshold, **not supported** when entirely on the other side, **inconclusive** when it straddles the threshold,
**not testable** when a run it needs is missing or an effect cannot be computed (no test patch in a half). On
synthetic data every verdict is followed by "(synthetic)".
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from hcrlc.atomic import atomic_output
from hcrlc.bootstrap import (
    CONFIDENCE,
    cloud_bin,
    metric_values,
    percentile_interval,
    read_aligned,
    resample_counts,
)
from hcrlc.model_specs import CLASSIFIERS, MODEL_LABELS, MODELS
from hcrlc.paper import LABEL_FRACTIONS, TABLE2
from hcrlc.tables import check_source

log = logging.getLogger(__name__)

#: §4: with the pretext, 25 % of the labels "already reach" ≈ 95 % of the F1 with 100 % [P] (the text's number;
#: here, not in hcrlc.paper, which every job's code hash covers).
FIG4_RATIO_25_OF_100 = 0.95

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE, NOT_TESTABLE = "supported", "not supported", "inconclusive", "not testable"
#: The classifiers trained with haze & cloud removal (all but LC-Net).
HCR_CLASSIFIERS: tuple[str, ...] = tuple(m for m in CLASSIFIERS if MODELS[m].reconstructs)
UNCERTAIN, LC_NET, HCR_NET, EQUAL = "hcr_lc_uncertain", "lc_net", "hcr_net", "hcr_lc_equal"
COLUMNS = ["claim_id", "claim", "comparison", "effect_definition", "claimed", "effect", "lo", "hi", "paper", "a",
           "b", "verdict", "note", "n_test", "n_resamples", "bootstrap_seed", "source"]

Runs = Mapping[str, Sequence[Mapping[str, np.ndarray]]]
#: A statistic of the resampled patches: weights (B, N), or (N,) ones for the test split itself -> (B,) or ().
Statistic = Callable[[np.ndarray], np.ndarray]


def verdict(lo: float, hi: float, claimed: str, threshold: float) -> str:
    """The verdict of an interval [lo, hi] on a claim ``effect claimed threshold`` (claimed: ">", ">=" or "<").

    An interval that touches the threshold of a strict claim is inconclusive: two identical models (effect 0 on
    every resample) neither support nor refute "a beats b".
    """
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return NOT_TESTABLE
    if claimed == ">":
        on_side, other_side = lo > threshold, hi < threshold
    elif claimed == ">=":
        on_side, other_side = lo >= threshold, hi < threshold
    elif claimed == "<":
        on_side, other_side = hi < threshold, lo > threshold
    else:
        raise ValueError(f"claimed must be '>', '>=' or '<', got {claimed!r}")
    return SUPPORTED if on_side else NOT_SUPPORTED if other_side else INCONCLUSIVE


@dataclass(frozen=True)
class Comparison:
    """One row: ``effect = f(a, b)`` of two sides computed on the same resamples, claimed ``claimed threshold``."""

    claim_id: str
    claim: str
    comparison: str
    effect_definition: str
    claimed: str
    threshold: float
    needs: tuple[str, ...]
    a: Statistic
    b: Statistic
    combine: Callable[[np.ndarray, np.ndarray], np.ndarray]
    paper: float | None = None


def _metric(runs: Runs, name: str, metric: str, members: np.ndarray | None = None) -> Statistic:
    return lambda weights: metric_values(weights, runs[name], metric, members)


def _cloud_drop(runs: Runs, name: str, low: np.ndarray, high: np.ndarray) -> Statistic:
    return lambda weights: (metric_values(weights, runs[name], "f1", low)
                            - metric_values(weights, runs[name], "f1", high))


def _difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a - b


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1.0), np.nan)


def _paper_difference(a: str, b: str, metric: str) -> float | None:
    x, y = TABLE2[a].get(metric), TABLE2[b].get(metric)
    return None if x is None or y is None else round(x - y, 6)


def cloud_halves(cloud_fraction: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) boolean masks: the patches in the lower ``bins // 2`` of Fig. 1's cloud-cover bins and those in
    the upper ``bins // 2`` (the middle bin left out when ``bins`` is odd)."""
    which = cloud_bin(cloud_fraction, bins)
    half = bins // 2
    return which < half, which >= bins - half


def comparisons(runs: Runs, fractions: Sequence[int], cloud_fraction: np.ndarray, bins: int
                ) -> list[Comparison]:
    """The rows of the claims table (module docstring), in order; ``runs`` maps a model or SSL run name to its
    predictions (one per seed), ``fractions`` are the label fractions the config runs."""
    label = MODEL_LABELS
    out: list[Comparison] = []
    f1_diff = "F1(a) − F1(b), micro"
    for model in HCR_CLASSIFIERS:
        out.append(Comparison(
            "hcr_beats_lc_net", "models with haze & cloud removal beat LC-Net on F1",
            f"{label[model]} − {label[LC_NET]}", f1_diff, ">", 0.0, (model, LC_NET),
            _metric(runs, model, "f1"), _metric(runs, LC_NET, "f1"), _difference,
            _paper_difference(model, LC_NET, "f1")))
    for other in (m for m in CLASSIFIERS if m != UNCERTAIN):
        out.append(Comparison(
            "uncertain_best_f1", "HCR&LC-Net uncertain is best on F1",
            f"{label[UNCERTAIN]} − {label[other]}", f1_diff, ">", 0.0, (UNCERTAIN, other),
            _metric(runs, UNCERTAIN, "f1"), _metric(runs, other, "f1"), _difference,
            _paper_difference(UNCERTAIN, other, "f1")))
    for other, claimed in ((HCR_NET, "<"), (EQUAL, ">")):
        out.append(Comparison(
            "uncertain_second_psnr", "HCR&LC-Net uncertain is second only to HCR-Net on PSNR",
            f"{label[UNCERTAIN]} − {label[other]}", "PSNR(a) − PSNR(b), dB", claimed, 0.0, (UNCERTAIN, other),
            _metric(runs, UNCERTAIN, "psnr"), _metric(runs, other, "psnr"), _difference,
            _paper_difference(UNCERTAIN, other, "psnr")))
    out.append(Comparison(
        "pretext_25_reaches_95pct", "with the pretext, 25 % of the labels reach ≥ 95 % of the F1 with 100 %",
        "ssl_on_25 / ssl_on_100", "F1(a) / F1(b)", ">=", FIG4_RATIO_25_OF_100, ("ssl_on_25", "ssl_on_100"),
        _metric(runs, "ssl_on_25", "f1"), _metric(runs, "ssl_on_100", "f1"), _ratio, FIG4_RATIO_25_OF_100))
    for fraction in fractions:
        on, off = f"ssl_on_{fraction}", f"ssl_off_{fraction}"
        out.append(Comparison(
            "pretext_beats_scratch", "the pretext beats no pretext at every label fraction",
            f"{on} − {off}", f1_diff, ">", 0.0, (on, off),
            _metric(runs, on, "f1"), _metric(runs, off, "f1"), _difference))
    low, high = cloud_halves(cloud_fraction, bins)
    half = bins // 2
    halves = (f"F1(a: lower {half} of {bins} cloud bins) − F1(b: upper {half}), micro")
    out.append(Comparison(
        "lc_net_f1_falls_with_cloud", "LC-Net's F1 falls as cloud cover grows",
        f"{label[LC_NET]}: less − more cloudy", halves, ">", 0.0, (LC_NET,),
        _metric(runs, LC_NET, "f1", low), _metric(runs, LC_NET, "f1", high), _difference))
    for model in HCR_CLASSIFIERS:
        out.append(Comparison(
            "hcr_flat_with_cloud", "models trained with HCR lose less F1 to clouds than LC-Net",
            f"cloud drop: {label[LC_NET]} − {label[model]}",
            "drop(b) − drop(a); drop = F1(lower half of the cloud bins) − F1(upper half)", ">", 0.0,
            (model, LC_NET), _cloud_drop(runs, model, low, high), _cloud_drop(runs, LC_NET, low, high),
            lambda a, b: b - a))
    return out


def claims_table(
    predictions: Mapping[str, Sequence[str | Path]],
    *,
    source: str,
    fractions: Sequence[int] = LABEL_FRACTIONS,
    bins: int = 10,
    n_resamples: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per comparison of :func:`comparisons`, with this run's effect, its 95 % paired bootstrap interval
    (``lo``, ``hi``), the paper's effect where the paper gives its numbers, both sides' values (``a``, ``b``) and
    the verdict.

    ``predictions`` maps a model name (Table 2's) or SSL run (``ssl_on_25`` …) to its predictions.npz files (one
    per training seed; a model's value is the mean over seeds, as in Table 2); a comparison that needs a name
    without files is "not testable". Every file must cover the same test patches. ``n_resamples`` resamples are
    drawn from ``seed`` (the same as Table 2's for the same values). Columns: :data:`COLUMNS`.
    """
    check_source(source)
    runs = {name: list(r) for name, r in read_aligned(predictions).items() if r}
    if not runs:
        raise ValueError("claims_table needs the predictions of at least one run")
    first = next(iter(runs.values()))[0]
    n_test = len(first["idx"])
    weights = resample_counts(n_test, n_resamples, seed)
    ones = np.ones(n_test)
    rows = []
    for c in comparisons(runs, fractions, first["cloud_fraction"], bins):
        row = {"claim_id": c.claim_id, "claim": c.claim, "comparison": c.comparison,
               "effect_definition": c.effect_definition, "claimed": f"{c.claimed} {c.threshold:g}",
               "paper": c.paper, "n_test": n_test, "n_resamples": n_resamples, "bootstrap_seed": seed,
               "source": source}
        missing = [name for name in c.needs if name not in runs]
        note = ""
        if missing:
            effect = lo = hi = a = b = np.nan
            note = f"not run: {', '.join(missing)}"
        else:
            a, b = float(c.a(ones)), float(c.b(ones))
            effect = float(c.combine(np.asarray(a), np.asarray(b)))
            resampled = c.combine(c.a(weights), c.b(weights))
            lo, hi, left_out = percentile_interval(resampled)
            if not np.isfinite(effect):
                lo = hi = np.nan
                note = "no effect on the test split itself (a side without patches or with F1 0)"
            elif left_out:
                note = (f"{left_out} of {n_resamples} resamples gave no value (a side without patches or a "
                        "ratio over an F1 of 0), left out")
        label = verdict(lo, hi, c.claimed, c.threshold)
        row |= {"effect": effect, "lo": lo, "hi": hi, "a": a, "b": b,
                "verdict": f"{label} (synthetic)" if source == "synthetic" else label, "note": note}
        rows.append(row)
    frame = pd.DataFrame(rows, columns=COLUMNS)
    log.info("claims: %s", ", ".join(f"{r.claim_id} {r.comparison}: {r.verdict}" for r in frame.itertuples()))
    return frame


def _number(value: float, digits: int = 4) -> str:
    return "—" if pd.isna(value) else f"{value:+.{digits}f}"


def claims_markdown(frame: pd.DataFrame, source: str, config_hash: str) -> str:
    """Markdown of :func:`claims_table`: a header saying how effects, intervals and verdicts are defined, then one
    line per row."""
    n_resamples = int(frame["n_resamples"].iloc[0]) if len(frame) else 0
    seed = int(frame["bootstrap_seed"].iloc[0]) if len(frame) else 0
    n_test = int(frame["n_test"].iloc[0]) if len(frame) else 0
    lines = [
        "# The paper's claims tested on this run (Gu et al. 2022)",
        "",
        f"- Data source: **{source}**" + (" — every verdict is about generated data, not about the paper's "
                                          "claims on Sentinel data" if source == "synthetic" else ""),
        f"- Config hash: `{config_hash}`; {n_test} test patches.",
        (f"- Effect: this run's value of the comparison on the test split; [lo, hi]: its {100 * CONFIDENCE:.0f} % "
         f"paired percentile bootstrap interval ({n_resamples} resamples of the test patches, seed {seed}; both "
         "sides of a comparison on the same resampled patches; F1 recomputed from the resampled counts; a model "
         "with several seeds counts with its mean over seeds, the networks held fixed)."),
        ("- Verdict: *supported* = the interval lies entirely on the claimed side of the threshold; *not "
         "supported* = entirely on the other side; *inconclusive* = it straddles the threshold; *not testable* = "
         "a run is missing or a side has no patches."),
        ("- Cloud drop: micro F1 of the test patches in the lower half of Fig. 1's cloud-cover bins minus that "
         "of the upper half (a positive drop: F1 falls as cloud cover grows)."),
        "- Paper: the same effect from Gu et al. 2022's Table 2 (and the text of §4 for the 95 % claim).",
        "",
        "| claim | comparison (a − b) | claimed | ours [95 % interval] | paper | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for row in frame.itertuples(index=False):
        ratio = row.claimed.startswith(">=")
        ours = (f"{row.effect:.4f}" if ratio else _number(row.effect)) if pd.notna(row.effect) else "—"
        if pd.notna(row.lo):
            ours += f" [{row.lo:.4f}, {row.hi:.4f}]" if ratio else f" [{_number(row.lo)}, {_number(row.hi)}]"
        paper = "—" if pd.isna(row.paper) else (f"≈ {row.paper:.2f}" if ratio else _number(row.paper))
        verdict_cell = f"**{row.verdict}**" + (f" ({row.note})" if row.note else "")
        lines.append(f"| {row.claim} | {row.comparison} | {row.claimed} | {ours} | {paper} | {verdict_cell} |")
    return "\n".join(lines) + "\n"


def write_claims(
    predictions: Mapping[str, Sequence[str | Path]],
    out_csv: str | Path,
    out_md: str | Path,
    *,
    source: str,
    config_hash: str,
    fractions: Sequence[int] = LABEL_FRACTIONS,
    bins: int = 10,
    n_resamples: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Write :func:`claims_table` as CSV and :func:`claims_markdown` as Markdown, both atomically."""
    frame = claims_table(predictions, source=source, fractions=fractions, bins=bins, n_resamples=n_resamples,
                         seed=seed)
    with atomic_output(out_csv) as tmp:
        frame.to_csv(tmp, index=False)
    with atomic_output(out_md) as tmp:
        tmp.write_text(claims_markdown(frame, source, config_hash))
    return frame
