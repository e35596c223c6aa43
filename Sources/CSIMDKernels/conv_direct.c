/* Direct convolution for few input channels. Per output row, the input rows its taps read are
 * copied into zero-padded planes ([kernel row][input channel][position]), so taps never test
 * bounds and adjacent output pixels read adjacent floats whatever the input layout. (A horizontal
 * stride other than 1 adds a gather into one line per tap, [tap][output column].) The filter is
 * the im2col GEMM's packed [taps·channels][outputs] matrix, read in place.
 *   NHWC: a block of adjacent pixels × 32 output channels (AVX2: 16) in registers; per tap, two
 *         filter vectors and one broadcast input value per pixel.
 *   NCHW: a block of output channels × 32 adjacent pixels (AVX2: 16); per tap, two input vectors
 *         and one broadcast filter value per channel.
 * Every output is fused multiply-adds over the taps in filter order from zero, then bias, then
 * activation, so both layouts, both levels and any split of rows give identical values. */
#include "keel_direct_conv.h"
#include "keel_simd.h"
#include "simd_internal.h"

#include <string.h>

/* Register blocks must be unrolled whole for their accumulators to stay in registers. */
#define UNROLLED _Pragma("clang loop unroll(full)")

enum {
    /* Accumulator blocks: 12×2 of the 32 AVX-512 registers, 6×2 of the 16 AVX2 ones. */
    AVX512_BLOCK = 12,
    AVX2_BLOCK = 6,
    /* Output channels (NHWC) or pixels (NCHW) spanned by the two vectors of a block. */
    AVX512_SPAN = 32,
    AVX2_SPAN = 16,
};

/* The input value of tap (kernel row ky, kernel column kx, channel c) for the output pixel at
 * column x of the current row is base[ky·row_step + kx·column_step + c·channel_step + x]. */
struct taps {
    const float *base;
    ptrdiff_t row_step, column_step, channel_step;
    ptrdiff_t rows, columns, channels;
};

/* Positions of one window plane: those of the padded input row that the output row reads. */
static ptrdiff_t window_width(const keel_direct_conv *conv) {
    return (conv->output_width - 1) * conv->stride_width + (conv->kernel_width - 1) * conv->dilation_width + 1;
}

ptrdiff_t keel_direct_conv_scratch_count(const keel_direct_conv *conv) {
    ptrdiff_t planes = conv->kernel_height * conv->input_channels;
    ptrdiff_t count = planes * window_width(conv);
    if (conv->stride_width != 1) count += planes * conv->kernel_width * conv->output_width;
    return count;
}

#if KEEL_X86

/* Copies the input rows that output row `row` of `image` reads into zero-padded planes in
 * `scratch` and says where each tap's values are. */
