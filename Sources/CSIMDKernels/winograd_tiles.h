/* Winograd F(4×4, 3×3) and F(2×2, 3×3) tile transforms, 16 (AVX-512) or 8 (AVX2) channels per
 * step with a masked tail. Each runs down the columns into a 6×6 (input) or 4×6 (output) block of
 * registers (4×4 and 2×4 for the small tile) kept in a small stack array, then along the rows,
 * with the same arithmetic as the Swift fallback in WinogradTransforms.swift (F(4×4):
 * interpolation points 0, ±1, ±2, ∞; F(2×2): 0, ±1, ∞; separate multiplies and adds, no FMA, so
 * every level rounds alike). */
#ifndef KEEL_WINOGRAD_TILES_H
#define KEEL_WINOGRAD_TILES_H
/* The template each ISA file instantiates (DEFINE_TRANSFORMS). */
#include "keel_kernels.h"
#include "simd_internal.h"

#if KEEL_X86

/* One body per level: VEC is the register type, and the macros give its operations. */

#define DEFINE_TRANSFORMS(PREFIX, ATTRIBUTE, VEC, WIDTH, MASK, MASK_FOR, LOAD, STORE, ADD, SUB, MUL, SET1, ZERO, MAX,      \
                          MAX_NAN)                                                                                      \
    KEEL_INLINE ATTRIBUTE void PREFIX##_input_axis(VEC x0, VEC x1, VEC x2, VEC x3, VEC x4, VEC x5, VEC *y) {        \
        VEC four = SET1(4.0f), five = SET1(5.0f), two = SET1(2.0f);                                                     \
        VEC a = SUB(x4, MUL(four, x2));                                                                                 \
        VEC b = SUB(x3, MUL(four, x1));                                                                                 \
        VEC c = SUB(x4, x2);                                                                                            \
        VEC d = MUL(two, SUB(x3, x1));                                                                                  \
        y[0] = ADD(SUB(MUL(four, x0), MUL(five, x2)), x4);                                                              \
        y[1] = ADD(a, b);                                                                                               \
        y[2] = SUB(a, b);                                                                                               \
        y[3] = ADD(c, d);                                                                                               \
        y[4] = SUB(c, d);                                                                                               \
        y[5] = ADD(SUB(MUL(four, x1), MUL(five, x3)), x5);                                                              \
    }                                                                                                                   \
    KEEL_INLINE ATTRIBUTE void PREFIX##_output_axis(VEC m0, VEC m1, VEC m2, VEC m3, VEC m4, VEC m5, VEC *y) {       \
        VEC a = ADD(m1, m2), b = SUB(m1, m2), c = ADD(m3, m4), d = SUB(m3, m4);                                        \
        y[0] = ADD(ADD(m0, a), c);                                                                                      \
        y[1] = ADD(b, MUL(SET1(2.0f), d));                                                                              \
        y[2] = ADD(a, MUL(SET1(4.0f), c));                                                                              \
        y[3] = ADD(ADD(b, MUL(SET1(8.0f), d)), m5);                                                                     \
    }                                                                                                                   \
    /* Bias, ReLU, then the row's first `columns` outputs stored, or (with `pool`) kept when r is                       \
     * even and max-pooled with the row kept before when r is odd. Shared by both tile sizes. */                        \
    KEEL_INLINE ATTRIBUTE void PREFIX##_finish_row(VEC *y, int count, int r, int columns, VEC shift, int relu,          \
                                                   int pool, VEC *previous, float *destination,                         \
                                                   ptrdiff_t row_stride, ptrdiff_t column_stride, MASK mask) {          \
        for (int s = 0; s < count; s++) {                                                                               \
            y[s] = ADD(y[s], shift);                                                                                    \
            if (relu) y[s] = MAX(ZERO(), y[s]); /* NaN is the second operand: it stays NaN */                           \
        }                                                                                                               \
        if (!pool) {                                                                                                    \
            float *target = destination + r * row_stride;                                                               \
            for (int s = 0; s < columns; s++) STORE(mask, target + s * column_stride, y[s]);                            \
        } else if (r % 2 == 0) {                                                                                        \
            for (int s = 0; s < count; s++) previous[s] = y[s];                                                         \
        } else {                                                                                                        \
            /* Rows r-1 and r, columns 2j and 2j+1, become pooled pixel (r/2, j). */                                    \
            float *target = destination + (r / 2) * row_stride;                                                         \
            for (int j = 0; j < columns / 2; j++) {                                                                     \
                VEC top = MAX_NAN(previous[2 * j], previous[2 * j + 1]);                                                \
                VEC bottom = MAX_NAN(y[2 * j], y[2 * j + 1]);                                                           \
                STORE(mask, target + j * column_stride, MAX_NAN(top, bottom));                                          \
            }                                                                                                           \
        }                                                                                                               \
    }                                                                                                                   \
    static ATTRIBUTE void PREFIX##_input_tile(const float *source, ptrdiff_t row_stride, ptrdiff_t channels,           \
                                              float *destination, ptrdiff_t point_stride) {                            \
        VEC columns[36];                                                                                                \
        for (ptrdiff_t channel = 0; channel < channels; channel += WIDTH) {                                            \
            MASK mask = MASK_FOR(channels - channel);                                                                   \
            for (int s = 0; s < 6; s++) {                                                                               \
                const float *base = source + s * channels + channel;                                                    \
                VEC y[6];                                                                                               \
                PREFIX##_input_axis(LOAD(mask, base), LOAD(mask, base + row_stride),                                   \
                                    LOAD(mask, base + 2 * row_stride), LOAD(mask, base + 3 * row_stride),              \
                                    LOAD(mask, base + 4 * row_stride), LOAD(mask, base + 5 * row_stride), y);          \
                for (int r = 0; r < 6; r++) columns[r * 6 + s] = y[r];                                                  \
            }                                                                                                           \
            for (int r = 0; r < 6; r++) {                                                                               \
                const VEC *line = columns + r * 6;                                                                      \
                VEC y[6];                                                                                               \
                PREFIX##_input_axis(line[0], line[1], line[2], line[3], line[4], line[5], y);                          \
                float *target = destination + r * 6 * point_stride + channel;                                           \
                for (int s = 0; s < 6; s++) STORE(mask, target + s * point_stride, y[s]);                              \
            }                                                                                                           \
        }                                                                                                               \
    }                                                                                                                   \
    static ATTRIBUTE void PREFIX##_output_tile(const float *products, ptrdiff_t point_stride, ptrdiff_t channels,       \
                                               const float *bias, int relu, int pool, float *destination,              \
                                               ptrdiff_t row_stride, ptrdiff_t column_stride, int rows, int columns) { \
        VEC half[24], previous[4];                                                                                      \
        for (ptrdiff_t channel = 0; channel < channels; channel += WIDTH) {                                            \
            MASK mask = MASK_FOR(channels - channel);                                                                   \
            for (int s = 0; s < 6; s++) {                                                                               \
                const float *base = products + s * point_stride + channel;                                              \
                ptrdiff_t step = 6 * point_stride;                                                                      \
                VEC y[4];                                                                                               \
                PREFIX##_output_axis(LOAD(mask, base), LOAD(mask, base + step), LOAD(mask, base + 2 * step),           \
                                     LOAD(mask, base + 3 * step), LOAD(mask, base + 4 * step),                          \
                                     LOAD(mask, base + 5 * step), y);                                                   \
                for (int r = 0; r < 4; r++) half[r * 6 + s] = y[r];                                                     \
            }                                                                                                           \
            VEC shift = bias ? LOAD(mask, bias + channel) : ZERO();                                                     \
            for (int r = 0; r < rows; r++) {                                                                            \
                const VEC *line = half + r * 6;                                                                         \
                VEC y[4];                                                                                               \
                PREFIX##_output_axis(line[0], line[1], line[2], line[3], line[4], line[5], y);                          \
                PREFIX##_finish_row(y, 4, r, columns, shift, relu, pool, previous, destination + channel, row_stride,   \
                                    column_stride, mask);                                                               \
            }                                                                                                           \
        }                                                                                                               \
    }                                                                                                                   \
    /* F(2×2, 3×3): Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1], Aᵀ = [1 1 1 0; 0 1 −1 −1]. */                         \
    KEEL_INLINE ATTRIBUTE void PREFIX##_small_input_axis(VEC x0, VEC x1, VEC x2, VEC x3, VEC *y) {                      \
        y[0] = SUB(x0, x2);                                                                                             \
        y[1] = ADD(x1, x2);                                                                                             \
        y[2] = SUB(x2, x1);                                                                                             \
        y[3] = SUB(x1, x3);                                                                                             \
    }                                                                                                                   \
    KEEL_INLINE ATTRIBUTE void PREFIX##_small_output_axis(VEC m0, VEC m1, VEC m2, VEC m3, VEC *y) {                     \
        y[0] = ADD(ADD(m0, m1), m2);                                                                                    \
        y[1] = SUB(SUB(m1, m2), m3);                                                                                    \
    }                                                                                                                   \
    static ATTRIBUTE void PREFIX##_small_input_tile(const float *source, ptrdiff_t row_stride, ptrdiff_t channels,      \
                                                    float *destination, ptrdiff_t point_stride) {                       \
        VEC columns[16];                                                                                                \
        for (ptrdiff_t channel = 0; channel < channels; channel += WIDTH) {                                             \
            MASK mask = MASK_FOR(channels - channel);                                                                   \
            for (int s = 0; s < 4; s++) {                                                                               \
                const float *base = source + s * channels + channel;                                                    \
                VEC y[4];                                                                                               \
                PREFIX##_small_input_axis(LOAD(mask, base), LOAD(mask, base + row_stride),                              \
                                          LOAD(mask, base + 2 * row_stride), LOAD(mask, base + 3 * row_stride), y);     \
                for (int r = 0; r < 4; r++) columns[r * 4 + s] = y[r];                                                  \
            }                                                                                                           \
            for (int r = 0; r < 4; r++) {                                                                               \
                const VEC *line = columns + r * 4;                                                                      \
                VEC y[4];                                                                                               \
                PREFIX##_small_input_axis(line[0], line[1], line[2], line[3], y);                                       \
                float *target = destination + r * 4 * point_stride + channel;                                           \
                for (int s = 0; s < 4; s++) STORE(mask, target + s * point_stride, y[s]);                               \
            }                                                                                                           \
        }                                                                                                               \
    }                                                                                                                   \
    static ATTRIBUTE void PREFIX##_small_output_tile(const float *products, ptrdiff_t point_stride,                     \
                                                     ptrdiff_t channels, const float *bias, int relu, int pool,         \
                                                     float *destination, ptrdiff_t row_stride,                          \
                                                     ptrdiff_t column_stride, int rows, int columns) {                  \
        VEC half[8], previous[2];                                                                                       \
        for (ptrdiff_t channel = 0; channel < channels; channel += WIDTH) {                                             \
            MASK mask = MASK_FOR(channels - channel);                                                                   \
            for (int s = 0; s < 4; s++) {                                                                               \
                const float *base = products + s * point_stride + channel;                                              \
                ptrdiff_t step = 4 * point_stride;                                                                      \
                VEC y[2];                                                                                               \
                PREFIX##_small_output_axis(LOAD(mask, base), LOAD(mask, base + step), LOAD(mask, base + 2 * step),      \
                                           LOAD(mask, base + 3 * step), y);                                             \
                for (int r = 0; r < 2; r++) half[r * 4 + s] = y[r];                                                     \
            }                                                                                                           \
            VEC shift = bias ? LOAD(mask, bias + channel) : ZERO();                                                     \
            for (int r = 0; r < rows; r++) {                                                                            \
                const VEC *line = half + r * 4;                                                                         \
                VEC y[2];                                                                                               \
                PREFIX##_small_output_axis(line[0], line[1], line[2], line[3], y);                                      \
                PREFIX##_finish_row(y, 2, r, columns, shift, relu, pool, previous, destination + channel, row_stride,   \
                                    column_stride, mask);                                                               \
            }                                                                                                           \
        }                                                                                                               \
    }                                                                                                                   \
    void keel_##PREFIX##_winograd_input_tile(const float *source, ptrdiff_t row_stride, ptrdiff_t channels,           \
                                             float *destination, ptrdiff_t point_stride) {                            \
        PREFIX##_input_tile(source, row_stride, channels, destination, point_stride);                                  \
    }                                                                                                                   \
    void keel_##PREFIX##_winograd_output_tile(const float *products, ptrdiff_t point_stride, ptrdiff_t channels,      \
                                              const float *bias, int relu, int pool, float *destination,              \
                                              ptrdiff_t row_stride, ptrdiff_t column_stride, int rows, int columns) { \
        PREFIX##_output_tile(products, point_stride, channels, bias, relu, pool, destination, row_stride,             \
                             column_stride, rows, columns);                                                            \
    }                                                                                                                   \
    void keel_##PREFIX##_winograd2_input_tile(const float *source, ptrdiff_t row_stride, ptrdiff_t channels,            \
                                              float *destination, ptrdiff_t point_stride) {                             \
        PREFIX##_small_input_tile(source, row_stride, channels, destination, point_stride);                             \
    }                                                                                                                   \
    void keel_##PREFIX##_winograd2_output_tile(const float *products, ptrdiff_t point_stride, ptrdiff_t channels,       \
                                               const float *bias, int relu, int pool, float *destination,               \
                                               ptrdiff_t row_stride, ptrdiff_t column_stride, int rows,                 \
                                               int columns) {                                                           \
        PREFIX##_small_output_tile(products, point_stride, channels, bias, relu, pool, destination, row_stride,         \
                                   column_stride, rows, columns);                                                       \
    }

#endif
#endif
