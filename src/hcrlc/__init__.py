"""hcrlc: the library behind the reproducible pipeline for Gu et al., "Explicit Haze & Cloud Removal for Global
Land Cover Classification" (CVPR 2022 MultiEarth workshop).

The Snakemake workflow in the repository root decides what is computed from which files; this package does the
computing and never imports Snakemake.
"""

__version__ = "0.1.0"