static struct taps load_window(const keel_direct_conv *conv, ptrdiff_t image, ptrdiff_t row, float *scratch) {
    const ptrdiff_t width = window_width(conv), channels = conv->input_channels;
    const ptrdiff_t height = conv->input_height, columns = conv->input_width;
    /* Input columns 0..<columns sit at window positions pad_left..<pad_left + columns. */
    const ptrdiff_t begin = conv->pad_left < width ? conv->pad_left : width;
    ptrdiff_t end = conv->pad_left + columns < width ? conv->pad_left + columns : width;
    if (end < begin) end = begin;
    for (ptrdiff_t ky = 0; ky < conv->kernel_height; ky++) {
        const ptrdiff_t input_row = row * conv->stride_height - conv->pad_top + ky * conv->dilation_height;
        const int inside = input_row >= 0 && input_row < height;
        for (ptrdiff_t c = 0; c < channels; c++) {
            float *plane = scratch + (ky * channels + c) * width;
            if (!inside) {
                memset(plane, 0, (size_t)width * sizeof(float));
                continue;
            }
            memset(plane, 0, (size_t)begin * sizeof(float));
            const ptrdiff_t first_column = begin - conv->pad_left;
            if (conv->channels_last) {
                const float *source = conv->input + ((image * height + input_row) * columns + first_column) * channels + c;
                for (ptrdiff_t u = begin; u < end; u++) plane[u] = source[(u - begin) * channels];
            } else {
                const float *source = conv->input + ((image * channels + c) * height + input_row) * columns + first_column;
                memcpy(plane + begin, source, (size_t)(end - begin) * sizeof(float));
            }
            memset(plane + end, 0, (size_t)(width - end) * sizeof(float));
        }
    }
    struct taps taps = { scratch, channels * width, conv->dilation_width, width,
                         conv->kernel_height, conv->kernel_width, channels };
    if (conv->stride_width == 1) return taps;
    /* Strided columns: gather each tap's values into a line of adjacent output pixels. */
    const ptrdiff_t outputs = conv->output_width;
    float *lines = scratch + conv->kernel_height * channels * width;
    for (ptrdiff_t ky = 0; ky < conv->kernel_height; ky++) {
        for (ptrdiff_t kx = 0; kx < conv->kernel_width; kx++) {
            for (ptrdiff_t c = 0; c < channels; c++) {
                float *line = lines + ((ky * conv->kernel_width + kx) * channels + c) * outputs;
                const float *plane = scratch + (ky * channels + c) * width + kx * conv->dilation_width;
                for (ptrdiff_t x = 0; x < outputs; x++) line[x] = plane[x * conv->stride_width];
            }
        }
    }
    return (struct taps){ lines, conv->kernel_width * channels * outputs, channels * outputs, outputs,
                          conv->kernel_height, conv->kernel_width, channels };
}

/* Even split of `count` into `groups` parts: the start of part `index`. */
static ptrdiff_t part_start(ptrdiff_t count, ptrdiff_t groups, ptrdiff_t index) { return count * index / groups; }

/* ---- AVX-512 ---- */

KEEL_INLINE KEEL_AVX512 __m512 avx512_finish(__m512 sum, __m512 bias, int relu) {
    sum = _mm512_add_ps(sum, bias);
    /* max returns its second operand for NaN, so NaN becomes 0 as in the portable ReLU. */
    return relu ? _mm512_max_ps(sum, _mm512_setzero_ps()) : sum;
}

/* NHWC: `pixels` adjacent output pixels × 32 output channels (lanes past the last channel masked). */
KEEL_INLINE KEEL_AVX512 void avx512_nhwc_block(const int pixels, struct taps taps, const float *weights,
                                               ptrdiff_t weight_step, const float *bias, int relu, float *out,
                                               ptrdiff_t pixel_step, __mmask16 low, __mmask16 high) {
    __m512 left[AVX512_BLOCK], right[AVX512_BLOCK];
    UNROLLED
    for (int p = 0; p < pixels; p++) { left[p] = _mm512_setzero_ps(); right[p] = _mm512_setzero_ps(); }
    const float *w = weights;
    for (ptrdiff_t ky = 0; ky < taps.rows; ky++) {
        for (ptrdiff_t kx = 0; kx < taps.columns; kx++) {
            const float *a = taps.base + ky * taps.row_step + kx * taps.column_step;
            for (ptrdiff_t c = 0; c < taps.channels; c++, a += taps.channel_step, w += weight_step) {
                __m512 w0 = _mm512_maskz_loadu_ps(low, w), w1 = _mm512_maskz_loadu_ps(high, w + 16);
                UNROLLED
                for (int p = 0; p < pixels; p++) {
                    __m512 value = _mm512_set1_ps(a[p]);
                    left[p] = _mm512_fmadd_ps(value, w0, left[p]);
                    right[p] = _mm512_fmadd_ps(value, w1, right[p]);
                }
            }
        }
    }
    __m512 b0 = bias ? _mm512_maskz_loadu_ps(low, bias) : _mm512_setzero_ps();
    __m512 b1 = bias ? _mm512_maskz_loadu_ps(high, bias + 16) : _mm512_setzero_ps();
    UNROLLED
    for (int p = 0; p < pixels; p++) {
        _mm512_mask_storeu_ps(out + p * pixel_step, low, avx512_finish(left[p], b0, relu));
        _mm512_mask_storeu_ps(out + p * pixel_step + 16, high, avx512_finish(right[p], b1, relu));
    }
}

