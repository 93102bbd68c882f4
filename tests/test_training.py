"""The training loop: outputs, exact resume after SIGKILL, checkpoint checks, NaN and device errors, CPU DDP.

Every network here is tiny (widths 4–8) on 32 px patches from an in-memory data set in the TripletDataset item
format whose targets follow from the inputs, so a couple of epochs visibly learn.
"""

from __future__ import annotations

import csv
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from torch.utils.data import Dataset, Subset

from hcrlc.data.dataset import frame_pixel_size
from hcrlc.errors import CheckpointError, ConfigError, DataError, TrainingError
from hcrlc.models import LOGITS
from hcrlc.training import (
    TRAINING_DEFAULTS,
    EpochBatchSampler,
    launch_command,
    load_checkpoint,
    load_model,
    resolve_training_config,
    tf32_math,
    train_model,
)
from hcrlc.training.objective import validate

TESTS = Path(__file__).resolve().parent
SCHEMA = TESTS.parent / "workflow" / "schemas" / "config.schema.yaml"
SIZE = 32
#: Depth 2 (32 px → 8 px centre), one classification conv, a two-pool C-Net without dropout.
TINY = {"widths": [4, 8, 8], "cls_widths": [8], "cnet_layers": [8, "M", 8, "M"], "cnet_hidden": [16],
        "cnet_dropout": 0.0}


def train_cfg(**overrides) -> dict:
    return {"epochs": 2, "batch_size": 8, "lr": 1e-2, "device": "cpu", "num_workers": 0, **overrides}


class LearnableTriplets(Dataset):
    """``n`` random samples in the TripletDataset item format, learnable from their inputs.

    The clear S2 is noise; the cloudy S2 brightens it where the mask says cloud; class ``c`` is present when
    the cloudy band ``c`` is shifted up by 0.3. ``delay`` (seconds per item) slows a run for the kill test.
    ``pixel_size_m``: the pixel size the set declares, as TripletDataset does from the index (None: it does not).
    """

    def __init__(self, n: int, seed: int = 0, size: int = SIZE, delay: float = 0.0,
                 pixel_size_m: float | None = None) -> None:
        self.pixel_size_m = pixel_size_m
        g = torch.Generator().manual_seed(seed)
        self.y = (torch.rand(n, 10, generator=g) < 0.4).float()
        self.s2 = torch.rand(n, 13, size, size, generator=g)
        self.mask = (torch.rand(n, 1, size, size, generator=g) < 0.5).float()
        cloudy = self.s2 * (1 - self.mask) + self.mask * (0.7 + 0.3 * self.s2)
        cloudy[:, :10] += 0.3 * self.y[:, :, None, None]
        self.x = torch.cat([cloudy, torch.randn(n, 2, size, size, generator=g)], dim=1)
        self.delay = delay

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if self.delay:
            time.sleep(self.delay)
        return {"x": self.x[i], "s2": self.s2[i], "mask": self.mask[i], "y": self.y[i],
                "cloud_fraction": self.mask[i].mean(), "idx": torch.tensor(i)}


class NanAfter(LearnableTriplets):
    """Serves ``clean`` items, then inputs full of NaN (counted in this process: use ``num_workers: 0``)."""

    def __init__(self, n: int, clean: int) -> None:
        super().__init__(n)
        self.clean, self.served = clean, 0

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        item = super().__getitem__(i)
        self.served += 1
        if self.served > self.clean:
            item["x"] = torch.full_like(item["x"], math.nan)
        return item


@pytest.fixture(scope="module")
def hcr_checkpoint(tmp_path_factory) -> Path:
    """A trained (one epoch) tiny HCR-Net for HCR-Net + C-Net."""
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("hcr_net")
    train_model("hcr_net", LearnableTriplets(16), LearnableTriplets(8, seed=1), out, model_cfg=TINY,
                train_cfg=train_cfg(epochs=1), progress=False)
    return out / "best.pt"


