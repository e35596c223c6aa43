/* C = A·B where B was packed once into 32-column panels: the Winograd products, whose B is a
 * filter matrix used for a few dozen rows of A per call. OpenBLAS repacks B on every call, which
 * is most of the cost at batch 1; here B streams from its panels and only a 12-row slice of A is
 * packed (transposed to [k][rows]) at a time, so both operands are read sequentially.
 * Rows are split into even groups of at most 8 (AVX-512: 16 accumulators; clang spills some of
 * the 24 a 12-row block needs, which halved the speed) or 6 (AVX2: 12 of the 16 registers). */
#include "keel_simd.h"
#include "simd_internal.h"

enum {
    PANEL = KEEL_PANEL_COLUMNS,
    /* Depth of one pass: an 8-row slice of A is 16 KB, an L1-sized share. */
    DEPTH = 512,
    /* Deep products prefetch B this many rows ahead (4 KB): the first row group streams each
     * panel from memory, which the hardware prefetcher alone left latency-bound (a 49-row
     * 512×512 product with B cold ran at 85 GFLOP/s on one core, 125 with this). */
    PREFETCH_ROWS = 32,
    AVX512_ROWS = 8,
    AVX2_ROWS = 6,
};

#if KEEL_X86

/* Rows of A as the kernels read them: element (row r, depth p) at base[p·depth_step + r·row_step];
 * a packed slice has depth_step = rows, row_step = 1. */
struct rows_view {
    const float *base;
    ptrdiff_t depth_step, row_step;
};

/* Shallow products read A in place: rows of at most 128 floats do not collide in L1 the way
 * 2 KB-strided rows do, and packing would cost a quarter of the multiply. */
enum { SHALLOW = 128 };

/* First row of group `index` when `m` rows are split into `groups` even groups. */
KEEL_INLINE ptrdiff_t group_start(ptrdiff_t m, ptrdiff_t groups, ptrdiff_t index) { return m * index / groups; }

/* packed[p][r] = a[r][p] for `rows` rows and `depth` columns. */
KEEL_INLINE void pack_rows(int rows, ptrdiff_t depth, const float *a, ptrdiff_t lda, float *packed) {
    for (int r = 0; r < rows; r++) {
        const float *line = a + r * lda;
        for (ptrdiff_t p = 0; p < depth; p++) packed[p * rows + r] = line[p];
    }
}

/* ---- AVX-512: a whole 32-column panel (two registers), up to 8 rows: 16 accumulators. ---- */

KEEL_INLINE KEEL_AVX512 void avx512_block(const int rows, ptrdiff_t depth, struct rows_view a, const float *b,
                                          float *c, ptrdiff_t ldc, int accumulate, __mmask16 low, __mmask16 high,
                                          int prefetch) {
    __m512 left[AVX512_ROWS], right[AVX512_ROWS];
    for (int r = 0; r < rows; r++) { left[r] = _mm512_setzero_ps(); right[r] = _mm512_setzero_ps(); }
    for (ptrdiff_t p = 0; p < depth; p++) {
        if (prefetch) {
            _mm_prefetch((const char *)(b + (p + PREFETCH_ROWS) * PANEL), _MM_HINT_T0);
            _mm_prefetch((const char *)(b + (p + PREFETCH_ROWS) * PANEL + 16), _MM_HINT_T0);
        }
        __m512 b0 = _mm512_loadu_ps(b + p * PANEL);
        __m512 b1 = _mm512_loadu_ps(b + p * PANEL + 16);
        for (int r = 0; r < rows; r++) {
            __m512 value = _mm512_set1_ps(a.base[p * a.depth_step + r * a.row_step]);
            left[r] = _mm512_fmadd_ps(value, b0, left[r]);
            right[r] = _mm512_fmadd_ps(value, b1, right[r]);
        }
    }
    for (int r = 0; r < rows; r++) {
        float *line = c + r * ldc;
        if (accumulate) {
            left[r] = _mm512_add_ps(left[r], _mm512_maskz_loadu_ps(low, line));
            right[r] = _mm512_add_ps(right[r], _mm512_maskz_loadu_ps(high, line + 16));
        }
        _mm512_mask_storeu_ps(line, low, left[r]);
        _mm512_mask_storeu_ps(line + 16, high, right[r]);
    }
}

static KEEL_AVX512 void avx512_rows(int rows, ptrdiff_t depth, struct rows_view a, const float *b, float *c,
                                    ptrdiff_t ldc, int accumulate, ptrdiff_t width) {
    __mmask16 low = (__mmask16)(width >= 16 ? 0xFFFF : (1u << width) - 1);
    __mmask16 high = (__mmask16)(width >= 32 ? 0xFFFF : width <= 16 ? 0 : (1u << (width - 16)) - 1);
    switch (rows) {
#define CASE(R) case R: avx512_block(R, depth, a, b, c, ldc, accumulate, low, high, depth > SHALLOW); break;
        CASE(1) CASE(2) CASE(3) CASE(4) CASE(5) CASE(6) CASE(7) CASE(8)
#undef CASE
        default: break;
    }
}

