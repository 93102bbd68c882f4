"""Listing, per-scene scan, masks and index on a generated tree in the exact real layout — including bad input."""

from __future__ import annotations

import hashlib
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio

from hcrlc.data.clouds import compute_scene_masks
from hcrlc.data.dataset import TripletDataset, prepare_s1, prepare_s2
from hcrlc.data.index import build_index, build_listing
from hcrlc.data.labels import igbp_fractions_from_lc
from hcrlc.data.layout import scene_key, sen12ms_path, sen12mscr_path
from hcrlc.data.shards import scan_scene
from hcrlc.data.splits import is_holdout
from hcrlc.data.summary import summarize
from hcrlc.data.synthetic import generate_trees
from hcrlc.errors import DataError
from hcrlc.paper import TARGET_COLUMNS


def run_stage(ms: Path, cr: Path, work: Path, labels_pkl=None, val_fraction=0.25, val_mode="patches"):
    listing, listing_excluded = build_listing(ms, cr)
    scans, clouds = [], []
    for (season, scene), rows in listing.groupby(["season", "scene"]):
        key = scene_key(season, scene)
        scans.append(scan_scene(rows, work / "shards" / key, progress=False))
        clouds.append(compute_scene_masks(work / "shards" / key, work / "masks" / key, threshold=0.4, engine="fast",
                                          average_over=1, dilation_size=1, progress=False))
    index, excluded = build_index(listing, listing_excluded, scans, clouds, val_fraction=val_fraction, seed=0,
                                  val_mode=val_mode, label_threshold=0.1, labels_pkl=labels_pkl)
    return index, excluded


def tree_digest(*roots: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for r in roots for p in sorted(r.rglob("*"))
            if p.is_file()}


def test_clean_tree_counts_match_independent_expectation(tiny_tree, tmp_path):
    ms, cr, patches = tiny_tree
    before = tree_digest(ms, cr)
    index, excluded = run_stage(ms, cr, tmp_path / "work")
    # independent expectation from the generator's own record of what it wrote
    both = patches[patches.in_sen12ms & patches.in_sen12mscr]
    holdout = np.array([is_holdout(s, c) for s, c in zip(both.season, both.scene)])
    n_train_val = int((~holdout).sum())
    assert len(index) == len(both)
    assert (index.split == "test").sum() == int(holdout.sum())
    assert (index.split == "val").sum() == round(0.25 * n_train_val)
    assert (index.split == "train").sum() == n_train_val - round(0.25 * n_train_val)
    # every patch seen in either tree is in exactly one of index / excluded
    only_one = patches[patches.in_sen12ms != patches.in_sen12mscr]
    assert len(excluded) == len(only_one)
    assert excluded.reason.str.startswith("only in").all()
    seen = set(map(tuple, patches[["season", "scene", "patch"]].to_numpy().tolist()))
    accounted = set(map(tuple, index[["season", "scene", "patch"]].to_numpy().tolist())) | set(
        map(tuple, excluded[["season", "scene", "patch"]].to_numpy().tolist()))
    assert seen == accounted
    # contract columns and value ranges
    for col in ["season", "scene", "patch", "split", "s1", "s2", "s2_cloudy", "lc", "cloud_fraction",
                *TARGET_COLUMNS]:
        assert col in index.columns
    assert index.cloud_fraction.between(0, 1).all()
    assert index[list(TARGET_COLUMNS)].dtypes.eq(bool).all()
    assert index[list(TARGET_COLUMNS)].to_numpy().any(axis=1).all()  # fractions sum to 1 -> some class >= 0.1
    # raw trees untouched (root ignores permissions, so compare content and file set instead)
    assert tree_digest(ms, cr) == before


