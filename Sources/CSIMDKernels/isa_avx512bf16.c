/* The AVX512_BF16 bodies of the bf16 kernels (vdpbf16ps: 16 fp32 lanes, each adding the products
 * of a bf16 pair), for CPUs without AMX, and the im2col rows the AMX kernel shares. Every
 * function carries KEEL_AVX512_BF16; cpu.c uses them only on a CPU with AVX512_BF16. */
#include "bf16.h"
#include "depthwise_conv.h"
#include "isa_entries.h"
#include "simd_activation.h"
#include "window_taps.h"

#if KEEL_X86

KEEL_AVX512_ACTIVATIONS

/* `count` floats rounded to bf16 (nearest even) into `target`. */
KEEL_INLINE KEEL_AVX512_BF16 void convert(const float *source, ptrdiff_t count, uint16_t *target) {
    ptrdiff_t i = 0;
    for (; i + 16 <= count; i += 16)
        _mm256_storeu_si256((__m256i *)(target + i), (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(source + i)));
    if (i < count) {
        __mmask16 mask = keel_avx512_lanes(count - i);
        __m256bh half = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(mask, source + i));
        _mm256_mask_storeu_epi16(target + i, mask, (__m256i)half);
    }
}

/* `count` bf16 values from `source` to `target`, 32 a pass. */
KEEL_INLINE KEEL_AVX512_BF16 void copy_values(const uint16_t *source, ptrdiff_t count, uint16_t *target) {
    for (ptrdiff_t i = 0; i < count; i += 32) {
        const __mmask32 lanes = count - i >= 32 ? ~(__mmask32)0 : (((__mmask32)1 << (count - i)) - 1);
        _mm512_mask_storeu_epi16(target + i, lanes, _mm512_maskz_loadu_epi16(lanes, source + i));
    }
}

/* `count` values of the layer's input from element `at` on, in bf16: copied when the input is
 * bf16 already, else rounded. */
KEEL_INLINE KEEL_AVX512_BF16 void read_input(const keel_bf16_conv *conv, ptrdiff_t at, ptrdiff_t count,
                                             uint16_t *target) {
    if (conv->bf16_input) copy_values(conv->bf16_input + at, count, target);
    else convert(conv->input + at, count, target);
}

/* target[0 ..< count] in bf16: zero outside begin ..< end, there the layer's input from element
 * `at` on (copied when bf16, else rounded). Masked 16-lane passes, so a short run (an RGB kernel
 * row: 9 values) costs one load and one store. With `low` (a split input), low[0 ..< count] gets
 * what rounding left, x − bf16(x), rounded in turn (zero for a bf16 input, or where bf16(x) is not
 * finite, which then carries the infinity or NaN alone as the unsplit kernel would). */
KEEL_INLINE KEEL_AVX512_BF16 void read_run(const keel_bf16_conv *conv, ptrdiff_t at, ptrdiff_t begin, ptrdiff_t end,
                                           ptrdiff_t count, uint16_t *target, uint16_t *low) {
    if (!low) {
        /* Unsplit: zeros, one copied or converted run, zeros. A 3×3 layer's kernel rows (768
         * values at 256 channels) went through the masked passes below at an eighth of its time. */
        memset(target, 0, (size_t)begin * 2);
        read_input(conv, at, end - begin, target + begin);
        memset(target + end, 0, (size_t)(count - end) * 2);
        return;
    }
    for (ptrdiff_t i = 0; i < count; i += 16) {
        const ptrdiff_t from = begin - i > 0 ? begin - i : 0, to = end - i < 16 ? end - i : 16;
        const __mmask16 live = to > from ? (__mmask16)(keel_avx512_lanes(to) & ~keel_avx512_lanes(from)) : 0;
        const __mmask16 lanes = keel_avx512_lanes(count - i);
        /* Lane j reads element at + i + j - begin: only live lanes touch memory. */
        if (conv->bf16_input) {
            _mm256_mask_storeu_epi16(target + i, lanes, _mm256_maskz_loadu_epi16(live, conv->bf16_input + at + (i - begin)));
            if (low) _mm256_mask_storeu_epi16(low + i, lanes, _mm256_setzero_si256());
            continue;
        }
        const __m512 x = _mm512_maskz_loadu_ps(live, conv->input + at + (i - begin));
        const __m256i high = (__m256i)_mm512_cvtneps_pbh(x);
        _mm256_mask_storeu_epi16(target + i, lanes, high);
        if (low) {
            const __m512 widened = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(high), 16));
            const __mmask16 finite = _mm512_cmp_ps_mask(_mm512_abs_ps(widened), _mm512_set1_ps(__builtin_inff()), _CMP_LT_OQ);
            const __m512 rest = _mm512_maskz_sub_ps(finite, x, widened);
            _mm256_mask_storeu_epi16(low + i, lanes, (__m256i)_mm512_cvtneps_pbh(rest));
        }
    }
}


