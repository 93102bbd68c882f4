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

The kernel is C, embedded below and compiled on first use with the system C compiler (``cc``/``gcc``/``clang``; no
Python headers) into ``~/.cache/hcrlc/`` (``$HCRLC_CACHE_DIR`` overrides); later processes load the cached
library. It contains three interchangeable variants chosen at run time: ``avx512`` (AVX-512BW), ``avx2`` and
``portable`` (plain C with 64-bit SWAR compares, any CPU). Without a C compiler the fast engine logs a warning once
and falls back to stock, which gives the same results, slowly.

Postprocessing (disk averaging, threshold, dilation) is s2cloudless's own ``get_mask_from_prob``, per patch.
:func:`scene_cloud_masks` adds a structural lever: the patches of a scene overlap by 50 % (stride 128), so it
classifies each ground pixel of the scene mosaic once, cuts every patch's probabilities back out and postprocesses
per patch — equal to per-patch stock, because a probability depends only on its own pixel's DN.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import importlib.util
import itertools
import logging
import os
import platform
import shutil
import subprocess
import sys
import tarfile
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
# The C kernel. Bump _ABI when the signature of hcrlc_cloud_probabilities or model_t changes.
# --------------------------------------------------------------------------------------------------------------
_ABI = 1
_C_SOURCE = r"""
/* hcrlc fast_cloud kernel: s2cloudless's LightGBM forest over per-band threshold-bin codes. See fast_cloud.py. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HCRLC_X86 1
#include <immintrin.h>
#endif

#define SB 64                 /* super block side in pixels */
#define WS 8                  /* a word: WS x WS = 64 pixels, one bit each */
#define NWS (SB / WS)
#define NW (NWS * NWS)        /* words per super block */
#define MAXP (NW * 64 + 4)    /* (word, mask) pairs per tree level: at most one per pixel, plus slack */
#define MAXF 16
#define DN_MAX 10000

typedef struct { int16_t child[2]; int8_t feat; int8_t thr; } node_t;  /* child < 0: ~leaf; thr = bin ^ 0x80 */
typedef struct { int32_t node, start, len; } item_t;
typedef struct {
    int32_t n_trees, n_features;
    const int32_t *node_off, *leaf_off;   /* per tree: first node, first leaf value */
    const node_t *nodes;
    const double *value;
    const uint8_t *lut;                   /* n_features x (DN_MAX + 1) bin codes */
    const int32_t *bands;                 /* n_features band indices among the 13 */
    double sigmoid;
} model_t;

int hcrlc_abi(void) { return 1; }

/* Bit i of the result: signed byte col[i] > thr, i.e. bin code > split bin (codes are stored ^ 0x80). */
static inline uint64_t gt_portable(const int8_t *col, int8_t thr) {
    const uint64_t H = 0x8080808080808080ULL, L = 0x0101010101010101ULL;
    uint64_t t = (uint64_t)(uint8_t)(thr ^ (int8_t)0x80) * L;
    uint64_t tl1 = (t & ~H) + L, th = t & H, out = 0;
    for (int k = 0; k < 8; k++) {
        uint64_t x;
        memcpy(&x, col + 8 * k, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        x = __builtin_bswap64(x);
#endif
        x ^= H;                                           /* back to unsigned codes */
        uint64_t xh = x & H, gl = ((x | H) - tl1) & H;    /* gl: low 7 bits of x > low 7 bits of t */
        uint64_t g = ((xh & ~th) | (~(xh ^ th) & gl)) & H;
        out |= (((g >> 7) * 0x0102040810204080ULL) >> 56) << (8 * k);
    }
    return out;
}
/* Leaf values reach the pixels in one of two ways. Direct: acc[pixel] += value for the pixels of each leaf pair
   (bit loop; masked vector adds with AVX-512). Slotted (AVX2): each pair only records, per pixel, which of its
   word's leaves it reached (a byte, set 32 pixels at a time); after the tree one dense pass adds the values. That
   trades the bit loop's unpredictable exits for straight-line code. Either way each pixel gets exactly one value
   per tree, added in tree order. */
typedef struct { double *acc; uint8_t *slot; double *slot_value; uint8_t *n_slots; const uint64_t *valid; } leaves_t;

#define LEAF_BITS(ls, w, m, v) do { double *aw_ = (ls)->acc + 64 * (w); uint64_t mm_ = (m);                    \
    while (mm_) { aw_[__builtin_ctzll(mm_)] += (v); mm_ &= mm_ - 1; } } while (0)
#define TREE_DIRECT(ls) do { } while (0)

/* after a slotted tree: acc += the value of each pixel's slot */
static inline void tree_slots(leaves_t *ls) {
    for (int w = 0; w < NW; w++) {
        if (!ls->valid[w]) continue;
        const double *sv = ls->slot_value + 64 * w;
        const uint8_t *sl = ls->slot + 64 * w;
        double *aw = ls->acc + 64 * w;
        for (int i = 0; i < 64; i++) aw[i] += sv[sl[i]];
        ls->n_slots[w] = 0;
    }
}

/* One super block through all trees. */
#define DEFINE_KERNEL(NAME, ATTR, GT, LEAF, TREE_DONE)                                                         \
ATTR static void NAME(const model_t *md, const int8_t *restrict codes, const uint64_t *restrict valid,        \
                      leaves_t *ls, uint16_t *pwbuf, uint64_t *pmbuf, item_t *ibuf) {                         \
    uint16_t *cw = pwbuf, *nw = pwbuf + MAXP;                                                                 \
    uint64_t *cm = pmbuf, *nm = pmbuf + MAXP;                                                                 \
    item_t *ci = ibuf, *ni = ibuf + MAXP, *li = ibuf + 2 * MAXP;                                              \
    for (int32_t t = 0; t < md->n_trees; t++) {                                                               \
        const node_t *restrict nd = md->nodes + md->node_off[t];                                              \
        const double *restrict val = md->value + md->leaf_off[t];                                             \
        int32_t np = 0;                                                                                       \
        for (int w = 0; w < NW; w++) { cw[np] = (uint16_t)w; cm[np] = valid[w]; np += valid[w] != 0; }        \
        if (!np) return;                                                                                      \
        if (nd[0].child[0] == 0 && nd[0].child[1] == 0) {               /* a single-leaf tree */              \
            for (int32_t j = 0; j < np; j++) LEAF(ls, cw[j], cm[j], val[0]);                                  \
            TREE_DONE(ls);                                                                                    \
            continue;                                                                                         \
        }                                                                                                     \
        int32_t nci = 1;                                                                                      \
        ci[0].node = 0; ci[0].start = 0; ci[0].len = np;                                                      \
        while (nci) {                                                                                         \
            /* left children's pairs fill the next buffer from the front, right children's from the back */   \
            int32_t front = 0, back = MAXP, nni = 0, nli = 0;                                                 \
            for (int32_t it = 0; it < nci; it++) {                                                            \
                const node_t q = nd[ci[it].node];                                                             \
                const int8_t *base = codes + (int32_t)q.feat * (NW * 64);                                     \
                const int8_t thr = q.thr;                                                                     \
                const int32_t s = ci[it].start, e = s + ci[it].len, fs = front, bs = back;                    \
                for (int32_t j = s; j < e; j++) {                                                             \
                    uint16_t w = cw[j]; uint64_t m = cm[j];                                                   \
                    uint64_t g = GT(base + 64 * (int32_t)w, thr);                                             \
                    uint64_t ml = m & ~g, mr = m & g;                                                         \
                    nw[front] = w; nm[front] = ml; front += ml != 0;                                          \
                    nw[back - 1] = w; nm[back - 1] = mr; back -= mr != 0;                                     \
                }                                                                                             \
                if (front > fs) {                                                                             \
                    item_t *d = q.child[0] < 0 ? li + nli++ : ni + nni++;                                     \
                    d->node = q.child[0]; d->start = fs; d->len = front - fs;                                 \
                }                                                                                             \
                if (back < bs) {                                                                              \
                    item_t *d = q.child[1] < 0 ? li + nli++ : ni + nni++;                                     \
                    d->node = q.child[1]; d->start = back; d->len = bs - back;                                \
                }                                                                                             \
            }                                                                                                 \
            for (int32_t it = 0; it < nli; it++) {                                                            \
                double v = val[~li[it].node];                                                                 \
                for (int32_t j = li[it].start, e = j + li[it].len; j < e; j++) LEAF(ls, nw[j], nm[j], v);     \
            }                                                                                                 \
            uint16_t *tw = cw; cw = nw; nw = tw;                                                              \
            uint64_t *tm = cm; cm = nm; nm = tm;                                                              \
            item_t *ti = ci; ci = ni; ni = ti; nci = nni;                                                     \
        }                                                                                                     \
        TREE_DONE(ls);                                                                                        \
    }                                                                                                         \
}

DEFINE_KERNEL(kernel_portable, , gt_portable, LEAF_BITS, TREE_DIRECT)

#ifdef HCRLC_X86
__attribute__((target("avx2"))) static inline uint64_t gt_avx2(const int8_t *col, int8_t thr) {
    __m256i t = _mm256_set1_epi8(thr);
    uint32_t lo = (uint32_t)_mm256_movemask_epi8(_mm256_cmpgt_epi8(_mm256_load_si256((const __m256i *)col), t));
    uint32_t hi = (uint32_t)_mm256_movemask_epi8(_mm256_cmpgt_epi8(_mm256_load_si256((const __m256i *)(col + 32)), t));
    return (uint64_t)lo | ((uint64_t)hi << 32);
}
/* slot[w][pixel] = this pair's slot number for the pixels of m (bit i of m -> byte i) */
__attribute__((target("avx2"))) static inline void leaf_slot_avx2(leaves_t *ls, int w, uint64_t m, double v) {
    const __m256i bit = _mm256_setr_epi8(1, 2, 4, 8, 16, 32, 64, -128, 1, 2, 4, 8, 16, 32, 64, -128,
                                         1, 2, 4, 8, 16, 32, 64, -128, 1, 2, 4, 8, 16, 32, 64, -128);
    const __m256i spread_lo = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                               2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i spread_hi = _mm256_add_epi8(spread_lo, _mm256_set1_epi8(4));
    uint8_t k = ls->n_slots[w]++;
    ls->slot_value[64 * w + k] = v;
    __m256i mb = _mm256_set1_epi64x((long long)m), kk = _mm256_set1_epi8((char)k);
    __m256i *dst = (__m256i *)(ls->slot + 64 * w);
    __m256i sel_lo = _mm256_cmpeq_epi8(_mm256_and_si256(_mm256_shuffle_epi8(mb, spread_lo), bit), bit);
    __m256i sel_hi = _mm256_cmpeq_epi8(_mm256_and_si256(_mm256_shuffle_epi8(mb, spread_hi), bit), bit);
    _mm256_store_si256(dst, _mm256_blendv_epi8(_mm256_load_si256(dst), kk, sel_lo));
    _mm256_store_si256(dst + 1, _mm256_blendv_epi8(_mm256_load_si256(dst + 1), kk, sel_hi));
}
#define LEAF_SLOT_AVX2(ls, w, m, v) leaf_slot_avx2(ls, w, m, v)
DEFINE_KERNEL(kernel_avx2, __attribute__((target("avx2"))), gt_avx2, LEAF_SLOT_AVX2, tree_slots)

__attribute__((target("avx512f,avx512bw"))) static inline uint64_t gt_avx512(const int8_t *col, int8_t thr) {
    return _mm512_cmpgt_epi8_mask(_mm512_load_si512((const void *)col), _mm512_set1_epi8(thr));
}
/* adds v to the pixels of m; unmasked lanes are stored back unchanged */
__attribute__((target("avx512f,avx512bw"))) static inline void leaf_avx512(leaves_t *ls, int w, uint64_t m, double v) {
    __m512d vv = _mm512_set1_pd(v);
    double *aw = ls->acc + 64 * w;
    for (int j = 0; j < 8; j++) {
        __m512d a = _mm512_load_pd(aw + 8 * j);
        _mm512_store_pd(aw + 8 * j, _mm512_mask_add_pd(a, (__mmask8)(m >> (8 * j)), a, vv));
    }
}
DEFINE_KERNEL(kernel_avx512, __attribute__((target("avx512f,avx512bw"))), gt_avx512, leaf_avx512, TREE_DIRECT)
#endif

/* 0 portable (always), 1 avx2, 2 avx512: 1 if this CPU runs it */
int hcrlc_kernel_available(int kernel) {
    if (kernel == 0) return 1;
#ifdef HCRLC_X86
    __builtin_cpu_init();
    if (kernel == 1) return __builtin_cpu_supports("avx2") != 0;
    if (kernel == 2) return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
#endif
    return 0;
}

/* Cloud probabilities of n_img images; strides in elements; the last axis is contiguous.
   Returns 0, -1 when out of memory, -2 for an unavailable kernel, -3 for too many features. */
int hcrlc_cloud_probabilities(const model_t *md, const uint16_t *dn, int64_t n_img, int64_t s_img, int64_t s_band,
                              int64_t s_row, int64_t h, int64_t w, float *out, int64_t o_img, int64_t o_row,
                              int kernel) {
    if (!hcrlc_kernel_available(kernel)) return -2;
    const int nf = md->n_features;
    if (nf > MAXF) return -3;
    int8_t *codes = aligned_alloc(64, (size_t)nf * NW * 64);
    double *acc = aligned_alloc(64, sizeof(double) * NW * 64);
    uint16_t *pwbuf = malloc(sizeof(uint16_t) * 2 * MAXP);
    uint64_t *pmbuf = malloc(sizeof(uint64_t) * 2 * MAXP);
    item_t *ibuf = malloc(sizeof(item_t) * 3 * MAXP);
    uint8_t *slot = aligned_alloc(64, NW * 64);
    uint8_t n_slots[NW];
    double *slot_value = calloc(NW * 64, sizeof(double));
    uint64_t valid[NW];
    leaves_t ls = {acc, slot, slot_value, n_slots, valid};
    int rc = 0;
    if (!codes || !acc || !pwbuf || !pmbuf || !ibuf || !slot || !slot_value) { rc = -1; goto done; }
    memset(slot, 0, NW * 64);
    memset(n_slots, 0, sizeof(n_slots));
    for (int64_t im = 0; im < n_img; im++) {
        const uint16_t *img = dn + im * s_img;
        float *o = out + im * o_img;
        for (int64_t y0 = 0; y0 < h; y0 += SB) for (int64_t x0 = 0; x0 < w; x0 += SB) {
            int ny = (int)(h - y0 < SB ? h - y0 : SB), nx = (int)(w - x0 < SB ? w - x0 : SB);
            memset(valid, 0, sizeof(valid));
            memset(codes, 0, (size_t)nf * NW * 64);
            for (int yy = 0; yy < ny; yy++) {
                for (int f = 0; f < nf; f++) {
                    const uint16_t *row = img + md->bands[f] * s_band + (y0 + yy) * s_row + x0;
                    const uint8_t *lf = md->lut + (size_t)f * (DN_MAX + 1);
                    int8_t *dst = codes + f * NW * 64 + (yy / WS) * NWS * 64 + (yy % WS) * WS;
                    for (int xx = 0; xx < nx; xx++) {
                        uint16_t v = row[xx];
                        dst[(xx / WS) * 64 + xx % WS] = (int8_t)(lf[v > DN_MAX ? DN_MAX : v] ^ 0x80);
                    }
                }
                for (int xx = 0; xx < nx; xx++) valid[(yy / WS) * NWS + xx / WS] |= 1ULL << ((yy % WS) * WS + xx % WS);
            }
            memset(acc, 0, sizeof(double) * NW * 64);
#ifdef HCRLC_X86
            if (kernel == 2) kernel_avx512(md, codes, valid, &ls, pwbuf, pmbuf, ibuf); else
            if (kernel == 1) kernel_avx2(md, codes, valid, &ls, pwbuf, pmbuf, ibuf); else
#endif
            kernel_portable(md, codes, valid, &ls, pwbuf, pmbuf, ibuf);
            for (int yy = 0; yy < ny; yy++) {
                float *orow = o + (y0 + yy) * o_row + x0;
                for (int xx = 0; xx < nx; xx++) {
                    double a = acc[((yy / WS) * NWS + xx / WS) * 64 + (yy % WS) * WS + xx % WS];
                    orow[xx] = (float)(1.0 / (1.0 + exp(-md->sigmoid * a)));
                }
            }
        }
    }
done:
    free(codes); free(acc); free(pwbuf); free(pmbuf); free(ibuf); free(slot); free(slot_value);
    return rc;
}
"""


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
    """Where compiled kernels (and fetched test data) live: ``$HCRLC_CACHE_DIR`` or ``~/.cache/hcrlc``."""
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
        src.write_text(_C_SOURCE)
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
    key = hashlib.sha256(f"{_C_SOURCE}|{cc}|{platform.machine()}|{sys.platform}".encode()).hexdigest()[:16]
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


