"""The GPU check (benchmarks/gpu_check.sh): its dry run on the CPU exercises every section's code, and its
building blocks (peak table, precision modes) behave as documented."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest
import torch

from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
from train_throughput import (  # benchmarks/ is not a package: on the path above
    PRECISIONS,
    peaks_of,
    precision,
)

SCRIPT = REPO / "benchmarks" / "gpu_check.sh"


def _no_nan(value: str) -> float:
    raise AssertionError(f"results.json holds {value}; JSON has no such number")


def test_peak_table_picks_the_specific_card_before_the_family():
    assert peaks_of("NVIDIA H200")["bf16"] == pytest.approx(989.4e12)
    assert peaks_of("NVIDIA H200 NVL")["bf16"] == pytest.approx(835.5e12)
    assert peaks_of("NVIDIA H100 PCIe")["fp32"] == pytest.approx(51e12)
    assert peaks_of("NVIDIA H100 80GB HBM3")["tf32"] == pytest.approx(494.7e12)  # SXM
    assert peaks_of("NVIDIA A100-SXM4-80GB") == {"fp32": 19.5e12, "tf32": 156e12, "bf16": 312e12}
    assert peaks_of("NVIDIA GeForce RTX 4090") == dict.fromkeys(PRECISIONS)
    for name in ("NVIDIA H200", "NVIDIA H100 PCIe", "NVIDIA A100-PCIE-40GB"):
        peaks = peaks_of(name)
        assert peaks["fp32"] < peaks["tf32"] < peaks["bf16"], name


def test_precision_modes_set_and_restore_the_tf32_flags():
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    cpu = torch.device("cpu")
    with precision("tf32", cpu) as (_, channels_last):
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
        assert not channels_last
    with precision("fp32", cpu):
        assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
    with precision("bf16", cpu) as (autocast, channels_last):
        assert channels_last
        with autocast:
            assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == before
    with pytest.raises(ValueError, match="precision"), precision("fp16", cpu):
        pass


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_gpu_mode_without_a_gpu_names_the_dry_run(tmp_path):
    proc = subprocess.run(["bash", str(SCRIPT), "--out", str(tmp_path / "out")], check=False,
                          capture_output=True, text=True, timeout=300, env={**os.environ, "OUT": ""})
    assert proc.returncode != 0
    assert "--dry" in proc.stdout + proc.stderr
    assert not (tmp_path / "out" / "results.json").exists()


def test_spent_budget_skips_measurements_with_a_note_instead_of_overrunning(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run(["bash", str(SCRIPT), "--dry", "--skip-workflow", "--budget-s", "1", "--out", str(out)],
                          check=False, capture_output=True, text=True, timeout=300, env={**os.environ, "OUT": ""})
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    results = json.loads((out / "results.json").read_text(), parse_constant=_no_nan)
    rows = results["throughput"]
    assert rows and all(r["status"] == "skipped" and r["reason"].startswith("deadline") for r in rows)
    assert len(rows) == 5 * 3 + 1  # every eager row and the one compiled row of the dry preset, none started
    assert results["precision_curves"]["status"] == "skipped"
    assert results["loader"]["status"] == "skipped"  # no workflow data to load
    assert results["workflow"] == {"status": "skipped", "reason": "--skip-workflow"}
    assert any("budget ran out" in note for note in results["notes"])
    assert "skipped: deadline" in (out / "results.txt").read_text()


@pytest.mark.slow
def test_dry_run_exercises_every_section(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run(["bash", str(SCRIPT), "--dry", "--out", str(out), "--cores", "2"], check=False,
                          capture_output=True, text=True, timeout=600, env={**os.environ, "OUT": ""})
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "device CPU" in proc.stdout
    results = json.loads((out / "results.json").read_text(), parse_constant=_no_nan)
    assert results["format"] == "hcrlc.gpu_check/1" and results["dry"] is True
    assert results["card"]["name"] == "CPU" and set(results["card"]["peak_tflops"].values()) == {None}
    assert results["wall_s"] < results["budget_s"]

    # (a) Snakemake built the data, trained on the requested device and evaluated
    workflow = results["workflow"]
    assert workflow["status"] == "ok", workflow
    assert workflow["overlay"] == {"training": {"device": "cpu"}}
    assert workflow["trainings"] and {t["device"] for t in workflow["trainings"].values()} == {"cpu"}
    work = tmp_path / "out_work"
    assert (work / "results" / "eval" / "lc_net" / "metrics.json").is_file()
    assert not (out / "results").exists()  # the workflow's files stay out of the results folder

    # (b) every model in every precision, eager, and at least one compiled row
    rows = results["throughput"]
    eager = {(r["model"], r["precision"]): r for r in rows if not r["compile"]}
    assert set(eager) == {(m, p) for m in results["settings"]["models"] for p in PRECISIONS}
    compiled = [r for r in rows if r["compile"] and r["status"] == "ok"]
    assert compiled, [r for r in rows if r["compile"]]
    for row in [*eager.values(), *compiled]:
        assert row["status"] == "ok", row
        assert math.isfinite(row["samples_per_s"]) and row["samples_per_s"] > 0
        assert row["step_ms"] > 0 and row["peak_mem_gib"] > 0 and row["flops_per_sample"] > 0
        assert row["mfu"] is None  # no peak is known for a CPU
    # the bigger network needs more work per sample: the FLOP counts are real counts, not a constant
    assert eager[("hcr_lc_equal", "fp32")]["flops_per_sample"] > eager[("lc_net", "fp32")]["flops_per_sample"]

    # (c) the loader with each worker count against the step alone
    loader = results["loader"]
    assert loader["status"] == "ok", loader
    assert loader["gpu_alone_samples_per_s"] > 0
    assert [r["workers"] for r in loader["runs"]] == results["settings"]["loader_workers"]
    for run in loader["runs"]:
        assert run["status"] == "ok" and run["samples_per_s"] > 0 and 0 < run["ratio_to_gpu_alone"] < 10

    # (d) same seed, same batches: equal-length curves that bf16 follows closely over a few steps
    curves = results["precision_curves"]
    assert curves["status"] == "ok", curves
    assert len(curves["fp32"]) == len(curves["bf16"]) == curves["steps"] == curves["steps_asked"]
    assert curves["all_finite"] and curves["data"].startswith("smoke workflow")
    assert curves["fp32"] != curves["bf16"]  # two precisions really ran
    assert curves["max_rel_diff"] < 0.05

    text = (out / "results.txt").read_text()
    for part in ("card: CPU", "(a) smoke workflow: ok", "(b) training throughput", "(c) loader + GPU",
                 "(d) bf16 vs fp32"):
        assert part in text, part
    assert (out / "gpu_check.log").read_text().startswith("gpu_check: device CPU")
