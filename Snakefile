# Explicit Haze & Cloud Removal for Global Land Cover Classification (Gu et al., CVPR 2022 MultiEarth):
# the workflow decides what is computed from which files; src/hcrlc does the computing.
import os
import sys
from pathlib import Path

from snakemake.utils import min_version, validate

min_version("9.0")

SRC = str(Path(workflow.basedir) / "src")
sys.path.insert(0, SRC)
# jobs (scripts, conda envs, cluster jobs) import the same library as this file
# (set here, not required from the user: nothing for an `envvars:` directive to assert)
os.environ.update(
    PYTHONPATH=os.pathsep.join(p for p in (SRC, os.environ.get("PYTHONPATH")) if p)
)

from hcrlc.config_check import check_config, check_patch_geometry


configfile: str(Path(workflow.basedir) / "config.yaml")


# a short error naming an unknown key, its file and the allowed keys first; validate() then fills in defaults
check_config(
    config,
    Path(workflow.basedir) / "workflow/schemas/config.schema.yaml",
    workflow.configfiles,
)
validate(config, "workflow/schemas/config.schema.yaml")
# the size of every patch (SEN12MS's 256 px for real trees, synthetic.patch_size otherwise) must fit the networks
PATCH_PX = check_patch_geometry(config, workflow.configfiles)


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/download.smk"
include: "workflow/rules/masks.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/ssl.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/predict.smk"


rule all:
    default_target: True
    input:
        rules.data.input,
        rules.masks.input,
        rules.train.input,
        rules.evaluate.input,
        rules.ssl.input,
        rules.figures.input,
        rules.cards.input,
