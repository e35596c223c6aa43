#ifndef KEEL_KERNELS_H
#define KEEL_KERNELS_H
/* Hand-vectorised kernels for the loops OpenBLAS does not cover well, reached through one table.
 * The CPU's capabilities are detected once; the table of entry points is filled once from them
 * (each ISA's bodies live in their own isa_*.c, compiled with that ISA's target attributes), so
 * the binary starts on any x86-64 and builds on arm64. An entry is NULL when no body for it runs
 * on this CPU: callers ask whether a kernel is present and otherwise take their portable path.
 * Nothing dispatches per call. */

#include <stddef.h>
#include <stdint.h>

#include "keel_depthwise.h"
#include "keel_direct_conv.h"
#include "keel_epilogue.h"
#include "keel_grouped_conv.h"
#include "keel_worker_pool.h"

/* What the CPU offers Keel's kernels, as independent bits (not a ladder: AMX and AVX512_BF16 are
 * extensions a CPU may have either of, and NEON is another architecture). */
typedef enum {
    /* AVX2 with FMA. */
    KEEL_CPU_AVX2 = 1u << 0,
    /* AVX-512 Foundation. */
    KEEL_CPU_AVX512 = 1u << 1,
    /* AVX512_BF16 (vdpbf16ps, vcvtne2ps2bf16). */
    KEEL_CPU_AVX512_BF16 = 1u << 2,
    /* AMX tiles with bf16 products; set only once Linux granted this process the tile state. */
    KEEL_CPU_AMX_BF16 = 1u << 3,
    /* Arm Advanced SIMD (no kernels yet). */
    KEEL_CPU_NEON = 1u << 4,
} keel_cpu_capability;

/* The capabilities this process may use: the CPU's, narrowed by the KEEL_SIMD environment
 * variable (see cpu.c), detected on first call. */
uint32_t keel_cpu_detected(void);
/* Those the kernel table was filled from: the detected ones, or fewer after keel_cpu_restrict. */
uint32_t keel_cpu_in_use(void);
/* Refills the table from detected ∩ allowed (tests run every path this way); call it only while
 * no kernel runs. */
void keel_cpu_restrict(uint32_t allowed);

/* Columns per panel of a packed right operand (keel_gemm_right). */
#define KEEL_PANEL_COLUMNS 32

/* The left operand of sgemm: element (row r, depth p) at base[r·row_step + p·depth_step]
 * (row-major A: row_step = lda, depth_step = 1; a filter matrix [k][m] read as Wᵀ: row_step = 1,
 * depth_step = m). With block_rows > 0 the rows come in blocks of that many, block b at
 * base + b·block_step and row r at ((r / block_rows)·block_step + (r mod block_rows)·row_step):
 * a filter packed once as [blocks][k][block_rows] (row_step = 1, depth_step = block_rows), which
 * the kernels read in place, each row group inside one block. With segment_depth > 0 the depths
 * come in segments of that many, segment s at base + s·segment_step and depth p at
 * ((p / segment_depth)·segment_step + (p mod segment_depth)·depth_step): an NHWC convolution's
 * input read in place as its im2col matrix, a segment per kernel row (the kernel row's taps are
 * adjacent pixels, so their channels are contiguous). Only the fp32 sgemm reads segments. */
typedef struct {
    const float *base;
    ptrdiff_t row_step, depth_step;
    ptrdiff_t block_rows, block_step;
    ptrdiff_t segment_depth, segment_step;
} keel_gemm_left;

/* The right operand: element (depth p, column j) at base[(j / 32)·panel_step + ((j mod 32) / 16)·
 * half_step + p·depth_step + j mod 16]. A row-major [k][n] matrix has panel_step = 32,
 * half_step = 16, depth_step = n; interleaved packed panels [k][32]
 * panel_step = 32·k, half_step = 16, depth_step = 32; split packed panels, each two [k][16]
 * halves (what sgemm_split_panels asks for), panel_step = 32·k, half_step = 16·k,
 * depth_step = 16. `padded` = 1 lets the last panel be read whole. A half_step of 0 reads as 16. */
