"""One run on a lent GPU that exercises the CUDA paths and measures them, within a fixed time budget.

Sections (each catches its own failure, records it and lets the others run):

(a) ``workflow``: the smoke workflow (``configs/smoke.yaml``) through Snakemake, with an overlay that trains and
    evaluates on the checked device (CUDA: also ``deterministic: false`` and ``num_workers: 2``, the settings of
    ``configs/paper.yaml``'s CUDA path, so pinned memory, loader workers, bf16 autocast and cuDNN autotuning all
    run). Every ``train_model`` log must report the requested device.
(b) ``throughput``: every model at the paper's size, batch 64, in fp32 (TF32 off), tf32 and bf16 (autocast +
    channels_last, what ``amp: true`` trains with), eager and under ``torch.compile``: samples/s, MFU against the
    card's dense peak for that precision (``benchmarks/train_throughput.py``'s table) and peak memory. Eager
    rows run first; compiled rows last, with what is left of the budget, bf16 first.
(c) ``loader``: the loader and the GPU together: the workflow's training split from (a) through a
    ``DataLoader`` with N workers (raw items, prepared on the GPU, as ``train_job`` does on CUDA), against the
    same step on a batch already on the GPU.
(d) ``precision_curves``: 200 Adam steps of one model from the same seed on the same batches (from (a)'s data;
    random batches if (a) gave none), in fp32 and in bf16; both loss curves, their largest relative gap, the
    final losses.

Everything is timed against one deadline (``--budget-s``): a measurement that would not fit is skipped with a
note, never started. ``results.json`` (all numbers, curves, notes) and ``results.txt`` (a short table) are
rewritten in ``--out`` after each section, so a run killed from outside still leaves what it measured.

``--dry`` runs the same code on the CPU at tiny sizes (the smoke config's model widths, batch 2, a few steps)
within about 2.5 minutes on 2 cores, for CI: (a) builds only the data, one training (lc_net) and its evaluation,
since ``tests/test_workflow.py`` runs the whole smoke workflow on CPU already; (b) compiles with the
``aot_eager`` backend (Dynamo + AOTAutograd tracing, no code generation: Inductor's C++ build would take minutes
on a CPU); the tf32 rows equal fp32 on a CPU (the flags only affect CUDA) and MFU is null (no peak is known).

    bash benchmarks/gpu_check.sh [--dry] [--out DIR]     # the wrapper: PYTHONPATH, log file, $OUT
    python benchmarks/gpu_check.py --dry --out /tmp/gpu_check
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
import yaml
from torch.utils.data import DataLoader, RandomSampler, default_collate
from train_throughput import (
    PRECISIONS,
    card_peaks,
    flops_per_sample,
    make_step,
    make_trainable,
    measure,
    precision,
    random_batch,
    time_steps,
)

from hcrlc.atomic import atomic_output, write_json
from hcrlc.data.dataset import collate_items
from hcrlc.errors import TrainingError
from hcrlc.jobs import split_dataset
from hcrlc.model_specs import MODEL_NAMES
from hcrlc.models import MODEL_DEFAULTS, resolve_model_config
from hcrlc.training import batch_to_device, resolve_device

REPO = Path(__file__).resolve().parents[1]
SMOKE = REPO / "configs" / "smoke.yaml"
FORMAT = "hcrlc.gpu_check/1"
#: What a run on a GPU does unless told otherwise; --dry replaces these with :data:`DRY`.
GPU: dict[str, Any] = {
    "budget_s": 440,  # the issue's limit is 8 min on one GPU; 40 s are left for installing, imports, writing
    "models": list(MODEL_NAMES),
    "size": 256,
    "batch": 64,
    "warmup": 3,
    "steps": 10,
    "max_seconds": 5.0,
    "precisions": list(PRECISIONS),
    "compile_precisions": ["bf16", "tf32", "fp32"],  # in this order, while the budget lasts
    "compile_models": list(MODEL_NAMES),
    "compile_backend": "inductor",
    "compile_reserve_s": 60,  # do not start a compiled measurement with less left than this
    "workflow_targets": ["all"],
    "workflow_timeout_s": 210,
    "loader_model": "hcr_net",  # the fastest network: the one that asks most of the loader
    "loader_workers": [0, 2, 4, 8],
    "loader_steps": 60,
    "curve_model": "hcr_lc_equal",  # both heads and both losses train; the loss stays positive
    "curve_batch": 16,
    "curve_steps": 200,
    "curve_max_seconds": 60.0,
}
DRY: dict[str, Any] = {
    **GPU,
    "budget_s": 240,  # ~2.5 min on 2 idle cores; the rest is slack for a loaded CI machine
    "size": 64,
    "batch": 2,
    "warmup": 1,
    "steps": 2,
    "max_seconds": 2.0,
    "compile_precisions": ["bf16"],
    "compile_models": ["hcr_lc_equal"],  # both heads and losses; each aot_eager trace costs ~5 s of CPU
    "compile_backend": "aot_eager",
    "compile_reserve_s": 10,
    "workflow_targets": ["results/eval/lc_net/metrics.json"],
    "workflow_timeout_s": 120,
    "loader_workers": [0, 1],
    "loader_steps": 3,
    "curve_batch": 2,
    "curve_steps": 5,
    "curve_max_seconds": 20.0,
}


class Deadline:
    """Seconds left of the run's budget, counted from construction."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return self.end - time.monotonic()


