/* The AVX-512F bodies of the fp32 kernels: every function here carries KEEL_AVX512, and cpu.c
 * puts them in the kernel table only on a CPU with AVX-512F. */
#include "depthwise_conv.h"
#include "direct_conv.h"
#include "grouped_conv.h"
#include "isa_entries.h"
#include "line_winograd.h"
#include "panel_gemm.h"
#include "pooling.h"
#include "row_kernels.h"
#include "simd_activation.h"
#include "winograd_filter.h"
#include "winograd_tiles.h"

#if KEEL_X86

KEEL_AVX512_ACTIVATIONS

/* Softmax and layer normalisation rows: 16 lanes, masked tails. */
DEFINE_ROW_KERNELS(avx512, KEEL_AVX512, __m512, 16, __mmask16, keel_avx512_lanes, KEEL_AVX512_LOAD, KEEL_AVX512_LOAD_OR,
                   KEEL_AVX512_STORE, KEEL_AVX512_KEEP, _mm512_set1_ps, _mm512_setzero_ps, _mm512_add_ps, _mm512_sub_ps,
                   _mm512_mul_ps, _mm512_fmadd_ps)

/* Scaled transposes: rows 16 at a time, one gather per column. */
#define AVX512_ROW_INDEX(stride) \
    _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), _mm512_set1_epi32(stride))
#define AVX512_GATHER(mask, base, index) _mm512_mask_i32gather_ps(_mm512_setzero_ps(), mask, index, base, 4)
DEFINE_SCALED_TRANSPOSE(avx512, KEEL_AVX512, __m512, __m512i, 16, __mmask16, keel_avx512_lanes, KEEL_AVX512_STORE,
                        _mm512_set1_ps, _mm512_mul_ps, AVX512_ROW_INDEX, AVX512_GATHER)

/* Max and average pooling: blocks of 4 vectors of channels per output pixel. */
DEFINE_POOLING(avx512, KEEL_AVX512, __m512, 16, __mmask16, keel_avx512_lanes, KEEL_AVX512_LOAD, KEEL_AVX512_STORE,
               _mm512_set1_ps, _mm512_setzero_ps, _mm512_add_ps, _mm512_mul_ps)

/* Packing A's rows: 4×4 transposes in each of four 128-bit lanes. */
DEFINE_PACK_ROWS(avx512, KEEL_AVX512, __m512, 16, PACK_EACH_LANE_4, __mmask16, keel_avx512_lanes, KEEL_AVX512_LOAD,
                 _mm512_loadu_ps, _mm512_storeu_ps, _mm512_unpacklo_ps, _mm512_unpackhi_ps, _mm512_unpacklo_pd,
                 _mm512_unpackhi_pd, _mm512_castps_pd, _mm512_castpd_ps, _mm512_extractf32x4_ps,
                 _mm512_fmadd_ps, keel_avx512_max_nan, _mm512_setzero_ps)

/* A vector of at most 8 channels multiplies on its low 256 bits: Zen 4 runs two 256-bit FMAs a
 * cycle, one 512-bit one (its lanes above 8 are never stored). */
#define AVX512_HALF_FMADD(a, b, c)                                                                           \
    _mm512_castps256_ps512(_mm256_fmadd_ps(_mm512_castps512_ps256(a), _mm512_castps512_ps256(b),             \
                                           _mm512_castps512_ps256(c)))

/* Panel GEMM: 12 rows × 32 columns, 24 accumulators. */
DEFINE_PANEL_GEMM(avx512, KEEL_AVX512, __m512, 16, AVX512_ROWS, KEEL_CASES_UP_TO_12, __mmask16, keel_avx512_lanes,
                  _mm512_loadu_ps, KEEL_AVX512_LOAD, KEEL_AVX512_STORE, _mm512_set1_ps, _mm512_setzero_ps,
                  _mm512_fmadd_ps, _mm512_add_ps, _mm512_min_ps, _mm512_max_ps, 8, AVX512_HALF_FMADD)

/* Depthwise convolution: 4 vectors of 16 channels (NHWC) or 16 adjacent pixels (NCHW). */
DEFINE_DEPTHWISE(avx512, KEEL_AVX512, __m512, 16, __mmask16, keel_avx512_lanes, KEEL_AVX512_LOAD, _mm512_loadu_ps, KEEL_AVX512_STORE,
                 _mm512_set1_ps, _mm512_setzero_ps, _mm512_fmadd_ps, _mm512_add_ps)

