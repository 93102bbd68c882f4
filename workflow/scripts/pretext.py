from pathlib import Path

from hcrlc.logs import job_log
from hcrlc.selfsup import pretext_job

with job_log(snakemake.log[0]):
    p = snakemake.params
    pretext_job(
        snakemake.input.index,
        Path(snakemake.input.shards[0]).parents[1],
        Path(snakemake.input.masks[0]).parents[1],
        Path(snakemake.output.best).parent,
        model_cfg=dict(p.model_cfg),
        train_cfg=dict(p.train_cfg),
        epochs=p.epochs,
        seed=p.seed,
        code_version=p.code,
    )