def scene_cloud_masks(dn: np.ndarray, rows: np.ndarray, cols: np.ndarray, stride: int = 128,
                      threshold: float = _AUTHORS["threshold"], average_over: int | None = _AUTHORS["average_over"],
                      dilation_size: int | None = _AUTHORS["dilation_size"], engine: str = "fast", *,
                      kernel: str = "auto", threads: int = 1) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """:func:`cloud_masks` of the patches of one scene, classifying each ground pixel once.

    ``dn``: (N, 13, P, P) patches of one scene; patch ``i`` covers the scene's pixels from
    ``(rows[i] * stride, cols[i] * stride)`` on (SEN12MS cuts 256-pixel patches with stride 128, so neighbours
    overlap by half). The patches are pasted into a scene mosaic, the mosaic is classified once, and each patch's
    probabilities are cut back out and postprocessed per patch — equal to per-patch stock. A patch whose DN
    disagree with the pixels already pasted where they overlap is classified on its own instead ("fallback").

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


# --------------------------------------------------------------------------------------------------------------
# Real Sentinel-2 pixels for tests and benchmarks: s2cloudless's own test scene.
# --------------------------------------------------------------------------------------------------------------
#: s2cloudless 1.0.0-1.2.0 shipped their test scene in the sdist (later releases dropped it). Pinned by hash.
S2CLOUDLESS_SCENE_SDIST = "s2cloudless==1.2.0"
S2CLOUDLESS_SCENE_SDIST_SHA256 = "16beed6b57301009f24c2ad070d653e6db554ec27e91bce42213182006b4f706"
S2CLOUDLESS_SCENE_MEMBER = "s2cloudless-1.2.0/s2cloudless/TestInputs/input_arrays.npz"


def s2cloudless_scene_path() -> Path:
    """Where :func:`fetch_s2cloudless_scene` keeps s2cloudless's test scene (``input_arrays.npz``)."""
    return cache_dir() / "s2cloudless-1.2.0-input_arrays.npz"


