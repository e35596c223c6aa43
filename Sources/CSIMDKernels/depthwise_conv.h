/* Depthwise convolution, one body per level and layout.
 *   NHWC, 5×5 / 7×7 filters and 3×3 at stride 1 on calls that fit in L2, stride 1 or 2, no
 *         dilation: runs of up to NHWC_COLUMNS
 *         adjacent output pixels of one row, one vector of channels at a time, the filter row's
 *         vectors held in registers. Each input pixel of the run's window is loaded once per filter
 *         row and feeds every output pixel whose window holds it, so a stride-1 3×3 run of 8 pixels
 *         costs 10 input loads per 24 FMAs instead of 24; input columns outside the image are
 *         skipped, so the borders take the same path. Kernel width and stride are constants in each
 *         body, which unrolls completely. 3×3 filters on rows narrower than a run compute two output
 *         rows per pass, each input row loaded once for both.
 *   NHWC, other filters: runs of up to NHWC_COLUMNS adjacent output pixels whose taps all fall
 *         inside the input, one vector of channels at a time: each filter vector is loaded once per
 *         tap and feeds every pixel's accumulator (the filter is [taps][channels]). Pixels near the
 *         borders go one at a time over blocks of up to 4 vectors of channels, skipping taps
 *         outside the input, so padding costs nothing.
 *         Its work units are (image, block of channels, output row), a block's rows in turn. On
 *         calls whose input and output fit in L2 a block has up to 64 channels, narrow enough that the filter-height
 *         input rows one output row reads stay in L1 for the next output row, which reads all but
 *         `stride` of them again; this also gives a 7×7 map at batch 1 enough units for two
 *         threads. Larger calls (bigger maps, or batches) take every channel per unit.
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
/* The sliding NHWC body's widest filter; the L1 bytes its work unit's input rows may take (of 48 KB
 * or more), and the channels of a unit: a multiple of every level's vector width, at most 4 vectors
 * of AVX-512. */
enum { NHWC_SLIDE_ROWS = 2, NHWC_MAX_SLIDE_WIDTH = 7, NHWC_BLOCK_BYTES = 32 * 1024, NHWC_BLOCK_ALIGNMENT = 16, NHWC_MAX_BLOCK = 64 };
/* Input plus output bytes of a whole call above which channel blocks do not pay: the block's pass
 * over an image then streams from L3 or memory a few cache lines per pixel at a time, and the
 * prefetchers lose to whole rows (measured: 112×112×96 2.5×, 147×147×128 1.6× and 14×14×576 at
 * batch 8 1.3× slower blocked). */
#define NHWC_BLOCKED_CALL_BYTES (1536 * 1024)

static inline ptrdiff_t call_bytes(const keel_depthwise_conv *conv) {
    const ptrdiff_t pixels = conv->input_height * conv->input_width + conv->output_height * conv->output_width;
    return conv->batch * pixels * conv->channels * (ptrdiff_t)sizeof(float);
}

/* Whether an NHWC call takes the sliding body: 5 or 7 columns wide, or 3 at stride 1 on a call
 * whose input and output fit in L2; stride 1 or 2, undilated. Elsewhere (3×3 at stride 2, or on larger maps) the
 * tap-by-tap runs measured as fast or faster (0.8–0.95× with the sliding body). */
static inline int slides(const keel_depthwise_conv *conv) {
    const ptrdiff_t width = conv->kernel_width, stride = conv->stride_width;
    const int shape = width == 5 || width == 7 || (width == 3 && stride == 1 && call_bytes(conv) <= NHWC_BLOCKED_CALL_BYTES);
    return conv->channels_last && shape && (stride == 1 || stride == 2) && conv->dilation_width == 1
        && conv->dilation_height == 1;
}

/* Channels per sliding NHWC work unit: on calls whose input and output fit in L2, as many (up to NHWC_MAX_BLOCK) as
 * keep one output row's input rows of the block in L1, so that the next output row finds the rows
 * it shares there; all of them on larger maps. */
static inline ptrdiff_t block_channels(const keel_depthwise_conv *conv) {
    if (call_bytes(conv) > NHWC_BLOCKED_CALL_BYTES) return conv->channels;
    const ptrdiff_t row_bytes = conv->kernel_height * conv->input_width * (ptrdiff_t)sizeof(float);
    ptrdiff_t size = row_bytes > 0 ? NHWC_BLOCK_BYTES / row_bytes : NHWC_MAX_BLOCK;
    size = size / NHWC_BLOCK_ALIGNMENT * NHWC_BLOCK_ALIGNMENT;
    if (size < NHWC_BLOCK_ALIGNMENT) size = NHWC_BLOCK_ALIGNMENT;
    return size > NHWC_MAX_BLOCK ? NHWC_MAX_BLOCK : size;
}
/* NHWC work units: output rows, times channel blocks for the sliding body (units run an image's
 * block row after row, so consecutive units share input rows). */
