"""s2cloudless's cloud probabilities and masks, exactly, at ≥ 20× the speed of stock per core.

Stock s2cloudless (``S2PixelCloudDetector(all_bands=True)``) feeds each pixel's 10 model bands, as float32
reflectance, through a LightGBM forest (170 trees of 770 leaves) and takes the sigmoid of the summed leaf values;
masks are that probability, optionally averaged over a disk, thresholded and dilated. Our inputs are integer DN
(reflectance ×10,000, clipped to [0, 10000] as stock is fed: ``float32(clip(dn, 0, 10000)) / 10000``), and that
makes an exact shortcut possible:

* **Bins.** A tree only asks ``x <= t`` for at most 255 distinct thresholds ``t`` per band. For every DN
  0…10000 we look up once which threshold bin its float value falls in — computed with the very float32 → float64
  arithmetic LightGBM uses — so ``code(dn) <= j`` ⇔ ``x(dn) <= t_j`` for every split: one byte per band and pixel
  reproduces every decision of the float model.
* **Bit-sliced trees.** Pixels are grouped in 8 × 8 squares (one 64-bit word) inside 64 × 64 super blocks. A tree
  is walked breadth-first once per super block: each visited node holds the list of (word, pixel bit-mask) that
  reach it, one SIMD compare of 64 bin codes splits a word's mask between the two children, and a leaf adds its
  value to the pixels of its masks (AVX2: via one leaf "slot" byte per pixel and a dense pass after the tree). Neighbouring pixels share most of their paths, so a tree costs about 0.6 node
  visits per pixel instead of ~18 — and no pixel ever takes a shortcut: each still gets exactly its own leaf.
* **Same sums.** Leaf values are added per pixel in double precision in tree order, starting from 0.0, and the
  probability is ``float32(1 / (1 + exp(-sigmoid · sum)))`` with the C library's ``exp`` — LightGBM's arithmetic
  step by step, so the probabilities are identical (tests assert it against stock on random, edge-value and real
  Sentinel-2 pixels).

The kernel is C, ``fast_cloud.c`` beside this module (package data), compiled on first use with the system C
compiler (``cc``/``gcc``/``clang``; no Python headers) into ``~/.cache/hcrlc/`` (``$HCRLC_CACHE_DIR`` overrides); later processes load the cached
library. It contains three interchangeable variants chosen at run time: ``avx512`` (AVX-512BW), ``avx2`` and
``portable`` (plain C with 64-bit SWAR compares, any CPU). Without a C compiler the fast engine logs a warning once
and falls back to stock, which gives the same results, slowly.

Postprocessing (disk averaging, threshold, dilation) is s2cloudless's own ``get_mask_from_prob``, per patch.
:func:`scene_cloud_masks` adds a structural lever: the patches of a scene overlap by 50 % (stride P / 2), so it
classifies each ground pixel of the scene mosaic once, cuts every patch's probabilities back out and postprocesses
per patch — equal to per-patch stock, because a probability depends only on its own pixel's DN.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import importlib.resources
import importlib.util
import itertools
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hcrlc.errors import ConfigError, DataError
from hcrlc.paper import MASK_PRESETS

log = logging.getLogger(__name__)

#: s2cloudless.utils.MODEL_BAND_IDS — the model's bands B01 B02 B04 B05 B08 B8A B09 B10 B11 B12 among the 13.
MODEL_BAND_IDS: tuple[int, ...] = (0, 1, 3, 4, 7, 8, 9, 10, 11, 12)
#: s2cloudless.cloud_detector.MODEL_FILENAME, inside the installed package's ``models/`` folder.
MODEL_FILENAME = "pixel_s2_cloud_detector_lightGBM_v0.1.txt"
#: DN of reflectance 1.0 (SEN12MS / SEN12MS-CR store reflectance ×10,000); stock is fed clip(dn, 0, DN_MAX) / DN_MAX.
DN_MAX = 10_000
N_BANDS = 13
ENGINES: tuple[str, ...] = ("fast", "stock")
#: Kernel variants in order of preference; "auto" picks the first the CPU runs.
KERNELS: tuple[str, ...] = ("avx512", "avx2", "portable")
_KERNEL_IDS = {"portable": 0, "avx2": 1, "avx512": 2}
_AUTHORS = MASK_PRESETS["authors"]

# --------------------------------------------------------------------------------------------------------------
# The C kernel (fast_cloud.c). Bump _ABI, here and in hcrlc_abi(), when the signature of hcrlc_cloud_probabilities
# or model_t changes.
# --------------------------------------------------------------------------------------------------------------
_ABI = 1


@functools.lru_cache(maxsize=1)
def kernel_source() -> str:
    """The kernel's C source, shipped as package data next to this module."""
    return importlib.resources.files(__package__).joinpath("fast_cloud.c").read_text(encoding="utf-8")


