from hcrlc.claims import write_claims
from hcrlc.logs import job_log
from hcrlc.tables import write_html

with job_log(snakemake.log[0]):
    p = snakemake.params
    predictions = {model: [f"results/eval/{r}/predictions.npz" for r in names] for model, names in p.runs.items()}
    predictions |= {run: [f"results/eval/{run}/predictions.npz"] for run in p.ssl_runs}
    frame = write_claims(predictions, snakemake.output.csv, snakemake.output.md, source=p.source,
                         config_hash=p.config_hash, fractions=p.fractions, bins=p.bins, n_resamples=p.n_resamples,
                         seed=p.bootstrap_seed)
    write_html(frame, snakemake.output.html,
               f"The paper's claims tested on this run — data source: {p.source}, config {p.config_hash} "
               f"(95 % paired bootstrap interval over test patches, {p.n_resamples} resamples)")
