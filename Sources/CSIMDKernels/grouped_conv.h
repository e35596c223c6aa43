/* Grouped convolution, NHWC, one body per level. A work unit is one output row over one block of
 * channels; its pixels run in blocks of adjacent interior pixels (every tap inside the input) with
 * a register block of accumulators per pixel and vector of output channels, border pixels one at
 * a time over the taps that fall inside. Two bodies, by channels per group G:
 *   lanes      G < the vector width and dividing it (2, 4, 8 on AVX-512; 2, 4 on AVX2): a vector
 *              of output channels covers whole groups, and its input vector holds exactly their
 *              input channels. In-group input channel j reaches every lane by one permute of
 *              that vector (lane l takes lane l − l mod G + j) and multiplies the filter's
 *              [tap][j] vector: G permutes and G FMAs per input vector, every lane useful,
 *              where a GEMM per group would fill G of its 16 or 32 lanes.
 *   broadcast  other G (16, 24, 32, …): per group, vectors of its output channels; each in-group
 *              input value is broadcast and multiplies the filter's [tap][j] vector, a GEMM
 *              G·taps deep whose left operand is read in place instead of through im2col. A last
 *              vector of at most half the width (24 = 16 + 8 on AVX-512, RegNet's groups) runs on
 *              256-bit FMAs: Zen 4 executes a 512-bit one as two halves, masked lanes included
 *              (RegNetX-1.6GF's 24-channel layers, one core: 78–80 → 89–92 GFLOP/s).
 * Every output is fused multiply-adds over the taps (kernel row, kernel column, then j) from zero,
 * then bias, residual and activation. A pixel the broadcast body takes alone (a border pixel, or
 * an interior run of one) has only one or two accumulators, each FMA waiting on the last: its j
 * alternate over four chains instead, added in a fixed order at the end (14×14×512 in 16-channel
 * groups, 91 → 96 GFLOP/s on one Zen 4 core). Which pixels are alone depends on the shape only,
 * so any split of the work across threads gives the same bits. */
#ifndef KEEL_GROUPED_CONV_TEMPLATE_H
#define KEEL_GROUPED_CONV_TEMPLATE_H
/* The template each ISA file instantiates (DEFINE_GROUPED_CONV, after its activations), and the
 * scalar helpers the work split shares with grouped_conv.c. */
#include "keel_kernels.h"
#include "simd_internal.h"

/* A call is cut into channel blocks until it has this many units (rows × blocks), so that a small
 * map at batch 1 (7×7) still splits across threads. */
enum { GROUPED_UNITS = 16 };

/* Channels a block is a multiple of: whole groups, and at least 32 (two AVX-512 vectors, four AVX2
 * ones), so that every block starts on a vector boundary that is also a group boundary. */
static inline ptrdiff_t grouped_alignment(const keel_grouped_conv *conv) {
    const ptrdiff_t size = conv->group_channels;
    return size >= 32 ? size : size * ((32 + size - 1) / size);
}

static inline ptrdiff_t grouped_blocks(const keel_grouped_conv *conv) {
    const ptrdiff_t rows = conv->batch * conv->output_height, alignment = grouped_alignment(conv);
    const ptrdiff_t chunks = (conv->channels + alignment - 1) / alignment;
    const ptrdiff_t wanted = rows >= GROUPED_UNITS || rows <= 0 ? 1 : (GROUPED_UNITS + rows - 1) / rows;
    return wanted < chunks ? wanted : chunks;
}

/* Even split of `count` into `parts`: the start of part `index`. */
static inline ptrdiff_t grouped_part_start(ptrdiff_t count, ptrdiff_t parts, ptrdiff_t index) {
    return count * index / parts;
}

/* The kernel positions [*begin, *end) whose input position `at` + k·dilation lies in [0, size). */
static inline void grouped_taps_inside(ptrdiff_t at, ptrdiff_t dilation, ptrdiff_t kernel, ptrdiff_t size,
                                       ptrdiff_t *begin, ptrdiff_t *end) {
    ptrdiff_t first = at >= 0 ? 0 : (-at + dilation - 1) / dilation;
    ptrdiff_t last = at > size - 1 ? 0 : (size - 1 - at) / dilation + 1;
    if (last > kernel) last = kernel;
    if (first > last) first = last;
    *begin = first;
    *end = last;
}

