from hcrlc.logs import job_log
from hcrlc.tables import write_html, write_table2

with job_log(snakemake.log[0]):
    p = snakemake.params
    runs = p.runs  # model -> run names (one per seed)
    metrics = {model: [f"results/eval/{r}/metrics.json" for r in names] for model, names in runs.items()}
    predictions = {model: [f"results/eval/{r}/predictions.npz" for r in names] for model, names in runs.items()}
    predictions |= {b: [f"results/eval/{b}/predictions.npz"] for b in p.baselines}
    baselines = dict(zip(p.baselines, snakemake.input.baselines))
    frame = write_table2(metrics, p.source, p.config_hash, snakemake.output.csv, snakemake.output.md, baselines,
                         predictions, n_resamples=p.n_resamples, seed=p.bootstrap_seed)
    write_html(frame, snakemake.output.html,
               f"Table 2 — data source: {p.source}, config {p.config_hash} (paper's values in their own "
               f"columns; *_lo, *_hi: 95 % bootstrap interval over test patches, {p.n_resamples} resamples; "
               "baselines without a network in the last rows)")
