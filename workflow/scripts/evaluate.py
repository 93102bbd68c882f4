from pathlib import Path

from hcrlc.evaluation import evaluate_job
from hcrlc.logs import job_log

with job_log(snakemake.log[0]):
    evaluate_job(
        snakemake.input.best,
        snakemake.input.index,
        Path(snakemake.input.shards[0]).parents[1],
        Path(snakemake.input.masks[0]).parents[1],
        Path(snakemake.output.metrics).parent,
        run=snakemake.wildcards.run,
        batch_size=snakemake.params.batch_size,
        n_examples=snakemake.params.n_examples,
        device=snakemake.params.device,
        num_workers=snakemake.params.num_workers,
    )
