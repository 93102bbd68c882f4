"""Self-supervision: the pretext objective, the frozen and fine-tuning stages, ssl_on/ssl_off runs, resume.

The training-loop tests use tiny networks on 32 px in-memory data (as test_training does); the job tests run
the real data stage on the tiny generated tree (256 px patches) and train 4–8-channel networks for an epoch or
two.
"""

from __future__ import annotations

import csv
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
from test_data_stage import run_stage
from test_training import (
    TINY,
    LearnableTriplets,
    NanAfter,
    assert_same_tensors,
    assert_tensorboard_equals_metrics,
    read_metrics,
    tensorboard_scalars,
    train_cfg,
)
from torch.utils.data import Dataset

from hcrlc.errors import CheckpointError, ConfigError
from hcrlc.evaluation import evaluate_job
from hcrlc.models import build_model
from hcrlc.pretext import nested_label_subsets
from hcrlc.selfsup import (
    NEW_LAYERS,
    PRETEXT_SKIP,
    SSL_MODEL,
    _write_run_outputs,
    pretext_datasets,
    pretext_job,
    ssl_job,
)
from hcrlc.training import PRETEXT, PRETEXT_COLUMNS, load_checkpoint, load_model, train_model

SIZE = 32


class LearnablePretext(Dataset):
    """``n`` in-memory pretext items whose direction shows in the S1 bands (shifted by 0.5 per step).

    Like :class:`~hcrlc.pretext.PretextDataset`, the direction of item ``i`` is drawn from
    ``(seed, epoch, i)``; ``epochs_set`` records the :meth:`set_epoch` calls (seen in this process: use
    ``num_workers: 0``).
    """

    def __init__(self, n: int, seed: int = 0) -> None:
        self.base = torch.rand(n, 15, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))
        self.seed, self.epoch, self.epochs_set = seed, 0, []

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.epochs_set.append(epoch)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        d = int(np.random.default_rng([self.seed, self.epoch, i]).integers(4))
        x = self.base[i].clone()
        x[13:] += 0.5 * d
        return {"x": x, "y": torch.tensor(d, dtype=torch.int64), "idx": torch.tensor(i)}


@pytest.fixture(scope="module")
def pretext_checkpoint(tmp_path_factory) -> Path:
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("pretext")
    train_model(PRETEXT, LearnablePretext(16), LearnablePretext(8, seed=1), out, model_cfg=TINY,
                train_cfg=train_cfg(epochs=1), progress=False)
    return out / "best.pt"


def frozen_stage(out_dir: Path, pretext: Path, train_ds: Dataset | None = None, **overrides) -> dict:
    """Stage 2 as ssl_job runs it, on in-memory triplets."""
    kwargs = {"init_checkpoint": pretext, "init_skip": PRETEXT_SKIP, "trainable": NEW_LAYERS,
              "train_cfg": train_cfg(), **overrides}
    return train_model(SSL_MODEL, train_ds or LearnableTriplets(16), LearnableTriplets(8, seed=1), out_dir,
                       model_cfg=TINY, progress=False, **kwargs)


def under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


# --- the pretext objective ----------------------------------------------------------------------------------