def _failure(err: BaseException) -> dict[str, Any]:
    """What a failed measurement records: the error and the end of its traceback."""
    return {"status": "failed", "error": f"{type(err).__name__}: {err}"[:2000],
            "traceback": "".join(traceback.format_exception(err))[-3000:]}


def _release(device: torch.device) -> None:
    """Give the memory of a finished measurement back before the next one."""
    if device.type == "cuda":
        torch.cuda.empty_cache()


# --- the card -----------------------------------------------------------------------------------------------


def card_info(device: torch.device) -> dict[str, Any]:
    """Name, capability, memory, software versions and dense peaks (TFLOP/s) of ``device``."""
    name, peaks = card_peaks(device)
    info: dict[str, Any] = {
        "device": str(device),
        "name": name,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "peak_tflops": {k: None if v is None else v / 1e12 for k, v in peaks.items()},
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info |= {"capability": list(torch.cuda.get_device_capability(device)),
                 "memory_gib": props.total_memory / 2**30, "multiprocessors": props.multi_processor_count,
                 "cudnn": torch.backends.cudnn.version()}
    return info


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# --- (a) the smoke workflow ---------------------------------------------------------------------------------


def workflow_overlay(device: torch.device) -> dict[str, Any]:
    """The config overlay that moves the smoke run's training and evaluation onto ``device``."""
    training: dict[str, Any] = {"device": device.type}
    if device.type == "cuda":
        training |= {"deterministic": False, "num_workers": 2}
    return {"training": training}


def run_workflow(work: Path, device: torch.device, *, targets: Sequence[str], cores: int,
                 timeout: float) -> dict[str, Any]:
    """Run the smoke workflow in ``work`` (Snakemake in a subprocess, its output in ``work/snakemake.log``)
    and check that every training ran on ``device``."""
    overlay = workflow_overlay(device)
    overlay_path = work / "gpu_check_overlay.yaml"
    with atomic_output(overlay_path) as tmp:
        tmp.write_text(yaml.safe_dump(overlay))
    # greedy scheduling: the ILP scheduler needs PuLP, which the GPU machine's wheel set leaves out (a smoke DAG
    # gains nothing from it)
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(work), "--cores",
           str(cores), "--scheduler", "greedy", *targets, "--configfile", str(SMOKE), str(overlay_path)]
    log_path = work / "snakemake.log"
    started = time.perf_counter()
    with log_path.open("w") as log:
        # its own process group, so a timeout ends Snakemake and every job it started
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            returncode: int | None = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            returncode = None
    result: dict[str, Any] = {"targets": list(targets), "overlay": overlay, "workdir": str(work),
                              "command": " ".join(cmd), "returncode": returncode,
                              "wall_s": time.perf_counter() - started, "trainings": training_devices(work)}
    wrong = {run: t["device"] for run, t in result["trainings"].items()
             if t["device"].split(":")[0] != device.type}
    if returncode is None:
        result |= {"status": "failed", "error": f"Snakemake did not finish within {timeout:.0f} s (stopped)"}
    elif returncode != 0:
        result |= {"status": "failed", "error": f"Snakemake exited with {returncode}"}
    elif not result["trainings"]:
        result |= {"status": "failed", "error": "no train_model log found under results/logs"}
    elif wrong:
        result |= {"status": "failed", "error": f"trainings ran on another device than {device}: {wrong}"}
    else:
        result["status"] = "ok"
    if result["status"] != "ok":
        result["log_tail"] = _tail(log_path, 4000)
        logs = sorted((work / "results" / "logs").rglob("*.log"), key=lambda p: p.stat().st_mtime)
        result["job_log_tails"] = {str(p.relative_to(work)): _tail(p, 2000) for p in logs[-2:]}
    return result


