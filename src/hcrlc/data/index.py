"""Listing (which triplets exist) and the final index (usable triplets with split, targets and cloud coverage).

Flow: ``build_listing`` walks both trees and intersects them on (season, scene, patch) from file names alone —
cheap at paper scale. Per-scene jobs then read every file (``shards.scan_scene``) and compute cloud masks
(``clouds``). ``build_index`` joins it all, applies labels and the split, and accounts for every patch ever seen:
each one is either a row of the index or a row of ``excluded.csv`` with a reason.

Exclusions follow the authors' code [A]: a patch is dropped only when a file it needs is missing, unreadable or
not of the expected shape, type or grid, when it lacks a label or a cloud mask, or when it is one of
:data:`~hcrlc.paper.DROPPED_PATCHES` (by id). S1 NaN does not exclude a patch: it reads as 0 when the sample is
prepared (:func:`~hcrlc.data.dataset.prepare_s1`), and the index counts such pixels per patch
(``s1_nonfinite_px``).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd

from hcrlc.data.labels import load_probability_labels, multi_hot
from hcrlc.data.layout import patch_filename, walk_sen12ms, walk_sen12mscr
from hcrlc.data.splits import assign_split, count_val_overlapping_train
from hcrlc.errors import DataError
from hcrlc.paper import (
    DROPPED_PATCHES,
    HOLDOUT_SCENES,
    N_IGBP,
    SEASONS,
    TARGET_COLUMNS,
)

log = logging.getLogger(__name__)

KEY = ["season", "scene", "patch"]
#: The files a usable triplet needs: S1, clear S2 and cloudy S2 from SEN12MS-CR, lc (labels) from SEN12MS.
REQUIRED_FILES: dict[str, tuple[str, str]] = {
    "s1": ("SEN12MS-CR", "s1"),
    "s2": ("SEN12MS-CR", "s2"),
    "s2_cloudy": ("SEN12MS-CR", "s2_cloudy"),
    "lc": ("SEN12MS", "lc"),
}
IGBP_COLUMNS = [f"igbp_{i}" for i in range(1, N_IGBP + 1)]
EXCLUDED_COLUMNS = [*KEY, "reason"]
#: excluded.csv reasons of patches that only one tree has
ONLY_IN = {"SEN12MS": "only in SEN12MS (no SEN12MS-CR files for this patch)",
           "SEN12MS-CR": "only in SEN12MS-CR (no SEN12MS files for this patch)"}


def dropped_patch_reason(season: str, scene: int, patch: int) -> str:
    """The excluded.csv reason of a patch of :data:`~hcrlc.paper.DROPPED_PATCHES`."""
    return (f"known broken patch {patch_filename('s2', season, scene, patch)[:-4]}: its S1 holds NaNs; the "
            "authors' code drops it by name")


def build_listing(sen12ms_root: str | Path, sen12mscr_root: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Intersect the two trees on (season, scene, patch).

    Returns ``(listing, excluded)``: listing has KEY + one path column per REQUIRED_FILES entry, sorted by KEY;
    excluded has KEY + reason for every patch seen in either tree that lacks a required file.
    """
    ms = walk_sen12ms(sen12ms_root).assign(dataset="SEN12MS")
    cr = walk_sen12mscr(sen12mscr_root).assign(dataset="SEN12MS-CR")
    files = pd.concat([ms, cr], ignore_index=True)
    files["slot"] = files["dataset"] + ":" + files["kind"]
    wide = files.pivot_table(index=KEY, columns="slot", values="path", aggfunc="first")
    in_ms = files[files.dataset == "SEN12MS"].groupby(KEY).size().reindex(wide.index, fill_value=0) > 0
    in_cr = files[files.dataset == "SEN12MS-CR"].groupby(KEY).size().reindex(wide.index, fill_value=0) > 0

    listing = pd.DataFrame(index=wide.index)
    for column, (dataset, kind) in REQUIRED_FILES.items():
        slot = f"{dataset}:{kind}"
        listing[column] = wide[slot] if slot in wide.columns else np.nan

    reasons = []
    for key, row in listing.iterrows():
        if not in_cr[key]:
            reasons.append(ONLY_IN["SEN12MS"])
        elif not in_ms[key]:
            reasons.append(ONLY_IN["SEN12MS-CR"])
        else:
            missing = [f"{REQUIRED_FILES[c][0]} {REQUIRED_FILES[c][1]}" for c in REQUIRED_FILES if pd.isna(row[c])]
            if missing:
                reasons.append(f"missing file: {', '.join(missing)}")
            elif (key[0], int(key[1]), int(key[2])) in DROPPED_PATCHES:
                reasons.append(dropped_patch_reason(key[0], int(key[1]), int(key[2])))
            else:
                reasons.append("")
    reasons = pd.Series(reasons, index=listing.index)
    usable = reasons == ""
    excluded = reasons[~usable].rename("reason").reset_index()
    listing = listing[usable].reset_index().sort_values(KEY, ignore_index=True)
    listing["scene"] = listing["scene"].astype(int)
    listing["patch"] = listing["patch"].astype(int)
    log.info("listing: %d triplets in both trees, %d patches excluded", len(listing), len(excluded))
    return listing, excluded[EXCLUDED_COLUMNS].sort_values(KEY, ignore_index=True)


