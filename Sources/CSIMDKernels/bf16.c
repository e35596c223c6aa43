/* The ISA-independent part of the bf16 kernels: rounding, filter packing and scratch sizes. */
#include "bf16.h"
#include "keel_worker_pool.h"

#include <string.h>

static uint16_t to_bf16(float x) {
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    /* NaN: keep it a (quiet) NaN; rounding could carry it into infinity. */
    if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((bits >> 16) | 0x0040u);
    bits += 0x7FFFu + ((bits >> 16) & 1u);
    return (uint16_t)(bits >> 16);
}

float keel_bf16_round(float x) {
    uint32_t bits = (uint32_t)to_bf16(x) << 16;
    float rounded;
    memcpy(&rounded, &bits, sizeof rounded);
    return rounded;
}

ptrdiff_t keel_bf16_packed_count(ptrdiff_t depth, ptrdiff_t columns) {
    ptrdiff_t padded_depth = (depth + KEEL_BF16_DEPTH_BLOCK - 1) / KEEL_BF16_DEPTH_BLOCK * KEEL_BF16_DEPTH_BLOCK;
    ptrdiff_t padded_columns = (columns + KEEL_BF16_COLUMN_BLOCK - 1) / KEEL_BF16_COLUMN_BLOCK * KEEL_BF16_COLUMN_BLOCK;
    return padded_depth * padded_columns;
}

void keel_bf16_pack(const float *source, ptrdiff_t depth, ptrdiff_t columns, ptrdiff_t depth_stride,
                    ptrdiff_t column_stride, uint16_t *packed) {
    ptrdiff_t padded_depth = (depth + KEEL_BF16_DEPTH_BLOCK - 1) / KEEL_BF16_DEPTH_BLOCK * KEEL_BF16_DEPTH_BLOCK;
    ptrdiff_t padded_columns = (columns + KEEL_BF16_COLUMN_BLOCK - 1) / KEEL_BF16_COLUMN_BLOCK * KEEL_BF16_COLUMN_BLOCK;
    for (ptrdiff_t n = 0; n < padded_columns; n++) {
        uint16_t *block = packed + (n / 16) * padded_depth * 16;
        for (ptrdiff_t k = 0; k < padded_depth; k++) {
            uint16_t value = k < depth && n < columns ? to_bf16(source[k * depth_stride + n * column_stride]) : 0;
            block[(k / 32) * 512 + ((k % 32) / 2) * 32 + (n % 16) * 2 + (k % 2)] = value;
        }
    }
}

ptrdiff_t keel_bf16_conv_scratch_bytes(const keel_bf16_conv *conv) {
    ptrdiff_t depth = keel_bf16_depth(conv);
    return keel_bf16_block_rows(depth) * depth * 2 + KEEL_BF16_STAGING_BYTES + 64 + keel_bf16_split_row_elements(conv) * 2;
}

int keel_bf16_direct_fits(const keel_bf16_conv *conv) {
    /* Rows are computed in whole 16-pixel tiles: a narrow image (ResNet's 7×7, a dense layer's
     * 1×1) would waste most of each, where im2col packs pixels of several rows into one tile. An
     * expanding 1×1 layer of at most 64 input channels (ResNet50's 56×56 64→256 layers) goes to
     * im2col too: its rows are the input pixels themselves, read in place when bf16, and each block
     * of at most 512 rows writes an output small enough for L2 while the column blocks pass over it.
     * Those layers' per-layer minima at batch 8 fell by 0.2–1.7 ms each (of 2–4.4); other 1×1
     * layers (deeper, or not expanding) did not gain, measured. */
    const ptrdiff_t computed = (conv->output_width + 15) / 16 * 16;
    const int shallow_expanding = conv->kernel_height == 1 && conv->kernel_width == 1 && conv->pad_top == 0
        && conv->pad_left == 0 && conv->input_channels <= 64 && conv->output_channels >= 4 * conv->input_channels;
    return !conv->split_input && !shallow_expanding && conv->stride_height == 1 && conv->stride_width == 1
        && conv->dilation_height == 1 && conv->dilation_width == 1 && conv->input_channels % 32 == 0 && conv->input_channels > 0
        && 4 * conv->output_width >= 3 * computed;
}

int keel_bf16_vector_fits(const keel_bf16_conv *conv) {
    return conv->batch * conv->output_height * conv->output_width <= KEEL_BF16_VECTOR_PIXELS;
}

ptrdiff_t keel_bf16_direct_rows(const keel_bf16_conv *conv) {
    return conv->batch * (conv->pool ? conv->output_height / 2 : conv->output_height);
}

ptrdiff_t keel_bf16_direct_scratch_bytes(const keel_bf16_conv *conv) {
    const ptrdiff_t window = keel_bf16_window_height(conv) * keel_bf16_padded_width(conv) * conv->input_channels * 2;
    return (window + 63) / 64 * 64 + KEEL_BF16_STAGING_BYTES;
}

/* One keel_bf16_run_units call: units are row parts × column parts, row part major, each
 * participant with its own slot of scratch. */
typedef struct {
    const keel_bf16_conv *conv;
    keel_bf16_conv_fn kernel;
    ptrdiff_t total_rows, row_step, steps, row_parts, blocks, column_parts, slot_bytes;
    char *scratch;
} unit_job;

static void run_unit(void *context, ptrdiff_t unit, ptrdiff_t slot) {
    const unit_job *job = context;
    const ptrdiff_t part = unit / job->column_parts, column_part = unit % job->column_parts;
    const ptrdiff_t first = job->steps * part / job->row_parts * job->row_step;
    ptrdiff_t end = job->steps * (part + 1) / job->row_parts * job->row_step;
    if (end > job->total_rows) end = job->total_rows;
    const ptrdiff_t first_block = job->blocks * column_part / job->column_parts;
    const ptrdiff_t end_block = job->blocks * (column_part + 1) / job->column_parts;
    if (end <= first || end_block <= first_block) return;
    job->kernel(job->conv, first, end - first, first_block * KEEL_BF16_COLUMN_BLOCK,
                (end_block - first_block) * KEEL_BF16_COLUMN_BLOCK, job->scratch + slot * job->slot_bytes);
}

void keel_bf16_run_units(const keel_bf16_conv *conv, keel_bf16_conv_fn kernel, ptrdiff_t total_rows,
                         ptrdiff_t row_step, ptrdiff_t row_parts, ptrdiff_t column_parts, void *scratch,
                         ptrdiff_t slot_bytes, ptrdiff_t threads) {
    const ptrdiff_t blocks = (conv->output_channels + KEEL_BF16_COLUMN_BLOCK - 1) / KEEL_BF16_COLUMN_BLOCK;
    const ptrdiff_t steps = (total_rows + row_step - 1) / row_step;
    if (steps <= 0 || blocks <= 0) return;
    unit_job job = {
        .conv = conv, .kernel = kernel, .total_rows = total_rows, .row_step = row_step, .steps = steps,
        .row_parts = row_parts < 1 ? 1 : row_parts > steps ? steps : row_parts, .blocks = blocks,
        .column_parts = column_parts < 1 ? 1 : column_parts > blocks ? blocks : column_parts,
        .slot_bytes = slot_bytes, .scratch = scratch,
    };
    /* Each participant needs its own scratch slot: at most `threads` (and 64) of them. */
    keel_pool_run_units(job.row_parts * job.column_parts, threads < 1 ? 1 : threads > 64 ? 64 : threads, run_unit,
                        &job);
}
