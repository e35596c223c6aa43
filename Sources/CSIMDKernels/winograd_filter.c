/* Winograd F(4×4, 3×3) filter transform, vectorised across output channels. With
 *   G = [1/4 0 0; −1/6 −1/6 −1/6; −1/6 1/6 −1/6; 1/24 1/12 1/6; 1/24 −1/12 1/6; 0 0 1]
 * each 3-vector (g0, g1, g2) maps to 6 values; G runs down the filter's columns, then along
 * the rows of the result. It divides by 6 rather than multiplying by 1/6: that reciprocal is
 * inexact, and although the error is ~1e-16 it changes the float result of about one value in
 * 2000 (cancellation), where dividing gives exactly the portable Swift path's values. */
#include "keel_winograd_filter.h"
#include "keel_simd.h"
#include "simd_internal.h"

enum { PANEL = KEEL_PANEL_COLUMNS, LANES = 16 };

#if KEEL_X86

/* Destination of (channel, output) in point 0's matrix. */
static inline ptrdiff_t panel_offset(ptrdiff_t inputs, ptrdiff_t channel, ptrdiff_t output) {
    return (output / PANEL) * inputs * PANEL + channel * PANEL + output % PANEL;
}

/* taps[t][lane] = tap t of output first + lane (zero past the last output). The kernels run
 * output blocks outermost and channels inside, so an OIHW block reads its filters front to back
 * and each point's destination advances one panel row at a time. */
static inline void gather_taps(const float *source, ptrdiff_t output_stride, ptrdiff_t channel_offset,
                               ptrdiff_t tap_stride, ptrdiff_t first, int lanes, int width,
                               float taps[9][LANES]) {
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

DEFINE_FILTER_BODY(avx512_filter, KEEL_AVX512, __m512d, _mm512_set1_pd, _mm512_add_pd, _mm512_sub_pd, _mm512_mul_pd,
                   _mm512_div_pd)
DEFINE_FILTER_BODY(avx2_filter, KEEL_AVX2, __m256d, _mm256_set1_pd, _mm256_add_pd, _mm256_sub_pd, _mm256_mul_pd,
                   _mm256_div_pd)

/* 16 output channels as two halves of 8 doubles. */
static KEEL_AVX512 void avx512_transform(const float *source, ptrdiff_t inputs, ptrdiff_t outputs,
                                         ptrdiff_t output_stride, ptrdiff_t channel_stride, ptrdiff_t tap_stride,
                                         ptrdiff_t channel_begin, ptrdiff_t channel_end,
                                         float *destination, ptrdiff_t point_stride) {
    float taps[9][LANES] __attribute__((aligned(64)));
    __m512d g[2][9], half[2][18], points[2][6];
    for (ptrdiff_t first = 0; first < outputs; first += 16) {
        for (ptrdiff_t channel = channel_begin; channel < channel_end; channel++) {
            int lanes = outputs - first < 16 ? (int)(outputs - first) : 16;
            gather_taps(source, output_stride, channel * channel_stride, tap_stride, first, lanes, 16, taps);
            for (int t = 0; t < 9; t++) {
                g[0][t] = _mm512_cvtps_pd(_mm256_load_ps(taps[t]));
                g[1][t] = _mm512_cvtps_pd(_mm256_load_ps(taps[t] + 8));
            }
            for (int h = 0; h < 2; h++)
                for (int column = 0; column < 3; column++)
                    avx512_filter(g[h][column], g[h][3 + column], g[h][6 + column], half[h] + 6 * column);
            float *target = destination + panel_offset(inputs, channel, first);
            __mmask16 mask = (__mmask16)((1u << lanes) - 1u);
            for (int row = 0; row < 6; row++) {
                for (int h = 0; h < 2; h++) avx512_filter(half[h][row], half[h][6 + row], half[h][12 + row], points[h]);
                for (int column = 0; column < 6; column++) {
                    __m256 low = _mm512_cvtpd_ps(points[0][column]), high = _mm512_cvtpd_ps(points[1][column]);
                    __m512 values = _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castps_pd(_mm512_castps256_ps512(low)),
                                                                        _mm256_castps_pd(high), 1));
                    _mm512_mask_storeu_ps(target + (row * 6 + column) * point_stride, mask, values);
                }
            }
        }
    }
}

/* 8 output channels as two halves of 4 doubles. */
static KEEL_AVX2 void avx2_transform(const float *source, ptrdiff_t inputs, ptrdiff_t outputs,
                                     ptrdiff_t output_stride, ptrdiff_t channel_stride, ptrdiff_t tap_stride,
                                     ptrdiff_t channel_begin, ptrdiff_t channel_end,
                                     float *destination, ptrdiff_t point_stride) {
    float taps[9][LANES] __attribute__((aligned(32)));
    __m256d g[2][9], half[2][18], points[2][6];
    for (ptrdiff_t first = 0; first < outputs; first += 8) {
        for (ptrdiff_t channel = channel_begin; channel < channel_end; channel++) {
            int lanes = outputs - first < 8 ? (int)(outputs - first) : 8;
            gather_taps(source, output_stride, channel * channel_stride, tap_stride, first, lanes, 8, taps);
            for (int t = 0; t < 9; t++) {
                g[0][t] = _mm256_cvtps_pd(_mm_load_ps(taps[t]));
                g[1][t] = _mm256_cvtps_pd(_mm_load_ps(taps[t] + 4));
            }
            for (int h = 0; h < 2; h++)
                for (int column = 0; column < 3; column++)
                    avx2_filter(g[h][column], g[h][3 + column], g[h][6 + column], half[h] + 6 * column);
            float *target = destination + panel_offset(inputs, channel, first);
            __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(lanes), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
            for (int row = 0; row < 6; row++) {
                for (int h = 0; h < 2; h++) avx2_filter(half[h][row], half[h][6 + row], half[h][12 + row], points[h]);
                for (int column = 0; column < 6; column++) {
                    __m256 values = _mm256_set_m128(_mm256_cvtpd_ps(points[1][column]), _mm256_cvtpd_ps(points[0][column]));
                    _mm256_maskstore_ps(target + (row * 6 + column) * point_stride, mask, values);
                }
            }
        }
    }
}
#endif

int keel_winograd_filter_transform(const float *source, ptrdiff_t inputs, ptrdiff_t outputs,
                                   ptrdiff_t output_stride, ptrdiff_t channel_stride, ptrdiff_t tap_stride,
                                   ptrdiff_t channel_begin, ptrdiff_t channel_end,
                                   float *destination, ptrdiff_t point_stride) {
#if KEEL_X86
    switch (keel_simd_level_in_use()) {
    case KEEL_SIMD_AVX512:
        avx512_transform(source, inputs, outputs, output_stride, channel_stride, tap_stride,
                         channel_begin, channel_end, destination, point_stride);
        return 1;
    case KEEL_SIMD_AVX2:
        avx2_transform(source, inputs, outputs, output_stride, channel_stride, tap_stride,
                       channel_begin, channel_end, destination, point_stride);
        return 1;
    default:
        return 0;
    }
#else
    (void)source; (void)inputs; (void)outputs; (void)output_stride; (void)channel_stride; (void)tap_stride;
    (void)channel_begin; (void)channel_end; (void)destination; (void)point_stride;
    return 0;
#endif
}
