"""The paper's tables from our models and results, with the paper's values beside ours.

Table 1 needs no training: parameter counts come from the networks built on the meta device (no weights are
allocated, so even the 100 M-parameter defaults take milliseconds).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from hcrlc.atomic import atomic_output
from hcrlc.models import learnable_parameters
from hcrlc.paper import TABLE1_PARAMS

#: Table 1 row → the network that is counted (HCR&LC-Net 1:1 and uncertain share one architecture).
TABLE1_MODELS: dict[str, str] = {"lc_net": "lc_net", "hcr_lc": "hcr_lc_equal", "hcr_c_net": "hcr_c_net"}


def table1(model_cfg: Mapping[str, Any] | None) -> pd.DataFrame:
    """Table 1, learnable parameters: columns ``model`` (lc_net, hcr_lc, hcr_c_net), ``ours``, ``paper``,
    ``match``.

    ``model_cfg`` is the config's ``model`` section; ``match`` is True where our count equals the paper's
    exactly (it does with the default, Table-1 sizes).
    """
    rows = []
    for row, name in TABLE1_MODELS.items():
        ours = learnable_parameters(name, model_cfg)
        paper = TABLE1_PARAMS[row]
        rows.append({"model": row, "ours": ours, "paper": paper, "match": ours == paper})
    return pd.DataFrame(rows, columns=["model", "ours", "paper", "match"])


def write_table1(model_cfg: Mapping[str, Any] | None, out_csv: str | Path) -> pd.DataFrame:
    """Write :func:`table1` to ``out_csv`` atomically (temp file in the same folder, then ``os.replace``)."""
    frame = table1(model_cfg)
    with atomic_output(out_csv) as tmp:
        frame.to_csv(tmp, index=False)
    return frame
