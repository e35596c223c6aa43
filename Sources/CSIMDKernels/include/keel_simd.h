#ifndef KEEL_SIMD_H
#define KEEL_SIMD_H
/* Hand-vectorised kernels for the loops OpenBLAS does not cover well. Each has an AVX-512 and an
 * AVX2+FMA body compiled with per-function target attributes and chosen at run time from the
 * CPU's features, so the binary still starts on any x86-64 (and builds on arm64, where every
 * entry point reports "no SIMD path" and the Swift caller uses its portable code). */

#include <stddef.h>

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

#endif