def read_metrics(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def tensorboard_scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar TensorBoard shows for ``log_dir``: tag -> [(step, value), …] in step order, read back with
    TensorBoard's own reader (which applies the purges a resumed writer records)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(log_dir))
    accumulator.Reload()
    return {tag: sorted((e.step, e.value) for e in accumulator.Scalars(tag))
            for tag in accumulator.Tags()["scalars"]}


def assert_tensorboard_equals_metrics(log_dir: Path, rows: list[dict[str, str]], epoch_offset: int = 0
                                      ) -> None:
    """The event files hold every non-empty metrics.csv column (float32) at step = offset + epoch, once."""
    scalars = tensorboard_scalars(log_dir)
    columns = [k for k in rows[0] if k not in ("epoch", "stage", "stage_epoch") and rows[0][k] != ""]
    assert set(scalars) == set(columns), (sorted(scalars), columns)
    for column in columns:
        expected = [(epoch_offset + int(r["epoch"]), float(r[column])) for r in rows]
        assert [step for step, _ in scalars[column]] == [step for step, _ in expected], column
        assert np.allclose([v for _, v in scalars[column]], [v for _, v in expected], rtol=1e-6), column


def assert_same_tensors(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key, value in a.items():
        assert torch.equal(value, b[key]), key


# --- config -------------------------------------------------------------------------------------------------


#: train_model's keys the workflow sets per run, not from the config's `training` (seed: `seeds`, `ssl.seed`)
RUN_KEYS = {"seed"}


def test_training_defaults_match_the_schema() -> None:
    schema = yaml.safe_load(SCHEMA.read_text())
    properties = schema["properties"]["training"]["properties"]
    config_keys = {k: v for k, v in TRAINING_DEFAULTS.items() if k not in RUN_KEYS}
    assert {k: v["default"] for k, v in properties.items()} == config_keys
    assert set(schema["definitions"]["training"]["properties"]) == set(TRAINING_DEFAULTS) - RUN_KEYS


def test_precision_is_fp32_by_default_and_checked() -> None:
    assert resolve_training_config({})["precision"] == "fp32"  # the authors' training script has no autocast
    assert resolve_training_config({"precision": "bf16"})["precision"] == "bf16"
    with pytest.raises(ConfigError, match="training.precision must be one of"):
        resolve_training_config({"precision": "fp16"})
    with pytest.raises(ConfigError, match="`amp: true` is now `precision: bf16`"):
        resolve_training_config({"amp": True})


class PrecisionProbe(torch.nn.Module):
    """A validation objective that records, per batch, whether autocast and TF32 are on while it runs."""

    def __init__(self) -> None:
        super().__init__()
        self.head = torch.nn.Linear(15, 10)
        self.seen: list[tuple[bool, bool, bool]] = []

    def forward(self, x, s2, mask, y):
        self.seen.append((torch.is_autocast_enabled("cpu"), torch.backends.cuda.matmul.allow_tf32,
                          torch.backends.cudnn.allow_tf32))
        logits = self.head(x.mean(dim=(2, 3)))
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, y), {LOGITS: logits}


def test_validation_runs_in_fp32_under_any_training_precision() -> None:
    """No autocast and no TF32 while validating, even inside a bf16 autocast with TF32 allowed (as ``bf16``
    training is); the training's settings come back afterwards."""
    probe = PrecisionProbe()
    loader = torch.utils.data.DataLoader(LearnableTriplets(6), batch_size=4)
    with torch.autocast("cpu", dtype=torch.bfloat16), tf32_math(True):
        scores = validate(probe, loader, torch.device("cpu"), channels_last=False, want_f1=True, want_psnr=False)
        assert torch.is_autocast_enabled("cpu") and torch.backends.cudnn.allow_tf32
        assert torch.backends.cuda.matmul.allow_tf32
    assert probe.seen == [(False, False, False)] * 2
    with torch.no_grad():  # the fp32 loss, computed here without any context
        x = LearnableTriplets(6).x
        loss = torch.nn.functional.binary_cross_entropy_with_logits(probe.head(x.mean(dim=(2, 3))),
                                                                    LearnableTriplets(6).y, reduction="sum")
    assert scores["val_loss"] == pytest.approx(float(loss) / (6 * 10), rel=1e-6)


def test_unknown_training_key_and_misused_hcr_checkpoint_raise(tmp_path, hcr_checkpoint) -> None:
    ds = LearnableTriplets(4)
    with pytest.raises(ConfigError, match="epoch"):
        train_model("lc_net", ds, ds, tmp_path, model_cfg=TINY, train_cfg={"epoch": 1}, progress=False)
    with pytest.raises(ConfigError, match="hcr_checkpoint"):
        train_model("hcr_c_net", ds, ds, tmp_path, model_cfg=TINY, train_cfg=train_cfg(), progress=False)
    with pytest.raises(ConfigError, match="hcr_checkpoint"):
        train_model("lc_net", ds, ds, tmp_path, model_cfg=TINY, train_cfg=train_cfg(),
                    hcr_checkpoint=hcr_checkpoint, progress=False)


# --- a normal run -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "metric", "extra_columns"),
    [("lc_net", "val_f1", []), ("hcr_net", "val_psnr", []), ("hcr_lc_equal", "val_f1", []),
     ("hcr_lc_uncertain", "val_f1", ["log_var_cls", "log_var_carl"])],
)
def test_two_epochs_write_best_checkpoint_and_metrics(tmp_path, caplog, name, metric, extra_columns) -> None:
    caplog.set_level("INFO", logger="hcrlc")
    summary = train_model(name, LearnableTriplets(32), LearnableTriplets(8, seed=1), tmp_path, model_cfg=TINY,
                          train_cfg=train_cfg(device="auto"), progress=True)
    if not torch.cuda.is_available():
        assert "training on CPU" in caplog.text
    # resume folder removed; the learning curves stay
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "metrics.csv", "tensorboard"]

    rows = read_metrics(tmp_path / "metrics.csv")
    assert_tensorboard_equals_metrics(tmp_path / "tensorboard", rows)
    assert list(rows[0]) == ["epoch", "train_loss", "val_loss", "val_f1", "val_psnr", "seconds", "lr",
                             *extra_columns]
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert float(rows[1]["train_loss"]) < float(rows[0]["train_loss"])
    assert all(float(r["lr"]) == 1e-2 for r in rows)
    assert all((r["val_f1"] != "") == (name != "hcr_net") for r in rows)
    assert all((r["val_psnr"] != "") == (name != "lc_net") for r in rows)

    ckpt = torch.load(tmp_path / "best.pt", weights_only=True)
    values = [float(r[metric]) for r in rows]
    assert ckpt["metric"] == metric == summary["metric"]
    assert ckpt["epoch"] == summary["best_epoch"] == 1 + int(np.argmax(values))
    assert ckpt["value"] == pytest.approx(max(values))
    assert ckpt["model_name"] == name and ckpt["model_cfg"]["widths"] == TINY["widths"]
    assert ckpt["train_cfg"]["lr"] == 1e-2 and ckpt["train_cfg"]["batch_size"] == 8
    assert (ckpt["weighting"] is None) == (name in ("lc_net", "hcr_net"))
    if name == "hcr_lc_uncertain":
        best_row = rows[ckpt["epoch"] - 1]
        assert ckpt["weighting"]["log_var_cls"].item() == pytest.approx(float(best_row["log_var_cls"]))

    model = load_model(tmp_path / "best.pt", TINY, expected_name=name)
    assert_same_tensors(model.state_dict(), ckpt["state_dict"])
    assert not model.training
    with torch.no_grad():
        out = model(LearnableTriplets(2).x)
    assert set(out) == set(model.heads)