#: the device in train_model's log line (the pixel size in brackets is there since checkpoints carry it)
TRAINING_LINE = re.compile(r" val samples of \d+ px (?:\([^)]*\) )?on (?P<device>\S+)")


def training_devices(work: Path) -> dict[str, dict[str, Any]]:
    """Per training job of ``work``: the device its ``train_model`` log names and the job's seconds (from the
    rule's ``benchmark:`` file, where there is one)."""
    runs: dict[str, dict[str, Any]] = {}
    logs = work / "results" / "logs"
    for log in sorted(logs.rglob("*.log")) if logs.is_dir() else []:
        for line in log.read_text(errors="replace").splitlines():
            # train_model's "<name>: <n> train / <n> val samples of <px> px (<m> m pixels) on <device> (<k> process(es))"
            found = TRAINING_LINE.search(line)
            if found:
                device = found["device"]
                bench = work / "results" / "benchmarks" / log.relative_to(logs).with_suffix(".tsv")
                runs[str(log.relative_to(logs).with_suffix(""))] = {"device": device,
                                                                   "seconds": _benchmark_seconds(bench)}
                break
    return runs


def _benchmark_seconds(path: Path) -> float | None:
    """The ``s`` column of a Snakemake benchmark file (wall seconds of the job), if the file exists."""
    if not path.is_file():
        return None
    header, row = path.read_text().splitlines()[:2]
    return float(row.split("\t")[header.split("\t").index("s")])


def _tail(path: Path, chars: int) -> str:
    return path.read_text(errors="replace")[-chars:] if path.is_file() else ""


# --- (b) throughput -----------------------------------------------------------------------------------------


def throughput_row(name: str, kind: str, compiled: bool, cfg: dict[str, Any], device: torch.device,
                   flops: int | None, peaks: dict[str, float | None]) -> dict[str, Any]:
    """One measurement of (b): samples/s, step time, MFU and peak memory of ``name`` in precision ``kind``."""
    row: dict[str, Any] = {"model": name, "precision": kind, "compile": compiled, "batch": cfg["batch"],
                           "size": cfg["size"], "flops_per_sample": flops}
    if compiled:
        torch._dynamo.reset()  # a fresh compile per row: no cache hits, no recompile limit from earlier rows
    try:
        m = measure(name, batch=cfg["batch"], size=cfg["size"], steps=cfg["steps"], warmup=cfg["warmup"],
                    device=device, kind=kind, compile_backend=cfg["compile_backend"] if compiled else None,
                    model_cfg=cfg["model_cfg"], max_seconds=cfg["max_seconds"])
    except Exception as err:  # noqa: BLE001 - an OOM or a compile error is a finding, not the end of the run
        return row | _failure(err)
    finally:
        _release(device)
    peak = peaks[kind]
    mfu = flops * m["samples_per_s"] / peak if peak and flops else None
    return row | {"status": "ok", "samples_per_s": m["samples_per_s"], "step_ms": 1000 * m["seconds"] / m["steps"],
                  "steps": m["steps"], "warmup_s": m["warmup_seconds"], "mfu": mfu, "peak_mem_gib": m["peak_gib"],
                  "peak_mem_kind": "cuda_max_allocated" if device.type == "cuda" else "process_max_rss"}


