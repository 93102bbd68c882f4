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