typedef struct {
    const float *base;
    ptrdiff_t depth_step, panel_step;
    int padded;
    ptrdiff_t half_step;
} keel_gemm_right;

/* C[m×n] = epilogue(A·B), C row-major with leading dimension ldc; `epilogue` may be NULL. Each
 * element is summed in the same order whatever m and n are, so splitting rows or 32-column
 * blocks across calls gives the same values. k may be 0 (the epilogue of zero). */
typedef void (*keel_sgemm_fn)(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, keel_gemm_left a, keel_gemm_right b, float *c,
                              ptrdiff_t ldc, const keel_epilogue *epilogue);

/* A per-depth transform of the left operand, applied as sgemm_prologue reads it: A(r, p) becomes
 * scale[p]·A(r, p) + shift[p], then max(0, ·) when `relu` is 1 (a BatchNorm and ReLU on a 1×1
 * convolution's input channels, as DenseNet applies them to its whole concatenation). */
typedef struct {
    const float *scale, *shift;
    int relu;
} keel_gemm_prologue;

/* sgemm with the left operand transformed by `prologue` (not NULL) as it is read; A itself is not
 * written. Splitting rows or columns across calls gives the same values, as for sgemm. */
typedef void (*keel_sgemm_prologue_fn)(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, keel_gemm_left a, keel_gemm_right b,
                                       float *c, ptrdiff_t ldc, const keel_epilogue *epilogue,
                                       const keel_gemm_prologue *prologue);

/* Work units first ..< first + count of a depthwise convolution (keel_depthwise.h): each output
 * value is the taps' fused multiply-adds in filter order from zero, then bias, residual and
 * activation, whatever the split. */
typedef void (*keel_depthwise_conv_fn)(const keel_depthwise_conv *conv, ptrdiff_t first, ptrdiff_t count,
                                       float *scratch);

/* Work units first ..< first + count of a grouped convolution (keel_grouped_conv.h), with the
 * same guarantee: each output value is the taps' fused multiply-adds in filter order from zero,
 * then bias, residual and activation, whatever the split. */
typedef void (*keel_grouped_conv_fn)(const keel_grouped_conv *conv, ptrdiff_t first, ptrdiff_t count);

/* Output rows first_row ..< first_row + row_count of a direct convolution (keel_direct_conv.h). */
typedef void (*keel_direct_conv_rows_fn)(const keel_direct_conv *conv, ptrdiff_t first_row, ptrdiff_t row_count,
                                         float *scratch);

/* Winograd F(4×4, 3×3), vectorised over channels (contiguous in patches, transformed matrices and
 * outputs).
 * Input tile, Bᵀ d B for one 6×6 tile: element (r, s) of channel c at source[r·row_stride +
 * s·channels + c]; point p (= 6·row + column) of channel c goes to destination[p·point_stride + c]. */
typedef void (*keel_winograd_input_tile_fn)(const float *source, ptrdiff_t row_stride, ptrdiff_t channels,
                                            float *destination, ptrdiff_t point_stride);
/* Output tile, Aᵀ M A + bias, then max(·, 0) when `relu`: the 36 products of channel c at
 * products[p·point_stride + c]; output (r, s) of channel c goes to
 * destination[r·row_stride + s·column_stride + c] for r < rows and s < columns (edge tiles
 * write only the pixels inside the image). With `pool`, each 2×2 block of those outputs is
 * max-pooled first: pooled pixel (i, j) goes to destination[i·row_stride + j·column_stride + c]
 * for i < rows/2 and j < columns/2 (an odd last row or column is dropped, as a floor-mode pool
 * does). `bias` may be NULL. */
typedef void (*keel_winograd_output_tile_fn)(const float *products, ptrdiff_t point_stride, ptrdiff_t channels,
                                             const float *bias, int relu, int pool, float *destination,
                                             ptrdiff_t row_stride, ptrdiff_t column_stride, int rows, int columns);