/* keel_avx512bf16_im2col for a split, undilated input: one output row's pixels at a time, each
 * kernel row's input row split once into the row buffer (high halves, then low), from which every
 * pixel's taps are one copy per half. Splitting each pixel's own taps instead took most of
 * ResNet50's stem time: neighbouring pixels' taps overlap (7 wide at stride 2). */
static KEEL_AVX512_BF16 void im2col_split_rows(const keel_bf16_conv *conv, ptrdiff_t first_pixel, ptrdiff_t rows,
                                               ptrdiff_t depth, uint16_t *block, uint16_t *row_buffer) {
    const ptrdiff_t width = conv->output_width, plane = conv->output_height * width;
    const ptrdiff_t channels = conv->input_channels, span = conv->kernel_width * channels;
    const ptrdiff_t filter_depth = conv->kernel_height * span, reach = keel_bf16_split_row_elements(conv) / 2;
    uint16_t *high = row_buffer, *low = row_buffer + reach;
    for (ptrdiff_t r = 0, end; r < rows; r = end) {
        const ptrdiff_t pixel = first_pixel + r, image = pixel / plane, y = (pixel % plane) / width, x0 = pixel % width;
        end = rows - r < width - x0 ? rows : r + width - x0;
        for (ptrdiff_t ky = 0; ky < conv->kernel_height; ky++) {
            const ptrdiff_t iy = y * conv->stride_height - conv->pad_top + ky * conv->dilation_height;
            const ptrdiff_t k = ky * span;
            if (iy < 0 || iy >= conv->input_height) {
                for (ptrdiff_t row = r; row < end; row++) {
                    memset(block + row * depth + k, 0, (size_t)span * 2);
                    memset(block + row * depth + filter_depth + k, 0, (size_t)span * 2);
                }
                continue;
            }
            /* Buffer element j holds input pixel j / channels − pad_left of row iy (zero outside). */
            const ptrdiff_t begin = conv->pad_left * channels < reach ? conv->pad_left * channels : reach;
            const ptrdiff_t inside = (conv->pad_left + conv->input_width) * channels;
            const ptrdiff_t stop = inside < reach ? inside : reach;
            read_run(conv, (image * conv->input_height + iy) * conv->input_width * channels, begin,
                     stop > begin ? stop : begin, reach, high, low);
            for (ptrdiff_t row = r; row < end; row++) {
                const ptrdiff_t from = (x0 + row - r) * conv->stride_width * channels;
                copy_values(high + from, span, block + row * depth + k);
                copy_values(low + from, span, block + row * depth + filter_depth + k);
            }
        }
    }
    /* Zero to the depth (under one 32-deep tile): one masked store per row. */
    const __mmask32 tail = (__mmask32)(((uint64_t)1 << (depth - 2 * filter_depth)) - 1);
    for (ptrdiff_t row = 0; row < rows; row++)
        _mm512_mask_storeu_epi16(block + row * depth + 2 * filter_depth, tail, _mm512_setzero_si512());
}