def test_pretext_learns_directions_with_cross_entropy_and_selects_on_accuracy(tmp_path, caplog) -> None:
    caplog.set_level("INFO", logger="hcrlc")
    train_ds = LearnablePretext(48)
    summary = train_model(PRETEXT, train_ds, LearnablePretext(16, seed=1), tmp_path, model_cfg=TINY,
                          train_cfg=train_cfg(epochs=3), progress=False)
    assert train_ds.epochs_set == [1, 2, 3]  # a fresh direction per epoch
    rows = read_metrics(tmp_path / "metrics.csv")
    assert tuple(rows[0]) == PRETEXT_COLUMNS
    # chance (1 of 4 directions) stands beside the accuracy: in metrics.csv, the log and TensorBoard
    assert [float(r["chance_acc"]) for r in rows] == [0.25] * 3
    assert "val_acc selects (chance 0.25)" in caplog.text and "chance_acc 0.25" in caplog.text
    assert tensorboard_scalars(tmp_path / "tensorboard")["chance_acc"] == [(1, 0.25), (2, 0.25), (3, 0.25)]
    accuracy = [float(r["val_acc"]) for r in rows]
    assert all(0 <= a <= 1 for a in accuracy)
    assert max(accuracy) > 0.5  # chance is 0.25: the shifted S1 bands give the direction away
    ckpt = load_checkpoint(tmp_path / "best.pt", expected_name=PRETEXT)
    assert ckpt["metric"] == summary["metric"] == "val_acc" and ckpt["n_classes"] == 4
    assert ckpt["epoch"] == 1 + int(np.argmax(accuracy))
    model = load_model(tmp_path / "best.pt", TINY)
    assert model.heads == ("logits",)
    with torch.no_grad():
        assert model(train_ds.base[:2])["logits"].shape == (2, 4)


def test_pretext_and_land_cover_items_are_not_mixed_up(tmp_path) -> None:
    with pytest.raises(ConfigError, match="PretextDataset"):
        train_model(PRETEXT, LearnableTriplets(8), LearnableTriplets(8), tmp_path, model_cfg=TINY,
                    train_cfg=train_cfg(), progress=False)
    with pytest.raises(ConfigError, match="PretextDataset"):
        train_model(SSL_MODEL, LearnablePretext(8), LearnablePretext(8), tmp_path, model_cfg=TINY,
                    train_cfg=train_cfg(), progress=False)


# --- the frozen stage and the fine-tuning stage -------------------------------------------------------------


def test_frozen_stage_trains_only_the_new_layers(tmp_path, pretext_checkpoint) -> None:
    frozen_stage(tmp_path, pretext_checkpoint)
    pretext = load_checkpoint(pretext_checkpoint)["state_dict"]
    trained = load_checkpoint(tmp_path / "best.pt", expected_name=SSL_MODEL)["state_dict"]
    torch.manual_seed(0)  # the seeded initialisation train_model starts from (training.seed 0)
    initial = build_model(SSL_MODEL, TINY, SIZE).state_dict()

    kept = {k: v for k, v in trained.items() if not under(k, NEW_LAYERS)}
    assert any(k.startswith("encoder.") and "running_var" in k for k in kept)  # BatchNorm buffers included
    assert any(k.startswith("classifier.convs.") for k in kept)
    # encoder (weights and BatchNorm statistics) and classification convs: the pretext's, bit for bit
    assert_same_tensors(kept, {k: pretext[k] for k in kept})
    new = [k for k in trained if under(k, NEW_LAYERS)]
    assert {k.split(".")[0] for k in new} == {"decoder", "recon_head", "classifier"}
    assert all(not torch.equal(trained[k], initial[k]) for k in new)  # they trained


