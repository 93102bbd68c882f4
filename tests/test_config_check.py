"""A config that breaks the closed schema gets a short error naming the key, its file and the allowed keys."""

from __future__ import annotations

import pytest
import yaml

from conftest import REPO, snakemake
from hcrlc.config_check import MAX_PROBLEMS, check_config
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
