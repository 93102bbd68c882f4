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
    wildcard_constraints:
        run="|".join(EVAL_RUNS),
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
        num_workers=config["training"]["num_workers"],
    script:
        "../scripts/evaluate.py"


# Trivial baselines on the test split (no network, no checkpoint): the cloudy S2 taken as the reconstruction,
# and the class set that scores best on the training split predicted for every patch (src/hcrlc/baselines.py).
rule baseline_cloudy_input:
    input:
        **PACKED,
    output:
        metrics="results/eval/cloudy_input/metrics.json",
        predictions="results/eval/cloudy_input/predictions.npz",
    log:
        "results/logs/evaluate/cloudy_input.log",
    benchmark:
        "results/benchmarks/evaluate/cloudy_input.tsv"
    conda:
        CONDA_ENV
    threads: threads_of("evaluate")
    resources:
        **resources_of("evaluate"),
    params:
        code=code_of("baseline.py"),
        baseline="cloudy_input",
        batch_size=config["evaluate"]["batch_size"],
        device=config["training"]["device"],
    script:
        "../scripts/baseline.py"


rule baseline_constant_prediction:
    input:
        index=PACKED["index"],
    output:
        metrics="results/eval/constant_prediction/metrics.json",
        predictions="results/eval/constant_prediction/predictions.npz",
    log:
        "results/logs/evaluate/constant_prediction.log",
    conda:
        CONDA_ENV
    params:
        code=code_of("baseline.py"),
        baseline="constant_prediction",
    script:
        "../scripts/baseline.py"


rule evaluate:
    input:
        expand("results/eval/{run}/metrics.json", run=EVAL_RUNS + BASELINES),