class _Model(ctypes.Structure):
    _fields_ = [
        ("n_trees", ctypes.c_int32),
        ("n_features", ctypes.c_int32),
        ("node_off", ctypes.c_void_p),
        ("leaf_off", ctypes.c_void_p),
        ("nodes", ctypes.c_void_p),
        ("value", ctypes.c_void_p),
        ("lut", ctypes.c_void_p),
        ("bands", ctypes.c_void_p),
        ("sigmoid", ctypes.c_double),
    ]


_NODE_DTYPE = np.dtype([("left", "<i2"), ("right", "<i2"), ("feat", "i1"), ("thr", "i1")])


# --------------------------------------------------------------------------------------------------------------
# The forest: LightGBM model text -> bins, lookup tables and compact nodes.
# --------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Forest:
    """s2cloudless's booster in the kernel's form.

    ``thresholds[f]``: the sorted distinct split thresholds (float64) of feature ``f``; ``lut[f, dn]``: the number
    of those below ``x(dn) = float64(float32(dn) / float32(10000))``, so a split ``x <= thresholds[f][j]`` goes
    left exactly when ``lut[f, dn] <= j``. ``nodes``: per tree, LightGBM's internal nodes with children as in the
    model text (``< 0``: ``~leaf``) and the split's bin ``j`` (stored ``^ 0x80``).
    """

    n_trees: int
    n_features: int
    sigmoid: float
    thresholds: tuple[np.ndarray, ...]
    lut: np.ndarray  # (n_features, DN_MAX + 1) uint8
    node_off: np.ndarray  # (n_trees,) int32
    leaf_off: np.ndarray  # (n_trees,) int32
    nodes: np.ndarray  # _NODE_DTYPE
    values: np.ndarray  # float64 leaf values, tree after tree
    bands: np.ndarray  # (n_features,) int32, band index among the 13

    def as_struct(self) -> _Model:
        return _Model(self.n_trees, self.n_features, self.node_off.ctypes.data, self.leaf_off.ctypes.data,
                      self.nodes.ctypes.data, self.values.ctypes.data, self.lut.ctypes.data,
                      self.bands.ctypes.data, self.sigmoid)


def dn_to_model_input(dn: np.ndarray) -> np.ndarray:
    """Reflectance as stock s2cloudless is fed it: ``float32(clip(dn, 0, 10000)) / 10000`` (same shape)."""
    return np.clip(dn, 0, DN_MAX).astype(np.float32) / np.float32(DN_MAX)


def _unsupported(path: Path, what: str) -> DataError:
    return DataError(path, f"the LightGBM model uses {what}, which the fast engine does not reproduce",
                     "use engine='stock' for this model")


