"""The on-disk layout of SEN12MS and SEN12MS-CR, in one place.

SEN12MS (mediaTUM m1474000)::

    ROIs1158_spring/s1_1/ROIs1158_spring_s1_1_p407.tif      (also s2_1/, lc_1/)

SEN12MS-CR (mediaTUM m1554803)::

    ROIs1158_spring_s1/s1_1/ROIs1158_spring_s1_1_p407.tif
    ROIs1158_spring_s2/s2_1/ROIs1158_spring_s2_1_p407.tif
    ROIs1158_spring_s2_cloudy/s2_cloudy_1/ROIs1158_spring_s2_cloudy_1_p407.tif

A triplet is keyed by (season, scene, patch); the patch ids are shared by both data sets.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Literal

import pandas as pd

from hcrlc.errors import DataError
from hcrlc.paper import SEASON_DIRS

log = logging.getLogger(__name__)

Sen12msKind = Literal["s1", "s2", "lc"]
CrKind = Literal["s1", "s2", "s2_cloudy"]
SEN12MS_KINDS: tuple[str, ...] = ("s1", "s2", "lc")
SEN12MSCR_KINDS: tuple[str, ...] = ("s1", "s2", "s2_cloudy")

_STEM_TO_SEASON = {stem: season for season, stem in SEASON_DIRS.items()}
_FILE_RE = re.compile(
    r"^(?P<stem>ROIs\d{4}_(?:spring|summer|fall|winter))_(?P<kind>s1|s2_cloudy|s2|lc)_(?P<scene>\d+)_p(?P<patch>\d+)\.tif$"
)


def patch_filename(kind: str, season: str, scene: int, patch: int) -> str:
    """File name of one patch, e.g. ``ROIs1158_spring_s2_cloudy_1_p407.tif``."""
    return f"{SEASON_DIRS[season]}_{kind}_{scene}_p{patch}.tif"


def sen12ms_path(root: str | Path, kind: Sen12msKind, season: str, scene: int, patch: int) -> Path:
    """Path of a SEN12MS patch (``kind`` in s1, s2, lc)."""
    return Path(root) / SEASON_DIRS[season] / f"{kind}_{scene}" / patch_filename(kind, season, scene, patch)


def sen12mscr_path(root: str | Path, kind: CrKind, season: str, scene: int, patch: int) -> Path:
    """Path of a SEN12MS-CR patch (``kind`` in s1, s2, s2_cloudy)."""
    stem = SEASON_DIRS[season]
    return Path(root) / f"{stem}_{kind}" / f"{kind}_{scene}" / patch_filename(kind, season, scene, patch)


def parse_patch_filename(name: str) -> tuple[str, str, int, int] | None:
    """``(kind, season, scene, patch)`` from a patch file name, or None if it is not one."""
    m = _FILE_RE.match(name)
    if m is None:
        return None
    return m["kind"], _STEM_TO_SEASON[m["stem"]], int(m["scene"]), int(m["patch"])


def require_tree(root: str | Path, dataset: str, config_key: str) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise DataError(
            root,
            f"the {dataset} tree does not exist or is not a directory",
            f"set `{config_key}` to the folder that holds the ROIs* season folders, or to null for synthetic data "
            "(`snakemake download --configfile configs/paper.yaml` fetches the real trees)",
        )
    return root


def _scan(directory: Path, expected_kind: str, expected_season: str, expected_scene: int | None) -> list[dict]:
    rows = []
    with os.scandir(directory) as it:
        for entry in it:
            parsed = parse_patch_filename(entry.name)
            if parsed is None or not entry.is_file():
                log.warning("ignoring %s: not a patch GeoTIFF name", entry.path)
                continue
            kind, season, scene, patch = parsed
            if kind != expected_kind or season != expected_season or (
                expected_scene is not None and scene != expected_scene
            ):
                log.warning("ignoring %s: its name does not match its folder", entry.path)
                continue
            rows.append({"season": season, "scene": scene, "patch": patch, "kind": kind, "path": entry.path})
    return rows


def _scene_dirs(season_dir: Path, kind: str) -> list[tuple[int, Path]]:
    out = []
    prefix = f"{kind}_"
    with os.scandir(season_dir) as it:
        for entry in it:
            if entry.is_dir() and entry.name.startswith(prefix) and entry.name[len(prefix):].isdigit():
                out.append((int(entry.name[len(prefix):]), Path(entry.path)))
    return sorted(out)


_COLUMNS = ["season", "scene", "patch", "kind", "path"]


def walk_sen12ms(root: str | Path) -> pd.DataFrame:
    """All patch files of a SEN12MS tree: columns season, scene, patch, kind (s1/s2/lc), path."""
    root = require_tree(root, "SEN12MS", "data.sen12ms")
    rows: list[dict] = []
    for season, stem in SEASON_DIRS.items():
        season_dir = root / stem
        if not season_dir.is_dir():
            continue
        for kind in SEN12MS_KINDS:
            for scene, d in _scene_dirs(season_dir, kind):
                rows += _scan(d, kind, season, scene)
    if not rows:
        raise DataError(root, "no SEN12MS patch files found", "point `data.sen12ms` at the folder holding "
                        "ROIs1158_spring/, ROIs1868_summer/, ROIs1970_fall/ and ROIs2017_winter/")
    return pd.DataFrame(rows, columns=_COLUMNS)


def walk_sen12mscr(root: str | Path) -> pd.DataFrame:
    """All patch files of a SEN12MS-CR tree: columns season, scene, patch, kind (s1/s2/s2_cloudy), path."""
    root = require_tree(root, "SEN12MS-CR", "data.sen12mscr")
    rows: list[dict] = []
    for season, stem in SEASON_DIRS.items():
        for kind in SEN12MSCR_KINDS:
            kind_dir = root / f"{stem}_{kind}"
            if not kind_dir.is_dir():
                continue
            for scene, d in _scene_dirs(kind_dir, kind):
                rows += _scan(d, kind, season, scene)
    if not rows:
        raise DataError(root, "no SEN12MS-CR patch files found", "point `data.sen12mscr` at the folder holding "
                        "ROIs1158_spring_s1/, ROIs1158_spring_s2/, ROIs1158_spring_s2_cloudy/, ...")
    return pd.DataFrame(rows, columns=_COLUMNS)


def list_scenes(sen12mscr_root: str | Path) -> list[tuple[str, int]]:
    """(season, scene) pairs that have a cloudy-S2 folder in a SEN12MS-CR tree — cheap: reads folder names only.

    Used by the workflow to fan per-scene jobs out without reading any patch.
    """
    root = require_tree(sen12mscr_root, "SEN12MS-CR", "data.sen12mscr")
    scenes = []
    for season, stem in SEASON_DIRS.items():
        kind_dir = root / f"{stem}_s2_cloudy"
        if kind_dir.is_dir():
            scenes += [(season, scene) for scene, _ in _scene_dirs(kind_dir, "s2_cloudy")]
    return scenes


def scene_key(season: str, scene: int) -> str:
    """The token that names a scene in output paths, e.g. ``spring_1``."""
    return f"{season}_{scene}"


def parse_scene_key(key: str) -> tuple[str, int]:
    season, scene = key.rsplit("_", 1)
    return season, int(scene)