KEEL_AVX512_BF16 void keel_avx512bf16_im2col(const keel_bf16_conv *conv, ptrdiff_t first_pixel, ptrdiff_t rows,
                                             ptrdiff_t padded_rows, ptrdiff_t depth, uint16_t *block,
                                             uint16_t *row_buffer) {
    const ptrdiff_t width = conv->output_width, plane = conv->output_height * width;
    const ptrdiff_t channels = conv->input_channels;
    if (keel_bf16_pointwise(conv)) {
        /* Rows are whole input pixels, one run of the input: the general path's divisions and
         * masked 16-lane passes per row took a quarter to a third of ResNet50's 56×56 1×1 layers'
         * time (Zen 4, one core). */
        if (depth == channels) {
            read_input(conv, first_pixel * channels, rows * channels, block);
        } else {
            for (ptrdiff_t r = 0; r < rows; r++) {
                read_input(conv, (first_pixel + r) * channels, channels, block + r * depth);
                memset(block + r * depth + channels, 0, (size_t)(depth - channels) * 2);
            }
        }
        memset(block + rows * depth, 0, (size_t)((padded_rows - rows) * depth) * 2);
        return;
    }
    if (keel_bf16_split_row_elements(conv) > 0) {
        im2col_split_rows(conv, first_pixel, rows, depth, block, row_buffer);
        memset(block + rows * depth, 0, (size_t)((padded_rows - rows) * depth) * 2);
        return;
    }
    /* A split input's low halves start one filter depth after the high ones. */
    const ptrdiff_t split = conv->split_input ? conv->kernel_height * conv->kernel_width * channels : 0;
    for (ptrdiff_t r = 0; r < padded_rows; r++) {
        uint16_t *line = block + r * depth, *low = conv->split_input ? line + split : NULL;
        ptrdiff_t k = 0;
        if (r < rows) {
            const ptrdiff_t pixel = first_pixel + r, image = pixel / plane;
            const ptrdiff_t y = (pixel % plane) / width, x = pixel % width;
            for (ptrdiff_t ky = 0; ky < conv->kernel_height; ky++) {
                const ptrdiff_t iy = y * conv->stride_height - conv->pad_top + ky * conv->dilation_height;
                const int inside = iy >= 0 && iy < conv->input_height;
                if (conv->dilation_width == 1) {
                    /* Undilated, a kernel row's taps are one contiguous run of the input row: a
                     * few-channel layer (an RGB first layer) converts it in one pass, not per tap. */
                    const ptrdiff_t left = x * conv->stride_width - conv->pad_left, span = conv->kernel_width;
                    const ptrdiff_t begin = !inside || -left >= span ? span : left < 0 ? -left : 0;
                    ptrdiff_t end = !inside ? span : conv->input_width - left < span ? conv->input_width - left : span;
                    if (end < begin) end = begin;
                    const ptrdiff_t at = ((image * conv->input_height + iy) * conv->input_width + left + begin) * channels;
                    read_run(conv, end > begin ? at : 0, begin * channels, end * channels, span * channels, line + k,
                             low ? low + k : NULL);
                    k += span * channels;
                    continue;
                }
                for (ptrdiff_t kx = 0; kx < conv->kernel_width; kx++, k += channels) {
                    const ptrdiff_t ix = x * conv->stride_width - conv->pad_left + kx * conv->dilation_width;
                    const int live = inside && ix >= 0 && ix < conv->input_width;
                    read_run(conv, live ? ((image * conv->input_height + iy) * conv->input_width + ix) * channels : 0, 0,
                             live ? channels : 0, channels, line + k, low ? low + k : NULL);
                }
            }
            if (low) k *= 2;
        }
        memset(line + k, 0, (size_t)(depth - k) * 2);
    }
}

