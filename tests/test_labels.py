import numpy as np
import pytest

from hcrlc.data.labels import (
    IGBP_TO_CLASS_MATRIX,
    class_fractions,
    igbp_fractions_from_lc,
    load_probability_labels,
    multi_hot,
)
from hcrlc.errors import DataError
from hcrlc.paper import CLASSES


def test_mapping_covers_every_igbp_class_once():
    assert IGBP_TO_CLASS_MATRIX.shape == (17, 10)
    np.testing.assert_array_equal(IGBP_TO_CLASS_MATRIX.sum(axis=1), np.ones(17))
    # croplands = 12 + 14 (1-based), forest = 1..5
    assert IGBP_TO_CLASS_MATRIX[[11, 13], CLASSES.index("croplands")].tolist() == [1, 1]
    assert IGBP_TO_CLASS_MATRIX[:5, CLASSES.index("forest")].sum() == 5


def test_fractions_from_lc_ignore_nodata():
    lc = np.array([[1, 1, 17, 0], [12, 14, 255, 17]])
    f = igbp_fractions_from_lc(lc)
    assert f.sum() == pytest.approx(1.0)
    assert f[0] == pytest.approx(2 / 6) and f[16] == pytest.approx(2 / 6) and f[11] == pytest.approx(1 / 6)


def test_multi_hot_threshold_sums_igbp_ids_of_a_class():
    f = np.zeros(17)
    f[11], f[13] = 0.05, 0.05  # croplands = 0.10 in total -> present
    f[16] = 0.09  # water just below threshold
    f[0] = 0.81
    y = multi_hot(f, 0.1)
    assert y[CLASSES.index("croplands")] and not y[CLASSES.index("water")] and y[CLASSES.index("forest")]
    assert class_fractions(f).sum() == pytest.approx(1.0)


def test_label_pickle_errors_name_the_file(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_probability_labels(tmp_path / "nope.pkl")
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="bad.pkl"):
        load_probability_labels(bad)
