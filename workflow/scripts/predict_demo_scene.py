from pathlib import Path

from hcrlc.demo_scene import write_demo_scene
from hcrlc.logs import job_log

with job_log(snakemake.log[0]):
    write_demo_scene(Path(snakemake.output.s2).parent)