def test_hcr_c_net_trains_only_the_c_net(tmp_path, hcr_checkpoint) -> None:
    train_model("hcr_c_net", LearnableTriplets(16), LearnableTriplets(8, seed=1), tmp_path, model_cfg=TINY,
                train_cfg=train_cfg(), hcr_checkpoint=hcr_checkpoint, progress=False)
    hcr = load_checkpoint(hcr_checkpoint, expected_name="hcr_net")["state_dict"]
    state = load_checkpoint(tmp_path / "best.pt", expected_name="hcr_c_net")["state_dict"]
    assert_same_tensors({k.removeprefix("hcr."): v for k, v in state.items() if k.startswith("hcr.")}, hcr)


def test_max_train_samples_takes_a_fresh_seeded_subset_each_epoch() -> None:
    sampler = EpochBatchSampler(20, 4, seed=3, max_samples=10)
    epochs = []
    for epoch in (1, 2, 1):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert [len(b) for b in batches] == [4, 4, 2] and len(sampler) == 3
        epochs.append([i for b in batches for i in b])
    assert epochs[0] == epochs[2] != epochs[1]
    assert len(set(epochs[0])) == 10


def test_ddp_shards_are_the_global_batches() -> None:
    single = EpochBatchSampler(21, 8, seed=5)
    ranks = [EpochBatchSampler(21, 8, seed=5, rank=r, world_size=2) for r in (0, 1)]
    for s in (single, *ranks):
        s.set_epoch(4)
    for step, (whole, part0, part1) in enumerate(zip(single, *ranks, strict=True)):
        assert sorted(whole) == sorted(part0 + part1)
        assert single.global_batch_size(step) == len(whole)
    with pytest.raises(ConfigError, match="divisible"):
        EpochBatchSampler(21, 7, seed=5, world_size=2)