/* Grouped convolution: lanes body 4 pixels × 2 vectors, broadcast body 12 pixels × 2 vectors. */
#define AVX512_GROUP_INDEX(size, j)                                                                          \
    _mm512_add_epi32(_mm512_and_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), \
                                      _mm512_set1_epi32(~((int)(size) - 1))),                                  \
                     _mm512_set1_epi32(j))
/* Groups of 2 or 4 stay within 128-bit lanes, whose permute is the cheaper in-lane one. */
#define AVX512_GROUP_PERMUTE(x, index, size) \
    ((size) <= 4 ? _mm512_permutevar_ps(x, index) : _mm512_permutexvar_ps(index, x))
#define AVX512_HALF_CLEAN(x) _mm512_zextps256_ps512(_mm512_castps512_ps256(x))
DEFINE_GROUPED_CONV(avx512, KEEL_AVX512, __m512, 16, __m512i, __mmask16, keel_avx512_lanes, KEEL_AVX512_LOAD,
                    KEEL_AVX512_STORE, _mm512_set1_ps, _mm512_setzero_ps, _mm512_fmadd_ps, _mm512_add_ps,
                    AVX512_GROUP_INDEX, AVX512_GROUP_PERMUTE, AVX512_HALF_FMADD, AVX512_HALF_CLEAN, 4,
                    GROUPED_CASES_UP_TO_4, 12, KEEL_CASES_UP_TO_12)

/* Direct convolution: blocks of up to 12 rows × 32 lanes (24 accumulators), masked tails. */
DEFINE_DIRECT_CONVOLUTION(avx512, KEEL_AVX512, __m512, 16, AVX512_BLOCK, KEEL_CASES_UP_TO_12, __mmask16, keel_avx512_lanes,
                          KEEL_AVX512_LOAD, KEEL_AVX512_STORE, _mm512_set1_ps, _mm512_setzero_ps, _mm512_fmadd_ps,
                          _mm512_add_ps, _mm512_min_ps, _mm512_max_ps, 8, AVX512_HALF_FMADD)

/* Winograd tile transforms: 16 channels, masked loads and stores for the tail. */
DEFINE_TRANSFORMS(avx512, KEEL_AVX512, __m512, 16, __mmask16, keel_avx512_lanes, KEEL_AVX512_LOAD, KEEL_AVX512_STORE,
                  _mm512_add_ps, _mm512_sub_ps, _mm512_mul_ps, _mm512_set1_ps, _mm512_setzero_ps,
                  _mm512_max_ps, keel_avx512_max_nan)

/* One-dimensional Winograd transforms: 16 channels, masked tail. */
DEFINE_LINE_TRANSFORM(avx512, KEEL_AVX512, __m512, 16, __mmask16, keel_avx512_lanes, KEEL_AVX512_LOAD, KEEL_AVX512_STORE, _mm512_set1_ps,
                      _mm512_setzero_ps, _mm512_fmadd_ps, _mm512_add_ps, _mm512_max_ps)

DEFINE_FILTER_BODY(avx512_filter, KEEL_AVX512, __m512d, _mm512_set1_pd, _mm512_add_pd, _mm512_sub_pd, _mm512_mul_pd,
                   _mm512_div_pd)

/* 16 output channels as two halves of 8 doubles. */
static KEEL_AVX512 void avx512_transform(const float *source, ptrdiff_t inputs, ptrdiff_t outputs,
                                         ptrdiff_t output_stride, ptrdiff_t channel_stride, ptrdiff_t tap_stride,
                                         ptrdiff_t channel_begin, ptrdiff_t channel_end,
                                         float *destination, ptrdiff_t point_stride, int split_halves) {
    float taps[9][FILTER_LANES] __attribute__((aligned(64)));
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
            float *target = destination + panel_offset(inputs, channel, first, split_halves);
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

void keel_avx512_winograd_filter_transform(const float *source, ptrdiff_t inputs, ptrdiff_t outputs,
                                    ptrdiff_t output_stride, ptrdiff_t channel_stride, ptrdiff_t tap_stride,
                                    ptrdiff_t channel_begin, ptrdiff_t channel_end, float *destination,
                                    ptrdiff_t point_stride, int split_halves) {
    avx512_transform(source, inputs, outputs, output_stride, channel_stride, tap_stride, channel_begin, channel_end,
                     destination, point_stride, split_halves);
}

#endif