KEEL_AVX512_BF16 void keel_avx512bf16_pad_rows(const keel_bf16_conv *conv, ptrdiff_t first_row, ptrdiff_t row_count,
                                              uint16_t *window) {
    const ptrdiff_t height = keel_bf16_padded_height(conv), width = keel_bf16_padded_width(conv);
    const ptrdiff_t channels = conv->input_channels;
    for (ptrdiff_t row = first_row; row < first_row + row_count; row++) {
        const ptrdiff_t image = row / height, iy = row % height - conv->pad_top;
        uint16_t *line = window + (row - first_row) * width * channels;
        if (iy < 0 || iy >= conv->input_height) {
            memset(line, 0, (size_t)(width * channels) * 2);
            continue;
        }
        const ptrdiff_t left = conv->pad_left < width ? conv->pad_left : width;
        ptrdiff_t right = conv->pad_left + conv->input_width < width ? conv->pad_left + conv->input_width : width;
        memset(line, 0, (size_t)(left * channels) * 2);
        read_input(conv, (image * conv->input_height + iy) * conv->input_width * channels, (right - left) * channels,
                   line + left * channels);
        memset(line + right * channels, 0, (size_t)((width - right) * channels) * 2);
    }
}

KEEL_AVX512_BF16 void keel_avx512bf16_finish(const keel_bf16_conv *conv, const float *staging, ptrdiff_t rows,
                                             const float *bias, ptrdiff_t at, __mmask16 low, __mmask16 high) {
    const ptrdiff_t ldc = conv->output_channels;
    const int clamp = keel_bf16_clamps(conv), plain = conv->activation == KEEL_ACTIVATION_NONE;
    const __m512 lower = keel_bf16_lower(conv), upper = keel_bf16_upper(conv);
    const keel_epilogue e = {.activation = conv->activation, .parameter0 = conv->parameter0,
                             .parameter1 = conv->parameter1};
    __m512 bias0 = bias ? _mm512_maskz_loadu_ps(low, bias) : _mm512_setzero_ps();
    __m512 bias1 = bias ? _mm512_maskz_loadu_ps(high, bias + 16) : _mm512_setzero_ps();
    for (ptrdiff_t r = 0; r < rows; r++) {
        __m512 x0 = _mm512_add_ps(_mm512_load_ps(staging + r * 32), bias0);
        __m512 x1 = _mm512_add_ps(_mm512_load_ps(staging + r * 32 + 16), bias1);
        keel_bf16_add_residual(conv, at + r * ldc, &x0, &x1, low, high);
        if (clamp) {
            keel_bf16_clamp(&x0, &x1, lower, upper);
        } else if (!plain) {
            x0 = keel_avx512_activate(x0, &e);
            x1 = keel_avx512_activate(x1, &e);
        }
        keel_bf16_store(conv, at + r * ldc, x0, x1, low, high);
    }
}

/* Rows of one register block: 12 × 2 accumulators of the 32 registers. */
enum { BLOCK = 12 };

/* Fetches the line(s) `bytes` bytes from `start` span: one when they share a line (a bf16 block
 * row of a layer whose channels are a multiple of 32), so a block issues no more than it needs. */
KEEL_INLINE void prefetch_span(const void *start, ptrdiff_t bytes, int write) {
    const uintptr_t first = (uintptr_t)start, last = first + (uintptr_t)bytes - 1;
    if (write) __builtin_prefetch(start, 1, 3);
    else __builtin_prefetch(start, 0, 3);
    if (first >> 6 == last >> 6) return;
    if (write) __builtin_prefetch((const char *)start + bytes - 1, 1, 3);
    else __builtin_prefetch((const char *)start + bytes - 1, 0, 3);
}

/* Fetches, while a block's depth loop runs, the lines its epilogue will write (with intent to
 * write) and the residual lines it will read: `width` columns from element `at` on in each of
 * `count` rows. A shallow layer's loop is too short to hide those misses itself: on ResNet50's
 * 56×56 64→256 layers with a bf16 shortcut and cold caches, each output line's ownership request
 * stalled the stores (0.59–0.82 ms an image without, 0.59–0.61 with; Zen 4). */
