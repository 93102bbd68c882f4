"""Smoke runs of the real Snakemake workflow on tiny generated data, from another working directory."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from conftest import REPO, SMOKE, snakemake
from hcrlc.training import load_model


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
    proc = snakemake(smoke_run, "-n")
    assert "Nothing to be done" in proc.stdout + proc.stderr


@pytest.mark.slow
def test_real_layout_tree_via_overlay_from_another_directory(paper_geometry_run, tmp_path):
    # the generated trees are in the exact real layout: point a fresh run at them as if they were real data (real
    # trees hold 256 px patches: the paper-geometry run's tree does)
    overlay = tmp_path / "paths.yaml"
    synth = paper_geometry_run / "results" / "synthetic"
    overlay.write_text(yaml.safe_dump({"data": {"sen12ms": str(synth / "SEN12MS"),
                                                "sen12mscr": str(synth / "SEN12MS-CR")}}))
    work = tmp_path / "elsewhere"
    snakemake(work, "data", "--configfile", str(SMOKE), str(paper_geometry_run / "paper_geometry.yaml"),
              str(overlay))
    real = pd.read_parquet(work / "results" / "data" / "index.parquet")
    synthetic = pd.read_parquet(paper_geometry_run / "results" / "data" / "index.parquet")
    assert json.loads((work / "results" / "data" / "summary.json").read_text())["source"] == "real"
    cols = ["season", "scene", "patch", "split", "cloud_fraction", "patch_px"]
    pd.testing.assert_frame_equal(real[cols], synthetic[cols])
    assert not (work / "results" / "synthetic").exists()


@pytest.mark.slow
def test_a_real_tree_of_other_than_256_px_patches_is_refused_naming_a_file(smoke_run, tmp_path):
    # the smoke run's tree holds 64 px patches: as real data it is not SEN12MS as published
    synth = smoke_run / "results" / "synthetic"
    paths = overlay(tmp_path, {"data": {"sen12ms": str(synth / "SEN12MS"), "sen12mscr": str(synth / "SEN12MS-CR")}})
    work = tmp_path / "elsewhere"
    proc = snakemake(work, "data", "--configfile", str(SMOKE), paths, check=False)
    assert proc.returncode != 0
    logs = "".join(p.read_text() for p in (work / "results" / "logs" / "shards").glob("*.log"))
    assert "is 64x64 px, expected 256x256, and so is every other patch of this scene" in logs
    assert f"{synth / 'SEN12MS-CR'}/" in logs and "data.sen12ms" in logs
    assert not (work / "results" / "data" / "index.parquet").exists()


@pytest.mark.slow
def test_the_papers_256_px_depth_4_geometry_runs_through_the_rules(paper_geometry_run):
    r = paper_geometry_run / "results"
    assert (pd.read_parquet(r / "data" / "index.parquet")["patch_px"] == 256).all()
    assert (pd.read_csv(r / "tables" / "table1.csv")["patch_px"] == 256).all()
    for run in ("lc_net", "hcr_net", "hcr_lc_equal", "hcr_lc_uncertain", "hcr_c_net", "pretext"):
        assert torch.load(r / "models" / run / "best.pt", weights_only=True)["patch_size"] == 256, run
    cnet = load_model(r / "models" / "hcr_c_net" / "best.pt").cnet
    assert cnet.classifier[0].in_features == 2 * 8 * 8  # the last conv's 2 channels of 256 / 2**5 px
    assert json.loads((r / "models" / "hcr_c_net" / "model_card.json").read_text())["patch_size"] == 256
    assert (r / "figures" / "fig3.png").stat().st_size > 0


def test_unknown_config_key_fails_before_any_job(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("split:\n  val_fraktion: 0.2\n")
    proc = snakemake(tmp_path, "-n", "--configfile", str(SMOKE), str(bad), check=False)
    assert proc.returncode != 0
    assert "val_fraktion" in proc.stdout + proc.stderr
    assert not (tmp_path / "results").exists()


def test_demo_jobs_are_cpu_sized_and_print_no_empty_shell_command(tmp_path):
    proc = snakemake(tmp_path, "-n", "--configfile", str(REPO / "config.yaml"))
    out = proc.stdout + proc.stderr
    resources = [line.strip() for line in out.splitlines() if line.strip().startswith("resources:")]
    assert len(resources) > 50, out[-3000:]  # every job of the demo was planned
    assert not [r for r in resources if "gpu" in r], "the demo runs on CPUs: GPU sizes belong to configs/paper.yaml"
    mem = [int(r.split("mem_mb=")[1].split(",")[0]) for r in resources if "mem_mb=" in r]
    assert max(mem) <= 8000, resources
    assert "Shell command" not in out  # every rule runs a script: printshellcmds printed "Shell command: None"


def test_missing_data_path_names_path_and_fix(tmp_path):
    overlay = tmp_path / "paths.yaml"
    overlay.write_text(yaml.safe_dump({"data": {"sen12ms": str(tmp_path / "no_ms"),
                                                "sen12mscr": str(tmp_path / "no_cr")}}))
    proc = snakemake(tmp_path, "-n", "--configfile", str(SMOKE), str(overlay), check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "no_cr" in out and "data.sen12mscr" in out


def test_download_runs_with_the_paths_overlay_before_the_trees_exist(tmp_path):
    # the README's two commands take the same overlay: the trees it names appear only with the download
    paths = overlay(tmp_path, {"data": {"sen12ms": str(tmp_path / "raw" / "SEN12MS"),
                                        "sen12mscr": str(tmp_path / "raw" / "SEN12MS-CR")}})
    paper = str(REPO / "configs" / "paper.yaml")
    jobs = planned_jobs(snakemake(tmp_path, "-n", "download", "--configfile", paper, paths))
    assert jobs == {"download": 1}, jobs
    proc = snakemake(tmp_path, "-n", "--configfile", paper, paths, check=False)
    assert proc.returncode != 0 and "snakemake download" in proc.stdout + proc.stderr


@pytest.mark.slow
def test_lint_is_clean():
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--lint",
                           "--configfile", str(SMOKE), "-d", str(REPO)],
                          check=False, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "Congratulations" in out or "no issues" in out.lower() or out.strip() == "", out


#: In CI (.ci/run exports CI=1) a missing linter fails its test instead of skipping it.
IN_CI = os.environ.get("CI", "") not in ("", "0", "false")


def require_tool(name: str) -> None:
    if shutil.which(name) is None:
        message = f"{name} not installed (pip install -e '.[test]')"
        pytest.fail(message) if IN_CI else pytest.skip(message)


def test_snakefmt_check():
    require_tool("snakefmt")
    files = [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]
    proc = subprocess.run(["snakefmt", "--check", *map(str, files)], check=False,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ruff_is_clean():
    require_tool("ruff")  # the rule set depends on ruff's version: pyproject's [test] extra pins it
    proc = subprocess.run(["ruff", "check", "src", "workflow", "tests", "benchmarks", "docs"], cwd=REPO, check=False,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def overlay(tmp_path: Path, content: dict) -> str:
    path = tmp_path / "overlay.yaml"
    path.write_text(yaml.safe_dump(content))
    return str(path)


def planned_jobs(proc: subprocess.CompletedProcess) -> dict[str, int]:
    """Rule -> job count from the 'Job stats' table of a dry run."""
    out = proc.stdout + proc.stderr
    if "Job stats:" not in out:
        return {}
    # the table: a header, a dashed rule, then "rule count" rows up to the first blank line
    rows = out.split("Job stats:")[1].split("-\n", 1)[1].split("\n\n")[0]
    counts = {}
    for line in rows.splitlines():
        rule, count = line.split()
        if rule != "total":
            counts[rule] = int(count)
    return counts


@pytest.mark.slow
def test_every_output_of_the_contract_exists(smoke_run):
    r = smoke_run / "results"
    for path in ["tables/table1.csv", "tables/table2.csv", "tables/table2.md", "tables/claims.csv",
                 "tables/claims.md", "figures/fig1.png",
                 "figures/fig1.pdf", "figures/fig3.png", "figures/curves.png", "figures/curves.pdf"]:
        assert (r / path).is_file() and (r / path).stat().st_size > 0, path
    keys = {"precision", "recall", "f1", "f1_macro", "f1_samples", "psnr", "ssim", "ssim_standard", "n_test"}
    # the baselines: evaluation outputs of their own, their rows in Table 2, the constant one in Fig. 1
    for baseline, has_f1 in (("cloudy_input", False), ("constant_prediction", True)):
        metrics = json.loads((r / "eval" / baseline / "metrics.json").read_text())
        assert keys <= set(metrics) and metrics["baseline"] == baseline
        assert (metrics["f1"] is not None) == has_f1 and (metrics["psnr"] is None) == has_f1
        assert (r / "eval" / baseline / "predictions.npz").is_file()
    table2 = pd.read_csv(r / "tables" / "table2.csv")
    assert table2["label"].tolist()[-2:] == ["cloudy input (baseline)", "constant prediction (baseline)"]
    # bootstrap intervals beside every value that exists, also the baselines'
    rows = table2.set_index("model")
    for model, key in (("lc_net", "f1"), ("hcr_net", "psnr"), ("hcr_lc_uncertain", "precision"),
                       ("cloudy_input", "ssim"), ("constant_prediction", "recall")):
        lo, value, hi = rows.loc[model, [f"{key}_lo", key, f"{key}_hi"]]
        assert lo <= value <= hi, (model, key)
    assert rows.loc["lc_net", ["psnr_lo", "psnr_hi"]].isna().all()
    assert "bootstrap interval" in (r / "tables" / "table2.md").read_text()
    # the claims: one row per comparison, each with its interval and a verdict labelled synthetic
    claims = pd.read_csv(r / "tables" / "claims.csv")
    assert {"hcr_beats_lc_net", "uncertain_best_f1", "uncertain_second_psnr", "pretext_25_reaches_95pct",
            "pretext_beats_scratch", "lc_net_f1_falls_with_cloud", "hcr_flat_with_cloud"} == set(claims["claim_id"])
    assert {"effect", "lo", "hi", "verdict", "paper"} <= set(claims.columns)
    assert claims["verdict"].str.endswith("(synthetic)").all()
    testable = claims[claims["lo"].notna()]
    assert len(testable) >= 10 and (testable["lo"] <= testable["hi"]).all()
    assert (claims["n_resamples"] == 1000).all()
    assert claims["claim"].iloc[0] in (r / "tables" / "claims.md").read_text()
    assert (r / "tables" / "claims.html").is_file()
    assert "constant_prediction" in set(pd.read_csv(r / "figures" / "fig1.csv")["model"])
    # every training run leaves its learning curves beside its metrics.csv; an SSL run one folder per stage
    for run in ["lc_net", "hcr_net", "pretext", "ssl_on_25", "ssl_off_25"]:
        events = list((r / "models" / run / "tensorboard").rglob("events.out.tfevents.*"))
        assert events, run
    assert {p.name for p in (r / "models" / "ssl_on_25" / "tensorboard").iterdir()} == {"frozen", "finetune"}
    for model in ["lc_net", "hcr_net", "hcr_lc_equal", "hcr_lc_uncertain", "hcr_c_net"]:
        assert (r / "models" / model / "best.pt").is_file()
        assert (r / "models" / model / "metrics.csv").is_file()
        assert not (r / "models" / model / "resume").exists()
        metrics = json.loads((r / "eval" / model / "metrics.json").read_text())
        assert keys <= set(metrics)
        assert (metrics["f1"] is None) == (model == "hcr_net")
        assert (metrics["psnr"] is None) == (model == "lc_net")
    assert "synthetic" in (r / "tables" / "table2.md").read_text()


@pytest.mark.slow
def test_one_models_setting_reruns_only_that_model(smoke_run, tmp_path):
    proc = snakemake(smoke_run, "-n", "--configfile", str(SMOKE), overlay(tmp_path, {"models": {"lc_net": {"epochs": 2}}}))
    jobs = planned_jobs(proc)
    assert jobs.get("train_model") == 1 and jobs.get("evaluate_model") == 1, jobs
    assert "lc_net" in proc.stdout and "hcr_net/best.pt" not in proc.stdout.split("Job stats:")[0].split(
        "rule train_model")[-1]
    assert not {"listing", "shards", "cloud_masks", "index", "table1"} & set(jobs), jobs


@pytest.mark.slow
def test_mask_threshold_reruns_masks_and_downstream_not_listing(smoke_run, tmp_path):
    proc = snakemake(smoke_run, "-n", "--configfile", str(SMOKE), overlay(tmp_path, {"masks": {"threshold": 0.5}}))
    jobs = planned_jobs(proc)
    assert jobs.get("cloud_masks") == 3 and jobs.get("index") == 1, jobs
    assert jobs.get("train_model") == 5, jobs
    assert not {"listing", "shards", "synthetic_tree", "table1"} & set(jobs), jobs


DATA_RULES = {"synthetic_tree", "listing", "shards", "cloud_masks", "index"}


def dry_run_of(repo: Path, workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return snakemake(workdir, "-n", *args, "--configfile", str(repo / "configs" / "smoke.yaml"),
                     snakefile=repo / "Snakefile")


@pytest.mark.slow
def test_library_edit_reruns_exactly_the_rules_that_import_it(smoke_run, repo_copy):
    # the copy is the same code: nothing to do, so the code hash does not depend on where the repository lies
    assert "Nothing to be done" in dry_run_of(repo_copy, smoke_run).stdout
    losses = repo_copy / "src" / "hcrlc" / "losses.py"
    original = losses.read_text()

    # comments, blank lines and spacing are not code
    losses.write_text(original + "\n\n# a remark about CARL\n")
    assert "Nothing to be done" in dry_run_of(repo_copy, smoke_run).stdout

    # a real edit of the loss: every training that imports it, their evaluations and the figures; no data stage,
    # and not Table 1 (parameter counts do not import the losses)
    losses.write_text(original + "\nCARL_EDITED = True\n")
    proc = dry_run_of(repo_copy, smoke_run)
    jobs = planned_jobs(proc)
    n_ssl = len(list((smoke_run / "results" / "models").glob("ssl_*")))  # with and without pretext per fraction
    assert n_ssl >= 2
    assert jobs.get("train_model") == 5 and jobs.get("pretext") == 1 and jobs.get("ssl_run") == n_ssl, jobs
    assert jobs.get("evaluate_model") == 5 + n_ssl, jobs
    assert not (DATA_RULES | {"table1"}) & set(jobs), jobs
    assert "Params have changed" in proc.stdout

    # an edit of the figure code: the figures only
    losses.write_text(original)
    figures = repo_copy / "src" / "hcrlc" / "figures.py"
    figures.write_text(figures.read_text() + "\nFIGURES_EDITED = True\n")
    jobs = planned_jobs(dry_run_of(repo_copy, smoke_run))
    assert set(jobs) - {"all", "figures", "ssl"} == {"fig1", "fig3", "fig4", "curves"}, jobs


@pytest.mark.slow
def test_workflow_script_reruns_on_content_not_on_modification_time(smoke_run, repo_copy):
    script = repo_copy / "workflow" / "scripts" / "train.py"
    later = time.time() + 5
    os.utime(script, (later, later))
    # the workflow profile (profiles/default) leaves out Snakemake's mtime-based code trigger: touching is no change
    assert "Nothing to be done" in dry_run_of(repo_copy, smoke_run).stdout
    # ... where Snakemake's own default would rerun every train_model job (and what consumes their outputs)
    proc = dry_run_of(repo_copy, smoke_run, "--workflow-profile", "none")
    jobs = planned_jobs(proc)
    assert jobs.get("train_model") == 5 and jobs.get("evaluate_model") == 5, jobs
    assert "Code has changed since last execution" in proc.stdout
    # an edit of the script's content is a change (params.code), for its rule only: not the SSL runs (ssl_run.py)
    script.write_text(script.read_text() + "\nEDITED = True\n")
    proc = dry_run_of(repo_copy, smoke_run)
    jobs = planned_jobs(proc)
    assert jobs.get("train_model") == 5 and jobs.get("evaluate_model") == 5, jobs
    assert not ({"pretext", "ssl_run", "fig4", "table1"} | DATA_RULES) & set(jobs), jobs
    assert "Params have changed" in proc.stdout


@pytest.mark.slow
def test_touched_small_inputs_do_not_rerun_but_changed_ones_do(smoke_run, tmp_path):
    # Snakemake records checksums of inputs up to 1 MB: a newer modification time with the same content is no change
    work = tmp_path / "work"
    shutil.copytree(smoke_run, work, symlinks=True)
    results = work / "results"
    later = time.time() + 5
    small = [p for p in results.rglob("*") if p.is_file() and p.stat().st_size < 1_000_000
             and p.name != ".snakemake_timestamp" and not {"logs", "benchmarks"} & set(p.relative_to(results).parts)]
    assert {"index.parquet", "summary.json", "metrics.json", "metrics.csv", "mask.npy"} <= {p.name for p in small}
    for path in small:
        os.utime(path, (later, later))
    assert "Nothing to be done" in snakemake(work, "-n").stdout

    metrics = results / "eval" / "lc_net" / "metrics.json"
    values = json.loads(metrics.read_text())
    values["f1"] = 0.5 if values["f1"] != 0.5 else 0.25
    metrics.write_text(json.dumps(values))
    os.utime(metrics, (later + 60, later + 60))  # newer than the outputs touched above, whatever the clock did
    jobs = planned_jobs(snakemake(work, "-n"))
    assert set(jobs) - {"all"} == {"table2", "evaluated_model_card"}, jobs  # the card carries the test metrics


def _job_processes(workdir: Path, marker: str) -> list[int]:
    """PIDs of processes running in ``workdir`` whose command line contains ``marker`` (Linux /proc)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue
        if marker in cmdline and Path(cwd) == workdir:
            pids.append(int(proc.name))
    return pids