/* NCHW: `channels` output channels × 32 adjacent pixels (lanes past the row's end masked). */
KEEL_INLINE KEEL_AVX512 void avx512_nchw_block(const int channels, struct taps taps, const float *weights,
                                               ptrdiff_t weight_step, const float *bias, int relu, float *out,
                                               ptrdiff_t channel_step, __mmask16 low, __mmask16 high) {
    __m512 left[AVX512_BLOCK], right[AVX512_BLOCK];
    UNROLLED
    for (int r = 0; r < channels; r++) { left[r] = _mm512_setzero_ps(); right[r] = _mm512_setzero_ps(); }
    const float *w = weights;
    for (ptrdiff_t ky = 0; ky < taps.rows; ky++) {
        for (ptrdiff_t kx = 0; kx < taps.columns; kx++) {
            const float *a = taps.base + ky * taps.row_step + kx * taps.column_step;
            for (ptrdiff_t c = 0; c < taps.channels; c++, a += taps.channel_step, w += weight_step) {
                __m512 a0 = _mm512_maskz_loadu_ps(low, a), a1 = _mm512_maskz_loadu_ps(high, a + 16);
                UNROLLED
                for (int r = 0; r < channels; r++) {
                    __m512 value = _mm512_set1_ps(w[r]);
                    left[r] = _mm512_fmadd_ps(value, a0, left[r]);
                    right[r] = _mm512_fmadd_ps(value, a1, right[r]);
                }
            }
        }
    }
    UNROLLED
    for (int r = 0; r < channels; r++) {
        __m512 b = bias ? _mm512_set1_ps(bias[r]) : _mm512_setzero_ps();
        _mm512_mask_storeu_ps(out + r * channel_step, low, avx512_finish(left[r], b, relu));
        _mm512_mask_storeu_ps(out + r * channel_step + 16, high, avx512_finish(right[r], b, relu));
    }
}

/* Lanes [0, count) of 16, for the two halves of a 32-lane span holding `count` values. */
static __mmask16 mask_below(ptrdiff_t count) {
    return (__mmask16)(count >= 16 ? 0xFFFF : count <= 0 ? 0 : (1u << count) - 1);
}

static KEEL_AVX512 void avx512_row(const keel_direct_conv *conv, struct taps taps, float *out, ptrdiff_t plane) {
    const ptrdiff_t width = conv->output_width, outputs = conv->output_channels;
    const int relu = conv->activation == KEEL_DIRECT_CONV_RELU;
    if (conv->channels_last) {
        const ptrdiff_t groups = (width + AVX512_BLOCK - 1) / AVX512_BLOCK;
        for (ptrdiff_t group = 0; group < groups; group++) {
            const ptrdiff_t first = part_start(width, groups, group);
            struct taps at = taps;
            at.base += first;
            for (ptrdiff_t start = 0; start < outputs; start += AVX512_SPAN) {
                __mmask16 low = mask_below(outputs - start), high = mask_below(outputs - start - 16);
                const float *bias = conv->bias ? conv->bias + start : NULL;
                float *target = out + first * outputs + start;
                switch (part_start(width, groups, group + 1) - first) {
#define CASE(P) case P: avx512_nhwc_block(P, at, conv->weights + start, outputs, bias, relu, target, outputs, low, high); break;
                    CASE(1) CASE(2) CASE(3) CASE(4) CASE(5) CASE(6) CASE(7) CASE(8) CASE(9) CASE(10) CASE(11) CASE(12)
#undef CASE
                    default: break;
                }
            }
        }
        return;
    }
    const ptrdiff_t groups = (outputs + AVX512_BLOCK - 1) / AVX512_BLOCK;
    for (ptrdiff_t group = 0; group < groups; group++) {
        const ptrdiff_t first = part_start(outputs, groups, group);
        const float *bias = conv->bias ? conv->bias + first : NULL;
        for (ptrdiff_t start = 0; start < width; start += AVX512_SPAN) {
            __mmask16 low = mask_below(width - start), high = mask_below(width - start - 16);
            struct taps at = taps;
            at.base += start;
            float *target = out + first * plane + start;
            switch (part_start(outputs, groups, group + 1) - first) {
#define CASE(R) case R: avx512_nchw_block(R, at, conv->weights + first, outputs, bias, relu, target, plane, low, high); break;
                CASE(1) CASE(2) CASE(3) CASE(4) CASE(5) CASE(6) CASE(7) CASE(8) CASE(9) CASE(10) CASE(11) CASE(12)
#undef CASE
                default: break;
            }
        }
    }
}