def test_frozen_stage_optimiser_holds_only_the_new_layers_and_resume_checks_the_init(
    tmp_path, pretext_checkpoint
) -> None:
    # inputs turn NaN in epoch 2: the run stops and leaves epoch 1's resume state
    with pytest.raises(Exception, match="non-finite"):
        frozen_stage(tmp_path, pretext_checkpoint, train_ds=NanAfter(16, clean=1 + 16 + 8))
    state = torch.load(tmp_path / "resume" / "state.pt", weights_only=True)
    model = build_model(SSL_MODEL, TINY, SIZE)
    expected = [tuple(p.shape) for n, p in model.named_parameters() if under(n, NEW_LAYERS)] + [(), ()]
    (group,) = state["optimizer"]["param_groups"]
    assert len(group["params"]) == len(expected)  # the new layers and the two log-variances, nothing else
    assert [tuple(state["optimizer"]["state"][i]["exp_avg"].shape) for i in group["params"]] == expected
    assert state["identity"]["trainable"] == sorted(NEW_LAYERS)

    trainable_changed = r"trainable: \['classifier.head', 'decoder', 'recon_head'\] → None"
    with pytest.raises(CheckpointError, match=trainable_changed):
        frozen_stage(tmp_path, pretext_checkpoint, trainable=None)
    other = tmp_path / "other_pretext.pt"
    torch.save(load_checkpoint(pretext_checkpoint) | {"epoch": 99}, other)
    with pytest.raises(CheckpointError, match="init_checkpoint_sha256"):
        frozen_stage(tmp_path, other)
    with pytest.raises(CheckpointError, match="init_skip"):
        frozen_stage(tmp_path, pretext_checkpoint, init_skip=("classifier.head", "classifier.convs"),
                     trainable=("classifier", "decoder", "recon_head"))
    frozen_stage(tmp_path, pretext_checkpoint)  # the same run continues
    assert (tmp_path / "best.pt").is_file()


def test_init_checkpoint_must_fit_and_frozen_layers_must_be_loaded(tmp_path, pretext_checkpoint) -> None:
    with pytest.raises(CheckpointError, match=r"classifier\.head\.weight \(4, 8, 1, 1\) vs \(10, 8, 1, 1\)"):
        frozen_stage(tmp_path, pretext_checkpoint, init_skip=())
    with pytest.raises(CheckpointError, match=r"decoder.*random initialisation"):
        frozen_stage(tmp_path, pretext_checkpoint, trainable=("classifier.head",))
    with pytest.raises(ConfigError, match="match no parameter"):
        frozen_stage(tmp_path, pretext_checkpoint, trainable=("decoders",))
    with pytest.raises(ConfigError, match="match no weight"):
        frozen_stage(tmp_path, pretext_checkpoint, init_skip=("classifier.heads",))
    with pytest.raises(CheckpointError, match="does not fit"):
        train_model(SSL_MODEL, LearnableTriplets(8), LearnableTriplets(8), tmp_path,
                    model_cfg={**TINY, "widths": [4, 8, 16]}, train_cfg=train_cfg(),
                    init_checkpoint=pretext_checkpoint, init_skip=PRETEXT_SKIP, progress=False)
    assert not (tmp_path / "resume").exists()


def test_finetuning_starts_from_the_frozen_stage_weights_and_loss_weighting(tmp_path, pretext_checkpoint):
    frozen_stage(tmp_path / "frozen", pretext_checkpoint)
    # lr 0: Adam moves nothing, so the fine-tuned parameters are exactly where the stage started
    train_model(SSL_MODEL, LearnableTriplets(16), LearnableTriplets(8, seed=1), tmp_path / "finetune",
                model_cfg=TINY, train_cfg=train_cfg(epochs=1, lr=0.0),
                init_checkpoint=tmp_path / "frozen" / "best.pt", progress=False)
    start, end = (load_checkpoint(tmp_path / d / "best.pt") for d in ("frozen", "finetune"))
    params = {n for n, _ in build_model(SSL_MODEL, TINY, SIZE).named_parameters()}
    assert_same_tensors(*({k: c["state_dict"][k] for k in params} for c in (end, start)))
    assert_same_tensors(end["weighting"], start["weighting"])
    assert start["weighting"]["log_var_cls"].item() != 0.0  # the frozen stage did train the weighting
    # all layers train now: BatchNorm statistics move
    assert not torch.equal(end["state_dict"]["encoder.blocks.0.1.running_mean"],
                           start["state_dict"]["encoder.blocks.0.1.running_mean"])


# --- jobs on the tiny generated tree ------------------------------------------------------------------------

SIZE_TREE = 256  # px, the patches of the generated tree
#: 256 px patches, depth 2 (64 px centre), one classification conv.
TREE_TINY = {"widths": [4, 8, 8], "cls_widths": [8]}