def test_sen12ms_tree_with_only_lc_folders_gives_the_same_index(tiny_tree, tmp_path):
    """Only the labels come from SEN12MS: its s1/s2 archives (~400 GB of the download) are not needed."""
    ms, cr, _ = tiny_tree
    full, _ = run_stage(ms, cr, tmp_path / "full")
    removed = [d for d in ms.glob("ROIs*/*") if d.is_dir() and d.name.split("_")[0] in ("s1", "s2")]
    assert removed
    for d in removed:
        shutil.rmtree(d)
    lc_only, _ = run_stage(ms, cr, tmp_path / "lc_only")
    cols = ["season", "scene", "patch", "split", "s1", "s2", "s2_cloudy", "lc", "cloud_fraction", *TARGET_COLUMNS]
    assert len(full) > 0
    assert full[cols].reset_index(drop=True).equals(lc_only[cols].reset_index(drop=True))


def test_bad_inputs_are_excluded_with_reasons(tiny_tree, tmp_path):
    ms, cr, patches = tiny_tree
    both = patches[patches.in_sen12ms & patches.in_sen12mscr].reset_index(drop=True)
    victims = [tuple(both.loc[i, ["season", "scene", "patch"]]) for i in range(5)]
    (s0, c0, p0), (s1, c1, p1), (s2, c2, p2), (s3, c3, p3), (s4, c4, p4) = victims

    # 1. truncated cloudy S2
    f = sen12mscr_path(cr, "s2_cloudy", s0, c0, p0)
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 3])
    # 2. wrong band count in clear S2
    f = sen12mscr_path(cr, "s2", s1, c1, p1)
    with rasterio.open(f) as src:
        prof, data = src.profile, src.read()
    prof.update(count=12)
    with rasterio.open(f, "w", **prof) as dst:
        dst.write(data[:12])
    # 3. S1 on another CRS (a neighbouring UTM zone)
    f = sen12mscr_path(cr, "s1", s2, c2, p2)
    with rasterio.open(f) as src:
        prof, data = src.profile, src.read()
    prof.update(crs=rasterio.crs.CRS.from_epsg(prof["crs"].to_epsg() + 1))
    with rasterio.open(f, "w", **prof) as dst:
        dst.write(data)
    # 4. S1 on another grid (shifted by one pixel)
    f = sen12mscr_path(cr, "s1", s3, c3, p3)
    with rasterio.open(f) as src:
        prof, data = src.profile, src.read()
    prof.update(transform=prof["transform"] @ rasterio.Affine.translation(1, 0))
    with rasterio.open(f, "w", **prof) as dst:
        dst.write(data)
    # 5. missing lc
    sen12ms_path(ms, "lc", s4, c4, p4).unlink()

    index, excluded = run_stage(ms, cr, tmp_path / "work")
    reason = {tuple(r[:3]): r[3] for r in excluded[["season", "scene", "patch", "reason"]].itertuples(index=False)}
    assert "unreadable" in reason[victims[0]] and "s2_cloudy" in reason[victims[0]]
    assert "12 bands, expected 13" in reason[victims[1]]
    assert "grid (CRS EPSG:" in reason[victims[2]] and "s1" in reason[victims[2]]
    assert "grid (transform" in reason[victims[3]] and "by 1 px" in reason[victims[3]]
    assert reason[victims[4]] == "missing file: SEN12MS lc"
    for v in victims:
        assert not ((index.season == v[0]) & (index.scene == v[1]) & (index.patch == v[2])).any()
    assert len(index) == len(both) - 5


def test_label_pickle_agrees_with_lc_and_missing_keys_are_excluded(tiny_tree, tmp_path):
    ms, cr, _ = tiny_tree
    ref, _ = run_stage(ms, cr, tmp_path / "a")
    table = {}
    for s, c, p in ref[["season", "scene", "patch"]].itertuples(index=False):
        with rasterio.open(sen12ms_path(ms, "lc", s, c, p)) as src:
            table[f"{Path(sen12ms_path(ms, 's2', s, c, p)).name}"] = igbp_fractions_from_lc(src.read(1))
    dropped = next(iter(table))
    del table[dropped]
    pkl = tmp_path / "IGBP_probability_labels.pkl"
    pkl.write_bytes(pickle.dumps(table))
    index, excluded = run_stage(ms, cr, tmp_path / "b", labels_pkl=pkl)
    assert len(index) == len(ref) - 1
    assert excluded.reason.str.contains("no entry in label file IGBP_probability_labels.pkl").sum() == 1
    merged = ref.merge(index, on=["season", "scene", "patch"], suffixes=("_lc", "_pkl"))
    for col in TARGET_COLUMNS:
        assert (merged[f"{col}_lc"] == merged[f"{col}_pkl"]).all()


