import re

# --- model cards: beside every best.pt, and with the test metrics once evaluated ----------------------------------
CARD_RUNS = ALL_RUNS + ["pretext"] + SSL_RUNS


localrules:
    model_card,
    evaluated_model_card,


def training_code(wildcards):
    """The code hash of the rule that trained the run (its params.code)."""
    if wildcards.run == "pretext":
        return code_of("pretext.py")
    if wildcards.run in SSL_RUNS:
        return code_of("ssl_run.py")
    return code_of("train.py", "train_ddp.py")


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


# --- predict: a trained model on the user's own scenes (not part of `all`) -------------------------------------
PREDICT = config["predict"]
PREDICT_SCENES = PREDICT["scenes"]
PREDICT_RUNS = ALL_RUNS + SSL_RUNS


def predict_products(run):
    """The files `predict_scene` writes for a run: the cloud-free S2 needs a reconstruction head (not LC-Net),
    the land cover a classification head (not HCR-Net); SSL runs are HCR&LC-Nets."""
    model = run_parts(run)[0] if run in ALL_RUNS else "hcr_lc_uncertain"
    files = {
        "cloud_mask": "cloud_mask.tif",
        "summary": "summary.json",
        "quicklook": "quicklook.png",
    }
    if model != "lc_net":
        files["cloud_free"] = "cloud_free.tif"
    if model != "hcr_net":
        files["landcover"] = "landcover.tif"
    return {key: f"results/predict/{{name}}/{f}" for key, f in files.items()}


def predict_scene_inputs(wildcards):
    scene = PREDICT_SCENES[wildcards.name]
    return {
        "s2": scene["s2"],
        "s1": scene["s1"],
        "best": f"results/models/{PREDICT['model']}/best.pt",
        "card": f"results/models/{PREDICT['model']}/model_card.json",
    }


def predict_targets(wildcards):
    """Every configured scene's summary; a clear error when nothing (or no usable model) is configured."""
    if PREDICT["model"] not in PREDICT_RUNS:
        raise ValueError(
            f"config predict.model: {PREDICT['model']!r} is not a model of this run; choose one of {PREDICT_RUNS}"
        )
    if not PREDICT_SCENES:
        raise ValueError(
            "config predict.scenes is empty: name your scenes in a config overlay, e.g. my_scenes.yaml with\n"
            "  predict:\n"
            "    model: hcr_lc_uncertain\n"
            "    scenes:\n"
            "      mine: {s2: /path/cloudy_L1C.tif, s1: /path/S1_VV_VH_dB.tif}\n"
            "then: snakemake predict --cores all --configfile my_scenes.yaml (outputs in results/predict/mine/).\n"
            "To try it on the demo scene: snakemake predict --cores all --configfile configs/predict_demo.yaml"
        )
    return expand("results/predict/{name}/summary.json", name=PREDICT_SCENES)


rule predict_demo_scene:
    output:
        s2="results/predict_demo/s2_l1c.tif",
        s1="results/predict_demo/s1_db.tif",
    log:
        "results/logs/predict_demo_scene.log",
    conda:
        CONDA_ENV
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