/* ---- AVX2 + FMA ---- */

KEEL_INLINE KEEL_AVX2 __m256 avx2_finish(__m256 sum, __m256 bias, int relu) {
    sum = _mm256_add_ps(sum, bias);
    return relu ? _mm256_max_ps(sum, _mm256_setzero_ps()) : sum;
}

/* Lanes [0, count) of 8 set. */
static KEEL_AVX2 __m256i avx2_mask_below(ptrdiff_t count) {
    __m256i index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(count < 0 ? 0 : count > 8 ? 8 : count)), index);
}

KEEL_INLINE KEEL_AVX2 void avx2_nhwc_block(const int pixels, struct taps taps, const float *weights,
                                           ptrdiff_t weight_step, const float *bias, int relu, float *out,
                                           ptrdiff_t pixel_step, __m256i low, __m256i high) {
    __m256 left[AVX2_BLOCK], right[AVX2_BLOCK];
    UNROLLED
    for (int p = 0; p < pixels; p++) { left[p] = _mm256_setzero_ps(); right[p] = _mm256_setzero_ps(); }
    const float *w = weights;
    for (ptrdiff_t ky = 0; ky < taps.rows; ky++) {
        for (ptrdiff_t kx = 0; kx < taps.columns; kx++) {
            const float *a = taps.base + ky * taps.row_step + kx * taps.column_step;
            for (ptrdiff_t c = 0; c < taps.channels; c++, a += taps.channel_step, w += weight_step) {
                __m256 w0 = _mm256_maskload_ps(w, low), w1 = _mm256_maskload_ps(w + 8, high);
                UNROLLED
                for (int p = 0; p < pixels; p++) {
                    __m256 value = _mm256_broadcast_ss(a + p);
                    left[p] = _mm256_fmadd_ps(value, w0, left[p]);
                    right[p] = _mm256_fmadd_ps(value, w1, right[p]);
                }
            }
        }
    }
    __m256 b0 = bias ? _mm256_maskload_ps(bias, low) : _mm256_setzero_ps();
    __m256 b1 = bias ? _mm256_maskload_ps(bias + 8, high) : _mm256_setzero_ps();
    UNROLLED
    for (int p = 0; p < pixels; p++) {
        _mm256_maskstore_ps(out + p * pixel_step, low, avx2_finish(left[p], b0, relu));
        _mm256_maskstore_ps(out + p * pixel_step + 8, high, avx2_finish(right[p], b1, relu));
    }
}

KEEL_INLINE KEEL_AVX2 void avx2_nchw_block(const int channels, struct taps taps, const float *weights,
                                           ptrdiff_t weight_step, const float *bias, int relu, float *out,
                                           ptrdiff_t channel_step, __m256i low, __m256i high) {
    __m256 left[AVX2_BLOCK], right[AVX2_BLOCK];
    UNROLLED
    for (int r = 0; r < channels; r++) { left[r] = _mm256_setzero_ps(); right[r] = _mm256_setzero_ps(); }
    const float *w = weights;
    for (ptrdiff_t ky = 0; ky < taps.rows; ky++) {
        for (ptrdiff_t kx = 0; kx < taps.columns; kx++) {
            const float *a = taps.base + ky * taps.row_step + kx * taps.column_step;
            for (ptrdiff_t c = 0; c < taps.channels; c++, a += taps.channel_step, w += weight_step) {
                __m256 a0 = _mm256_maskload_ps(a, low), a1 = _mm256_maskload_ps(a + 8, high);
                UNROLLED
                for (int r = 0; r < channels; r++) {
                    __m256 value = _mm256_broadcast_ss(w + r);
                    left[r] = _mm256_fmadd_ps(value, a0, left[r]);
                    right[r] = _mm256_fmadd_ps(value, a1, right[r]);
                }
            }
        }
    }
    UNROLLED
    for (int r = 0; r < channels; r++) {
        __m256 b = bias ? _mm256_set1_ps(bias[r]) : _mm256_setzero_ps();
        _mm256_maskstore_ps(out + r * channel_step, low, avx2_finish(left[r], b, relu));
        _mm256_maskstore_ps(out + r * channel_step + 8, high, avx2_finish(right[r], b, relu));
    }
}