# --- interruption and resume --------------------------------------------------------------------------------

RUN_SCRIPT = """
import logging
import sys
import torch
torch.set_num_threads(1)
logging.basicConfig(level=logging.INFO)
sys.path.insert(0, {tests!r})
from test_training import TINY, LearnableTriplets, train_cfg
from hcrlc.training import train_model
train_model("hcr_c_net", LearnableTriplets(32, delay={delay}), LearnableTriplets(8, seed=1), sys.argv[1],
            model_cfg={{**TINY, "cnet_dropout": 0.5}}, train_cfg=train_cfg(epochs=4, deterministic=True),
            hcr_checkpoint=sys.argv[2], progress=False)
"""


@pytest.mark.slow
def test_sigkill_then_resume_gives_the_uninterrupted_checkpoint_bitwise(tmp_path, hcr_checkpoint) -> None:
    """HCR-Net + C-Net with dropout: exact only if the dropout RNG is the same after the resume."""
    script = tmp_path / "run.py"
    script.write_text(RUN_SCRIPT.format(tests=str(TESTS), delay=0.02))
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    command = [sys.executable, str(script)]
    uninterrupted, victim = (subprocess.Popen([*command, str(d), str(hcr_checkpoint)], stderr=subprocess.PIPE,
                                              text=True) for d in (whole, killed))
    state_path = killed / "resume" / "state.pt"
    deadline = time.monotonic() + 60
    while not state_path.exists():
        assert victim.poll() is None, victim.stderr.read()
        assert time.monotonic() < deadline, "no resume state after 60 s"
        time.sleep(0.01)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    victim.stderr.close()
    assert not (killed / "best.pt").exists() and not (killed / "metrics.csv").exists()
    killed_after = torch.load(state_path, weights_only=True)["epoch"]
    assert 1 <= killed_after < 4

    resumed = subprocess.run([*command, str(killed), str(hcr_checkpoint)], check=False,
                             capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming after epoch {killed_after}" in resumed.stderr
    _, err = uninterrupted.communicate(timeout=120)
    assert uninterrupted.returncode == 0, err

    a, b = (torch.load(d / "best.pt", weights_only=True) for d in (whole, killed))
    assert_same_tensors(a["state_dict"], b["state_dict"])
    assert (a["epoch"], a["value"]) == (b["epoch"], b["value"])
    for ra, rb in zip(read_metrics(whole / "metrics.csv"), read_metrics(killed / "metrics.csv"), strict=True):
        ra.pop("seconds"), rb.pop("seconds")
        assert ra == rb


def interrupted_lc_net_run(out_dir: Path) -> None:
    """lc_net whose inputs turn NaN at epoch 2, batch 2 (16 samples, batch 8), leaving epoch 1's resume state.

    Clean items: item 0 once (train_model reads it for the patch size), epoch 1, the first batch of epoch 2.
    """
    with pytest.raises(TrainingError, match=r"epoch 2, batch 2 of 2") as err:
        train_model("lc_net", NanAfter(16, clean=1 + 16 + 8), LearnableTriplets(8, seed=1), out_dir,
                    model_cfg=TINY, train_cfg=train_cfg(), progress=False)
    assert "resume state of epoch 1" in str(err.value)


def test_nan_loss_names_epoch_and_batch_and_keeps_the_last_resume_state(tmp_path) -> None:
    interrupted_lc_net_run(tmp_path)
    # no declared output yet; the curves of the completed epoch are there already
    assert sorted(p.name for p in tmp_path.iterdir()) == ["resume", "tensorboard"]
    state = torch.load(tmp_path / "resume" / "state.pt", weights_only=True)
    assert state["epoch"] == 1 and len(state["metrics"]) == 1
    assert [step for step, _ in tensorboard_scalars(tmp_path / "tensorboard")["val_f1"]] == [1]
    # as if a killed process had logged epoch 2 after its last resume state: the resumed run must replace it
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(tmp_path / "tensorboard")) as stale:
        stale.add_scalar("val_f1", -1.0, 2)

    # with clean data the run continues after epoch 1 instead of starting over
    summary = train_model("lc_net", LearnableTriplets(16), LearnableTriplets(8, seed=1), tmp_path,
                          model_cfg=TINY, train_cfg=train_cfg(), progress=False)
    assert summary["metrics"][0] == state["metrics"][0]
    assert len(summary["metrics"]) == 2
    assert_tensorboard_equals_metrics(tmp_path / "tensorboard", read_metrics(tmp_path / "metrics.csv"))

    # a run that starts over replaces the curves of the one before
    train_model("lc_net", LearnableTriplets(16), LearnableTriplets(8, seed=1), tmp_path, model_cfg=TINY,
                train_cfg=train_cfg(epochs=1), progress=False)
    assert_tensorboard_equals_metrics(tmp_path / "tensorboard", read_metrics(tmp_path / "metrics.csv"))


