from hcrlc.figures import fig1
from hcrlc.logs import job_log

with job_log(snakemake.log[0]):
    p = snakemake.params
    fig1(
        dict(zip(p.models, snakemake.input.predictions)),
        snakemake.output.png,
        snakemake.output.pdf,
        source=p.source,
        bins=p.bins,
        subgroups=p.subgroups,
        out_csv=snakemake.output.csv,
        baselines={"constant_prediction": snakemake.input.constant},
        error_bars=p.error_bars,
        n_resamples=p.n_resamples,
        bootstrap_seed=p.bootstrap_seed,
        geometry=p.geometry,
    )
