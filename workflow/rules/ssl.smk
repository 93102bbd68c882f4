rule pretext:
    input:
        **PACKED,
    output:
        best="results/models/pretext/best.pt",
        metrics="results/models/pretext/metrics.csv",
    log:
        "results/logs/train/pretext.log",
    benchmark:
        "results/benchmarks/train/pretext.tsv"
    conda:
        CONDA_ENV
    threads: threads_of("train")
    resources:
        **resources_of("train"),
    params:
        code=code_of("pretext.py"),
        model_cfg=config["model"],
        train_cfg=pretext_training_config(),
        epochs=config["ssl"]["pretext_epochs"],
        seed=config["ssl"]["seed"],
    script:
        "../scripts/pretext.py"


rule ssl_run:
    input:
        **PACKED,
        pretext=lambda w: (["results/models/pretext/best.pt"] if w.mode == "on" else []),
    output:
        best="results/models/ssl_{mode}_{fraction}/best.pt",
        metrics="results/models/ssl_{mode}_{fraction}/metrics.csv",
    log:
        "results/logs/train/ssl_{mode}_{fraction}.log",
    benchmark:
        "results/benchmarks/train/ssl_{mode}_{fraction}.tsv"
    wildcard_constraints:
        mode="on|off",
        fraction="25|50|75|100",
    conda:
        CONDA_ENV
    threads: threads_of("train")
    resources:
        **resources_of("train"),
    params:
        code=code_of("ssl_run.py"),
        model_cfg=config["model"],
        train_cfg=ssl_training_config,
        # what ssl_run.py reads (not label_fractions or pretext_epochs: they rerun it only through the DAG)
        ssl={
            k: config["ssl"][k]
            for k in ("frozen_epochs", "finetune_epochs", "scratch_epochs", "seed")
        },
    script:
        "../scripts/ssl_run.py"


rule fig4:
    input:
        predictions=expand("results/eval/{run}/predictions.npz", run=SSL_RUNS),
        constant="results/eval/constant_prediction/metrics.json",
        # the labelled patches of each fraction: the SSL runs' subsets of the train split
        index=PACKED["index"],
    output:
        png=report(
            "results/figures/fig4.png",
            caption="../report/fig4.rst",
            category="Figures",
        ),
        pdf="results/figures/fig4.pdf",
    log:
        "results/logs/fig4.log",
    conda:
        CONDA_ENV
    params:
        code=code_of("fig4.py"),
        geometry=GEOMETRY,
        runs=SSL_RUNS,
        ssl_seed=config["ssl"]["seed"],
        n_resamples=config["evaluate"]["bootstrap"],
        bootstrap_seed=config["evaluate"]["bootstrap_seed"],
        source=DATA_SOURCE,
    script:
        "../scripts/fig4.py"


rule ssl:
    input:
        expand("results/models/{run}/best.pt", run=SSL_RUNS),
        "results/figures/fig4.png",
