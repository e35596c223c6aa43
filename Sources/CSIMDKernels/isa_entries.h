#ifndef KEEL_ISA_ENTRIES_H
#define KEEL_ISA_ENTRIES_H
/* The entry points each isa_*.c defines, for cpu.c to put in the kernel table. */
#include "keel_kernels.h"

#define KEEL_DECLARE_FP32_KERNELS(PREFIX)                                                                   \
    void keel_##PREFIX##_sgemm(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, keel_gemm_left left,                   \
                               keel_gemm_right right, float *c, ptrdiff_t ldc, const keel_epilogue *epilogue); \
    void keel_##PREFIX##_sgemm_prologue(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, keel_gemm_left left,          \
                                        keel_gemm_right right, float *c, ptrdiff_t ldc,                     \
                                        const keel_epilogue *epilogue, const keel_gemm_prologue *prologue);  \
    void keel_##PREFIX##_depthwise_conv(const keel_depthwise_conv *conv, ptrdiff_t first, ptrdiff_t count,   \
                                        float *scratch);                                                    \
    void keel_##PREFIX##_grouped_conv(const keel_grouped_conv *conv, ptrdiff_t first, ptrdiff_t count);      \
    void keel_##PREFIX##_direct_conv_rows(const keel_direct_conv *conv, ptrdiff_t first_row,                \
                                          ptrdiff_t row_count, float *scratch);                             \
    void keel_##PREFIX##_winograd_input_tile(const float *source, ptrdiff_t row_stride, ptrdiff_t channels, \
                                             float *destination, ptrdiff_t point_stride);                   \
    void keel_##PREFIX##_winograd_output_tile(const float *products, ptrdiff_t point_stride,               \
                                              ptrdiff_t channels, const float *bias, int relu, int pool,    \
                                              float *destination, ptrdiff_t row_stride,                     \
                                              ptrdiff_t column_stride, int rows, int columns);              \
    void keel_##PREFIX##_winograd2_input_tile(const float *source, ptrdiff_t row_stride, ptrdiff_t channels, \
                                              float *destination, ptrdiff_t point_stride);                  \
    void keel_##PREFIX##_winograd2_output_tile(const float *products, ptrdiff_t point_stride,              \
                                               ptrdiff_t channels, const float *bias, int relu, int pool,   \
                                               float *destination, ptrdiff_t row_stride,                    \
                                               ptrdiff_t column_stride, int rows, int columns);             \
    void keel_##PREFIX##_winograd_filter_transform(const float *source, ptrdiff_t inputs, ptrdiff_t outputs, \
                                                   ptrdiff_t output_stride, ptrdiff_t channel_stride,       \
                                                   ptrdiff_t tap_stride, ptrdiff_t channel_begin,           \
                                                   ptrdiff_t channel_end, float *destination,               \
                                                   ptrdiff_t point_stride, int split_halves); \
    void keel_##PREFIX##_line_transform(const float *source, ptrdiff_t source_stride, ptrdiff_t channels,      \
                                        const float *matrix, int rows, int columns, int kind,                \
                                        const float *bias, int relu, float *destination,                     \
                                        ptrdiff_t destination_stride);

KEEL_DECLARE_FP32_KERNELS(avx512)
KEEL_DECLARE_FP32_KERNELS(avx2)

#define KEEL_DECLARE_ROW_KERNELS(PREFIX)                                                                    \
    void keel_##PREFIX##_softmax_rows(ptrdiff_t rows, ptrdiff_t length, const float *input, float *output); \
    void keel_##PREFIX##_layer_norm_rows(ptrdiff_t rows, ptrdiff_t length, const float *input, float *output, \
                                         const float *gamma, const float *beta, float epsilon, float *means, \
                                         float *inverse_deviations);                                      \
    void keel_##PREFIX##_activate_rows(ptrdiff_t rows, ptrdiff_t columns, ptrdiff_t row_stride,             \
                                       const float *input, float *output, const keel_epilogue *e);    \
    void keel_##PREFIX##_pool_rows(const keel_pool2d *pool, ptrdiff_t first_row, ptrdiff_t row_count);      \
    void keel_##PREFIX##_scaled_transpose(ptrdiff_t rows, ptrdiff_t columns, const float *input,           \
                                          ptrdiff_t input_stride, float scale, float *output);

KEEL_DECLARE_ROW_KERNELS(avx512)
KEEL_DECLARE_ROW_KERNELS(avx2)

void keel_avx512bf16_bf16_conv(const keel_bf16_conv *conv, ptrdiff_t first_pixel, ptrdiff_t pixel_count,
                               ptrdiff_t first_column, ptrdiff_t column_count, void *scratch);
/* Depthwise calls with a bf16 input or output (keel_depthwise_conv_runs_bf16 geometries). */
void keel_avx512bf16_depthwise_conv(const keel_depthwise_conv *conv, ptrdiff_t first, ptrdiff_t count, float *scratch);
void keel_avx512bf16_scale_depth(const uint16_t *packed, ptrdiff_t depth, ptrdiff_t columns, const float *scales,
                                 uint16_t *scaled);
void keel_amx_bf16_conv_direct(const keel_bf16_conv *conv, ptrdiff_t first_row, ptrdiff_t row_count,
                               ptrdiff_t first_column, ptrdiff_t column_count, void *scratch);
void keel_amx_bf16_conv(const keel_bf16_conv *conv, ptrdiff_t first_pixel, ptrdiff_t pixel_count,
                        ptrdiff_t first_column, ptrdiff_t column_count, void *scratch);

#endif
