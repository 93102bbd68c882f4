from pathlib import Path

from hcrlc.jobs import launch_train_job
from hcrlc.logs import job_log

with job_log(snakemake.log[0]):
    out = snakemake.output
    spec = {
        "run": snakemake.wildcards.run,
        "model": snakemake.params.model,
        "index": snakemake.input.index,
        "shards_dir": str(Path(snakemake.input.shards[0]).parents[1]),
        "masks_dir": str(Path(snakemake.input.masks[0]).parents[1]),
        "out_dir": str(Path(out.best).parent),
        "model_cfg": dict(snakemake.params.model_cfg),
        "train_cfg": dict(snakemake.params.train_cfg),
        "hcr_checkpoint": snakemake.input.hcr[0] if snakemake.input.hcr else None,
        "code_version": snakemake.params.code,
    }
    launch_train_job(spec, Path(snakemake.scriptdir) / "train_ddp.py", snakemake.log[0])