/* The filter transform U = G·g·Gᵀ, computed in double precision and rounded once to float. Tap
 * t = row·3 + column of the filter from input channel c to output channel o is
 * source[o·output_stride + c·channel_stride + t·tap_stride]. For input channels
 * channel_begin..<channel_end and every output channel, transform point p (0..<36) goes to
 * destination[p·point_stride + (o / 32)·inputs·32 + c·32 + o % 32] (interleaved panels), or with
 * split_halves at destination[p·point_stride + (o / 32)·inputs·32 + ((o % 32) / 16)·inputs·16 +
 * c·16 + o % 16]: each point's [inputs, outputs] matrix as sgemm's packed right operand
 * (keel_gemm_right; padding columns are left alone). */
/* One-dimensional Winograd (1×k and k×1 convolutions, each axis of a k×k tile), vectorised over
 * channels: for p < rows and every channel c, destination[p·destination_stride + c] =
 * Σ_j matrix[p·columns + j] · source[j·source_stride + c] over j < columns (FMAs in ascending j,
 * zero entries skipped), plus bias[c] when `bias` is not NULL, then max(·, 0) when `relu`. The input
 * transform passes Bᵀ over a line of n pixels; the output one Aᵀ over a tile's n products.
 * columns ≤ 16. `kind` names the matrix when it is one of F(4, k)'s (a Bᵀ, rows = n, or an Aᵀ,
 * rows ≤ 4, equal to keel_line_matrix(kind)): the kernel then runs a body built for it; 0 for any
 * other matrix. */
#define KEEL_LINE_WINOGRAD_MAX_POINTS 16
enum {
    KEEL_LINE_GENERIC = 0,
    KEEL_LINE_INPUT_6, KEEL_LINE_OUTPUT_6,
    KEEL_LINE_INPUT_8, KEEL_LINE_OUTPUT_8,
    KEEL_LINE_INPUT_10, KEEL_LINE_OUTPUT_10,
};
typedef void (*keel_line_transform_fn)(const float *source, ptrdiff_t source_stride, ptrdiff_t channels,
                                       const float *matrix, int rows, int columns, int kind, const float *bias,
                                       int relu, float *destination, ptrdiff_t destination_stride);
/* The matrix of a KEEL_LINE_* kind (row-major, `*rows` × `*columns`), NULL for another kind. */
const float *keel_line_matrix(int kind, int *rows, int *columns);
typedef void (*keel_winograd_filter_transform_fn)(const float *source, ptrdiff_t inputs, ptrdiff_t outputs,
                                                  ptrdiff_t output_stride, ptrdiff_t channel_stride,
                                                  ptrdiff_t tap_stride, ptrdiff_t channel_begin,
                                                  ptrdiff_t channel_end, float *destination,
                                                  ptrdiff_t point_stride, int split_halves);

/* A convolution (one group, NHWC) or dense layer (the 1×1 case: batch = rows, 1×1 image) whose
 * products run in bf16 with fp32 accumulation. The input is fp32, rounded to bf16 (nearest even)
 * as each block of im2col rows is built, or already bf16 (`bf16_input`); bias, residual and the
 * activation are applied in fp32 before the store, fp32 or rounded to bf16 (`bf16_output`). */
