import pandas as pd

from hcrlc.atomic import atomic_output
from hcrlc.data.index import build_index, check_splits
from hcrlc.logs import job_log

with job_log(snakemake.log[0]):
    p = snakemake.params
    index, excluded = build_index(
        pd.read_parquet(snakemake.input.listing),
        pd.read_csv(snakemake.input.listing_excluded),
        [pd.read_parquet(f) for f in snakemake.input.tables],
        [pd.read_parquet(f) for f in snakemake.input.clouds],
        val_fraction=p.split["val_fraction"],
        seed=p.split["seed"],
        val_mode=p.split["val_mode"],
        label_threshold=p.label_threshold,
        labels_pkl=p.labels,
        max_nodata_fraction=p.max_nodata_fraction,
    )
    # an index that cannot serve a run stops here, before any training job starts
    check_splits(index, excluded, val_fraction=p.split["val_fraction"], sen12ms=p.sen12ms, sen12mscr=p.sen12mscr)
    with atomic_output(snakemake.output.index) as tmp:
        index.to_parquet(tmp, index=False)
    with atomic_output(snakemake.output.excluded) as tmp:
        excluded.to_csv(tmp, index=False)