/* The filter block (keel_grouped_block_channels) holding `channel`, from tap 0 at `channel`'s
 * column; *width is the block's width, the distance between its rows (tap, j). */
static inline const float *grouped_block_filter(const keel_grouped_conv *conv, ptrdiff_t channel, ptrdiff_t *width) {
    const ptrdiff_t block = keel_grouped_block_channels(conv->group_channels);
    const ptrdiff_t start = channel - channel % block, rest = conv->channels - start;
    *width = rest < block ? rest : block;
    return conv->weights + start * conv->kernel_height * conv->kernel_width * conv->group_channels + (channel - start);
}

/* Input row `ky` of the taps of output row `row` of `image`, from input column x0 and `channel`. */
static inline const float *grouped_input_line(const keel_grouped_conv *conv, ptrdiff_t image, ptrdiff_t row,
                                              ptrdiff_t ky, ptrdiff_t x0, ptrdiff_t channel) {
    const ptrdiff_t y = row * conv->stride_height - conv->pad_top + ky * conv->dilation_height;
    return conv->input + ((image * conv->input_height + y) * conv->input_width + x0) * conv->channels + channel;
}

/* `case n: BLOCK(n, ...); break;` for the pixel counts of a level's blocks. */
#define GROUPED_CASES_UP_TO_2(BLOCK, ...) case 1: BLOCK(1, __VA_ARGS__); break; case 2: BLOCK(2, __VA_ARGS__); break;
#define GROUPED_CASES_UP_TO_4(BLOCK, ...)                                                          \
    GROUPED_CASES_UP_TO_2(BLOCK, __VA_ARGS__) case 3: BLOCK(3, __VA_ARGS__); break; case 4: BLOCK(4, __VA_ARGS__); break;

/* Register blocks must be unrolled whole for their accumulators to stay in registers. */
#define GROUPED_UNROLLED _Pragma("clang loop unroll(full)")

#if KEEL_X86
/* PIXELS: the register block's pixels per body (LANE_CASES and BROADCAST_CASES list 1…that many);
 * PERMUTE(x, index, G) gives lane l of x's lane l − l mod G + j, `index` made by INDEX(G, j). */
