rule train_model:
    input:
        **PACKED,
        hcr=hcr_checkpoint,
    output:
        best="results/models/{run}/best.pt",
        metrics="results/models/{run}/metrics.csv",
    log:
        "results/logs/train/{run}.log",
    benchmark:
        "results/benchmarks/train/{run}.tsv"
    wildcard_constraints:
        run=RUN_PATTERN,
    conda:
        CONDA_ENV
    threads: threads_of("train")
    resources:
        **resources_of("train"),
    params:
        code=code_of("train.py", "train_ddp.py"),
        model=lambda w: run_parts(w.run)[0],
        model_cfg=config["model"],
        train_cfg=lambda w: training_config(w.run),
    script:
        "../scripts/train.py"


rule table1:
    output:
        csv=report(
            "results/tables/table1.csv",
            caption="../report/table1.rst",
            category="Tables",
        ),
        html=report(
            "results/tables/table1.html",
            caption="../report/table1.rst",
            category="Tables",
        ),
    log:
        "results/logs/table1.log",
    conda:
        CONDA_ENV
    params:
        code=code_of("table1.py"),
        model_cfg=config["model"],
        patch_px=PATCH_PX,
    script:
        "../scripts/table1.py"


rule train:
    input:
        expand("results/models/{run}/best.pt", run=ALL_RUNS),
        "results/tables/table1.csv",