def labels_from_pickle(scan: pd.DataFrame, pkl_path: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Replace lc-derived IGBP fractions by the official pickle's; rows whose S2 file name it lacks are excluded."""
    table = load_probability_labels(pkl_path)
    names = [patch_filename("s2", s, c, p) for s, c, p in zip(scan.season, scan.scene, scan.patch)]
    present = np.array([n in table for n in names], dtype=bool)
    scan = scan.copy()
    if present.any():
        scan.loc[present, IGBP_COLUMNS] = np.stack([table[n] for n, ok in zip(names, present) if ok])
    missing = scan.loc[~present, KEY].assign(reason=f"no entry in label file {Path(pkl_path).name} (keyed by S2 "
                                                    "file name)")
    return scan[present], missing


def build_index(
    listing: pd.DataFrame,
    listing_excluded: pd.DataFrame,
    scans: list[pd.DataFrame],
    clouds: list[pd.DataFrame],
    *,
    val_fraction: float,
    seed: int,
    val_mode: str,
    label_threshold: float,
    labels_pkl: str | Path | None = None,
    max_nodata_fraction: float = 0.5,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Join listing, per-scene scans and cloud fractions into ``(index, excluded)``.

    scans: per-scene tables from ``shards.scan_scene`` (KEY, row, ok, reason, x0, y0, crs, patch_px,
    IGBP_COLUMNS); every usable patch must have one size (``patch_px``, else :class:`DataError` naming a file of
    each size). clouds: per-scene tables from ``clouds`` (KEY, cloud_fraction, nodata_fraction). Patches whose cloudy S2 is
    more than ``max_nodata_fraction`` no-data are excluded. The split is drawn over usable patches only
    (``val_mode``, ``val_fraction``, ``seed``: :func:`~hcrlc.data.splits.assign_split`). Logs how many validation
    patches share pixels with a training patch, and one line per scene whose every patch is excluded.
    """
    scan = pd.concat(scans, ignore_index=True) if scans else pd.DataFrame(columns=[*KEY, "ok", "reason"])
    cloud_columns = [*KEY, "cloud_fraction", "nodata_fraction"]
    cloud = pd.concat(clouds, ignore_index=True) if clouds else pd.DataFrame(columns=cloud_columns)
    excluded = [listing_excluded]

    scan_keys = scan.set_index(KEY).index
    unscanned = listing.set_index(KEY).index.difference(scan_keys)
    if len(unscanned):
        excluded.append(pd.DataFrame(list(unscanned), columns=KEY).assign(reason="not scanned (scene job missing)"))

    bad = scan[~scan["ok"].astype(bool)]
    excluded.append(bad[KEY].assign(reason=bad["reason"]))
    good = scan[scan["ok"].astype(bool)].drop(columns=["ok", "reason"])
    if "patch_px" in good.columns:
        _require_one_patch_size(good, listing)

    if labels_pkl is not None:
        good, no_label = labels_from_pickle(good, labels_pkl)
        excluded.append(no_label)

    index = listing.merge(good, on=KEY, how="inner").merge(cloud[cloud_columns], on=KEY, how="left")
    mostly_nodata = index["nodata_fraction"] > max_nodata_fraction  # before no_mask: an all-no-data patch has NaN
    if mostly_nodata.any():
        excluded.append(index.loc[mostly_nodata, KEY].assign(reason=[
            f"cloudy S2 is {f:.1%} no-data (all 13 bands 0), more than masks.max_nodata_fraction {max_nodata_fraction}"
            for f in index.loc[mostly_nodata, "nodata_fraction"]]))
        index = index[~mostly_nodata]
    no_mask = index["cloud_fraction"].isna()
    if no_mask.any():
        excluded.append(index.loc[no_mask, KEY].assign(reason="no cloud mask computed"))
        index = index[~no_mask]

    targets = multi_hot(index[IGBP_COLUMNS].to_numpy(), label_threshold)
    for j, column in enumerate(TARGET_COLUMNS):
        index[column] = targets[:, j]
    index["split"] = assign_split(index[KEY], val_fraction, seed, mode=val_mode)
    index = index.sort_values(KEY, ignore_index=True)
    front = [*KEY, "split", "s1", "s2", "s2_cloudy", "lc", "cloud_fraction", "nodata_fraction", *TARGET_COLUMNS]
    index = index[front + [c for c in index.columns if c not in front]]
    excluded_df = pd.concat(excluded, ignore_index=True)[EXCLUDED_COLUMNS].sort_values(KEY, ignore_index=True)
    if {"x0", "y0", "res", "crs"} <= set(index.columns):
        log.info("split.val_mode %s: %d of %d validation patches share pixels with a training patch", val_mode,
                 count_val_overlapping_train(index), int((index["split"] == "val").sum()))
    log_whole_scene_exclusions(index, excluded_df)
    return index, excluded_df


def _require_one_patch_size(good: pd.DataFrame, listing: pd.DataFrame) -> None:
    """Every usable patch of a tree must have one size: the networks take one input size, and the pretext's
    neighbours and the masks' stride follow from it."""
    sizes = good.groupby("patch_px", sort=True)[KEY].first()
    if len(sizes) < 2:
        return
    paths = listing.set_index(KEY)["s2_cloudy"]
    example = {int(px): paths.get(tuple(key), "?") for px, key in zip(sizes.index, sizes.to_numpy())}
    raise DataError(example[int(sizes.index[-1])],
                    "the trees hold patches of several sizes ("
                    + "; ".join(f"{px} px, e.g. {path}" for px, path in example.items())
                    + "), but every patch of a run must have one size",
                    "keep one size in the trees (SEN12MS's is 256 px; a synthetic tree takes synthetic.patch_size), "
                    "then rebuild the shards")


def reason_kind(reason: str) -> str:
    """A reason without its per-file details: parenthesised values and the trailing ``: <file>.tif``.

    E.g. ``s1 grid (CRS ..., transform ...) differs from s2_cloudy's (...): /x/p1.tif`` ->
    ``s1 grid differs from s2_cloudy's``, so the reasons of the patches of one scene compare equal.
    """
    kind = str(reason)
    while True:  # innermost parentheses first: error texts may nest them
        shorter = re.sub(r"\s*\([^()]*\)", "", kind)
        if shorter == kind:
            return re.sub(r":\s.*\.tif$", "", kind).strip()
        kind = shorter


def log_whole_scene_exclusions(index: pd.DataFrame, excluded: pd.DataFrame) -> None:
    """One warning per scene none of whose patches is in the index: its patch count and the shared reason (or
    the reasons, counted, when they differ)."""
    kept = set(zip(index["season"], index["scene"].astype(int)))
    for (season, scene), group in excluded.groupby(["season", "scene"], sort=True):
        if (season, int(scene)) in kept:
            continue
        kinds = group["reason"].map(reason_kind).value_counts()
        if len(kinds) == 1:
            log.warning("scene %s_%s: all %d patches excluded: %s (first: %s)", season, scene, len(group),
                        kinds.index[0], group["reason"].iloc[0])
        else:
            log.warning("scene %s_%s: all %d patches excluded, for %d reasons: %s", season, scene, len(group),
                        len(kinds), "; ".join(f"{n} x {k}" for k, n in kinds.items()))


# --- can this index serve a run? ----------------------------------------------------------------------------------


def _scene_list(keys: pd.DataFrame) -> str:
    """``spring: 1, 15; fall: 3`` from rows with season and scene (seasons in the paper's order)."""
    parts = []
    for season in SEASONS:
        scenes = sorted({int(c) for c in keys.loc[keys["season"] == season, "scene"]})
        if scenes:
            parts.append(f"{season}: {', '.join(map(str, scenes))}")
    return "; ".join(parts) or "none"


def one_tree_gaps(index: pd.DataFrame, excluded: pd.DataFrame) -> list[str]:
    """One line per season, else per scene, that one tree has and the other lacks entirely, with the patches it
    cost (they are in ``excluded`` with an ``ONLY_IN`` reason). Scenes of a season listed as a whole are not
    listed again."""
    seen = pd.concat([index[KEY].assign(reason=""), excluded[EXCLUDED_COLUMNS]], ignore_index=True)
    lines = []
    for dataset, reason in ONLY_IN.items():
        other = "SEN12MS-CR" if dataset == "SEN12MS" else "SEN12MS"
        per_scene = seen.assign(only=seen["reason"] == reason).groupby(["season", "scene"])["only"].agg(["sum", "size"])
        gone = per_scene[per_scene["sum"] == per_scene["size"]]  # every patch of the scene is in one tree only
        for season in SEASONS:
            if season not in gone.index.get_level_values("season"):
                continue
            scenes = gone.loc[season]
            if len(scenes) == len(per_scene.loc[season]):
                lines.append(f"season {season}: in {dataset}, absent from {other}: {int(scenes['size'].sum())} "
                             f"patches of {len(scenes)} scenes excluded")
            else:
                lines += [f"scene {season}_{scene}: in {dataset}, absent from {other}: {int(n)} patches excluded"
                          for scene, n in scenes["size"].items()]
    return lines


def check_splits(index: pd.DataFrame, excluded: pd.DataFrame, *, val_fraction: float, sen12ms: str | Path,
                 sen12mscr: str | Path) -> None:
    """Refuse an index that cannot serve a run, before any training job starts.

    Logs :func:`one_tree_gaps` as warnings. Raises :class:`DataError` when the train, val or test split is empty,
    naming why: the seasons and scenes with usable triplets, the hold-out scenes missing, the gaps between trees.
    """
    gaps = one_tree_gaps(index, excluded)
    for line in gaps:
        log.warning("%s", line)
    counts = index["split"].value_counts()
    empty = [split for split in ("train", "val", "test") if counts.get(split, 0) == 0]
    if not empty:
        return
    present = index[["season", "scene"]].drop_duplicates()
    missing_holdout = pd.DataFrame(
        [(season, scene) for season, scenes in HOLDOUT_SCENES.items() for scene in sorted(scenes)
         if not ((present["season"] == season) & (present["scene"] == scene)).any()], columns=["season", "scene"])
    n_train = int(counts.get("train", 0) + counts.get("val", 0))
    why = {
        "train": "every usable triplet lies in a SEN12MS hold-out scene",
        "val": (f"split.val_fraction is {val_fraction}" if val_fraction == 0 else
                f"split.val_fraction {val_fraction} of {n_train} train patches rounds to 0"),
        "test": "no SEN12MS hold-out scene has a usable triplet",
    }
    fixes = {
        "train": "give both trees scenes outside the hold-out list (paper.HOLDOUT_SCENES)",
        "val": "raise split.val_fraction, or add scenes",
        "test": "give both trees the seasons and scenes of the hold-out list (for real data: `snakemake download` "
                "fetches every season; for synthetic data: list hold-out scenes such as spring_15 in "
                "synthetic.scenes)",
    }
    problem = (
        f"the {' and '.join([', '.join(empty[:-1]), empty[-1]] if len(empty) > 1 else empty)} "
        f"split{'s are' if len(empty) > 1 else ' is'} empty "
        f"({'; '.join(why[s] for s in empty)}), so no model could be trained or evaluated on this index. "
        f"Scenes with usable triplets: {_scene_list(present)}. Hold-out scenes missing: "
        f"{_scene_list(missing_holdout)}. Between the trees (SEN12MS {sen12ms}): "
        f"{'; '.join(gaps) if gaps else 'no season or scene is missing from one tree'}"
    )
    raise DataError(sen12mscr, problem, "; ".join(fixes[s] for s in empty))