static inline ptrdiff_t channel_blocks(const keel_depthwise_conv *conv) {
    const ptrdiff_t size = block_channels(conv);
    return slides(conv) && size > 0 ? (conv->channels + size - 1) / size : 1;
}

/* Output rows a sliding NHWC work unit computes: pairs for 3×3 filters at equal strides on rows
 * narrower than one run of NHWC_COLUMNS pixels (7×7 maps), where a row's short runs reload the filter
 * for few pixels (measured 0.8× the time of single rows at 7×7×960 and 7×7×1152; 1.0–1.1× at 14×14
 * and 28×28, so wider rows stay single); else one. */
static inline ptrdiff_t slide_rows(const keel_depthwise_conv *conv) {
    const int pairs = conv->kernel_height == 3 && conv->kernel_width == 3 && conv->stride_height == conv->stride_width;
    return slides(conv) && pairs && conv->output_width < NHWC_COLUMNS ? NHWC_SLIDE_ROWS : 1;
}
/* Row units per image and channel block. */
static inline ptrdiff_t row_units_of(const keel_depthwise_conv *conv) {
    const ptrdiff_t rows = slide_rows(conv);
    return (conv->output_height + rows - 1) / rows;
}

/* Where sliding work unit `unit` lies. When each half of the map has at least a filter height of
 * output rows, an image's units run in two bands of row units (top half, bottom half), each band's
 * channel blocks in turn and a block's rows in turn, so that consecutive units share input rows, and
 * two threads (taking halves of the units) each read the input rows of their own half of the map,
 * the rows the previous layer's threads mostly wrote from that core, instead of half of every row's
 * channels from the other core's cache. Shorter maps (5×5 on 7×7: each band would read 6 of the 7
 * input rows; measured 1.1–1.3× slower banded) keep one band. */
typedef struct {
    ptrdiff_t image, block, row_unit;
} slide_unit;

static inline slide_unit slide_unit_of(const keel_depthwise_conv *conv, ptrdiff_t unit, ptrdiff_t row_units,
                                       ptrdiff_t blocks) {
    const ptrdiff_t per_image = row_units * blocks, local = unit % per_image;
    const ptrdiff_t top = conv->output_height / 2 >= conv->kernel_height ? (row_units + 1) / 2 : row_units;
    const int bottom = local >= top * blocks;
    const ptrdiff_t band_first = bottom ? top : 0, band_rows = bottom ? row_units - top : top;
    const ptrdiff_t index = bottom ? local - top * blocks : local;
    return (slide_unit){ unit / per_image, index / band_rows, band_first + index % band_rows };
}

/* Whether an NHWC call takes the held-filter body (see DEFINE_DEPTHWISE): square 3×3 and 5×5
 * filters at equal strides of 1 or 2, undilated. 5×5 at stride 1 took the sliding body while the
 * held one ran 4-pixel runs from spans (EfficientNetB0's 14×14×672 and 7×7×1152 layers: 0.37 → 0.43
 * and 0.25 → 0.28 ms held); with whole-row runs of 8 and one tested run per border, held is faster
 * (Zen 4, one core, best of 5 interleaved rounds: 14×14×672 0.099 → 0.083 ms, 7×7×1152 0.057 →
 * 0.036, 28×28×120 0.065 → 0.054; AVX2 on the same core 0.168 → 0.141, 0.091 → 0.078, 0.116 →
 * 0.090). */
static inline int holds_filter(const keel_depthwise_conv *conv) {
    const ptrdiff_t size = conv->kernel_width, stride = conv->stride_width;
    return conv->channels_last && (size == 3 || size == 5) && conv->kernel_height == size
        && (stride == 1 || stride == 2) && conv->stride_height == stride && conv->dilation_width == 1
        && conv->dilation_height == 1;
}

/* The output rows and channels NHWC work unit `unit` covers, in the decomposition
 * keel_depthwise_conv_work_count counts: (image, channel block, row unit) for sliding calls, else
 * (image, output row) with every channel. */
typedef struct {
    ptrdiff_t image, row_first, row_end, channel_first, channel_end;
} nhwc_extent;

static inline nhwc_extent nhwc_extent_of(const keel_depthwise_conv *conv, ptrdiff_t unit) {
    if (!slides(conv))
        return (nhwc_extent){ unit / conv->output_height, unit % conv->output_height, unit % conv->output_height + 1,
                              0, conv->channels };
    const ptrdiff_t rows = slide_rows(conv), size = block_channels(conv);
    const slide_unit place = slide_unit_of(conv, unit, row_units_of(conv), channel_blocks(conv));
    const ptrdiff_t row = place.row_unit * rows, start = place.block * size;
    return (nhwc_extent){ place.image, row, row + rows < conv->output_height ? row + rows : conv->output_height, start,
                          start + size < conv->channels ? start + size : conv->channels };
}

