from pathlib import Path

from hcrlc.logs import job_log
from hcrlc.predict import PredictSettings, predict_scene

with job_log(snakemake.log[0]):
    predict_scene(
        snakemake.input.best,
        snakemake.input.s2,
        snakemake.input.s1,
        Path(snakemake.output.summary).parent,
        PredictSettings(**snakemake.params.settings, threads=snakemake.threads),
        name=snakemake.wildcards.name,
        model_card=snakemake.input.card,
    )
