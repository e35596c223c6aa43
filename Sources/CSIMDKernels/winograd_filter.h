/* Winograd F(4×4, 3×3) filter transform, vectorised across output channels. With
 *   G = [1/4 0 0; −1/6 −1/6 −1/6; −1/6 1/6 −1/6; 1/24 1/12 1/6; 1/24 −1/12 1/6; 0 0 1]
 * each 3-vector (g0, g1, g2) maps to 6 values; G runs down the filter's columns, then along
 * the rows of the result. It divides by 6 rather than multiplying by 1/6: that reciprocal is
 * inexact, and although the error is ~1e-16 it changes the float result of about one value in
 * 2000 (cancellation), where dividing gives exactly the portable Swift path's values. */
#ifndef KEEL_WINOGRAD_FILTER_H
#define KEEL_WINOGRAD_FILTER_H
/* What both ISA files' filter transforms share: the arithmetic (DEFINE_FILTER_BODY) and the
 * gathering of taps. */
#include "keel_kernels.h"
#include "simd_internal.h"

enum { FILTER_LANES = 16 };

#if KEEL_X86

/* Destination of (channel, output) in point 0's matrix: 32-column panels, interleaved [inputs][32]
 * or split into two [inputs][16] halves (keel_gemm_right). A vector of up to 16 outputs from a
 * multiple of its width stays contiguous in both. */
static inline ptrdiff_t panel_offset(ptrdiff_t inputs, ptrdiff_t channel, ptrdiff_t output, int split_halves) {
    const ptrdiff_t lane = output % KEEL_PANEL_COLUMNS, panel = (output / KEEL_PANEL_COLUMNS) * inputs * KEEL_PANEL_COLUMNS;
    return split_halves ? panel + (lane / 16) * inputs * 16 + channel * 16 + lane % 16
                        : panel + channel * KEEL_PANEL_COLUMNS + lane;
}

/* taps[t][lane] = tap t of output first + lane (zero past the last output). The kernels run
 * output blocks outermost and channels inside, so an OIHW block reads its filters front to back
 * and each point's destination advances one panel row at a time. */
static inline void gather_taps(const float *source, ptrdiff_t output_stride, ptrdiff_t channel_offset,
                               ptrdiff_t tap_stride, ptrdiff_t first, int lanes, int width,
                               float taps[9][FILTER_LANES]) {
    for (int t = 0; t < 9; t++) {
        const float *tap = source + channel_offset + t * tap_stride + first * output_stride;
        for (int lane = 0; lane < width; lane++) taps[t][lane] = lane < lanes ? tap[lane * output_stride] : 0.0f;
    }
}

/* x/24 and x/12 are taken as (x/6)·¼ and (x/6)·½, and x/4 as x·¼: scaling by a power of two
 * commutes with rounding, so these are exactly the quotients, with three divisions fewer. */
#define DEFINE_FILTER_BODY(NAME, ATTRIBUTE, VEC, SET1, ADD, SUB, MUL, DIV)                             \
    KEEL_INLINE ATTRIBUTE void NAME(VEC g0, VEC g1, VEC g2, VEC *result) {                             \
        const VEC quarter = SET1(0.25), half = SET1(0.5), six = SET1(6.0);                            \
        VEC even = DIV(ADD(g0, g2), six), odd = DIV(g1, six);                                         \
        VEC even_scaled = ADD(MUL(DIV(g0, six), quarter), DIV(g2, six)), odd_scaled = MUL(odd, half); \
        result[0] = MUL(g0, quarter);                                                                 \
        result[1] = SUB(SUB(SET1(0.0), even), odd);                                                   \
        result[2] = SUB(odd, even);                                                                   \
        result[3] = ADD(even_scaled, odd_scaled);                                                     \
        result[4] = SUB(even_scaled, odd_scaled);                                                     \
        result[5] = g2;                                                                               \
    }

#endif
#endif
