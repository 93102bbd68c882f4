import pandas as pd

from hcrlc.data.splits import assign_split, is_holdout


def _keys(scenes, n=10):
    return pd.DataFrame([(s, c, p) for s, c in scenes for p in range(n)], columns=["season", "scene", "patch"])


def test_holdout_scenes_go_to_test_and_val_fraction_is_exact():
    keys = _keys([("spring", 15), ("summer", 131), ("spring", 1), ("fall", 3), ("winter", 9)])
    split = assign_split(keys, val_fraction=0.1, seed=0)
    assert (split[keys.scene.isin([15, 131])] == "test").all()
    assert (split == "test").sum() == 20
    assert (split == "val").sum() == round(0.1 * 30)
    assert set(split[~keys.scene.isin([15, 131])]) == {"train", "val"}


def test_split_is_seeded_and_independent_of_row_order():
    keys = _keys([("spring", 1), ("fall", 3), ("winter", 9)], n=50)
    a = assign_split(keys, 0.2, seed=7)
    shuffled = keys.sample(frac=1, random_state=1)
    b = assign_split(shuffled, 0.2, seed=7).loc[keys.index]
    pd.testing.assert_series_equal(a, b)
    assert not assign_split(keys, 0.2, seed=8).equals(a)


def test_same_scene_number_in_other_season_is_not_holdout():
    assert is_holdout("spring", 15) and not is_holdout("winter", 15)
