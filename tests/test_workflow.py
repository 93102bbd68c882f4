"""Smoke runs of the real Snakemake workflow on tiny generated data, from another working directory."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import REPO

SMOKE = REPO / "configs" / "smoke.yaml"


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    # targets and flags first: --configfile takes every word after it
    configs = [] if "--configfile" in args else ["--configfile", str(SMOKE)]
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--cores", "2",
           *args, *configs]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}")
    return proc


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("smoke")
    snakemake(work, "data", "masks")
    return work


@pytest.mark.slow
def test_data_stage_outputs_follow_the_contract(smoke_run):
    data = smoke_run / "results" / "data"
    index = pd.read_parquet(data / "index.parquet")
    excluded = pd.read_csv(data / "excluded.csv")
    summary = json.loads((data / "summary.json").read_text())
    assert set(index.split) == {"train", "val", "test"}
    assert list(excluded.columns) == ["season", "scene", "patch", "reason"]
    assert len(excluded) == 2  # only_in_one_tree: 1 per tree
    assert summary["source"] == "synthetic"
    assert summary["splits"]["test"]["n"] == int((index.split == "test").sum())
    assert (smoke_run / "results" / "logs" / "listing.log").is_file()
    mask_log = (smoke_run / "results" / "logs" / "masks" / "spring_1.log").read_text()
    assert "masks" in mask_log  # the progress bar went to the log


@pytest.mark.slow
def test_second_invocation_has_nothing_to_do(smoke_run):
    proc = snakemake(smoke_run, "data", "masks", "-n")
    assert "Nothing to be done" in proc.stdout + proc.stderr


@pytest.mark.slow
def test_real_layout_tree_via_overlay_from_another_directory(smoke_run, tmp_path):
    # the generated trees are in the exact real layout: point a fresh run at them as if they were real data
    overlay = tmp_path / "paths.yaml"
    synth = smoke_run / "results" / "synthetic"
    overlay.write_text(yaml.safe_dump({"data": {"sen12ms": str(synth / "SEN12MS"),
                                                "sen12mscr": str(synth / "SEN12MS-CR")}}))
    work = tmp_path / "elsewhere"
    snakemake(work, "data", "--configfile", str(SMOKE), str(overlay))
    real = pd.read_parquet(work / "results" / "data" / "index.parquet")
    synthetic = pd.read_parquet(smoke_run / "results" / "data" / "index.parquet")
    assert json.loads((work / "results" / "data" / "summary.json").read_text())["source"] == "real"
    cols = ["season", "scene", "patch", "split", "cloud_fraction"]
    pd.testing.assert_frame_equal(real[cols], synthetic[cols])
    assert not (work / "results" / "synthetic").exists()


def test_unknown_config_key_fails_before_any_job(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("split:\n  val_fraktion: 0.2\n")
    proc = snakemake(tmp_path, "-n", "--configfile", str(SMOKE), str(bad), check=False)
    assert proc.returncode != 0
    assert "val_fraktion" in proc.stdout + proc.stderr
    assert not (tmp_path / "results").exists()


def test_missing_data_path_names_path_and_fix(tmp_path):
    overlay = tmp_path / "paths.yaml"
    overlay.write_text(yaml.safe_dump({"data": {"sen12ms": str(tmp_path / "no_ms"),
                                                "sen12mscr": str(tmp_path / "no_cr")}}))
    proc = snakemake(tmp_path, "-n", "--configfile", str(SMOKE), str(overlay), check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "no_cr" in out and "data.sen12mscr" in out


@pytest.mark.slow
def test_lint_is_clean():
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--lint",
                           "--configfile", str(SMOKE), "-d", str(REPO)],
                          capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "Congratulations" in out or "no issues" in out.lower() or out.strip() == "", out


def test_snakefmt_check():
    if shutil.which("snakefmt") is None:
        pytest.skip("snakefmt not installed (pip install -e .[test])")
    files = [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]
    proc = subprocess.run(["snakefmt", "--check", *map(str, files)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
