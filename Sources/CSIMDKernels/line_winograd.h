/* One-dimensional Winograd transforms for 1×k and k×1 convolutions (keel_line_transform_fn): a
 * small dense matrix applied across a line of pixels, a vector of channels at a time, with FMAs in
 * a fixed order (ascending column, zero entries skipped) so both levels round alike. The same body
 * runs the input transform (Bᵀ over n input pixels) and the output one (Aᵀ over n products, then
 * bias and ReLU). */
#ifndef KEEL_LINE_WINOGRAD_H
#define KEEL_LINE_WINOGRAD_H
#include "keel_kernels.h"
#include "simd_internal.h"

#if KEEL_X86

/* Lines are at most KEEL_LINE_WINOGRAD_MAX_POINTS pixels long (keel_kernels.h). */
#define DEFINE_LINE_TRANSFORM(PREFIX, ATTRIBUTE, VEC, WIDTH, MASK, MASK_FOR, LOAD, STORE, SET1, ZERO, FMA, ADD, MAX) \
    ATTRIBUTE void keel_##PREFIX##_line_transform(const float *source, ptrdiff_t source_stride, ptrdiff_t channels,  \
                                        const float *matrix, int rows, int columns, const float *bias, int relu,   \
                                        float *destination, ptrdiff_t destination_stride) {                        \
        for (ptrdiff_t channel = 0; channel < channels; channel += WIDTH) {                                         \
            MASK mask = MASK_FOR(channels - channel);                                                               \
            VEC x[KEEL_LINE_WINOGRAD_MAX_POINTS];                                                                   \
            for (int j = 0; j < columns; j++) x[j] = LOAD(mask, source + j * source_stride + channel);              \
            VEC shift = bias ? LOAD(mask, bias + channel) : ZERO();                                                 \
            for (int p = 0; p < rows; p++) {                                                                        \
                const float *row = matrix + p * columns;                                                            \
                VEC sum = ZERO();                                                                                   \
                for (int j = 0; j < columns; j++)                                                                   \
                    if (row[j] != 0.0f) sum = FMA(SET1(row[j]), x[j], sum);                                         \
                if (bias) sum = ADD(sum, shift);                                                                    \
                if (relu) sum = MAX(ZERO(), sum); /* NaN is the second operand: it stays NaN */                     \
                STORE(mask, destination + p * destination_stride + channel, sum);                                   \
            }                                                                                                       \
        }                                                                                                           \
    }

#endif
#endif