def tree_cfg() -> dict:
    return {"batch_size": 4, "lr": 1e-2, "device": "cpu", "num_workers": 0, "deterministic": True}


@pytest.fixture(scope="module")
def packed(tiny_tree_master, tmp_path_factory) -> dict[str, Path]:
    """The data stage's outputs for the tiny tree: index.parquet, shards/, masks/."""
    ms, cr, _ = tiny_tree_master
    work = tmp_path_factory.mktemp("packed")
    index, _ = run_stage(ms, cr, work)
    index.to_parquet(work / "index.parquet")
    return {"index_path": work / "index.parquet", "shards_dir": work / "shards", "masks_dir": work / "masks"}


@pytest.fixture(scope="module")
def tree_pretext(packed, tmp_path_factory) -> Path:
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("tree_pretext")
    summary = pretext_job(**packed, out_dir=out, model_cfg=TREE_TINY, train_cfg=tree_cfg(), epochs=1, seed=0)
    assert summary["n_train"] > 0 and summary["n_val"] > 0
    # the pixel size of the pretext's data (the index's res), written into the file
    assert torch.load(out / "best.pt", weights_only=True)["pixel_size_m"] == 10.0
    return out / "best.pt"


def test_pretext_pairs_overlap_by_half_on_the_side_their_direction_names(packed) -> None:
    """The neighbour's S1 equals the anchor's own S1 on the overlapping half (the tree is cut from one canvas)."""
    train_ds, val_ds = pretext_datasets(**packed, seed=0)
    assert len(val_ds) > 0 and len(train_ds) > 0
    assert (train_ds.triplets.frame.split == "train").all()  # no validation image in pretext training
    assert set(val_ds.triplets.frame.split) == {"train", "val"}  # validation anchors' neighbours: both
    half = SIZE_TREE // 2
    anchor_side = {0: np.s_[:, :half], 1: np.s_[:, :, :half], 2: np.s_[:, half:], 3: np.s_[:, :, half:]}
    neighbour_side = {0: np.s_[:, half:], 1: np.s_[:, :, half:], 2: np.s_[:, :half], 3: np.s_[:, :, :half]}
    seen = set()
    for ds, split in ((train_ds, "train"), (val_ds, "val")):
        assert (ds.triplets.frame.split.to_numpy()[ds.anchors] == split).all()
        for epoch in (1, 2, 3):
            ds.set_epoch(epoch)
            for i in range(len(ds)):
                item = ds[i]
                d = int(item["y"])
                own_s1 = ds.triplets.s1(int(ds.anchors[i]))
                assert np.array_equal(own_s1[anchor_side[d]], item["x"][13:].numpy()[neighbour_side[d]])
                seen.add(d)
    assert len(seen) >= 2
    # validation: every (anchor, neighbour) pair exactly once, the same in every epoch
    pairs = {(int(a), int(d)) for a in set(val_ds.anchors) for d in np.flatnonzero(val_ds.neighbours[a] >= 0)}
    listed = [(int(val_ds.anchors[i]), val_ds.direction(i)) for i in range(len(val_ds))]
    assert sorted(listed) == sorted(pairs) and len(listed) > len(set(val_ds.anchors))
    val_ds.set_epoch(5)
    assert [(int(val_ds.anchors[i]), val_ds.direction(i)) for i in range(len(val_ds))] == listed


def ssl(run: str, packed: dict, out_dir: Path, pretext: Path | None, fraction: int = 25, frozen: int = 1,
        finetune: int = 1, scratch: int | None = 2, **train_overrides) -> dict:
    return ssl_job(run, **packed, out_dir=out_dir, model_cfg=TREE_TINY, train_cfg={**tree_cfg(), **train_overrides},
                   fraction=fraction, pretext_checkpoint=pretext, frozen_epochs=frozen,
                   finetune_epochs=finetune, seed=0, scratch_epochs=scratch)


