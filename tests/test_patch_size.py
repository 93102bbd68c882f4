"""Patch size is a property of the data: at 64 px (and 34 px, whose masks do not fill whole bytes) every consumer
reads it from the shards, the index or the checkpoint; real trees must hold SEN12MS's 256 px patches."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
import torch
from test_data_stage import run_stage
from torch.utils.data import default_collate

from conftest import TINY_SCENES
from hcrlc.data.clouds import compute_scene_masks, grid_positions, pack_masks, packed_bytes, unpack_masks
from hcrlc.data.dataset import TripletDataset, prepare_batch
from hcrlc.data.index import build_index, build_listing
from hcrlc.data.layout import scene_key
from hcrlc.data.shards import open_shard, scan_scene
from hcrlc.data.splits import count_val_overlapping_train
from hcrlc.data.synthetic import generate_trees
from hcrlc.errors import CheckpointError, DataError
from hcrlc.model_card import write_model_card
from hcrlc.pretext import DIRECTIONS, find_neighbours
from hcrlc.tables import table1
from hcrlc.training import load_checkpoint, load_model, train_model

SIZE = 64
GRID = 4
#: depth 2 (64 px -> 16 px centre, 16 -> 14 as the paper's branch starts), a three-pool C-Net (64 -> 8 px)
TINY = {"widths": [4, 8, 8], "cls_widths": [8], "cnet_layers": [4, "M", 8, "M", 8, "M"], "cnet_hidden": [16],
        "cnet_dropout": 0.0}


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> tuple[Path, Path, pd.DataFrame]:
    root = tmp_path_factory.mktemp("tree64")
    patches = generate_trees(root / "SEN12MS", root / "SEN12MS-CR", scenes=TINY_SCENES, grid=GRID, seed=3,
                             only_in_one_tree=1, patch_size=SIZE)
    return root / "SEN12MS", root / "SEN12MS-CR", patches


@pytest.fixture(scope="module")
def stage(tree, tmp_path_factory) -> tuple[pd.DataFrame, Path]:
    ms, cr, patches = tree
    work = tmp_path_factory.mktemp("stage64")
    index, _ = run_stage(ms, cr, work)
    grid = patches[["season", "scene", "patch", "row", "col"]].rename(columns={"row": "grid_row", "col": "grid_col"})
    return index.merge(grid, on=["season", "scene", "patch"]), work


def test_shards_masks_and_index_take_the_size_of_the_files(tree, stage):
    _, _, patches = tree
    index, work = stage
    assert len(index) == int((patches.in_sen12ms & patches.in_sen12mscr).sum())
    assert (index["patch_px"] == SIZE).all()
    for season, scene in TINY_SCENES:
        shard = work / "shards" / scene_key(season, scene)
        n = len(pd.read_parquet(shard / "table.parquet"))
        for name, bands in (("s1", 2), ("s2", 13), ("s2_cloudy", 13)):
            assert open_shard(shard, name).shape == (n, bands, SIZE, SIZE)
        assert np.load(work / "masks" / scene_key(season, scene) / "mask.npy").shape == (n, SIZE * SIZE // 8)


def test_masks_mosaic_the_scene_at_the_datas_stride(stage, tmp_path, caplog):
    index, work = stage
    scene = index[(index.season == "spring") & (index.scene == 1)]
    # the patches' grid positions, from their corners and half the patch size, are the generator's own
    row, col = grid_positions(scene, SIZE // 2)
    assert (row - row.min() == scene.grid_row - scene.grid_row.min()).all()
    assert (col - col.min() == scene.grid_col - scene.grid_col.min()).all()
    # so the fast engine pastes every patch where its overlap agrees (no fallback) and equals stock s2cloudless
    shard = work / "shards" / "spring_1"
    params = {"threshold": 0.4, "average_over": 4, "dilation_size": 2}
    with caplog.at_level("WARNING"):
        fast = compute_scene_masks(shard, tmp_path / "fast", engine="fast", band_rows=2, progress=False, **params)
    assert "classified on their own" not in caplog.text
    stock = compute_scene_masks(shard, tmp_path / "stock", engine="stock", progress=False, **params)
    np.testing.assert_array_equal(np.load(tmp_path / "fast" / "mask.npy"), np.load(tmp_path / "stock" / "mask.npy"))
    np.testing.assert_array_equal(fast.cloud_fraction, stock.cloud_fraction)


def test_dataset_items_and_raw_batches_are_of_the_datas_size(stage):
    index, work = stage
    prepared = TripletDataset(index, work / "shards", work / "masks")
    raw = TripletDataset(index, work / "shards", work / "masks", raw=True)
    assert prepared.patch_px == raw.patch_px == SIZE
    item = prepared[2]
    assert item["x"].shape == (15, SIZE, SIZE) and item["mask"].shape == (1, SIZE, SIZE)
    assert float(item["mask"].mean()) == pytest.approx(index.iloc[2].cloud_fraction)
    rows = [0, 2, 5]
    a = default_collate([prepared[i] for i in rows])
    b = prepare_batch(raw.__getitems__(rows))
    for key in ("x", "s2", "mask", "y"):
        assert torch.equal(a[key], b[key]), key


def test_pretext_neighbours_sit_one_stride_of_the_data_away(stage):
    index, _ = stage
    found = find_neighbours(index)
    pos = {(s, c, r, q): i for i, (s, c, r, q) in enumerate(zip(index.season, index.scene, index.grid_row,
                                                                 index.grid_col))}
    steps = {"north": (-1, 0), "west": (0, -1), "south": (1, 0), "east": (0, 1)}
    for i, (s, c, r, q) in enumerate(zip(index.season, index.scene, index.grid_row, index.grid_col)):
        for d, name in enumerate(DIRECTIONS):
            assert found[i, d] == pos.get((s, c, r + steps[name][0], q + steps[name][1]), -1), (s, c, r, q, name)
    assert (found >= 0).sum() >= 3 * 2 * GRID * (GRID - 1) - 8  # 24 pairs a scene, a few lost to one-tree patches


def test_validation_overlap_reaches_one_patch_of_the_data(stage):
    index, _ = stage
    trainval = index[index.split.isin(["train", "val"])]
    val, train = trainval[trainval.split == "val"], trainval[trainval.split == "train"]
    # by the grid: two patches of one scene share pixels when they are less than two strides apart on both axes
    expected = sum(
        any((t.season, t.scene) == (v.season, v.scene) and abs(t.grid_row - v.grid_row) < 2
            and abs(t.grid_col - v.grid_col) < 2 for t in train.itertuples()) for v in val.itertuples())
    assert 0 < expected == count_val_overlapping_train(index)


def test_a_real_tree_of_another_size_is_refused_naming_a_file(tree, tmp_path):
    ms, cr, _ = tree
    listing, _ = build_listing(ms, cr)
    rows = listing[(listing.season == "spring") & (listing.scene == 1)]
    with pytest.raises(DataError, match=r"is 64x64 px, expected 256x256, and so is every other patch") as err:
        scan_scene(rows, tmp_path / "spring_1", progress=False, patch_px=256)
    assert err.value.path.is_file() and err.value.path.suffix == ".tif"
    assert "data.sen12ms" in err.value.fix
    assert not (tmp_path / "spring_1" / "s2.npy").exists()  # nothing half-written


def test_a_file_of_another_size_than_its_scene_excludes_its_patch(tree, tmp_path):
    ms, cr, _ = tree
    shutil.copytree(ms, tmp_path / "ms")
    shutil.copytree(cr, tmp_path / "cr")
    listing, _ = build_listing(tmp_path / "ms", tmp_path / "cr")
    rows = listing[(listing.season == "spring") & (listing.scene == 1)]
    odd = Path(rows.iloc[3]["s2"])  # not the first: the scene's size is read from its first cloudy S2
    with rasterio.open(odd) as src:
        profile, data = src.profile, src.read()
    profile.update(width=SIZE // 2, height=SIZE // 2)
    with rasterio.open(odd, "w", **profile) as dst:
        dst.write(data[:, : SIZE // 2, : SIZE // 2])
    for patch_px in (None, SIZE):
        table = scan_scene(rows, tmp_path / "spring_1", progress=False, patch_px=patch_px)
        assert (table.patch_px == SIZE).all() and int((~table.ok).sum()) == 1
        assert table.loc[3, "reason"] == f"s2 is 32x32 px, expected 64x64: {odd}"


def test_an_index_of_two_patch_sizes_is_refused(tree, tiny_tree_master, tmp_path):
    scans, clouds, listings, excluded = [], [], [], []
    for ms, cr in (tree[:2], tiny_tree_master[:2]):
        listing, listing_excluded = build_listing(ms, cr)
        listing = listing[(listing.season == "spring") & (listing.scene == 1)]
        out = tmp_path / f"{len(scans)}"
        scans.append(scan_scene(listing, out / "shards", progress=False))
        clouds.append(compute_scene_masks(out / "shards", out / "masks", threshold=0.4, average_over=1,
                                          dilation_size=1, progress=False))
        listings.append(listing.assign(scene=len(scans)))  # two scenes of one "tree"
        scans[-1]["scene"] = clouds[-1]["scene"] = len(scans)
        excluded.append(listing_excluded.iloc[:0])
    with pytest.raises(DataError, match=r"several sizes \(64 px, e\.g\. .*; 256 px, e\.g\. ") as err:
        build_index(pd.concat(listings), pd.concat(excluded), scans, clouds, val_fraction=0.2, seed=0,
                    val_mode="patches", label_threshold=0.1)
    assert "one size" in str(err.value)


@pytest.mark.parametrize("size", [34, 64, 256])
def test_masks_pack_and_unpack_at_any_even_size(size):
    masks = np.random.default_rng(size).random((3, size, size)) < 0.3
    packed = pack_masks(masks)
    assert packed.shape == (3, packed_bytes(size)) == (3, -(-size * size // 8))
    np.testing.assert_array_equal(unpack_masks(packed), masks)  # the size follows from the row length
    np.testing.assert_array_equal(unpack_masks(packed, size), masks)
    with pytest.raises(ValueError, match="bytes"):
        unpack_masks(packed, size + 2)
    # the training device's unpacking drops the padding bits of the last byte (34 * 34 = 1156 bits: 4 spare)
    batch = {"s2_cloudy": torch.zeros(3, 13, size, size, dtype=torch.uint16),
             "s2": torch.zeros(3, 13, size, size, dtype=torch.uint16), "s1": torch.zeros(3, 2, size, size),
             "mask": torch.from_numpy(packed)}
    np.testing.assert_array_equal(prepare_batch(batch)["mask"][:, 0].numpy(), masks)


def test_training_takes_the_datas_size_into_the_checkpoint_the_c_net_and_the_card(stage, tmp_path):
    index, work = stage
    train = TripletDataset(index[index.split == "train"], work / "shards", work / "masks")
    val = TripletDataset(index[index.split == "val"], work / "shards", work / "masks")
    cfg = {"epochs": 1, "batch_size": 8, "device": "cpu", "num_workers": 0}
    train_model("hcr_net", train, val, tmp_path / "hcr_net", model_cfg=TINY, train_cfg=cfg, progress=False)
    train_model("hcr_c_net", train, val, tmp_path / "hcr_c_net", model_cfg=TINY, train_cfg=cfg,
                hcr_checkpoint=tmp_path / "hcr_net" / "best.pt", progress=False)
    best = tmp_path / "hcr_c_net" / "best.pt"
    assert load_checkpoint(best)["patch_size"] == SIZE
    # the C-Net's first Linear takes 8 channels of (64 / 2**3)² px
    assert load_model(best).cnet.classifier[0].in_features == 8 * (SIZE // 8) ** 2
    card = write_model_card(best, tmp_path / "card.json", run="hcr_c_net", data_source="synthetic",
                            splits={"train": len(train), "val": len(val), "test": 0}, training_code=None)
    assert card["patch_size"] == SIZE
    # Table 1 counts the same network at the run's patch size
    counted = table1(TINY, SIZE).set_index("model")
    assert counted.loc["hcr_c_net", "ours"] == card["parameters"]
    assert (counted["patch_px"] == SIZE).all()
    assert table1(TINY, 256).set_index("model").loc["hcr_c_net", "ours"] > card["parameters"]
    # a network meets data of its own size only
    with pytest.raises(CheckpointError, match=r"trained on 64 px patches, the data it is given has 256 px"):
        load_model(best, patch_px=256)
    other = tmp_path / "other.pt"
    torch.save({**torch.load(tmp_path / "hcr_net" / "best.pt", weights_only=True), "patch_size": 32}, other)
    with pytest.raises(CheckpointError, match=r"other.pt was trained on 32 px patches, hcr_c_net trains on 64"):
        train_model("hcr_c_net", train, val, tmp_path / "mismatch", model_cfg=TINY, train_cfg=cfg,
                    hcr_checkpoint=other, progress=False)


def test_a_checkpoint_without_its_patch_size_is_refused(stage, tmp_path):
    index, work = stage
    ds = TripletDataset(index[index.split == "val"], work / "shards", work / "masks")
    cfg = {"epochs": 1, "batch_size": 8, "device": "cpu", "num_workers": 0}
    train_model("lc_net", ds, ds, tmp_path, model_cfg=TINY, train_cfg=cfg, progress=False)
    ckpt = torch.load(tmp_path / "best.pt", weights_only=True)
    del ckpt["patch_size"]
    torch.save(ckpt, tmp_path / "old.pt")
    with pytest.raises(CheckpointError, match=r"old.pt: a best.pt without patch_size"):
        load_checkpoint(tmp_path / "old.pt")
