from hcrlc.logs import job_log
from hcrlc.tables import write_table1

with job_log(snakemake.log[0]):
    write_table1(snakemake.params.model_cfg, snakemake.output[0])