def fetch_s2cloudless_scene() -> Path:
    """Download s2cloudless's real Sentinel-2 test scene with pip (the 1.2.0 sdist, ~4.7 MB) into the cache."""
    target = s2cloudless_scene_path()
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".fetch-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
               "--no-build-isolation", "--disable-pip-version-check", "-d", tmp, S2CLOUDLESS_SCENE_SDIST]
        done = subprocess.run(cmd, check=False, capture_output=True, text=True)
        sdists = list(Path(tmp).glob("s2cloudless-1.2.0.tar.gz"))
        if done.returncode != 0 or not sdists:
            raise DataError(target, f"`{' '.join(cmd)}` failed: {done.stderr[-500:]}",
                            "check the network / pip index, or copy input_arrays.npz there by hand")
        digest = hashlib.sha256(sdists[0].read_bytes()).hexdigest()
        if digest != S2CLOUDLESS_SCENE_SDIST_SHA256:
            raise DataError(sdists[0], f"sha256 {digest} is not the pinned {S2CLOUDLESS_SCENE_SDIST_SHA256}",
                            "check which index pip used")
        with tarfile.open(sdists[0]) as tar:
            member = tar.extractfile(S2CLOUDLESS_SCENE_MEMBER)
            if member is None:
                raise DataError(sdists[0], f"{S2CLOUDLESS_SCENE_MEMBER} missing", "check the pinned sdist")
            partial = Path(tmp) / target.name
            partial.write_bytes(member.read())
        os.replace(partial, target)
    return target


def load_s2cloudless_scene(path: str | Path | None = None) -> np.ndarray:
    """s2cloudless's test scene as (1, 13, 856, 512) uint16 DN (its float32 reflectance ×10,000, rounded)."""
    path = Path(path) if path is not None else s2cloudless_scene_path()
    if not path.is_file():
        raise DataError(path, "s2cloudless's test scene is not fetched",
                        "run `python benchmarks/cloud_masks.py --fetch` (pip downloads it into the cache)")
    with np.load(path) as data:
        reflectance = data["s2_im"]  # (1, H, W, 13) float32
    return np.moveaxis(np.rint(reflectance.astype(np.float64) * DN_MAX), -1, 1).astype(np.uint16)