def test_pretext_then_ssl_on_and_off_give_evaluable_checkpoints(packed, tree_pretext, tmp_path, caplog):
    caplog.set_level("INFO", logger="hcrlc")
    n_train = int((pd.read_parquet(packed["index_path"]).split == "train").sum())
    subset = nested_label_subsets(n_train, [25, 50, 75, 100], seed=0)[25]
    for run, pretext, stages in (("ssl_on_25", tree_pretext, ["frozen", "finetune"]),
                                 ("ssl_off_25", None, ["scratch", "scratch"])):
        caplog.clear()
        out = tmp_path / run
        summary = ssl(run, packed, out, pretext)
        # resume/ removed; the learning curves stay, one TensorBoard run per stage on the run's epoch axis
        assert sorted(p.name for p in out.iterdir()) == ["best.pt", "metrics.csv", "tensorboard"]
        assert sorted(p.name for p in (out / "tensorboard").iterdir()) == sorted(set(stages))
        all_rows = read_metrics(out / "metrics.csv")
        for stage_name in set(stages):
            assert_tensorboard_equals_metrics(out / "tensorboard" / stage_name,
                                              [r for r in all_rows if r["stage"] == stage_name])
        assert summary["n_train"] == len(subset)
        # every stage trained on the labelled subset and validated on the whole validation split
        assert caplog.text.count(f"{len(subset)} train / {summary['n_val']} val samples") == len(set(stages))
        with (out / "metrics.csv").open(newline="") as f:
            rows = list(csv.DictReader(f))
        assert [r["stage"] for r in rows] == stages
        assert [int(r["epoch"]) for r in rows] == [1, 2]
        assert list(rows[0])[:4] == ["stage", "epoch", "stage_epoch", "train_loss"]

        ckpt = load_checkpoint(out / "best.pt", expected_name=SSL_MODEL)
        # the labelled subset (a Subset of the training split) knows the pixel size of its index
        assert torch.load(out / "best.pt", weights_only=True)["pixel_size_m"] == 10.0
        best_row = rows[ckpt["epoch"] - 1]
        assert ckpt["stage"] == best_row["stage"] == stages[-1]  # the last stage's best epoch is the run's
        assert ckpt["value"] == pytest.approx(float(best_row["val_f1"]))
        assert ckpt["value"] == max(float(r["val_f1"]) for r in rows if r["stage"] == stages[-1])
        model = load_model(out / "best.pt", TREE_TINY, expected_name=SSL_MODEL)
        assert model.heads == ("recon", "logits")
        metrics = evaluate_job(out / "best.pt", **packed, out_dir=tmp_path / f"eval_{run}", run=run,
                               batch_size=4, n_examples=2, device="cpu")
        assert metrics["f1"] is not None and metrics["psnr"] is not None


def test_label_fractions_are_nested_subsets_of_the_training_split(packed, tmp_path, caplog) -> None:
    caplog.set_level("INFO", logger="hcrlc")
    sizes = {}
    for fraction in (50, 100):
        summary = ssl(f"ssl_off_{fraction}", packed, tmp_path / str(fraction), None, fraction=fraction,
                      frozen=0, scratch=1)
        sizes[fraction] = summary["n_train"]
    n_train = sizes[100]
    subsets = nested_label_subsets(n_train, [25, 50, 75, 100], seed=0)
    assert sizes == {50: len(subsets[50]), 100: n_train}
    assert f"{len(subsets[50])} of {n_train} labelled training patches (50 %)" in caplog.text


def test_ssl_off_trains_training_epochs_unless_scratch_epochs_says_otherwise(packed, tmp_path) -> None:
    """The paper trains every model 10 epochs: ssl_off runs ``training.epochs``, not frozen + finetune."""
    off = ssl("ssl_off_25", packed, tmp_path / "off", None, frozen=4, finetune=5, scratch=None, epochs=3)
    assert [r["stage_epoch"] for r in off["metrics"]] == [1, 2, 3]
    off = ssl("ssl_off_25", packed, tmp_path / "off1", None, frozen=4, finetune=5, scratch=1, epochs=3)
    assert [r["stage_epoch"] for r in off["metrics"]] == [1]


