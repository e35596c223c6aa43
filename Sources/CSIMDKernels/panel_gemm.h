/* C = epilogue(A·B) on 32-column panels of B, for the products OpenBLAS serves badly: the
 * Winograd products and the convolutions' and dense layers' GEMMs, whose filter operand is used
 * for a few dozen rows at batch 1 and which OpenBLAS repacks on every call. B streams from its
 * panels (packed once ahead of time, or read in place from a row-major matrix) and A's rows are
 * read in place (packed, transposed to [depth][rows], only to apply a prologue or when rows 4 KB
 * apart would alias in L1).
 * Blocking: depth passes of DEPTH (shorter where A's depths come in segments: a pass stays inside
 * one); in each, blocks of up to PANEL_BLOCK panels of B (DEPTH × 1024
 * floats, 1 MB, in L2 for the whole pass over A's rows), chunks of up to four row groups of A
 * (48 KB, in L2), and for each chunk every panel of the block in turn (DEPTH × 32 floats,
 * 32 KB, in L1 while the chunk's groups pass over it; the first group streams it in and fetches the
 * panel after it into L2). AVX2 passes over a panel in two 16-column halves, each half in turn
 * under all the chunk's groups: a half is 16 KB, which stays in a 32 KB L1 (Zen 3), where the
 * whole panel did not, and every group after the first read it from L2. A row group has at most
 * 12 rows on AVX-512 (24 accumulators in named registers, 3 left for B and the broadcast) and 6
 * on AVX2 (12 of the 16 registers). A block of B that fits in L1 whole (shallow, narrow products)
 * is run the other way round, each row group across every panel, so C is written row by row. The
 * epilogue (bias, residual, activation) runs on the registers of the last depth pass, before the
 * one store. */
#ifndef KEEL_PANEL_GEMM_H
#define KEEL_PANEL_GEMM_H
/* The template each ISA file instantiates (DEFINE_PANEL_GEMM, after its activations), and the
 * scalar helpers it uses. */
#include "keel_kernels.h"
#include "simd_internal.h"

#include <math.h>

enum {
    PANEL = KEEL_PANEL_COLUMNS,
    /* Depth of one pass: a panel of B is DEPTH × 32 floats = 32 KB, which stays in L1 (48 KB)
     * while a chunk of A's row groups passes over it. */
    DEPTH = 256,
    /* A's packed row groups (a chunk: 4 groups of 12 rows on AVX-512, 8 of 6 on AVX2) in 48 KB of
     * stack, read from L2 while B's panel sits in L1. */
    PACKED_FLOATS = 12288,
    /* Panels of B per column block: DEPTH × 32 × 32 floats = 1 MB stays in L2 (2 MB) while every
     * chunk of A passes over it. Wider products (ViT's 3072-column MLP) streamed B's whole 3 MB
     * depth slice from L3 for every 48 rows. */
    PANEL_BLOCK = 32,
    /* Deep products prefetch B this many rows ahead: the first row group streams each panel
     * from memory, which the hardware prefetcher alone left latency-bound (a 49-row 512×512
     * product with B cold ran at 85 GFLOP/s on one core, 125 with this). */
    PREFETCH_ROWS = 32,
    /* A block of B up to this size (half of a 32 KB L1) is run row group by row group. */
    WHOLE_B_BYTES = 16 * 1024,
    AVX512_ROWS = 12,
    AVX2_ROWS = 6,
};


#if KEEL_X86

/* Rows of A as the kernels read them: element (row r, depth p) at base[p·depth_step + r·row_step];
 * a packed slice has depth_step = rows, row_step = 1. */
struct rows_view {
    const float *base;
    ptrdiff_t depth_step, row_step;
};

/* A is read in place (its rows broadcast where they lie) and packed only to apply a prologue.
 * Narrow products (at most eight panels) ran 10–17% faster in place on one AVX-512 core
 * (tools/gemm_bench: ResNet50's 784×1152×128 141 → 156 GFLOP/s, ConvNeXt's 3136×384×96 125 → 143,
 * MobileNetV2's 196×576×96 130 → 166); wide deep ones, which were packed until then, 1–4% on Zen 3
 * with two threads (interleaved medians, batch 1 and 8: ViT-B/16 221 → 216 ms at batch 1, VGG16
 * 526 → 501 and Xception 894 → 865 at batch 8, with the C prefetch of PANEL_BLOCK_START), the
 * packing's 2–3% of their time gone. Products up to SHALLOW deep do not prefetch B. */
enum { SHALLOW = 128 };

/* Whether A is read in place with its rows a multiple of 4 KB apart, the L1's set period (Zen 4:
 * 32 KB, 8 ways). Read in place, 196×1024×512 ran at 100 GFLOP/s on one Zen 4 core where
 * 196×1008×512 and 196×1040×512 ran at 112; packed, at 111 (196×2048×512: 97 → 111). */
KEEL_INLINE int rows_alias(keel_gemm_left left) {
    return left.block_rows == 0 && left.depth_step == 1 && left.row_step > 0 && left.row_step % 1024 == 0;
}