def test_resume_state_of_another_model_or_config_is_refused(tmp_path) -> None:
    interrupted_lc_net_run(tmp_path)
    ds, val = LearnableTriplets(16), LearnableTriplets(8, seed=1)
    with pytest.raises(CheckpointError, match=r"'lc_net'.*'hcr_net'.*delete the folder .*resume"):
        train_model("hcr_net", ds, val, tmp_path, model_cfg=TINY, train_cfg=train_cfg(), progress=False)
    with pytest.raises(CheckpointError, match=r"training\.lr: 0\.01 → 0\.001"):
        train_model("lc_net", ds, val, tmp_path, model_cfg=TINY, train_cfg=train_cfg(lr=1e-3), progress=False)
    with pytest.raises(CheckpointError, match=r"model\.widths"):
        train_model("lc_net", ds, val, tmp_path, model_cfg={**TINY, "widths": [4, 8, 16]},
                    train_cfg=train_cfg(), progress=False)
    # a state written by other code (the workflow's params.code) is not continued either
    with pytest.raises(CheckpointError, match=r"code_version: None → '0123abcd'.*delete the folder"):
        train_model("lc_net", ds, val, tmp_path, model_cfg=TINY, train_cfg=train_cfg(), code_version="0123abcd",
                    progress=False)
    # how the work is spread is not part of the identity
    train_model("lc_net", ds, val, tmp_path, model_cfg=TINY, train_cfg=train_cfg(gpus=2), progress=False)
    assert (tmp_path / "best.pt").is_file()