typedef struct {
    const float *input;
    /* keel_bf16_pack's layout of the [depth][output_channels] filter, depth ordered (kernel row,
     * kernel column, input channel). */
    const uint16_t *weights;
    /* output_channels values, or NULL. */
    const float *bias;
    /* Added after the bias, before the activation: laid out as `output` (unpooled), or NULL. */
    const float *residual;
    /* [batch·output_height·output_width][output_channels]. */
    float *output;
    ptrdiff_t batch;
    ptrdiff_t input_height, input_width, input_channels;
    ptrdiff_t output_height, output_width, output_channels;
    ptrdiff_t kernel_height, kernel_width;
    ptrdiff_t stride_height, stride_width;
    ptrdiff_t dilation_height, dilation_width;
    ptrdiff_t pad_top, pad_left;
    /* Applied after bias and residual, before the store (keel_epilogue's kinds and parameters): an
     * activation other than ReLU would otherwise be a pass of its own over the fp32 output, and the
     * output could not be stored in bf16. */
    keel_activation activation;
    float parameter0, parameter1;
    /* The direct form only: a 2×2 stride-2 max pool (floor mode: an odd last row or column is
     * dropped) of the activated output, so `output` is [batch·(output_height/2)·(output_width/2)]
     * [output_channels]. The maximum is taken before bias and ReLU, which commute with it exactly
     * (a pooled layer's activation is none or ReLU). */
    int pool;
    /* When set, the input is read from here instead of `input`: bf16 values laid out alike (a
     * previous bf16 layer's output), used as they are. */
    const uint16_t *bf16_input;
    /* When set, results are rounded to bf16 (nearest even, as vcvtneps2bf16 rounds) and stored
     * here instead of `output`, laid out alike: what a following bf16 layer would round them to. */
    uint16_t *bf16_output;
    /* When set, the residual is read from here instead of `residual`: bf16 values laid out alike
     * (a residual stream a bf16 layer stored), widened to fp32 before the add. */
    const uint16_t *bf16_residual;
    /* When set (the im2col form only), each input value x enters as two bf16 terms, hi = bf16(x)
     * at depth k and lo = bf16(x − hi) at depth K + k (K = kernel_height·kernel_width·
     * input_channels), and filter rows K + k repeat rows k: the products see x to about 16 bits
     * instead of 8, for twice the depth. For an RGB first layer, whose pixel values bf16 would
     * round to steps of 1. */
    int split_input;
} keel_bf16_conv;

/* Columns (output channels) of one packed block; column ranges passed to the kernels start at a
 * multiple of it. Depth is padded to a multiple of KEEL_BF16_DEPTH_BLOCK. */
#define KEEL_BF16_COLUMN_BLOCK 32
#define KEEL_BF16_DEPTH_BLOCK 32

/* Elements of keel_bf16_pack's output for a [depth][columns] matrix. */
ptrdiff_t keel_bf16_packed_count(ptrdiff_t depth, ptrdiff_t columns);
/* Rounds the fp32 matrix element (k, n) = source[k·depth_stride + n·column_stride] to bf16
 * (nearest even; NaN stays NaN) into tiles of 32 depth × 16 columns, each 16 rows of pairs
 * (row j holds, per column, depth 2j and 2j+1: the layout AMX's tdpbf16ps and vdpbf16ps read),
 * 16-column blocks outermost, zero-padded to whole 32-column blocks and 32-deep tiles. */
void keel_bf16_pack(const float *source, ptrdiff_t depth, ptrdiff_t columns, ptrdiff_t depth_stride,
                    ptrdiff_t column_stride, uint16_t *packed);
/* x rounded to the nearest bf16 (ties to even), as a float: what the kernels multiply. */
float keel_bf16_round(float x);
/* Whether the AMX table's keel_bf16_conv_fn hands this layer to the AVX512_BF16 body: a few
 * output pixels in all (a dense layer at batch 1–4) would fill the 16-row tiles with padding that
 * streams through memory like real rows (one row: twice as fast on vdpbf16ps, measured). Decided
 * per layer, so the summation order still does not depend on how calls split the work. */
#define KEEL_BF16_VECTOR_PIXELS 4
int keel_bf16_vector_fits(const keel_bf16_conv *conv);
/* Bytes of scratch one concurrent keel_bf16_conv_fn call needs. */
ptrdiff_t keel_bf16_conv_scratch_bytes(const keel_bf16_conv *conv);

/* Output pixels first_pixel ..< first_pixel + pixel_count (counted over the batch), output
 * channels first_column ..< first_column + column_count (first_column a multiple of
 * KEEL_BF16_COLUMN_BLOCK; the count is clipped to output_channels). Each value is one fp32 sum
 * over the depth in the same order whatever ranges a call covers. `scratch` is 64-byte aligned. */