def parse_forest(text: str, path: str | Path = "<model text>") -> Forest:
    """The kernel's form of a LightGBM binary model given as model text (``Booster.model_to_string()``)."""
    path = Path(path)
    header, _, body = text.partition("\nTree=")
    head = dict(line.split("=", 1) for line in header.splitlines() if "=" in line)
    objective = head.get("objective", "").split()
    if not objective or objective[0] != "binary" or head.get("num_class", "1") != "1" \
            or head.get("num_tree_per_iteration", "1") != "1":
        raise _unsupported(path, f"objective {head.get('objective')!r} / {head.get('num_class')} classes "
                                 "(only binary is supported)")
    sigmoid = next((float(tok.split(":", 1)[1]) for tok in objective[1:] if tok.startswith("sigmoid:")), 1.0)
    n_features = int(head["max_feature_idx"]) + 1
    if n_features != len(MODEL_BAND_IDS):
        raise _unsupported(path, f"{n_features} features (s2cloudless's model has {len(MODEL_BAND_IDS)})")
    trees = []
    for block in body.split("end of trees", 1)[0].split("\nTree="):  # each block: "<index>\nkey=value\n..."
        kv = dict(line.split("=", 1) for line in block.strip().splitlines()[1:] if "=" in line)
        if int(kv.get("num_cat", "0")) or int(kv.get("is_linear", "0")):
            raise _unsupported(path, "categorical splits or linear trees")
        leaves = np.array(kv["leaf_value"].split(), dtype=np.float64)
        if int(kv["num_leaves"]) == 1:
            trees.append((np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64), np.zeros(0, np.int64), leaves))
            continue
        decision = np.array(kv["decision_type"].split(), dtype=np.int64)
        # bit 0: categorical; bits 2-3: missing type (0 = none: NaN -> 0.0, plain `x <= t`); bit 1 (default
        # left) only matters for missing values, which DN inputs never are.
        if np.any(decision & 1) or np.any((decision >> 2) & 3):
            raise _unsupported(path, "categorical splits or missing-value handling")
        trees.append((np.array(kv["split_feature"].split(), dtype=np.int64),
                      np.array(kv["threshold"].split(), dtype=np.float64),
                      np.array(kv["left_child"].split(), dtype=np.int64),
                      np.array(kv["right_child"].split(), dtype=np.int64), leaves))
    if not trees:
        raise DataError(path, "no trees in the LightGBM model text", "point the fast engine at a trained model")
    thresholds = []
    for f in range(n_features):
        used = np.unique(np.concatenate([thr[feat == f] for feat, thr, *_ in trees]))
        if len(used) > 255 or not np.all(np.isfinite(used)):
            raise _unsupported(path, f"{len(used)} thresholds on feature {f} (at most 255 finite fit a byte)")
        thresholds.append(used)
    x = (np.arange(DN_MAX + 1, dtype=np.float32) / np.float32(DN_MAX)).astype(np.float64)  # LightGBM widens float32
    lut = np.stack([np.searchsorted(t, x, side="left") for t in thresholds]).astype(np.uint8)
    records, node_off, leaf_off, values, n_nodes, n_leaves = [], [], [], [], 0, 0
    for feat, thr, left, right, leaves in trees:
        rec = np.zeros(max(len(feat), 1), dtype=_NODE_DTYPE)  # a single-leaf tree: one record {0, 0}
        if len(feat):
            if len(feat) >= 2**15:
                raise _unsupported(path, f"a tree of {len(feat)} nodes (at most 32767 fit the node format)")
            bins = np.array([np.searchsorted(thresholds[f], t) for f, t in zip(feat, thr)])
            assert all(thresholds[f][j] == t for f, t, j in zip(feat, thr, bins)), "threshold lost in binning"
            rec["left"], rec["right"], rec["feat"] = left, right, feat
            rec["thr"] = (bins ^ 0x80).astype(np.uint8).view(np.int8)
        records.append(rec)
        node_off.append(n_nodes)
        leaf_off.append(n_leaves)
        values.append(leaves)
        n_nodes += len(rec)
        n_leaves += len(leaves)
    return Forest(n_trees=len(trees), n_features=n_features, sigmoid=sigmoid, thresholds=tuple(thresholds),
                  lut=np.ascontiguousarray(lut), node_off=np.array(node_off, np.int32),
                  leaf_off=np.array(leaf_off, np.int32), nodes=np.concatenate(records),
                  values=np.concatenate(values), bands=np.array(MODEL_BAND_IDS, np.int32))