def test_best_checkpoint_of_one_model_is_refused_as_another(tmp_path, hcr_checkpoint) -> None:
    with pytest.raises(CheckpointError, match=r"holds model 'hcr_net', not 'lc_net'"):
        load_checkpoint(hcr_checkpoint, expected_name="lc_net")
    with pytest.raises(CheckpointError, match=r"holds model 'hcr_net', not 'lc_net'"):
        load_model(hcr_checkpoint, expected_name="lc_net")
    with pytest.raises(CheckpointError, match=r"another model config.*widths"):
        load_model(hcr_checkpoint, {**TINY, "widths": [4, 8, 16]})
    ds = LearnableTriplets(8)
    with pytest.raises(CheckpointError, match=r"not 'hcr_net'"):
        lc_dir = tmp_path / "lc"
        train_model("lc_net", ds, ds, lc_dir, model_cfg=TINY, train_cfg=train_cfg(epochs=1), progress=False)
        train_model("hcr_c_net", ds, ds, tmp_path / "c", model_cfg=TINY, train_cfg=train_cfg(),
                    hcr_checkpoint=lc_dir / "best.pt", progress=False)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="unreadable"):
        load_checkpoint(tmp_path / "junk.pt")


# --- the data's pixel size -------------------------------------------------------------------------------------


def test_the_data_pixel_size_goes_into_best_pt_and_must_match_what_it_meets(tmp_path) -> None:
    # read through a Subset (ssl runs train on one), as the TripletDataset of a 40 m index declares it
    train = Subset(LearnableTriplets(8, pixel_size_m=40.0), list(range(6)))
    train_model("hcr_net", train, LearnableTriplets(4, seed=1, pixel_size_m=40.0), tmp_path / "hcr",
                model_cfg=TINY, train_cfg=train_cfg(epochs=1), progress=False)
    best = tmp_path / "hcr" / "best.pt"
    assert torch.load(best, weights_only=True)["pixel_size_m"] == 40.0
    assert load_checkpoint(best)["pixel_size_m"] == 40.0
    load_model(best, pixel_size_m=40.0)
    with pytest.raises(CheckpointError, match=r"hcr/best.pt was trained on 40 m pixels, the data it is given has "
                                              r"10 m pixels. Fix: retrain hcr_net"):
        load_model(best, pixel_size_m=10.0)
    # the sequential ensemble freezes an HCR-Net of the same pixels inside
    ten = LearnableTriplets(8, pixel_size_m=10.0)
    with pytest.raises(CheckpointError, match=r"trained on 40 m pixels.*has 10 m pixels. Fix: retrain hcr_net"):
        train_model("hcr_c_net", ten, ten, tmp_path / "c", model_cfg=TINY, train_cfg=train_cfg(), hcr_checkpoint=best,
                    progress=False)
    with pytest.raises(ConfigError, match=r"training data has 10 m pixels, the validation data 40 m"):
        train_model("lc_net", ten, LearnableTriplets(4, pixel_size_m=40.0), tmp_path / "lc", model_cfg=TINY,
                    train_cfg=train_cfg(), progress=False)


def test_a_best_pt_without_the_pixel_size_means_sen12ms_10_m_and_unknown_data_stays_unknown(tmp_path) -> None:
    train_model("lc_net", LearnableTriplets(8), LearnableTriplets(4, seed=1), tmp_path, model_cfg=TINY,
                train_cfg=train_cfg(epochs=1), progress=False)
    stored = torch.load(tmp_path / "best.pt", weights_only=True)
    assert stored["pixel_size_m"] is None  # in-memory data that does not say: recorded as unknown, not guessed
    load_model(tmp_path / "best.pt", pixel_size_m=40.0)  # nothing to check against
    del stored["pixel_size_m"]  # a best.pt from before the key (SEN12MS, or the 10 m synthetic tree)
    torch.save(stored, tmp_path / "old.pt")
    assert load_checkpoint(tmp_path / "old.pt")["pixel_size_m"] == 10.0
    with pytest.raises(CheckpointError, match="trained on 10 m pixels"):
        load_model(tmp_path / "old.pt", pixel_size_m=40.0)


