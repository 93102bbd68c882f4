from hcrlc.data.layout import list_scenes, require_tree, scene_key
from hcrlc.data.shards import shard_files
from hcrlc.errors import DataError
from hcrlc.figure_labels import geometry_label


wildcard_constraints:
    scene=r"(spring|summer|fall|winter)_\d+",


CONDA_ENV = "../../envs/hcrlc.yaml"
SYNTHETIC = config["data"]["sen12ms"] is None and config["data"]["sen12mscr"] is None
if (config["data"]["sen12ms"] is None) != (config["data"]["sen12mscr"] is None):
    raise ValueError(
        "config: set both data.sen12ms and data.sen12mscr to real trees, or neither (synthetic data); "
        f"got sen12ms={config['data']['sen12ms']!r}, sen12mscr={config['data']['sen12mscr']!r}"
    )
SEN12MS = "results/synthetic/SEN12MS" if SYNTHETIC else config["data"]["sen12ms"]
SEN12MSCR = "results/synthetic/SEN12MS-CR" if SYNTHETIC else config["data"]["sen12mscr"]
DATA_SOURCE = "synthetic" if SYNTHETIC else "real"


# the line under a synthetic run's figure titles; real data needs none (the paper's geometry, checked when read)
GEOMETRY = (
    geometry_label(
        config["synthetic"]["patch_size"],
        config["synthetic"]["pixel_size_m"],
        config["model"]["widths"],
    )
    if SYNTHETIC
    else None
)


def get_scenes():
    """Scene keys (season_scene) that fan out per-scene jobs: from config, or from folder names of the real tree.

    A real tree that does not exist yet gives no scenes here; the error is raised by the first job that reads the
    trees (the listing), so that `snakemake download` can run with the paths overlay before the data is there.
    """
    if SYNTHETIC:
        return list(config["synthetic"]["scenes"])
    try:
        return [scene_key(season, scene) for season, scene in list_scenes(SEN12MSCR)]
    except DataError:
        return []


SCENES = get_scenes()


def get_tree_inputs(wildcards):
    """The synthetic trees are outputs of a rule; real trees are used in place (read-only) and not tracked,
    but must exist when the DAG needs them (error names the path and the config key)."""
    if SYNTHETIC:
        return [SEN12MS, SEN12MSCR]
    require_tree(SEN12MSCR, "SEN12MS-CR", "data.sen12mscr")
    require_tree(SEN12MS, "SEN12MS", "data.sen12ms")
    return []


def resources_of(group):
    """Memory, runtime and GPUs of one group of jobs (config `resources`), as keyword arguments."""
    spec = config["resources"][group]
    out = {k: v for k, v in spec.items() if k not in ("threads", "gpus")}
    if spec.get("gpus"):
        # the SLURM executor plugin turns `gpu` into sbatch --gpus (it ignores `gpus`)
        out["gpu"] = spec["gpus"]
    return out


def threads_of(group):
    return config["resources"][group].get("threads", 1)


# --- models and runs ---------------------------------------------------------------------------------------------
import hashlib
import json

from hcrlc.model_specs import CLASSIFIERS as CLASSIFYING_MODELS
from hcrlc.model_specs import FIG3_MODELS, MODEL_NAMES, MODELS

SEEDS = list(config["seeds"])


def run_name(model, seed):
    """The first seed trains `results/models/{model}/`; further seeds `{model}_s{seed}`."""
    return model if seed == SEEDS[0] else f"{model}_s{seed}"


def run_parts(run):
    """(model, seed) of a run name."""
    model, _, seed = run.partition("_s")
    if (
        model not in MODEL_NAMES
    ):  # model names themselves contain "_s"? none do, but fail loudly if one does
        raise ValueError(f"cannot parse run name {run!r}")
    return model, int(seed) if seed else SEEDS[0]


RUNS = {model: [run_name(model, s) for s in SEEDS] for model in MODEL_NAMES}
ALL_RUNS = [r for runs in RUNS.values() for r in runs]
CLASSIFIERS = list(CLASSIFYING_MODELS)
RUN_PATTERN = "(" + "|".join(MODEL_NAMES) + r")(_s\d+)?"


def merged_training(model, drop=()):
    """`training` merged with `model`'s overrides in `models`, less the keys in `drop`."""
    cfg = {**config["training"], **config["models"].get(model, {})}
    return {k: v for k, v in cfg.items() if k not in drop}


def training_config(run):
    """The training settings of a run of Table 2's models; its seed from `seeds`."""
    model, seed = run_parts(run)
    return {**merged_training(model), "seed": seed}


def pretext_training_config():
    """The pretext's training settings, less what its job sets itself (epochs: ssl.pretext_epochs; the seed is
    ssl.seed) or cannot use (gpus: one device), so that they do not rerun it.
    """
    return merged_training("pretext", drop=("epochs", "gpus"))


def ssl_training_config(wildcards):
    """The training settings of one SSL run (seed: ssl.seed), less gpus (one device); `epochs` only for ssl_off
    with ssl.scratch_epochs null (ssl_on's stages have their own).
    """
    scratch = wildcards.mode == "off" and config["ssl"]["scratch_epochs"] is None
    return merged_training("ssl", drop=("gpus",) if scratch else ("gpus", "epochs"))


def hcr_checkpoint(wildcards):
    """A model that freezes another inside (hcr_c_net: hcr_net) gets that model's checkpoint of the same seed: a
    DAG edge from it."""
    model, seed = run_parts(wildcards.run)
    frozen = MODELS[model].frozen_inside
    return [f"results/models/{run_name(frozen, seed)}/best.pt"] if frozen else []


#: file names of the packed arrays of a scene shard (.npy, or .b2nd for S2 with shards.compression: zstd)
SHARD_FILES = shard_files(config["shards"]["compression"])

PACKED = {
    "index": "results/data/index.parquet",
    "shards": expand(
        "results/shards/{scene}/{f}",
        scene=SCENES,
        f=list(SHARD_FILES.values()),
    ),
    "masks": expand("results/masks/{scene}/mask.npy", scene=SCENES),
}

CONFIG_HASH = hashlib.sha256(
    json.dumps(config, sort_keys=True, default=str).encode()
).hexdigest()[:12]

SSL_RUNS = [
    f"ssl_{mode}_{fraction}"
    for mode in ("on", "off")
    for fraction in config["ssl"]["label_fractions"]
]
EVAL_RUNS = ALL_RUNS + SSL_RUNS
#: evaluation outputs without a network (rules baseline_*); their names are not runs
BASELINES = ["cloudy_input", "constant_prediction"]
#: runs whose learning curves (metrics.csv) the curves figure draws
CURVE_RUNS = ALL_RUNS + ["pretext"] + SSL_RUNS


# --- provenance ---------------------------------------------------------------------------------------------------
from hcrlc.provenance import code_version


def code_of(*scripts):
    """`params.code` of a rule: a hash of its scripts and the library modules they import (hcrlc.provenance), so
    that an edit to, e.g., the loss reruns the trainings -- Snakemake's own code trigger sees only the script file.
    """
    return code_version(
        *(Path(workflow.basedir) / "workflow" / "scripts" / s for s in scripts),
        package_dir=Path(SRC) / "hcrlc",
    )
