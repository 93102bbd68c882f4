rule cloud_masks:
    input:
        s2_cloudy=f"results/shards/{{scene}}/{SHARD_FILES['s2_cloudy']}",
        table="results/shards/{scene}/table.parquet",
    output:
        mask="results/masks/{scene}/mask.npy",
        cloud="results/masks/{scene}/cloud.parquet",
    log:
        "results/logs/masks/{scene}.log",
    benchmark:
        "results/benchmarks/masks/{scene}.tsv"
    conda:
        CONDA_ENV
    threads: threads_of("masks")
    resources:
        **resources_of("masks"),
    params:
        code=code_of("cloud_masks.py"),
        masks={k: v for k, v in config["masks"].items() if k != "max_nodata_fraction"},
    script:
        "../scripts/cloud_masks.py"


rule masks:
    input:
        expand("results/masks/{scene}/mask.npy", scene=SCENES),