/* First row of group `index` when `m` rows are split into `groups` even groups. */
KEEL_INLINE ptrdiff_t group_start(ptrdiff_t m, ptrdiff_t groups, ptrdiff_t index) { return m * index / groups; }

/* packed[p][r] = A(r, p) for `rows` rows and `depth` depths of `view`, through `prologue` (its
 * vectors starting at the view's first depth) when it is not NULL. */
KEEL_INLINE void pack_rows(int rows, ptrdiff_t depth, struct rows_view view, const keel_gemm_prologue *prologue,
                           float *packed) {
    for (int r = 0; r < rows; r++) {
        const float *line = view.base + r * view.row_step;
        if (!prologue) {
            for (ptrdiff_t p = 0; p < depth; p++) packed[p * rows + r] = line[p * view.depth_step];
            continue;
        }
        for (ptrdiff_t p = 0; p < depth; p++) {
            float value = prologue->scale[p] * line[p * view.depth_step] + prologue->shift[p];
            packed[p * rows + r] = prologue->relu && value <= 0 ? 0 : value; /* NaN stays NaN */
        }
    }
}

/* A run of four rows (fewer at the end of a group) at one depth of a packed slice. */
#define PACK_RUN(target, run, height, keep)                                                                       \
    if (height == 4) _mm_storeu_ps(target, run);                                                                  \
    else _mm_maskstore_ps(target, keep, run);
/* 128-bit lane l of the four transposed vectors: depths 4l…4l+3. */
#define PACK_LANE(l, u, out, rows, height, keep, LANE)                                                            \
    PACK_RUN((out) + (4 * l + 0) * (rows), LANE(u[0], l), height, keep)                                           \
    PACK_RUN((out) + (4 * l + 1) * (rows), LANE(u[1], l), height, keep)                                           \
    PACK_RUN((out) + (4 * l + 2) * (rows), LANE(u[2], l), height, keep)                                           \
    PACK_RUN((out) + (4 * l + 3) * (rows), LANE(u[3], l), height, keep)
#define PACK_EACH_LANE_2(X, ...) X(0, __VA_ARGS__) X(1, __VA_ARGS__)
#define PACK_EACH_LANE_4(X, ...) X(0, __VA_ARGS__) X(1, __VA_ARGS__) X(2, __VA_ARGS__) X(3, __VA_ARGS__)

/* pack_rows for rows contiguous in depth (depth_step 1), four rows at a time: a 4×4 transpose in
 * each 128-bit lane (two rounds of unpacks) turns four rows × LANES depths into LANES runs of four
 * rows, each stored where its depth goes. The scalar transpose cost as much as the multiply on
 * products with few panels (784×512×128 ran at 0.55 of OpenBLAS's speed). A prologue is applied to
 * the four loaded vectors before the transpose. */