def test_missing_tree_names_path_and_fix(tmp_path):
    with pytest.raises(DataError, match="data.sen12ms"):
        build_listing(tmp_path / "nowhere", tmp_path)


def test_dataset_returns_authors_preprocessing(tiny_tree, tmp_path):
    ms, cr, _ = tiny_tree
    work = tmp_path / "work"
    index, _ = run_stage(ms, cr, work)
    ds = TripletDataset(index, work / "shards", work / "masks")
    assert ds.pixel_size_m == 10.0  # the index's res: the GeoTIFFs' transforms
    item = ds[3]
    row = index.iloc[3]
    with rasterio.open(row.s2_cloudy) as src:
        cloudy = src.read()
    with rasterio.open(row.s1) as src:
        s1 = src.read()
    with rasterio.open(row.s2) as src:
        clear = src.read()
    np.testing.assert_allclose(item["x"][:13].numpy(), np.clip(cloudy, 0, 10000) / 10000, rtol=1e-6)
    np.testing.assert_allclose(item["x"][13:].numpy(), prepare_s1(s1), rtol=1e-6)
    np.testing.assert_allclose(item["s2"].numpy(), prepare_s2(clear))
    assert item["x"].shape == (15, 256, 256) and item["mask"].shape == (1, 256, 256)
    assert float(item["mask"].mean()) == pytest.approx(row.cloud_fraction)
    np.testing.assert_array_equal(item["y"].numpy(), row[list(TARGET_COLUMNS)].to_numpy(dtype=np.float32))
    # S1 standardisation: -25 dB clip and NaN -> 0 before standardising
    z = prepare_s1(np.array([[[np.nan]], [[-40.0]]], dtype=np.float32))
    np.testing.assert_allclose(z[:, 0, 0], [(0 + 11.76858) / 4.525339, (-25 + 18.294598) / 4.3586307], rtol=1e-6)
    # ±inf as the authors' np.nan_to_num + clip: to the clip bounds
    z = prepare_s1(np.array([[[-np.inf]], [[np.inf]]], dtype=np.float32))
    np.testing.assert_allclose(z[:, 0, 0], [(-25 + 11.76858) / 4.525339, (0 + 18.294598) / 4.3586307], rtol=1e-6)


def test_summary_reports_per_split_coverage(tiny_tree, tmp_path):
    ms, cr, _ = tiny_tree
    index, excluded = run_stage(ms, cr, tmp_path / "work")
    s = summarize(index, excluded, "synthetic")
    assert s["source"] == "synthetic"
    assert sum(v["n"] for v in s["splits"].values()) == len(index)
    test = index[index.split == "test"].cloud_fraction
    assert s["splits"]["test"]["cloud_mean"] == pytest.approx(test.mean())
    assert s["splits"]["test"]["cloud_std"] == pytest.approx(test.std(ddof=0))


def test_fast_scene_masks_equal_stock_per_patch(tiny_tree, tmp_path):
    ms, cr, _ = tiny_tree
    listing, _ = build_listing(ms, cr)
    rows = listing[(listing.season == "spring") & (listing.scene == 1)]
    shard = tmp_path / "shards" / "spring_1"
    scan_scene(rows, shard, progress=False)
    for params in ({"threshold": 0.4, "average_over": 1, "dilation_size": 1},
                   {"threshold": 0.4, "average_over": 4, "dilation_size": 2}):
        fast = compute_scene_masks(shard, tmp_path / "fast", engine="fast", band_rows=1, progress=False, **params)
        stock = compute_scene_masks(shard, tmp_path / "stock", engine="stock", progress=False, **params)
        np.testing.assert_array_equal(np.load(tmp_path / "fast" / "mask.npy"), np.load(tmp_path / "stock" / "mask.npy"))
        np.testing.assert_array_equal(fast.cloud_fraction, stock.cloud_fraction)
    assert 0 < fast.cloud_fraction.mean() < 1