/* Calls too large for L2 fetch the input rows and the output row that the next output row needs
 * while this one runs, a share at a time (the held-filter body; the sliding one, 5×5 and 7×7
 * filters, measured no faster with it, being compute-bound there): NHWC rows read each pixel a vector of channels at a
 * time, hundreds of bytes apart, which the hardware prefetchers do not follow, and each first
 * touch waited on memory (28×28×192 at batch 8 took 2.3× the time of 8 single images). */
typedef struct {
    const char *input, *output;
    ptrdiff_t input_lines, output_lines;
} rows_ahead;

/* input_size, output_size: bytes per stored value (4 for fp32, 2 for bf16). */
static inline rows_ahead rows_ahead_of(const keel_depthwise_conv *conv, ptrdiff_t image, ptrdiff_t row,
                                       ptrdiff_t input_size, ptrdiff_t output_size) {
    rows_ahead ahead = { NULL, NULL, 0, 0 };
    if (call_bytes(conv) <= NHWC_BLOCKED_CALL_BYTES || row + 1 >= conv->output_height) return ahead;
    const ptrdiff_t channels = conv->channels, height = conv->input_height, width = conv->input_width;
    const ptrdiff_t reach = (conv->kernel_height - 1) * conv->dilation_height;
    const ptrdiff_t y0 = row * conv->stride_height - conv->pad_top;
    ptrdiff_t first = y0 + reach + 1, end = y0 + conv->stride_height + reach + 1;
    if (first < y0 + conv->stride_height) first = y0 + conv->stride_height;
    if (first < 0) first = 0;
    if (end > height) end = height;
    if (end > first) {
        ahead.input = (const char *)conv->input + (image * height + first) * width * channels * input_size;
        ahead.input_lines = ((end - first) * width * channels * input_size + 63) / 64;
    }
    const ptrdiff_t row_values = conv->output_width * channels;
    ahead.output = (const char *)conv->output + (image * conv->output_height + row + 1) * row_values * output_size;
    ahead.output_lines = (row_values * output_size + 63) / 64;
    return ahead;
}

/* Fetches share `part` of `parts` of `ahead` into L2 (locality 2: prefetcht1 on x86). */
static inline void fetch_rows_ahead(const rows_ahead *ahead, ptrdiff_t part, ptrdiff_t parts) {
    const ptrdiff_t input_share = (ahead->input_lines + parts - 1) / parts;
    const ptrdiff_t output_share = (ahead->output_lines + parts - 1) / parts;
    for (ptrdiff_t line = part * input_share; line < (part + 1) * input_share && line < ahead->input_lines; line++)
        __builtin_prefetch(ahead->input + line * 64, 0, 2);
    for (ptrdiff_t line = part * output_share; line < (part + 1) * output_share && line < ahead->output_lines; line++)
        __builtin_prefetch(ahead->output + line * 64, 0, 2);
}

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

#define UNROLLED_TAPS _Pragma("clang loop unroll(full)")
/* A run of `columns` output pixels from `column`, every vector of channels, inside slide_rows: runs
 * whose input columns all lie inside the image take a copy of the body without the per-column
 * bounds tests, which the compiler had turned into flags kept on the stack and tested before every
 * input load (7×7 on 56×56×96, one Zen 3 core: 42 → 46 GFLOP/s). */
#define SLIDE_RUN(PREFIX, WIDTH, columns)                                                                     \
    {                                                                                                         \
        const ptrdiff_t x0 = column * stride - conv->pad_left;                                                \
        const int inside = x0 >= 0 && x0 + ((columns) - 1) * stride + kernel_width <= conv->input_width;     \
        for (ptrdiff_t c = first_channel; c < end_channel; c += WIDTH) {                                      \
            if (inside) PREFIX##_depthwise_nhwc_slide(conv, image, row, column, c, columns, rows, kernel_height, \
                                                      kernel_width, stride, 1);                               \
            else PREFIX##_depthwise_nhwc_slide(conv, image, row, column, c, columns, rows, kernel_height,       \
                                               kernel_width, stride, 0);                                      \
        }                                                                                                     \
    }

/* The held-filter body (AVX2): output pixels per run, and per span (all channel vectors of a span
 * before the next). Runs of 6 keep 6 chains of 9 dependent FMAs in flight where 4 left the FMA ports
 * waiting (6 accumulators + 9 filter vectors + the input: all 16 registers); spans of 24 keep the
 * filter-height input lines a vector pass reads in L1 for the next vector, which whole rows of
 * 112 pixels did not. Zen 3, one core, best of 4–5 interleaved rounds: 56×56×144 0.337 → 0.275 ms,
 * 112×112×96 at stride 2 0.345 → 0.263, 112×112×32 0.288 → 0.215, 14×14×576 0.093 → 0.071, 5×5 at
 * stride 2 on 28×28×240 0.081 → 0.058. */
