from hcrlc.logs import job_log
from hcrlc.tables import write_html, write_table2

with job_log(snakemake.log[0]):
    runs = snakemake.params.runs  # model -> run names (one per seed)
    metrics = {model: [f"results/eval/{r}/metrics.json" for r in names] for model, names in runs.items()}
    baselines = dict(zip(snakemake.params.baselines, snakemake.input.baselines))
    p = snakemake.params
    frame = write_table2(metrics, p.source, p.config_hash, snakemake.output.csv, snakemake.output.md,
                         baselines)
    write_html(frame, snakemake.output.html,
               f"Table 2 — data source: {p.source}, config {p.config_hash} (paper's values in their own "
               "columns; baselines without a network in the last rows)")
