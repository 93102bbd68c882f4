from pathlib import Path

from hcrlc.figures import fig3_from_files
from hcrlc.logs import job_log

with job_log(snakemake.log[0]):
    fig3_from_files(
        {"hcr_net": snakemake.input.hcr_net, "hcr_lc_uncertain": snakemake.input.hcr_lc_uncertain},
        snakemake.input.index,
        Path(snakemake.input.shards[0]).parents[1],
        Path(snakemake.input.masks[0]).parents[1],
        snakemake.output.png,
        source=snakemake.params.source,
    )
