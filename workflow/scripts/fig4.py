from hcrlc.figures import fig4, read_metrics
from hcrlc.logs import job_log

with job_log(snakemake.log[0]):
    fig4(
        dict(zip(snakemake.params.runs, snakemake.input.metrics)),
        snakemake.output.png,
        snakemake.output.pdf,
        source=snakemake.params.source,
        constant_f1=read_metrics(snakemake.input.constant)["f1"],
    )
