from hcrlc.figures import fig1
from hcrlc.logs import job_log

with job_log(snakemake.log[0]):
    fig1(
        dict(zip(snakemake.params.models, snakemake.input.predictions)),
        snakemake.output.png,
        snakemake.output.pdf,
        source=snakemake.params.source,
        bins=snakemake.params.bins,
        subgroups=snakemake.params.subgroups,
        out_csv=snakemake.output.csv,
        baselines={"constant_prediction": snakemake.input.constant},
    )