def stock_model_path() -> Path:
    """The booster file shipped with the installed s2cloudless (found without importing it: that takes ~1.5 s)."""
    spec = importlib.util.find_spec("s2cloudless")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("s2cloudless", "the package is not installed", "pip install s2cloudless")
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / MODEL_FILENAME
    if not path.is_file():
        raise DataError(path, "s2cloudless's model file is missing", "reinstall s2cloudless")
    return path


#: Bump when :class:`Forest` or :func:`parse_forest` changes: the cached forests of older code are then ignored.
_FOREST_CACHE_FORMAT = "1"


@functools.lru_cache(maxsize=1)
def stock_forest() -> Forest:
    """s2cloudless's own booster in the kernel's form.

    Parsing the model text takes ~0.3 s of CPU, a third of a mask job's start-up, so the arrays are kept in
    ``cache_dir()`` (``forest-<sha256 of the model text and the cache format>.npz``) and later processes load them
    (~5 ms). A cache file that cannot be read is parsed again and rewritten.
    """
    path = stock_model_path()
    text = path.read_text()
    key = hashlib.sha256(f"{_FOREST_CACHE_FORMAT}\n{text}".encode()).hexdigest()[:16]
    cached = cache_dir() / f"forest-{key}.npz"
    try:
        with np.load(cached) as z:
            n_features = int(z["n_features"])
            return Forest(n_trees=int(z["n_trees"]), n_features=n_features, sigmoid=float(z["sigmoid"]),
                          thresholds=tuple(z[f"thresholds_{f}"] for f in range(n_features)), lut=z["lut"],
                          node_off=z["node_off"], leaf_off=z["leaf_off"], nodes=z["nodes"], values=z["values"],
                          bands=z["bands"])
    except (OSError, KeyError, ValueError):  # not cached yet (or damaged): parse and write it
        pass
    forest = parse_forest(text, path)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=cached.parent, suffix=".npz", delete=False) as tmp:
            np.savez(tmp, n_trees=forest.n_trees, n_features=forest.n_features, sigmoid=forest.sigmoid,
                     lut=forest.lut, node_off=forest.node_off, leaf_off=forest.leaf_off, nodes=forest.nodes,
                     values=forest.values, bands=forest.bands,
                     **{f"thresholds_{f}": t for f, t in enumerate(forest.thresholds)})
        os.replace(tmp.name, cached)  # atomic: a concurrent job reads the old state or the whole file
    except OSError as exc:  # a read-only cache costs time only
        log.warning("could not cache the parsed forest in %s (%s): each process parses it again", cached, exc)
    return forest


