"""The data stage's summary (``summary.json``): per split n and cloud coverage beside the paper's, and on real
data the split sizes compared with the paper's 109,549 / 12,666.

A module of its own, read by the ``data_summary`` rule only: the per-scene and index jobs (and so every training
that reads their outputs) do not import it, so an edit here reruns the summary alone (:mod:`hcrlc.provenance`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hcrlc.paper import PAPER_CLOUD_COVERAGE, PAPER_N_TEST, PAPER_N_TRAINVAL


def summarize(index: pd.DataFrame, excluded: pd.DataFrame, source: str) -> dict:
    """Per split n and cloud coverage mean/std (fractions), with the paper's coverage beside ours.

    On real data (``source`` "real") ``counts_vs_paper`` compares our train+val and test counts with the paper's
    (:func:`counts_line` words it for the log).
    """
    out: dict = {"source": source, "n_excluded": len(excluded), "splits": {}}
    for split in ("train", "val", "test"):
        cf = index.loc[index["split"] == split, "cloud_fraction"].to_numpy(dtype=np.float64)
        out["splits"][split] = {
            "n": int(cf.size),
            "cloud_mean": float(cf.mean()) if cf.size else None,
            "cloud_std": float(cf.std()) if cf.size else None,
        }
    out["paper"] = {
        "n_trainval": PAPER_N_TRAINVAL,
        "n_test": PAPER_N_TEST,
        "cloud_mean_std": {k: list(v) for k, v in PAPER_CLOUD_COVERAGE.items()},
    }
    if source == "real":
        ours = {"trainval": out["splits"]["train"]["n"] + out["splits"]["val"]["n"],
                "test": out["splits"]["test"]["n"]}
        paper = {"trainval": PAPER_N_TRAINVAL, "test": PAPER_N_TEST}
        out["counts_vs_paper"] = {
            **{k: {"ours": ours[k], "paper": paper[k], "difference": ours[k] - paper[k]} for k in ours},
            "match": ours == paper,
        }
    return out


def counts_line(summary: dict) -> str:
    """One log line comparing the split sizes with the paper's 109,549 / 12,666 (real data only)."""
    counts = summary.get("counts_vs_paper")
    if counts is None:
        return (f"{summary['source']} data: split sizes not compared with the paper's "
                f"{PAPER_N_TRAINVAL:,} train+val / {PAPER_N_TEST:,} test")
    words = {"trainval": "train+val", "test": "test"}
    parts = [f"{words[k]} {counts[k]['ours']:,} (paper {counts[k]['paper']:,}, {counts[k]['difference']:+,})"
             for k in words]
    return f"split sizes vs the paper: {', '.join(parts)}: " + ("match" if counts["match"] else "DIFFER")
