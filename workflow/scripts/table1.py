from hcrlc.logs import job_log
from hcrlc.tables import write_html, write_table1

with job_log(snakemake.log[0]):
    patch_px = snakemake.params.patch_px
    frame = write_table1(snakemake.params.model_cfg, patch_px, snakemake.output.csv)
    write_html(frame, snakemake.output.html,
               f"Table 1: learnable parameters at {patch_px} px patches (ours beside the paper's, at 256 px)")