# --------------------------------------------------------------------------------------------------------------
# Building and loading the compiled kernel.
# --------------------------------------------------------------------------------------------------------------
def cache_dir() -> Path:
    """Where compiled kernels (and the fetched s2cloudless test scene) live: ``$HCRLC_CACHE_DIR`` or ``~/.cache/hcrlc``."""
    if os.environ.get("HCRLC_CACHE_DIR"):
        return Path(os.environ["HCRLC_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hcrlc"


def _compiler() -> str | None:
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name.split()[0]):
            return name
    return None


@dataclass(frozen=True)
class KernelLibrary:
    """The loaded kernel: its file, the variants this CPU runs, and what loading it cost this process."""

    path: Path
    lib: ctypes.CDLL
    available: tuple[str, ...]
    build_seconds: float  # compile time if this process compiled it, else 0
    load_seconds: float

    @property
    def best(self) -> str:
        return self.available[0]


_build_lock = threading.Lock()


def _compile(cc: str, target: Path) -> float:
    target.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".build-") as tmp:
        src, lib = Path(tmp) / "fast_cloud.c", Path(tmp) / target.name
        src.write_text(kernel_source(), encoding="utf-8")
        # No -march=native: the cached library must run on every CPU sharing this home directory; the SIMD
        # variants are compiled per function (target attributes) and picked at run time.
        cmd = [*cc.split(), "-O3", "-std=c11", "-fPIC", "-shared", "-o", str(lib), str(src), "-lm"]
        done = subprocess.run(cmd, check=False, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
        os.replace(lib, target)  # atomic: a concurrent process sees no half-written library
    return time.perf_counter() - t0


@functools.lru_cache(maxsize=1)
def _load_kernel() -> KernelLibrary | None:
    cc = _compiler()
    key = hashlib.sha256(f"{kernel_source()}|{cc}|{platform.machine()}|{sys.platform}".encode()).hexdigest()[:16]
    path = cache_dir() / f"fast_cloud-{key}{'.dylib' if sys.platform == 'darwin' else '.so'}"
    build_seconds = 0.0
    with _build_lock:
        if not path.is_file():
            if cc is None:
                log.warning("fast_cloud: no C compiler (cc/gcc/clang, or $CC) to build the kernel; the fast engine "
                            "falls back to stock s2cloudless (same results, ~30x slower). Install gcc to fix.")
                return None
            try:
                build_seconds = _compile(cc, path)
            except (OSError, RuntimeError) as err:
                log.warning("fast_cloud: building the kernel failed, falling back to stock s2cloudless: %s", err)
                return None
            log.info("fast_cloud: compiled %s in %.2f s", path, build_seconds)
    t0 = time.perf_counter()
    lib = ctypes.CDLL(str(path))
    if lib.hcrlc_abi() != _ABI:
        raise DataError(path, "the cached kernel does not match this version of fast_cloud", "delete the file")
    lib.hcrlc_kernel_available.argtypes = [ctypes.c_int]
    lib.hcrlc_cloud_probabilities.argtypes = [ctypes.POINTER(_Model), ctypes.c_void_p, *[ctypes.c_int64] * 6,
                                              ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int]
    available = tuple(k for k in KERNELS if lib.hcrlc_kernel_available(_KERNEL_IDS[k]))
    return KernelLibrary(path, lib, available, build_seconds, time.perf_counter() - t0)


def kernel_library() -> KernelLibrary | None:
    """The compiled kernel (built on the first call of the process if not cached yet), or None without a compiler."""
    return _load_kernel()


def available_kernels() -> tuple[str, ...]:
    """Kernel variants this machine runs, best first (empty without a C compiler)."""
    lib = kernel_library()
    return lib.available if lib else ()


# --------------------------------------------------------------------------------------------------------------
# Public API.
# --------------------------------------------------------------------------------------------------------------
def _check_dn(dn: np.ndarray) -> np.ndarray:
    dn = np.asarray(dn)
    if dn.ndim != 4 or dn.shape[1] != N_BANDS:
        raise ValueError(f"expected Sentinel-2 DN of shape (N, 13, H, W), got {dn.shape}; add a leading axis "
                         "for one patch (dn[None]) or move the band axis to position 1")
    if not np.issubdtype(dn.dtype, np.integer):
        raise ValueError(f"expected integer DN (reflectance x10,000, e.g. uint16), got {dn.dtype}; convert "
                         "reflectance r with np.rint(r * 10000) or use engine='stock' for arbitrary floats")
    return dn


def _as_uint16(dn: np.ndarray) -> np.ndarray:
    if dn.dtype == np.uint16:
        return dn if dn.strides[3] == 2 else np.ascontiguousarray(dn)
    return np.clip(dn, 0, DN_MAX).astype(np.uint16)  # same clip as stock; the kernel clips >10000 itself


def _kernel_id(lib: KernelLibrary, kernel: str) -> int:
    if kernel == "auto":
        return _KERNEL_IDS[lib.best]
    if kernel not in _KERNEL_IDS:
        raise ConfigError(f"kernel={kernel!r}: expected 'auto' or one of {KERNELS}")
    if kernel not in lib.available:
        raise ConfigError(f"kernel={kernel!r} does not run on this CPU (available: {lib.available}); use 'auto'")
    return _KERNEL_IDS[kernel]


def _threads(threads: int) -> int:
    if int(threads) < 1:
        raise ConfigError(f"threads={threads}: expected a positive number of threads")
    return int(threads)


def cloud_probabilities(dn: np.ndarray, *, kernel: str = "auto", threads: int = 1,
                        forest: Forest | None = None) -> np.ndarray:
    """Stock s2cloudless's cloud probability of every pixel, computed by the fast kernel.

    ``dn``: (N, 13, H, W) integer Sentinel-2 L1C DN (reflectance ×10,000; values outside [0, 10000] are clipped
    as stock is fed them). Returns (N, H, W) float32, identical to
    ``S2PixelCloudDetector(all_bands=True).get_cloud_probability_maps`` on ``dn_to_model_input(dn)`` moved to
    (N, H, W, 13). ``kernel``: "auto" (the best this CPU runs), "avx512", "avx2" or "portable" — all give the same
    numbers. ``threads`` split the images (or rows of one image) between threads; the kernel releases the GIL.
    ``forest``: another binary LightGBM model on the same 10 bands (:func:`parse_forest`); default s2cloudless's.
    Without a C compiler this falls back to :func:`stock_cloud_probabilities` (s2cloudless's model only).
    """
    dn = _check_dn(dn)
    threads = _threads(threads)
    lib = kernel_library()
    if lib is None and forest is None:
        return stock_cloud_probabilities(dn, threads=threads)
    if lib is None:
        raise ConfigError("a custom forest needs the fast kernel, which needs a C compiler (cc, gcc or clang)")
    kid = _kernel_id(lib, kernel)
    dn = _as_uint16(dn)
    model = (stock_forest() if forest is None else forest).as_struct()
    n, _, h, w = dn.shape
    out = np.empty((n, h, w), dtype=np.float32)
    if out.size == 0:
        return out

    def run(img: slice, rows: slice) -> None:
        src, dst = dn[img, :, rows], out[img, rows]
        s = [st // 2 for st in src.strides]
        o = [st // 4 for st in dst.strides]
        rc = lib.lib.hcrlc_cloud_probabilities(ctypes.byref(model), src.ctypes.data, src.shape[0], s[0], s[1], s[2],
                                               src.shape[2], src.shape[3], dst.ctypes.data, o[0], o[1], kid)
        if rc != 0:
            raise MemoryError(f"fast_cloud kernel failed with code {rc} on {src.shape}")

    if threads == 1:
        run(slice(None), slice(None))
    else:
        if n >= threads:
            parts = [(slice(a, b), slice(None)) for a, b in _chunks(n, threads)]
        else:  # few large images (a scene mosaic): split rows
            parts = [(slice(i, i + 1), slice(a, b)) for i in range(n) for a, b in _chunks(h, -(-threads // n))]
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda p: run(*p), parts))
    return out


def _chunks(n: int, k: int) -> list[tuple[int, int]]:
    edges = np.linspace(0, n, min(k, n) + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in itertools.pairwise(edges) if b > a]


@functools.lru_cache(maxsize=8)
def _stock_detector(threshold: float, average_over: int | None, dilation_size: int | None) -> Any:
    from s2cloudless import S2PixelCloudDetector  # ~1.5 s (imports sentinelhub): only when needed

    return S2PixelCloudDetector(threshold=threshold, all_bands=True, average_over=average_over,
                                dilation_size=dilation_size)


def stock_cloud_probabilities(dn: np.ndarray, *, threads: int = 1) -> np.ndarray:
    """The reference: stock s2cloudless on ``dn_to_model_input(dn)``; (N, 13, H, W) DN -> (N, H, W) float32.

    ``threads``: LightGBM's ``num_threads``.
    """
    dn = _check_dn(dn)
    detector = _stock_detector(_AUTHORS["threshold"], _AUTHORS["average_over"], _AUTHORS["dilation_size"])
    x = np.moveaxis(dn_to_model_input(dn), 1, -1)
    return detector.get_cloud_probability_maps(x, num_threads=_threads(threads))


def cloud_masks_from_probabilities(probs: np.ndarray, threshold: float = _AUTHORS["threshold"],
                                   average_over: int | None = _AUTHORS["average_over"],
                                   dilation_size: int | None = _AUTHORS["dilation_size"]) -> np.ndarray:
    """Stock postprocessing (``get_mask_from_prob``: disk average, ``> threshold``, disk dilation) per patch.

    ``probs``: (N, H, W) float32 -> (N, H, W) bool.
    """
    probs = np.asarray(probs)
    if probs.ndim != 3:
        raise ValueError(f"expected probabilities of shape (N, H, W), got {probs.shape}")
    if len(probs) == 0:
        return np.zeros(probs.shape, dtype=bool)
    # The same OpenCV calls as s2cloudless's S2PixelCloudDetector.get_mask_from_prob (1.x), made here: importing
    # s2cloudless for them (LightGBM, scikit-learn, sentinelhub) cost every mask job ~1.5 s of start-up
    import cv2  # ~0.1 s, only when masks are made

    conv, dilation = _postprocess_filters(average_over, dilation_size)
    if conv is not None:
        masks = np.asarray([cv2.filter2D(p, -1, conv, borderType=cv2.BORDER_REFLECT) > threshold for p in probs],
                           dtype=np.uint8)
    else:
        masks = (probs > threshold).astype(np.int8)
    if dilation is not None:
        masks = np.asarray([cv2.dilate(m, dilation) for m in masks], dtype=np.uint8)
    return masks.astype(bool)


@functools.lru_cache(maxsize=8)
def _postprocess_filters(average_over: int | None, dilation_size: int | None) -> tuple[Any, Any]:
    """s2cloudless's filters: a disk of radius ``average_over`` normalised to sum 1 (float64) and a uint8 disk of
    radius ``dilation_size``; None where the parameter is None or 0 (s2cloudless then skips that step)."""
    import cv2

    def disk(radius: int) -> np.ndarray:  # s2cloudless.utils.cv2_disk
        return cv2.circle(np.zeros((radius * 2 + 1, radius * 2 + 1), dtype=np.uint8), (radius, radius), radius,
                          color=1, thickness=-1)

    conv = disk(average_over) / np.sum(disk(average_over)) if average_over else None
    return conv, disk(dilation_size) if dilation_size else None


def _probabilities(dn: np.ndarray, engine: str, kernel: str, threads: int) -> np.ndarray:
    if engine == "fast":
        return cloud_probabilities(dn, kernel=kernel, threads=threads)
    if engine == "stock":
        return stock_cloud_probabilities(dn, threads=threads)
    raise ConfigError(f"engine={engine!r}: expected one of {ENGINES}")


def cloud_masks(dn: np.ndarray, threshold: float = _AUTHORS["threshold"],
                average_over: int | None = _AUTHORS["average_over"],
                dilation_size: int | None = _AUTHORS["dilation_size"], engine: str = "fast", *,
                kernel: str = "auto", threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Cloud probabilities (N, H, W) float32 and masks (N, H, W) bool of (N, 13, H, W) DN patches.

    Equal to ``S2PixelCloudDetector(threshold, all_bands=True, average_over, dilation_size)`` run per patch on
    ``dn_to_model_input(dn)`` (defaults: the authors' parameters, ``paper.MASK_PRESETS["authors"]``).
    ``engine``: "fast" (the kernel) or "stock" (s2cloudless itself).
    """
    probs = _probabilities(_check_dn(dn), engine, kernel, threads)
    return probs, cloud_masks_from_probabilities(probs, threshold, average_over, dilation_size)


def scene_cloud_masks(dn: np.ndarray, rows: np.ndarray, cols: np.ndarray, stride: int,
                      threshold: float = _AUTHORS["threshold"], average_over: int | None = _AUTHORS["average_over"],
                      dilation_size: int | None = _AUTHORS["dilation_size"], engine: str = "fast", *,
                      kernel: str = "auto", threads: int = 1) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """:func:`cloud_masks` of the patches of one scene, classifying each ground pixel once.

    ``dn``: (N, 13, P, P) patches of one scene; patch ``i`` covers the scene's pixels from
    ``(rows[i] * stride, cols[i] * stride)`` on (patches are cut with stride P / 2, as SEN12MS cuts its 256-pixel
    patches with stride 128, so neighbours overlap by half). The patches are pasted into a scene mosaic, the mosaic
    is classified once, and each patch's probabilities are cut back out and postprocessed per patch — equal to
    per-patch stock. A patch whose DN disagree with the pixels already pasted where they overlap is classified on
    its own instead ("fallback").

    Returns (probabilities (N, P, P) float32, masks (N, P, P) bool, info) with ``info``: ``patches``,
    ``fallback`` (count) and ``fallback_index`` (list), ``mosaic_shape`` (H, W), ``pixels_classified`` and
    ``pixels_in_patches``. The mosaic takes 31 bytes per pixel of its bounding box (a 30 × 30-patch scene:
    ~0.5 GB); for larger scenes call it on bands of grid rows.
    """
    dn = _check_dn(dn)
    n, _, p, p2 = dn.shape
    rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
    if rows.shape != (n,) or cols.shape != (n,):
        raise ValueError(f"expected one grid row and column per patch ({n}), got {rows.shape} and {cols.shape}")
    if p != p2 or stride < 1:
        raise ValueError(f"expected square patches and a positive stride, got {dn.shape[2:]} and stride {stride}")
    info: dict[str, Any] = {"patches": n, "fallback": 0, "fallback_index": [], "mosaic_shape": (0, 0),
                            "pixels_classified": 0, "pixels_in_patches": n * p * p}
    if n == 0:
        probs = np.zeros((0, p, p), dtype=np.float32)
        return probs, np.zeros(probs.shape, dtype=bool), info
    y0, x0 = (rows - rows.min()) * stride, (cols - cols.min()) * stride
    shape = (int(y0.max()) + p, int(x0.max()) + p)
    mosaic = np.zeros((1, N_BANDS, *shape), dtype=dn.dtype)
    filled = np.zeros(shape, dtype=bool)
    fallback = []
    for i in range(n):
        win = (slice(y0[i], y0[i] + p), slice(x0[i], x0[i] + p))
        seen = filled[win]
        if seen.any() and not np.array_equal(mosaic[0][:, win[0], win[1]][:, seen], dn[i][:, seen]):
            fallback.append(i)
            continue
        mosaic[0][:, win[0], win[1]] = dn[i]
        filled[win] = True
    pasted = np.setdiff1d(np.arange(n), fallback)
    probs = np.empty((n, p, p), dtype=np.float32)
    scene_probs = _probabilities(mosaic, engine, kernel, threads)[0]
    for i in pasted:
        probs[i] = scene_probs[y0[i]:y0[i] + p, x0[i]:x0[i] + p]
    if fallback:
        log.warning("scene_cloud_masks: %d of %d patches disagree with their overlapping neighbours and were "
                    "classified on their own", len(fallback), n)
        probs[fallback] = _probabilities(dn[fallback], engine, kernel, threads)
    info.update(fallback=len(fallback), fallback_index=[int(i) for i in fallback], mosaic_shape=shape,
                pixels_classified=int(filled.size + len(fallback) * p * p))
    return probs, cloud_masks_from_probabilities(probs, threshold, average_over, dilation_size), info
