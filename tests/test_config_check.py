"""A config that breaks the closed schema gets a short error naming the key, its file and the allowed keys."""

from __future__ import annotations

import re

import pytest
import yaml

from conftest import REPO, snakemake
from hcrlc.config_check import MAX_PROBLEMS, check_config, check_patch_geometry
from hcrlc.errors import ConfigError

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


def demo_config() -> dict:
    return yaml.safe_load((REPO / "config.yaml").read_text())


def test_the_shipped_configs_pass():
    check_config(demo_config(), SCHEMA)
    for path in sorted((REPO / "configs").glob("*.yaml")):
        config = demo_config() | yaml.safe_load(path.read_text())  # top-level overlay, as Snakemake merges
        check_config(config, SCHEMA, [path])


def test_unknown_keys_are_named_with_their_file_the_nearest_key_and_the_allowed_ones(tmp_path):
    typo = tmp_path / "typo.yaml"
    typo.write_text("trainig:\n  epochs: 3\nmasks:\n  thresold: 0.4\n")
    config = demo_config()
    config["trainig"] = {"epochs": 3}
    config["masks"]["thresold"] = 0.4
    with pytest.raises(ConfigError) as err:
        check_config(config, SCHEMA, [REPO / "config.yaml", typo])
    lines = str(err.value).splitlines()
    top = next(line for line in lines if "'trainig'" in line)
    assert "at the top level" in top and "did you mean 'training'" in top and str(typo) in top
    assert "config.yaml" not in top.replace(str(typo), "")  # only the file that sets it
    allowed = sorted(yaml.safe_load(SCHEMA.read_text())["properties"])
    assert top.endswith("allowed keys there: " + ", ".join(allowed))
    nested = next(line for line in lines if "'thresold'" in line)
    assert "at masks" in nested and "did you mean 'threshold'" in nested and str(typo) in nested
    assert len(lines) == 4  # headline, two problems, fix


def test_a_key_from_no_file_is_said_to_come_from_the_command_line():
    config = demo_config() | {"zzz": 1}
    with pytest.raises(ConfigError, match=r"unknown key 'zzz' at the top level, set in --config"):
        check_config(config, SCHEMA, [REPO / "config.yaml"])


def test_a_wrong_value_names_its_key_briefly():
    config = demo_config()
    config["masks"]["threshold"] = "high"
    with pytest.raises(ConfigError) as err:
        check_config(config, SCHEMA)
    assert "\n  masks.threshold: 'high' is not of type 'number' (set in --config" in str(err.value)
    assert len(str(err.value).splitlines()) == 3


def test_many_problems_are_capped():
    config = demo_config() | {f"junk{i}": i for i in range(MAX_PROBLEMS + 4)}
    with pytest.raises(ConfigError) as err:
        check_config(config, SCHEMA)
    text = str(err.value)
    assert "\n  ... and 4 more\n" in text and len(text.splitlines()) == MAX_PROBLEMS + 3


@pytest.mark.slow
def test_snakemake_prints_a_short_error_for_a_mistyped_key(tmp_path):
    typo = tmp_path / "typo.yaml"
    typo.write_text("trainig:\n  epochs: 3\n")
    proc = snakemake(tmp_path, "-n", "--configfile", str(typo), check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "unknown key 'trainig' at the top level (did you mean 'training'?)" in out and str(typo) in out
    assert len(out.splitlines()) < 20, out  # Snakemake's own validate() printed ~1000 lines


# --- the patch size against the networks, before any job ---------------------------------------------------------


def test_a_patch_size_that_fits_the_networks_is_the_runs_and_real_trees_are_256_px():
    config = demo_config()  # the scale model: depth 1, three classification convs, five C-Net pools
    for size in (256, 128):
        assert check_patch_geometry(config | {"synthetic": {**config["synthetic"], "patch_size": size}}) == size
    real = config | {"data": {**config["data"], "sen12ms": "/x", "sen12mscr": "/y"},
                     "synthetic": {**config["synthetic"], "patch_size": 64}}
    assert check_patch_geometry(real) == 256  # synthetic.patch_size does not apply to real trees


PAPER_DEPTH = {"widths": [4, 8, 16, 32, 64], "cls_widths": [8, 8, 8]}  # depth 4 like the paper's U-Net


@pytest.mark.parametrize(("size", "model", "key", "why"), [
    (64, PAPER_DEPTH, "model.cls_widths", "centre of a 64 px input is 4 px"),
    (88, PAPER_DEPTH, "model.widths", "88 px is not a multiple of 2**4 = 16"),
    (48, {"widths": [4, 8, 16], "cls_widths": [8]}, "model.cnet_layers", "48 px is not divisible by 2**5"),
    (63, {"widths": [4, 8], "cls_widths": [8], "cnet_layers": [4]}, "synthetic.patch_size", "even"),
])
def test_a_patch_size_the_networks_cannot_take_names_both_keys_and_their_files(tmp_path, size, model, key, why):
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text(yaml.safe_dump({"synthetic": {"patch_size": size}}))
    config = demo_config()
    config["synthetic"]["patch_size"] = size
    config["model"] = {**config["model"], "cnet_layers": [4, "M", 4, "M", 4, "M", 4, "M", 4, "M"], **model}
    with pytest.raises(ConfigError) as err:
        check_patch_geometry(config, [REPO / "config.yaml", overlay])
    text = str(err.value)
    assert why in text and key in text and "synthetic.patch_size" in text
    assert re.search(rf"synthetic.patch_size: set in [^;)]*{re.escape(str(overlay))}", text)  # the overlay that set it
    assert "model.widths: set in" in text


def test_real_trees_are_checked_at_256_px():
    config = demo_config()
    config["data"] = {**config["data"], "sen12ms": "/x", "sen12mscr": "/y"}
    config["model"] = {**config["model"], "widths": [4, 8, 8, 8, 8, 8, 8, 8, 8, 8]}  # depth 9: 512 px at least
    with pytest.raises(ConfigError, match=r"patches of 256 px \(data.sen12ms is set, and SEN12MS patches are "
                                          r"256 px\) do not fit .* model.widths"):
        check_patch_geometry(config)


def test_an_odd_patch_size_is_a_schema_error_naming_the_key():
    config = demo_config()
    config["synthetic"]["patch_size"] = 63
    with pytest.raises(ConfigError, match=r"synthetic.patch_size: 63 is not a multiple of 2"):
        check_config(config, SCHEMA)


@pytest.mark.slow
def test_snakemake_refuses_a_patch_size_that_does_not_fit_before_any_job(tmp_path):
    overlay = tmp_path / "small.yaml"
    overlay.write_text("synthetic:\n  patch_size: 88\n")  # the demo's U-Net has depth 4: multiples of 16 only
    proc = snakemake(tmp_path, "-n", "--configfile", str(REPO / "config.yaml"), str(overlay), check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "88 px (synthetic.patch_size) do not fit" in out and "model.widths" in out and str(overlay) in out
    assert not (tmp_path / "results").exists()
