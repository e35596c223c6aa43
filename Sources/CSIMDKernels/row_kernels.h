/* Kernels that run along each row of a row-major matrix and rewrite it: softmax, layer
 * normalisation, and bias plus activation as a pass of its own (activate_rows). A row is short (a few hundred to a few thousand floats) and stays in L1 across
 * the passes, so each pass is a vector loop with a masked tail; each row's lanes are summed in a
 * fixed order, so results do not depend on how callers split the rows across threads. */
#ifndef KEEL_ROW_KERNELS_H
#define KEEL_ROW_KERNELS_H
#include "keel_kernels.h"
#include "simd_internal.h"

#include <math.h>

#if KEEL_X86

/* Masked loads whose inactive lanes hold `fill`, and vectors with inactive lanes zeroed. */
#define KEEL_AVX512_LOAD_OR(mask, pointer, fill) _mm512_mask_loadu_ps(fill, mask, pointer)
#define KEEL_AVX2_LOAD_OR(mask, pointer, fill)                                                              \
    _mm256_blendv_ps(fill, _mm256_maskload_ps(pointer, mask), _mm256_castsi256_ps(mask))
#define KEEL_AVX512_KEEP(mask, value) _mm512_maskz_mov_ps(mask, value)
#define KEEL_AVX2_KEEP(mask, value) _mm256_and_ps(value, _mm256_castsi256_ps(mask))

/* Needs keel_<PREFIX>_exp and keel_<PREFIX>_activate (simd_activation.h) and keel_<PREFIX>_max_nan
 * (simd_internal.h). */
