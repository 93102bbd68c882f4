from hcrlc.logs import job_log
from hcrlc.model_card import split_sizes, write_model_card

with job_log(snakemake.log[0]):
    write_model_card(
        snakemake.input.best,
        snakemake.output.card,
        run=snakemake.wildcards.run,
        data_source=snakemake.params.source,
        splits=split_sizes(snakemake.input.index),
        training_code=snakemake.params.training_code,
    )
