/* Direct convolution for few input channels. Per output row, the input rows its taps read are
 * copied into zero-padded lines, so taps never test bounds and adjacent output pixels read
 * adjacent floats whatever the input layout (which may differ from the output's). With a
 * horizontal stride s, each input row and channel is split into s phase lines (positions q,
 * q + s, q + 2s, …): the tap at padded column x·s + k reads phase k mod s at x + k / s, so one
 * copy of the row serves every kernel column (a line per tap, as before, copied each input value
 * kernel_width / s times: 28% of a 7×7 stride-2 stem's time). An input row stays in its slot
 * while the next output rows read it, so each is copied once per pass over the rows. The filter
 * is the im2col GEMM's packed [taps·channels][outputs] matrix, read in place.
 *   NHWC: a block of adjacent pixels × 32 output channels (AVX2: 16) in registers; per tap, two
 *         filter vectors and one broadcast input value per pixel. A layer with at most 16 outputs
 *         (AVX2: 8; MobileNetV3's stem) holds twice the pixels against one filter vector instead,
 *         which half the accumulators would otherwise idle on.
 *   NCHW: a block of output channels × 32 adjacent pixels (AVX2: 16); per tap, two input vectors
 *         and one broadcast filter value per channel.
 * Every output is fused multiply-adds over the taps in filter order from zero, then bias, residual
 * and activation, so both layouts, both levels and any split of rows give identical values. */
#ifndef KEEL_DIRECT_CONV_TEMPLATE_H
#define KEEL_DIRECT_CONV_TEMPLATE_H
/* The template each ISA file instantiates (DEFINE_DIRECT_CONVOLUTION), and the scalar window
 * loading it uses. */
#include "keel_kernels.h"
#include "simd_internal.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* Register blocks must be unrolled whole for their accumulators to stay in registers. */
#define UNROLLED _Pragma("clang loop unroll(full)")

enum {
    /* Accumulator blocks: 12×2 of the 32 AVX-512 registers, 6×2 of the 16 AVX2 ones. */
    AVX512_BLOCK = 12,
    AVX2_BLOCK = 6,
};

/* Positions of the padded input row that an output row reads. */
static inline ptrdiff_t window_width(const keel_direct_conv *conv) {
    return (conv->output_width - 1) * conv->stride_width + (conv->kernel_width - 1) * conv->dilation_width + 1;
}

/* Floats of one phase line: the output columns plus the farthest kernel column's shift. */
static inline ptrdiff_t phase_length(const keel_direct_conv *conv) {
    return conv->output_width + (conv->kernel_width - 1) * conv->dilation_width / conv->stride_width;
}

/* Floats of scratch one kernel row's phase lines take ([input channel][phase][position]). */
static inline ptrdiff_t row_floats(const keel_direct_conv *conv) {
    return conv->input_channels * conv->stride_width * phase_length(conv);
}

/* Floats of scratch the row slots take (one per kernel row); the tap offsets and the slots' tags
 * follow them. */
static inline ptrdiff_t window_floats(const keel_direct_conv *conv) {
    return conv->kernel_height * row_floats(conv);
}

/* A slot's tag: the input row it holds (image · input_height + row), or one of these. */
enum { SLOT_EMPTY = -2, SLOT_ZEROS = -1 };

/* Where the slots' bookkeeping starts in scratch (after the slots and the 32-bit tap offsets, at
 * an 8-byte boundary): three words per kernel row (direct_conv.c counts them). */
static inline ptrdiff_t slot_state_offset(const keel_direct_conv *conv) {
    const ptrdiff_t end = window_floats(conv) + conv->kernel_height * conv->kernel_width * conv->input_channels;
    return (end + 1) / 2 * 2;
}

#if KEEL_X86
/* Copies input row `input_row` of `image` into zero-padded phase lines at `lines`; a row outside
 * the input (or a window with no input column) is zeros. */
