import pandas as pd
import pytest

from hcrlc.data.splits import assign_split, count_val_overlapping_train, is_holdout
from hcrlc.errors import ConfigError


def _keys(scenes, n=10):
    return pd.DataFrame([(s, c, p) for s, c in scenes for p in range(n)], columns=["season", "scene", "patch"])


def test_holdout_scenes_go_to_test_and_val_fraction_is_exact():
    keys = _keys([("spring", 15), ("summer", 131), ("spring", 1), ("fall", 3), ("winter", 9)])
    split = assign_split(keys, val_fraction=0.1, seed=0, mode="patches")
    assert (split[keys.scene.isin([15, 131])] == "test").all()
    assert (split == "test").sum() == 20
    assert (split == "val").sum() == round(0.1 * 30)
    assert set(split[~keys.scene.isin([15, 131])]) == {"train", "val"}


@pytest.mark.parametrize("mode", ["patches", "scenes"])
def test_split_is_seeded_and_independent_of_row_order(mode):
    keys = _keys([("spring", s) for s in range(1, 13)], n=50)
    a = assign_split(keys, 0.2, seed=7, mode=mode)
    shuffled = keys.sample(frac=1, random_state=1)
    b = assign_split(shuffled, 0.2, seed=7, mode=mode).loc[keys.index]
    pd.testing.assert_series_equal(a, b)
    assert not assign_split(keys, 0.2, seed=8, mode=mode).equals(a)


def test_same_scene_number_in_other_season_is_not_holdout():
    assert is_holdout("spring", 15) and not is_holdout("winter", 15)


def test_scene_validation_takes_whole_scenes_until_the_fraction_is_reached():
    sizes = [3, 40, 7, 25, 12, 60, 9, 30]  # uneven scenes, as in SEN12MS
    keys = pd.concat([_keys([("summer", scene)], n=n) for scene, n in zip(range(1, 9), sizes)], ignore_index=True)
    keys = pd.concat([keys, _keys([("summer", 131)], n=20)], ignore_index=True)  # hold-out -> test
    for seed in range(20):
        split = assign_split(keys, 0.15, seed=seed, mode="scenes")
        assert (split[keys.scene == 131] == "test").all()
        per_scene = split[keys.scene != 131].groupby(keys.scene).agg(set)
        assert all(len(labels) == 1 for labels in per_scene)  # no scene in both train and val
        val_sizes = [n for scene, n in zip(range(1, 9), sizes) if per_scene[scene] == {"val"}]
        n_trainval = sum(sizes)
        assert sum(val_sizes) >= 0.15 * n_trainval
        assert (split == "train").any()
        # whole scenes were added one at a time until the target was met: without the last one it fell short
        assert sum(val_sizes) - max(val_sizes) < 0.15 * n_trainval


def test_scene_validation_refuses_to_take_every_training_scene():
    keys = _keys([("spring", 1), ("fall", 3), ("winter", 9)], n=10)
    with pytest.raises(ConfigError, match="split.val_mode: patches"):
        assign_split(keys, 0.9, seed=0, mode="scenes")
    assert (assign_split(keys, 0.0, seed=0, mode="scenes") == "train").all()
    with pytest.raises(ConfigError, match="val_mode"):
        assign_split(keys, 0.1, seed=0, mode="tiles")


def _grid_index(split_of, patch_px: int = 256) -> pd.DataFrame:
    """A 4 x 4 scene of ``patch_px`` px patches at stride ``patch_px / 2`` (10 m pixels), split by ``split_of(row,
    col)``."""
    step = patch_px / 2 * 10.0
    rows = [{"season": "spring", "scene": 1, "crs": "EPSG:32633", "res": 10.0, "x0": 500_000 + step * c,
             "y0": 5_000_000 - step * r, "split": split_of(r, c), "patch_px": patch_px}
            for r in range(4) for c in range(4)]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("patch_px", [256, 64])
def test_overlap_count_sees_neighbours_one_stride_away_but_not_two(patch_px):
    stride_m = patch_px / 2 * 10.0
    # validation = the patches at even rows and columns: each has train neighbours one stride away
    index = _grid_index(lambda r, c: "val" if r % 2 == 0 and c % 2 == 0 else "train", patch_px)
    assert count_val_overlapping_train(index) == 4
    # only (0, 0) and (2, 2) in val, train restricted to patches a whole patch or more away -> no shared pixel
    index = _grid_index(lambda r, c: "val" if (r, c) in {(0, 0), (2, 2)} else
                        ("train" if (r, c) in {(0, 2), (2, 0)} else "test"), patch_px)
    assert count_val_overlapping_train(index) == 0
    # (1, 0) to train: one stride below (0, 0), so they share pixels; it is a whole patch left of (2, 2): they do not
    index.loc[(index.x0 == 500_000) & (index.y0 == 5_000_000 - stride_m), "split"] = "train"
    assert count_val_overlapping_train(index) == 1
    assert count_val_overlapping_train(index.iloc[:0]) == 0
    # the reach is the data's own patch size: read as 256 px patches, the 64 px grid's val patches would touch
    # train patches two strides away
    if patch_px == 64:
        index["patch_px"] = 256
        assert count_val_overlapping_train(index) == 2
