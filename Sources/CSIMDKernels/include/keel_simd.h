#ifndef KEEL_SIMD_H
#define KEEL_SIMD_H
/* Hand-vectorised kernels for the loops OpenBLAS does not cover well. Each has an AVX-512 and an
 * AVX2+FMA body compiled with per-function target attributes and chosen at run time from the
 * CPU's features, so the binary still starts on any x86-64 (and builds on arm64, where every
 * entry point reports "no SIMD path" and the Swift caller uses its portable code). */

#include <stddef.h>

#include "keel_epilogue.h"

typedef enum {
    KEEL_SIMD_GENERIC = 0,
    KEEL_SIMD_AVX2 = 1,
    KEEL_SIMD_AVX512 = 2,
} keel_simd_level;

/* The widest level this CPU supports, lowered by the KEEL_SIMD environment variable
 * (generic, avx2 or avx512) when set. */
keel_simd_level keel_simd_detected_level(void);
/* The level kernels use now: the detected one unless lowered by keel_simd_limit_level. */
keel_simd_level keel_simd_level_in_use(void);
/* Caps the level (tests run every path this way); a cap above the detected level is ignored. */
void keel_simd_limit_level(keel_simd_level level);

/* Columns per panel of a packed B matrix. */
#define KEEL_PANEL_COLUMNS 32

/* C[m×n] = A[m×k]·B[k×n], C overwritten; A and C row-major with leading dimensions lda and ldc.
 * B is packed in panels of KEEL_PANEL_COLUMNS columns: panel j holds columns 32j..32j+31 as
 * [k][32] at b_panels + j·k·32, the last one zero-padded. Returns 0 and leaves C alone when no
 * SIMD level is in use (the caller then multiplies some other way). */
int keel_sgemm_packed_b(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const float *a, ptrdiff_t lda,
                        const float *b_panels, float *c, ptrdiff_t ldc);

/* The left operand of keel_sgemm: element (row r, depth p) at base[r·row_step + p·depth_step]
 * (row-major A: row_step = lda, depth_step = 1; a transposed one, such as a filter matrix
 * [k][m] read as Wᵀ: row_step = 1, depth_step = m). */
typedef struct {
    const float *base;
    ptrdiff_t row_step, depth_step;
} keel_gemm_left;

/* The right operand: element (depth p, column j) at
 * base[(j / 32)·panel_step + p·depth_step + j mod 32]. A row-major [k][n] matrix has
 * panel_step = 32, depth_step = n; packed panels (keel_sgemm_packed_b's) panel_step = 32·k,
 * depth_step = 32 and `padded` = 1, which lets the last panel be read whole. */
typedef struct {
    const float *base;
    ptrdiff_t depth_step, panel_step;
    int padded;
} keel_gemm_right;

/* C[m×n] = epilogue(A·B), C row-major with leading dimension ldc; `epilogue` may be NULL.
 * Each element is one fused multiply-add chain over k in order, then bias, residual and
 * activation, whatever m and n are, so splitting rows or 32-column blocks across calls gives the
 * same values. Returns 0 and leaves C alone when no SIMD level is in use. */
int keel_sgemm(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, keel_gemm_left a, keel_gemm_right b, float *c,
               ptrdiff_t ldc, const keel_epilogue *epilogue);

#endif
