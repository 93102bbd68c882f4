rule synthetic_tree:
    output:
        sen12ms=directory("results/synthetic/SEN12MS"),
        sen12mscr=directory("results/synthetic/SEN12MS-CR"),
        truth=directory("results/synthetic/truth"),
        patches="results/synthetic/patches.csv",
    log:
        "results/logs/synthetic_tree.log",
    conda:
        CONDA_ENV
    threads: threads_of("light")
    resources:
        **resources_of("light"),
    params:
        code=code_of("synthetic_tree.py"),
        cfg=config["synthetic"],
    script:
        "../scripts/synthetic_tree.py"


rule listing:
    input:
        get_tree_inputs,
    output:
        listing="results/data/listing.parquet",
        excluded="results/data/listing_excluded.csv",
    log:
        "results/logs/listing.log",
    conda:
        CONDA_ENV
    threads: threads_of("light")
    resources:
        **resources_of("light"),
    params:
        code=code_of("listing.py"),
        sen12ms=SEN12MS,
        sen12mscr=SEN12MSCR,
    script:
        "../scripts/listing.py"


rule shards:
    input:
        "results/data/listing.parquet",
    output:
        multiext(
            "results/shards/{scene}/",
            *SHARD_FILES.values(),
            "table.parquet",
        ),
    log:
        "results/logs/shards/{scene}.log",
    conda:
        CONDA_ENV
    threads: threads_of("shards")
    resources:
        **resources_of("shards"),
    params:
        code=code_of("shards.py"),
        compression=config["shards"]["compression"],
        # real trees must hold SEN12MS's 256 px patches; the synthetic tree's size is read from its files
        patch_px=None if SYNTHETIC else PATCH_PX,
    script:
        "../scripts/shards.py"


rule index:
    input:
        listing="results/data/listing.parquet",
        listing_excluded="results/data/listing_excluded.csv",
        tables=expand("results/shards/{scene}/table.parquet", scene=SCENES),
        clouds=expand("results/masks/{scene}/cloud.parquet", scene=SCENES),
        labels=config["data"]["labels"] or [],
    output:
        index="results/data/index.parquet",
        excluded="results/data/excluded.csv",
    log:
        "results/logs/index.log",
    conda:
        CONDA_ENV
    threads: threads_of("light")
    resources:
        **resources_of("light"),
    params:
        code=code_of("index.py"),
        split=config["split"],
        label_threshold=config["labels"]["threshold"],
        labels=config["data"]["labels"],
        max_nodata_fraction=config["masks"]["max_nodata_fraction"],
        sen12ms=SEN12MS,
        sen12mscr=SEN12MSCR,
    script:
        "../scripts/index.py"


# A rule of its own: summarize() lives in hcrlc.data.summary, which no job upstream of the trainings imports, so
# editing it reruns this job only (hcrlc.provenance), not the index that every training reads.
rule data_summary:
    input:
        index="results/data/index.parquet",
        excluded="results/data/excluded.csv",
    output:
        summary="results/data/summary.json",
    log:
        "results/logs/data_summary.log",
    conda:
        CONDA_ENV
    threads: threads_of("light")
    resources:
        **resources_of("light"),
    params:
        code=code_of("data_summary.py"),
        source=DATA_SOURCE,
    script:
        "../scripts/data_summary.py"


rule data:
    input:
        "results/data/index.parquet",
        "results/data/excluded.csv",
        "results/data/summary.json",