def throughput_section(cfg: dict[str, Any], device: torch.device, deadline: Deadline, *, compiled: bool,
                       rows: list[dict[str, Any]], flops: dict[str, int | None], save: Callable[[], None]) -> None:
    """Append (b)'s eager rows, or its compiled rows, to ``rows`` while the budget allows."""
    _, peaks = card_peaks(device)
    kinds = cfg["compile_precisions"] if compiled else cfg["precisions"]
    models = cfg["compile_models"] if compiled else cfg["models"]
    need = cfg["compile_reserve_s"] if compiled else 2 * cfg["max_seconds"] + 5
    for kind in kinds:
        for name in models:
            if name not in flops:
                try:
                    flops[name] = flops_per_sample(name, cfg["size"], cfg["model_cfg"])
                except Exception:  # noqa: BLE001 - for MFU only; a real fault shows in the measurement
                    flops[name] = None
            if deadline.left() < need:
                rows.append({"model": name, "precision": kind, "compile": compiled, "status": "skipped",
                             "reason": f"deadline: {deadline.left():.0f} s left, {need:.0f} s needed"})
                continue
            rows.append(throughput_row(name, kind, compiled, cfg, device, flops[name], peaks))
            save()


# --- data of the workflow run, for (c) and (d) --------------------------------------------------------------


def workflow_train_split(work: Path, device: torch.device):
    """The training split of the workflow's results in ``work`` as ``train_job`` loads it on ``device`` (raw
    items prepared on the GPU for CUDA), or None when (a) left no data."""
    results = work / "results"
    if not (results / "data" / "index.parquet").is_file():
        return None
    return split_dataset(results / "data" / "index.parquet", results / "shards", results / "masks", "train",
                         raw=device.type == "cuda")


# --- (c) loader + GPU ---------------------------------------------------------------------------------------


def loader_section(cfg: dict[str, Any], device: torch.device, deadline: Deadline, work: Path) -> dict[str, Any]:
    """Training steps fed by a DataLoader with N workers, against the same steps on a batch already on the
    device. The split is small and page-cached, drawn with replacement: the loader's CPU work (copy, collate,
    pin, transfer, preparation on the GPU) is measured, not the disk."""
    ds = workflow_train_split(work, device)
    if ds is None:
        return {"status": "skipped", "reason": "no data: section (a) did not build the smoke data"}
    name, kind, batch = cfg["loader_model"], "bf16", cfg["batch"]
    size = int(ds[0]["s2"].shape[-1])
    result: dict[str, Any] = {"model": name, "precision": kind, "batch": batch, "size": size,
                              "n_distinct_samples": len(ds), "raw_items": ds.raw, "runs": []}
    timing = {"warmup": cfg["warmup"], "steps": cfg["loader_steps"], "max_seconds": cfg["max_seconds"]}
    try:
        torch.manual_seed(0)
        with precision(kind, device) as (autocast, channels_last):
            step = make_step(*make_trainable(name, size, device, channels_last=channels_last,
                                             model_cfg=cfg["model_cfg"]), autocast)
            fixed = batch_to_device(default_collate([ds[i % len(ds)] for i in range(batch)]), device,
                                    channels_last)
            n, seconds, _ = time_steps(lambda: step(*fixed), device, **timing)
            alone = batch * n / seconds
            result["gpu_alone_samples_per_s"] = alone
            for workers in cfg["loader_workers"]:
                if deadline.left() < cfg["max_seconds"] + 15:
                    result["runs"].append({"workers": workers, "status": "skipped",
                                           "reason": f"deadline: {deadline.left():.0f} s left"})
                    continue
                draws = batch * (cfg["warmup"] + cfg["loader_steps"])
                sampler = RandomSampler(ds, replacement=True, num_samples=draws,
                                        generator=torch.Generator().manual_seed(0))
                loader = DataLoader(ds, batch_size=batch, sampler=sampler, num_workers=workers,
                                    pin_memory=device.type == "cuda", drop_last=True, collate_fn=collate_items)
                fed_step = _fed_by(step, iter(loader), device, channels_last)
                n, seconds, _ = time_steps(fed_step, device, **timing)
                del fed_step  # drops the loader's iterator, which ends its worker processes
                rate = batch * n / seconds
                result["runs"].append({"workers": workers, "status": "ok", "samples_per_s": rate,
                                       "ratio_to_gpu_alone": rate / alone, "steps": n})
        result["status"] = "ok"
    except Exception as err:  # noqa: BLE001 - recorded in the results; the other sections still run
        result |= _failure(err)
    finally:
        _release(device)
    return result