enum { HELD_RUN = 6, HELD_SPAN = 24 };
/* AVX-512 runs 8 pixels (8 accumulators + 9 filter vectors + the input in its 32 registers; 12
 * measured no faster) over the whole row: a vector is a cache line, so no vector reads the lines
 * another brought in, and the filter is loaded once per row and vector instead of once per span.
 * With the border pixels in checked runs instead of one at a time (their filter reloaded for each),
 * Zen 4, one core, best of 4 interleaved rounds: 56×56×144 0.154 → 0.133 ms, 28×28×192 0.054 →
 * 0.047, 56×56×72 0.092 → 0.076, 7×7×1152 0.029 → 0.027, 5×5 at stride 2 on 56×56×72 0.067 → 0.051;
 * AVX2 on the same core 0.340 → 0.223, 0.134 → 0.081, 0.131 → 0.119. */
#define HELD_RUN_MAX 8
#define HELD_RUN_OF(width) ((width) >= 16 ? HELD_RUN_MAX : HELD_RUN)
#define HELD_SPAN_OF(width, output_width) ((width) >= 16 ? (output_width) : HELD_SPAN)

/* The held-filter NHWC body (holds_filter) of one level, on activations stored as IN_T and OUT_T:
 * float, or uint16_t holding bf16 values (a bf16 plan's activations around the layer), which
 * LOAD_IN / LOADU_IN widen to fp32 and STORE_OUT rounds to. The filter, bias, residual and every
 * sum stay fp32, so a bf16 input gives the bits its fp32 widening would. NAME names the functions;
 * PREFIX the level's activations (keel_<PREFIX>_activate). */