def test_a_frame_mixing_pixel_sizes_is_refused_naming_a_scene_of_each(tmp_path) -> None:
    frame = pd.DataFrame({"season": ["spring", "spring", "fall"], "scene": [1, 1, 3], "res": [40.0, 40.000001, 10.0]})
    assert frame_pixel_size(frame.iloc[:2], tmp_path) == 40.0  # float noise of the transforms is one size
    assert frame_pixel_size(frame.drop(columns="res"), tmp_path) is None
    with pytest.raises(DataError, match=r"fall_3: holds 10 m pixels, scene spring_1 of the same "
                                        r"split 40 m pixels.*Fix: rebuild.*synthetic.pixel_size_m") as err:
        frame_pixel_size(frame, tmp_path)
    assert err.value.path == tmp_path / "fall_3"


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_a_training_error(tmp_path) -> None:
    ds = LearnableTriplets(4)
    with pytest.raises(TrainingError, match="'cuda'.*no CUDA device"):
        train_model("lc_net", ds, ds, tmp_path, model_cfg=TINY, train_cfg=train_cfg(device="cuda"),
                    progress=False)


# --- several processes --------------------------------------------------------------------------------------

DDP_SCRIPT = """
import sys
import torch
torch.set_num_threads(1)
sys.path.insert(0, {tests!r})
from test_training import ddp_run_arguments
from hcrlc.training import train_model
args, kwargs = ddp_run_arguments(sys.argv[1], sys.argv[2])
train_model(*args, **kwargs, progress=False)
"""


def ddp_run_arguments(out_dir: str, hcr_checkpoint: str) -> tuple[tuple, dict]:
    """hcr_c_net (its trained part has no BatchNorm; dropout 0), 21 samples: global batches of 8, 8 and 5."""
    return ("hcr_c_net", LearnableTriplets(21), LearnableTriplets(8, seed=1), out_dir), {
        "model_cfg": TINY, "train_cfg": train_cfg(lr=3e-3), "hcr_checkpoint": hcr_checkpoint}


def test_launch_command() -> None:
    assert launch_command(1, "train.py", ["--x", 1]) == [sys.executable, "train.py", "--x", "1"]
    cmd = launch_command(4, "train.py", ["--x"])
    assert cmd[1:3] == ["-m", "torch.distributed.run"] and "--standalone" in cmd
    assert cmd[cmd.index("--nproc_per_node") + 1] == "4" and cmd[-2:] == ["train.py", "--x"]


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_matches_single_process_training(tmp_path, hcr_checkpoint) -> None:
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT.format(tests=str(TESTS)))
    command = launch_command(2, script, [tmp_path / "ddp", hcr_checkpoint])
    ddp = subprocess.run(command, check=False, capture_output=True, text=True, timeout=180,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert ddp.returncode == 0, ddp.stderr[-3000:]

    args, kwargs = ddp_run_arguments(str(tmp_path / "single"), str(hcr_checkpoint))
    train_model(*args, **kwargs, progress=False)

    single, multi = (read_metrics(tmp_path / d / "metrics.csv") for d in ("single", "ddp"))
    # Observed agreement is ~1e-7 (float summation order); dropping the per-rank loss scaling of the uneven
    # last batch (3 + 2 samples) already moves epoch 1's train loss by 2e-5, so 1e-6 tells the two apart.
    for key in ("train_loss", "val_loss", "val_f1"):
        np.testing.assert_allclose([float(r[key]) for r in multi], [float(r[key]) for r in single], rtol=1e-6,
                                   err_msg=key)
    assert float(single[1]["train_loss"]) != float(single[0]["train_loss"])  # it did train
    a, b = (load_checkpoint(tmp_path / d / "best.pt")["state_dict"] for d in ("single", "ddp"))
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-4, atol=1e-6)