KEEL_INLINE KEEL_AVX512_BF16 void prefetch_epilogue(const keel_bf16_conv *conv, int count, ptrdiff_t at,
                                                    ptrdiff_t width) {
    const ptrdiff_t ldc = conv->output_channels;
    for (int r = 0; r < count; r++) {
        const ptrdiff_t first = at + r * ldc;
        if (conv->bf16_output) prefetch_span(conv->bf16_output + first, width * 2, 1);
        else prefetch_span(conv->output + first, width * 4, 1);
        if (conv->bf16_residual) prefetch_span(conv->bf16_residual + first, width * 2, 0);
        else if (conv->residual) prefetch_span(conv->residual + first, width * 4, 0);
    }
}

/* The pairs [begin, end) of the depth a block of im2col rows multiplies. */
struct pair_range {
    ptrdiff_t begin, end;
};

/* The pairs of depths that hold filter values: the depth past them, up to whole 32-deep tiles, is
 * zero in both operands. Skipping it spares EfficientNet's 40-deep layers (padded to 64) 37% of
 * their products, its 24-, 80-, 112- and 144-deep ones 25, 17, 12 and 10%. */
static ptrdiff_t filled_pairs(const keel_bf16_conv *conv) {
    return (conv->kernel_height * conv->kernel_width * conv->input_channels * (conv->split_input ? 2 : 1) + 1) / 2;
}

/* The pairs of output row `y`'s im2col rows whose kernel rows reach inside the input: a padded
 * layer's top and bottom rows reach fewer, and their products with the padding's zeros are
 * skipped (on a 7×7 map a 3×3 layer's top and bottom padding hold 10% of its products, on 14×14
 * 5%). The whole depth for a split input, whose low halves follow the high ones. Bounds are
 * rounded out to whole pairs, which only adds zero products. */
static struct pair_range row_taps(const keel_bf16_conv *conv, ptrdiff_t y) {
    const struct pair_range whole = {0, filled_pairs(conv)};
    if (conv->split_input) return whole;
    const window_taps taps = window_taps_along(y, conv->input_height, conv->kernel_height, conv->stride_height,
                                               conv->dilation_height, conv->pad_top, 0);
    if (taps.count == 0) return (struct pair_range){0, 0};
    const ptrdiff_t first = (taps.first - (y * conv->stride_height - conv->pad_top)) / conv->dilation_height;
    const ptrdiff_t row = conv->kernel_width * conv->input_channels;
    return (struct pair_range){first * row / 2, ((first + taps.count) * row + 1) / 2};
}

/* `count` rows of A (`row_stride` values apart) × 32 columns (two 16-column blocks b0, b1) over the
 * pairs `taps`, then bias, residual, activation and a masked store. */