def _fed_by(step: Callable[..., torch.Tensor], batches: Iterator[dict[str, torch.Tensor]], device: torch.device,
            channels_last: bool) -> Callable[[], torch.Tensor]:
    """``step`` on the next batch of ``batches``, moved to ``device`` (and prepared there) as training does."""

    def fed_step() -> torch.Tensor:
        return step(*batch_to_device(next(batches), device, channels_last))

    return fed_step


# --- (d) bf16 against fp32 ----------------------------------------------------------------------------------


def precision_curves(cfg: dict[str, Any], device: torch.device, deadline: Deadline, work: Path) -> dict[str, Any]:
    """Loss per step of the same model, seed and batches in fp32 and in bf16. The fp32 run goes first, under a
    time cap; the bf16 run then takes exactly as many steps, so both curves have the same length."""
    name, batch, seed = cfg["curve_model"], cfg["curve_batch"], 0
    if deadline.left() < 2 * cfg["max_seconds"] + 5:
        return {"model": name, "status": "skipped", "reason": f"deadline: {deadline.left():.0f} s left"}
    ds = workflow_train_split(work, device)
    generator = torch.Generator().manual_seed(seed)
    if ds is not None:
        size = int(ds[0]["s2"].shape[-1])
        order = torch.randint(len(ds), (cfg["curve_steps"], batch), generator=generator)
        data = f"smoke workflow training split ({len(ds)} distinct samples, drawn with replacement)"
    else:
        size = cfg["size"]
        torch.manual_seed(seed)
        pool = [random_batch(batch, size, torch.device("cpu")) for _ in range(4)]
        data = "random inputs (4 fixed batches in turn): section (a) built no data"
    result: dict[str, Any] = {"model": name, "batch": batch, "size": size, "seed": seed, "data": data}

    def run(kind: str, steps: int, max_seconds: float | None) -> list[float]:
        torch.manual_seed(seed)  # the same initial weights in both runs
        with precision(kind, device) as (autocast, channels_last):
            step = make_step(*make_trainable(name, size, device, channels_last=channels_last,
                                             model_cfg=cfg["model_cfg"]), autocast)
            losses: list[float] = []
            started = time.perf_counter()
            for i in range(steps):
                if ds is not None:
                    x, s2, mask, y = batch_to_device(default_collate([ds[int(j)] for j in order[i]]), device,
                                                     channels_last)
                else:
                    x, s2, mask, y = (t.to(device) for t in pool[i % len(pool)])
                    if channels_last:
                        x = x.contiguous(memory_format=torch.channels_last)
                losses.append(step(x, s2, mask, y).item())
                if max_seconds is not None and time.perf_counter() - started > max_seconds:
                    break
        return losses

    try:
        cap = min(cfg["curve_max_seconds"], max(deadline.left() / 3, 1.0))
        fp32 = run("fp32", cfg["curve_steps"], cap)
        _release(device)
        bf16 = run("bf16", len(fp32), None)
    except Exception as err:  # noqa: BLE001 - recorded in the results; the other sections still run
        return result | _failure(err)
    finally:
        _release(device)
    gaps = [abs(b - f) / max(abs(f), 1e-6) for f, b in zip(fp32, bf16)]
    worst = max(range(len(gaps)), key=gaps.__getitem__)
    tail = max(1, len(gaps) // 10)
    return result | {
        "status": "ok", "steps": len(fp32), "steps_asked": cfg["curve_steps"], "fp32": fp32, "bf16": bf16,
        "final_fp32": fp32[-1], "final_bf16": bf16[-1], "first_step_rel_diff": gaps[0],
        "max_rel_diff": gaps[worst], "max_rel_diff_step": worst + 1,
        "last_tenth_mean_rel_diff": statistics.fmean(gaps[-tail:]),
        "all_finite": all(math.isfinite(v) for v in fp32 + bf16),
    }


# --- output -------------------------------------------------------------------------------------------------


def text_table(results: dict[str, Any]) -> str:
    """The short human-readable summary written to results.txt and printed at the end."""
    card = results["card"]
    peaks = ", ".join(f"{k} {v:.1f}" for k, v in card["peak_tflops"].items() if v is not None) or "unknown"
    lines = [f"hcrlc GPU check{' (DRY RUN on CPU, tiny sizes)' if results['dry'] else ''} - {results['started']}",
             f"card: {card['name']}" + (f", cc {'.'.join(map(str, card['capability']))}, "
                                        f"{card['memory_gib']:.1f} GiB" if "capability" in card else "")
             + f"; torch {card['torch']}, CUDA {card['cuda']}; dense peak TFLOP/s: {peaks}",
             f"cpu: {card['cpu']} ({card['cpu_count']} logical CPUs)", ""]
    wf = results.get("workflow")
    if wf:
        line = f"(a) smoke workflow: {wf['status']}"
        if "wall_s" in wf:
            trainings = wf["trainings"]
            seconds = [t["seconds"] for t in trainings.values() if t["seconds"] is not None]
            devices = sorted({t["device"] for t in trainings.values()})
            line += (f" in {wf['wall_s']:.1f} s ({' '.join(wf['targets'])}, overlay {wf['overlay']}); "
                     f"{len(trainings)} training job(s) on {devices}")
            if seconds:
                line += f", median job {statistics.median(seconds):.1f} s"
        if wf["status"] != "ok":
            line += f" - {wf.get('error') or wf.get('reason')}"
        lines += [line, ""]
    rows = results.get("throughput", [])
    if rows:
        settings = results["settings"]
        lines.append(f"(b) training throughput, batch {settings['batch']}, {settings['size']} px")
        lines.append(f"{'model':<18}{'precision':<10}{'compile':<9}{'samples/s':>10}{'step ms':>9}{'MFU':>7}"
                     f"{'peak GiB':>10}{'GFLOP/sample':>14}")
        for r in rows:
            head = f"{r['model']:<18}{r['precision']:<10}{'yes' if r['compile'] else 'no':<9}"
            if r["status"] != "ok":
                lines.append(head + f"{r['status']}: {r.get('reason') or r.get('error', '')}"[:160])
                continue
            mfu = f"{100 * r['mfu']:.1f}%" if r["mfu"] is not None else "n/a"
            gflop = f"{r['flops_per_sample'] / 1e9:.3g}" if r["flops_per_sample"] else "n/a"
            lines.append(head + f"{r['samples_per_s']:>10.1f}{r['step_ms']:>9.1f}{mfu:>7}{r['peak_mem_gib']:>10.2f}"
                         f"{gflop:>14}")
        lines.append("")
    ld = results.get("loader")
    if ld:
        if ld["status"] == "ok":
            lines.append(f"(c) loader + GPU ({ld['model']}, {ld['precision']}, batch {ld['batch']}, "
                         f"{ld['n_distinct_samples']} page-cached samples): GPU alone "
                         f"{ld['gpu_alone_samples_per_s']:.1f} samples/s")
            for run in ld["runs"]:
                lines.append(f"    {run['workers']} worker(s): " + (
                    f"{run['samples_per_s']:.1f} samples/s = {run['ratio_to_gpu_alone']:.2f}x GPU alone"
                    if run["status"] == "ok" else f"{run['status']}: {run.get('reason', '')}"))
        else:
            lines.append(f"(c) loader + GPU: {ld['status']}: {ld.get('reason') or ld.get('error')}")
        lines.append("")
    pc = results.get("precision_curves")
    if pc:
        if pc["status"] == "ok":
            lines.append(f"(d) bf16 vs fp32 ({pc['model']}, batch {pc['batch']}, {pc['steps']} of "
                         f"{pc['steps_asked']} steps, seed {pc['seed']}; {pc['data']}): final loss fp32 "
                         f"{pc['final_fp32']:.4f}, bf16 {pc['final_bf16']:.4f}; relative gap: first step "
                         f"{100 * pc['first_step_rel_diff']:.2f}%, max {100 * pc['max_rel_diff']:.2f}% (step "
                         f"{pc['max_rel_diff_step']}), last tenth mean {100 * pc['last_tenth_mean_rel_diff']:.2f}%")
        else:
            lines.append(f"(d) bf16 vs fp32: {pc['status']}: {pc.get('reason') or pc.get('error')}")
        lines.append("")
    lines += [f"note: {n}" for n in results["notes"]]
    lines.append(f"wall {results.get('wall_s', 0):.1f} s of a {results['budget_s']:.0f} s budget")
    return "\n".join(lines) + "\n"


def save(results: dict[str, Any], out: Path, started: float) -> None:
    """(Re)write results.json and results.txt in ``out``, atomically."""
    results["wall_s"] = time.monotonic() - started
    write_json(results, out / "results.json")
    with atomic_output(out / "results.txt") as tmp:
        tmp.write_text(text_table(results))


# --- the run ------------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry", action="store_true", help="CPU, tiny sizes, few steps (the CI test)")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or "gpu_check_out"),
                        help="folder for results.json and results.txt (default: $OUT, else gpu_check_out)")
    parser.add_argument("--work", type=Path, default=None,
                        help="Snakemake workdir for (a) (default: <out>_work beside --out, so that only the results "
                             "are in --out); a workdir that already holds results is brought up to date")
    parser.add_argument("--skip-workflow", action="store_true",
                        help="skip (a); (c) and (d) use the data of --work if it holds any")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1, help="Snakemake --cores for (a)")
    for key, value in GPU.items():  # every preset value can be overridden; --dry changes the defaults
        flag = "--" + key.replace("_", "-")
        if isinstance(value, list):
            parser.add_argument(flag, nargs="+", type=type(value[0]), default=None)
        else:
            parser.add_argument(flag, type=type(value), default=None)
    return parser.parse_args(argv)


