import logging
from pathlib import Path

from hcrlc.atomic import write_json
from hcrlc.download import DATASET_DIRS, download_all
from hcrlc.logs import job_log

cfg = snakemake.params.cfg
with job_log(snakemake.log[0]):
    root = Path(cfg["dir"])
    state = download_all(
        cfg["archives"],
        root,
        extract=cfg["extract"],
        keep_archives=cfg["keep_archives"],
        timeout=cfg["timeout"],
        retries=cfg["retries"],
    )
    trees = {ds: str(root / folder) for ds, folder in DATASET_DIRS.items()}
    write_json({**trees, "archives": state}, snakemake.output[0])
    logging.getLogger("hcrlc.download").info(
        "done; use the trees with a config overlay:  data: {sen12ms: %s, sen12mscr: %s}",
        trees["sen12ms"],
        trees["sen12mscr"],
    )
