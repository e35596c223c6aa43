/* Max and average pooling over NHWC windows, one body per level: channels are contiguous, so each
 * output pixel runs blocks of up to four vectors of channels over its window's taps (clipped to
 * the input once per row and per column), then stores them. Sums run over the taps in row-major
 * order and are scaled by 1/divisor, and maxima keep NaN, exactly as the Swift loops do, so the
 * two give the same bits. */
#ifndef KEEL_POOLING_H
#define KEEL_POOLING_H
#include "keel_kernels.h"
#include "simd_internal.h"
#include "window_taps.h"

#include <float.h>

enum { POOL_VECTORS = 4 };

#if KEEL_X86

/* Needs keel_<PREFIX>_max_nan (simd_internal.h). */
#define DEFINE_POOLING(PREFIX, ATTRIBUTE, VEC, WIDTH, MASK, MASK_FOR, LOAD, STORE, SET1, ZERO, ADD, MUL)       \
    ATTRIBUTE void keel_##PREFIX##_pool_rows(const keel_pool2d *p, ptrdiff_t first_row, ptrdiff_t row_count) { \
        const ptrdiff_t channels = p->channels, height = p->input_height, width = p->input_width;             \
        const ptrdiff_t pixel = p->pixel_stride;                                                              \
        const ptrdiff_t row_step = p->dilation_height * width * pixel, column_step = p->dilation_width * pixel; \
        for (ptrdiff_t row = first_row; row < first_row + row_count; row++) {                                 \
            const ptrdiff_t image = row / p->output_height;                                                   \
            const window_taps rows = window_taps_along(row % p->output_height, height, p->window_height,      \
                                                       p->stride_height, p->dilation_height, p->pad_top,      \
                                                       p->pad_bottom);                                        \
            for (ptrdiff_t column = 0; column < p->output_width; column++) {                                  \
                const window_taps columns = window_taps_along(column, width, p->window_width, p->stride_width, \
                                                              p->dilation_width, p->pad_left, p->pad_right);  \
                const float *window = p->input + ((image * height + rows.first) * width + columns.first) * pixel; \
                float *target = p->output + (row * p->output_width + column) * pixel;                        \
                ptrdiff_t divisor = p->count_include_pad ? rows.padded * columns.padded : rows.count * columns.count; \
                const VEC scale = SET1(1.0f / (float)(divisor > 1 ? divisor : 1));                            \
                for (ptrdiff_t c = 0; c < channels; c += POOL_VECTORS * WIDTH) {                              \
                    MASK masks[POOL_VECTORS];                                                                 \
                    VEC values[POOL_VECTORS];                                                                 \
                    for (int v = 0; v < POOL_VECTORS; v++) {                                                  \
                        masks[v] = MASK_FOR(channels - c - v * WIDTH);                                        \
                        values[v] = p->average ? ZERO() : SET1(-FLT_MAX);                                     \
                    }                                                                                         \
                    for (ptrdiff_t y = 0; y < rows.count; y++) {                                              \
                        for (ptrdiff_t x = 0; x < columns.count; x++) {                                       \
                            const float *pixel = window + y * row_step + x * column_step + c;                 \
                            if (p->average)                                                                   \
                                for (int v = 0; v < POOL_VECTORS; v++)                                        \
                                    values[v] = ADD(values[v], LOAD(masks[v], pixel + v * WIDTH));            \
                            else                                                                              \
                                for (int v = 0; v < POOL_VECTORS; v++)                                        \
                                    values[v] = keel_##PREFIX##_max_nan(values[v], LOAD(masks[v], pixel + v * WIDTH)); \
                        }                                                                                     \
                    }                                                                                         \
                    for (int v = 0; v < POOL_VECTORS; v++)                                                    \
                        STORE(masks[v], target + c + v * WIDTH, p->average ? MUL(values[v], scale) : values[v]); \
                }                                                                                             \
            }                                                                                                 \
        }                                                                                                     \
    }

#endif
#endif