def test_the_run_model_is_the_finetuning_stage_best_even_when_a_frozen_epoch_validates_better(
        pretext_checkpoint, tmp_path) -> None:
    """The paper's final model is stage 3's. Here the frozen stage learns (lr 1e-2) and the fine-tuning stage,
    started from it, is wrecked by a learning rate of 1, so the frozen stage holds the best validation F1."""
    frozen = tmp_path / "frozen"
    frozen_stage(frozen, pretext_checkpoint, train_cfg=train_cfg(epochs=2, deterministic=True))
    finetune = tmp_path / "finetune"
    train_model(SSL_MODEL, LearnableTriplets(16), LearnableTriplets(8, seed=1), finetune, model_cfg=TINY,
                train_cfg=train_cfg(epochs=2, lr=1.0, deterministic=True), init_checkpoint=frozen / "best.pt",
                progress=False)
    values = {stage: load_checkpoint(d / "best.pt")["value"] for stage, d in (("frozen", frozen), ("finetune",
                                                                                                  finetune))}
    assert values["frozen"] > values["finetune"]  # the situation this test is about

    out = tmp_path / "run"
    out.mkdir()
    summary = _write_run_outputs("ssl_on_25", [("frozen", 2, frozen / "best.pt"), ("finetune", 2, finetune / "best.pt")],
                                 out, extra={})
    ckpt = load_checkpoint(out / "best.pt", expected_name=SSL_MODEL)
    assert (summary["best_stage"], ckpt["stage"], ckpt["value"]) == ("finetune", "finetune", values["finetune"])
    assert ckpt["epoch"] == 2 + load_checkpoint(finetune / "best.pt")["epoch"]  # counted over the whole run
    assert_same_tensors(ckpt["state_dict"], load_checkpoint(finetune / "best.pt")["state_dict"])
    assert [r["stage"] for r in read_metrics(out / "metrics.csv")] == ["frozen"] * 2 + ["finetune"] * 2


def test_an_ssl_run_started_over_replaces_the_curves_of_the_one_before(packed, tree_pretext, tmp_path):
    ssl("ssl_on_25", packed, tmp_path, tree_pretext)
    assert sorted(p.name for p in (tmp_path / "tensorboard").iterdir()) == ["finetune", "frozen"]
    ssl("ssl_on_25", packed, tmp_path, tree_pretext, frozen=0, finetune=2)  # resume/ is gone: a new run
    assert sorted(p.name for p in (tmp_path / "tensorboard").iterdir()) == ["finetune"]
    assert_tensorboard_equals_metrics(tmp_path / "tensorboard" / "finetune",
                                      read_metrics(tmp_path / "metrics.csv"))


def test_ssl_run_arguments_are_checked(packed, tree_pretext, tmp_path) -> None:
    with pytest.raises(ConfigError, match="ssl_on_"):
        ssl("ssl_on_25", packed, tmp_path, None)
    with pytest.raises(ConfigError, match="ssl_off_"):
        ssl("ssl_off_25", packed, tmp_path, tree_pretext)
    with pytest.raises(ConfigError, match="label fraction 30"):
        ssl("ssl_off_30", packed, tmp_path, None, fraction=30)
    with pytest.raises(CheckpointError, match="checkpoint missing"):
        ssl("ssl_on_25", packed, tmp_path, tmp_path / "missing.pt")


# --- a killed run continues in its stage --------------------------------------------------------------------

