/* The AMX bodies of the bf16 kernels: tdpbf16ps multiplies a 16×32 bf16 tile of im2col rows by a
 * 32×16 tile of the packed filter into a 16×16 fp32 accumulator tile. A 2×2 block of accumulators
 * (32 rows × 32 columns) uses 8 of the 8 tiles: two A tiles, two B tiles, four C tiles. Each call
 * configures the tiles for its own thread and releases them at the end. The im2col form reads A
 * from blocks of im2col rows; the direct form reads 16 adjacent output pixels' inputs straight
 * from a padded bf16 window of the input (a stride of one pixel's channels), tap by tap, which
 * saves building the rows (a ~15% gain on VGG16's layers, measured per layer). Every function carries
 * KEEL_AMX; cpu.c uses them only once Linux granted this process the tile state. */
#include "bf16.h"
#include "isa_entries.h"

#if KEEL_X86

/* The LDTILECFG operand: palette 1, then per tile its bytes per row and rows. */
struct tile_config {
    uint8_t palette, start_row, reserved[14];
    uint16_t bytes_per_row[16];
    uint8_t rows[16];
};

/* Tiles 0–3 accumulate 32 pixels × 32 columns; 4, 5 hold pixels, 6, 7 filter columns. */
static KEEL_AMX void configure(void) {
    struct tile_config config = { .palette = 1 };
    for (int t = 0; t < 8; t++) { config.bytes_per_row[t] = 64; config.rows[t] = 16; }
    _tile_loadconfig(&config);
}

KEEL_AMX void keel_amx_bf16_conv(const keel_bf16_conv *conv, ptrdiff_t first_pixel, ptrdiff_t pixel_count,
                                 ptrdiff_t first_column, ptrdiff_t column_count, void *scratch) {
    if (keel_bf16_vector_fits(conv)) {
        keel_avx512bf16_bf16_conv(conv, first_pixel, pixel_count, first_column, column_count, scratch);
        return;
    }
    const ptrdiff_t depth = keel_bf16_depth(conv), block_rows = keel_bf16_block_rows(depth);
    const ptrdiff_t columns = conv->output_channels, tiles = depth / 32, stride = depth * 2;
    const ptrdiff_t last_column = first_column + column_count < columns ? first_column + column_count : columns;
    /* Scratch: the im2col block, then the staging tile, 64-byte aligned, then a split input's row
     * buffer. */
    uint16_t *block = scratch;
    float *staging = (float *)((char *)scratch + ((block_rows * depth * 2 + 63) / 64) * 64);
    /* A bf16 input whose pixels are the im2col rows already (a 1×1, stride-1, unpadded layer or a
     * dense layer, channels filling whole 32-deep tiles) is read in place: only a ragged last
     * group of fewer than 32 rows is copied, zero-padded, into the block. */
    const int in_place = keel_bf16_reads_input_in_place(conv);
    configure();
    for (ptrdiff_t start = first_pixel; start < first_pixel + pixel_count; start += block_rows) {
        const ptrdiff_t rows = first_pixel + pixel_count - start < block_rows ? first_pixel + pixel_count - start : block_rows;
        const ptrdiff_t padded_rows = (rows + 31) / 32 * 32, direct_rows = in_place ? rows / 32 * 32 : 0;
        keel_avx512bf16_im2col(conv, start + direct_rows, rows - direct_rows, padded_rows - direct_rows, depth, block,
                               keel_bf16_split_row_buffer(conv, scratch));
        for (ptrdiff_t column = first_column; column < last_column; column += KEEL_BF16_COLUMN_BLOCK) {
            const uint16_t *b0 = keel_bf16_column_block(conv->weights, depth, column);
            const uint16_t *b1 = b0 + depth * 16;
            const __mmask16 low = keel_avx512_lanes(last_column - column), high = keel_avx512_lanes(last_column - column - 16);
            const float *bias = conv->bias ? conv->bias + column : NULL;
            for (ptrdiff_t row = 0; row < padded_rows; row += 32) {
                const uint16_t *a0 = row < direct_rows ? conv->bf16_input + (start + row) * depth
                                                       : block + (row - direct_rows) * depth;
                const uint16_t *a1 = a0 + 16 * depth;
                _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
                for (ptrdiff_t t = 0; t < tiles; t++) {
                    _tile_loadd(4, a0 + t * 32, stride);
                    _tile_loadd(5, a1 + t * 32, stride);
                    _tile_loadd(6, b0 + t * 512, 64);
                    _tile_loadd(7, b1 + t * 512, 64);
                    _tile_dpbf16ps(0, 4, 6);
                    _tile_dpbf16ps(1, 4, 7);
                    _tile_dpbf16ps(2, 5, 6);
                    _tile_dpbf16ps(3, 5, 7);
                }
                _tile_stored(0, staging, 128);
                _tile_stored(1, staging + 16, 128);
                _tile_stored(2, staging + 16 * 32, 128);
                _tile_stored(3, staging + 16 * 32 + 16, 128);
                const ptrdiff_t live = rows - row < 32 ? rows - row : 32, at = (start + row) * columns + column;
                keel_avx512bf16_finish(conv, staging, live, bias, at, low, high);
            }
        }
    }
    _tile_release();
}