KEEL_INLINE KEEL_AVX512_BF16 void dot_block(const int count, const keel_bf16_conv *conv, const uint16_t *a,
                                            ptrdiff_t row_stride, struct pair_range taps, const uint16_t *b0,
                                            const uint16_t *b1, const float *bias, ptrdiff_t at, ptrdiff_t width,
                                            __mmask16 low, __mmask16 high) {
    const ptrdiff_t ldc = conv->output_channels;
    __m512 left[BLOCK], right[BLOCK];
#pragma clang loop unroll(full)
    for (int r = 0; r < count; r++) { left[r] = _mm512_setzero_ps(); right[r] = _mm512_setzero_ps(); }
    prefetch_epilogue(conv, count, at, width);
    /* Pair p of a column block is the 32 values from p·32 on (tiles of 16 pairs × 16 columns). */
    const uint16_t *rows = a + 2 * taps.begin, *w0s = b0 + taps.begin * 32, *w1s = b1 + taps.begin * 32;
    if (width <= 16) {
        /* A block of at most 16 columns (a 16-channel layer, or the last block of 48, 80, 112…)
         * multiplies its first half alone: the second's products would all be masked off. */
        for (ptrdiff_t pair = 0; pair < taps.end - taps.begin; pair++) {
            __m512bh w0 = (__m512bh)_mm512_loadu_si512(w0s + pair * 32);
#pragma clang loop unroll(full)
            for (int r = 0; r < count; r++) {
                uint32_t both;
                memcpy(&both, rows + r * row_stride + 2 * pair, sizeof both);
                left[r] = _mm512_dpbf16_ps(left[r], (__m512bh)_mm512_set1_epi32((int)both), w0);
            }
        }
    } else {
        for (ptrdiff_t pair = 0; pair < taps.end - taps.begin; pair++) {
            __m512bh w0 = (__m512bh)_mm512_loadu_si512(w0s + pair * 32), w1 = (__m512bh)_mm512_loadu_si512(w1s + pair * 32);
            /* Unrolled, so the accumulators stay in registers: clang left the 12-row loop rolled,
             * with every accumulator on the stack, at 40% of vdpbf16ps's throughput (Zen 4). */
#pragma clang loop unroll(full)
            for (int r = 0; r < count; r++) {
                uint32_t both;
                memcpy(&both, rows + r * row_stride + 2 * pair, sizeof both);
                __m512bh value = (__m512bh)_mm512_set1_epi32((int)both);
                left[r] = _mm512_dpbf16_ps(left[r], value, w0);
                right[r] = _mm512_dpbf16_ps(right[r], value, w1);
            }
        }
    }
    if (!keel_bf16_clamps(conv) && conv->activation != KEEL_ACTIVATION_NONE) {
        /* Other activations through the staged finish: inlined into every block copy they would
         * swell it, and a call per row would spill the accumulators. */
        float staging[BLOCK * 32] __attribute__((aligned(64)));
#pragma clang loop unroll(full)
        for (int r = 0; r < count; r++) {
            _mm512_store_ps(staging + r * 32, left[r]);
            _mm512_store_ps(staging + r * 32 + 16, right[r]);
        }
        keel_avx512bf16_finish(conv, staging, count, bias, at, low, high);
        return;
    }
    __m512 bias0 = bias ? _mm512_maskz_loadu_ps(low, bias) : _mm512_setzero_ps();
    __m512 bias1 = bias ? _mm512_maskz_loadu_ps(high, bias + 16) : _mm512_setzero_ps();
    const __m512 lower = keel_bf16_lower(conv), upper = keel_bf16_upper(conv);
    const int clamp = keel_bf16_clamps(conv);
    /* Unrolled too: rolled, the accumulators went through the stack on the way out, which cost
     * shallow layers (64-deep: 32 products per accumulator) 12% of their time (Zen 4). */
#pragma clang loop unroll(full)
    for (int r = 0; r < count; r++) {
        __m512 x0 = _mm512_add_ps(left[r], bias0), x1 = _mm512_add_ps(right[r], bias1);
        keel_bf16_add_residual(conv, at + r * ldc, &x0, &x1, low, high);
        if (clamp) keel_bf16_clamp(&x0, &x1, lower, upper);
        keel_bf16_store(conv, at + r * ldc, x0, x1, low, high);
    }
}

static KEEL_AVX512_BF16 void dot_rows(int count, const keel_bf16_conv *conv, const uint16_t *a, ptrdiff_t row_stride,
                                      struct pair_range taps, const uint16_t *b0, const uint16_t *b1,
                                      const float *bias, ptrdiff_t at, ptrdiff_t width, __mmask16 low, __mmask16 high) {
    switch (count) {
        KEEL_CASES_UP_TO_12(dot_block, conv, a, row_stride, taps, b0, b1, bias, at, width, low, high)
        default: break;
    }
}

