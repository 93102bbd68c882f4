"""The presets say what they promise: configs/paper.yaml is the authors' protocol, config.yaml the demo's."""

from __future__ import annotations

import yaml
from snakemake.utils import update_config, validate

from conftest import REPO

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


def resolved(*files: str) -> dict:
    """The config Snakemake runs with: the files merged in order (one level deep, as the presets need), then
    validated against the schema with its defaults filled in."""
    config: dict = {}
    for name in files:
        update_config(config, yaml.safe_load((REPO / name).read_text()))
    validate(config, str(SCHEMA), set_default=True)
    return config


def effective_training(config: dict, model: str) -> dict:
    """The training settings of ``model``, as the workflow's rules merge them (common.smk, ssl.smk)."""
    return {**config["training"], **config["models"].get(model, {})}


def test_paper_preset_is_the_authors_protocol():
    config = resolved("config.yaml", "configs/paper.yaml")  # the preset overrides the demo it is given after
    assert config["split"]["val_mode"] == "scenes"  # whole validation scenes: patches overlap by 50 %
    assert config["training"]["precision"] == "fp32"
    # the authors' networks: Table 1's widths, PyTorch's default init of the reconstruction head
    assert config["model"] == {**config["model"], "widths": [32, 64, 128, 256, 512], "recon_head_init": "default"}
    # every model trains 10 epochs; ssl_off too (scratch_epochs null = training.epochs), ssl_on ends with 10
    # epochs of all layers after 5 frozen ones
    assert config["training"]["epochs"] == 10 and config["ssl"]["scratch_epochs"] is None
    assert (config["ssl"]["frozen_epochs"], config["ssl"]["finetune_epochs"]) == (5, 10)
    # the demo's per-model overrides are reset: every network trains as `training` says
    for model in ("lc_net", "hcr_net", "hcr_lc_equal", "hcr_lc_uncertain", "hcr_c_net", "pretext", "ssl"):
        assert effective_training(config, model) == config["training"], model
    # and the demo's CPU-sized resources do not leak into a cluster run: training asks for a GPU
    assert config["resources"]["train"]["gpus"] == 1 and config["resources"]["evaluate"]["gpus"] == 1


def test_smoke_preset_trains_every_model_one_epoch_over_the_demo():
    config = resolved("config.yaml", "configs/smoke.yaml")
    for model in ("lc_net", "hcr_net", "hcr_lc_equal", "hcr_lc_uncertain", "hcr_c_net"):
        assert effective_training(config, model)["epochs"] == 1, model
    assert config["ssl"]["scratch_epochs"] == 1 and config["ssl"]["pretext_epochs"] == 1


def test_schema_defaults_are_the_authors_protocol_and_the_demo_validates_on_whole_scenes():
    defaults = resolved("configs/smoke.yaml")  # does not set training.precision
    assert defaults["training"]["precision"] == "fp32"
    assert defaults["split"]["val_mode"] == "patches"  # set: its two training scenes are too few to give one up
    demo = resolved("config.yaml")
    assert demo["split"]["val_mode"] == "scenes"  # the scale model has 11 training scenes of 144 patches
    # a scale model of the paper's geometry: the same ground per patch, the paper's 16 px classification centre
    assert demo["synthetic"]["patch_size"] * demo["synthetic"]["pixel_size_m"] == 256 * 10
    assert demo["synthetic"]["patch_size"] // 2 ** (len(demo["model"]["widths"]) - 1) == 16


def test_pretext_check_preset_is_the_full_resolution_pretext_of_the_authors_branch():
    demo, check = resolved("config.yaml"), resolved("config.yaml", "configs/pretext_check.yaml")
    assert (check["synthetic"]["patch_size"], check["synthetic"]["pixel_size_m"]) == (256, 10)
    assert len(check["model"]["widths"]) == 5  # depth 4: the paper's 16 px centre at 256 px
    assert (check["model"]["cls_batchnorm"], check["model"]["cls_init"]) == (False, "default")  # the authors'
    assert check["split"]["val_mode"] == "scenes"  # validated on a scene the pretext never trains on
    assert {key for key in check if check[key] != demo[key]} == {"synthetic", "split", "model", "models", "ssl"}
    assert {k: v for k, v in check["models"].items() if k != "pretext"} == {
        k: v for k, v in demo["models"].items() if k != "pretext"}
    assert {k: v for k, v in check["ssl"].items() if k != "pretext_epochs"} == {
        k: v for k, v in demo["ssl"].items() if k != "pretext_epochs"}
