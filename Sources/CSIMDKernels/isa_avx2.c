/* The AVX2+FMA bodies of the fp32 kernels: every function here carries KEEL_AVX2, and cpu.c puts
 * them in the kernel table only on a CPU with AVX2 and FMA. */
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

KEEL_AVX2_ACTIVATIONS

/* Softmax and layer normalisation rows: 8 lanes, masked tails. */
DEFINE_ROW_KERNELS(avx2, KEEL_AVX2, __m256, 8, __m256i, keel_avx2_lanes, KEEL_AVX2_LOAD, KEEL_AVX2_LOAD_OR, KEEL_AVX2_STORE,
                   KEEL_AVX2_KEEP, _mm256_set1_ps, _mm256_setzero_ps, _mm256_add_ps, _mm256_sub_ps, _mm256_mul_ps,
                   _mm256_fmadd_ps)

/* Scaled transposes: rows 8 at a time, one gather per column. */
#define AVX2_ROW_INDEX(stride) _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(stride))
#define AVX2_GATHER(mask, base, index) \
    _mm256_mask_i32gather_ps(_mm256_setzero_ps(), base, index, _mm256_castsi256_ps(mask), 4)
DEFINE_SCALED_TRANSPOSE(avx2, KEEL_AVX2, __m256, __m256i, 8, __m256i, keel_avx2_lanes, KEEL_AVX2_STORE,
                        _mm256_set1_ps, _mm256_mul_ps, AVX2_ROW_INDEX, AVX2_GATHER)

/* Max and average pooling: blocks of 4 vectors of channels per output pixel. */
DEFINE_POOLING(avx2, KEEL_AVX2, __m256, 8, __m256i, keel_avx2_lanes, KEEL_AVX2_LOAD, KEEL_AVX2_STORE,
               _mm256_set1_ps, _mm256_setzero_ps, _mm256_add_ps, _mm256_mul_ps)

/* Packing A's rows: 4×4 transposes in each of two 128-bit lanes. */
DEFINE_PACK_ROWS(avx2, KEEL_AVX2, __m256, 8, PACK_EACH_LANE_2, __m256i, keel_avx2_lanes, KEEL_AVX2_LOAD,
                 _mm256_loadu_ps, _mm256_storeu_ps, _mm256_unpacklo_ps, _mm256_unpackhi_ps, _mm256_unpacklo_pd,
                 _mm256_unpackhi_pd, _mm256_castps_pd, _mm256_castpd_ps, _mm256_extractf128_ps,
                 _mm256_fmadd_ps, keel_avx2_max_nan, _mm256_setzero_ps)

/* Panel GEMM: 6 rows × 16 columns, 12 of the 16 registers. */
DEFINE_PANEL_GEMM(avx2, KEEL_AVX2, __m256, 8, AVX2_ROWS, KEEL_CASES_UP_TO_6, __m256i, keel_avx2_lanes,
                  _mm256_loadu_ps, KEEL_AVX2_LOAD, KEEL_AVX2_STORE, _mm256_set1_ps, _mm256_setzero_ps,
                  _mm256_fmadd_ps, _mm256_add_ps, _mm256_min_ps, _mm256_max_ps, 0, _mm256_fmadd_ps)

/* Depthwise convolution: 4 vectors of 8 channels (NHWC) or 8 adjacent pixels (NCHW). */
DEFINE_DEPTHWISE(avx2, KEEL_AVX2, __m256, 8, __m256i, keel_avx2_lanes, KEEL_AVX2_LOAD, _mm256_loadu_ps, KEEL_AVX2_STORE,
                 _mm256_set1_ps, _mm256_setzero_ps, _mm256_fmadd_ps, _mm256_add_ps)

/* Grouped convolution: lanes body 2 pixels × 2 vectors (groups of 2 or 4 channels, permuted within
 * 128-bit lanes), broadcast body 6 pixels × 2 vectors. */
#define AVX2_GROUP_INDEX(size, j)                                                                            \
    _mm256_add_epi32(_mm256_and_si256(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(~((int)(size) - 1))), \
                     _mm256_set1_epi32(j))
