from hcrlc.figures import fig4, labelled_patches
from hcrlc.logs import job_log
from hcrlc.tables import read_metrics

with job_log(snakemake.log[0]):
    p = snakemake.params
    fig4(
        dict(zip(p.runs, snakemake.input.predictions)),
        snakemake.output.png,
        snakemake.output.pdf,
        source=p.source,
        constant_f1=read_metrics(snakemake.input.constant)["f1"],
        labelled=labelled_patches(snakemake.input.index, p.ssl_seed),
        n_resamples=p.n_resamples,
        seed=p.bootstrap_seed,
        geometry=p.geometry,
    )