#define DEFINE_DEPTHWISE_HELD(NAME, PREFIX, ATTRIBUTE, VEC, WIDTH, MASK, MASK_FOR, LOAD, ZERO, FMADD, ADD, IN_T,        \
                              LOAD_IN, LOADU_IN, OUT_T, STORE_OUT)                                                     \
    /* Held-filter NHWC body: per output row and vector of channels, the whole K×K filter is loaded                    \
     * once (9 registers for 3×3; 5×5 spills to L1, read as FMA operands) and runs of adjacent output                  \
     * pixels take each input pixel of their window once per filter row (a 3×3 stride-1 run of 8:                      \
     * 30 loads for 72 FMAs). Runs at the borders test their input columns; the others do not. On                      \
     * AVX2 (16 registers) it ran 1.4–2× faster than the tap-by-tap and sliding bodies (Zen 3, one                     \
     * core, best of 12 interleaved rounds: 56×56×144 0.52 → 0.28 ms, 14×14×384 0.082 → 0.055,                         \
     * 112×112×96 at stride 2 0.59 → 0.33); on AVX-512 (32 registers) too: Zen 4, one core, a model's                  \
     * depthwise layers in all 1.94 → 1.02 ms (Keras MobileNetV2), 14.9 → 7.8 (Xception), 3.01 → 2.16                  \
     * (EfficientNetB0). `rows[ky]` is input row ky of the window at column 0 and the run's channels,                  \
     * NULL outside the image; `checked` runs may read columns outside it (tested per column); `full`                  \
     * vectors have WIDTH channels (unmasked loads). */                                                                \
    KEEL_INLINE ATTRIBUTE void NAME##_depthwise_held_run(const keel_depthwise_conv *conv, const IN_T *const *rows,  \
                                                           const VEC *k, ptrdiff_t x, int columns, int stored, int size, \
                                                           int stride, int checked, int full, MASK mask, OUT_T *out,   \
                                                           const float *residual, const float *bias, VEC bias_vector) { \
        const ptrdiff_t channels = conv->channels, width = conv->input_width, x0 = x * stride - conv->pad_left;        \
        VEC sums[HELD_RUN_MAX];                                                                                        \
        UNROLLED_TAPS for (int j = 0; j < columns; j++) sums[j] = ZERO();                                              \
        UNROLLED_TAPS for (int ky = 0; ky < size; ky++) {                                                              \
            if (!rows[ky]) continue;                                                                                   \
            UNROLLED_TAPS for (int i = 0; i < (columns - 1) * stride + size; i++) {                                    \
                if (checked && (x0 + i < 0 || x0 + i >= width)) continue;                                              \
                const IN_T *pixel = rows[ky] + (x0 + i) * channels;                                                   \
                const VEC value = full ? LOADU_IN(pixel) : LOAD_IN(mask, pixel);                                             \
                UNROLLED_TAPS for (int j = 0; j < columns; j++) {                                                      \
                    const int kx = i - j * stride;                                                                     \
                    if (kx >= 0 && kx < size) sums[j] = FMADD(value, k[ky * size + kx], sums[j]);                      \
                }                                                                                                      \
            }                                                                                                          \
        }                                                                                                              \
        UNROLLED_TAPS for (int j = 0; j < columns; j++) {                                                              \
            if (j >= stored) continue;                                                                                 \
            const ptrdiff_t at = (x + j) * channels;                                                                   \
            VEC value = sums[j];                                                                                       \
            if (bias) value = ADD(value, bias_vector);                                                                 \
            if (residual) value = ADD(value, LOAD(mask, residual + at));                                               \
            STORE_OUT(mask, out + at, keel_##PREFIX##_activate(value, &conv->epilogue));                                   \
        }                                                                                                              \
    }                                                                                                                  \
    /* Output pixels [x, end) of one row for one vector of channels, in runs of `run` (a constant);                    \
     * runs that reach outside the output columns [inside_first, inside_end), whose windows lie inside                 \
     * the input, test their input columns. The last few pixels take one tested run of `run` (or of 4                  \
     * for at most 4 pixels) whose extra pixels, computed from columns inside the row, are not stored:                 \
     * a 7×7 map's row is one run instead of runs of 4, 1, 1 and 1, each with its own loads and                        \
     * epilogue (Zen 4, one core, best of 6 interleaved rounds: 7×7×960 0.023 → 0.018 ms, 7×7×1152 0.028 →             \
     * 0.022). */                                                                                                      \
    KEEL_INLINE ATTRIBUTE void NAME##_depthwise_held_runs(const keel_depthwise_conv *conv, const IN_T *const *rows, \
                                                            const VEC *k, ptrdiff_t x, ptrdiff_t end, int run,         \
                                                            ptrdiff_t inside_first, ptrdiff_t inside_end, int size,    \
                                                            int stride, int full, MASK mask, OUT_T *out,               \
                                                            const float *residual, const float *bias, VEC bias_vector) { \
        for (; x + run <= end; x += run) {                                                                             \
            if (x < inside_first || x + run > inside_end)                                                              \
                NAME##_depthwise_held_run(conv, rows, k, x, run, run, size, stride, 1, full, mask, out, residual, bias, \
                                            bias_vector);                                                              \
            else                                                                                                       \
                NAME##_depthwise_held_run(conv, rows, k, x, run, run, size, stride, 0, full, mask, out, residual, bias, \
                                            bias_vector);                                                              \
        }                                                                                                              \
        const int left = (int)(end - x);                                                                               \
        if (left > 4)                                                                                                  \
            NAME##_depthwise_held_run(conv, rows, k, x, run, left, size, stride, 1, full, mask, out, residual, bias, \
                                        bias_vector);                                                                  \
        else if (left > 0)                                                                                             \
            NAME##_depthwise_held_run(conv, rows, k, x, 4, left, size, stride, 1, full, mask, out, residual, bias,   \
                                        bias_vector);                                                                  \
    }                                                                                                                  \
    /* Output pixels [x, end) of one row for every vector of the extent's channels in turn, the filter                 \
     * loaded per vector (from L1). */                                                                                 \
    KEEL_INLINE ATTRIBUTE void NAME##_depthwise_held_span(const keel_depthwise_conv *conv, const IN_T *const *lines, \
                                                            nhwc_extent extent, ptrdiff_t pixel, ptrdiff_t x,          \
                                                            ptrdiff_t end, ptrdiff_t inside_first, ptrdiff_t inside_end, \
                                                            int size, int stride, const rows_ahead *ahead, ptrdiff_t span, \
                                                            ptrdiff_t spans) {                                         \
        const ptrdiff_t channels = conv->channels;                                                                     \
        const keel_epilogue *e = &conv->epilogue;                                                                      \
        const ptrdiff_t vectors = (extent.channel_end - extent.channel_first + WIDTH - 1) / WIDTH;                     \
        ptrdiff_t vector = 0;                                                                                          \
        for (ptrdiff_t c = extent.channel_first; c < extent.channel_end; c += WIDTH, vector++) {                       \
            /* The next row's lines, a share per span and channel vector. */                                           \
            fetch_rows_ahead(ahead, span * vectors + vector, spans * vectors);                                         \
            const MASK mask = MASK_FOR(channels - c);                                                                  \
            VEC k[25];                                                                                                 \
            UNROLLED_TAPS for (int t = 0; t < size * size; t++) k[t] = LOAD(mask, conv->weights + t * channels + c);   \
            const IN_T *rows[5];                                                                                      \
            UNROLLED_TAPS for (int ky = 0; ky < size; ky++) rows[ky] = lines[ky] ? lines[ky] + c : NULL;               \
            OUT_T *out = (OUT_T *)conv->output + pixel + c;                                                                     \
            const float *residual = e->residual ? e->residual + pixel + c : NULL;                                      \
            const float *bias = e->bias ? e->bias + c : NULL;                                                          \
            const VEC bias_vector = bias ? LOAD(mask, bias) : ZERO();                                                  \
            if (c + WIDTH <= channels)                                                                                 \
                NAME##_depthwise_held_runs(conv, rows, k, x, end, HELD_RUN_OF(WIDTH), inside_first, inside_end, size, \
                                             stride, 1, mask, out, residual, bias, bias_vector);                       \
            else                                                                                                       \
                NAME##_depthwise_held_runs(conv, rows, k, x, end, HELD_RUN_OF(WIDTH), inside_first, inside_end, size, \
                                             stride, 0, mask, out, residual, bias, bias_vector);                       \
        }                                                                                                              \
    }                                                                                                                  \
    /* Output rows [row_first, row_end) of `image`, channels [channel_first, channel_end), a size×size                 \
     * filter at `stride` (both constants at each call): each row in spans (HELD_SPAN_OF), all channel                 \
     * vectors of a span before the next. */                                                                           \
    KEEL_INLINE ATTRIBUTE void NAME##_depthwise_held(const keel_depthwise_conv *conv, nhwc_extent extent,            \
                                                       int size, int stride) {                                         \
        const ptrdiff_t channels = conv->channels, height = conv->input_height, width = conv->input_width;             \
        const ptrdiff_t output_width = conv->output_width;                                                             \
        if (output_width <= 0) return;                                                                                 \
        /* Output columns [inside_first, inside_end) read only columns inside the input. */                            \
        const ptrdiff_t inside_first = (conv->pad_left + stride - 1) / stride;                                         \
        const ptrdiff_t last_start = conv->input_width - size + conv->pad_left;                                        \
        ptrdiff_t inside_end = last_start < 0 ? 0 : last_start / stride + 1;                                           \
        if (inside_end > output_width) inside_end = output_width;                                                      \
        const ptrdiff_t span_pixels = HELD_SPAN_OF(WIDTH, output_width);                                               \
        const ptrdiff_t spans = (output_width + span_pixels - 1) / span_pixels;                                        \
        for (ptrdiff_t row = extent.row_first; row < extent.row_end; row++) {                                          \
            const ptrdiff_t y0 = row * stride - conv->pad_top;                                                         \
            const ptrdiff_t pixel = (extent.image * conv->output_height + row) * output_width * channels;              \
            const rows_ahead ahead = rows_ahead_of(conv, extent.image, row, sizeof(IN_T), sizeof(OUT_T));                                           \
            const IN_T *lines[5];                                                                                     \
            UNROLLED_TAPS for (int ky = 0; ky < size; ky++) {                                                          \
                const ptrdiff_t y = y0 + ky;                                                                           \
                lines[ky] = y >= 0 && y < height ? (const IN_T *)conv->input + (extent.image * height + y) * width * channels : NULL; \
            }                                                                                                          \
            ptrdiff_t span = 0;                                                                                        \
            for (ptrdiff_t x = 0; x < output_width; x += span_pixels, span++) {                                        \
                const ptrdiff_t end = x + span_pixels < output_width ? x + span_pixels : output_width;                 \
                NAME##_depthwise_held_span(conv, lines, extent, pixel, x, end, inside_first, inside_end, size, stride, \
                                             &ahead, span, spans);                                                     \
            }                                                                                                          \
        }                                                                                                              \
    }                                                                                                                  \
    /* Work units first ..< first + count (nhwc_extent_of). */                                                        \
    static ATTRIBUTE void NAME##_depthwise_held_units(const keel_depthwise_conv *conv, ptrdiff_t first,                \
                                                      ptrdiff_t count) {                                               \
        for (ptrdiff_t unit = first; unit < first + count; unit++) {                                      \
            const nhwc_extent extent = nhwc_extent_of(conv, unit);                                        \
            const int size = (int)conv->kernel_width, stride_two = conv->stride_width == 2;               \
            if (size == 3) {                                                                              \
                if (stride_two) NAME##_depthwise_held(conv, extent, 3, 2);                              \
                else NAME##_depthwise_held(conv, extent, 3, 1);                                         \
            } else {                                                                                      \
                if (stride_two) NAME##_depthwise_held(conv, extent, 5, 2);                              \
                else NAME##_depthwise_held(conv, extent, 5, 1);                                         \
            }                                                                                             \
        }                                                                                                 \
    }

