#ifndef KEEL_BF16_H
#define KEEL_BF16_H
/* What the bf16 kernels of every ISA share: the packed-filter addressing, the block sizes and
 * the im2col rows (isa_avx512bf16.c), which the AMX kernel also uses. */
#include "keel_kernels.h"
#include "simd_internal.h"

#include <math.h>
#include <string.h>

/* Depth rounded up to whole 32-deep tiles (both halves of a split input's). */
static inline ptrdiff_t keel_bf16_depth(const keel_bf16_conv *conv) {
    ptrdiff_t depth = conv->kernel_height * conv->kernel_width * conv->input_channels * (conv->split_input ? 2 : 1);
    return (depth + KEEL_BF16_DEPTH_BLOCK - 1) / KEEL_BF16_DEPTH_BLOCK * KEEL_BF16_DEPTH_BLOCK;
}

/* Bytes of bf16 input rows one call keeps in L2 while every column block of the filter streams
 * past them: the whole filter is read once per such block, so a block this large (half the 2 MB
 * L2 of this class of CPU) reads a deep layer's filter (4.7 MB for 3×3×512×512) once per image
 * instead of six times, which ran VGG16's 28×28 layers 2–2.5× faster, measured. */
enum { KEEL_BF16_BLOCK_BYTES = 1024 * 1024 };

/* Rows of A (output pixels) per im2col block: as many whole 32-row groups as fit
 * KEEL_BF16_BLOCK_BYTES, within 32..512. */
static inline ptrdiff_t keel_bf16_block_rows(ptrdiff_t depth) {
    ptrdiff_t rows = (KEEL_BF16_BLOCK_BYTES / (depth * 2)) / 32 * 32;
    return rows < 32 ? 32 : rows > 512 ? 512 : rows;
}

/* Bytes of the staging tile (fp32 [32][32]) that follows the im2col block in scratch. */
enum { KEEL_BF16_STAGING_BYTES = 32 * 32 * 4 };

/* bf16 elements of the row buffer a split, undilated input's im2col rows are copied from: the
 * input values one kernel row of an output row reaches ((output_width − 1)·stride + kernel_width
 * pixels), high halves then low halves. None for other layers. */
static inline ptrdiff_t keel_bf16_split_row_elements(const keel_bf16_conv *conv) {
    if (!conv->split_input || conv->dilation_width != 1) return 0;
    return 2 * ((conv->output_width - 1) * conv->stride_width + conv->kernel_width) * conv->input_channels;
}

/* The split row buffer in an im2col call's scratch: after the im2col block and the staging tile. */
static inline uint16_t *keel_bf16_split_row_buffer(const keel_bf16_conv *conv, void *scratch) {
    const ptrdiff_t depth = keel_bf16_depth(conv);
    return (uint16_t *)((char *)scratch + (keel_bf16_block_rows(depth) * depth * 2 + 63) / 64 * 64 + KEEL_BF16_STAGING_BYTES);
}

/* Whether each output pixel's im2col row is its own input pixel's channels: a 1×1, stride-1,
 * unpadded layer (or a dense layer), whose rows are then one contiguous run of the input. */
static inline int keel_bf16_pointwise(const keel_bf16_conv *conv) {
    return !conv->split_input && conv->kernel_height == 1 && conv->kernel_width == 1 && conv->stride_height == 1
        && conv->stride_width == 1 && conv->pad_top == 0 && conv->pad_left == 0
        && conv->output_height == conv->input_height && conv->output_width == conv->input_width;
}

/* Whether the kernels read A straight from the layer's input: a pointwise layer with a bf16 input
 * whose channels fill whole 32-deep tiles, so its pixels are the im2col rows already. */
static inline int keel_bf16_reads_input_in_place(const keel_bf16_conv *conv) {
    return conv->bf16_input && keel_bf16_pointwise(conv) && keel_bf16_depth(conv) == conv->input_channels;
}

/* The first element of the 16-column block holding column `column`: each block is depth/32
 * tiles of 16 pair-rows × 16 columns × 2. */
static inline const uint16_t *keel_bf16_column_block(const uint16_t *packed, ptrdiff_t depth, ptrdiff_t column) {
    return packed + (column / 16) * depth * 16;
}

/* The padded bf16 input the direct kernel reads, as if whole: [batch][height][width][channels],
 * width rounded so every 16-pixel segment of an output row reads inside it. Each call holds only
 * a window of its rows. */
static inline ptrdiff_t keel_bf16_padded_height(const keel_bf16_conv *conv) {
    return conv->output_height + conv->kernel_height - 1;
}
static inline ptrdiff_t keel_bf16_padded_width(const keel_bf16_conv *conv) {
    return (conv->output_width + 15) / 16 * 16 + conv->kernel_width - 1;
}

/* Output rows (of keel_bf16_direct_rows) per window: the window's input rows fill
 * KEEL_BF16_BLOCK_BYTES, so they stay in L2 while every column block of the filter passes over them. */
