"""The line that names a synthetic run's geometry under its figure titles.

Its own module, imported by the Snakefile only (``workflow/rules/common.smk``, which passes the line to the figure
rules as a param): no job script imports it, so it is in no rule's code hash (``hcrlc.provenance``), and an edit
here reruns the figures through their changed param, never the data or the trainings.
"""

from __future__ import annotations

from collections.abc import Sequence

from hcrlc.paper import PATCH_SIZE


def geometry_label(patch_size: int, pixel_size_m: float, widths: Sequence[int]) -> str:
    """A synthetic run's geometry for its figure titles, e.g. "scale model: 32 px patches at 80 m, U-Net depth 1,
    widths [8, 16]" ("scale model" where the patches are smaller than SEN12MS's 256 px)."""
    kind = "scale model: " if patch_size < PATCH_SIZE else ""
    return f"{kind}{patch_size} px patches at {pixel_size_m:g} m, U-Net depth {len(widths) - 1}, widths {list(widths)}"
