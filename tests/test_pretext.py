"""Pretext data: neighbours from georeferencing, direction semantics, nested label subsets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hcrlc.data.index import build_listing
from hcrlc.data.layout import scene_key
from hcrlc.data.shards import scan_scene
from hcrlc.pretext import DIRECTIONS, find_neighbours, nested_label_subsets


@pytest.fixture
def scanned(tiny_tree, tmp_path):
    ms, cr, patches = tiny_tree
    listing, _ = build_listing(ms, cr)
    tables = [scan_scene(rows, tmp_path / scene_key(s, c), progress=False)
              for (s, c), rows in listing.groupby(["season", "scene"])]
    frame = pd.concat(tables, ignore_index=True)
    return frame.merge(patches[["season", "scene", "patch", "row", "col"]].rename(
        columns={"row": "grid_row", "col": "grid_col"}), on=["season", "scene", "patch"])


def test_neighbours_match_the_generators_grid(scanned):
    frame = scanned
    found = find_neighbours(frame)
    pos = {(s, c, r, q): i for i, (s, c, r, q) in enumerate(
        zip(frame.season, frame.scene, frame.grid_row, frame.grid_col))}
    steps = {"north": (-1, 0), "west": (0, -1), "south": (1, 0), "east": (0, 1)}
    n_border = 0
    for i, (s, c, r, q) in enumerate(zip(frame.season, frame.scene, frame.grid_row, frame.grid_col)):
        for d, name in enumerate(DIRECTIONS):
            dr, dq = steps[name]
            expected = pos.get((s, c, r + dr, q + dq), -1)
            assert found[i, d] == expected, (s, c, r, q, name)
            n_border += expected == -1
    assert n_border > 0  # scene borders (and patches missing from one tree) have no neighbour there
    assert (found >= 0).any()


@pytest.mark.parametrize("patch_px", [256, 64])
def test_neighbours_need_exact_offset_same_crs_and_scene(patch_px):
    step = patch_px / 2 * 10.0  # one stride (half the data's patch size) of 10 m pixels
    f = pd.DataFrame({
        "season": ["spring"] * 5 + ["fall"],
        "scene": [1, 1, 1, 1, 2, 1],
        "crs": ["EPSG:32632"] * 3 + ["EPSG:32633", "EPSG:32632", "EPSG:32632"],
        "x0": [500000.0, 500000 + step, 500000.0, 500000 + step, 500000 + step, 500000 + step],
        "y0": [4000000.0, 4000000.0, 4000000 + step - 1, 4000000.0, 4000000.0, 4000000.0],
        "res": [10.0] * 6,
        "patch_px": [patch_px] * 6,
    })
    nb = find_neighbours(f)
    assert nb[0].tolist() == [-1, -1, -1, 1]  # only row 1 is its east neighbour; 2 is 1 m off, 3-5 elsewhere
    assert nb[1].tolist() == [-1, 0, -1, -1]
    # the offset is the data's own stride: patches of another size at these corners are not neighbours
    other = f.assign(patch_px=512 if patch_px == 256 else 256)
    assert (find_neighbours(other) == -1).all()


def test_nested_label_subsets():
    subsets = nested_label_subsets(103, [25, 50, 75, 100], seed=4)
    assert [len(subsets[f]) for f in (25, 50, 75, 100)] == [26, 52, 77, 103]
    for a, b in ((25, 50), (50, 75), (75, 100)):
        assert set(subsets[a]) <= set(subsets[b])
    assert not np.array_equal(subsets[25], nested_label_subsets(103, [25], seed=5)[25])
