from hcrlc.logs import job_log
from hcrlc.model_card import with_test_metrics

with job_log(snakemake.log[0]):
    with_test_metrics(snakemake.input.card, snakemake.input.metrics, snakemake.output.card)