def test_raw_items_prepared_per_batch_equal_prepared_items(tiny_tree, tmp_path):
    import torch
    from torch.utils.data import default_collate

    from hcrlc.data.dataset import prepare_batch

    ms, cr, _ = tiny_tree
    work = tmp_path / "work"
    index, _ = run_stage(ms, cr, work)
    prepared = TripletDataset(index, work / "shards", work / "masks")
    raw = TripletDataset(index, work / "shards", work / "masks", raw=True)
    rows = [0, 3, 5]
    a = default_collate([prepared[i] for i in rows])
    b = prepare_batch(default_collate([raw[i] for i in rows]))
    assert raw[0]["s2_cloudy"].dtype == torch.uint16 and raw[0]["mask"].dtype == torch.uint8
    for key in ("x", "s2", "mask", "y", "cloud_fraction", "idx"):
        assert torch.equal(a[key], b[key]), key


def test_getitems_batch_equals_collated_raw_items_in_process_and_in_workers(tiny_tree, tmp_path):
    """The loader's one-copy batch (``__getitems__``) holds exactly what ``default_collate`` of the raw items holds,
    built in the main process and in a worker process (shared memory), across scenes and in any order."""
    import torch
    from torch.utils.data import DataLoader, Subset, default_collate

    from hcrlc.data.dataset import collate_items

    ms, cr, _ = tiny_tree
    work = tmp_path / "work"
    index, _ = run_stage(ms, cr, work)
    raw = TripletDataset(index, work / "shards", work / "masks", raw=True)
    assert index["scene"].nunique() > 1  # the batch below mixes scenes
    rows = [len(raw) - 1, 0, 3, 5]
    expected = default_collate([raw.raw_item(i) for i in rows])
    got = raw.__getitems__(rows)
    assert set(got) == set(expected)
    for key in expected:
        assert got[key].dtype == expected[key].dtype and torch.equal(got[key], expected[key]), key
    loader = DataLoader(Subset(raw, rows), batch_size=len(rows), num_workers=1, collate_fn=collate_items)
    (batch,) = list(loader)
    for key in expected:
        assert torch.equal(batch[key], expected[key]), key
    prepared = TripletDataset(index, work / "shards", work / "masks")
    assert isinstance(prepared.__getitems__(rows), list)  # prepared items: default_collate as before
    assert torch.equal(collate_items(prepared.__getitems__(rows))["x"], default_collate([prepared[i] for i in rows])["x"])


def test_training_on_raw_items_equals_training_on_prepared_items(tiny_tree, tmp_path):
    """The GPU path (raw items, batch prepared on the device) trains exactly like the CPU path."""
    import torch

    from hcrlc.training import train_model

    ms, cr, _ = tiny_tree
    work = tmp_path / "work"
    index, _ = run_stage(ms, cr, work)
    cfg = {"widths": [4, 8, 16], "cls_widths": [8]}
    train_cfg = {"epochs": 1, "batch_size": 2, "num_workers": 0, "device": "cpu", "deterministic": True}
    out = {}
    for raw in (False, True):
        ds = {s: TripletDataset(index[index.split == s], work / "shards", work / "masks", raw=raw)
              for s in ("train", "val")}
        train_model("hcr_lc_equal", ds["train"], ds["val"], tmp_path / f"raw{raw}", model_cfg=cfg,
                    train_cfg=train_cfg, progress=False)
        out[raw] = torch.load(tmp_path / f"raw{raw}" / "best.pt", weights_only=True)["state_dict"]
    for key, tensor in out[False].items():
        assert torch.equal(tensor, out[True][key]), key