#define DEFINE_DEPTHWISE(PREFIX, ATTRIBUTE, VEC, WIDTH, MASK, MASK_FOR, LOAD, LOADU, STORE, SET1, ZERO, FMADD, \
                         ADD)                                                                                 \
    DEFINE_DEPTHWISE_HELD(PREFIX, PREFIX, ATTRIBUTE, VEC, WIDTH, MASK, MASK_FOR, LOAD, ZERO, FMADD, ADD, float, LOAD, \
                          LOADU, float, STORE)                                                                \
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
    /* `columns` adjacent output pixels of `rows` output rows from `row` of `image`, from `column`,  \
     * channels [c, c + WIDTH) (masked past `channels`), for a `kernel_height` × `kernel_width`        \
     * filter at stride `stride` both ways (rows, columns, the width and stride constants at each      \
     * call; the height too when rows > 1): each input pixel of the rows' window is loaded once and    \
     * feeds every output pixel that reads it. Each output sums its taps in the same order whatever    \
     * `rows` is. */                                                                                   \
    KEEL_INLINE ATTRIBUTE void PREFIX##_depthwise_nhwc_slide(const keel_depthwise_conv *conv, ptrdiff_t image,  \
                                                             ptrdiff_t row, ptrdiff_t column, ptrdiff_t c,     \
                                                             int columns, int rows, ptrdiff_t kernel_height,   \
                                                             int kernel_width, int stride, int inside) {       \
        const ptrdiff_t channels = conv->channels, height = conv->input_height, width = conv->input_width;    \
        const MASK mask = MASK_FOR(channels - c);                                                             \
        const ptrdiff_t x0 = column * stride - conv->pad_left, y0 = row * conv->stride_height - conv->pad_top;             \
        VEC sums[NHWC_SLIDE_ROWS][NHWC_COLUMNS];                                                              \
        UNROLLED_TAPS for (int t = 0; t < rows; t++)                                                          \
            UNROLLED_TAPS for (int j = 0; j < columns; j++) sums[t][j] = ZERO();                              \
        for (ptrdiff_t line_index = 0; line_index < (rows - 1) * stride + kernel_height; line_index++) {      \
            const ptrdiff_t y = y0 + line_index;                                                              \
            if (y < 0 || y >= height) continue;                                                               \
            const float *line = conv->input + ((image * height + y) * width + x0) * channels + c;             \
            VEC weights[NHWC_SLIDE_ROWS][NHWC_MAX_SLIDE_WIDTH];                                               \
            UNROLLED_TAPS for (int t = 0; t < rows; t++) {                                                    \
                const ptrdiff_t ky = line_index - t * stride;                                                 \
                if (ky < 0 || ky >= kernel_height) continue;                                                  \
                const float *filter_row = conv->weights + ky * kernel_width * channels + c;                   \
                UNROLLED_TAPS for (int kx = 0; kx < kernel_width; kx++)                                       \
                    weights[t][kx] = LOAD(mask, filter_row + kx * channels);                                  \
            }                                                                                                 \
            UNROLLED_TAPS for (int i = 0; i < (columns - 1) * stride + kernel_width; i++) {                   \
                if (!inside && (x0 + i < 0 || x0 + i >= width)) continue;                                     \
                const VEC value = LOAD(mask, line + i * channels);                                            \
                UNROLLED_TAPS for (int t = 0; t < rows; t++) {                                                \
                    const ptrdiff_t ky = line_index - t * stride;                                             \
                    if (ky < 0 || ky >= kernel_height) continue;                                              \
                    UNROLLED_TAPS for (int j = 0; j < columns; j++) {                                         \
                        const int kx = i - j * stride;                                                        \
                        if (kx >= 0 && kx < kernel_width) sums[t][j] = FMADD(value, weights[t][kx], sums[t][j]); \
                    }                                                                                         \
                }                                                                                             \
            }                                                                                                 \
        }                                                                                                     \
        const keel_epilogue *e = &conv->epilogue;                                                             \
        UNROLLED_TAPS for (int t = 0; t < rows; t++) {                                                        \
            const ptrdiff_t pixel = ((image * conv->output_height + row + t) * conv->output_width + column) * channels + c; \
            UNROLLED_TAPS for (int j = 0; j < columns; j++) {                                                 \
                const ptrdiff_t at = pixel + j * channels;                                                    \
                VEC value = PREFIX##_depthwise_finish(sums[t][j], e, e->bias ? e->bias + c : NULL,            \
                                                      e->residual ? e->residual + at : NULL, mask);           \
                STORE(mask, conv->output + at, value);                                                        \
            }                                                                                                 \
        }                                                                                                     \
    }                                                                                                         \
    /* `rows` output rows' channels [first_channel, end_channel) with the sliding body for this      \
     * filter (rows, width and stride constants at each call; the height too when rows > 1): runs  \
     * of NHWC_COLUMNS (6 for 7-wide filters at 8 lanes: 8 pixels' accumulators, 7 filter vectors, \
     * the input and the mask took 17 of AVX2's 16 registers, and the spills held 7×7 layers to    \
     * 27 GFLOP/s on one Zen 3 core; 6-pixel runs reach 42), then 4, 2, 1. */                      \
    KEEL_INLINE ATTRIBUTE void PREFIX##_depthwise_nhwc_slide_rows(const keel_depthwise_conv *conv, ptrdiff_t image, \
                                                                  ptrdiff_t row, ptrdiff_t first_channel,        \
                                                                  ptrdiff_t end_channel, int rows,               \
                                                                  ptrdiff_t kernel_height, int kernel_width,     \
                                                                  int stride) {                                  \
        const ptrdiff_t output_width = conv->output_width;                                                    \
        ptrdiff_t column = 0;                                                                                 \
        if (WIDTH == 8 && kernel_width == 7) {                                                                \
            for (; column + 6 <= output_width; column += 6) SLIDE_RUN(PREFIX, WIDTH, 6)                        \
        } else {                                                                                              \
            for (; column + NHWC_COLUMNS <= output_width; column += NHWC_COLUMNS) SLIDE_RUN(PREFIX, WIDTH, NHWC_COLUMNS) \
        }                                                                                                     \
        if (column + 4 <= output_width) {                                                                     \
            SLIDE_RUN(PREFIX, WIDTH, 4)                                                                       \
            column += 4;                                                                                      \
        }                                                                                                     \
        if (column + 2 <= output_width) {                                                                     \
            SLIDE_RUN(PREFIX, WIDTH, 2)                                                                       \
            column += 2;                                                                                      \
        }                                                                                                     \
        if (column < output_width) SLIDE_RUN(PREFIX, WIDTH, 1)                                                \
    }                                                                                                         \
    /* One output row with the sliding body, its filter height read at run time. */                \
    KEEL_INLINE ATTRIBUTE void PREFIX##_depthwise_nhwc_slide_row(const keel_depthwise_conv *conv, ptrdiff_t image, \
                                                                 ptrdiff_t row, ptrdiff_t first_channel,        \
                                                                 ptrdiff_t end_channel, int kernel_width,       \
                                                                 int stride) {                                  \
        PREFIX##_depthwise_nhwc_slide_rows(conv, image, row, first_channel, end_channel, 1, conv->kernel_height, \
                                           kernel_width, stride);                                             \
    }                                                                                                         \
    /* A pair of output rows of a 3×3 filter from `row` (or the last row alone). With 16 lanes a   \
     * vector, both rows' 8-pixel runs take 16 accumulators and the 9 filter vectors 9 more, so    \
     * each input row is loaded once for both; narrower levels have half the registers and run the \
     * rows one after the other. */                                                                   \
    KEEL_INLINE ATTRIBUTE void PREFIX##_depthwise_nhwc_slide_pair(const keel_depthwise_conv *conv, ptrdiff_t image, \
                                                                  ptrdiff_t row, ptrdiff_t first_channel,        \
                                                                  ptrdiff_t end_channel, int stride) {           \
        if (WIDTH >= 16 && row + 1 < conv->output_height) {                                                   \
            PREFIX##_depthwise_nhwc_slide_rows(conv, image, row, first_channel, end_channel, 2, 3, 3, stride); \
            return;                                                                                           \
        }                                                                                                     \
        for (ptrdiff_t r = row; r < row + NHWC_SLIDE_ROWS && r < conv->output_height; r++)                    \
            PREFIX##_depthwise_nhwc_slide_rows(conv, image, r, first_channel, end_channel, 1, 3, 3, stride);  \
    }                                                                                                         \
    static ATTRIBUTE void PREFIX##_depthwise_nhwc(const keel_depthwise_conv *conv, ptrdiff_t first,            \
                                                  ptrdiff_t count) {                                          \
        if (holds_filter(conv)) {                                                                             \
            PREFIX##_depthwise_held_units(conv, first, count);                                                \
            return;                                                                                           \
        }                                                                                                     \
        if (slides(conv)) {                                                                                   \
            const ptrdiff_t blocks = channel_blocks(conv), size = block_channels(conv);                       \
            const ptrdiff_t rows = slide_rows(conv), row_units = row_units_of(conv);                          \
            for (ptrdiff_t unit = first; unit < first + count; unit++) {                                      \
                const slide_unit place = slide_unit_of(conv, unit, row_units, blocks);                                \
                const ptrdiff_t row = place.row_unit * rows, block = place.block, image = place.image;        \
                const ptrdiff_t start = block * size;                                                         \
                const ptrdiff_t end = start + size < conv->channels ? start + size : conv->channels;          \
                const int stride_two = conv->stride_width == 2;                                               \
                if (rows == NHWC_SLIDE_ROWS) {                                                                \
                    if (stride_two) PREFIX##_depthwise_nhwc_slide_pair(conv, image, row, start, end, 2);      \
                    else PREFIX##_depthwise_nhwc_slide_pair(conv, image, row, start, end, 1);                 \
                    continue;                                                                                 \
                }                                                                                             \
                switch (conv->kernel_width) {                                                                 \
                case 3:                                                                                       \
                    if (stride_two) PREFIX##_depthwise_nhwc_slide_row(conv, image, row, start, end, 3, 2);    \
                    else PREFIX##_depthwise_nhwc_slide_row(conv, image, row, start, end, 3, 1);               \
                    break;                                                                                    \
                case 5:                                                                                       \
                    if (stride_two) PREFIX##_depthwise_nhwc_slide_row(conv, image, row, start, end, 5, 2);    \
                    else PREFIX##_depthwise_nhwc_slide_row(conv, image, row, start, end, 5, 1);               \
                    break;                                                                                    \
                default:                                                                                      \
                    if (stride_two) PREFIX##_depthwise_nhwc_slide_row(conv, image, row, start, end, 7, 2);    \
                    else PREFIX##_depthwise_nhwc_slide_row(conv, image, row, start, end, 7, 1);               \
                    break;                                                                                    \
                }                                                                                             \
            }                                                                                                 \
            return;                                                                                           \
        }                                                                                                     \
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
