from hcrlc.atomic import atomic_output
from hcrlc.data.index import build_listing
from hcrlc.logs import job_log

with job_log(snakemake.log[0]):
    listing, excluded = build_listing(snakemake.params.sen12ms, snakemake.params.sen12mscr)
    with atomic_output(snakemake.output.listing) as tmp:
        listing.to_parquet(tmp, index=False)
    with atomic_output(snakemake.output.excluded) as tmp:
        excluded.to_csv(tmp, index=False)