def test_scene_with_no_usable_triplet_yields_empty_outputs(tiny_tree, tmp_path):
    """A scene folder of SEN12MS-CR whose patches have no SEN12MS counterpart still gets its (empty) scene files."""
    ms, cr, _ = tiny_tree
    listing, listing_excluded = build_listing(ms, cr)
    empty = listing.iloc[:0]
    # no file to read a size from: 0 x 0 px patches, unless the run says which size its patches have
    for patch_px, mask_bytes in ((None, 0), (256, 8192)):
        table = scan_scene(empty, tmp_path / "shards" / "winter_99", progress=False, patch_px=patch_px)
        cloud = compute_scene_masks(tmp_path / "shards" / "winter_99", tmp_path / "masks" / "winter_99",
                                    threshold=0.4, average_over=1, dilation_size=1, progress=False)
        assert len(table) == 0 and len(cloud) == 0 and "patch_px" in table.columns
        assert np.load(tmp_path / "shards" / "winter_99" / "s2_cloudy.npy").shape == (0, 13, patch_px or 0,
                                                                                      patch_px or 0)
        assert np.load(tmp_path / "masks" / "winter_99" / "mask.npy").shape == (0, mask_bytes)
    index, excluded = build_index(listing.iloc[:0], listing_excluded, [table], [cloud], val_fraction=0.1, seed=0,
                                  val_mode="scenes", label_threshold=0.1)
    assert len(index) == 0 and len(excluded) == len(listing_excluded)


# --- the authors' exclusions, grids compared by meaning, scene-level validation -------------------------------

#: a transverse Mercator that matches no EPSG code (so the CRS reads back as WKT, names included), written two ways
CUSTOM_TM_WKT = (
    'PROJCS["Custom TM A",GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563,'
    'AUTHORITY["EPSG","7030"]],AUTHORITY["EPSG","6326"]],PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]],'
    'PROJECTION["Transverse_Mercator"],PARAMETER["latitude_of_origin",0],PARAMETER["central_meridian",15.5],'
    'PARAMETER["scale_factor",0.9996],PARAMETER["false_easting",500000],PARAMETER["false_northing",0],'
    'UNIT["metre",1]]'
)
CUSTOM_TM_PROJ = "+proj=tmerc +lat_0=0 +lon_0=15.5 +k=0.9996 +x_0=500000 +y_0=0 +datum=WGS84 +units=m +no_defs"
TRAP_SCENES = [("spring", 15), ("summer", 146), ("spring", 1), ("fall", 3), ("winter", 9)]


def _patch_files(ms: Path, cr: Path, season: str, scene: int, patch: int) -> list[Path]:
    return ([sen12ms_path(ms, k, season, scene, patch) for k in ("s1", "s2", "lc")]
            + [sen12mscr_path(cr, k, season, scene, patch) for k in ("s1", "s2", "s2_cloudy")])


def _set_crs(path: Path, crs) -> None:
    with rasterio.open(path, "r+") as dst:
        dst.crs = crs