#define DEFINE_PACK_ROWS(PREFIX, ATTRIBUTE, VEC, LANES, EACH_LANE, MASK, MASK_FOR, LOAD, LOADU, STOREU, UNPACKLO,    \
                         UNPACKHI, UNPACKLO_PD, UNPACKHI_PD, CASTPS_PD, CASTPD_PS, LANE, FMADD, MAX, ZERO)         \
    static ATTRIBUTE void PREFIX##_pack_rows(int rows, ptrdiff_t depth, struct rows_view view,                    \
                                             const keel_gemm_prologue *prologue, float *packed) {                 \
        if (view.depth_step != 1) {                                                                               \
            pack_rows(rows, depth, view, prologue, packed);                                                       \
            return;                                                                                               \
        }                                                                                                         \
        for (int first = 0; first < rows; first += 4) {                                                           \
            int height = rows - first < 4 ? rows - first : 4;                                                     \
            __m128i keep = _mm_cmpgt_epi32(_mm_set1_epi32(height), _mm_setr_epi32(0, 1, 2, 3));                   \
            /* A short run repeats its last row (in bounds) into the lanes it does not store. */                  \
            const float *line[4];                                                                                 \
            for (int r = 0; r < 4; r++) line[r] = view.base + (first + (r < height ? r : height - 1)) * view.row_step; \
            float *out = packed + first;                                                                          \
            for (ptrdiff_t p = 0; p < depth; p += LANES) {                                                        \
                ptrdiff_t count = depth - p < LANES ? depth - p : LANES;                                          \
                MASK mask = MASK_FOR(count);                                                                      \
                VEC a0 = count == LANES ? LOADU(line[0] + p) : LOAD(mask, line[0] + p);                           \
                VEC a1 = count == LANES ? LOADU(line[1] + p) : LOAD(mask, line[1] + p);                           \
                VEC a2 = count == LANES ? LOADU(line[2] + p) : LOAD(mask, line[2] + p);                           \
                VEC a3 = count == LANES ? LOADU(line[3] + p) : LOAD(mask, line[3] + p);                           \
                if (prologue) {                                                                                   \
                    /* Lanes past a short run hold zeros; they are never stored. */                             \
                    VEC scale = count == LANES ? LOADU(prologue->scale + p) : LOAD(mask, prologue->scale + p);  \
                    VEC shift = count == LANES ? LOADU(prologue->shift + p) : LOAD(mask, prologue->shift + p);  \
                    a0 = FMADD(a0, scale, shift), a1 = FMADD(a1, scale, shift);                                  \
                    a2 = FMADD(a2, scale, shift), a3 = FMADD(a3, scale, shift);                                  \
                    if (prologue->relu) {                                                                         \
                        a0 = MAX(a0, ZERO()), a1 = MAX(a1, ZERO()), a2 = MAX(a2, ZERO()), a3 = MAX(a3, ZERO());  \
                    }                                                                                             \
                }                                                                                                 \
                VEC t0 = UNPACKLO(a0, a1), t1 = UNPACKHI(a0, a1), t2 = UNPACKLO(a2, a3), t3 = UNPACKHI(a2, a3);  \
                VEC u[4] = { CASTPD_PS(UNPACKLO_PD(CASTPS_PD(t0), CASTPS_PD(t2))),                                \
                             CASTPD_PS(UNPACKHI_PD(CASTPS_PD(t0), CASTPS_PD(t2))),                                \
                             CASTPD_PS(UNPACKLO_PD(CASTPS_PD(t1), CASTPS_PD(t3))),                                \
                             CASTPD_PS(UNPACKHI_PD(CASTPS_PD(t1), CASTPS_PD(t3))) };                              \
                if (count == LANES) {                                                                             \
                    EACH_LANE(PACK_LANE, u, out + p * rows, rows, height, keep, LANE)                             \
                } else {                                                                                          \
                    float spill[4][LANES];                                                                        \
                    for (int q = 0; q < 4; q++) STOREU(spill[q], u[q]);                                           \
                    for (ptrdiff_t d = 0; d < count; d++) {                                                       \
                        PACK_RUN(out + (p + d) * rows, _mm_loadu_ps(spill[d & 3] + 4 * (d >> 2)), height, keep)  \
                    }                                                                                             \
                }                                                                                                 \
            }                                                                                                     \
        }                                                                                                         \
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

/* Each row r of a block, by name: X(r, ...) for r = 0…13. The block's accumulators are named
 * variables (left0, right0, …), not arrays, and the rows past a block's height fold away, so clang
 * keeps all of them in registers (an array of 24 __m512 made it spill, which halved the speed). */
#define PANEL_EACH_ROW(X, ...)                                                                              \
    X(0, __VA_ARGS__) X(1, __VA_ARGS__) X(2, __VA_ARGS__) X(3, __VA_ARGS__) X(4, __VA_ARGS__)               \
    X(5, __VA_ARGS__) X(6, __VA_ARGS__) X(7, __VA_ARGS__) X(8, __VA_ARGS__) X(9, __VA_ARGS__)               \
    X(10, __VA_ARGS__) X(11, __VA_ARGS__) X(12, __VA_ARGS__) X(13, __VA_ARGS__)
#define PANEL_DECLARE(r, VEC, ZERO) VEC left##r = ZERO(), right##r = ZERO();
/* SHORT: the last vector a row multiplies (the first when NARROW) holds at most 8 columns, which
 * SHORT_FMADD multiplies on its low half. The broadcast is kept whole for both products: left to
 * itself, clang broadcast into the half and widened that with a shuffle per row, which took the
 * FMA pipes' time the half saved. */
#define PANEL_MULTIPLY_ADD(r, VEC, SET1, FMADD, SHORT_FMADD, STEP, NARROW, SHORT)                           \
    if (r < rows) {                                                                                         \
        VEC value = SET1(column[r * (STEP)]);                                                               \
        if ((SHORT) && !(NARROW)) __asm__("" : "+v"(value));                                                \
        left##r = (NARROW) && (SHORT) ? SHORT_FMADD(value, b0, left##r) : FMADD(value, b0, left##r);        \
        if (!(NARROW)) right##r = (SHORT) ? SHORT_FMADD(value, b1, right##r) : FMADD(value, b1, right##r);  \
    }
/* Row r's accumulators made final: the earlier depth passes' sum added, then the epilogue (but
 * GELU, which PANEL_STORE_PAIR applies). */
#define PANEL_PREPARE(r, PREFIX, HALF, ADD, LOAD, FINISH)                                                   \
    {                                                                                                       \
        const float *out = t.c + r * t.ldc;                                                                 \
        if (t.accumulate) {                                                                                 \
            left##r = ADD(left##r, LOAD(low, out));                                                         \
            right##r = ADD(right##r, LOAD(high, out + HALF));                                               \
        }                                                                                                   \
        if (t.epilogue) {                                                                                   \
            left##r = FINISH(PREFIX, left##r, t.row + r, t.column, low);                                    \
            right##r = FINISH(PREFIX, right##r, t.row + r, t.column + HALF, high);                          \
        }                                                                                                   \
    }
/* The epilogue of one vector: any activation (PANEL_FINISH), or one of the clamps NONE, RELU and
 * CLIP with the bounds `lower` and `upper` the block set once (PANEL_CLAMP). */
#define PANEL_FINISH(PREFIX, value, row, column, mask) PREFIX##_gemm_finish(value, t.epilogue, row, column, mask)
#define PANEL_CLAMP(PREFIX, value, row, column, mask)                                                       \
    PREFIX##_gemm_clamp(PREFIX##_gemm_sum(value, t.epilogue, row, column, mask), lower, upper)
#define PANEL_WRITE(r, HALF, STORE)                                                                 \
    {                                                                                                       \
        float *out = t.c + r * t.ldc;                                                                       \
        STORE(low, out, left##r);                                                                           \
        STORE(high, out + HALF, right##r);                                                                  \
    }
/* Rows r0 and r1 = r0 + 1 of a block, prepared, GELU applied to their four vectors in lockstep
 * (simd_activation.h; one accumulator at a time it was latency-bound and halved a ConvNeXt
 * expansion's speed, 3136×96×384: 92 → 46 GFLOP/s on Zen 3, now 57), and stored. In registers:
 * a pass over the stored block reloaded values through masked loads, which the store buffer does
 * not forward. */
#define PANEL_STORE_PAIR(r0, r1, PREFIX, VEC, HALF, ADD, LOAD, STORE)                                 \
    if (r0 < rows) {                                                                                        \
        PANEL_PREPARE(r0, PREFIX, HALF, ADD, LOAD, PANEL_FINISH)                                            \
        if (r1 < rows) PANEL_PREPARE(r1, PREFIX, HALF, ADD, LOAD, PANEL_FINISH)                             \
        VEC v[LOCKSTEP] = { left##r0, right##r0, left##r1, right##r1 };                                     \
        PREFIX##_gemm_gelu_four(v);                                                                         \
        left##r0 = v[0], right##r0 = v[1], left##r1 = v[2], right##r1 = v[3];                               \
        PANEL_WRITE(r0, HALF, STORE)                                                                        \
        if (r1 < rows) PANEL_WRITE(r1, HALF, STORE)                                                         \
    }
/* Row r of a block, prepared and stored (every epilogue but GELU). */
#define PANEL_STORE(r, PREFIX, HALF, ADD, LOAD, STORE, FINISH)                                              \
    if (r < rows) {                                                                                         \
        PANEL_PREPARE(r, PREFIX, HALF, ADD, LOAD, FINISH)                                                   \
        PANEL_WRITE(r, HALF, STORE)                                                                         \
    }
#define PANEL_EACH_PAIR(X, ...)                                                                             \
    X(0, 1, __VA_ARGS__) X(2, 3, __VA_ARGS__) X(4, 5, __VA_ARGS__) X(6, 7, __VA_ARGS__)                     \
    X(8, 9, __VA_ARGS__) X(10, 11, __VA_ARGS__) X(12, 13, __VA_ARGS__)

/* Optimised builds give each block height its own copy of the block, with the rows' loops
 * unrolled (see KEEL_INLINE); every build picks among the same specialised depth loops, so the
 * test suite's unoptimised build runs each of them (it ran only the general loop, and the copies
 * that release builds take were checked by no test). */
#define PANEL_SPECIALISE 1

/* A block fetches its rows of C into L1 while its depth loop runs, and on a product's last pass (the
 * one with the epilogue) its residual's rows too. One that adds to C (a later depth pass) reads them: written a whole pass
 * earlier, they come from L3, and their loads after the loop stalled the block (1–2% of a
 * 197×768×3072 product's time on Zen 3). A first pass writes them: its loop, at most DEPTH deep, is
 * too short on a shallow product to hide the misses of the lines its stores are about to write, and
 * they stalled the stores (a line fetched for reading that no other core holds arrives exclusive, so
 * the store needs no second request). One core, torchvision ResNet50 at batch 8, per-layer minima on
 * Zen 4: its 1×1 layers with a shortcut took 133 → 116 ms in all, its 64-channel Winograd layers
 * 60 → 52. Fetching the residual on the last of several passes too (it had been left to the first
 * pass of single-pass products): Keras Xception's eight 728-deep shortcut layers at batch 1, one
 * core, 29.7–29.8 → 29.0–29.2 ms, ResNet50's two 512-deep ones 2–6% faster in three rounds. */
#define PANEL_PREFETCH_ROW(line, HALF)                                                                      \
    do {                                                                                                    \
        _mm_prefetch((const char *)(line), _MM_HINT_T0);                                                    \
        _mm_prefetch((const char *)((line) + 2 * (HALF) - 1), _MM_HINT_T0);                                 \
    } while (0)
#define PANEL_BLOCK_START(HALF)                                                                             \
    {                                                                                                       \
        const keel_epilogue *e = t.epilogue;                                                                \
        for (int r = 0; r < rows; r++) {                                                                    \
            PANEL_PREFETCH_ROW(t.c + r * t.ldc, HALF);                                                      \
            if (e && e->residual) PANEL_PREFETCH_ROW(e->residual + (t.row + r) * e->residual_stride + t.column, HALF); \
        }                                                                                                   \
    }

/* The depth loop of one block. PREFETCH, WHOLE and STEP (A's row step) are constants in the
 * copies the common cases take (packed A rows with row step 1, whole deep panels): tested inside
 * the loop, they cost two branches and an address computation per broadcast, and the loop ran
 * near the front end's limit instead of the FMA ports'. NARROW (the columns fit the first vector:
 * 16 output channels, or a product's last 8 or 16) multiplies only the first vector: the second's
 * products were all padding, and a 12544×32×16 product (MobileNetV2, EfficientNet) ran at half
 * speed. SHORT (that vector holds at most 8 columns: 24, 40, 72 or 120 output channels) multiplies
 * it on its low 256 bits, which Zen 4's two 256-bit FMA pipes run two a cycle where a 512-bit one
 * takes both: 3136×144×24 ran at 83 GFLOP/s on one Zen 4 core against 111 for 3136×144×32. */
#define PANEL_DEPTH_LOOP(VEC, HALF, SET1, FMADD, SHORT_FMADD, LOADU, LOAD, PREFETCH, WHOLE, STEP, NARROW, SHORT) \
    for (ptrdiff_t p = 0; p < depth; p++) {                                                                 \
        const float *line = b + p * b_step;                                                                 \
        if (PREFETCH) {                                                                                     \
            _mm_prefetch((const char *)(line + PREFETCH_ROWS * b_step), _MM_HINT_T0);                       \
            if (2 * HALF > 16) _mm_prefetch((const char *)(line + PREFETCH_ROWS * b_step + second), _MM_HINT_T0); \
            _mm_prefetch((const char *)(next + p * b_step), _MM_HINT_T1);                                   \
            if (2 * HALF > 16) _mm_prefetch((const char *)(next + p * b_step + second), _MM_HINT_T1);       \
        }                                                                                                   \
        _mm_prefetch((const char *)(ahead + 16 * p), _MM_HINT_T1);                                        \
        VEC b0 = WHOLE ? LOADU(line) : LOAD(low, line);                                                     \
        VEC b1 = (NARROW) ? b0 : WHOLE ? LOADU(line + second) : LOAD(high, line + second);                  \
        const float *column = a.base + p * a.depth_step;                                                    \
        PANEL_EACH_ROW(PANEL_MULTIPLY_ADD, VEC, SET1, FMADD, SHORT_FMADD, STEP, NARROW, SHORT)              \
    }

/* Columns `part` on of `panel` (B at `b`, `width` columns) for row group `g` of the chunk, inside
 * sgemm_prologue's loops. */
#define PANEL_PIECE(PREFIX, g, prefetch, next)                                                              \
    {                                                                                                       \
        struct block_target target = { c + firsts[g] * ldc + panel * PANEL, ldc, firsts[g], panel * PANEL,   \
                                       start > 0, last ? epilogue : NULL };                                 \
        PREFIX##_gemm_rows(heights[g], depth, &views[g], b, right.depth_step, half_step, right.padded, &target, \
                           width, part, prefetch, next);                                                   \
    }

/* One body per level: `rows` rows of A (at most LIMIT, at most 14) × 2·HALF columns of a panel in
 * two registers per row; `gemm_rows` runs the 2·HALF columns of a panel from column `first` (AVX-512:
 * the whole panel; AVX2: a half). A vector of at most SHORT_LANES columns (0: none) multiplies
 * through SHORT_FMADD. Needs keel_<PREFIX>_activate (simd_activation.h). */
#define DEFINE_PANEL_GEMM(PREFIX, ATTRIBUTE, VEC, HALF, LIMIT, CASES, MASK, MASK_FOR, LOADU, LOAD, STORE,     \
                          SET1, ZERO, FMADD, ADD, MIN, MAX, SHORT_LANES, SHORT_FMADD)                       \
    KEEL_INLINE ATTRIBUTE VEC PREFIX##_gemm_sum(VEC value, const keel_epilogue *e, ptrdiff_t row,    \
                                                       ptrdiff_t column, MASK mask) {                       \
        if (e->bias) value = ADD(value, e->bias_per_row ? SET1(e->bias[row]) : LOAD(mask, e->bias + column)); \
        if (e->residual) value = ADD(value, LOAD(mask, e->residual + row * e->residual_stride + column));    \
        return value;                                                                                       \
    }                                                                                                       \
    KEEL_INLINE ATTRIBUTE VEC PREFIX##_gemm_finish(VEC value, const keel_epilogue *e, ptrdiff_t row,          \
                                                   ptrdiff_t column, MASK mask) {                           \
        value = PREFIX##_gemm_sum(value, e, row, column, mask);                                             \
        /* GELU is left to PANEL_STORE_PAIR. */                                                             \
        return e->activation == KEEL_ACTIVATION_GELU ? value : keel_##PREFIX##_activate(value, e);          \
    }                                                                                                       \
    /* The operand order of keel_<PREFIX>_activate's RELU and CLIP, so NaN and −0 come out the same. */     \
    KEEL_INLINE ATTRIBUTE VEC PREFIX##_gemm_clamp(VEC value, VEC lower, VEC upper) {                 \
        return MIN(upper, MAX(lower, value));                                                               \
    }                                                                                                       \
    /* Out of line: inlined into every block copy, the lockstep GELU made the block's code so large   \
     * that its depth loop ran at half speed even without an activation. */                          \
    __attribute__((noinline)) static ATTRIBUTE void PREFIX##_gemm_gelu_four(VEC *v) {                       \
        keel_##PREFIX##_gelu_lockstep(v);                                                                   \
    }                                                                                                       \
    KEEL_INLINE ATTRIBUTE void PREFIX##_gemm_block(const int rows, ptrdiff_t depth, struct rows_view a,      \
                                                   const float *b, ptrdiff_t b_step, ptrdiff_t second,      \
                                                   int whole, int narrow, int short_tail,                   \
                                                   struct block_target t, MASK low,                         \
                                                   MASK high, int prefetch, const float *next) {            \
        PANEL_EACH_ROW(PANEL_DECLARE, VEC, ZERO)                                                            \
        PANEL_BLOCK_START(HALF)                                                                             \
        /* A read in place: one line per depth step of the rows after this block's (the next group's), \
         * into L2. A layer's input at batch 8 or a large map comes from L3 or memory, and the 12   \
         * broadcast streams of a row group left the first panel's pass latency-bound. One Zen 4    \
         * core, A cold (tools/gemm_bench GEMM_BENCH_COLD_A): EfficientNetV2's 3136×192×48         \
         * 61–76 → 102–110 GFLOP/s, MobileNetV2's 3136×144×24 44 → 78; warm A 0–20% faster too.    \
         * Into L1 instead it crowded the panel of B out: slower on warm products. Packed A is      \
         * on the stack already; its pointer is prefetched harmlessly. */                             \
        const float *ahead = a.depth_step == 1 ? a.base + rows * a.row_step : a.base;                       \
        if (PANEL_SPECIALISE && short_tail && narrow) {                                                     \
            PANEL_DEPTH_LOOP(VEC, HALF, SET1, FMADD, SHORT_FMADD, LOADU, LOAD, prefetch, whole, a.row_step, 1, 1) \
        } else if (PANEL_SPECIALISE && short_tail) {                                                        \
            PANEL_DEPTH_LOOP(VEC, HALF, SET1, FMADD, SHORT_FMADD, LOADU, LOAD, prefetch, whole, a.row_step, 0, 1) \
        } else if (PANEL_SPECIALISE && narrow && a.row_step == 1) {                                         \
            PANEL_DEPTH_LOOP(VEC, HALF, SET1, FMADD, SHORT_FMADD, LOADU, LOAD, prefetch, whole, 1, 1, 0)    \
        } else if (PANEL_SPECIALISE && narrow) {                                                            \
            PANEL_DEPTH_LOOP(VEC, HALF, SET1, FMADD, SHORT_FMADD, LOADU, LOAD, prefetch, whole, a.row_step, 1, 0) \
        } else if (PANEL_SPECIALISE && a.row_step == 1 && whole && prefetch) {                              \
            PANEL_DEPTH_LOOP(VEC, HALF, SET1, FMADD, SHORT_FMADD, LOADU, LOAD, 1, 1, 1, 0, 0)               \
        } else if (PANEL_SPECIALISE && whole && prefetch) {                                                 \
            PANEL_DEPTH_LOOP(VEC, HALF, SET1, FMADD, SHORT_FMADD, LOADU, LOAD, 1, 1, a.row_step, 0, 0)      \
        } else if (PANEL_SPECIALISE && a.row_step == 1 && whole) {                                          \
            PANEL_DEPTH_LOOP(VEC, HALF, SET1, FMADD, SHORT_FMADD, LOADU, LOAD, 0, 1, 1, 0, 0)               \
        } else if (PANEL_SPECIALISE && whole && !prefetch) {                                                \
            PANEL_DEPTH_LOOP(VEC, HALF, SET1, FMADD, SHORT_FMADD, LOADU, LOAD, 0, 1, a.row_step, 0, 0)      \
        } else {                                                                                            \
            PANEL_DEPTH_LOOP(VEC, HALF, SET1, FMADD, SHORT_FMADD, LOADU, LOAD, prefetch, whole, a.row_step, narrow, \
                             short_tail)                                                                    \
        }                                                                                                   \
        /* Pairs only for GELU: in every block the pairs' store path ran shallow products 3–5% slower. */  \
        const keel_activation activation = t.epilogue ? t.epilogue->activation : KEEL_ACTIVATION_NONE;     \
        if (activation == KEEL_ACTIVATION_GELU) {                                                           \
            PANEL_EACH_PAIR(PANEL_STORE_PAIR, PREFIX, VEC, HALF, ADD, LOAD, STORE)                          \
        } else if (t.epilogue && (activation == KEEL_ACTIVATION_NONE || activation == KEEL_ACTIVATION_RELU || \
                   activation == KEEL_ACTIVATION_CLIP)) {                                                   \
            /* Bounds set once per block: the activation's switch on every vector cost shallow products \
             * a quarter of their time (Zen 3, one core: MobileNetV2's 12544×16×96 with ReLU6 46 → 57   \
             * GFLOP/s, 3136×24×144 57 → 67). Blocks without an epilogue keep the plain path: sent     \
             * through infinite bounds, deep products ran 10% slower. */                                \
            const VEC lower = SET1(activation == KEEL_ACTIVATION_RELU ? 0.0f                                \
                                   : activation == KEEL_ACTIVATION_CLIP ? t.epilogue->parameter0 : -INFINITY); \
            const VEC upper = SET1(activation == KEEL_ACTIVATION_CLIP ? t.epilogue->parameter1 : INFINITY);  \
            PANEL_EACH_ROW(PANEL_STORE, PREFIX, HALF, ADD, LOAD, STORE, PANEL_CLAMP)                        \
        } else {                                                                                            \
            PANEL_EACH_ROW(PANEL_STORE, PREFIX, HALF, ADD, LOAD, STORE, PANEL_FINISH)                       \
        }                                                                                                   \
    }                                                                                                       \
    /* `a` and `t` by address: passed by value, they were written to the stack field by field and     \
     * read back as 16-byte vectors, which no store forwards to (a stall on every call, 10% of a     \
     * shallow product's time on Zen 3). */                                                          \
    static ATTRIBUTE void PREFIX##_gemm_rows(int rows, ptrdiff_t depth, const struct rows_view *view,       \
                                             const float *b, ptrdiff_t b_step, ptrdiff_t half_step,         \
                                             int padded, const struct block_target *t, ptrdiff_t width,     \
                                             ptrdiff_t first, int prefetch, const float *next) {            \
        MASK low = MASK_FOR(width - first), high = MASK_FOR(width - first - HALF);                          \
        const struct rows_view a = { view->base, view->depth_step, view->row_step };                        \
        struct block_target part = { t->c + first, t->ldc, t->row, t->column + first, t->accumulate,        \
                                     t->epilogue };                                                         \
        int whole = padded || width - first >= 2 * HALF, narrow = width - first <= HALF;                   \
        /* Only where a half vector is cheaper than a whole one (SHORT_LANES: 8 of AVX-512's 16). */      \
        int short_tail = SHORT_LANES > 0 && (narrow ? width - first : width - first - HALF) <= SHORT_LANES; \
        /* Columns `first` on (0 or 16) start at this offset in the panel; the block's second vector    \
         * is the next 8 columns (AVX2) or the panel's other half (AVX-512). */                          \
        const ptrdiff_t offset = (first / 16) * half_step, second = 2 * HALF > 16 ? half_step : HALF;      \
        switch (rows) {                                                                                     \
            CASES(PREFIX##_gemm_block, depth, a, b + offset, b_step, second, whole, narrow, short_tail, part, \
                  low, high, prefetch, next + offset)                                                       \
            default: break;                                                                                 \
        }                                                                                                   \
    }                                                                                                       \
    void keel_##PREFIX##_sgemm_prologue(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, keel_gemm_left left,          \
                                        keel_gemm_right right, float *c, ptrdiff_t ldc,                     \
                                        const keel_epilogue *epilogue, const keel_gemm_prologue *prologue) { \
        if (m <= 0 || n <= 0) return;                                                                       \
        epilogue = effective_epilogue(epilogue);                                                            \
        enum { CHUNK = PACKED_FLOATS / (DEPTH * LIMIT) };                                                   \
        /* Row groups of at most LIMIT rows, split evenly inside each block of A (one block of m     \
         * rows unless A is packed in blocks). */                                                          \
        ptrdiff_t block_rows = left.block_rows > 0 ? left.block_rows : m;                                   \
        ptrdiff_t blocks = (m + block_rows - 1) / block_rows;                                               \
        ptrdiff_t panels = (n + PANEL - 1) / PANEL;                                                         \
        /* A's rows are packed through a prologue, which is applied while packing, and when they lie  \
         * a multiple of 4 KB apart (1024 or 2048 channels): a row group's lines then all map to the   \
         * same L1 set, 12 rows on AVX-512, more than its 8 ways (AVX2's 6 fit: packed, they ran       \
         * 0–5% slower). */                                                                                \
        int pack = prologue != NULL || (LIMIT > 8 && rows_alias(left));                                     \
        float packed[PACKED_FLOATS];                                                                        \
        const float zero = 0;                                                                               \
        if (k <= 0) {                                                                                       \
            /* An empty sum: the epilogue of zero. */                                                       \
            left = (keel_gemm_left){ &zero, 0, 0, 0, 0 };                                                   \
            prologue = NULL;                                                                                \
            right = (keel_gemm_right){ &zero, 0, 0, 1, 0 };                                                 \
        }                                                                                                   \
        ptrdiff_t total = k > 0 ? k : 1;                                                                    \
        const ptrdiff_t half_step = right.half_step ? right.half_step : 16;                                 \
        const ptrdiff_t segment = left.segment_depth;                                                       \
        ptrdiff_t step = DEPTH; /* from one pass to the next */                                             \
        for (ptrdiff_t start = 0; start < total; start += step) {                                           \
            step = total - start < DEPTH ? total - start : DEPTH;                                           \
            /* A pass stays inside one segment of A, where its depths are evenly spaced. */                 \
            if (segment > 0 && step > segment - start % segment) step = segment - start % segment;          \
            ptrdiff_t depth = k <= 0 ? 0 : step;                                                            \
            const ptrdiff_t depth_offset = segment > 0                                                      \
                ? (start / segment) * left.segment_step + (start % segment) * left.depth_step               \
                : start * left.depth_step;                                                                  \
            int last = start + step >= total;                                                               \
            keel_gemm_prologue pass;                                                                        \
            if (prologue) pass = (keel_gemm_prologue){ prologue->scale + start, prologue->shift + start, prologue->relu }; \
            for (ptrdiff_t panel_first = 0; panel_first < panels; panel_first += PANEL_BLOCK) {             \
            ptrdiff_t panel_end = panel_first + PANEL_BLOCK < panels ? panel_first + PANEL_BLOCK : panels;      \
            for (ptrdiff_t row_block = 0; row_block < blocks; row_block++) {                                \
                ptrdiff_t block_first = row_block * block_rows;                                             \
                ptrdiff_t in_block = m - block_first < block_rows ? m - block_first : block_rows;           \
                ptrdiff_t groups = (in_block + LIMIT - 1) / LIMIT;                                          \
                const float *block_base = left.base + row_block * left.block_step + depth_offset;          \
                for (ptrdiff_t chunk = 0; chunk < groups; chunk += CHUNK) {                                 \
                    int count = groups - chunk < CHUNK ? (int)(groups - chunk) : CHUNK;                     \
                    struct rows_view views[CHUNK];                                                          \
                    ptrdiff_t firsts[CHUNK];                                                                \
                    int heights[CHUNK];                                                                     \
                    for (int g = 0; g < count; g++) {                                                       \
                        ptrdiff_t within = group_start(in_block, groups, chunk + g);                        \
                        firsts[g] = block_first + within;                                                   \
                        heights[g] = (int)(group_start(in_block, groups, chunk + g + 1) - within);          \
                        views[g] = (struct rows_view){ block_base + within * left.row_step, left.depth_step, \
                                                       left.row_step };                                     \
                        if (pack) {                                                                         \
                            float *slice = packed + g * DEPTH * LIMIT;                                      \
                            PREFIX##_pack_rows(heights[g], depth, views[g], prologue ? &pass : NULL, slice);         \
                            views[g] = (struct rows_view){ slice, heights[g], 1 };                          \
                        }                                                                                   \
                    }                                                                                       \
                    /* A block of B small enough to stay in L1 whole (shallow products: MobileNet's and EfficientNet's \
                     * expansions) is taken row group by row group, each group across every panel, so that C is \
                     * written a few whole rows at a time rather than in 64-byte strips down 48 rows per panel. */ \
                    if ((panel_end - panel_first) * PANEL * depth * (ptrdiff_t)sizeof(float) <= WHOLE_B_BYTES) { \
                        for (int g = 0; g < count; g++)                                                      \
                            for (ptrdiff_t panel = panel_first; panel < panel_end; panel++) {                \
                                const float *b = right.base + panel * right.panel_step + start * right.depth_step; \
                                ptrdiff_t width = n - panel * PANEL < PANEL ? n - panel * PANEL : PANEL;     \
                                for (ptrdiff_t part = 0; part < width; part += 2 * HALF)                     \
                                    PANEL_PIECE(PREFIX, g, 0, b)                                              \
                            }                                                                                \
                        continue;                                                                            \
                    }                                                                                        \
                    /* Each panel of B (DEPTH × 32 floats, 32 KB) stays in L1 while the chunk's row          \
                     * groups pass over it; the first group streams it in, with prefetches. */               \
                    for (ptrdiff_t panel = panel_first; panel < panel_end; panel++) {                        \
                        const float *b = right.base + panel * right.panel_step + start * right.depth_step;  \
                        ptrdiff_t width = n - panel * PANEL < PANEL ? n - panel * PANEL : PANEL;            \
                        /* The panel the loop takes next (in this chunk, the next chunk, the next column    \
                         * block or the next depth pass), which the first group fetches into L2 while it    \
                         * streams this one from memory: prefetching only within the panel left each       \
                         * panel's first rows latency-bound. */                                             \
                        const float *next =                                                                 \
                            panel + 1 < panel_end ? b + right.panel_step                                    \
                            : chunk + CHUNK < groups || row_block + 1 < blocks                              \
                                ? b - (panel - panel_first) * right.panel_step                              \
                            : panel_end < panels ? b + right.panel_step                                     \
                            : start + depth < k ? right.base + (start + depth) * right.depth_step            \
                            : b;                                                                            \
                        for (ptrdiff_t part = 0; part < width; part += 2 * HALF)                             \
                            for (int g = 0; g < count; g++)                                                  \
                                PANEL_PIECE(PREFIX, g, g == 0 && depth > SHALLOW, next)                  \
                    }                                                                                        \
                }                                                                                            \
            }                                                                                                \
            }                                                                                                \
        }                                                                                                    \
    }                                                                                                        \
    void keel_##PREFIX##_sgemm(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, keel_gemm_left left,                   \
                               keel_gemm_right right, float *c, ptrdiff_t ldc, const keel_epilogue *epilogue) { \
        keel_##PREFIX##_sgemm_prologue(m, n, k, left, right, c, ldc, epilogue, NULL);                       \
    }

#endif
#endif