static inline void load_row(const keel_direct_conv *conv, ptrdiff_t image, ptrdiff_t input_row, float *lines) {
    const ptrdiff_t width = window_width(conv), channels = conv->input_channels, stride = conv->stride_width;
    const ptrdiff_t length = phase_length(conv), plane = stride * length;
    const ptrdiff_t height = conv->input_height, columns = conv->input_width;
    /* Input columns 0..<columns sit at window positions pad_left..<pad_left + columns. */
    const ptrdiff_t begin = conv->pad_left < width ? conv->pad_left : width;
    ptrdiff_t end = conv->pad_left + columns < width ? conv->pad_left + columns : width;
    if (end < begin) end = begin;
    if (input_row < 0 || input_row >= height || begin == end) {
        memset(lines, 0, (size_t)(channels * plane) * sizeof(float));
        return;
    }
    const ptrdiff_t first_column = begin - conv->pad_left;
    const int channels_last = conv->input_channels_last;
    const float *source = channels_last
        ? conv->input + ((image * height + input_row) * columns + first_column) * channels
        : conv->input + (image * channels * height + input_row) * columns + first_column;
    const ptrdiff_t channel_step = channels_last ? 1 : height * columns;
    const ptrdiff_t column_step = channels_last ? channels : 1;
    for (ptrdiff_t c = 0; c < channels; c++) {
        const float *values = source + c * channel_step;
        for (ptrdiff_t q = 0; q < stride; q++) {
            /* Phase q holds window positions q + j·s: zeros, then the input's, then zeros. */
            float *line = lines + c * plane + q * length;
            const ptrdiff_t inside = begin > q ? (begin - q + stride - 1) / stride : 0;
            const ptrdiff_t outside = end > q ? (end - q + stride - 1) / stride : 0;
            memset(line, 0, (size_t)inside * sizeof(float));
            const float *value = values + (q + inside * stride - begin) * column_step;
            if (stride == 1 && column_step == 1) memcpy(line + inside, value, (size_t)(outside - inside) * sizeof(float));
            /* An NCHW row at stride 2 (a PyTorch image into a stem): a constant step the compiler
             * vectorises with shuffles, where a variable one stays a scalar gather. */
            else if (stride == 2 && column_step == 1)
                for (ptrdiff_t j = 0; j < outside - inside; j++) line[inside + j] = value[2 * j];
            else for (ptrdiff_t j = inside; j < outside; j++, value += stride * column_step) line[j] = *value;
            memset(line + outside, 0, (size_t)(length - outside) * sizeof(float));
        }
    }
}

/* Makes the input rows that output row `row` of `image` reads present in the row slots at
 * `scratch`, each tagged in `tags` with the row it holds, and writes each tap's offset from
 * `scratch` in filter order (kernel row, kernel column, channel): one flat loop over the taps in
 * the block instead of three nested ones, whose innermost ran over an RGB input's 3 channels.
 * A row the previous output row read stays where it is (a stride-2 7×7 stem copies 2 rows per
 * output row, not 7), and every padding row shares one slot of zeros. Returns the number of taps. */
static inline ptrdiff_t load_window(const keel_direct_conv *conv, ptrdiff_t image, ptrdiff_t row, float *scratch,
                                    int32_t *offsets, ptrdiff_t *slots) {
    const ptrdiff_t kernel_height = conv->kernel_height, channels = conv->input_channels;
    const ptrdiff_t stride = conv->stride_width, length = phase_length(conv), plane = stride * length;
    const ptrdiff_t height = conv->input_height, slot_floats = row_floats(conv);
    const int no_columns = conv->pad_left >= window_width(conv) || conv->pad_left + conv->input_width <= 0;
    /* Per slot its tag and whether this output row reads it; per kernel row its slot. */
    ptrdiff_t *tags = slots, *kept = slots + kernel_height, *slot_of = slots + 2 * kernel_height;
    for (ptrdiff_t slot = 0; slot < kernel_height; slot++) kept[slot] = 0;
    /* Pass 1: the slot already holding each kernel row's input row, or -1. */
    for (ptrdiff_t ky = 0; ky < kernel_height; ky++) {
        const ptrdiff_t input_row = row * conv->stride_height - conv->pad_top + ky * conv->dilation_height;
        const ptrdiff_t tag = input_row < 0 || input_row >= height || no_columns ? SLOT_ZEROS : image * height + input_row;
        slot_of[ky] = -1;
        for (ptrdiff_t slot = 0; slot < kernel_height; slot++) {
            if (tags[slot] == tag) { slot_of[ky] = slot; kept[slot] = 1; break; }
        }
    }
    /* Pass 2: the rows not held go to slots this output row does not read. */
    ptrdiff_t free_slot = 0;
    for (ptrdiff_t ky = 0; ky < kernel_height; ky++) {
        if (slot_of[ky] >= 0) continue;
        const ptrdiff_t input_row = row * conv->stride_height - conv->pad_top + ky * conv->dilation_height;
        const ptrdiff_t tag = input_row < 0 || input_row >= height || no_columns ? SLOT_ZEROS : image * height + input_row;
        ptrdiff_t found = -1;
        for (ptrdiff_t earlier = 0; earlier < ky && found < 0; earlier++) {
            if (slot_of[earlier] >= 0 && tags[slot_of[earlier]] == tag) found = slot_of[earlier];
        }
        if (found < 0) {
            while (kept[free_slot]) free_slot++;
            found = free_slot;
            kept[found] = 1;
            tags[found] = tag;
            load_row(conv, image, input_row, scratch + found * slot_floats);
        }
        slot_of[ky] = found;
    }
    ptrdiff_t count = 0;
    for (ptrdiff_t ky = 0; ky < kernel_height; ky++)
        for (ptrdiff_t kx = 0; kx < conv->kernel_width; kx++) {
            const ptrdiff_t shift = kx * conv->dilation_width;
            for (ptrdiff_t c = 0; c < channels; c++)
                offsets[count++] = (int32_t)((slot_of[ky] * channels + c) * plane + (shift % stride) * length
                                             + shift / stride);
        }
    return count;
}