typedef void (*keel_bf16_conv_fn)(const keel_bf16_conv *conv, ptrdiff_t first_pixel, ptrdiff_t pixel_count,
                                  ptrdiff_t first_column, ptrdiff_t column_count, void *scratch);

/* The direct form, for stride-1 undilated convolutions whose input channels are a multiple of 32
 * and whose output rows fill at least 3/4 of their 16-pixel tiles (not a split input, nor a 1×1
 * layer of at most 64 input channels and 4× as many outputs): each call rounds the input rows
 * a block of output rows reads into a zero-padded bf16 window in its scratch (small enough to stay
 * in L2 while every column block passes over it), then reads each tile of 16 adjacent output
 * pixels straight from that window, with no im2col rows. */
int keel_bf16_direct_fits(const keel_bf16_conv *conv);
/* Bytes of scratch (64-byte aligned) one concurrent keel_bf16_conv_direct_fn call needs. */
ptrdiff_t keel_bf16_direct_scratch_bytes(const keel_bf16_conv *conv);
/* Rows of the direct form's output counted over the batch: pooled rows when `pool` is set. */
ptrdiff_t keel_bf16_direct_rows(const keel_bf16_conv *conv);
/* Output rows first_row ..< first_row + row_count (of keel_bf16_direct_rows), output channels as
 * in keel_bf16_conv_fn. */
typedef void (*keel_bf16_conv_direct_fn)(const keel_bf16_conv *conv, ptrdiff_t first_row, ptrdiff_t row_count,
                                         ptrdiff_t first_column, ptrdiff_t column_count, void *scratch);

/* Runs `kernel` (either form) over a grid of row_parts × column_parts units: rows 0 ..< total_rows
 * in whole steps of row_step (the direct form's rows: 1; im2col's pixels: 32), cut at step
 * boundaries into row_parts runs, and the 32-column blocks into column_parts runs. The calling
 * thread and up to threads − 1 pool workers (at most 64 in all) each take an equal share of the
 * units in order, then units left in the others' shares, so a thread on a faster core does more;
 * thread p's units run in scratch slot p (slot_bytes apart). While the pool serves another caller,
 * the calling thread runs every unit itself. Each output value is computed by one unit, whatever
 * the grid. */
void keel_bf16_run_units(const keel_bf16_conv *conv, keel_bf16_conv_fn kernel, ptrdiff_t total_rows,
                         ptrdiff_t row_step, ptrdiff_t row_parts, ptrdiff_t column_parts, void *scratch,
                         ptrdiff_t slot_bytes, ptrdiff_t threads);

/* softmax along each of `rows` rows of `length` floats: output row = e^(x − max) / Σ e^(x − max).
 * A row holding a NaN or +∞, or only −∞, becomes NaN. output may be input. */
typedef void (*keel_softmax_rows_fn)(ptrdiff_t rows, ptrdiff_t length, const float *input, float *output);

/* Layer normalisation of each of `rows` rows of `length` floats: (x − mean)·r·gamma + beta with
 * r = 1/√(variance + epsilon), the variance from a second pass over the centred row. beta, means
 * and inverse_deviations (which receive each row's mean and r) may be NULL; output may be input. */
typedef void (*keel_layer_norm_rows_fn)(ptrdiff_t rows, ptrdiff_t length, const float *input, float *output,
                                        const float *gamma, const float *beta, float epsilon, float *means,
                                        float *inverse_deviations);

/* output = activation(input + bias) over `rows` rows of `columns` floats, `row_stride` apart, with
 * the epilogue's bias (per column, or per row when bias_per_row) and activation; its residual is
 * not read. output may be input. The activations a kernel could not fuse, as one pass. */
typedef void (*keel_activate_rows_fn)(ptrdiff_t rows, ptrdiff_t columns, ptrdiff_t row_stride, const float *input,
                                      float *output, const keel_epilogue *e);

/* Max or average pooling of an NHWC tensor over explicit windows (the caller has fixed the output
 * size, padding included): taps outside the input are skipped. */
