"""Table 1 from the config's model sizes, without training or allocating weights."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import yaml

from hcrlc.models import learnable_parameters
from hcrlc.paper import TABLE1_PARAMS
from hcrlc.tables import table1, write_table1

#: The demo's shrunk sizes.
SMALL = yaml.safe_load((Path(__file__).resolve().parents[1] / "config.yaml").read_text())["model"]


def test_table1_with_default_sizes_matches_the_paper_quickly() -> None:
    start = time.perf_counter()
    frame = table1({})
    elapsed = time.perf_counter() - start
    assert list(frame.columns) == ["model", "ours", "paper", "match"]
    assert frame["model"].tolist() == ["lc_net", "hcr_lc", "hcr_c_net"]
    assert frame["ours"].tolist() == [103_851_050, 106_899_319, 107_473_335]
    assert frame["paper"].tolist() == [TABLE1_PARAMS[k] for k in frame["model"]]
    assert frame["match"].tolist() == [True, True, True]
    assert elapsed < 2.0  # built on the meta device: no 100 M-parameter allocations


def test_table1_with_shrunk_sizes_reports_mismatch() -> None:
    frame = table1(SMALL)
    assert not frame["match"].any()
    assert frame["ours"].tolist() == [
        learnable_parameters(name, SMALL) for name in ("lc_net", "hcr_lc_equal", "hcr_c_net")
    ]


def test_write_table1_is_atomic_and_round_trips(tmp_path) -> None:
    out = tmp_path / "tables" / "table1.csv"
    out.parent.mkdir()
    out.write_text("stale\n")
    frame = write_table1({}, out)
    assert pd.read_csv(out).equals(frame)
    assert sorted(p.name for p in out.parent.iterdir()) == ["table1.csv"]  # no temp file left behind