/* Tiles 0, 1 += a0 × (b0, b1) and, when a1 is set, tiles 2, 3 += a1 × (b0, b1), over every tap
 * and 32-channel chunk: a0 and a1 are 16 adjacent pixels of the padded copy (one pixel's channels
 * apart), b0 and b1 two 16-column blocks of the packed filter. */
KEEL_INLINE KEEL_AMX void accumulate(const keel_bf16_conv *conv, const uint16_t *a0, const uint16_t *a1,
                                     const uint16_t *b0, const uint16_t *b1) {
    const ptrdiff_t channels = conv->input_channels, chunks = channels / 32, pixel_stride = channels * 2;
    const ptrdiff_t row_step = keel_bf16_padded_width(conv) * channels;
    _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
    for (ptrdiff_t ky = 0; ky < conv->kernel_height; ky++) {
        for (ptrdiff_t kx = 0; kx < conv->kernel_width; kx++) {
            const ptrdiff_t tap = ky * row_step + kx * channels;
            for (ptrdiff_t chunk = 0; chunk < chunks; chunk++, b0 += 512, b1 += 512) {
                _tile_loadd(4, a0 + tap + chunk * 32, pixel_stride);
                _tile_loadd(6, b0, 64);
                _tile_loadd(7, b1, 64);
                _tile_dpbf16ps(0, 4, 6);
                _tile_dpbf16ps(1, 4, 7);
                if (a1) {
                    _tile_loadd(5, a1 + tap + chunk * 32, pixel_stride);
                    _tile_dpbf16ps(2, 5, 6);
                    _tile_dpbf16ps(3, 5, 7);
                }
            }
        }
    }
}

/* Tiles 0–3 to the [32][32] staging block: rows 0–15 from a0's pixels, 16–31 from a1's. */
KEEL_INLINE KEEL_AMX void stage(float *staging) {
    _tile_stored(0, staging, 128);
    _tile_stored(1, staging + 16, 128);
    _tile_stored(2, staging + 16 * 32, 128);
    _tile_stored(3, staging + 16 * 32 + 16, 128);
}

/* Pooled pixels 0 ..< count from a staging block whose rows 0–15 are 16 pixels of one output row
 * and 16–31 the same pixels of the next: the 2×2 maximum (NaN kept), then bias and ReLU (a pooled
 * layer's activation is none or ReLU, which commute with the maximum). */
static KEEL_AMX void finish_pooled(const keel_bf16_conv *conv, const float *staging, ptrdiff_t count,
                                   const float *bias, ptrdiff_t at, __mmask16 low, __mmask16 high) {
    const ptrdiff_t ldc = conv->output_channels;
    const int clamp = keel_bf16_clamps(conv);
    const __m512 lower = keel_bf16_lower(conv), upper = keel_bf16_upper(conv);
    const __m512 bias0 = bias ? _mm512_maskz_loadu_ps(low, bias) : _mm512_setzero_ps();
    const __m512 bias1 = bias ? _mm512_maskz_loadu_ps(high, bias + 16) : _mm512_setzero_ps();
    for (ptrdiff_t j = 0; j < count; j++) {
        const float *top = staging + 2 * j * 32, *bottom = top + 16 * 32;
        __m512 x0 = keel_avx512_max_nan(keel_avx512_max_nan(_mm512_load_ps(top), _mm512_load_ps(top + 32)),
                                        keel_avx512_max_nan(_mm512_load_ps(bottom), _mm512_load_ps(bottom + 32)));
        __m512 x1 = keel_avx512_max_nan(keel_avx512_max_nan(_mm512_load_ps(top + 16), _mm512_load_ps(top + 48)),
                                        keel_avx512_max_nan(_mm512_load_ps(bottom + 16), _mm512_load_ps(bottom + 48)));
        x0 = _mm512_add_ps(x0, bias0);
        x1 = _mm512_add_ps(x1, bias1);
        if (clamp) keel_bf16_clamp(&x0, &x1, lower, upper);
        keel_bf16_store(conv, at + j * ldc, x0, x1, low, high);
    }
}

/* The padded input row (counted over the batch) where output row `row` (of keel_bf16_direct_rows)
 * starts reading: images are padded_height rows apart, an image's output rows `span` apart. */
KEEL_INLINE ptrdiff_t first_padded_row(ptrdiff_t row, ptrdiff_t image_rows, ptrdiff_t padded_height, ptrdiff_t span) {
    return (row / image_rows) * padded_height + (row % image_rows) * span;
}