static KEEL_AVX2 void avx2_row(const keel_direct_conv *conv, struct taps taps, float *out, ptrdiff_t plane) {
    const ptrdiff_t width = conv->output_width, outputs = conv->output_channels;
    const int relu = conv->activation == KEEL_DIRECT_CONV_RELU;
    if (conv->channels_last) {
        const ptrdiff_t groups = (width + AVX2_BLOCK - 1) / AVX2_BLOCK;
        for (ptrdiff_t group = 0; group < groups; group++) {
            const ptrdiff_t first = part_start(width, groups, group);
            struct taps at = taps;
            at.base += first;
            for (ptrdiff_t start = 0; start < outputs; start += AVX2_SPAN) {
                __m256i low = avx2_mask_below(outputs - start), high = avx2_mask_below(outputs - start - 8);
                const float *bias = conv->bias ? conv->bias + start : NULL;
                float *target = out + first * outputs + start;
                switch (part_start(width, groups, group + 1) - first) {
#define CASE(P) case P: avx2_nhwc_block(P, at, conv->weights + start, outputs, bias, relu, target, outputs, low, high); break;
                    CASE(1) CASE(2) CASE(3) CASE(4) CASE(5) CASE(6)
#undef CASE
                    default: break;
                }
            }
        }
        return;
    }
    const ptrdiff_t groups = (outputs + AVX2_BLOCK - 1) / AVX2_BLOCK;
    for (ptrdiff_t group = 0; group < groups; group++) {
        const ptrdiff_t first = part_start(outputs, groups, group);
        const float *bias = conv->bias ? conv->bias + first : NULL;
        for (ptrdiff_t start = 0; start < width; start += AVX2_SPAN) {
            __m256i low = avx2_mask_below(width - start), high = avx2_mask_below(width - start - 8);
            struct taps at = taps;
            at.base += start;
            float *target = out + first * plane + start;
            switch (part_start(outputs, groups, group + 1) - first) {
#define CASE(R) case R: avx2_nchw_block(R, at, conv->weights + first, outputs, bias, relu, target, plane, low, high); break;
                CASE(1) CASE(2) CASE(3) CASE(4) CASE(5) CASE(6)
#undef CASE
                default: break;
            }
        }
    }
}

#endif

int keel_direct_conv_rows(const keel_direct_conv *conv, ptrdiff_t first_row, ptrdiff_t row_count,
                          float *scratch) {
#if KEEL_X86
    const keel_simd_level level = keel_simd_level_in_use();
    if (level == KEEL_SIMD_GENERIC) return 0;
    const ptrdiff_t height = conv->output_height, width = conv->output_width, outputs = conv->output_channels;
    const ptrdiff_t plane = height * width;
    for (ptrdiff_t r = first_row; r < first_row + row_count; r++) {
        const ptrdiff_t image = r / height, row = r % height;
        struct taps taps = load_window(conv, image, row, scratch);
        float *out = conv->channels_last ? conv->output + r * width * outputs
                                         : conv->output + image * outputs * plane + row * width;
        if (level == KEEL_SIMD_AVX512) avx512_row(conv, taps, out, plane);
        else avx2_row(conv, taps, out, plane);
    }
    return 1;
#else
    (void)conv; (void)first_row; (void)row_count; (void)scratch;
    return 0;
#endif
}
