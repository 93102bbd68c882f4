"""Shared fixtures: small generated trees in the exact real layout, made by the same module the demo uses."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from hcrlc.data.synthetic import generate_trees

REPO = Path(__file__).resolve().parents[1]
#: one hold-out scene per season we use (-> test) and two ordinary scenes (-> train/val)
TINY_SCENES = [("spring", 15), ("spring", 1), ("fall", 3)]
TINY_GRID = 2


@pytest.fixture(scope="session")
def tiny_tree_master(tmp_path_factory) -> tuple[Path, Path, pd.DataFrame]:
    root = tmp_path_factory.mktemp("tree")
    patches = generate_trees(root / "SEN12MS", root / "SEN12MS-CR", scenes=TINY_SCENES, grid=TINY_GRID, seed=3,
                             only_in_one_tree=1)
    return root / "SEN12MS", root / "SEN12MS-CR", patches


@pytest.fixture
def tiny_tree(tiny_tree_master, tmp_path) -> tuple[Path, Path, pd.DataFrame]:
    """A private copy of the tiny tree that a test may corrupt."""
    ms, cr, patches = tiny_tree_master
    shutil.copytree(ms, tmp_path / "SEN12MS")
    shutil.copytree(cr, tmp_path / "SEN12MS-CR")
    return tmp_path / "SEN12MS", tmp_path / "SEN12MS-CR", patches
