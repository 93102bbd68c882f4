# The real data: SEN12MS (mediaTUM m1474000) and SEN12MS-CR (m1554803) archives listed in `download.archives`,
# fetched into `download.dir` (resumable, sha256-checked, safely extracted). Not part of `all`: run
# `snakemake download --configfile configs/paper.yaml`, then point data.sen12ms / data.sen12mscr at the trees.
DOWNLOAD_DIR = config["download"]["dir"]


rule download:
    output:
        f"{DOWNLOAD_DIR}/.complete",
    log:
        "results/logs/download.log",
    conda:
        CONDA_ENV
    resources:
        mem_mb=2000,
        runtime=config["download"]["runtime"],
    params:
        code=code_of("download.py"),
        cfg=config["download"],
    script:
        "../scripts/download.py"