@pytest.mark.slow
def test_sigkilled_training_job_resumes_to_the_same_checkpoint(tmp_path):
    import torch

    target = "results/models/hcr_lc_uncertain/best.pt"
    cfg = overlay(tmp_path, {"models": {"hcr_lc_uncertain": {"epochs": 6}}})
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    snakemake(whole, target, "--configfile", str(SMOKE), cfg)

    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(killed), "--cores", "2",
           target, "--configfile", str(SMOKE), cfg]
    killed.mkdir()
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    state = killed / "results/models/hcr_lc_uncertain/resume/state.pt"
    deadline = time.monotonic() + 600
    while not state.exists() and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.05)
    victims = _job_processes(killed, ".train.py")
    assert victims, "the training job was not found running"
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    out, _ = first.communicate(timeout=300)
    assert first.returncode != 0, out  # the job really died mid-run
    assert state.exists() and not (killed / target).exists()
    epoch_done = torch.load(state, weights_only=False)["epoch"]
    assert 1 <= epoch_done < 6

    snakemake(killed, target, "--configfile", str(SMOKE), cfg)  # the same command again
    log = (killed / "results/logs/train/hcr_lc_uncertain.log").read_text()
    assert "resum" in log.lower(), log[-2000:]
    a = torch.load(whole / target, weights_only=True)
    b = torch.load(killed / target, weights_only=True)
    assert a["epoch"] == b["epoch"]
    for key, tensor in a["state_dict"].items():
        assert torch.equal(tensor, b["state_dict"][key]), key