void keel_avx512bf16_bf16_conv(const keel_bf16_conv *conv, ptrdiff_t first_pixel, ptrdiff_t pixel_count,
                               ptrdiff_t first_column, ptrdiff_t column_count, void *scratch) {
    const ptrdiff_t depth = keel_bf16_depth(conv), block_rows = keel_bf16_block_rows(depth);
    const ptrdiff_t columns = conv->output_channels;
    const ptrdiff_t last_column = first_column + column_count < columns ? first_column + column_count : columns;
    /* A bf16 input whose pixels are the im2col rows is read where it lies, rows input_channels
     * apart: this kernel reads only a row's filled pairs, so any even channel count will do, not
     * only whole 32-deep tiles as AMX's (MobileNet's 24- and 144-channel rows were copied). */
    const int in_place = conv->bf16_input && keel_bf16_pointwise(conv) && conv->input_channels % 2 == 0;
    const ptrdiff_t row_stride = in_place ? conv->input_channels : depth;
    /* Whether some output row's kernel rows reach the padding above or below the input. */
    const ptrdiff_t output_width = conv->output_width, plane = conv->output_height * output_width;
    const int padded_rows = conv->pad_top > 0
        || (conv->output_height - 1) * conv->stride_height + (conv->kernel_height - 1) * conv->dilation_height
               >= conv->pad_top + conv->input_height;
    for (ptrdiff_t start = first_pixel; start < first_pixel + pixel_count; start += block_rows) {
        const ptrdiff_t rows = first_pixel + pixel_count - start < block_rows ? first_pixel + pixel_count - start : block_rows;
        const uint16_t *block = in_place ? conv->bf16_input + start * row_stride : scratch;
        if (!in_place)
            keel_avx512bf16_im2col(conv, start, rows, rows, depth, scratch, keel_bf16_split_row_buffer(conv, scratch));
        for (ptrdiff_t column = first_column; column < last_column; column += KEEL_BF16_COLUMN_BLOCK) {
            const uint16_t *b0 = keel_bf16_column_block(conv->weights, depth, column);
            const uint16_t *b1 = b0 + depth * 16;
            const ptrdiff_t width = last_column - column < 32 ? last_column - column : 32;
            const __mmask16 low = keel_avx512_lanes(width), high = keel_avx512_lanes(width - 16);
            const float *bias = conv->bias ? conv->bias + column : NULL;
            for (ptrdiff_t row = 0; row < rows;) {
                int count = rows - row < BLOCK ? (int)(rows - row) : BLOCK;
                struct pair_range taps = {0, filled_pairs(conv)};
                if (padded_rows) {
                    /* A block's rows share their taps: it ends before the first output row whose differ. */
                    const ptrdiff_t pixel = start + row, y = (pixel % plane) / output_width;
                    taps = row_taps(conv, y);
                    ptrdiff_t same = output_width - pixel % output_width;
                    for (ptrdiff_t next = y + 1; same < count && next < conv->output_height; next++, same += output_width) {
                        const struct pair_range more = row_taps(conv, next);
                        if (more.begin != taps.begin || more.end != taps.end) break;
                    }
                    if (same < count) count = (int)same;
                }
                const ptrdiff_t at = (start + row) * columns + column;
                dot_rows(count, conv, block + row * row_stride, row_stride, taps, b0, b1, bias, at, width, low, high);
                row += count;
            }
        }
    }
}

/* Pair p of each 16-column block holds depths 2p and 2p + 1 interleaved (keel_bf16_pack), so one
 * vector of gates alternating scales[2p], scales[2p + 1] scales its 32 values. The padding past
 * `depth` is zero and stays so. */
