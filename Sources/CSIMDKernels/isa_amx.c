/* The AMX bodies of the bf16 kernels: tdpbf16ps multiplies a 16×32 bf16 tile of im2col rows by a
 * 32×16 tile of the packed filter into a 16×16 fp32 accumulator tile. A 2×2 block of accumulators
 * (32 rows × 32 columns) uses 8 of the 8 tiles: two A tiles, two B tiles, four C tiles. Each call
 * configures the tiles for its own thread and releases them at the end. Every function carries
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

/* The staged 32×32 fp32 block plus bias, then ReLU, stored for `rows` rows within the masks. */
static KEEL_AMX void finish(const float *staging, ptrdiff_t rows, const float *bias, int relu, float *out,
                            ptrdiff_t ldc, __mmask16 low, __mmask16 high) {
    __m512 bias0 = bias ? _mm512_maskz_loadu_ps(low, bias) : _mm512_setzero_ps();
    __m512 bias1 = bias ? _mm512_maskz_loadu_ps(high, bias + 16) : _mm512_setzero_ps();
    for (ptrdiff_t r = 0; r < rows; r++) {
        __m512 x0 = _mm512_add_ps(_mm512_load_ps(staging + r * 32), bias0);
        __m512 x1 = _mm512_add_ps(_mm512_load_ps(staging + r * 32 + 16), bias1);
        if (relu) { x0 = _mm512_max_ps(x0, _mm512_setzero_ps()); x1 = _mm512_max_ps(x1, _mm512_setzero_ps()); }
        _mm512_mask_storeu_ps(out + r * ldc, low, x0);
        _mm512_mask_storeu_ps(out + r * ldc + 16, high, x1);
    }
}

KEEL_AMX void keel_amx_bf16_conv(const keel_bf16_conv *conv, ptrdiff_t first_pixel, ptrdiff_t pixel_count,
                                 ptrdiff_t first_column, ptrdiff_t column_count, void *scratch) {
    const ptrdiff_t depth = keel_bf16_depth(conv), block_rows = keel_bf16_block_rows(depth);
    const ptrdiff_t columns = conv->output_channels, tiles = depth / 32, stride = depth * 2;
    const ptrdiff_t last_column = first_column + column_count < columns ? first_column + column_count : columns;
    /* Scratch: the im2col block, then the staging tile, 64-byte aligned. */
    uint16_t *block = scratch;
    float *staging = (float *)((char *)scratch + ((block_rows * depth * 2 + 63) / 64) * 64);
    struct tile_config config = { .palette = 1 };
    for (int t = 0; t < 8; t++) { config.bytes_per_row[t] = 64; config.rows[t] = 16; }
    _tile_loadconfig(&config);
    for (ptrdiff_t start = first_pixel; start < first_pixel + pixel_count; start += block_rows) {
        const ptrdiff_t rows = first_pixel + pixel_count - start < block_rows ? first_pixel + pixel_count - start : block_rows;
        const ptrdiff_t padded_rows = (rows + 31) / 32 * 32;
        keel_avx512bf16_im2col(conv, start, rows, padded_rows, depth, block);
        for (ptrdiff_t column = first_column; column < last_column; column += KEEL_BF16_COLUMN_BLOCK) {
            const uint16_t *b0 = keel_bf16_column_block(conv->weights, depth, column);
            const uint16_t *b1 = b0 + depth * 16;
            const __mmask16 low = keel_avx512_lanes(last_column - column), high = keel_avx512_lanes(last_column - column - 16);
            const float *bias = conv->bias ? conv->bias + column : NULL;
            for (ptrdiff_t row = 0; row < padded_rows; row += 32) {
                const uint16_t *a0 = block + row * depth, *a1 = a0 + 16 * depth;
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
                const ptrdiff_t live = rows - row < 32 ? rows - row : 32;
                finish(staging, live, bias, conv->relu, conv->output + (start + row) * columns + column, columns,
                       low, high);
            }
        }
    }
    _tile_release();
}

#endif
