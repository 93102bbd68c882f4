from pathlib import Path

from hcrlc.logs import job_log
from hcrlc.selfsup import ssl_job

with job_log(snakemake.log[0]):
    p, w = snakemake.params, snakemake.wildcards
    ssl_job(
        f"ssl_{w.mode}_{w.fraction}",
        snakemake.input.index,
        Path(snakemake.input.shards[0]).parents[1],
        Path(snakemake.input.masks[0]).parents[1],
        Path(snakemake.output.best).parent,
        model_cfg=dict(p.model_cfg),
        train_cfg=dict(p.train_cfg),
        fraction=int(w.fraction),
        pretext_checkpoint=snakemake.input.pretext[0] if snakemake.input.pretext else None,
        frozen_epochs=p.ssl["frozen_epochs"],
        finetune_epochs=p.ssl["finetune_epochs"],
        seed=p.ssl["seed"],
        scratch_epochs=p.ssl["scratch_epochs"],
        code_version=p.code,
    )
