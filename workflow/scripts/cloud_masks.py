from pathlib import Path

from hcrlc.data.clouds import compute_scene_masks
from hcrlc.logs import job_log

with job_log(snakemake.log[0]):
    m = snakemake.params.masks
    compute_scene_masks(
        Path(snakemake.input.table).parent,
        Path(snakemake.output.mask).parent,
        threshold=m["threshold"],
        average_over=m["average_over"],
        dilation_size=m["dilation_size"],
        engine=m["engine"],
        threads=snakemake.threads,
    )