static inline ptrdiff_t keel_bf16_window_rows(const keel_bf16_conv *conv) {
    const ptrdiff_t row_bytes = keel_bf16_padded_width(conv) * conv->input_channels * 2;
    const ptrdiff_t rows = (KEEL_BF16_BLOCK_BYTES / row_bytes - (conv->kernel_height - 1)) / (conv->pool ? 2 : 1);
    return rows < 1 ? 1 : rows;
}
/* Padded input rows one window holds. */
static inline ptrdiff_t keel_bf16_window_height(const keel_bf16_conv *conv) {
    return keel_bf16_window_rows(conv) * (conv->pool ? 2 : 1) + conv->kernel_height - 1;
}

#if KEEL_X86
/* One output row's columns 0–15 (x0) and 16–31 (x1) within the masks, at element `at` of the
 * layer's output: fp32, or both halves rounded to bf16 in one pass when the layer stores bf16. */
KEEL_INLINE KEEL_AVX512_BF16 void keel_bf16_store(const keel_bf16_conv *conv, ptrdiff_t at, __m512 x0, __m512 x1,
                                                  __mmask16 low, __mmask16 high) {
    if (conv->bf16_output) {
        const __mmask32 lanes = (__mmask32)low | ((__mmask32)high << 16);
        _mm512_mask_storeu_epi16(conv->bf16_output + at, lanes, (__m512i)_mm512_cvtne2ps_pbh(x1, x0));
    } else {
        _mm512_mask_storeu_ps(conv->output + at, low, x0);
        _mm512_mask_storeu_ps(conv->output + at + 16, high, x1);
    }
}

/* Whether the layer's activation is a clamp (ReLU or Clip), applied as min(upper, max(lower, x))
 * with bounds set once per block; the others go through keel_avx512_activate. */
KEEL_INLINE int keel_bf16_clamps(const keel_bf16_conv *conv) {
    return conv->activation == KEEL_ACTIVATION_RELU || conv->activation == KEEL_ACTIVATION_CLIP;
}
KEEL_INLINE KEEL_AVX512_BF16 __m512 keel_bf16_lower(const keel_bf16_conv *conv) {
    return _mm512_set1_ps(conv->activation == KEEL_ACTIVATION_CLIP ? conv->parameter0 : 0.0f);
}
KEEL_INLINE KEEL_AVX512_BF16 __m512 keel_bf16_upper(const keel_bf16_conv *conv) {
    return _mm512_set1_ps(conv->activation == KEEL_ACTIVATION_CLIP ? conv->parameter1 : INFINITY);
}
/* keel_avx512_activate's clamp, operands in its order so NaN and −0 come out the same. */
KEEL_INLINE KEEL_AVX512_BF16 void keel_bf16_clamp(__m512 *x0, __m512 *x1, __m512 lower, __m512 upper) {
    *x0 = _mm512_min_ps(upper, _mm512_max_ps(lower, *x0));
    *x1 = _mm512_min_ps(upper, _mm512_max_ps(lower, *x1));
}

/* x0, x1 (output element `at`'s columns 0–15 and 16–31, within the masks) plus the layer's
 * residual there, fp32 or bf16 widened exactly; unchanged without one. */
KEEL_INLINE KEEL_AVX512_BF16 void keel_bf16_add_residual(const keel_bf16_conv *conv, ptrdiff_t at, __m512 *x0,
                                                         __m512 *x1, __mmask16 low, __mmask16 high) {
    if (conv->bf16_residual) {
        const __mmask32 lanes = (__mmask32)low | ((__mmask32)high << 16);
        const __m512i both = _mm512_maskz_loadu_epi16(lanes, conv->bf16_residual + at);
        const __m512i first = _mm512_cvtepu16_epi32(_mm512_castsi512_si256(both));
        const __m512i second = _mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(both, 1));
        *x0 = _mm512_add_ps(*x0, _mm512_castsi512_ps(_mm512_slli_epi32(first, 16)));
        *x1 = _mm512_add_ps(*x1, _mm512_castsi512_ps(_mm512_slli_epi32(second, 16)));
    } else if (conv->residual) {
        *x0 = _mm512_add_ps(*x0, _mm512_maskz_loadu_ps(low, conv->residual + at));
        *x1 = _mm512_add_ps(*x1, _mm512_maskz_loadu_ps(high, conv->residual + at + 16));
    }
}

/* Rows first_pixel ..< first_pixel + rows of the im2col matrix in bf16, [padded_rows][depth]
 * (zero past the filter's depth and past `rows`); `row_buffer`: keel_bf16_split_row_buffer. */
void keel_avx512bf16_im2col(const keel_bf16_conv *conv, ptrdiff_t first_pixel, ptrdiff_t rows,
                            ptrdiff_t padded_rows, ptrdiff_t depth, uint16_t *block, uint16_t *row_buffer);
/* Rows first_row ..< first_row + row_count of the padded bf16 input (counted over the batch) to
 * `window`, the first at its start. */
void keel_avx512bf16_pad_rows(const keel_bf16_conv *conv, ptrdiff_t first_row, ptrdiff_t row_count, uint16_t *window);
/* `rows` rows of a staged fp32 block (32 floats a row) plus bias and the layer's residual
 * (keel_bf16_add_residual), then its activation, stored within the masks from output element `at` on
 * (keel_bf16_store), rows output_channels apart. */
void keel_avx512bf16_finish(const keel_bf16_conv *conv, const float *staging, ptrdiff_t rows, const float *bias,
                            ptrdiff_t at, __mmask16 low, __mmask16 high);
#endif

#endif