def settings(args: argparse.Namespace) -> dict[str, Any]:
    """The preset (:data:`GPU` or :data:`DRY`) with the flags given on the command line applied."""
    cfg = dict(DRY if args.dry else GPU)
    cfg |= {k: getattr(args, k) for k in GPU if getattr(args, k) is not None}
    unknown = sorted({*cfg["models"], *cfg["compile_models"], cfg["loader_model"], cfg["curve_model"]}
                     - set(MODEL_NAMES))
    bad_kinds = sorted({*cfg["precisions"], *cfg["compile_precisions"]} - set(PRECISIONS))
    if unknown or bad_kinds:
        raise SystemExit(f"gpu_check: unknown model(s) {unknown} / precision(s) {bad_kinds}; models: "
                         f"{list(MODEL_NAMES)}, precisions: {list(PRECISIONS)}")
    # the dry run's networks: the smoke config's tiny widths; on a GPU the paper's (Table 1)
    cfg["model_cfg"] = resolve_model_config(yaml.safe_load(SMOKE.read_text())["model"] if args.dry
                                            else MODEL_DEFAULTS)
    return cfg


def main(argv: Sequence[str] | None = None) -> int:
    started = time.monotonic()
    args = parse_args(argv)
    cfg = settings(args)
    deadline = Deadline(cfg["budget_s"])
    try:
        device = torch.device("cpu") if args.dry else resolve_device("cuda")
    except TrainingError as err:
        raise SystemExit(f"gpu_check: {err}; for the CPU rehearsal use --dry") from err
    out = args.out.resolve()
    work = (args.work or out.parent / f"{out.name}_work").resolve()
    try:
        work.mkdir(parents=True, exist_ok=True)
    except PermissionError:  # e.g. $OUT in a folder we may not write beside: the workdir goes to /tmp
        if args.work:
            raise
        work = Path(tempfile.mkdtemp(prefix="gpu_check_work_"))
    torch.backends.cudnn.benchmark = device.type == "cuda"  # as train_model sets it when not deterministic
    results: dict[str, Any] = {
        "format": FORMAT, "dry": args.dry, "started": datetime.datetime.now().isoformat(timespec="seconds"),
        "budget_s": cfg["budget_s"], "card": card_info(device),
        "settings": {k: v for k, v in cfg.items() if k != "model_cfg"} | {"model_cfg": cfg["model_cfg"]},
        "notes": [],
    }
    card = results["card"]
    print(f"gpu_check: device {card['name']} ({card['device']}); torch {card['torch']}, CUDA {card['cuda']}; "
          f"dense peak TFLOP/s {card['peak_tflops']}; budget {cfg['budget_s']} s; results in {out}", flush=True)
    if args.dry:
        results["notes"].append("dry run: CPU, tiny networks (smoke config widths); tf32 equals fp32 on a CPU; "
                                f"compiled with the {cfg['compile_backend']} backend; not a measurement of a GPU")
    elif card["peak_tflops"]["bf16"] is None:
        results["notes"].append(f"no peak table entry for {card['name']!r}: MFU is null (add it to PEAK_FLOPS "
                                "in benchmarks/train_throughput.py)")

    def persist() -> None:
        save(results, out, started)

    def section(key: str, fn: Callable[[], Any]) -> None:
        print(f"gpu_check: ({key}) starting, {deadline.left():.0f} s left", flush=True)
        try:
            value = fn()
            if value is not None:
                results[key] = value
        except Exception as err:  # noqa: BLE001 - recorded in the results; the other sections still run
            results[f"{key}_error" if isinstance(results.get(key), list) else key] = _failure(err)
        persist()

    persist()

    if args.skip_workflow:
        results["workflow"] = {"status": "skipped", "reason": "--skip-workflow"}
    else:
        timeout = min(cfg["workflow_timeout_s"], 0.6 * deadline.left())
        section("workflow", lambda: run_workflow(work, device, targets=cfg["workflow_targets"], cores=args.cores,
                                                 timeout=timeout))
    rows: list[dict[str, Any]] = []
    flops: dict[str, int | None] = {}
    results["throughput"] = rows
    section("throughput", lambda: throughput_section(cfg, device, deadline, compiled=False, rows=rows,
                                                     flops=flops, save=persist))
    section("precision_curves", lambda: precision_curves(cfg, device, deadline, work))
    section("loader", lambda: loader_section(cfg, device, deadline, work))
    section("throughput", lambda: throughput_section(cfg, device, deadline, compiled=True, rows=rows,
                                                     flops=flops, save=persist))
    skipped = sum(r["status"] == "skipped" for r in rows)
    if skipped:
        results["notes"].append(f"{skipped} throughput row(s) skipped: the {cfg['budget_s']} s budget ran out")
    persist()
    print(text_table(results), end="", flush=True)
    failed = [k for k in ("workflow", "loader", "precision_curves") if results.get(k, {}).get("status") == "failed"]
    failed += [f"throughput {r['model']} {r['precision']}{' compiled' if r['compile'] else ''}"
               for r in rows if r["status"] == "failed"]
    if failed:
        print(f"gpu_check: FAILED: {failed}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