KEEL_AVX512_BF16 void keel_avx512bf16_scale_depth(const uint16_t *packed, ptrdiff_t depth, ptrdiff_t columns,
                                                  const float *scales, uint16_t *scaled) {
    const ptrdiff_t padded_depth = (depth + KEEL_BF16_DEPTH_BLOCK - 1) / KEEL_BF16_DEPTH_BLOCK * KEEL_BF16_DEPTH_BLOCK;
    const ptrdiff_t blocks = (columns + KEEL_BF16_COLUMN_BLOCK - 1) / KEEL_BF16_COLUMN_BLOCK * 2;
    for (ptrdiff_t pair = 0; pair < padded_depth / 2; pair++) {
        const float even = 2 * pair < depth ? scales[2 * pair] : 0.0f;
        const float odd = 2 * pair + 1 < depth ? scales[2 * pair + 1] : 0.0f;
        const __m512 gates = _mm512_setr_ps(even, odd, even, odd, even, odd, even, odd, even, odd, even, odd, even, odd,
                                            even, odd);
        for (ptrdiff_t block = 0; block < blocks; block++) {
            const ptrdiff_t at = block * padded_depth * 16 + pair * 32;
            const __m512i both = _mm512_loadu_si512(packed + at);
            const __m512 low = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_castsi512_si256(both)), 16));
            const __m512 high = _mm512_castsi512_ps(
                _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(both, 1)), 16));
            _mm512_storeu_si512(scaled + at, (__m512i)_mm512_cvtne2ps_pbh(_mm512_mul_ps(high, gates),
                                                                         _mm512_mul_ps(low, gates)));
        }
    }
}

/* Depthwise layers around bf16 activations: the held-filter body (depthwise_conv.h) with bf16 loads
 * (16 values widened exactly: the bits shifted into the high half of each lane) and bf16 stores
 * (vcvtneps2bf16: nearest even, as every bf16 layer rounds), in the three combinations a plan
 * makes. */
#define BF16_LOAD(mask, pointer)                                                                             \
    _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(mask, pointer)), 16))
#define BF16_LOADU(pointer)                                                                                  \
    _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(pointer))), 16))
#define BF16_STORE(mask, pointer, value) _mm256_mask_storeu_epi16(pointer, mask, (__m256i)_mm512_cvtneps_pbh(value))

DEFINE_DEPTHWISE_HELD(bf16_to_bf16, avx512, KEEL_AVX512_BF16, __m512, 16, __mmask16, keel_avx512_lanes, KEEL_AVX512_LOAD,
                      _mm512_setzero_ps, _mm512_fmadd_ps, _mm512_add_ps, uint16_t, BF16_LOAD, BF16_LOADU, uint16_t,
                      BF16_STORE)
DEFINE_DEPTHWISE_HELD(bf16_to_fp32, avx512, KEEL_AVX512_BF16, __m512, 16, __mmask16, keel_avx512_lanes, KEEL_AVX512_LOAD,
                      _mm512_setzero_ps, _mm512_fmadd_ps, _mm512_add_ps, uint16_t, BF16_LOAD, BF16_LOADU, float,
                      KEEL_AVX512_STORE)
DEFINE_DEPTHWISE_HELD(fp32_to_bf16, avx512, KEEL_AVX512_BF16, __m512, 16, __mmask16, keel_avx512_lanes, KEEL_AVX512_LOAD,
                      _mm512_setzero_ps, _mm512_fmadd_ps, _mm512_add_ps, float, KEEL_AVX512_LOAD, _mm512_loadu_ps, uint16_t,
                      BF16_STORE)

void keel_avx512bf16_depthwise_conv(const keel_depthwise_conv *conv, ptrdiff_t first, ptrdiff_t count, float *scratch) {
    (void)scratch;
    if (count <= 0 || !keel_depthwise_conv_runs_bf16(conv)) return;
    if (conv->bf16_input && conv->bf16_output) bf16_to_bf16_depthwise_held_units(conv, first, count);
    else if (conv->bf16_input) bf16_to_fp32_depthwise_held_units(conv, first, count);
    else if (conv->bf16_output) fp32_to_bf16_depthwise_held_units(conv, first, count);
}

#endif