@pytest.fixture(scope="module")
def trap_tree(tmp_path_factory) -> dict:
    """A real-layout tree with traps; returns the roots and the key of each trap.

    - the authors' known broken patch (summer 146 p202; a patch of that scene renamed to it in both trees);
    - an ordinary patch whose S1 holds 3 NaN pixels (one of them NaN in both bands);
    - scene fall_3: SEN12MS-CR files in a custom transverse Mercator, its lc files in the same CRS written as a
      PROJ string (equal CRSs whose text differs), one lc transform off by 1e-4 px (float noise);
    - scene winter_9: every lc file in the neighbouring UTM zone (a real grid mismatch, the whole scene).
    """
    root = tmp_path_factory.mktemp("trap")
    ms, cr = root / "SEN12MS", root / "SEN12MS-CR"
    patches = generate_trees(ms, cr, scenes=TRAP_SCENES, grid=2, seed=5, only_in_one_tree=0)
    by_scene = {key: group.patch.tolist() for key, group in patches.groupby(["season", "scene"])}

    renamed = 202 if 202 in by_scene[("summer", 146)] else by_scene[("summer", 146)][1]
    for f in _patch_files(ms, cr, "summer", 146, renamed):
        f.rename(f.with_name(f.name.replace(f"_p{renamed}.tif", "_p202.tif")))
    patches.loc[(patches.season == "summer") & (patches.scene == 146) & (patches.patch == renamed), "patch"] = 202

    nan_key = ("spring", 1, by_scene[("spring", 1)][2])
    f = sen12mscr_path(cr, "s1", *nan_key)
    with rasterio.open(f) as src:
        prof, data = src.profile, src.read()
    data[0, 5, 7] = data[1, 5, 7] = data[0, 100, 3] = data[1, 200, 250] = np.nan
    with rasterio.open(f, "w", **prof) as dst:
        dst.write(data)

    for patch in by_scene[("fall", 3)]:
        for kind in ("s1", "s2", "s2_cloudy"):
            _set_crs(sen12mscr_path(cr, kind, "fall", 3, patch), rasterio.crs.CRS.from_wkt(CUSTOM_TM_WKT))
        _set_crs(sen12ms_path(ms, "lc", "fall", 3, patch), rasterio.crs.CRS.from_proj4(CUSTOM_TM_PROJ))
    noisy_key = ("fall", 3, by_scene[("fall", 3)][0])
    with rasterio.open(sen12ms_path(ms, "lc", *noisy_key), "r+") as dst:
        dst.transform = dst.transform @ rasterio.Affine.translation(1e-4, -1e-4)

    for patch in by_scene[("winter", 9)]:
        f = sen12ms_path(ms, "lc", "winter", 9, patch)
        with rasterio.open(f) as src:
            zone = src.crs.to_epsg()
        _set_crs(f, rasterio.crs.CRS.from_epsg(zone + 1 if zone % 100 < 60 else zone - 1))
    return {"ms": ms, "cr": cr, "patches": patches, "nan_key": nan_key, "noisy_key": noisy_key,
            "n_winter_9": len(by_scene[("winter", 9)])}


def _keys(frame) -> set[tuple]:
    return set(map(tuple, frame[["season", "scene", "patch"]].to_numpy().tolist()))


def test_trap_tree_exclusions_are_the_authors(trap_tree, tmp_path, caplog):
    caplog.set_level("INFO", logger="hcrlc")
    t = trap_tree
    index, excluded = run_stage(t["ms"], t["cr"], tmp_path / "work", val_mode="scenes")
    reason = {tuple(r[:3]): r[3] for r in excluded[["season", "scene", "patch", "reason"]].itertuples(index=False)}

    # the authors' one dropped patch, by id, with that reason
    assert reason[("summer", 146, 202)].startswith("known broken patch ROIs1868_summer_s2_146_p202")
    # NaN in S1 keeps the patch; the index counts the pixels; the prepared sample is finite (NaN -> 0 dB)
    row = index[(index.season == "spring") & (index.scene == 1) & (index.patch == t["nan_key"][2])]
    assert len(row) == 1 and int(row.s1_nonfinite_px.iloc[0]) == 3
    assert (index.drop(row.index).s1_nonfinite_px == 0).all()
    item = TripletDataset(row, tmp_path / "work" / "shards", tmp_path / "work" / "masks")[0]
    assert torch_isfinite(item["x"]) and float(item["x"][13, 5, 7]) == pytest.approx(11.76858 / 4.525339, rel=1e-6)
    # equal CRSs written differently, and transform noise far below a pixel: the whole of fall_3 is kept
    fall = patches_of(t["patches"], "fall", 3)
    assert fall <= _keys(index) and t["noisy_key"] in _keys(index)
    # a real grid mismatch still excludes, and a scene lost whole is named in one log line with its reason
    winter = patches_of(t["patches"], "winter", 9)
    assert winter <= set(reason) and all("lc grid (CRS EPSG:" in reason[k] for k in winter)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("scene winter_9: all")]
    assert len(lines) == 1
    assert lines[0].startswith(f"scene winter_9: all {t['n_winter_9']} patches excluded: lc grid differs from "
                               "s2_cloudy's")
    # every patch is accounted for, once
    assert _keys(index) | set(reason) == _keys(t["patches"]) and not _keys(index) & set(reason)