#define DEFINE_GROUPED_CONV(PREFIX, ATTRIBUTE, VEC, WIDTH, IVEC, MASK, MASK_FOR, LOAD, STORE, SET1, ZERO, FMADD, \
                            ADD, INDEX, PERMUTE, HALF_FMADD, HALF_CLEAN, LANE_PIXELS, LANE_CASES,              \
                            BROADCAST_PIXELS, BROADCAST_CASES)                                                 \
    /* The second vector's FMA: whole, or for a tail of at most half a vector (vectors == 3) on its low  \
     * half alone, which costs half a full one where 512-bit operations run as two 256-bit halves. */    \
    KEEL_INLINE ATTRIBUTE VEC PREFIX##_grouped_second(const int vectors, VEC a, VEC b, VEC c) {                \
        return vectors == 3 ? HALF_FMADD(a, b, c) : FMADD(a, b, c);                                           \
    }                                                                                                         \
    /* Bias, residual and activation, then the one store. */                                              \
    KEEL_INLINE ATTRIBUTE void PREFIX##_grouped_store(const keel_epilogue *e, VEC sum, const float *bias,      \
                                                      const float *residual, float *out, MASK mask) {         \
        if (bias) sum = ADD(sum, LOAD(mask, bias));                                                          \
        if (residual) sum = ADD(sum, LOAD(mask, residual));                                                  \
        STORE(mask, out, keel_##PREFIX##_activate(sum, e));                                                  \
    }                                                                                                         \
    /* `pixels` output pixels from `column` of one row, `vectors` (1 or 2) vectors of channels from        \
     * `channel`, finished and stored; the input channels of lane l's group start at `group_first`       \
     * + l − l mod G (lanes body) or at `group_first` (broadcast body). */                                  \
    KEEL_INLINE ATTRIBUTE void PREFIX##_grouped_finish(const keel_grouped_conv *conv, const int pixels,       \
                                                       const int vectors, const VEC *low, const VEC *high,      \
                                                       ptrdiff_t image, ptrdiff_t row, ptrdiff_t column,      \
                                                       ptrdiff_t channel, MASK m0, MASK m1) {                 \
        const keel_epilogue *e = &conv->epilogue;                                                             \
        const ptrdiff_t channels = conv->channels;                                                            \
        float *out = conv->output + ((image * conv->output_height + row) * conv->output_width + column) * channels \
            + channel;                                                                                        \
        const float *residual = e->residual ? e->residual + (out - conv->output) : NULL;                     \
        const float *bias = e->bias ? e->bias + channel : NULL;                                               \
        GROUPED_UNROLLED for (int p = 0; p < pixels; p++) {                                                   \
            const float *shortcut = residual ? residual + p * channels : NULL;                                \
            PREFIX##_grouped_store(e, low[p], bias, shortcut, out + p * channels, m0);                        \
            if (vectors >= 2)                                                                                 \
                PREFIX##_grouped_store(e, vectors == 3 ? HALF_CLEAN(high[p]) : high[p], bias ? bias + WIDTH : NULL, shortcut ? shortcut + WIDTH : NULL, \
                                       out + p * channels + WIDTH, m1);                                       \
        }                                                                                                     \
    }                                                                                                         \
    /* The lanes body on `pixels` pixels whose kernel columns [kx_first, kx_end) and rows [ky_first,      \
     * ky_end) fall inside the input. G, pixels and vectors are constants at each call. */                  \
    KEEL_INLINE ATTRIBUTE void PREFIX##_grouped_lanes(const int pixels, const int G, const int vectors,        \
                                                      const keel_grouped_conv *conv, const IVEC *index,        \
                                                      ptrdiff_t image, ptrdiff_t row, ptrdiff_t column,       \
                                                      ptrdiff_t ky_first, ptrdiff_t ky_end, ptrdiff_t kx_first, \
                                                      ptrdiff_t kx_end, ptrdiff_t channel, MASK m0, MASK m1) { \
        const ptrdiff_t channels = conv->channels, step = conv->stride_width * channels;                      \
        const ptrdiff_t tap_step = conv->dilation_width * channels;                                           \
        ptrdiff_t width;                                                                                      \
        const float *block = grouped_block_filter(conv, channel, &width);                                     \
        VEC low[LANE_PIXELS], high[LANE_PIXELS];                                                              \
        GROUPED_UNROLLED for (int p = 0; p < pixels; p++) low[p] = high[p] = ZERO();                                           \
        const ptrdiff_t x0 = column * conv->stride_width - conv->pad_left;                                   \
        for (ptrdiff_t ky = ky_first; ky < ky_end; ky++) {                                                    \
            const float *line = grouped_input_line(conv, image, row, ky, x0, channel);                        \
            const float *filter = block + (ky * conv->kernel_width) * G * width;                             \
            for (ptrdiff_t kx = kx_first; kx < kx_end; kx++) {                                                \
                const float *at = line + kx * tap_step, *w = filter + kx * G * width;                         \
                VEC x0v[LANE_PIXELS], x1v[LANE_PIXELS];                                                       \
                GROUPED_UNROLLED for (int p = 0; p < pixels; p++) {                                           \
                    x0v[p] = LOAD(m0, at + p * step);                                                         \
                    x1v[p] = vectors == 2 ? LOAD(m1, at + p * step + WIDTH) : ZERO();                         \
                }                                                                                             \
                GROUPED_UNROLLED for (int j = 0; j < G; j++) {                                                \
                    const VEC w0 = LOAD(m0, w + j * width);                                                   \
                    const VEC w1 = vectors == 2 ? LOAD(m1, w + j * width + WIDTH) : ZERO();                   \
                    GROUPED_UNROLLED for (int p = 0; p < pixels; p++) {                                       \
                        low[p] = FMADD(PERMUTE(x0v[p], index[j], G), w0, low[p]);                             \
                        if (vectors == 2) high[p] = FMADD(PERMUTE(x1v[p], index[j], G), w1, high[p]);         \
                    }                                                                                         \
                }                                                                                             \
            }                                                                                                 \
        }                                                                                                     \
        PREFIX##_grouped_finish(conv, pixels, vectors, low, high, image, row, column, channel, m0, m1);      \
    }                                                                                                         \
    /* The broadcast body on one pixel: j alternates over four chains of FMAs per vector, summed       \
     * pairwise at the end. */                                                                             \
    KEEL_INLINE ATTRIBUTE void PREFIX##_grouped_broadcast_alone(const int vectors, const keel_grouped_conv *conv, \
                                                                ptrdiff_t image, ptrdiff_t row, ptrdiff_t column, \
                                                                ptrdiff_t ky_first, ptrdiff_t ky_end,          \
                                                                ptrdiff_t kx_first, ptrdiff_t kx_end,          \
                                                                ptrdiff_t group_first, ptrdiff_t channel,      \
                                                                MASK m0, MASK m1) {                            \
        const ptrdiff_t channels = conv->channels, tap_step = conv->dilation_width * channels;               \
        const ptrdiff_t size = conv->group_channels;                                                          \
        ptrdiff_t width;                                                                                      \
        const float *block = grouped_block_filter(conv, channel, &width);                                     \
        VEC low[4], high[4];                                                                                  \
        GROUPED_UNROLLED for (int c = 0; c < 4; c++) low[c] = high[c] = ZERO();                                \
        const ptrdiff_t x0 = column * conv->stride_width - conv->pad_left, paired = size - size % 4;         \
        for (ptrdiff_t ky = ky_first; ky < ky_end; ky++) {                                                    \
            const float *line = grouped_input_line(conv, image, row, ky, x0, group_first);                    \
            const float *filter = block + (ky * conv->kernel_width) * size * width;                           \
            for (ptrdiff_t kx = kx_first; kx < kx_end; kx++) {                                                \
                const float *at = line + kx * tap_step, *w = filter + kx * size * width;                      \
                ptrdiff_t j = 0;                                                                              \
                for (; j < paired; j += 4) {                                                                  \
                    GROUPED_UNROLLED for (int c = 0; c < 4; c++) {                                            \
                        const VEC value = SET1(at[j + c]);                                                    \
                        low[c] = FMADD(value, LOAD(m0, w + (j + c) * width), low[c]);                         \
                        if (vectors >= 2)                                                                     \
                            high[c] = PREFIX##_grouped_second(vectors, value, LOAD(m1, w + (j + c) * width + WIDTH), high[c]); \
                    }                                                                                         \
                }                                                                                             \
                for (; j < size; j++) {                                                                       \
                    const VEC value = SET1(at[j]);                                                            \
                    low[0] = FMADD(value, LOAD(m0, w + j * width), low[0]);                                   \
                    if (vectors >= 2)                                                                         \
                        high[0] = PREFIX##_grouped_second(vectors, value, LOAD(m1, w + j * width + WIDTH), high[0]); \
                }                                                                                             \
            }                                                                                                 \
        }                                                                                                     \
        VEC sum_low = ADD(ADD(low[0], low[1]), ADD(low[2], low[3]));                                          \
        VEC sum_high = ADD(ADD(high[0], high[1]), ADD(high[2], high[3]));                                     \
        PREFIX##_grouped_finish(conv, 1, vectors, &sum_low, &sum_high, image, row, column, channel, m0, m1); \
    }                                                                                                         \
    /* The broadcast body: `pixels` pixels, `vectors` vectors of channels from `channel`, all in the      \
     * group whose input channels start at `group_first`. */                                               \
    KEEL_INLINE ATTRIBUTE void PREFIX##_grouped_broadcast(const int pixels, const int vectors,                 \
                                                          const keel_grouped_conv *conv, ptrdiff_t image,     \
                                                          ptrdiff_t row, ptrdiff_t column, ptrdiff_t ky_first, \
                                                          ptrdiff_t ky_end, ptrdiff_t kx_first, ptrdiff_t kx_end, \
                                                          ptrdiff_t group_first, ptrdiff_t channel, MASK m0,   \
                                                          MASK m1) {                                           \
        const ptrdiff_t channels = conv->channels, step = conv->stride_width * channels;                      \
        const ptrdiff_t tap_step = conv->dilation_width * channels, size = conv->group_channels;              \
        if (pixels == 1) {                                                                                    \
            PREFIX##_grouped_broadcast_alone(vectors, conv, image, row, column, ky_first, ky_end, kx_first, kx_end, \
                                             group_first, channel, m0, m1);                                   \
            return;                                                                                           \
        }                                                                                                     \
        ptrdiff_t width;                                                                                      \
        const float *block = grouped_block_filter(conv, channel, &width);                                     \
        VEC low[BROADCAST_PIXELS], high[BROADCAST_PIXELS];                                                    \
        GROUPED_UNROLLED for (int p = 0; p < pixels; p++) low[p] = high[p] = ZERO();                                           \
        const ptrdiff_t x0 = column * conv->stride_width - conv->pad_left;                                   \
        for (ptrdiff_t ky = ky_first; ky < ky_end; ky++) {                                                    \
            const float *line = grouped_input_line(conv, image, row, ky, x0, group_first);                    \
            const float *filter = block + (ky * conv->kernel_width) * size * width;                           \
            for (ptrdiff_t kx = kx_first; kx < kx_end; kx++) {                                                \
                const float *at = line + kx * tap_step, *w = filter + kx * size * width;                      \
                for (ptrdiff_t j = 0; j < size; j++, w += width) {                                            \
                    const VEC w0 = LOAD(m0, w), w1 = vectors >= 2 ? LOAD(m1, w + WIDTH) : ZERO();             \
                    GROUPED_UNROLLED for (int p = 0; p < pixels; p++) {                                       \
                        const VEC value = SET1(at[p * step + j]);                                             \
                        low[p] = FMADD(value, w0, low[p]);                                                    \
                        if (vectors >= 2) high[p] = PREFIX##_grouped_second(vectors, value, w1, high[p]);     \
                    }                                                                                         \
                }                                                                                             \
            }                                                                                                 \
        }                                                                                                     \
        PREFIX##_grouped_finish(conv, pixels, vectors, low, high, image, row, column, channel, m0, m1);      \
    }                                                                                                         \
    /* One output row of one or two vectors of channels: border pixels alone over their inside taps,   \
     * interior pixels in blocks split evenly into at most the body's pixels each. */                      \
    static ATTRIBUTE void PREFIX##_grouped_lanes_span(const int G, const int vectors,                          \
                                                      const keel_grouped_conv *conv, const IVEC *index,        \
                                                      ptrdiff_t image, ptrdiff_t row, ptrdiff_t ky_first,      \
                                                      ptrdiff_t ky_end, ptrdiff_t inside_first,                \
                                                      ptrdiff_t inside_end, ptrdiff_t channel, MASK m0, MASK m1) { \
        const ptrdiff_t width = conv->output_width;                                                           \
        for (ptrdiff_t column = 0; column < width; column++) {                                                \
            if (column == inside_first && inside_end > inside_first) {                                        \
                const ptrdiff_t count = inside_end - inside_first;                                            \
                const ptrdiff_t parts = (count + LANE_PIXELS - 1) / LANE_PIXELS;                              \
                for (ptrdiff_t part = 0; part < parts; part++) {                                              \
                    const ptrdiff_t first = inside_first + grouped_part_start(count, parts, part);            \
                    switch (grouped_part_start(count, parts, part + 1) - grouped_part_start(count, parts, part)) { \
                        LANE_CASES(PREFIX##_grouped_lanes, G, vectors, conv, index, image, row, first, ky_first, \
                                   ky_end, 0, conv->kernel_width, channel, m0, m1)                            \
                        default: break;                                                                       \
                    }                                                                                         \
                }                                                                                             \
                column = inside_end - 1;                                                                      \
                continue;                                                                                     \
            }                                                                                                 \
            ptrdiff_t kx_first, kx_end;                                                                       \
            grouped_taps_inside(column * conv->stride_width - conv->pad_left, conv->dilation_width,          \
                                conv->kernel_width, conv->input_width, &kx_first, &kx_end);                   \
            PREFIX##_grouped_lanes(1, G, vectors, conv, index, image, row, column, ky_first, ky_end, kx_first, \
                                   kx_end, channel, m0, m1);                                                  \
        }                                                                                                     \
    }                                                                                                         \
    KEEL_INLINE ATTRIBUTE void PREFIX##_grouped_broadcast_span(const int vectors, const keel_grouped_conv *conv, \
                                                          ptrdiff_t image, ptrdiff_t row, ptrdiff_t ky_first,  \
                                                          ptrdiff_t ky_end, ptrdiff_t inside_first,            \
                                                          ptrdiff_t inside_end, ptrdiff_t group_first,         \
                                                          ptrdiff_t channel, MASK m0, MASK m1) {               \
        const ptrdiff_t width = conv->output_width;                                                           \
        for (ptrdiff_t column = 0; column < width; column++) {                                                \
            if (column == inside_first && inside_end > inside_first) {                                        \
                const ptrdiff_t count = inside_end - inside_first;                                            \
                const ptrdiff_t parts = (count + BROADCAST_PIXELS - 1) / BROADCAST_PIXELS;                    \
                for (ptrdiff_t part = 0; part < parts; part++) {                                              \
                    const ptrdiff_t first = inside_first + grouped_part_start(count, parts, part);            \
                    switch (grouped_part_start(count, parts, part + 1) - grouped_part_start(count, parts, part)) { \
                        BROADCAST_CASES(PREFIX##_grouped_broadcast, vectors, conv, image, row, first, ky_first, \
                                        ky_end, 0, conv->kernel_width, group_first, channel, m0, m1)          \
                        default: break;                                                                       \
                    }                                                                                         \
                }                                                                                             \
                column = inside_end - 1;                                                                      \
                continue;                                                                                     \
            }                                                                                                 \
            ptrdiff_t kx_first, kx_end;                                                                       \
            grouped_taps_inside(column * conv->stride_width - conv->pad_left, conv->dilation_width,          \
                                conv->kernel_width, conv->input_width, &kx_first, &kx_end);                   \
            PREFIX##_grouped_broadcast(1, vectors, conv, image, row, column, ky_first, ky_end, kx_first, kx_end, \
                                       group_first, channel, m0, m1);                                         \
        }                                                                                                     \
    }                                                                                                         \
    /* Channels [first, end) of output row `row` of `image`. */                                           \
    static ATTRIBUTE void PREFIX##_grouped_row(const keel_grouped_conv *conv, ptrdiff_t image, ptrdiff_t row,  \
                                               ptrdiff_t first, ptrdiff_t end) {                               \
        ptrdiff_t ky_first, ky_end;                                                                           \
        grouped_taps_inside(row * conv->stride_height - conv->pad_top, conv->dilation_height,                \
                            conv->kernel_height, conv->input_height, &ky_first, &ky_end);                     \
        /* Output columns [inside_first, inside_end) read only input columns inside the image. */       \
        const ptrdiff_t stride = conv->stride_width, reach = (conv->kernel_width - 1) * conv->dilation_width; \
        ptrdiff_t inside_first = (conv->pad_left + stride - 1) / stride;                                      \
        const ptrdiff_t last_input = conv->input_width - 1 + conv->pad_left - reach;                          \
        ptrdiff_t inside_end = last_input < 0 ? 0 : last_input / stride + 1;                                  \
        if (inside_end > conv->output_width) inside_end = conv->output_width;                                 \
        if (inside_first > inside_end) inside_first = inside_end;                                             \
        const ptrdiff_t size = conv->group_channels;                                                          \
        if (size >= 2 && size < WIDTH && WIDTH % size == 0) {                                              \
            IVEC index[WIDTH];                                                                                \
            for (int j = 0; j < size; j++) index[j] = INDEX(size, j);                                         \
            for (ptrdiff_t channel = first; channel < end; channel += 2 * WIDTH) {                            \
                const MASK m0 = MASK_FOR(end - channel), m1 = MASK_FOR(end - channel - WIDTH);                \
                const int two = end - channel > WIDTH;                                                        \
                switch (size * 2 + two) {                                                                     \
                case 2 * 2: PREFIX##_grouped_lanes_span(2, 1, conv, index, image, row, ky_first, ky_end, inside_first, inside_end, channel, m0, m1); break; \
                case 2 * 2 + 1: PREFIX##_grouped_lanes_span(2, 2, conv, index, image, row, ky_first, ky_end, inside_first, inside_end, channel, m0, m1); break; \
                case 4 * 2: PREFIX##_grouped_lanes_span(4, 1, conv, index, image, row, ky_first, ky_end, inside_first, inside_end, channel, m0, m1); break; \
                case 4 * 2 + 1: PREFIX##_grouped_lanes_span(4, 2, conv, index, image, row, ky_first, ky_end, inside_first, inside_end, channel, m0, m1); break; \
                case 8 * 2: if (WIDTH > 8) PREFIX##_grouped_lanes_span(8, 1, conv, index, image, row, ky_first, ky_end, inside_first, inside_end, channel, m0, m1); break; \
                case 8 * 2 + 1: if (WIDTH > 8) PREFIX##_grouped_lanes_span(8, 2, conv, index, image, row, ky_first, ky_end, inside_first, inside_end, channel, m0, m1); break; \
                default: break;                                                                               \
                }                                                                                             \
            }                                                                                                 \
            return;                                                                                           \
        }                                                                                                     \
        for (ptrdiff_t group_first = first; group_first < end; group_first += size) {                        \
            const ptrdiff_t group_end = group_first + size;                                                   \
            for (ptrdiff_t channel = group_first; channel < group_end; channel += 2 * WIDTH) {                \
                const MASK m0 = MASK_FOR(group_end - channel), m1 = MASK_FOR(group_end - channel - WIDTH);    \
                if (group_end - channel > WIDTH && group_end - channel - WIDTH <= WIDTH / 2 && WIDTH > 8)       \
                    PREFIX##_grouped_broadcast_span(3, conv, image, row, ky_first, ky_end, inside_first, inside_end, \
                                                    group_first, channel, m0, m1);                            \
                else if (group_end - channel > WIDTH)                                                         \
                    PREFIX##_grouped_broadcast_span(2, conv, image, row, ky_first, ky_end, inside_first, inside_end, \
                                                    group_first, channel, m0, m1);                            \
                else                                                                                          \
                    PREFIX##_grouped_broadcast_span(1, conv, image, row, ky_first, ky_end, inside_first, inside_end, \
                                                    group_first, channel, m0, m1);                            \
            }                                                                                                 \
        }                                                                                                     \
    }                                                                                                         \
    void keel_##PREFIX##_grouped_conv(const keel_grouped_conv *conv, ptrdiff_t first, ptrdiff_t count) {      \
        const ptrdiff_t rows = conv->batch * conv->output_height, blocks = grouped_blocks(conv);              \
        const ptrdiff_t alignment = grouped_alignment(conv);                                                  \
        const ptrdiff_t chunks = (conv->channels + alignment - 1) / alignment;                                \
        for (ptrdiff_t unit = first; unit < first + count; unit++) {                                          \
            const ptrdiff_t block = unit / rows, row = unit % rows;                                           \
            const ptrdiff_t channel_first = grouped_part_start(chunks, blocks, block) * alignment;            \
            ptrdiff_t channel_end = grouped_part_start(chunks, blocks, block + 1) * alignment;                \
            if (channel_end > conv->channels) channel_end = conv->channels;                                   \
            PREFIX##_grouped_row(conv, row / conv->output_height, row % conv->output_height, channel_first,   \
                                 channel_end);                                                                \
        }                                                                                                     \
    }
#endif

#endif
