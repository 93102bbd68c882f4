"""Faults leave no debris and every bad state names itself: full disks, killed writers, truncated shards, trees
that cannot serve a run, no-data pixels, unreadable checkpoints. The workflow cases run the real rules."""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import REPO, SMOKE, snakemake
from hcrlc.atomic import atomic_output, reserve_space, stale_temp_files
from hcrlc.data.clouds import compute_scene_masks
from hcrlc.data.index import ONLY_IN, build_index, build_listing, check_splits
from hcrlc.data.shards import ARRAYS, check_npy, check_scene_shard, scan_scene
from hcrlc.errors import CheckpointError, DataError, DiskFullError
from hcrlc.paper import HOLDOUT_SCENES, PATCH_SIZE

# --- full disks and killed writers ---------------------------------------------------------------------------------


@pytest.fixture
def small_fs(tmp_path):
    """A mounted 8 MiB tmpfs (root only; skipped elsewhere). Yields (mount point, resize(size) function)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root; the fault-injection tests cover the library")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mnt)], check=False,
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")

    def resize(size: str) -> None:
        subprocess.run(["mount", "-o", f"remount,size={size}", str(mnt)], check=True)

    yield mnt, resize
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def hidden_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob(".*") if p.is_file())


def test_atomic_output_removes_stale_temp_files_of_its_own_output_only(tmp_path):
    stale = tmp_path / ".s2.k1ll3d00.npy"  # what a SIGKILL during a write of s2.npy leaves
    others = [tmp_path / ".s2_cloudy.k1ll3d00.npy", tmp_path / ".s2.short.npy", tmp_path / ".s2.k1ll3d00.parquet"]
    for p in [stale, *others]:
        p.write_bytes(b"x" * 10)
    assert stale_temp_files(tmp_path / "s2.npy") == [stale]
    with atomic_output(tmp_path / "s2.npy") as tmp:
        assert not stale.exists()  # removed before the new write starts
        np.save(tmp, np.arange(3))
    assert np.load(tmp_path / "s2.npy").tolist() == [0, 1, 2]
    assert all(p.exists() for p in others)
    assert hidden_files(tmp_path) == sorted(others)


def test_full_disk_is_an_error_naming_path_and_space_on_a_real_small_filesystem(small_fs):
    mnt, _ = small_fs
    # a memory-mapped write: the space is reserved up front instead of a SIGBUS on the first page that does not fit
    with pytest.raises(DiskFullError) as err, atomic_output(mnt / "s2.npy") as tmp:
        np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint16, shape=(64, 13, 64, 64))  # 6.8 MB, fits
        reserve_space(tmp, 50_000_000, mnt / "s2.npy")
    message = str(err.value)
    assert str(mnt / "s2.npy") in message and "50000000 bytes" in message and "free under" in message
    # an ordinary write that fills the disk (numpy reports it without an errno)
    filled = r"mask\.npy: the disk filled up while writing it \(\d+ bytes .* written and \d+ bytes .* free under"
    with pytest.raises(DiskFullError, match=filled), atomic_output(mnt / "mask.npy") as tmp:
        np.save(tmp, np.zeros(20_000_000, dtype=np.uint8))
    assert hidden_files(mnt) == [] and list(mnt.iterdir()) == []


def test_scene_shard_on_full_disk_fails_before_writing_and_leaves_nothing(tiny_tree, tmp_path, monkeypatch):
    """Fault injection (runs everywhere): posix_fallocate answers ENOSPC as a full file system would."""
    ms, cr, _ = tiny_tree
    listing, _ = build_listing(ms, cr)
    rows = listing[(listing.season == "fall") & (listing.scene == 3)]

    def no_space(fd, offset, length):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "posix_fallocate", no_space)
    out = tmp_path / "shards" / "fall_3"
    with pytest.raises(DiskFullError) as err:
        scan_scene(rows, out, progress=False)
    bands, dtype = ARRAYS["s1"]
    needed = len(rows) * bands * PATCH_SIZE * PATCH_SIZE * dtype.itemsize
    assert str(out / "s1.npy") in str(err.value) and f"{needed + 128} bytes" in str(err.value)
    assert list(out.iterdir()) == []


# --- truncated and inconsistent shards ------------------------------------------------------------------------------


def write_empty_shard(shard: Path, n_table_rows: int) -> None:
    """A shard with 0-row arrays and a table of ``n_table_rows`` rows (the smallest inconsistent shard)."""
    shard.mkdir(parents=True)
    for kind, (bands, dtype) in ARRAYS.items():
        np.save(shard / f"{kind}.npy", np.zeros((0, bands, PATCH_SIZE, PATCH_SIZE), dtype=dtype))
    pd.DataFrame({"row": range(n_table_rows)}).to_parquet(shard / "table.parquet")


def test_truncated_array_is_a_data_error_naming_the_file_and_the_fix(tmp_path):
    path = tmp_path / "shards" / "spring_1" / "s2.npy"
    path.parent.mkdir(parents=True)
    np.save(path, np.ones((3, 13, 16, 16), dtype=np.uint16))
    assert check_npy(path) == ((3, 13, 16, 16), np.dtype(np.uint16))
    os.truncate(path, 1000)  # as `truncate -s 1000` does
    with pytest.raises(DataError, match=r"s2\.npy: truncated: 1000 bytes on disk, its header .* needs 20096") as err:
        check_npy(path)
    assert f"--forcerun {path}" in str(err.value)
    os.truncate(path, 20)  # not even a whole header
    with pytest.raises(DataError, match=r"s2\.npy: not a readable \.npy array"):
        check_npy(path)


def test_shard_table_and_arrays_must_agree(tmp_path):
    write_empty_shard(tmp_path / "ok", 0)
    assert check_scene_shard(tmp_path / "ok") == 0
    with pytest.raises(DataError, match=r"index addresses row 0 but the shard holds 0 rows"):
        check_scene_shard(tmp_path / "ok", rows=np.array([0]))
    write_empty_shard(tmp_path / "bad", 2)
    with pytest.raises(DataError, match=r"disagree on the number of patches .*'table.parquet': 2"):
        check_scene_shard(tmp_path / "bad")


# --- no-data pixels of the cloudy S2 ---------------------------------------------------------------------------------


def test_nodata_pixels_are_neither_cloud_nor_clear_and_mostly_nodata_patches_are_excluded(tiny_tree, tmp_path):
    ms, cr, _ = tiny_tree
    listing, listing_excluded = build_listing(ms, cr)
    # a scene with all 4 of its patches in both trees (the generator may send one of a scene's to one tree only)
    (season, scene), rows = max(listing.groupby(["season", "scene"]), key=lambda group: len(group[1]))
    assert len(rows) == 4
    shard = tmp_path / "shards" / f"{season}_{scene}"
    scan = scan_scene(rows, shard, progress=False)
    cloudy = np.load(shard / "s2_cloudy.npy", mmap_mode="r+")
    cut = {0: 77, 1: 180, 2: PATCH_SIZE}  # columns of no-data (all bands 0) on the left of rows 0, 1, 2
    for row, cols in cut.items():
        cloudy[row, :, :, :cols] = 0
    cloudy[3, :12, 5:9, 5:9] = 0  # one band left: still valid data
    cloudy.flush()
    del cloudy
    params = {"threshold": 0.4, "average_over": 1, "dilation_size": 1}
    fast = compute_scene_masks(shard, tmp_path / "fast", engine="fast", progress=False, **params)
    stock = compute_scene_masks(shard, tmp_path / "stock", engine="stock", progress=False, **params)
    np.testing.assert_array_equal(np.load(tmp_path / "fast" / "mask.npy"), np.load(tmp_path / "stock" / "mask.npy"))
    pd.testing.assert_frame_equal(fast, stock)

    # independent expectation from the stored arrays and masks
    from hcrlc.data.clouds import unpack_masks

    dn = np.load(shard / "s2_cloudy.npy")
    masks = unpack_masks(np.load(tmp_path / "fast" / "mask.npy"))
    valid = (dn != 0).any(axis=1)
    for row in range(len(fast)):
        assert fast.nodata_fraction[row] == pytest.approx(1 - valid[row].mean())
        expected = masks[row][valid[row]].mean() if valid[row].any() else np.nan
        np.testing.assert_allclose(fast.cloud_fraction[row], expected)
    assert fast.nodata_fraction[0] == pytest.approx(77 / PATCH_SIZE) and fast.nodata_fraction[3] == 0
    assert np.isnan(fast.cloud_fraction[2])  # no valid pixel: no coverage

    index, excluded = build_index(rows, listing_excluded.iloc[:0], [scan], [fast], val_fraction=0.0, seed=0,
                                  val_mode="patches", label_threshold=0.1)
    reasons = excluded.set_index("patch")["reason"]
    patches = rows.sort_values("patch")["patch"].to_numpy()
    assert set(reasons.index) == {patches[1], patches[2]}
    assert "cloudy S2 is 70.3% no-data (all 13 bands 0), more than masks.max_nodata_fraction 0.5" == reasons[patches[1]]
    assert "100.0% no-data" in reasons[patches[2]]
    kept = index.set_index("patch")
    assert kept.loc[patches[0], "nodata_fraction"] == pytest.approx(77 / PATCH_SIZE)
    assert kept["cloud_fraction"].between(0, 1).all()


def test_max_nodata_fraction_default_is_the_schema_default():
    import inspect

    schema = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
    default = schema["properties"]["masks"]["properties"]["max_nodata_fraction"]["default"]
    assert inspect.signature(build_index).parameters["max_nodata_fraction"].default == default


# --- an index that cannot serve a run ---------------------------------------------------------------------------------


def _keys(season: str, scene: int, n: int, **cols) -> pd.DataFrame:
    return pd.DataFrame({"season": season, "scene": scene, "patch": range(n), **cols})


def test_index_without_holdout_scenes_names_the_empty_split_and_the_missing_season(caplog):
    index = pd.concat([_keys("fall", 3, 8, split=["train"] * 6 + ["val"] * 2)], ignore_index=True)
    excluded = pd.concat([_keys("spring", 15, 5, reason=ONLY_IN["SEN12MS"]),
                          _keys("spring", 1, 4, reason=ONLY_IN["SEN12MS"]),
                          _keys("fall", 3, 1, reason=ONLY_IN["SEN12MS-CR"])], ignore_index=True)
    with pytest.raises(DataError) as err, caplog.at_level(logging.WARNING):
        check_splits(index, excluded, val_fraction=0.25, sen12ms="/data/SEN12MS", sen12mscr="/data/SEN12MS-CR")
    message = str(err.value)
    assert message.startswith("/data/SEN12MS-CR: the test split is empty (no SEN12MS hold-out scene")
    assert "Scenes with usable triplets: fall: 3." in message
    holdout_spring = ", ".join(map(str, sorted(HOLDOUT_SCENES["spring"])))
    assert f"Hold-out scenes missing: spring: {holdout_spring}; summer:" in message
    assert "season spring: in SEN12MS, absent from SEN12MS-CR: 9 patches of 2 scenes excluded" in message
    assert "Fix: give both trees the seasons and scenes of the hold-out list" in message
    # a scene with one patch only in SEN12MS-CR is not a gap; the missing season is one warning line
    assert [r.getMessage() for r in caplog.records] == [
        "season spring: in SEN12MS, absent from SEN12MS-CR: 9 patches of 2 scenes excluded"]


def test_usable_index_passes_and_warns_once_per_scene_missing_from_a_tree(caplog):
    index = pd.concat([_keys("spring", 1, 6, split=["train"] * 5 + ["val"]), _keys("spring", 15, 2, split="test")],
                      ignore_index=True)
    excluded = _keys("spring", 2, 3, reason=ONLY_IN["SEN12MS-CR"])
    with caplog.at_level(logging.WARNING):
        check_splits(index, excluded, val_fraction=0.1, sen12ms="ms", sen12mscr="cr")
    assert [r.getMessage() for r in caplog.records] == [
        "scene spring_2: in SEN12MS-CR, absent from SEN12MS: 3 patches excluded"]


def test_empty_val_split_names_val_fraction():
    index = pd.concat([_keys("spring", 1, 6, split="train"), _keys("spring", 15, 2, split="test")],
                      ignore_index=True)
    with pytest.raises(DataError, match=r"the val split is empty \(split.val_fraction is 0\.0\)"):
        check_splits(index, index.iloc[:0].assign(reason=""), val_fraction=0.0, sen12ms="ms", sen12mscr="cr")
    with pytest.raises(DataError, match=r"val_fraction 0\.05 of 6 train patches rounds to 0.*raise split\.val_fr"):
        check_splits(index, index.iloc[:0].assign(reason=""), val_fraction=0.05, sen12ms="ms", sen12mscr="cr")
    with pytest.raises(DataError, match=r"the train, val and test splits are empty .*usable triplets: none\."):
        check_splits(index.iloc[:0], index.iloc[:0].assign(reason=""), val_fraction=0.1, sen12ms="ms", sen12mscr="cr")


# --- checkpoints ----------------------------------------------------------------------------------------------------


def test_unreadable_checkpoint_gives_our_fix_not_torchs_weights_only_hint(tmp_path):
    import collections

    import torch

    from hcrlc.training import load_checkpoint

    foreign = tmp_path / "foreign.pt"
    torch.save({"state": collections.Counter("abc"), "opt": torch.optim.SGD}, foreign)  # objects, not tensors
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(foreign)
    message = str(err.value)
    assert message.startswith(f"{foreign}: unreadable checkpoint (it holds Python objects")
    assert "Fix: delete it and retrain the model" in message
    assert "weights_only" not in message and "add_safe_globals" not in message
    truncated = tmp_path / "truncated.pt"
    torch.save({"a": torch.zeros(100)}, truncated)
    os.truncate(truncated, 300)
    with pytest.raises(CheckpointError, match=r"truncated\.pt: unreadable checkpoint \(RuntimeError: .*zip"):
        load_checkpoint(truncated)


# --- through the workflow -------------------------------------------------------------------------------------------


def paths_overlay(tmp_path: Path, ms: Path, cr: Path) -> str:
    path = tmp_path / "paths.yaml"
    path.write_text(yaml.safe_dump({"data": {"sen12ms": str(ms), "sen12mscr": str(cr)}}))
    return str(path)


def debris(results: Path) -> list[Path]:
    """Hidden files under results/ other than Snakemake's own directory timestamps."""
    return [p for p in hidden_files(results) if p.name != ".snakemake_timestamp"]


