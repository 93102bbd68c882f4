"""Per-scene scan and packing: read every file of a scene once, check it, and pack it into memory-mappable arrays.

A scene's shard folder holds (P = the scene's patch size in px: 256 for SEN12MS)::

    s1.npy         (n, 2, P, P)  float32  S1 backscatter, dB as stored (NaN kept; excluded rows are zeros)
    s2.npy         (n, 13, P, P) uint16   clear S2, reflectance x 10,000
    s2_cloudy.npy  (n, 13, P, P) uint16   cloudy S2, reflectance x 10,000
    table.parquet  one row per listed patch: season, scene, patch, row, ok, reason, x0, y0 (upper-left corner, CRS
                   units), res (pixel size), crs, s1_nonfinite_px, patch_px (P), igbp_1..igbp_17

The patch size is read from the files (:func:`scan_scene`): every file of a scene must have it, and the index
requires one size for the whole tree. Real trees must hold SEN12MS's 256 px patches (the workflow passes
``patch_px=256`` for them); a real scene of another size is an error naming a file.

With ``shards.compression: zstd`` the two S2 arrays are ``s2.b2nd`` and ``s2_cloudy.b2nd`` instead: blosc2 NDArrays
(zstd level :data:`ZSTD_CLEVEL` + byte shuffle, lossless), one chunk per patch and one block per band, ~1.6x
smaller on real L1C pixels (``benchmarks/paper_scale.py``). S1 float32 dB stays ``.npy`` (its mantissas barely
compress). :func:`open_shard` hides the difference: both give ``arr[row]`` / ``arr[rows]`` as numpy.

Row ``row`` of the arrays belongs to the table row with that ``row``. Patches that fail a check keep their row
(zero-filled) with ``ok = False`` and the reason, so nothing is dropped silently. Split-level datasets address
(scene, row) pairs through ``index.parquet``: the per-split view is a concatenation by index, which avoids a
second copy of half a terabyte at paper scale.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from hcrlc.atomic import atomic_output, require_free_space, reserve_space
from hcrlc.data.index import IGBP_COLUMNS, KEY
from hcrlc.data.labels import igbp_fractions_from_lc
from hcrlc.errors import DataError
from hcrlc.paper import LC_BANDS, S1_BANDS, S2_BANDS

if TYPE_CHECKING:  # rasterio is imported where GeoTIFFs are read: jobs that only open shards (masks) skip its import
    import rasterio
    from rasterio.crs import CRS

log = logging.getLogger(__name__)

# GDAL would otherwise write .aux.xml side files next to raw data when statistics are touched: raw trees stay read-only.
os.environ.setdefault("GDAL_PAM_ENABLED", "NO")

#: bands and dtype each file kind must have [MS]
_EXPECTED = {"s1": (S1_BANDS, "float32"), "s2": (S2_BANDS, "uint16"), "s2_cloudy": (S2_BANDS, "uint16"),
             "lc": (LC_BANDS, "uint16")}
#: the arrays a scene shard packs (lc is read only for its labels)
ARRAYS: dict[str, tuple[int, np.dtype]] = {k: (b, np.dtype(d)) for k, (b, d) in _EXPECTED.items() if k != "lc"}


#: values of the config key ``shards.compression``
COMPRESSIONS = ("none", "zstd")
#: the arrays stored compressed when ``shards.compression`` is not "none"
COMPRESSED = ("s2", "s2_cloudy")
#: zstd level of compressed shards: ratio 1.615 on real L1C pixels against 1.597 at level 1 and 1.632 at level 5,
#: whose encoding is ~3x slower (decoding speed hardly depends on the level)
ZSTD_CLEVEL = 3


def shard_files(compression: str = "none") -> dict[str, str]:
    """File name of each packed array (:data:`ARRAYS`) of a scene shard written with ``compression``."""
    if compression not in COMPRESSIONS:
        raise ValueError(f"shards.compression must be one of {COMPRESSIONS}, got {compression!r}")
    return {k: f"{k}.b2nd" if compression != "none" and k in COMPRESSED else f"{k}.npy" for k in ARRAYS}


def _blosc2():
    try:
        import blosc2
    except ImportError as exc:
        raise ImportError(f"compressed shards (shards.compression: zstd, .b2nd files) need blosc2 ({exc}): "
                          "pip install blosc2, or set shards.compression: none and rebuild the shards") from exc
    return blosc2


TABLE_COLUMNS = [*KEY, "row", "ok", "reason", "x0", "y0", "res", "crs", "s1_nonfinite_px", "patch_px",
                 *IGBP_COLUMNS]
#: The four files of a triplet are on one grid when their CRSs are equal and their transforms put the patch's
#: corners within this many pixels of each other.
GRID_TOLERANCE_PX = 1e-3


class PatchRejected(Exception):
    """A patch fails a check; the message is the reason written to excluded.csv."""


@dataclass
class _Read:
    arrays: dict[str, np.ndarray]
    x0: float
    y0: float
    res: float
    crs: str
    s1_nonfinite_px: int
    igbp: np.ndarray


#: the start of the excluded.csv reason of a file whose size is not the scene's (:func:`_read_file`)
SIZE_REASON = "px, expected"


def _read_file(path: str, kind: str, patch_px: int) -> tuple[np.ndarray, rasterio.Affine, CRS | None]:
    import rasterio
    from rasterio.errors import RasterioError

    bands, dtype = _EXPECTED[kind]
    try:
        with rasterio.open(path, "r") as src:
            if src.count != bands:
                raise PatchRejected(f"{kind} has {src.count} bands, expected {bands}: {path}")
            if src.dtypes[0] != dtype:
                raise PatchRejected(f"{kind} has dtype {src.dtypes[0]}, expected {dtype}: {path}")
            if (src.height, src.width) != (patch_px, patch_px):
                raise PatchRejected(f"{kind} is {src.height}x{src.width} {SIZE_REASON} {patch_px}x{patch_px}: {path}")
            data = src.read()
            return data, src.transform, src.crs
    except RasterioError as exc:
        raise PatchRejected(f"{kind} unreadable (truncated or corrupt GeoTIFF: {exc}): {path}") from exc


def file_patch_px(listing: pd.DataFrame) -> int:
    """The patch size (px) of a scene's files: the side of the first listed cloudy S2 that opens and is square, or
    0 when none does (every patch of the scene is then rejected, with the reason of its own file)."""
    import rasterio
    from rasterio.errors import RasterioError

    for path in listing["s2_cloudy"]:
        try:
            with rasterio.open(path, "r") as src:
                if src.height == src.width:
                    return int(src.height)
        except RasterioError:
            continue
    return 0


def grid_offset_px(a: rasterio.Affine, b: rasterio.Affine, size: int) -> float:
    """Largest distance, in pixels of ``a``, between where transforms ``a`` and ``b`` put the four corners of a
    ``size`` x ``size`` px patch (0 for equal transforms; float noise gives ~1e-9)."""
    col = np.array([0.0, size, 0.0, size])
    row = np.array([0.0, 0.0, size, size])
    x, y = b.a * col + b.b * row + b.c, b.d * col + b.e * row + b.f  # corners on the ground by b
    back = ~a
    col_a, row_a = back.a * x + back.b * y + back.c, back.d * x + back.e * y + back.f  # ... in pixels of a
    return float(max(np.abs(col_a - col).max(), np.abs(row_a - row).max()))


def _crs_text(crs: CRS | None) -> str:
    return crs.to_string() if crs else "none"


def read_triplet(paths: dict[str, str], patch_px: int) -> _Read:
    """Read and check one triplet (s1, s2, s2_cloudy from SEN12MS-CR; lc from SEN12MS) of ``patch_px`` px patches.

    Grids are compared by meaning against the cloudy S2's: the CRSs must be equal as coordinate systems (GDAL's
    ``OSRIsSame``, so names and encodings do not matter, the string form is not compared) and the transforms
    must place the patch corners within :data:`GRID_TOLERANCE_PX`. Non-finite S1 values are kept (the authors'
    code reads NaN as 0, :func:`~hcrlc.data.dataset.prepare_s1`) and counted per pixel in ``s1_nonfinite_px``.

    Raises PatchRejected naming the file and the failed check: unreadable, band count, dtype, size, grid.
    """
    arrays, grids = {}, {}
    for kind in ("s1", "s2", "s2_cloudy", "lc"):
        arrays[kind], transform, crs = _read_file(paths[kind], kind, patch_px)
        grids[kind] = (crs, transform)
    ref_crs, ref_transform = grids["s2_cloudy"]
    for kind, (crs, transform) in grids.items():
        if crs != ref_crs:
            same_text = _crs_text(crs) == _crs_text(ref_crs)  # then the WKT shows where they differ
            raise PatchRejected(
                f"{kind} grid (CRS {crs.to_wkt() if same_text else _crs_text(crs)}) differs from s2_cloudy's "
                f"(CRS {ref_crs.to_wkt() if same_text else _crs_text(ref_crs)}): {paths[kind]}")
        offset = grid_offset_px(ref_transform, transform, patch_px)
        if offset > GRID_TOLERANCE_PX:
            raise PatchRejected(f"{kind} grid (transform {tuple(transform)[:6]}) differs from s2_cloudy's "
                                f"(transform {tuple(ref_transform)[:6]}) by {offset:.4g} px: {paths[kind]}")
    s1_nonfinite_px = int((~np.isfinite(arrays["s1"])).any(axis=0).sum())
    return _Read({k: arrays[k] for k in ARRAYS}, ref_transform.c, ref_transform.f, ref_transform.a,
                 _crs_text(ref_crs) if ref_crs else "", s1_nonfinite_px, igbp_fractions_from_lc(arrays["lc"][0]))


def scan_scene(listing: pd.DataFrame, out_dir: str | Path, threads: int = 1, progress: bool = True,
               compression: str = "none", patch_px: int | None = None) -> pd.DataFrame:
    """Read, check and pack every listed triplet of one scene into ``out_dir`` (see module doc). Returns the table.

    listing: rows of ``build_listing`` for one scene (KEY + paths s1, s2, s2_cloudy, lc).
    compression: "none" (``.npy`` memory maps) or "zstd" (S2 as ``.b2nd``, :func:`shard_files`); the files of
    the other format are removed, so a shard never holds both.
    patch_px: the size every patch must have (256 for the real trees); None = the size of the scene's files
    (:func:`file_patch_px`). A file of another size excludes its patch; a scene none of whose patches has the
    size ``patch_px`` asks for, because its files are of another size, is a :class:`DataError` naming a file.
    """
    out_dir = Path(out_dir)
    files = shard_files(compression)
    listing = listing.sort_values(KEY, ignore_index=True)
    if listing[["season", "scene"]].drop_duplicates().shape[0] > 1:
        raise ValueError("scan_scene takes the rows of exactly one scene")
    n = len(listing)
    size = file_patch_px(listing) if patch_px is None else int(patch_px)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    lock = threading.Lock()  # blosc2 arrays are written one chunk at a time, from one thread at a time
    with contextlib.ExitStack() as stack:
        temps = {kind: stack.enter_context(atomic_output(out_dir / name)) for kind, name in files.items()}
        sizes = {kind: n * bands * size * size * dtype.itemsize for kind, (bands, dtype) in ARRAYS.items()}
        # compressed sizes are not known before the pixels are: the uncompressed size is the upper bound asked for
        require_free_space(out_dir, sum(sizes.values()), out_dir / files["s2"],
                           f"the arrays of this scene ({n} patches: {', '.join(files.values())})")
        targets = {}
        for kind, tmp in temps.items():
            bands, dtype = ARRAYS[kind]
            shape = (n, bands, size, size)
            if tmp.suffix == ".b2nd":
                targets[kind] = _create_b2nd(tmp, shape, dtype)
                continue
            targets[kind] = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
            # the memmap's file is sparse: allocate it now, so a full disk is an error here and not a SIGBUS later
            reserve_space(tmp, tmp.stat().st_size, out_dir / files[kind])

        def work(i: int) -> dict:
            rec = listing.iloc[i]
            base = {"season": rec.season, "scene": int(rec.scene), "patch": int(rec.patch), "row": i, "patch_px": size}
            try:
                got = read_triplet({k: rec[k] for k in ("s1", "s2", "s2_cloudy", "lc")}, size)
            except PatchRejected as exc:
                log.warning("excluding %s_%s_p%s: %s", rec.season, rec.scene, rec.patch, exc)
                return {**base, "ok": False, "reason": str(exc), "x0": np.nan, "y0": np.nan, "res": np.nan,
                        "crs": "", "s1_nonfinite_px": 0,
                        **dict.fromkeys(IGBP_COLUMNS, np.nan)}
            if got.s1_nonfinite_px:
                log.info("%s_%s_p%s: s1 holds %d non-finite pixel(s), read as 0 dB when prepared (authors' code)",
                         rec.season, rec.scene, rec.patch, got.s1_nonfinite_px)
            for kind, arr in got.arrays.items():
                if isinstance(targets[kind], np.ndarray):
                    targets[kind][i] = arr
                else:
                    with lock:
                        targets[kind][i] = arr
            return {**base, "ok": True, "reason": "", "x0": got.x0, "y0": got.y0, "res": got.res, "crs": got.crs,
                    "s1_nonfinite_px": got.s1_nonfinite_px, **dict(zip(IGBP_COLUMNS, got.igbp))}

        with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
            rows.extend(tqdm(pool.map(work, range(n)), total=n, desc="scan", unit="patch", disable=not progress,
                             mininterval=2))
        if patch_px is not None:
            _require_patch_size(rows, patch_px)
        for arr in targets.values():
            if isinstance(arr, np.ndarray):
                arr.flush()
        targets.clear()  # drop the memmaps and blosc2 arrays before the files are renamed into place
    for kind, name in shard_files("zstd" if compression == "none" else "none").items():
        if name != files[kind]:
            (out_dir / name).unlink(missing_ok=True)  # the other format's file, from a run with other settings
    # explicit columns: a scene whose patches all lack a counterpart in the other tree still gets a (0-row) table
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS).astype({"ok": bool, "s1_nonfinite_px": np.int64,
                                                               "patch_px": np.int64})
    with atomic_output(out_dir / "table.parquet") as tmp:
        table.to_parquet(tmp, index=False)
    log.info("scene %s: %d patches packed, %d rejected", out_dir.name, int(table.ok.sum()), int((~table.ok).sum()))
    return table


def _require_patch_size(rows: list[dict], patch_px: int) -> None:
    """Refuse a scene whose files are all of another size than ``patch_px`` (a tree that is not SEN12MS as
    published), rather than exclude every patch of it one by one."""
    if not rows or any(row["ok"] for row in rows):
        return
    wrong = [row["reason"] for row in rows if SIZE_REASON in row["reason"]]
    if wrong:
        path = wrong[0].rsplit(": ", 1)[-1]
        raise DataError(path, f"{wrong[0].split(': ')[0]}, and so is every other patch of this scene that could be "
                              f"read ({len(wrong)} of {len(rows)}): SEN12MS and SEN12MS-CR hold {patch_px} px patches",
                        "point data.sen12ms and data.sen12mscr at the published trees (snakemake download fetches "
                        "them), or set both to null for the synthetic tree, whose size synthetic.patch_size sets")


def rebuild_fix(path: Path) -> str:
    """The fix for a damaged workflow output: force the job that wrote it (a scene's shards, masks) to run again."""
    return (f"rebuild it with the job that wrote it: run your snakemake command again with `--forcerun {path}` "
            "added (same target and --configfile options)")


def check_npy(path: str | Path) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype from the header of a ``.npy`` file, after checking it holds every byte the header promises.

    A truncated file would otherwise memory-map with "mmap length is greater than file size" (no file named) or,
    worse, read as zeros past its end. Raises :class:`DataError` naming the file, both sizes and the fix.
    """
    path = Path(path)
    fix = rebuild_fix(path)
    if not path.is_file():
        raise DataError(path, "array file missing", fix)
    try:
        with path.open("rb") as f:
            version = np.lib.format.read_magic(f)
            read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
            if version not in read_header:
                raise ValueError(f"unsupported .npy version {version}")
            shape, _, dtype = read_header[version](f)
            expected = f.tell() + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
            actual = os.fstat(f.fileno()).st_size
    except (ValueError, OSError, SyntaxError) as exc:  # numpy parses the header dict with ast: SyntaxError too
        raise DataError(path, f"not a readable .npy array ({exc}); the file is damaged or truncated", fix) from exc
    if actual != expected:
        raise DataError(path, f"{'truncated' if actual < expected else 'damaged'}: {actual} bytes on disk, its header "
                              f"({shape} {dtype}) needs {expected}", fix)
    return shape, dtype


def _create_b2nd(path: Path, shape: tuple[int, ...], dtype: np.dtype):
    """An all-zero blosc2 NDArray at ``path`` (overwritten): one chunk per patch, one block per band plane."""
    blosc2 = _blosc2()
    cparams = blosc2.CParams(codec=blosc2.Codec.ZSTD, clevel=ZSTD_CLEVEL, filters=[blosc2.Filter.SHUFFLE],
                             filters_meta=[0], typesize=dtype.itemsize)
    return blosc2.zeros(shape, dtype=dtype, chunks=(1, *shape[1:]), blocks=(1, 1, *shape[2:]), urlpath=str(path),
                        mode="w", cparams=cparams)


class B2ndRows:
    """Read-only rows of a ``.b2nd`` shard array, as numpy: ``arr[r]`` (one patch, decoded straight from its chunk)
    and ``arr[rows]`` / ``arr[a:b]`` (blosc2's own indexing). ``shape``, ``dtype``, ``ndim``, ``len`` as numpy's.

    The file is opened memory-mapped on first use in each process (DataLoader workers fork after the dataset is
    built); a chunk that fails to decode raises :class:`DataError` naming the file.
    """

    def __init__(self, path: Path, shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.path, self.shape, self.dtype, self.ndim = path, shape, np.dtype(dtype), len(shape)
        self._array, self._pid = None, None

    def __len__(self) -> int:
        return self.shape[0]

    def _open(self):
        if self._array is None or self._pid != os.getpid():
            self._array, self._pid = _blosc2().open(str(self.path), mode="r", mmap_mode="r"), os.getpid()
        return self._array

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_array": None, "_pid": None}

    def __getitem__(self, key):
        array = self._open()
        try:
            if isinstance(key, (int, np.integer)):
                r = int(key) + self.shape[0] if key < 0 else int(key)
                if not 0 <= r < self.shape[0]:
                    raise IndexError(f"row {key} out of range for {self.shape[0]} rows: {self.path}")
                out = np.empty(self.shape[1:], dtype=self.dtype)
                array.schunk.decompress_chunk(r, out)
                return out
            return np.asarray(array[key])
        except (RuntimeError, ValueError) as exc:
            raise DataError(self.path, f"a chunk does not decode ({exc}); the file is damaged",
                            rebuild_fix(self.path)) from exc


def check_b2nd(path: str | Path) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of a ``.b2nd`` file, after checking it opens as a blosc2 NDArray whose chunks are whole
    patches, one per row, all present. Raises :class:`DataError` naming the file and the fix."""
    path = Path(path)
    fix = rebuild_fix(path)
    if not path.is_file():
        raise DataError(path, "array file missing", fix)
    blosc2 = _blosc2()
    try:
        array = blosc2.open(str(path), mode="r")
        shape, dtype, chunks, nchunks = tuple(array.shape), np.dtype(array.dtype), array.chunks, array.schunk.nchunks
    except Exception as exc:  # blosc2 raises RuntimeError, ValueError, KeyError... on damaged frames
        raise DataError(path, f"not a readable blosc2 array ({type(exc).__name__}: {exc}); the file is damaged or "
                              "truncated", fix) from exc
    if len(shape) < 1 or tuple(chunks) != (1, *shape[1:]) or nchunks != shape[0]:
        raise DataError(path, f"holds {nchunks} chunks of {tuple(chunks)} for shape {shape}, expected one chunk per "
                              "row", fix)
    return shape, dtype


def _shard_path(shard_dir: Path, name: str) -> Path:
    """The file of array ``name`` in a scene shard: ``.npy`` or ``.b2nd``, whichever exists (not both)."""
    npy, b2nd = shard_dir / f"{name}.npy", shard_dir / f"{name}.b2nd"
    if npy.is_file() and b2nd.is_file():
        raise DataError(b2nd, f"both {npy.name} and {b2nd.name} exist: the shard holds arrays of two runs",
                        f"remove the older of the two, or {rebuild_fix(b2nd)}")
    return b2nd if b2nd.is_file() else npy


def check_array(path: str | Path) -> tuple[tuple[int, ...], np.dtype]:
    """:func:`check_b2nd` or :func:`check_npy`, by the file's suffix."""
    return check_b2nd(path) if Path(path).suffix == ".b2nd" else check_npy(path)


def open_shard(shard_dir: str | Path, name: str) -> np.ndarray | B2ndRows:
    """Open one array of a scene shard read-only after checking it: a memory map of ``{name}.npy``, or
    :class:`B2ndRows` of ``{name}.b2nd`` (rows index alike, both return numpy)."""
    path = _shard_path(Path(shard_dir), name)
    shape, dtype = check_array(path)
    if path.suffix == ".b2nd":
        return B2ndRows(path, shape, dtype)
    return np.load(path, mmap_mode="r")


def shard_patch_px(shard_dir: str | Path) -> int:
    """The patch size (px) of a scene shard: the side of its cloudy S2 array (read from the header only)."""
    shape, _ = check_array(_shard_path(Path(shard_dir), "s2_cloudy"))
    return int(shape[-1])


def check_scene_shard(shard_dir: str | Path, rows: np.ndarray | None = None) -> int:
    """Check a scene shard before any of it is read; returns its number of rows ``n``.

    Every array is complete (:func:`check_npy`, :func:`check_b2nd`) with the expected bands and dtype and square
    patches of one size (:func:`shard_patch_px`), all have ``n`` rows, ``table.parquet`` has ``n`` rows, and every
    row number in ``rows`` (e.g. the index's) is below ``n``.
    """
    shard_dir = Path(shard_dir)
    table = shard_dir / "table.parquet"
    n_rows = {}
    side = shard_patch_px(shard_dir)
    for kind, (bands, dtype) in ARRAYS.items():
        path = _shard_path(shard_dir, kind)
        shape, got = check_array(path)
        if len(shape) != 4 or shape[1:] != (bands, side, side) or got != dtype:
            raise DataError(path, f"holds {shape} {got}, expected (n, {bands}, {side}, {side}) {dtype} (the patch "
                                  "size of the scene's s2_cloudy)", rebuild_fix(path))
        n_rows[kind] = shape[0]
    try:
        n_rows["table.parquet"] = pq.read_metadata(table).num_rows
    except (OSError, pa.ArrowException) as exc:
        raise DataError(table, f"unreadable ({exc})", rebuild_fix(table)) from exc
    if len(set(n_rows.values())) != 1:
        raise DataError(shard_dir, f"the scene's files disagree on the number of patches ({n_rows})",
                        rebuild_fix(table))
    n = n_rows["table.parquet"]
    rows = np.asarray([] if rows is None else rows, dtype=np.int64)
    outside = rows[(rows < 0) | (rows >= n)]
    if outside.size:
        raise DataError(table, f"the index addresses row {outside[0]} but the shard holds {n} rows: the index was "
                               "built from other shards", "rebuild the index: snakemake data --forcerun index")
    return n