def patches_of(patches, season: str, scene: int) -> set[tuple]:
    return _keys(patches[(patches.season == season) & (patches.scene == scene)])


def torch_isfinite(x) -> bool:
    import torch

    return bool(torch.isfinite(x).all())


def test_trap_tree_scene_validation_shares_no_scene_and_no_pixel(trap_tree, tmp_path):
    from hcrlc.data.splits import count_val_overlapping_train

    t = trap_tree
    by_mode = {mode: run_stage(t["ms"], t["cr"], tmp_path / mode, val_fraction=0.2, val_mode=mode)[0]
               for mode in ("scenes", "patches")}
    index = by_mode["scenes"]
    trainval = index[index.split.isin(["train", "val"])]
    val_scenes = set(zip(trainval[trainval.split == "val"].season, trainval[trainval.split == "val"].scene))
    train_scenes = set(zip(trainval[trainval.split == "train"].season, trainval[trainval.split == "train"].scene))
    assert val_scenes and train_scenes and not val_scenes & train_scenes
    assert (trainval.split == "val").sum() >= 0.2 * len(trainval)
    assert count_val_overlapping_train(index) == 0
    # the same tree split by patches: (2 x 2 patches per scene, all overlapping) every val patch touches train
    patches = by_mode["patches"]
    n_val = int((patches.split == "val").sum())
    assert n_val == round(0.2 * len(trainval)) and count_val_overlapping_train(patches) == n_val


def test_summary_compares_counts_with_the_paper_on_real_data_only(tiny_tree, tmp_path):
    from hcrlc.data.summary import counts_line

    ms, cr, _ = tiny_tree
    index, excluded = run_stage(ms, cr, tmp_path / "work")
    n_trainval, n_test = int(index.split.isin(["train", "val"]).sum()), int((index.split == "test").sum())
    real = summarize(index, excluded, "real")
    assert real["counts_vs_paper"] == {
        "trainval": {"ours": n_trainval, "paper": 109_549, "difference": n_trainval - 109_549},
        "test": {"ours": n_test, "paper": 12_666, "difference": n_test - 12_666},
        "match": False,
    }
    line = counts_line(real)
    assert f"train+val {n_trainval:,} (paper 109,549, {n_trainval - 109_549:+,})" in line
    assert f"test {n_test:,} (paper 12,666, {n_test - 12_666:+,})" in line and line.endswith("DIFFER")
    synthetic = summarize(index, excluded, "synthetic")
    assert "counts_vs_paper" not in synthetic
    assert counts_line(synthetic).startswith("synthetic data: split sizes not compared")
    # the paper's counts give "match"
    paper_like = real | {"counts_vs_paper": {k: {"ours": v, "paper": v, "difference": 0}
                                             for k, v in (("trainval", 109_549), ("test", 12_666))} | {"match": True}}
    assert counts_line(paper_like).endswith(": match")


def test_non_finite_s1_is_prepared_alike_on_both_paths():
    """NaN -> 0 dB, +inf -> 0 dB, -inf -> -25 dB on the CPU path and the device path (authors' nan_to_num + clip)."""
    import torch

    from hcrlc.data.dataset import prepare_batch

    s1 = np.full((1, 2, 8, 8), -12.0, dtype=np.float32)
    s1[0, 0, 0, :3] = [np.nan, np.inf, -np.inf]
    s1[0, 1, 4, 4] = np.nan
    batch = {"s1": torch.from_numpy(s1), "s2_cloudy": torch.zeros(1, 13, 8, 8, dtype=torch.uint16),
             "s2": torch.zeros(1, 13, 8, 8, dtype=torch.uint16), "mask": torch.zeros(1, 8, dtype=torch.uint8)}
    on_device = prepare_batch(batch)["x"][0, 13:].numpy()
    np.testing.assert_array_equal(on_device, prepare_s1(s1[0]))
    expected_db = np.array([0.0, 0.0, -25.0], dtype=np.float32)
    np.testing.assert_allclose(on_device[0, 0, :3], (expected_db + 11.76858) / 4.525339, rtol=1e-6)