typedef struct {
    const float *input;
    float *output;
    ptrdiff_t batch, channels;
    ptrdiff_t input_height, input_width, output_height, output_width;
    ptrdiff_t window_height, window_width, stride_height, stride_width, dilation_height, dilation_width;
    ptrdiff_t pad_top, pad_left, pad_bottom, pad_right;
    /* 0: the maximum (NaN when any tap is; the lowest finite float when no tap is inside);
     * 1: the mean, over the taps inside the input, or inside the padded input with count_include_pad. */
    int average;
    int count_include_pad;
    /* Floats from one pixel to the next in input and output: `channels`, or more when the call
     * pools a slice of each pixel's channels (a global pool split over channels between threads). */
    ptrdiff_t pixel_stride;
} keel_pool2d;

/* Output rows first_row ..< first_row + row_count, counted over the batch. */
typedef void (*keel_pool_rows_fn)(const keel_pool2d *pool, ptrdiff_t first_row, ptrdiff_t row_count);

/* output[c·rows + r] = scale · input[r·input_stride + c] for rows × columns values: a strided block
 * transposed into contiguous columns. output must not overlap input. */
typedef void (*keel_scaled_transpose_fn)(ptrdiff_t rows, ptrdiff_t columns, const float *input, ptrdiff_t input_stride,
                                         float scale, float *output);

/* Every kernel entry point; NULL where no body runs on this CPU. */
typedef struct {
    keel_sgemm_fn sgemm;
    keel_sgemm_prologue_fn sgemm_prologue;
    /* Most rows sgemm multiplies at once (its register block): the block_rows a filter read as the
     * left operand is best packed in. 0 where there is no sgemm. */
    int sgemm_rows;
    /* 1 when sgemm reads packed B fastest as split panels (keel_gemm_right): AVX2 passes over one
     * 16-column half of a panel at a time, and a half of an interleaved panel is every other
     * cache line, which only half of the L1's sets can hold. */
    int sgemm_split_panels;
    keel_depthwise_conv_fn depthwise_conv;
    keel_grouped_conv_fn grouped_conv;
    keel_direct_conv_rows_fn direct_conv_rows;
    keel_winograd_input_tile_fn winograd_input_tile;
    keel_winograd_output_tile_fn winograd_output_tile;
    /* The same two for F(2×2, 3×3): 4×4 input tiles and 16 points, 2×2 output tiles. */
    keel_winograd_input_tile_fn winograd2_input_tile;
    keel_winograd_output_tile_fn winograd2_output_tile;
    keel_winograd_filter_transform_fn winograd_filter_transform;
    keel_line_transform_fn line_transform;
    /* bf16 products: AMX tiles where granted, else AVX512_BF16. */
    keel_bf16_conv_fn bf16_conv;
    /* The direct form: AMX only (elsewhere the im2col form runs every geometry). */
    keel_bf16_conv_direct_fn bf16_conv_direct;
    /* Depthwise layers that read or write bf16 activations (keel_depthwise_conv's bf16_input and
     * bf16_output): AVX512_BF16. */
    keel_depthwise_conv_fn depthwise_conv_bf16;
    /* keel_bf16_pack's filter with depth row k multiplied by scales[k] and rounded again to bf16
     * (nearest even), into `scaled` (keel_bf16_packed_count values): a squeeze-excitation gate on a
     * 1×1 layer's input channels, applied to the filter image by image. AVX512_BF16. */
    void (*bf16_scale_depth)(const uint16_t *packed, ptrdiff_t depth, ptrdiff_t columns, const float *scales,
                             uint16_t *scaled);
    keel_softmax_rows_fn softmax_rows;
    keel_layer_norm_rows_fn layer_norm_rows;
    keel_activate_rows_fn activate_rows;
    keel_pool_rows_fn pool_rows;
    keel_scaled_transpose_fn scaled_transpose;
} keel_kernel_table;

/* The table for keel_cpu_in_use(): filled on first call, never NULL. */
const keel_kernel_table *keel_kernels(void);

#endif
