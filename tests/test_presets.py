"""The presets say what they promise: configs/paper.yaml is the authors' protocol, config.yaml the demo's."""

from __future__ import annotations

import yaml
from conftest import REPO
from snakemake.utils import validate

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


def resolved(*files: str) -> dict:
    """The config Snakemake runs with: the files merged in order (one level deep, as the presets need), then
    validated against the schema with its defaults filled in."""
    config: dict = {}
    for name in files:
        for key, value in yaml.safe_load((REPO / name).read_text()).items():
            config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
    validate(config, str(SCHEMA), set_default=True)
    return config


def test_paper_preset_is_the_authors_protocol():
    config = resolved("config.yaml", "configs/paper.yaml")  # the preset overrides the demo it is given after
    assert config["split"]["val_mode"] == "scenes"  # whole validation scenes: patches overlap by 50 %
    assert config["training"]["precision"] == "fp32"
    # every model trains 10 epochs; ssl_off too (scratch_epochs null = training.epochs), ssl_on ends with 10
    # epochs of all layers after 5 frozen ones
    assert config["training"]["epochs"] == 10 and config["ssl"]["scratch_epochs"] is None
    assert (config["ssl"]["frozen_epochs"], config["ssl"]["finetune_epochs"]) == (5, 10)
    assert config["models"] == {}  # no per-model override changes that


def test_schema_defaults_are_the_authors_protocol_and_the_demo_keeps_patch_validation():
    defaults = resolved("configs/smoke.yaml")  # sets neither key
    assert defaults["split"]["val_mode"] == "scenes" and defaults["training"]["precision"] == "fp32"
    assert resolved("config.yaml")["split"]["val_mode"] == "patches"  # 7 training scenes of ~16 patches
