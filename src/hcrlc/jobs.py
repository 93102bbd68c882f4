"""What each workflow job does, as plain functions of paths and config sections.

The Snakemake scripts unpack ``snakemake.*`` and call these; the torchrun entry point
(``workflow/scripts/train_ddp.py``) calls :func:`train_job` with the same spec, so single- and multi-GPU jobs
run one code path. The evaluation job is :func:`hcrlc.evaluation.evaluate_job`: the trainings do not import the
evaluation code, so an edit to it reruns the evaluations only (:mod:`hcrlc.provenance`).
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

from hcrlc.atomic import atomic_output
from hcrlc.data.dataset import TripletDataset, load_index
from hcrlc.training import launch_command, resolve_device, train_model

log = logging.getLogger(__name__)


def split_dataset(index_path: str | Path, shards_dir: str | Path, masks_dir: str | Path, split: str,
                  raw: bool = False) -> TripletDataset:
    """The TripletDataset of one split of ``index.parquet``; ``raw`` items are prepared per batch on the device."""
    return TripletDataset(load_index(index_path, split), shards_dir, masks_dir, raw=raw)


def _prepare_on_device(device: str) -> bool:
    """On a GPU the loader hands over stored bytes and the GPU prepares the batch; on a CPU per item is faster."""
    return resolve_device(device).type == "cuda"


def train_job(spec: dict[str, Any]) -> dict[str, Any]:
    """Train ``spec['model']`` on the index's train split, select on its val split (see train_model)."""
    raw = _prepare_on_device(spec["train_cfg"].get("device", "auto"))
    train_ds = split_dataset(spec["index"], spec["shards_dir"], spec["masks_dir"], "train", raw)
    val_ds = split_dataset(spec["index"], spec["shards_dir"], spec["masks_dir"], "val", raw)
    log.info("%s: %d train / %d val samples", spec["run"], len(train_ds), len(val_ds))
    return train_model(spec["model"], train_ds, val_ds, spec["out_dir"], model_cfg=spec["model_cfg"],
                       train_cfg=spec["train_cfg"], hcr_checkpoint=spec.get("hcr_checkpoint"),
                       code_version=spec.get("code_version"))


def launch_train_job(spec: dict[str, Any], ddp_entry: str | Path, log_path: str | Path | None) -> None:
    """Run :func:`train_job` here, or under torchrun on ``training.gpus`` local GPUs when that is > 1."""
    gpus = int(spec["train_cfg"].get("gpus", 1))
    if gpus <= 1 or resolve_device(spec["train_cfg"].get("device", "auto")).type != "cuda":
        train_job(spec)
        return
    spec_path = Path(spec["out_dir"]) / "resume" / "job.json"
    with atomic_output(spec_path) as tmp:
        tmp.write_text(json.dumps(spec))
    cmd = launch_command(gpus, ddp_entry, [str(spec_path)])
    log.info("launching DDP on %d GPUs: %s", gpus, " ".join(cmd))
    with open(log_path or "/dev/null", "a") as out:
        subprocess.run(cmd, check=True, stdout=out, stderr=out)


def run_ddp_entry(argv: list[str]) -> None:
    """torchrun entry: ``train_ddp.py SPEC.json``."""
    spec = json.loads(Path(argv[1]).read_text())
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    train_job(spec)
