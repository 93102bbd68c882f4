# Model cards beside every best.pt (in `all`, via `cards`) and `snakemake predict` on the user's own scenes (not in
# `all`); the names and input functions are in common_predict.smk.
include: "common_predict.smk"


localrules:
    model_card,
    evaluated_model_card,


rule model_card:
    input:
        best="results/models/{run}/best.pt",
        index=PACKED["index"],
    output:
        card="results/models/{run}/model_card.json",
    log:
        "results/logs/model_card/{run}.log",
    wildcard_constraints:
        run="|".join(CARD_RUNS),
    conda:
        CONDA_ENV
    threads: threads_of("light")
    resources:
        **resources_of("light"),
    params:
        code=code_of("model_card.py"),
        training_code=training_code,
        source=DATA_SOURCE,
    script:
        "../scripts/model_card.py"


rule evaluated_model_card:
    input:
        card="results/models/{run}/model_card.json",
        metrics="results/eval/{run}/metrics.json",
    output:
        card="results/eval/{run}/model_card.json",
    log:
        "results/logs/model_card/{run}_evaluated.log",
    wildcard_constraints:
        run="|".join(EVAL_RUNS),
    conda:
        CONDA_ENV
    threads: threads_of("light")
    resources:
        **resources_of("light"),
    params:
        code=code_of("evaluated_model_card.py"),
    script:
        "../scripts/evaluated_model_card.py"


rule cards:
    input:
        expand("results/models/{run}/model_card.json", run=CARD_RUNS),
        expand("results/eval/{run}/model_card.json", run=EVAL_RUNS),


rule predict_demo_scene:
    output:
        s2="results/predict_demo/s2_l1c.tif",
        s1="results/predict_demo/s1_db.tif",
    log:
        "results/logs/predict_demo_scene.log",
    conda:
        CONDA_ENV
    threads: threads_of("light")
    resources:
        **resources_of("light"),
    params:
        code=code_of("predict_demo_scene.py"),
    script:
        "../scripts/predict_demo_scene.py"


rule predict_scene:
    input:
        unpack(predict_scene_inputs),
    output:
        **predict_products(PREDICT["model"]),
    log:
        "results/logs/predict/{name}.log",
    benchmark:
        "results/benchmarks/predict/{name}.tsv"
    wildcard_constraints:
        name="|".join(map(re.escape, PREDICT_SCENES)) or "(?!)",
    conda:
        CONDA_ENV
    threads: threads_of("predict")
    resources:
        **resources_of("predict"),
    params:
        code=code_of("predict.py"),
        settings={
            "overlap": PREDICT["overlap"],
            "batch_size": PREDICT["batch_size"],
            "device": PREDICT["device"],
            "threshold": config["masks"]["threshold"],
            "average_over": config["masks"]["average_over"],
            "dilation_size": config["masks"]["dilation_size"],
            "mask_engine": config["masks"]["engine"],
        },
    script:
        "../scripts/predict.py"


rule predict:
    input:
        predict_targets,