/* Output rows go in windows of whole rows: their input rows are rounded (or copied, when bf16)
 * into a padded bf16 window in scratch, then every column block passes over it. A window may span
 * images (the padded rows between them come along), so at batch 8 a deep 14×14 layer streams its
 * filter once per window of three images, not once per image. Within a window the work
 * is a sequence of 16-pixel units, row-major output rows split in runs of 16; the units go through
 * the tiles two at a time, so a pair may join the end of one row to the start of the next (a
 * 14-pixel row pairs with the next row instead of leaving half the tiles idle). Pooled, a pair is
 * the same 16 pixels of two adjacent output rows, reduced in the epilogue. */
KEEL_AMX void keel_amx_bf16_conv_direct(const keel_bf16_conv *conv, ptrdiff_t first_row, ptrdiff_t row_count,
                                        ptrdiff_t first_column, ptrdiff_t column_count, void *scratch) {
    const ptrdiff_t depth = keel_bf16_depth(conv), columns = conv->output_channels, channels = conv->input_channels;
    const ptrdiff_t last_column = first_column + column_count < columns ? first_column + column_count : columns;
    const ptrdiff_t height = conv->output_height, width = conv->output_width;
    const ptrdiff_t padded_height = keel_bf16_padded_height(conv), padded_width = keel_bf16_padded_width(conv);
    const ptrdiff_t segments = (width + 15) / 16, row_step = padded_width * channels;
    const int pool = conv->pool;
    const ptrdiff_t span = pool ? 2 : 1, image_rows = height / span, pooled_width = width / 2;
    /* Padded input rows one output row reads, and those a window holds. */
    const ptrdiff_t reach = span + conv->kernel_height - 1, window_height = keel_bf16_window_height(conv);
    uint16_t *window = scratch;
    float *staging = (float *)((char *)scratch + keel_bf16_direct_scratch_bytes(conv) - KEEL_BF16_STAGING_BYTES);
    configure();
    for (ptrdiff_t start = first_row, end; start < first_row + row_count; start = end) {
        /* Output rows start ..< end: as many as the window's padded rows hold (at least one). */
        const ptrdiff_t base = first_padded_row(start, image_rows, padded_height, span);
        for (end = start + 1; end < first_row + row_count
                              && first_padded_row(end, image_rows, padded_height, span) - base + reach <= window_height;)
            end++;
        keel_avx512bf16_pad_rows(conv, base, first_padded_row(end - 1, image_rows, padded_height, span) - base + reach,
                                 window);
        for (ptrdiff_t column = first_column; column < last_column; column += KEEL_BF16_COLUMN_BLOCK) {
            const uint16_t *b0 = keel_bf16_column_block(conv->weights, depth, column);
            const uint16_t *b1 = b0 + depth * 16;
            const __mmask16 low = keel_avx512_lanes(last_column - column), high = keel_avx512_lanes(last_column - column - 16);
            const float *bias = conv->bias ? conv->bias + column : NULL;
            if (pool) {
                for (ptrdiff_t row = start; row < end; row++) {
                    const uint16_t *upper = window
                        + (first_padded_row(row, image_rows, padded_height, span) - base) * row_step;
                    const ptrdiff_t out = (row * pooled_width) * columns + column;
                    for (ptrdiff_t x = 0; x / 2 < pooled_width; x += 16) {
                        accumulate(conv, upper + x * channels, upper + row_step + x * channels, b0, b1);
                        stage(staging);
                        const ptrdiff_t count = pooled_width - x / 2 < 8 ? pooled_width - x / 2 : 8;
                        finish_pooled(conv, staging, count, bias, out + (x / 2) * columns, low, high);
                    }
                }
                continue;
            }
            const ptrdiff_t units = (end - start) * segments;
            for (ptrdiff_t unit = 0; unit < units; unit += 2) {
                const ptrdiff_t y0 = unit / segments, x0 = (unit % segments) * 16;
                const ptrdiff_t y1 = (unit + 1) / segments, x1 = ((unit + 1) % segments) * 16;
                const int pair = unit + 1 < units;
                const uint16_t *a0 = window + (first_padded_row(start + y0, image_rows, padded_height, span) - base) * row_step;
                const uint16_t *a1 = window + (first_padded_row(start + y1, image_rows, padded_height, span) - base) * row_step;
                accumulate(conv, a0 + x0 * channels, pair ? a1 + x1 * channels : NULL, b0, b1);
                stage(staging);
                const ptrdiff_t at0 = ((start + y0) * width + x0) * columns + column;
                const ptrdiff_t at1 = ((start + y1) * width + x1) * columns + column;
                keel_avx512bf16_finish(conv, staging, width - x0 < 16 ? width - x0 : 16, bias, at0, low, high);
                if (pair)
                    keel_avx512bf16_finish(conv, staging + 16 * 32, width - x1 < 16 ? width - x1 : 16, bias, at1, low,
                                           high);
            }
        }
    }
    _tile_release();
}

#endif
