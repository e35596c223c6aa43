/* Depthwise convolution, one body per level and layout.
 *   NHWC: runs of up to NHWC_COLUMNS adjacent output pixels whose taps all fall inside the input,
 *         one vector of channels at a time: each filter vector is loaded once per tap and feeds
 *         every pixel's accumulator (the filter is [taps][channels]). Pixels near the borders go
 *         one at a time over blocks of up to 4 vectors of channels, skipping taps outside the
 *         input, so padding costs nothing.
 *   NCHW: per channel plane, the input rows the plane's outputs read are staged once into a
 *         zero-padded buffer split into `stride` phases (phase q holds padded columns q, q + s, …),
 *         so adjacent output pixels read adjacent floats for every tap and stride, and no tap tests
 *         bounds; up to 4 vectors of adjacent output pixels per step, each tap's weight broadcast
 *         once for all of them. */
#ifndef KEEL_DEPTHWISE_CONV_TEMPLATE_H
#define KEEL_DEPTHWISE_CONV_TEMPLATE_H
/* The template each ISA file instantiates (DEFINE_DEPTHWISE, after its activations), and the
 * scalar helpers it uses. */
#include "keel_kernels.h"
#include "simd_internal.h"

#include <string.h>

enum { NHWC_VECTORS = 4, NHWC_COLUMNS = 8, NCHW_VECTORS = 4, NCHW_TAP_TABLE = 64 };

/* Padded input rows and columns the outputs read. */
static inline ptrdiff_t needed_rows(const keel_depthwise_conv *conv) {
    return (conv->output_height - 1) * conv->stride_height + (conv->kernel_height - 1) * conv->dilation_height + 1;
}
static inline ptrdiff_t needed_columns(const keel_depthwise_conv *conv) {
    return (conv->output_width - 1) * conv->stride_width + (conv->kernel_width - 1) * conv->dilation_width + 1;
}
/* Length of one staged phase row: its columns plus a vector of slack for the ragged last step. */
static inline ptrdiff_t phase_width(const keel_depthwise_conv *conv) {
    return (needed_columns(conv) + conv->stride_width - 1) / conv->stride_width + 16;
}

#if KEEL_X86

/* Where tap column `kx` reads in a staged row, relative to the output column: its phase's start
 * plus its whole steps. */
static inline ptrdiff_t tap_offset(const keel_depthwise_conv *conv, ptrdiff_t kx) {
    const ptrdiff_t offset = kx * conv->dilation_width;
    return (offset % conv->stride_width) * phase_width(conv) + offset / conv->stride_width;
}


/* Stages plane `plane` (image·channels + channel) into `scratch`: padded row y, phase q, position
 * j holds input (y − pad_top, j·stride + q − pad_left), zero outside the input. */
static inline void stage_plane(const keel_depthwise_conv *conv, ptrdiff_t plane, float *scratch) {
    const ptrdiff_t rows = needed_rows(conv), stride = conv->stride_width, width = phase_width(conv);
    const ptrdiff_t height = conv->input_height, columns = conv->input_width;
    const float *source = conv->input + plane * height * columns;
    for (ptrdiff_t y = 0; y < rows; y++) {
        const ptrdiff_t input_row = y - conv->pad_top;
        float *staged = scratch + y * stride * width;
        if (input_row < 0 || input_row >= height) {
            memset(staged, 0, (size_t)(stride * width) * sizeof(float));
            continue;
        }
        const float *line = source + input_row * columns;
        for (ptrdiff_t q = 0; q < stride; q++) {
            float *phase = staged + q * width;
            /* Positions j with 0 <= j·stride + q − pad_left < columns copy; the rest are zero. */
            const ptrdiff_t shift = q - conv->pad_left;
            ptrdiff_t first = shift >= 0 ? 0 : (-shift + stride - 1) / stride;
            ptrdiff_t end = columns - shift <= 0 ? 0 : (columns - shift + stride - 1) / stride;
            if (first > width) first = width;
            if (end > width) end = width;
            if (end < first) end = first;
            memset(phase, 0, (size_t)first * sizeof(float));
            if (stride == 1) memcpy(phase + first, line + first + shift, (size_t)(end - first) * sizeof(float));
            else
                for (ptrdiff_t j = first; j < end; j++) phase[j] = line[j * stride + shift];
            memset(phase + end, 0, (size_t)(width - end) * sizeof(float));
        }
    }
}

