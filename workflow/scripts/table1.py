from hcrlc.logs import job_log
from hcrlc.tables import write_html, write_table1

with job_log(snakemake.log[0]):
    frame = write_table1(snakemake.params.model_cfg, snakemake.output.csv)
    write_html(frame, snakemake.output.html, "Table 1: learnable parameters (ours beside the paper's)")
