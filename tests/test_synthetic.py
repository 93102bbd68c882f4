"""The synthetic trees: real layout, true neighbours, determinism, meaningful content, detectable clouds."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
from scipy import stats

from hcrlc.data.layout import (
    parse_patch_filename,
    patch_filename,
    sen12ms_path,
    sen12mscr_path,
    walk_sen12ms,
    walk_sen12mscr,
)
from hcrlc.data.synthetic import (
    _beta_parameters,
    _cloudiness_levels,
    generate_trees,
    read_truth,
)
from hcrlc.data.synthetic_checks import measure_cloud_iou, write_igbp_probability_labels
from hcrlc.errors import ConfigError
from hcrlc.paper import (
    IGBP_TO_CLASS,
    LC_BANDS,
    PAPER_CLOUD_COVERAGE,
    PIXEL_SIZE_M,
    S1_BANDS,
    S2_BAND_NAMES,
    S2_BANDS,
)

SCENES = [("spring", 1), ("summer", 19), ("fall", 30)]
GRID = 3
STRIDE_M = 128 * PIXEL_SIZE_M
B08 = S2_BAND_NAMES.index("B08")
B02 = S2_BAND_NAMES.index("B02")
B10 = S2_BAND_NAMES.index("B10")


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path, pd.DataFrame]:
    root = tmp_path_factory.mktemp("synthetic")
    df = generate_trees(
        root / "sen12ms",
        root / "sen12mscr",
        SCENES,
        grid=GRID,
        seed=0,
        only_in_one_tree=2,
        truth_dir=root / "truth",
    )
    return root / "sen12ms", root / "sen12mscr", root / "truth", df


def read(path: Path) -> tuple[np.ndarray, rasterio.Affine, rasterio.crs.CRS]:
    with rasterio.open(path) as src:
        return src.read(), src.transform, src.crs


def all_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_layout_is_exact(trees) -> None:
    ms, cr, _, df = trees
    expected = {
        "s1": (S1_BANDS, "float32"),
        "s2": (S2_BANDS, "uint16"),
        "s2_cloudy": (S2_BANDS, "uint16"),
        "lc": (LC_BANDS, "uint16"),
    }
    for root, walk, path_of in ((ms, walk_sen12ms, sen12ms_path), (cr, walk_sen12mscr, sen12mscr_path)):
        files = walk(root)
        assert set(files["kind"]) == ({"s1", "s2", "lc"} if root == ms else {"s1", "s2", "s2_cloudy"})
        n_files = sum(1 for p in root.rglob("*") if p.is_file())
        assert n_files == len(files), "every file in the tree is a patch at its layout path"
        for row in files.itertuples(index=False):
            path = Path(row.path)
            assert parse_patch_filename(path.name) == (row.kind, row.season, row.scene, row.patch)
            assert path == path_of(root, row.kind, row.season, row.scene, row.patch)
            with rasterio.open(path) as src:
                assert (src.count, src.dtypes[0]) == expected[row.kind]
                assert (src.height, src.width) == (256, 256)
                assert src.crs.is_projected
                epsg = src.crs.to_epsg()
                assert 32601 <= epsg <= 32660 or 32701 <= epsg <= 32760, f"{epsg} is not WGS 84 / UTM"
                # 10 m pixels, north up
                assert src.res == (10.0, 10.0) and src.transform.b == src.transform.d == 0 > src.transform.e
    assert len(df) == len(SCENES) * GRID * GRID
    # Both data sets hold the same S1 and clear S2 of a patch, as the real ones do.
    for row in df[df.in_sen12ms & df.in_sen12mscr].head(3).itertuples(index=False):
        for kind in ("s1", "s2"):
            ms_bytes = sen12ms_path(ms, kind, row.season, row.scene, row.patch).read_bytes()
            assert ms_bytes == sen12mscr_path(cr, kind, row.season, row.scene, row.patch).read_bytes()


def test_only_in_one_tree_counts(trees) -> None:
    ms, cr, _, df = trees
    assert int((df.in_sen12ms & ~df.in_sen12mscr).sum()) == 2
    assert int((df.in_sen12mscr & ~df.in_sen12ms).sum()) == 2
    keys = ["season", "scene", "patch"]
    for root, walk, column in ((ms, walk_sen12ms, "in_sen12ms"), (cr, walk_sen12mscr, "in_sen12mscr")):
        files = walk(root)
        expected = set(df.loc[df[column], keys].itertuples(index=False, name=None))
        for kind, group in files.groupby("kind"):
            assert set(group[keys].itertuples(index=False, name=None)) == expected, f"{root.name} {kind}"


def _neighbour_pairs(files: pd.DataFrame) -> list[tuple[Path, Path, str]]:
    """(patch, neighbour, direction) pairs found from the georeferencing alone, never from the ids."""
    origins = {}
    for row in files.itertuples(index=False):
        with rasterio.open(row.path) as src:
            origins[(row.season, row.scene, src.transform.c, src.transform.f)] = Path(row.path)
    pairs = []
    for (season, scene, x, y), path in origins.items():
        for direction, key in (
            ("east", (season, scene, x + STRIDE_M, y)),
            ("south", (season, scene, x, y - STRIDE_M)),
        ):
            if key in origins:
                pairs.append((path, origins[key], direction))
    return pairs


@pytest.mark.parametrize("kind", ["s1", "s2", "lc", "s2_cloudy"])
def test_neighbours_overlap_by_half_and_sit_1280_m_apart(trees, kind: str) -> None:
    ms, cr, *_ = trees
    files = walk_sen12ms(ms) if kind in ("s1", "s2", "lc") else walk_sen12mscr(cr)
    pairs = _neighbour_pairs(files[files["kind"] == kind])
    # 3 scenes x 3x3 patches have 2 x 3 x 2 = 12 pairs each; dropping 2 patches from the tree loses a few.
    assert sum(d == "east" for *_, d in pairs) >= 12 and sum(d == "south" for *_, d in pairs) >= 12
    for path, neighbour, direction in pairs:
        a, ta, crs_a = read(path)
        b, tb, crs_b = read(neighbour)
        assert crs_a == crs_b
        if direction == "east":
            assert (tb.c - ta.c, tb.f - ta.f) == (1280.0, 0.0)
            np.testing.assert_array_equal(a[:, :, 128:], b[:, :, :128])
        else:
            assert (tb.c - ta.c, tb.f - ta.f) == (0.0, -1280.0)
            np.testing.assert_array_equal(a[:, 128:, :], b[:, :128, :])
    # Halves that do not overlap differ: the agreement above is not an artefact of constant images.
    a, *_ = read(pairs[0][0])
    b, *_ = read(pairs[0][1])
    assert not np.array_equal(a[:, :128, :128], b[:, :128, :128])


def test_patch_ids_and_origins_do_not_give_neighbours_away(trees) -> None:
    _, _, _, df = trees
    gaps = 0
    for _, scene in df.groupby(["season", "scene"]):
        ids = scene.sort_values(["row", "col"])["patch"].to_numpy()
        assert np.all(np.diff(ids) > 0), "raster order keeps ids increasing"
        gaps += int(np.sum(np.diff(ids) > 1))
    assert gaps > 0, "some ids are skipped"
    assert df.groupby(["season", "scene"])["patch"].min().nunique() == len(SCENES)
    ms = trees[0]
    origins = set()
    for season, scene in SCENES:
        first = df[(df.season == season) & (df.scene == scene) & df.in_sen12ms].iloc[0]
        _, transform, crs = read(sen12ms_path(ms, "s2", season, scene, int(first.patch)))
        origins.add((crs.to_epsg(), transform.c - first.col * STRIDE_M, transform.f + first.row * STRIDE_M))
    assert len(origins) == len(SCENES), "each scene has its own UTM origin"


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    def make(name: str, seed: int) -> dict[str, bytes]:
        generate_trees(
            tmp_path / name / "ms",
            tmp_path / name / "cr",
            [("winter", 7)],
            grid=1,
            seed=seed,
            only_in_one_tree=0,
            truth_dir=tmp_path / name / "truth",
        )
        return all_files(tmp_path / name)

    first, again, other = make("a", 3), make("b", 3), make("c", 4)
    assert len(first) == 7  # 3 + 3 patch files and one truth file
    assert first == again
    assert not set(first.values()) & set(other.values()), "another seed changes every file"


def test_land_cover_is_coherent_and_drives_both_sensors(trees) -> None:
    ms, _, _, df = trees
    igbp, s2, s1 = [], [], []
    for row in df[df.in_sen12ms].itertuples(index=False):
        igbp.append(read(sen12ms_path(ms, "lc", row.season, row.scene, row.patch))[0][0])
        s2.append(read(sen12ms_path(ms, "s2", row.season, row.scene, row.patch))[0].astype(np.float32) / 1e4)
        s1.append(read(sen12ms_path(ms, "s1", row.season, row.scene, row.patch))[0])
    igbp, s2, s1 = np.stack(igbp), np.stack(s2), np.stack(s1)
    assert igbp.min() >= 1 and igbp.max() <= 17
    # Regions, not salt and pepper: neighbouring pixels almost always share the class.
    assert np.mean(igbp[:, :, 1:] == igbp[:, :, :-1]) > 0.95
    # Palettes rotate over the scenes so that three scenes hold all ten simplified classes.
    for group, ids in IGBP_TO_CLASS.items():
        assert np.isin(igbp, ids).mean() > 0.005, f"{group} missing"

    forest, water, urban = np.isin(igbp, IGBP_TO_CLASS["forest"]), igbp == 17, igbp == 13
    nir, vv, vh = s2[:, B08], s1[:, 0], s1[:, 1]
    assert nir[forest].mean() > 0.2 and nir[water].mean() < 0.05
    assert vv[water].mean() < -17 and vv[urban].mean() > -7 and vv[forest].mean() > vv[water].mean() + 8
    assert vh[forest].mean() > vh[water].mean() + 8
    # Both sensors separate the classes: a nearest-class-mean rule on single pixels beats always guessing the
    # commonest class (about a fifth of the pixels here); S1 less so, as 4.4-look speckle is ±2–3 dB a pixel.
    # (Over seeds 0-5 the S2 rule scores 0.74-0.90 and the commonest class 0.16-0.33, before and after the patch
    # ids got a random stream of their own; seed 0 gives 0.83 and 0.18.)
    for features in (s2.transpose(0, 2, 3, 1), s1.transpose(0, 2, 3, 1)):
        x, y = features.reshape(-1, features.shape[-1]), igbp.ravel()
        classes = np.unique(y)
        centres = np.stack([x[y == k].mean(axis=0) for k in classes])
        sample = np.random.default_rng(0).choice(len(y), 20_000, replace=False)
        nearest = classes[np.argmin(((x[sample, None] - centres[None]) ** 2).sum(-1), axis=1)]
        assert np.mean(nearest == y[sample]) > (0.8 if features.shape[-1] == S2_BANDS else 0.4)


def test_clouds_sit_where_the_truth_says_and_coverage_varies(trees) -> None:
    _, cr, truth_dir, df = trees
    fractions = df["cloud_fraction_true"].to_numpy()
    assert fractions.max() > 0.8 and fractions.max() - fractions.min() > 0.5, "coverage varies over the patches"
    for (season, scene), group in df[df.in_sen12mscr].groupby(["season", "scene"]):
        truth = read_truth(truth_dir, season, scene)
        for row in group.itertuples(index=False):
            mask = truth[row.patch]
            assert mask.mean() == pytest.approx(row.cloud_fraction_true)
            cloudy = (
                read(sen12mscr_path(cr, "s2_cloudy", season, scene, row.patch))[0].astype(np.float32) / 1e4
            )
            clear = read(sen12mscr_path(cr, "s2", season, scene, row.patch))[0].astype(np.float32) / 1e4
            change = cloudy[B02] - clear[B02]
            if mask.mean() > 0.05:
                # Under the mask a bright cloud (~0.3–0.5) covers at least 30 % of the view; only snow (~0.6)
                # can come out darker, so the change is large in magnitude and the cloudy image bright (land is
                # 0.03–0.14 in B02 but for snow and barren; a thin haze over dark land reaches ≈ 0.19).
                assert np.abs(change[mask]).mean() > 0.08 and np.median(cloudy[B02][mask]) > 0.15
                assert (cloudy[B10] - clear[B10])[mask].mean() > 0.01, "high clouds show in the cirrus band"
            if mask.mean() < 0.95:
                # outside the clouds only what separates two dates: gain, aerosol path radiance (up to ≈ 0.04 in
                # B02), phenology, a few changed parcels
                assert abs(np.median(change[~mask])) < 0.05


def test_stock_s2cloudless_finds_the_true_clouds(tmp_path: Path) -> None:
    generate_trees(
        tmp_path / "ms",
        tmp_path / "cr",
        [("spring", 2), ("fall", 5)],
        grid=2,
        seed=1,
        only_in_one_tree=0,
        truth_dir=tmp_path / "truth",
    )
    # Measured on the default demo (config.yaml: 8 scenes x grid 4, seed 0, 126 cloudy patches) with the
    # authors' parameters (0.4, 1, 1): IoU 0.888; with SEN12MS-CR's (0.4, 4, 2): 0.881. This tree: 0.869.
    assert measure_cloud_iou(tmp_path / "cr", tmp_path / "truth") >= 0.6


def test_probability_labels_match_lc_band_1(trees, tmp_path: Path) -> None:
    ms, _, _, df = trees
    out = tmp_path / "IGBP_probability_labels.pkl"
    write_igbp_probability_labels(ms, out)
    with open(out, "rb") as f:
        labels = pickle.load(f)
    present = df[df.in_sen12ms]
    assert set(labels) == {patch_filename("s2", r.season, r.scene, r.patch) for r in present.itertuples()}
    for row in present.itertuples(index=False):
        fractions = labels[patch_filename("s2", row.season, row.scene, row.patch)]
        assert fractions.shape == (17,)
        igbp = read(sen12ms_path(ms, "lc", row.season, row.scene, row.patch))[0][0]
        ids, counts = np.unique(igbp, return_counts=True)
        expected = np.zeros(17)
        expected[ids - 1] = counts / igbp.size
        np.testing.assert_allclose(fractions, expected)


@pytest.mark.parametrize(
    ("scenes", "grid", "only", "message"),
    [
        ([("spring", 1)], 0, 0, "grid"),
        ([], 2, 0, "empty"),
        ([("autumn", 1)], 2, 0, "seasons are"),
        ([("spring", 1), ("spring", 1)], 2, 0, "repeats"),
        ([("spring", 1)], 1, 1, "only_in_one_tree"),
    ],
)
def test_bad_requests_say_what_to_fix(tmp_path: Path, scenes, grid: int, only: int, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        generate_trees(tmp_path / "ms", tmp_path / "cr", scenes, grid=grid, seed=0, only_in_one_tree=only)
    assert not (tmp_path / "ms").exists()


@pytest.mark.parametrize("split", ["train", "test"])
def test_cloudiness_levels_follow_the_papers_coverage_per_split(split: str) -> None:
    mean, std = PAPER_CLOUD_COVERAGE[split]
    levels = _cloudiness_levels(2000, np.random.default_rng(0), mean, std)
    assert levels.min() >= 0.0 and levels.max() <= 1.0
    assert levels.mean() == pytest.approx(mean, abs=0.02) and levels.std() == pytest.approx(std, abs=0.02)
    # stratified: three scenes take one level from each third of the distribution, so they span it
    few = np.sort(_cloudiness_levels(3, np.random.default_rng(1), mean, std))
    thirds = stats.beta.ppf([1 / 3, 2 / 3], *_beta_parameters(mean, std))
    assert few[0] <= thirds[0] <= few[1] <= thirds[1] <= few[2]


def test_clear_areas_of_the_cloudy_image_differ_as_another_date_does(trees) -> None:
    """Outside the true clouds the cloudy S2 is another acquisition: not the clear image plus sensor noise."""
    _, cr, truth_dir, df = trees
    errors = []
    for row in df[df.in_sen12mscr].itertuples(index=False):
        mask = read_truth(truth_dir, row.season, row.scene)[row.patch]
        if mask.mean() > 0.5:
            continue
        cloudy = read(sen12mscr_path(cr, "s2_cloudy", row.season, row.scene, row.patch))[0].astype(np.float32)
        clear = read(sen12mscr_path(cr, "s2", row.season, row.scene, row.patch))[0].astype(np.float32)
        errors.append((((cloudy - clear) / 1e4)[:, ~mask] ** 2).mean())
    assert errors, "no mostly clear patch in the fixture"
    psnr = 10 * np.log10(1 / np.mean(errors))
    # sensor noise alone (0.004 per date) would give ≈ 45 dB; two real dates differ by a few percent
    assert 25 < psnr < 40


# --- patch size: a property of the generated data ---------------------------------------------------------------


def _scene_files(root: Path, size: int, grid: int) -> tuple[pd.DataFrame, Path, Path]:
    df = generate_trees(root / "ms", root / "cr", [("spring", 1)], grid=grid, seed=5, only_in_one_tree=0,
                        truth_dir=root / "truth", patch_size=size)
    return df, root / "ms", root / "cr"


def test_other_patch_sizes_cut_the_canvas_with_half_a_patch_stride(tmp_path: Path) -> None:
    df, ms, cr = _scene_files(tmp_path, 32, 3)
    assert len(df) == 9
    truth = read_truth(tmp_path / "truth", "spring", 1)
    origin = {}
    for row in df.itertuples(index=False):
        for kind in ("s1", "s2", "lc"):
            data, transform, _ = read(sen12ms_path(ms, kind, row.season, row.scene, row.patch))
            assert data.shape[1:] == (32, 32)
        cloudy, transform, _ = read(sen12mscr_path(cr, "s2_cloudy", row.season, row.scene, row.patch))
        assert cloudy.shape == (S2_BANDS, 32, 32) and truth[row.patch].shape == (32, 32)
        origin[(row.row, row.col)] = (transform.c, transform.f, cloudy)
    # a neighbour starts 16 px (160 m) further on and shares half the patch
    (x, y, a), (xe, ye, east) = origin[(1, 1)], origin[(1, 2)]
    assert (xe - x, ye - y) == (16 * PIXEL_SIZE_M, 0.0)
    np.testing.assert_array_equal(a[:, :, 16:], east[:, :, :16])


def test_the_ground_depends_on_the_canvas_not_on_how_it_is_cut(tmp_path: Path) -> None:
    # a 160 px canvas cut into 4 x 4 patches of 64 px and into 9 x 9 patches of 32 px: the same ground, pixel for
    # pixel (patch size 256 with grid 4 and 64 with grid 19 share a 640 px canvas the same way)
    big, big_ms, big_cr = _scene_files(tmp_path / "64", 64, 4)
    small, small_ms, small_cr = _scene_files(tmp_path / "32", 32, 9)
    big_truth, small_truth = read_truth(tmp_path / "64" / "truth", "spring", 1), read_truth(
        tmp_path / "32" / "truth", "spring", 1)
    at = {(row.row, row.col): row.patch for row in small.itertuples(index=False)}
    for row in big.itertuples(index=False):
        # the small patch at twice the grid position starts at the same canvas pixel: the big one's top-left quarter
        twin = at[(2 * row.row, 2 * row.col)]
        for root_big, root_small, path_of, kinds in ((big_ms, small_ms, sen12ms_path, ("s1", "s2", "lc")),
                                                     (big_cr, small_cr, sen12mscr_path, ("s2_cloudy",))):
            for kind in kinds:
                a, ta, crs_a = read(path_of(root_big, kind, "spring", 1, row.patch))
                b, tb, crs_b = read(path_of(root_small, kind, "spring", 1, twin))
                assert (crs_a, ta) == (crs_b, tb)
                np.testing.assert_array_equal(a[:, :32, :32], b)
        np.testing.assert_array_equal(big_truth[row.patch][:32, :32], small_truth[twin])


def test_an_odd_patch_size_is_refused_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="synthetic.patch_size"):
        generate_trees(tmp_path / "ms", tmp_path / "cr", [("spring", 1)], grid=2, seed=0, patch_size=63)


# --- pixel size: the scale model's coarser pixels over the same kind of ground -------------------------------------


@pytest.fixture(scope="module")
def pixel_sizes(tmp_path_factory: pytest.TempPathFactory) -> dict[int, tuple[Path, pd.DataFrame]]:
    """Two scenes of 64 px patches on the same 256 px canvas (grid 7), at 10 m and at 40 m pixels, same seed."""
    root = tmp_path_factory.mktemp("pixel_size")
    out = {}
    for metres in (10, 40):
        df = generate_trees(root / f"{metres}" / "ms", root / f"{metres}" / "cr", [("spring", 1), ("fall", 30)],
                            grid=7, seed=6, only_in_one_tree=0, patch_size=64, pixel_size_m=metres)
        out[metres] = (root / f"{metres}" / "ms", df)
    return out


def test_40_m_pixels_are_written_so_and_neighbours_sit_half_a_patch_of_them_apart(pixel_sizes) -> None:
    ms, df = pixel_sizes[40]
    origin = {}
    for row in df.itertuples(index=False):
        for kind in ("s1", "s2", "lc"):
            data, transform, _ = read(sen12ms_path(ms, kind, row.season, row.scene, row.patch))
            assert (transform.a, -transform.e, data.shape[1:]) == (40.0, 40.0, (64, 64))
        origin[(row.scene, row.row, row.col)] = (transform.c, transform.f, data)
    # the east and south neighbours start 32 px of 40 m (1280 m, what 128 px of 10 m span) further on and share half
    (x, y, lc), (xe, ye, east), (xs, ys, south) = (origin[(1, 3, 3)], origin[(1, 3, 4)], origin[(1, 4, 3)])
    assert (xe - x, ye - y) == (32 * 40.0, 0.0) and (xs - x, ys - y) == (0.0, -32 * 40.0)
    np.testing.assert_array_equal(lc[:, :, 32:], east[:, :, :32])
    np.testing.assert_array_equal(lc[:, 32:], south[:, :32])


def _lc_and_s1(ms: Path, df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """IGBP (n, 64, 64) and S1 VV dB (n, 64, 64) of every patch."""
    lc = [read(sen12ms_path(ms, "lc", r.season, r.scene, r.patch))[0][0] for r in df.itertuples(index=False)]
    vv = [read(sen12ms_path(ms, "s1", r.season, r.scene, r.patch))[0][0] for r in df.itertuples(index=False)]
    return np.stack(lc), np.stack(vv)


def _speckle_db_std(looks: float) -> float:
    """Std (dB) of 10 log10 of L-look gamma speckle of mean 1: 10 / ln 10 · sqrt(trigamma(L))."""
    from scipy.special import polygamma

    return float(10 / np.log(10) * np.sqrt(polygamma(1, looks)))


def test_regions_are_smaller_in_pixels_and_speckle_weaker_at_40_m(pixel_sizes) -> None:
    (lc10, vv10), (lc40, vv40) = (_lc_and_s1(*pixel_sizes[m]) for m in (10, 40))
    # class boundaries per pixel: ~4x as many at 40 m, where a region ~1-2 km across is 4x fewer pixels wide
    # (measured 3.2-3.3 over seeds 5 and 6: the ragged detail of the borders is finer than the 40 m pixel)
    boundaries = {m: (lc[:, :, 1:] != lc[:, :, :-1]).mean() for m, lc in ((10, lc10), (40, lc40))}
    assert 2.5 < boundaries[40] / boundaries[10] < 5.0, boundaries
    # S1: speckle of 4.4 looks per 10 m pixel; a 40 m pixel averages 16 of them (70.4 looks). Differences of
    # neighbours in one region: sqrt(2) x the speckle's std (plus the texture's share)
    steps = {m: np.diff(vv, axis=2)[lc[:, :, 1:] == lc[:, :, :-1]].std() for m, lc, vv in ((10, lc10, vv10),
                                                                                      (40, lc40, vv40))}
    assert steps[10] == pytest.approx(np.sqrt(2) * _speckle_db_std(4.4), rel=0.05)
    assert np.sqrt(2) * _speckle_db_std(4.4 * 16) < steps[40] < 0.35 * steps[10], steps


def test_pixels_finer_than_sen12ms_are_refused_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"synthetic.pixel_size_m must be >= 10.*got 5"):
        generate_trees(tmp_path / "ms", tmp_path / "cr", [("spring", 1)], grid=2, seed=0, pixel_size_m=5)
    assert not (tmp_path / "ms").exists()
