import logging

import pandas as pd

from hcrlc.atomic import write_json
from hcrlc.data.summary import counts_line, summarize
from hcrlc.logs import job_log

with job_log(snakemake.log[0]):
    summary = summarize(pd.read_parquet(snakemake.input.index), pd.read_csv(snakemake.input.excluded),
                        snakemake.params.source)
    write_json(summary, snakemake.output.summary)
    logging.getLogger("hcrlc.data.summary").info(counts_line(summary))  # the job's last line
