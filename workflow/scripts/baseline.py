from pathlib import Path

from hcrlc.baselines import CLOUDY_INPUT, cloudy_input_baseline, constant_prediction_baseline
from hcrlc.logs import job_log

with job_log(snakemake.log[0]):
    out_dir = Path(snakemake.output.metrics).parent
    if snakemake.params.baseline == CLOUDY_INPUT:
        cloudy_input_baseline(
            snakemake.input.index,
            Path(snakemake.input.shards[0]).parents[1],
            Path(snakemake.input.masks[0]).parents[1],
            out_dir,
            batch_size=snakemake.params.batch_size,
            device=snakemake.params.device,
        )
    else:
        constant_prediction_baseline(snakemake.input.index, out_dir)