/* ---- AVX2 + FMA: each panel as two 16-column halves (two registers), up to 6 rows. ---- */

KEEL_INLINE KEEL_AVX2 void avx2_block(const int rows, ptrdiff_t depth, struct rows_view a, const float *b,
                                      float *c, ptrdiff_t ldc, int accumulate, __m256i low, __m256i high,
                                      int prefetch) {
    __m256 left[AVX2_ROWS], right[AVX2_ROWS];
    for (int r = 0; r < rows; r++) { left[r] = _mm256_setzero_ps(); right[r] = _mm256_setzero_ps(); }
    for (ptrdiff_t p = 0; p < depth; p++) {
        if (prefetch) _mm_prefetch((const char *)(b + (p + PREFETCH_ROWS) * PANEL), _MM_HINT_T0);
        __m256 b0 = _mm256_loadu_ps(b + p * PANEL);
        __m256 b1 = _mm256_loadu_ps(b + p * PANEL + 8);
        for (int r = 0; r < rows; r++) {
            __m256 value = _mm256_broadcast_ss(a.base + p * a.depth_step + r * a.row_step);
            left[r] = _mm256_fmadd_ps(value, b0, left[r]);
            right[r] = _mm256_fmadd_ps(value, b1, right[r]);
        }
    }
    for (int r = 0; r < rows; r++) {
        float *line = c + r * ldc;
        if (accumulate) {
            left[r] = _mm256_add_ps(left[r], _mm256_maskload_ps(line, low));
            right[r] = _mm256_add_ps(right[r], _mm256_maskload_ps(line + 8, high));
        }
        _mm256_maskstore_ps(line, low, left[r]);
        _mm256_maskstore_ps(line + 8, high, right[r]);
    }
}

/* Lanes below `count` set (all ones), the others clear. */
static KEEL_AVX2 __m256i avx2_lanes_below(ptrdiff_t count) {
    __m256i index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(count < 0 ? 0 : count > 8 ? 8 : count)), index);
}

static KEEL_AVX2 void avx2_rows(int rows, ptrdiff_t depth, struct rows_view a, const float *b, float *c,
                                ptrdiff_t ldc, int accumulate, ptrdiff_t width) {
    for (int half = 0; half < 2 && width > 16 * half; half++) {
        ptrdiff_t remaining = width - 16 * half;
        __m256i low = avx2_lanes_below(remaining), high = avx2_lanes_below(remaining - 8);
        const float *panel = b + 16 * half;
        float *target = c + 16 * half;
        switch (rows) {
#define CASE(R) case R: avx2_block(R, depth, a, panel, target, ldc, accumulate, low, high, depth > SHALLOW); break;
            CASE(1) CASE(2) CASE(3) CASE(4) CASE(5) CASE(6)
#undef CASE
            default: break;
        }
    }
}

#endif

int keel_sgemm_packed_b(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const float *a, ptrdiff_t lda,
                        const float *b_panels, float *c, ptrdiff_t ldc) {
#if KEEL_X86
    if (m <= 0 || n <= 0 || k <= 0) return 0;
    keel_simd_level level = keel_simd_level_in_use();
    if (level == KEEL_SIMD_GENERIC) return 0;
    int limit = level == KEEL_SIMD_AVX512 ? AVX512_ROWS : AVX2_ROWS;
    ptrdiff_t groups = (m + limit - 1) / limit;
    ptrdiff_t panels = (n + PANEL - 1) / PANEL;
    float packed[DEPTH * AVX512_ROWS];
    for (ptrdiff_t start = 0; start < k; start += DEPTH) {
        ptrdiff_t depth = k - start < DEPTH ? k - start : DEPTH;
        for (ptrdiff_t group = 0; group < groups; group++) {
            ptrdiff_t first = group_start(m, groups, group);
            int rows = (int)(group_start(m, groups, group + 1) - first);
            struct rows_view view = { a + first * lda + start, 1, lda };
            if (k > SHALLOW) {
                pack_rows(rows, depth, view.base, lda, packed);
                view = (struct rows_view){ packed, rows, 1 };
            }
            for (ptrdiff_t panel = 0; panel < panels; panel++) {
                const float *b = b_panels + panel * k * PANEL + start * PANEL;
                float *target = c + first * ldc + panel * PANEL;
                ptrdiff_t width = n - panel * PANEL < PANEL ? n - panel * PANEL : PANEL;
                if (level == KEEL_SIMD_AVX512) avx512_rows(rows, depth, view, b, target, ldc, start > 0, width);
                else avx2_rows(rows, depth, view, b, target, ldc, start > 0, width);
            }
        }
    }
    return 1;
#else
    (void)m; (void)n; (void)k; (void)a; (void)lda; (void)b_panels; (void)c; (void)ldc;
    return 0;
#endif
}
