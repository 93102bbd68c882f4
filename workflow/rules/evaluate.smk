rule evaluate_model:
    input:
        **PACKED,
        best="results/models/{run}/best.pt",
    output:
        metrics="results/eval/{run}/metrics.json",
        predictions="results/eval/{run}/predictions.npz",
        examples="results/eval/{run}/examples.npz",
    log:
        "results/logs/evaluate/{run}.log",
    benchmark:
        "results/benchmarks/evaluate/{run}.tsv"
    conda:
        CONDA_ENV
    threads: threads_of("evaluate")
    resources:
        **resources_of("evaluate"),
    params:
        code=code_of("evaluate.py"),
        batch_size=config["evaluate"]["batch_size"],
        n_examples=config["evaluate"]["fig3_examples"],
        device=config["training"]["device"],
    script:
        "../scripts/evaluate.py"


rule evaluate:
    input:
        expand("results/eval/{run}/metrics.json", run=EVAL_RUNS),
