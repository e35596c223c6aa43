/* One-dimensional Winograd transforms for 1×k and k×1 convolutions (keel_line_transform_fn), and
 * each axis of a k×k tile: a small dense matrix applied across a line of pixels, a vector of
 * channels at a time, with FMAs in a fixed order (ascending column, zero entries skipped) so both
 * levels round alike. The same body runs the input transform (Bᵀ over n input pixels) and the
 * output one (Aᵀ over n products, then bias and ReLU).
 *
 * For the matrices of line_matrices.h (`kind`), the body is inlined with the matrix, its rows and
 * its columns as constants: the loops unroll and the compiler drops the zero entries and turns the
 * ±1 ones into adds, where the generic body tests and broadcasts every entry for every vector of
 * channels (five instructions per entry, most of a 5×5 or 1×7 layer's transform time). The
 * arithmetic is the same, so are the bits: an FMA by 1 is an exact add. */
#ifndef KEEL_LINE_WINOGRAD_H
#define KEEL_LINE_WINOGRAD_H
#include "keel_kernels.h"
#include "line_matrices.h"
#include "simd_internal.h"

#if KEEL_X86

/* A kind's case: the body with its matrix, rows and columns as constants. */
#define LINE_BODY_CASE(PREFIX, KIND, MATRIX, ROWS, COLUMNS)                                                     \
    case KIND:                                                                                                  \
        return PREFIX##_line_body(source, source_stride, channels, MATRIX, ROWS, COLUMNS, rows, bias, relu,     \
                                  destination, destination_stride);

/* Lines are at most KEEL_LINE_WINOGRAD_MAX_POINTS pixels long (keel_kernels.h). `ROWS` rows of the
 * matrix are computed, the first `stored` of them stored. */
#define DEFINE_LINE_TRANSFORM(PREFIX, ATTRIBUTE, VEC, WIDTH, MASK, MASK_FOR, LOAD, STORE, SET1, ZERO, FMA, ADD, MAX) \
    KEEL_INLINE ATTRIBUTE void PREFIX##_line_body(const float *source, ptrdiff_t source_stride, ptrdiff_t channels, \
                                                  const float *matrix, int ROWS, int COLUMNS, int stored,         \
                                                  const float *bias, int relu, float *destination,                \
                                                  ptrdiff_t destination_stride) {                                 \
        for (ptrdiff_t channel = 0; channel < channels; channel += WIDTH) {                                         \
            MASK mask = MASK_FOR(channels - channel);                                                               \
            VEC x[KEEL_LINE_WINOGRAD_MAX_POINTS];                                                                   \
            for (int j = 0; j < COLUMNS; j++) x[j] = LOAD(mask, source + j * source_stride + channel);              \
            VEC shift = bias ? LOAD(mask, bias + channel) : ZERO();                                                 \
            for (int p = 0; p < ROWS; p++) {                                                                        \
                const float *row = matrix + p * COLUMNS;                                                            \
                VEC sum = ZERO();                                                                                   \
                for (int j = 0; j < COLUMNS; j++)                                                                   \
                    if (row[j] != 0.0f) sum = FMA(SET1(row[j]), x[j], sum);                                         \
                if (bias) sum = ADD(sum, shift);                                                                    \
                if (relu) sum = MAX(ZERO(), sum); /* NaN is the second operand: it stays NaN */                     \
                if (p < stored) STORE(mask, destination + p * destination_stride + channel, sum);                   \
            }                                                                                                       \
        }                                                                                                           \
    }                                                                                                               \
    /* The output transforms compute all four rows and store the `rows` inside the image. */                     \
    ATTRIBUTE void keel_##PREFIX##_line_transform(const float *source, ptrdiff_t source_stride, ptrdiff_t channels,  \
                                                  const float *matrix, int rows, int columns, int kind,             \
                                                  const float *bias, int relu, float *destination,                  \
                                                  ptrdiff_t destination_stride) {                                   \
        switch (kind) {                                                                                             \
            LINE_BODY_CASE(PREFIX, KEEL_LINE_INPUT_6, keel_line_input_6, 6, 6)                                      \
            LINE_BODY_CASE(PREFIX, KEEL_LINE_OUTPUT_6, keel_line_output_6, 4, 6)                                    \
            LINE_BODY_CASE(PREFIX, KEEL_LINE_INPUT_8, keel_line_input_8, 8, 8)                                      \
            LINE_BODY_CASE(PREFIX, KEEL_LINE_OUTPUT_8, keel_line_output_8, 4, 8)                                    \
            LINE_BODY_CASE(PREFIX, KEEL_LINE_INPUT_10, keel_line_input_10, 10, 10)                                  \
            LINE_BODY_CASE(PREFIX, KEEL_LINE_OUTPUT_10, keel_line_output_10, 4, 10)                                 \
        default:                                                                                                    \
            return PREFIX##_line_body(source, source_stride, channels, matrix, rows, columns, rows, bias, relu,     \
                                      destination, destination_stride);                                             \
        }                                                                                                           \
    }

#endif
#endif
