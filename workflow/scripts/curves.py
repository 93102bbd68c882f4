from hcrlc.figures import curves
from hcrlc.logs import job_log

with job_log(snakemake.log[0]):
    curves(
        dict(zip(snakemake.params.runs, snakemake.input.metrics)),
        snakemake.output.png,
        snakemake.output.pdf,
        source=snakemake.params.source,
        geometry=snakemake.params.geometry,
    )