SSL_SCRIPT = """
import logging
import sys
import torch
torch.set_num_threads(1)
logging.basicConfig(level=logging.INFO)
from hcrlc.selfsup import ssl_job
index, shards, masks, out, pretext = sys.argv[1:]
ssl_job("ssl_on_100", index, shards, masks, out, model_cfg={model_cfg!r}, train_cfg={train_cfg!r},
        fraction=100, pretext_checkpoint=pretext, frozen_epochs=1, finetune_epochs={finetune}, seed=0)
"""
FINETUNE = 10


def ssl_on_100(packed: dict, out: Path, pretext: Path, code_version: str | None = None, **train_overrides) -> dict:
    """The run SSL_SCRIPT makes, in this process."""
    return ssl_job("ssl_on_100", **packed, out_dir=out, model_cfg=TREE_TINY,
                   train_cfg={**tree_cfg(), **train_overrides}, fraction=100, pretext_checkpoint=pretext,
                   frozen_epochs=1, finetune_epochs=FINETUNE, seed=0, code_version=code_version)


@pytest.mark.slow
def test_sigkill_in_the_finetuning_stage_resumes_there(packed, tree_pretext, tmp_path, caplog) -> None:
    caplog.set_level("INFO", logger="hcrlc")
    script = tmp_path / "run_ssl.py"  # not ssl.py: it would shadow the standard library
    script.write_text(SSL_SCRIPT.format(model_cfg=TREE_TINY, train_cfg=tree_cfg(), finetune=FINETUNE))
    killed = tmp_path / "killed"
    victim = subprocess.Popen([sys.executable, str(script), *(str(packed[k]) for k in packed), str(killed),
                               str(tree_pretext)], stderr=subprocess.PIPE, text=True)
    state_path = killed / "resume" / "finetune" / "resume" / "state.pt"
    deadline = time.monotonic() + 60
    while not state_path.exists():
        assert victim.poll() is None, victim.stderr.read()[-3000:]
        assert time.monotonic() < deadline, "no fine-tuning resume state after 60 s"
        time.sleep(0.005)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    victim.stderr.close()
    assert not (killed / "best.pt").exists() and not (killed / "metrics.csv").exists()
    assert (killed / "resume" / "frozen" / "best.pt").is_file()
    killed_after = torch.load(state_path, weights_only=True)["epoch"]
    assert 1 <= killed_after < FINETUNE

    # the finished frozen stage is not continued by a run with another config
    with pytest.raises(CheckpointError, match=r"training\.lr: 0\.01 → 0\.001.*delete the folder"):
        ssl_on_100(packed, killed, tree_pretext, lr=1e-3)
    # nor by other code (the workflow passes its params.code)
    with pytest.raises(CheckpointError, match=r"code_version: None → 'edited'"):
        ssl_on_100(packed, killed, tree_pretext, code_version="edited")
    ssl_on_100(packed, killed, tree_pretext)
    assert "stage frozen already complete" in caplog.text
    assert f"resuming after epoch {killed_after}" in caplog.text
    assert not (killed / "resume").exists()

    whole = tmp_path / "whole"
    ssl_on_100(packed, whole, tree_pretext)
    a, b = (torch.load(d / "best.pt", weights_only=True) for d in (whole, killed))
    assert_same_tensors(a["state_dict"], b["state_dict"])
    assert (a["epoch"], a["stage"], a["value"]) == (b["epoch"], b["stage"], b["value"])
    rows_a, rows_b = (read_metrics(d / "metrics.csv") for d in (whole, killed))
    for ra, rb in zip(rows_a, rows_b, strict=True):
        ra.pop("seconds"), rb.pop("seconds")
        assert ra == rb
    assert [r["stage"] for r in rows_b] == ["frozen"] + ["finetune"] * FINETUNE
    # the killed and resumed stage's curves: each epoch once, on the run's epoch axis
    rows = read_metrics(killed / "metrics.csv")
    for stage_name in ("frozen", "finetune"):
        assert_tensorboard_equals_metrics(killed / "tensorboard" / stage_name,
                                          [r for r in rows if r["stage"] == stage_name])