/* Even split of `count` into `groups` parts: the start of part `index`. */
static inline ptrdiff_t part_start(ptrdiff_t count, ptrdiff_t groups, ptrdiff_t index) { return count * index / groups; }

/* One register block per level. A block is `count` rows × a span of two vectors:
 *   NHWC: rows are adjacent pixels, the span output channels; per tap the filter vectors are
 *         loaded and each pixel's input value is broadcast.
 *   NCHW: rows are output channels, the span adjacent pixels; per tap the input vectors are
 *         loaded and each channel's filter value is broadcast.
 * `CASES` lists the row counts a level's registers hold (KEEL_CASES_UP_TO_n); a second vector of at most
 * SHORT_LANES lanes (0: none) multiplies through SHORT_FMADD. */
#define DEFINE_DIRECT_CONVOLUTION(PREFIX, ATTRIBUTE, VEC, HALF, LIMIT, CASES, MASK, MASK_FOR, LOAD, STORE,   \
                                  SET1, ZERO, FMADD, ADD, MIN, MAX, SHORT_LANES, SHORT_FMADD)               \
    /* Bias, residual (at `residual`, laid out as the output) and any activation but the clamps. */       \
    KEEL_INLINE ATTRIBUTE VEC PREFIX##_conv_finish(VEC sum, VEC bias, const float *residual, MASK mask,          \
                                                  const keel_epilogue *e, int clamp, VEC lower, VEC upper) { \
        sum = ADD(sum, bias);                                                                               \
        if (residual) sum = ADD(sum, LOAD(mask, residual));                                                 \
        /* The clamps in keel_<PREFIX>_activate's operand order: NaN and −0 come out the same. */           \
        return clamp ? MIN(upper, MAX(lower, sum)) : keel_##PREFIX##_activate(sum, e);                      \
    }                                                                                                       \
    /* A block's rows finished and stored; `clamp` and `narrow` are constants at each call. A narrow     \
     * block (NHWC, at most one vector of outputs) holds rows count…2·count − 1 in `right`. */             \
    KEEL_INLINE ATTRIBUTE void PREFIX##_conv_store(const int count, const int narrow, int channels_last,         \
                                                  const VEC *left, const VEC *right, const float *bias,       \
                                                  const keel_epilogue *e, const float *residual, float *out,   \
                                                  ptrdiff_t row_step, MASK low, MASK high, int clamp, VEC lower, \
                                                  VEC upper) {                                              \
        /* NHWC: a bias per lane (output channel); NCHW: one per row. */                                   \
        VEC b0 = bias && channels_last ? LOAD(low, bias) : ZERO();                                          \
        VEC b1 = narrow ? b0 : bias && channels_last ? LOAD(high, bias + HALF) : ZERO();                    \
        const MASK second = narrow ? low : high;                                                            \
        UNROLLED                                                                                            \
        for (int r = 0; r < count; r++) {                                                                   \
            if (bias && !channels_last) b0 = b1 = SET1(bias[r]);                                            \
            const ptrdiff_t at = r * row_step, other = narrow ? (count + r) * row_step : at + HALF;         \
            STORE(low, out + at, PREFIX##_conv_finish(left[r], b0, residual ? residual + at : NULL, low, e, clamp, \
                                                     lower, upper));                                        \
            STORE(second, out + other, PREFIX##_conv_finish(right[r], b1, residual ? residual + other : NULL, second, \
                                                           e, clamp, lower, upper));                        \
        }                                                                                                   \
    }                                                                                                       \
    /* `short_tail` (a constant at each call): the second vector holds at most SHORT_LANES lanes, which  \
     * SHORT_FMADD multiplies on its low half (panel_gemm.h, PANEL_MULTIPLY_ADD). */                       \
    KEEL_INLINE ATTRIBUTE void PREFIX##_conv_block(const int count, const int narrow, const int short_tail,     \
                                              int channels_last, const float *base,                         \
                                              const int32_t *offsets, ptrdiff_t tap_count,                  \
                                              const float *weights, ptrdiff_t weight_step, const float *bias, \
                                              const keel_epilogue *e, const float *residual, float *out,    \
                                              ptrdiff_t row_step, MASK low, MASK high) {                    \
        VEC left[LIMIT], right[LIMIT];                                                                      \
        UNROLLED                                                                                            \
        for (int r = 0; r < count; r++) { left[r] = ZERO(); right[r] = ZERO(); }                            \
        const float *w = weights;                                                                           \
        for (ptrdiff_t tap = 0; tap < tap_count; tap++, w += weight_step) {                                 \
            const float *a = base + offsets[tap];                                                           \
            const float *span = channels_last ? w : a, *factors = channels_last ? a : w;                    \
            VEC v0 = LOAD(low, span), v1 = narrow ? v0 : LOAD(high, span + HALF);                           \
            UNROLLED                                                                                        \
            for (int r = 0; r < count; r++) {                                                               \
                VEC value = SET1(factors[r]);                                                               \
                left[r] = FMADD(value, v0, left[r]);                                                        \
                if (short_tail) right[r] = SHORT_FMADD(value, v1, right[r]);                                \
                else right[r] = FMADD(narrow ? SET1(factors[count + r]) : value, v1, right[r]);             \
            }                                                                                               \
        }                                                                                                   \
        /* NONE, RELU and CLIP as a clamp with bounds set once, not a switch per vector (as in the        \
         * panel GEMM's epilogue). */                                                                     \
        const keel_activation kind = e->activation;                                                         \
        if (kind == KEEL_ACTIVATION_NONE || kind == KEEL_ACTIVATION_RELU || kind == KEEL_ACTIVATION_CLIP) { \
            const VEC lower = SET1(kind == KEEL_ACTIVATION_RELU ? 0.0f : kind == KEEL_ACTIVATION_CLIP ? e->parameter0 : -INFINITY); \
            const VEC upper = SET1(kind == KEEL_ACTIVATION_CLIP ? e->parameter1 : INFINITY);                \
            PREFIX##_conv_store(count, narrow, channels_last, left, right, bias, e, residual, out, row_step, low, \
                                high, 1, lower, upper);                                                     \
        } else {                                                                                            \
            PREFIX##_conv_store(count, narrow, channels_last, left, right, bias, e, residual, out, row_step, low, \
                                high, 0, ZERO(), ZERO());                                                   \
        }                                                                                                   \
    }                                                                                                       \
    /* Rows [first, first + count) of `out` (pixels in NHWC, channels in NCHW) over the span from       \
     * `start`; `narrow` (NHWC, at most one vector of outputs) as two half blocks of `count` / 2 rows in  \
     * one block's registers, an odd last row alone. */                                                    \
    KEEL_INLINE ATTRIBUTE void PREFIX##_conv_rows(const keel_direct_conv *conv, const int narrow,            \
                                                  const float *window, const int32_t *offsets,              \
                                                  ptrdiff_t tap_count, float *out, ptrdiff_t row_step,       \
                                                  ptrdiff_t first, ptrdiff_t count, ptrdiff_t start) {       \
        const keel_epilogue *e = &conv->epilogue;                                                           \
        const int channels_last = conv->channels_last;                                                      \
        const ptrdiff_t outputs = conv->output_channels, spans = channels_last ? outputs : conv->output_width; \
        const MASK low = MASK_FOR(spans - start), high = MASK_FOR(spans - start - HALF);                    \
        const ptrdiff_t pixel = channels_last ? first : start, channel = channels_last ? start : first;     \
        const float *base = window + pixel;                                                                 \
        const float *bias = e->bias ? e->bias + channel : NULL;                                             \
        float *target = out + first * row_step + start;                                                     \
        const float *residual = e->residual ? e->residual + (target - conv->output) : NULL;                 \
        const float *weights = conv->weights + channel;                                                     \
        if (!narrow && SHORT_LANES > 0 && spans - start - HALF <= SHORT_LANES) {                            \
            switch (count) {                                                                                \
                CASES(PREFIX##_conv_block, 0, 1, channels_last, base, offsets, tap_count, weights, outputs, bias, \
                      e, residual, target, row_step, low, high)                                             \
                default: break;                                                                             \
            }                                                                                               \
            return;                                                                                         \
        }                                                                                                   \
        if (!narrow) {                                                                                      \
            switch (count) {                                                                                \
                CASES(PREFIX##_conv_block, 0, 0, channels_last, base, offsets, tap_count, weights, outputs, bias, \
                      e, residual, target, row_step, low, high)                                             \
                default: break;                                                                             \
            }                                                                                               \
            return;                                                                                         \
        }                                                                                                   \
        switch (count / 2) {                                                                                \
            CASES(PREFIX##_conv_block, 1, 0, channels_last, base, offsets, tap_count, weights, outputs, bias, e, \
                  residual, target, row_step, low, high)                                                    \
            default: break;                                                                                 \
        }                                                                                                   \
        if (count % 2) {                                                                                    \
            const ptrdiff_t last = count - 1;                                                               \
            PREFIX##_conv_block(1, 0, 0, channels_last, base + last, offsets, tap_count, weights, outputs, bias, e, \
                                residual ? residual + last * row_step : NULL, target + last * row_step, row_step, \
                                low, high);                                                                 \
        }                                                                                                   \
    }                                                                                                       \
    static ATTRIBUTE void PREFIX##_conv_row(const keel_direct_conv *conv, const float *window, const int32_t *offsets, \
                                            ptrdiff_t tap_count, float *out, ptrdiff_t plane) {             \
        const ptrdiff_t width = conv->output_width, outputs = conv->output_channels;                        \
        const int channels_last = conv->channels_last;                                                      \
        const ptrdiff_t rows = channels_last ? width : outputs, spans = channels_last ? outputs : width;    \
        const ptrdiff_t row_step = channels_last ? outputs : plane;                                         \
        /* A single vector of outputs per pixel fills half the accumulators; two half blocks fill them. */ \
        const int narrow = channels_last && outputs <= HALF;                                                \
        const ptrdiff_t limit = narrow ? 2 * LIMIT : LIMIT, groups = (rows + limit - 1) / limit;            \
        for (ptrdiff_t group = 0; group < groups; group++) {                                                \
            const ptrdiff_t first = part_start(rows, groups, group);                                        \
            const ptrdiff_t count = part_start(rows, groups, group + 1) - first;                            \
            for (ptrdiff_t start = 0; start < spans; start += 2 * HALF) {                                   \
                if (narrow)                                                                                 \
                    PREFIX##_conv_rows(conv, 1, window, offsets, tap_count, out, row_step, first, count, start); \
                else                                                                                        \
                    PREFIX##_conv_rows(conv, 0, window, offsets, tap_count, out, row_step, first, count, start); \
            }                                                                                               \
        }                                                                                                   \
    }                                                                                                       \
    void keel_##PREFIX##_direct_conv_rows(const keel_direct_conv *conv, ptrdiff_t first_row,                \
                                          ptrdiff_t row_count, float *scratch) {                            \
        const ptrdiff_t height = conv->output_height, width = conv->output_width;                           \
        const ptrdiff_t outputs = conv->output_channels, plane = height * width;                            \
        int32_t *offsets = (int32_t *)(scratch + window_floats(conv));                                      \
        ptrdiff_t *slots = (ptrdiff_t *)(scratch + slot_state_offset(conv));                                \
        for (ptrdiff_t slot = 0; slot < conv->kernel_height; slot++) slots[slot] = SLOT_EMPTY;              \
        for (ptrdiff_t r = first_row; r < first_row + row_count; r++) {                                     \
            const ptrdiff_t image = r / height, row = r % height;                                           \
            const ptrdiff_t tap_count = load_window(conv, image, row, scratch, offsets, slots);                     \
            float *out = conv->channels_last ? conv->output + r * width * outputs                           \
                                             : conv->output + image * outputs * plane + row * width;        \
            PREFIX##_conv_row(conv, scratch, offsets, tap_count, out, plane);                                  \
        }                                                                                                   \
    }

#endif
#endif
