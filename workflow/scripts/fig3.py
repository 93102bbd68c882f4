from pathlib import Path

from hcrlc.figures import fig3_from_files
from hcrlc.logs import job_log
from hcrlc.model_specs import FIG3_MODELS

with job_log(snakemake.log[0]):
    fig3_from_files(
        {model: snakemake.input[model] for model in FIG3_MODELS},
        snakemake.input.index,
        Path(snakemake.input.shards[0]).parents[1],
        Path(snakemake.input.masks[0]).parents[1],
        snakemake.output.png,
        source=snakemake.params.source,
        geometry=snakemake.params.geometry,
    )