#define DEFINE_DEPTHWISE(PREFIX, ATTRIBUTE, VEC, WIDTH, MASK, MASK_FOR, LOAD, STORE, SET1, ZERO, FMADD, ADD)   \
    KEEL_INLINE ATTRIBUTE VEC PREFIX##_depthwise_finish(VEC value, const keel_epilogue *e, const float *bias,   \
                                                       const float *residual, MASK mask) {                     \
        if (bias) value = ADD(value, LOAD(mask, bias));                                                       \
        if (residual) value = ADD(value, LOAD(mask, residual));                                               \
        return keel_##PREFIX##_activate(value, e);                                                            \
    }                                                                                                         \
    /* One output pixel, every channel, taps outside the input skipped. */                                   \
    static ATTRIBUTE void PREFIX##_depthwise_nhwc_pixel(const keel_depthwise_conv *conv, ptrdiff_t unit,       \
                                                        ptrdiff_t column) {                                    \
        const ptrdiff_t channels = conv->channels, height = conv->input_height, width = conv->input_width;    \
        const keel_epilogue *e = &conv->epilogue;                                                             \
        const ptrdiff_t image = unit / conv->output_height, row = unit % conv->output_height;                 \
        const ptrdiff_t pixel = (unit * conv->output_width + column) * channels;                              \
        for (ptrdiff_t c0 = 0; c0 < channels; c0 += NHWC_VECTORS * WIDTH) {                                   \
            MASK masks[NHWC_VECTORS];                                                                         \
            VEC sums[NHWC_VECTORS];                                                                           \
            for (int v = 0; v < NHWC_VECTORS; v++) {                                                          \
                masks[v] = MASK_FOR(channels - c0 - v * WIDTH);                                               \
                sums[v] = ZERO();                                                                             \
            }                                                                                                 \
            for (ptrdiff_t ky = 0; ky < conv->kernel_height; ky++) {                                          \
                const ptrdiff_t y = row * conv->stride_height - conv->pad_top + ky * conv->dilation_height;   \
                if (y < 0 || y >= height) continue;                                                           \
                for (ptrdiff_t kx = 0; kx < conv->kernel_width; kx++) {                                       \
                    const ptrdiff_t x = column * conv->stride_width - conv->pad_left + kx * conv->dilation_width; \
                    if (x < 0 || x >= width) continue;                                                        \
                    const float *in = conv->input + ((image * height + y) * width + x) * channels + c0;       \
                    const float *w = conv->weights + (ky * conv->kernel_width + kx) * channels + c0;          \
                    for (int v = 0; v < NHWC_VECTORS; v++)                                                    \
                        sums[v] = FMADD(LOAD(masks[v], in + v * WIDTH), LOAD(masks[v], w + v * WIDTH), sums[v]); \
                }                                                                                             \
            }                                                                                                 \
            for (int v = 0; v < NHWC_VECTORS; v++) {                                                          \
                const ptrdiff_t c = c0 + v * WIDTH;                                                           \
                if (c >= channels) break;                                                                     \
                VEC value = PREFIX##_depthwise_finish(sums[v], e, e->bias ? e->bias + c : NULL,               \
                                                      e->residual ? e->residual + pixel + c : NULL, masks[v]); \
                STORE(masks[v], conv->output + pixel + c, value);                                             \
            }                                                                                                 \
        }                                                                                                     \
    }                                                                                                         \
    /* `columns` (at most NHWC_COLUMNS; a constant at each call) adjacent output pixels from `column`, \
     * all of whose taps lie inside the input's columns: per vector of channels, one filter load per  \
     * tap feeds every pixel. */                                                                      \
    KEEL_INLINE ATTRIBUTE void PREFIX##_depthwise_nhwc_run(const keel_depthwise_conv *conv, ptrdiff_t unit,    \
                                                           ptrdiff_t column, int columns) {                    \
        const ptrdiff_t channels = conv->channels, height = conv->input_height, width = conv->input_width;    \
        const keel_epilogue *e = &conv->epilogue;                                                             \
        const ptrdiff_t image = unit / conv->output_height, row = unit % conv->output_height;                 \
        const ptrdiff_t step = conv->stride_width * channels;                                                 \
        const ptrdiff_t pixel = (unit * conv->output_width + column) * channels;                              \
        const ptrdiff_t x0 = column * conv->stride_width - conv->pad_left;                                    \
        for (ptrdiff_t c = 0; c < channels; c += WIDTH) {                                                     \
            const MASK mask = MASK_FOR(channels - c);                                                         \
            VEC sums[NHWC_COLUMNS];                                                                           \
            for (int j = 0; j < columns; j++) sums[j] = ZERO();                                               \
            for (ptrdiff_t ky = 0; ky < conv->kernel_height; ky++) {                                          \
                const ptrdiff_t y = row * conv->stride_height - conv->pad_top + ky * conv->dilation_height;   \
                if (y < 0 || y >= height) continue;                                                           \
                const float *line = conv->input + ((image * height + y) * width + x0) * channels + c;         \
                const float *w = conv->weights + ky * conv->kernel_width * channels + c;                      \
                for (ptrdiff_t kx = 0; kx < conv->kernel_width; kx++) {                                       \
                    const VEC weight = LOAD(mask, w + kx * channels);                                         \
                    const float *in = line + kx * conv->dilation_width * channels;                            \
                    for (int j = 0; j < columns; j++) sums[j] = FMADD(LOAD(mask, in + j * step), weight, sums[j]); \
                }                                                                                             \
            }                                                                                                 \
            for (int j = 0; j < columns; j++) {                                                               \
                const ptrdiff_t at = pixel + j * channels + c;                                                \
                VEC value = PREFIX##_depthwise_finish(sums[j], e, e->bias ? e->bias + c : NULL,               \
                                                      e->residual ? e->residual + at : NULL, mask);           \
                STORE(mask, conv->output + at, value);                                                        \
            }                                                                                                 \
        }                                                                                                     \
    }                                                                                                         \
    static ATTRIBUTE void PREFIX##_depthwise_nhwc(const keel_depthwise_conv *conv, ptrdiff_t first,            \
                                                  ptrdiff_t count) {                                          \
        const ptrdiff_t stride = conv->stride_width, reach = (conv->kernel_width - 1) * conv->dilation_width; \
        /* Output columns [inside_first, inside_end) read only input columns inside the image. */      \
        const ptrdiff_t inside_first = (conv->pad_left + stride - 1) / stride;                                \
        const ptrdiff_t last_input = conv->input_width - 1 + conv->pad_left - reach;                          \
        ptrdiff_t inside_end = last_input < 0 ? 0 : last_input / stride + 1;                                  \
        if (inside_end > conv->output_width) inside_end = conv->output_width;                                 \
        for (ptrdiff_t unit = first; unit < first + count; unit++) {                                          \
            ptrdiff_t column = 0;                                                                             \
            for (; column < conv->output_width && column < inside_first; column++)                            \
                PREFIX##_depthwise_nhwc_pixel(conv, unit, column);                                            \
            for (; column + NHWC_COLUMNS <= inside_end; column += NHWC_COLUMNS)                               \
                PREFIX##_depthwise_nhwc_run(conv, unit, column, NHWC_COLUMNS);                                \
            for (; column + NHWC_COLUMNS / 2 <= inside_end; column += NHWC_COLUMNS / 2)                       \
                PREFIX##_depthwise_nhwc_run(conv, unit, column, NHWC_COLUMNS / 2);                            \
            for (; column < conv->output_width; column++) PREFIX##_depthwise_nhwc_pixel(conv, unit, column);  \
        }                                                                                                     \
    }                                                                                                         \
    /* `vectors` (a constant at each call) vectors of adjacent output pixels of one row from `column`: \
     * each tap's weight is broadcast once and feeds every vector. */                                \
    KEEL_INLINE ATTRIBUTE void PREFIX##_depthwise_nchw_block(const keel_depthwise_conv *conv, const float *staged, \
                                                             const ptrdiff_t *tap_offsets, const float *filter, \
                                                             ptrdiff_t column, int vectors, float *out,          \
                                                             const float *residual, VEC bias) {                  \
        const ptrdiff_t row_floats = conv->stride_width * phase_width(conv);                                  \
        const keel_epilogue *e = &conv->epilogue;                                                             \
        MASK masks[NCHW_VECTORS];                                                                             \
        VEC sums[NCHW_VECTORS];                                                                               \
        for (int v = 0; v < vectors; v++) {                                                                   \
            masks[v] = MASK_FOR(conv->output_width - column - v * WIDTH);                                     \
            sums[v] = ZERO();                                                                                 \
        }                                                                                                     \
        for (ptrdiff_t ky = 0; ky < conv->kernel_height; ky++) {                                              \
            const float *line = staged + ky * conv->dilation_height * row_floats + column;                    \
            for (ptrdiff_t kx = 0; kx < conv->kernel_width; kx++) {                                           \
                const VEC weight = SET1(filter[ky * conv->kernel_width + kx]);                                \
                const float *in = line + (kx < NCHW_TAP_TABLE ? tap_offsets[kx] : tap_offset(conv, kx));      \
                for (int v = 0; v < vectors; v++) sums[v] = FMADD(LOAD(masks[v], in + v * WIDTH), weight, sums[v]); \
            }                                                                                                 \
        }                                                                                                     \
        for (int v = 0; v < vectors; v++) {                                                                   \
            const ptrdiff_t at = column + v * WIDTH;                                                          \
            VEC sum = sums[v];                                                                                \
            if (e->bias) sum = ADD(sum, bias);                                                                \
            if (residual) sum = ADD(sum, LOAD(masks[v], residual + at));                                      \
            STORE(masks[v], out + at, keel_##PREFIX##_activate(sum, e));                                      \
        }                                                                                                     \
    }                                                                                                         \
    static ATTRIBUTE void PREFIX##_depthwise_nchw(const keel_depthwise_conv *conv, ptrdiff_t first,            \
                                                  ptrdiff_t count, float *scratch) {                          \
        const ptrdiff_t row_floats = conv->stride_width * phase_width(conv);                                  \
        const ptrdiff_t taps = conv->kernel_height * conv->kernel_width;                                      \
        const ptrdiff_t outputs = conv->output_height * conv->output_width;                                   \
        const keel_epilogue *e = &conv->epilogue;                                                             \
        ptrdiff_t tap_offsets[NCHW_TAP_TABLE];                                                                \
        for (ptrdiff_t kx = 0; kx < conv->kernel_width && kx < NCHW_TAP_TABLE; kx++)                          \
            tap_offsets[kx] = tap_offset(conv, kx);                                                           \
        for (ptrdiff_t plane = first; plane < first + count; plane++) {                                       \
            const ptrdiff_t channel = plane % conv->channels;                                                 \
            const float *filter = conv->weights + channel * taps;                                             \
            stage_plane(conv, plane, scratch);                                                                \
            const VEC bias = e->bias ? SET1(e->bias[channel]) : ZERO();                                       \
            for (ptrdiff_t row = 0; row < conv->output_height; row++) {                                       \
                float *out = conv->output + plane * outputs + row * conv->output_width;                       \
                const float *residual = e->residual ? e->residual + plane * outputs + row * conv->output_width \
                                                    : NULL;                                                   \
                const float *staged = scratch + row * conv->stride_height * row_floats;                       \
                for (ptrdiff_t column = 0; column < conv->output_width; column += NCHW_VECTORS * WIDTH) {      \
                    const ptrdiff_t left = (conv->output_width - column + WIDTH - 1) / WIDTH;                 \
                    if (left >= NCHW_VECTORS)                                                                 \
                        PREFIX##_depthwise_nchw_block(conv, staged, tap_offsets, filter, column, NCHW_VECTORS, out, \
                                                      residual, bias);                                        \
                    else if (left == 3)                                                                       \
                        PREFIX##_depthwise_nchw_block(conv, staged, tap_offsets, filter, column, 3, out, residual, bias); \
                    else if (left == 2)                                                                       \
                        PREFIX##_depthwise_nchw_block(conv, staged, tap_offsets, filter, column, 2, out, residual, bias); \
                    else                                                                                      \
                        PREFIX##_depthwise_nchw_block(conv, staged, tap_offsets, filter, column, 1, out, residual, bias); \
                }                                                                                             \
            }                                                                                                 \
        }                                                                                                     \
    }                                                                                                         \
    void keel_##PREFIX##_depthwise_conv(const keel_depthwise_conv *conv, ptrdiff_t first, ptrdiff_t count,    \
                                        float *scratch) {                                                     \
        if (count <= 0) return;                                                                               \
        if (conv->channels_last) PREFIX##_depthwise_nhwc(conv, first, count);                                 \
        else PREFIX##_depthwise_nchw(conv, first, count, scratch);                                            \
    }

#endif
#endif