#define AVX2_GROUP_PERMUTE(x, index, size) _mm256_permutevar_ps(x, index)
/* No half vectors here: a tail of 4 channels of 8 is rare and its FMA costs a whole one anyway. */
#define AVX2_WHOLE_FMADD _mm256_fmadd_ps
#define AVX2_WHOLE(x) (x)
DEFINE_GROUPED_CONV(avx2, KEEL_AVX2, __m256, 8, __m256i, __m256i, keel_avx2_lanes, KEEL_AVX2_LOAD, KEEL_AVX2_STORE,
                    _mm256_set1_ps, _mm256_setzero_ps, _mm256_fmadd_ps, _mm256_add_ps, AVX2_GROUP_INDEX,
                    AVX2_GROUP_PERMUTE, AVX2_WHOLE_FMADD, AVX2_WHOLE, 2, GROUPED_CASES_UP_TO_2, 6, KEEL_CASES_UP_TO_6)

/* Direct convolution: blocks of up to 6 rows × 16 lanes (12 accumulators), tails through maskload. */
DEFINE_DIRECT_CONVOLUTION(avx2, KEEL_AVX2, __m256, 8, AVX2_BLOCK, KEEL_CASES_UP_TO_6, __m256i, keel_avx2_lanes,
                          KEEL_AVX2_LOAD, KEEL_AVX2_STORE, _mm256_set1_ps, _mm256_setzero_ps, _mm256_fmadd_ps,
                          _mm256_add_ps, _mm256_min_ps, _mm256_max_ps, 0, _mm256_fmadd_ps)

/* Winograd tile transforms: 8 channels; the tail through maskload/maskstore. */
DEFINE_TRANSFORMS(avx2, KEEL_AVX2, __m256, 8, __m256i, keel_avx2_lanes, KEEL_AVX2_LOAD, KEEL_AVX2_STORE,
                  _mm256_add_ps, _mm256_sub_ps, _mm256_mul_ps, _mm256_set1_ps, _mm256_setzero_ps,
                  _mm256_max_ps, keel_avx2_max_nan)

/* One-dimensional Winograd transforms: 8 channels, masked tail. */
DEFINE_LINE_TRANSFORM(avx2, KEEL_AVX2, __m256, 8, __m256i, keel_avx2_lanes, KEEL_AVX2_LOAD, KEEL_AVX2_STORE, _mm256_set1_ps,
                      _mm256_setzero_ps, _mm256_fmadd_ps, _mm256_add_ps, _mm256_max_ps)

DEFINE_FILTER_BODY(avx2_filter, KEEL_AVX2, __m256d, _mm256_set1_pd, _mm256_add_pd, _mm256_sub_pd, _mm256_mul_pd,
                   _mm256_div_pd)

/* 8 output channels as two halves of 4 doubles. */
static KEEL_AVX2 void avx2_transform(const float *source, ptrdiff_t inputs, ptrdiff_t outputs,
                                     ptrdiff_t output_stride, ptrdiff_t channel_stride, ptrdiff_t tap_stride,
                                     ptrdiff_t channel_begin, ptrdiff_t channel_end,
                                     float *destination, ptrdiff_t point_stride, int split_halves) {
    float taps[9][FILTER_LANES] __attribute__((aligned(32)));
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
            float *target = destination + panel_offset(inputs, channel, first, split_halves);
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

void keel_avx2_winograd_filter_transform(const float *source, ptrdiff_t inputs, ptrdiff_t outputs,
                                    ptrdiff_t output_stride, ptrdiff_t channel_stride, ptrdiff_t tap_stride,
                                    ptrdiff_t channel_begin, ptrdiff_t channel_end, float *destination,
                                    ptrdiff_t point_stride, int split_halves) {
    avx2_transform(source, inputs, outputs, output_stride, channel_stride, tap_stride, channel_begin, channel_end,
                   destination, point_stride, split_halves);
}

#endif