@pytest.mark.slow
def test_tree_without_the_holdout_seasons_stops_at_the_index_before_any_training(tiny_tree, tmp_path):
    ms, cr, _ = tiny_tree
    removed = list(cr.glob("ROIs1158_spring_*"))  # every spring folder of SEN12MS-CR: the hold-out scene spring_15
    assert len(removed) == 3
    for d in removed:
        shutil.rmtree(d)
    work = tmp_path / "work"
    failed = snakemake(work, "train", "--configfile", str(SMOKE), paths_overlay(tmp_path, ms, cr), check=False)
    assert failed.returncode != 0
    log = (work / "results" / "logs" / "index.log").read_text()
    assert "the test split is empty (no SEN12MS hold-out scene has a usable triplet)" in log
    assert "Scenes with usable triplets: fall: 3." in log
    assert re.search(r"WARNING .*season spring: in SEN12MS, absent from SEN12MS-CR: \d+ patches of 2 scenes", log)
    assert not (work / "results" / "data" / "index.parquet").exists()
    assert not (work / "results" / "logs" / "train").exists() and not (work / "results" / "models").exists()


@pytest.mark.slow
def test_full_disk_killed_run_and_truncated_shard_through_the_workflow(small_fs, tiny_tree_master, tmp_path):
    mnt, resize = small_fs
    ms, cr, _ = tiny_tree_master  # read only: the trees stay outside the small file system
    work = mnt / "work"
    args = ("data", "--configfile", str(SMOKE), paths_overlay(tmp_path, ms, cr))

    # 1. 6 MiB: the listing fits, no scene's arrays do (7.9 to 15.7 MB)
    resize("6m")
    failed = snakemake(work, *args, check=False)
    assert failed.returncode != 0
    logs = "".join(p.read_text() for p in (work / "results" / "logs" / "shards").glob("*.log"))
    assert re.search(r"results/shards/(\w+)/s2\.npy: not enough disk space: \d+ bytes \([\d.]+ MiB\) needed for the "
                     r"arrays of this scene .*, \d+ bytes \([\d.]+ MiB\) free under results/shards/\1\. Fix", logs), logs
    assert debris(work / "results") == []

    # 2. space freed, then the run is killed (SIGKILL to Snakemake and its jobs) while a scene's arrays are written
    resize("200m")
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(work), "--cores", "2", *args]
    run = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not list((work / "results" / "shards").glob("spring_*/.s2_cloudy.*.npy")) and run.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    stale = debris(work / "results")
    assert stale, "the kill came too late to leave a writer's temporary files"
    locked = snakemake(work, *args, check=False)
    assert locked.returncode != 0 and "--unlock" in locked.stdout + locked.stderr
    assert all(p.exists() for p in stale)  # no process of the killed run lived on to clean up
    snakemake(work, "--unlock", *args[1:])
    snakemake(work, *args)  # the same command completes
    assert (work / "results" / "data" / "index.parquet").is_file()
    assert debris(work / "results") == []

    # 3. a truncated shard: the training job fails naming the file, before any training step
    os.truncate(work / "results" / "shards" / "spring_1" / "s2.npy", 1000)
    failed = snakemake(work, "results/models/lc_net/best.pt", *args[1:], check=False)
    assert failed.returncode != 0
    log = (work / "results" / "logs" / "train" / "lc_net.log").read_text()
    assert "results/shards/spring_1/s2.npy: truncated: 1000 bytes on disk" in log
    assert "--forcerun results/shards/spring_1/s2.npy" in log
    assert "train /" not in log  # the dataset sizes are logged after the datasets are built: never reached