#define DEFINE_ROW_KERNELS(PREFIX, ATTRIBUTE, VEC, LANES, MASK, MASK_FOR, LOAD, LOAD_OR, STORE, KEEP, SET1,   \
                           ZERO, ADD, SUB, MUL, FMADD)                                                      \
    /* e^(x − max), exactly 0 below e^−80: masked scores (Swin adds −100) otherwise came out of exp \
     * as subnormals (the exponential clamps at 2^−126, and 1/Σ scales that below), and subnormal  \
     * arithmetic took Swin's 49-key rows from 0.68 to 1.31 ns per value on Zen 4. The values lost \
     * are below 2e-35 of the row's largest. */                                                    \
    KEEL_INLINE ATTRIBUTE VEC PREFIX##_softmax_exp(VEC x, VEC shift) {                                      \
        const VEC shifted = SUB(x, shift);                                                                \
        return keel_##PREFIX##_zero_below(shifted, -80.0f, keel_##PREFIX##_exp(shifted));                 \
    }                                                                                                     \
    /* Whole vectors two at a time into two accumulators, then the masked tail: one masked vector  \
     * per row rather than a mask computed and applied on every one, and two chains of max and of    \
     * sums where one held each pass to its latency (ViT's 197-key rows on Zen 3: 1.07 → 0.71 ns per \
     * value). The order of the sums is fixed by the length, whatever rows a caller passes. */      \
    ATTRIBUTE void keel_##PREFIX##_softmax_rows(ptrdiff_t rows, ptrdiff_t length, const float *input,       \
                                                float *output) {                                           \
        const ptrdiff_t whole = length / LANES * LANES;                                                   \
        const MASK all = MASK_FOR(LANES), tail = MASK_FOR(length - whole);                                \
        for (ptrdiff_t row = 0; row < rows; row++) {                                                      \
            const float *from = input + row * length;                                                     \
            float *to = output + row * length;                                                            \
            VEC largest = SET1(-INFINITY), other = SET1(-INFINITY);                                       \
            ptrdiff_t i = 0;                                                                              \
            for (; i + 2 * LANES <= whole; i += 2 * LANES) {                                              \
                largest = keel_##PREFIX##_max_nan(LOAD(all, from + i), largest);                          \
                other = keel_##PREFIX##_max_nan(LOAD(all, from + i + LANES), other);                      \
            }                                                                                             \
            if (i < whole) largest = keel_##PREFIX##_max_nan(LOAD(all, from + i), largest);               \
            if (whole < length) largest = keel_##PREFIX##_max_nan(LOAD_OR(tail, from + whole, SET1(-INFINITY)), largest); \
            const float top = keel_##PREFIX##_fold_max(keel_##PREFIX##_max_nan(other, largest));          \
            if (!isfinite(top)) {                                                                         \
                /* A NaN, +∞ or a row of −∞: e^(x − max) is NaN somewhere, so the row is. */              \
                for (ptrdiff_t l = 0; l < length; l++) to[l] = NAN;                                       \
                continue;                                                                                 \
            }                                                                                             \
            const VEC shift = SET1(top);                                                                  \
            VEC sums = ZERO(), more = ZERO();                                                             \
            for (i = 0; i + 2 * LANES <= whole; i += 2 * LANES) {                                         \
                const VEC first = PREFIX##_softmax_exp(LOAD(all, from + i), shift);                   \
                const VEC second = PREFIX##_softmax_exp(LOAD(all, from + i + LANES), shift);          \
                STORE(all, to + i, first);                                                                \
                STORE(all, to + i + LANES, second);                                                       \
                sums = ADD(sums, first);                                                                  \
                more = ADD(more, second);                                                                 \
            }                                                                                             \
            if (i < whole) {                                                                              \
                const VEC value = PREFIX##_softmax_exp(LOAD(all, from + i), shift);                   \
                STORE(all, to + i, value);                                                                \
                sums = ADD(sums, value);                                                                  \
            }                                                                                             \
            if (whole < length) {                                                                         \
                const VEC value = KEEP(tail, PREFIX##_softmax_exp(LOAD(tail, from + whole), shift));  \
                STORE(tail, to + whole, value);                                                           \
                sums = ADD(sums, value);                                                                  \
            }                                                                                             \
            const VEC scale = SET1(1.0f / keel_##PREFIX##_fold_sum(ADD(sums, more)));                            \
            for (i = 0; i < whole; i += LANES) STORE(all, to + i, MUL(LOAD(all, to + i), scale));          \
            if (whole < length) STORE(tail, to + whole, MUL(LOAD(tail, to + whole), scale));              \
        }                                                                                                 \
    }                                                                                                     \
    ATTRIBUTE void keel_##PREFIX##_layer_norm_rows(ptrdiff_t rows, ptrdiff_t length, const float *input,    \
                                                   float *output, const float *gamma, const float *beta,  \
                                                   float epsilon, float *means, float *inverse_deviations) { \
        const float inverse_length = 1.0f / (float)length;                                               \
        for (ptrdiff_t row = 0; row < rows; row++) {                                                      \
            const float *from = input + row * length;                                                     \
            float *to = output + row * length;                                                            \
            VEC sums = ZERO();                                                                            \
            for (ptrdiff_t i = 0; i < length; i += LANES) sums = ADD(sums, LOAD(MASK_FOR(length - i), from + i)); \
            const float mean = keel_##PREFIX##_fold_sum(sums) * inverse_length;                                  \
            VEC centre = SET1(mean), squares = ZERO();                                                    \
            for (ptrdiff_t i = 0; i < length; i += LANES) {                                               \
                MASK mask = MASK_FOR(length - i);                                                         \
                VEC centred = KEEP(mask, SUB(LOAD(mask, from + i), centre));                              \
                squares = FMADD(centred, centred, squares);                                               \
            }                                                                                             \
            const float inverse = 1.0f / sqrtf(keel_##PREFIX##_fold_sum(squares) * inverse_length + epsilon);   \
            if (means) means[row] = mean;                                                                 \
            if (inverse_deviations) inverse_deviations[row] = inverse;                                    \
            VEC factor = SET1(inverse);                                                                   \
            for (ptrdiff_t i = 0; i < length; i += LANES) {                                               \
                MASK mask = MASK_FOR(length - i);                                                         \
                VEC normalised = MUL(SUB(LOAD(mask, from + i), centre), factor);                          \
                VEC shift = beta ? LOAD(mask, beta + i) : ZERO();                                         \
                STORE(mask, to + i, FMADD(normalised, LOAD(mask, gamma + i), shift));                     \
            }                                                                                             \
        }                                                                                                 \
    }                                                                                                     \
    ATTRIBUTE void keel_##PREFIX##_activate_rows(ptrdiff_t rows, ptrdiff_t columns, ptrdiff_t row_stride,   \
                                                 const float *input, float *output, const keel_epilogue *e) { \
        for (ptrdiff_t row = 0; row < rows; row++) {                                                      \
            const float *from = input + row * row_stride;                                                 \
            float *to = output + row * row_stride;                                                        \
            const VEC row_bias = e->bias && e->bias_per_row ? SET1(e->bias[row]) : ZERO();                \
            ptrdiff_t i = 0;                                                                              \
            /* GELU a few whole vectors at a time, in lockstep (simd_activation.h). */                  \
            if (e->activation == KEEL_ACTIVATION_GELU)                                                    \
                for (; i + LOCKSTEP * LANES <= columns; i += LOCKSTEP * LANES) {                          \
                    VEC v[LOCKSTEP];                                                                      \
                    for (int j = 0; j < LOCKSTEP; j++) {                                                  \
                        MASK all = MASK_FOR(LANES);                                                       \
                        v[j] = LOAD(all, from + i + j * LANES);                                           \
                        if (e->bias)                                                                      \
                            v[j] = ADD(v[j], e->bias_per_row ? row_bias : LOAD(all, e->bias + i + j * LANES)); \
                    }                                                                                     \
                    keel_##PREFIX##_gelu_lockstep(v);                                                     \
                    for (int j = 0; j < LOCKSTEP; j++) STORE(MASK_FOR(LANES), to + i + j * LANES, v[j]);  \
                }                                                                                         \
            for (; i < columns; i += LANES) {                                                             \
                MASK mask = MASK_FOR(columns - i);                                                        \
                VEC value = LOAD(mask, from + i);                                                         \
                if (e->bias) value = ADD(value, e->bias_per_row ? row_bias : LOAD(mask, e->bias + i));    \
                STORE(mask, to + i, keel_##PREFIX##_activate(value, e));                                  \
            }                                                                                             \
        }                                                                                                 \
    }

/* output[c·rows + r] = scale · input[r·input_stride + c]: a strided block of rows transposed into
 * contiguous columns (attention's scaled Kᵀ, a head's [tokens × head size] block), each run of
 * LANES rows of one column fetched by one gather. A scalar store per element through Swift ran at
 * 2.3 ns per value on Zen 4, 44% of Swin's window attention. */
#define DEFINE_SCALED_TRANSPOSE(PREFIX, ATTRIBUTE, VEC, IVEC, LANES, MASK, MASK_FOR, STORE, SET1, MUL, ROW_INDEX, \
                                GATHER)                                                                    \
    ATTRIBUTE void keel_##PREFIX##_scaled_transpose(ptrdiff_t rows, ptrdiff_t columns, const float *input,  \
                                                    ptrdiff_t input_stride, float scale, float *output) {   \
        if (input_stride > INT32_MAX / LANES) {                                                           \
            for (ptrdiff_t c = 0; c < columns; c++)                                                       \
                for (ptrdiff_t r = 0; r < rows; r++) output[c * rows + r] = scale * input[r * input_stride + c]; \
            return;                                                                                       \
        }                                                                                                 \
        const IVEC index = ROW_INDEX((int)input_stride);                                                  \
        const VEC factor = SET1(scale);                                                                   \
        for (ptrdiff_t r = 0; r < rows; r += LANES) {                                                     \
            const MASK mask = MASK_FOR(rows - r);                                                         \
            const float *from = input + r * input_stride;                                                 \
            for (ptrdiff_t c = 0; c < columns; c++)                                                       \
                STORE(mask, output + c * rows + r, MUL(GATHER(mask, from + c, index), factor));           \
        }                                                                                                 \
    }

#endif
#endif
