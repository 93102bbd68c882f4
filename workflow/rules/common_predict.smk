"""Input functions and names of workflow/rules/predict.smk: model cards and `snakemake predict`."""

import re

from hcrlc.model_specs import PRETEXT, SSL_MODEL

# --- model cards: beside every best.pt, and with the test metrics once evaluated ----------------------------------
CARD_RUNS = ALL_RUNS + [PRETEXT] + SSL_RUNS


def training_code(wildcards):
    """The code hash of the rule that trained the run (its params.code)."""
    if wildcards.run == PRETEXT:
        return code_of("pretext.py")
    if wildcards.run in SSL_RUNS:
        return code_of("ssl_run.py")
    return code_of("train.py", "train_ddp.py")


# --- predict: a trained model on the user's own scenes (not part of `all`) -------------------------------------
PREDICT = config["predict"]
PREDICT_SCENES = PREDICT["scenes"]
PREDICT_RUNS = ALL_RUNS + SSL_RUNS


def predict_products(run):
    """The files `predict_scene` writes for a run: the cloud-free S2 needs a reconstruction head (not LC-Net),
    the land cover a classification head (not HCR-Net); SSL runs train SSL_MODEL."""
    spec = MODELS[run_parts(run)[0] if run in ALL_RUNS else SSL_MODEL]
    files = {
        "cloud_mask": "cloud_mask.tif",
        "summary": "summary.json",
        "quicklook": "quicklook.png",
    }
    if spec.reconstructs:
        files["cloud_free"] = "cloud_free.tif"
    if spec.classifies:
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
