from pathlib import Path

import pandas as pd

from hcrlc.data.layout import parse_scene_key
from hcrlc.data.shards import scan_scene
from hcrlc.logs import job_log

with job_log(snakemake.log[0]):
    season, scene = parse_scene_key(snakemake.wildcards.scene)
    listing = pd.read_parquet(snakemake.input[0])
    rows = listing[(listing.season == season) & (listing.scene == scene)]
    scan_scene(rows, Path(snakemake.output[0]).parent, threads=snakemake.threads,
               compression=snakemake.params.compression, patch_px=snakemake.params.patch_px)
