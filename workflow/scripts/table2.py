from hcrlc.logs import job_log
from hcrlc.tables import write_table2

with job_log(snakemake.log[0]):
    runs = snakemake.params.runs  # model -> run names (one per seed)
    metrics = {model: [f"results/eval/{r}/metrics.json" for r in names] for model, names in runs.items()}
    write_table2(metrics, snakemake.params.source, snakemake.params.config_hash, snakemake.output.csv,
                 snakemake.output.md)
