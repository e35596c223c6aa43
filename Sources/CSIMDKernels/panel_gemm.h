/* C = A·B where B was packed once into 32-column panels: the Winograd products, whose B is a
 * filter matrix used for a few dozen rows of A per call. OpenBLAS repacks B on every call, which
 * is most of the cost at batch 1; here B streams from its panels and only a 12-row slice of A is
 * packed (transposed to [k][rows]) at a time, so both operands are read sequentially.
 * Rows are split into even groups of at most 8 (AVX-512: 16 accumulators; clang spills some of
 * the 24 a 12-row block needs, which halved the speed) or 6 (AVX2: 12 of the 16 registers). */
#ifndef KEEL_PANEL_GEMM_H
#define KEEL_PANEL_GEMM_H
/* The template each ISA file instantiates (DEFINE_PANEL_GEMM), and the scalar helpers it uses. */
#include "keel_kernels.h"
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

/* One body per level: `rows` rows of A (at most LIMIT) × 2·HALF columns of a panel in two
 * registers per row; `rows_of` runs a whole 32-column panel (AVX-512: one pass of 2×16 columns;
 * AVX2: two passes of 2×8). */
#define DEFINE_PANEL_GEMM(PREFIX, ATTRIBUTE, VEC, HALF, LIMIT, CASES, MASK, MASK_FOR, LOADU, LOAD, STORE,     \
                          SET1, ZERO, FMADD, ADD)                                                           \
    KEEL_INLINE ATTRIBUTE void PREFIX##_gemm_block(const int rows, ptrdiff_t depth, struct rows_view a,           \
                                              const float *b, float *c, ptrdiff_t ldc, int accumulate,       \
                                              MASK low, MASK high, int prefetch) {                          \
        VEC left[LIMIT], right[LIMIT];                                                                      \
        for (int r = 0; r < rows; r++) { left[r] = ZERO(); right[r] = ZERO(); }                             \
        for (ptrdiff_t p = 0; p < depth; p++) {                                                             \
            if (prefetch) {                                                                                 \
                _mm_prefetch((const char *)(b + (p + PREFETCH_ROWS) * PANEL), _MM_HINT_T0);                 \
                _mm_prefetch((const char *)(b + (p + PREFETCH_ROWS) * PANEL + 16), _MM_HINT_T0);            \
            }                                                                                               \
            VEC b0 = LOADU(b + p * PANEL), b1 = LOADU(b + p * PANEL + HALF);                                \
            for (int r = 0; r < rows; r++) {                                                                \
                VEC value = SET1(a.base[p * a.depth_step + r * a.row_step]);                                \
                left[r] = FMADD(value, b0, left[r]);                                                        \
                right[r] = FMADD(value, b1, right[r]);                                                      \
            }                                                                                               \
        }                                                                                                   \
        for (int r = 0; r < rows; r++) {                                                                    \
            float *line = c + r * ldc;                                                                      \
            if (accumulate) {                                                                               \
                left[r] = ADD(left[r], LOAD(low, line));                                                    \
                right[r] = ADD(right[r], LOAD(high, line + HALF));                                          \
            }                                                                                               \
            STORE(low, line, left[r]);                                                                      \
            STORE(high, line + HALF, right[r]);                                                             \
        }                                                                                                   \
    }                                                                                                       \
    static ATTRIBUTE void PREFIX##_gemm_rows(int rows, ptrdiff_t depth, struct rows_view a, const float *b,       \
                                        float *c, ptrdiff_t ldc, int accumulate, ptrdiff_t width) {         \
        for (ptrdiff_t first = 0; first < PANEL && first < width; first += 2 * HALF) {                      \
            MASK low = MASK_FOR(width - first), high = MASK_FOR(width - first - HALF);                      \
            switch (rows) {                                                                                 \
                CASES(PREFIX##_gemm_block, depth, a, b + first, c + first, ldc, accumulate, low, high,           \
                      depth > SHALLOW)                                                                      \
                default: break;                                                                             \
            }                                                                                               \
        }                                                                                                   \
    }                                                                                                       \
    void keel_##PREFIX##_sgemm_packed_b(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const float *a, ptrdiff_t lda, \
                                        const float *b_panels, float *c, ptrdiff_t ldc) {                   \
        ptrdiff_t groups = (m + LIMIT - 1) / LIMIT;                                                         \
        ptrdiff_t panels = (n + PANEL - 1) / PANEL;                                                         \
        float packed[DEPTH * LIMIT];                                                                        \
        for (ptrdiff_t start = 0; start < k; start += DEPTH) {                                              \
            ptrdiff_t depth = k - start < DEPTH ? k - start : DEPTH;                                        \
            for (ptrdiff_t group = 0; group < groups; group++) {                                            \
                ptrdiff_t first = group_start(m, groups, group);                                            \
                int rows = (int)(group_start(m, groups, group + 1) - first);                                \
                struct rows_view view = { a + first * lda + start, 1, lda };                                \
                if (k > SHALLOW) {                                                                          \
                    pack_rows(rows, depth, view.base, lda, packed);                                         \
                    view = (struct rows_view){ packed, rows, 1 };                                           \
                }                                                                                           \
                for (ptrdiff_t panel = 0; panel < panels; panel++) {                                        \
                    const float *b = b_panels + panel * k * PANEL + start * PANEL;                          \
                    float *target = c + first * ldc + panel * PANEL;                                        \
                    ptrdiff_t width = n - panel * PANEL < PANEL ? n - panel * PANEL : PANEL;                \
                    PREFIX##_gemm_rows(rows, depth, view, b, target, ldc, start > 0, width);                     \
                }                                                                                           \
            }                                                                                               \
        }                                                                                                   \
    }

#endif
#endif
