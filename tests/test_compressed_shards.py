"""shards.compression: zstd — S2 shards as blosc2 .b2nd give bit-exact arrays, items and masks, in fewer bytes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hcrlc.data.clouds import compute_scene_masks
from hcrlc.data.dataset import TripletDataset, collate_items
from hcrlc.data.index import build_index, build_listing
from hcrlc.data.layout import scene_key
from hcrlc.data.shards import ARRAYS, B2ndRows, check_scene_shard, open_shard, scan_scene, shard_files
from hcrlc.errors import DataError


def pack(tiny_tree, work, compression):
    ms, cr, _ = tiny_tree
    listing, listing_excluded = build_listing(ms, cr)
    scans, clouds = [], []
    for (season, scene), rows in listing.groupby(["season", "scene"]):
        key = scene_key(season, scene)
        scans.append(scan_scene(rows, work / "shards" / key, progress=False, compression=compression))
        clouds.append(compute_scene_masks(work / "shards" / key, work / "masks" / key, threshold=0.4, engine="fast",
                                          average_over=1, dilation_size=1, progress=False))
    index, _ = build_index(listing, listing_excluded, scans, clouds, val_fraction=0.25, seed=0,
                           val_mode="patches", label_threshold=0.1)
    return index


@pytest.fixture(scope="module")
def both(tiny_tree_master, tmp_path_factory):
    root = tmp_path_factory.mktemp("compress")
    return {c: (root / c, pack(tiny_tree_master, root / c, c)) for c in ("none", "zstd")}


def test_zstd_shards_are_bit_exact_and_smaller(both):
    (plain, index), (packed, index_z) = both["none"], both["zstd"]
    assert index.equals(index_z)  # tables, cloud fractions, splits: all from the same pixels
    scenes = sorted(p.name for p in (plain / "shards").iterdir())
    assert scenes
    for scene in scenes:
        assert {p.name for p in (packed / "shards" / scene).iterdir()} == {*shard_files("zstd").values(),
                                                                           "table.parquet"}
        for kind in ARRAYS:
            a, b = open_shard(plain / "shards" / scene, kind), open_shard(packed / "shards" / scene, kind)
            assert isinstance(b, B2ndRows) == (kind != "s1")
            assert (b.shape, b.dtype) == (a.shape, a.dtype)
            for r in range(len(a)):
                np.testing.assert_array_equal(b[r], a[r])
            rows = np.arange(len(a))[::-1]
            np.testing.assert_array_equal(b[rows], a[rows])
        np.testing.assert_array_equal(np.load(packed / "masks" / scene / "mask.npy"),
                                      np.load(plain / "masks" / scene / "mask.npy"))
    size = {c: sum(p.stat().st_size for p in (both[c][0] / "shards").rglob("s2*")) for c in both}
    assert size["zstd"] < size["none"]


@pytest.mark.parametrize("raw", [False, True])
def test_dataset_items_and_batches_equal_on_both_formats(both, raw):
    ds = {c: TripletDataset(index, root / "shards", root / "masks", raw=raw) for c, (root, index) in both.items()}
    for i in range(len(ds["none"])):
        a, b = ds["none"][i], ds["zstd"][i]
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]) or (torch.isnan(a[k]).any() and torch.equal(a[k].nan_to_num(),
                                                                                         b[k].nan_to_num())), k
    if raw:
        batch = list(range(len(ds["none"])))[::-1]
        a, b = collate_items(ds["none"].__getitems__(batch)), collate_items(ds["zstd"].__getitems__(batch))
        for k in a:
            assert torch.equal(a[k].nan_to_num(), b[k].nan_to_num()), k


def test_rescan_with_other_setting_leaves_one_format(tiny_tree_master, both, tmp_path):
    root, _ = both["zstd"]
    scene = min(p.name for p in (root / "shards").iterdir())
    ms, cr, _ = tiny_tree_master
    listing, _ = build_listing(ms, cr)
    season, number = scene.split("_")
    rows = listing[(listing.season == season) & (listing.scene == int(number))]
    out = tmp_path / scene
    scan_scene(rows, out, progress=False, compression="zstd")
    scan_scene(rows, out, progress=False, compression="none")
    assert sorted(p.name for p in out.iterdir()) == sorted([*shard_files("none").values(), "table.parquet"])
    scan_scene(rows, out, progress=False, compression="zstd")
    assert sorted(p.name for p in out.iterdir()) == sorted([*shard_files("zstd").values(), "table.parquet"])
    with pytest.raises(ValueError, match="shards.compression must be one of"):
        scan_scene(rows, out, progress=False, compression="lz4")


def test_damaged_or_missing_b2nd_is_a_data_error_naming_it(both, tmp_path):
    import shutil

    root, _ = both["zstd"]
    scene = min(p.name for p in (root / "shards").iterdir())
    shard = tmp_path / scene
    shutil.copytree(root / "shards" / scene, shard)
    n = check_scene_shard(shard)
    path = shard / "s2_cloudy.b2nd"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # truncated
    with pytest.raises(DataError, match=r"s2_cloudy\.b2nd: not a readable blosc2 array .*--forcerun"):
        check_scene_shard(shard)
    path.write_bytes(b"\0" * len(data))  # overwritten
    with pytest.raises(DataError, match=r"s2_cloudy\.b2nd: not a readable blosc2 array"):
        open_shard(shard, "s2_cloudy")
    path.unlink()
    with pytest.raises(DataError, match=r"s2_cloudy\.npy: array file missing"):
        check_scene_shard(shard)
    (shard / "s2.npy").write_bytes(b"")
    with pytest.raises(DataError, match=r"s2\.b2nd: both s2\.npy and s2\.b2nd exist"):
        open_shard(shard, "s2")
    assert n > 0
