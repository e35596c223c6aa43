/* C = epilogue(A·B) on 32-column panels of B, for the products OpenBLAS serves badly: the
 * Winograd products and the convolutions' and dense layers' GEMMs, whose filter operand is used
 * for a few dozen rows at batch 1 and which OpenBLAS repacks on every call. B streams from its
 * panels (packed once ahead of time, or read in place from a row-major matrix) and only a slice of
 * A's rows is packed (transposed to [k][rows]) at a time, so both operands are read sequentially.
 * Blocking: depth passes of DEPTH, then blocks of COLUMN_BLOCK panels (≤ 512 KB of B, which stays
 * in L2 while every row slice of A passes over it), then row groups of at most 8 (AVX-512: 16
 * accumulators; clang spills some of the 24 a 12-row block needs, which halved the speed) or 6
 * (AVX2: 12 of the 16 registers). The epilogue (bias, residual, activation) runs on the registers
 * of the last depth pass, before the one store. */
#ifndef KEEL_PANEL_GEMM_H
#define KEEL_PANEL_GEMM_H
/* The template each ISA file instantiates (DEFINE_PANEL_GEMM, after its activations), and the
 * scalar helpers it uses. */
#include "keel_kernels.h"
#include "simd_internal.h"

enum {
    PANEL = KEEL_PANEL_COLUMNS,
    /* Depth of one pass: an 8-row slice of A is 16 KB, an L1-sized share. */
    DEPTH = 512,
    /* Panels per column block: DEPTH × 8 × 32 floats = 512 KB of B. */
    COLUMN_BLOCK = 8,
    /* Deep products prefetch B this many rows ahead: the first row group streams each panel
     * from memory, which the hardware prefetcher alone left latency-bound (a 49-row 512×512
     * product with B cold ran at 85 GFLOP/s on one core, 125 with this). */
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

/* packed[p][r] = A(r, p) for `rows` rows and `depth` depths of `view`. */
KEEL_INLINE void pack_rows(int rows, ptrdiff_t depth, struct rows_view view, float *packed) {
    for (int r = 0; r < rows; r++) {
        const float *line = view.base + r * view.row_step;
        for (ptrdiff_t p = 0; p < depth; p++) packed[p * rows + r] = line[p * view.depth_step];
    }
}

/* What one block call needs besides its operands. */
struct block_target {
    float *c;
    ptrdiff_t ldc;
    /* Row and column of c[0] within the whole product (where bias and residual are read). */
    ptrdiff_t row, column;
    int accumulate;
    /* NULL unless this is the last depth pass and there is an epilogue. */
    const keel_epilogue *epilogue;
};

/* An epilogue that does nothing is no epilogue. */
KEEL_INLINE const keel_epilogue *effective_epilogue(const keel_epilogue *e) {
    return e && (e->bias || e->residual || e->activation != KEEL_ACTIVATION_NONE) ? e : NULL;
}

/* The depth loop of one block. PREFETCH, WHOLE and STEP (A's row step) are constants in the
 * copies the common cases take (packed A rows with row step 1, whole deep panels): tested inside
 * the loop, they cost two branches and an address computation per broadcast, and the loop ran
 * near the front end's limit instead of the FMA ports'. */
#define PANEL_DEPTH_LOOP(VEC, HALF, SET1, FMADD, LOADU, LOAD, PREFETCH, WHOLE, STEP)                         \
    for (ptrdiff_t p = 0; p < depth; p++) {                                                                 \
        const float *line = b + p * b_step;                                                                 \
        if (PREFETCH) {                                                                                     \
            _mm_prefetch((const char *)(line + PREFETCH_ROWS * b_step), _MM_HINT_T0);                       \
            _mm_prefetch((const char *)(line + PREFETCH_ROWS * b_step + 16), _MM_HINT_T0);                  \
        }                                                                                                   \
        VEC b0 = WHOLE ? LOADU(line) : LOAD(low, line);                                                     \
        VEC b1 = WHOLE ? LOADU(line + HALF) : LOAD(high, line + HALF);                                      \
        const float *column = a.base + p * a.depth_step;                                                    \
        for (int r = 0; r < rows; r++) {                                                                    \
            VEC value = SET1(column[r * (STEP)]);                                                           \
            left[r] = FMADD(value, b0, left[r]);                                                            \
            right[r] = FMADD(value, b1, right[r]);                                                          \
        }                                                                                                   \
    }

/* One body per level: `rows` rows of A (at most LIMIT) × 2·HALF columns of a panel in two
 * registers per row; `gemm_rows` runs a whole 32-column panel (AVX-512: one pass of 2×16
 * columns; AVX2: two passes of 2×8). Needs keel_<PREFIX>_activate (simd_activation.h). */
#define DEFINE_PANEL_GEMM(PREFIX, ATTRIBUTE, VEC, HALF, LIMIT, CASES, MASK, MASK_FOR, LOADU, LOAD, STORE,     \
                          SET1, ZERO, FMADD, ADD)                                                           \
    KEEL_INLINE ATTRIBUTE VEC PREFIX##_gemm_finish(VEC value, const keel_epilogue *e, ptrdiff_t row,          \
                                                   ptrdiff_t column, MASK mask) {                           \
        if (e->bias) value = ADD(value, e->bias_per_row ? SET1(e->bias[row]) : LOAD(mask, e->bias + column)); \
        if (e->residual) value = ADD(value, LOAD(mask, e->residual + row * e->residual_stride + column));    \
        return keel_##PREFIX##_activate(value, e);                                                          \
    }                                                                                                       \
    KEEL_INLINE ATTRIBUTE void PREFIX##_gemm_block(const int rows, ptrdiff_t depth, struct rows_view a,      \
                                                   const float *b, ptrdiff_t b_step, int whole,             \
                                                   struct block_target t, MASK low, MASK high, int prefetch) { \
        VEC left[LIMIT], right[LIMIT];                                                                      \
        for (int r = 0; r < rows; r++) { left[r] = ZERO(); right[r] = ZERO(); }                             \
        if (a.row_step == 1 && whole && prefetch) {                                                         \
            PANEL_DEPTH_LOOP(VEC, HALF, SET1, FMADD, LOADU, LOAD, 1, 1, 1)                                  \
        } else if (a.row_step == 1 && whole) {                                                              \
            PANEL_DEPTH_LOOP(VEC, HALF, SET1, FMADD, LOADU, LOAD, 0, 1, 1)                                  \
        } else {                                                                                            \
            PANEL_DEPTH_LOOP(VEC, HALF, SET1, FMADD, LOADU, LOAD, prefetch, whole, a.row_step)              \
        }                                                                                                   \
        for (int r = 0; r < rows; r++) {                                                                    \
            float *out = t.c + r * t.ldc;                                                                   \
            if (t.accumulate) {                                                                             \
                left[r] = ADD(left[r], LOAD(low, out));                                                     \
                right[r] = ADD(right[r], LOAD(high, out + HALF));                                           \
            }                                                                                               \
            if (t.epilogue) {                                                                               \
                left[r] = PREFIX##_gemm_finish(left[r], t.epilogue, t.row + r, t.column, low);              \
                right[r] = PREFIX##_gemm_finish(right[r], t.epilogue, t.row + r, t.column + HALF, high);    \
            }                                                                                               \
            STORE(low, out, left[r]);                                                                       \
            STORE(high, out + HALF, right[r]);                                                              \
        }                                                                                                   \
    }                                                                                                       \
    static ATTRIBUTE void PREFIX##_gemm_rows(int rows, ptrdiff_t depth, struct rows_view a, const float *b,  \
                                             ptrdiff_t b_step, int padded, struct block_target t,           \
                                             ptrdiff_t width) {                                             \
        for (ptrdiff_t first = 0; first < PANEL && first < width; first += 2 * HALF) {                      \
            MASK low = MASK_FOR(width - first), high = MASK_FOR(width - first - HALF);                      \
            struct block_target part = t;                                                                   \
            part.c += first;                                                                                \
            part.column += first;                                                                           \
            int whole = padded || width - first >= 2 * HALF;                                                \
            switch (rows) {                                                                                 \
                CASES(PREFIX##_gemm_block, depth, a, b + first, b_step, whole, part, low, high,             \
                      depth > SHALLOW)                                                                      \
                default: break;                                                                             \
            }                                                                                               \
        }                                                                                                   \
    }                                                                                                       \
    void keel_##PREFIX##_sgemm(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, keel_gemm_left left,                   \
                               keel_gemm_right right, float *c, ptrdiff_t ldc, const keel_epilogue *epilogue) { \
        if (m <= 0 || n <= 0) return;                                                                       \
        epilogue = effective_epilogue(epilogue);                                                            \
        /* Row groups of at most LIMIT rows, split evenly inside each block of A (one block of m     \
         * rows unless A is packed in blocks). */                                                          \
        ptrdiff_t block_rows = left.block_rows > 0 ? left.block_rows : m;                                   \
        ptrdiff_t blocks = (m + block_rows - 1) / block_rows;                                               \
        ptrdiff_t panels = (n + PANEL - 1) / PANEL;                                                         \
        /* A's rows are packed when deep and not already adjacent per depth. */                             \
        int pack = k > SHALLOW && left.row_step != 1;                                                       \
        float packed[DEPTH * LIMIT];                                                                        \
        const float zero = 0;                                                                               \
        if (k <= 0) {                                                                                       \
            /* An empty sum: the epilogue of zero. */                                                       \
            left = (keel_gemm_left){ &zero, 0, 0, 0, 0 };                                                   \
            right = (keel_gemm_right){ &zero, 0, 0, 1 };                                                    \
        }                                                                                                   \
        ptrdiff_t total = k > 0 ? k : 1;                                                                    \
        for (ptrdiff_t start = 0; start < total; start += DEPTH) {                                          \
            ptrdiff_t depth = k <= 0 ? 0 : (k - start < DEPTH ? k - start : DEPTH);                         \
            int last = start + DEPTH >= total;                                                              \
            for (ptrdiff_t block = 0; block < panels; block += COLUMN_BLOCK) {                              \
                ptrdiff_t block_end = block + COLUMN_BLOCK < panels ? block + COLUMN_BLOCK : panels;        \
                for (ptrdiff_t row_block = 0; row_block < blocks; row_block++) {                            \
                  ptrdiff_t block_first = row_block * block_rows;                                           \
                  ptrdiff_t in_block = m - block_first < block_rows ? m - block_first : block_rows;         \
                  ptrdiff_t groups = (in_block + LIMIT - 1) / LIMIT;                                        \
                  const float *block_base = left.base + row_block * left.block_step + start * left.depth_step; \
                  for (ptrdiff_t group = 0; group < groups; group++) {                                      \
                    ptrdiff_t within = group_start(in_block, groups, group);                                \
                    ptrdiff_t first = block_first + within;                                                 \
                    int rows = (int)(group_start(in_block, groups, group + 1) - within);                    \
                    struct rows_view view = { block_base + within * left.row_step, left.depth_step,         \
                                              left.row_step };                                              \
                    if (pack) {                                                                             \
                        pack_rows(rows, depth, view, packed);                                               \
                        view = (struct rows_view){ packed, rows, 1 };                                       \
                    }                                                                                       \
                    for (ptrdiff_t panel = block; panel < block_end; panel++) {                             \
                        const float *b = right.base + panel * right.panel_step + start * right.depth_step;  \
                        struct block_target target = { c + first * ldc + panel * PANEL, ldc, first,         \
                                                       panel * PANEL, start > 0, last ? epilogue : NULL };  \
                        ptrdiff_t width = n - panel * PANEL < PANEL ? n - panel * PANEL : PANEL;            \
                        PREFIX##_gemm_rows(rows, depth, view, b, right.depth_step, right.padded, target, width); \
                    }                                                                                       \
                  }                                                                                         \
                }                                                                                           \
            }                                                                                               \
        }                                                                                                   \
    }                                                                                                       \
    void keel_##PREFIX##_sgemm_packed_b(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const float *a, ptrdiff_t lda, \
                                        const float *b_panels, float *c, ptrdiff_t ldc) {                   \
        keel_##PREFIX##_sgemm(m, n, k, (keel_gemm_left){ a, lda, 1, 0, 0 },                                 \
                              (keel_gemm_right){ b_panels, PANEL, k * PANEL, 1 }, c, ldc, NULL);            \
    }

#endif
#endif
