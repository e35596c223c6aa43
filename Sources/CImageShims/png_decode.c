#include "keel_image_decode.h"
#include "limits_check.h"

#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const uint8_t *data;
    size_t size;
    size_t offset;
    KeelDecodedImage *out;
} MemorySource;

static void read_from_memory(png_structp png, png_bytep destination, size_t length) {
    MemorySource *source = png_get_io_ptr(png);
    if (length > source->size - source->offset) {
        png_error(png, "the file ends early (truncated)");
    }
    memcpy(destination, source->data + source->offset, length);
    source->offset += length;
}

static void on_error(png_structp png, png_const_charp message) {
    MemorySource *source = png_get_error_ptr(png);
    snprintf(source->out->message, sizeof source->out->message, "%s", message);
    png_longjmp(png, 1);
}

/// Warnings (bad ancillary chunks, sRGB profile mismatches) do not stop Pillow either.
static void on_warning(png_structp png, png_const_charp message) {
    (void)png;
    (void)message;
}

KeelImageStatus keel_decode_png(const uint8_t *data, size_t size, uint32_t max_side,
                                uint64_t max_pixels, KeelDecodedImage *out) {
    memset(out, 0, sizeof *out);
    MemorySource source = {data, size, 0, out};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &source, on_error, on_warning);
    if (png == NULL) return KEEL_IMAGE_OUT_OF_MEMORY;
    png_infop info = png_create_info_struct(png);
    if (info == NULL) {
        png_destroy_read_struct(&png, NULL, NULL);
        return KEEL_IMAGE_OUT_OF_MEMORY;
    }
    // Assigned after setjmp and read after a jump, hence volatile.
    uint8_t *volatile pixels = NULL;
    png_bytep *volatile rows = NULL;
    if (setjmp(png_jmpbuf(png))) {
        free(pixels);
        free(rows);
        png_destroy_read_struct(&png, &info, NULL);
        return KEEL_IMAGE_CORRUPT;
    }
    png_set_read_fn(png, &source, read_from_memory);
    // Our own limit applies below, with a message naming the size, instead of libpng's.
    png_set_user_limits(png, PNG_UINT_31_MAX, PNG_UINT_31_MAX);
    png_read_info(png, info);

    png_uint_32 width = 0, height = 0;
    int bit_depth = 0, color_type = 0;
    png_get_IHDR(png, info, &width, &height, &bit_depth, &color_type, NULL, NULL, NULL);
    out->width = width;
    out->height = height;
    if (!keel_image_size_allowed(width, height, max_side, max_pixels)) {
        png_destroy_read_struct(&png, &info, NULL);
        return KEEL_IMAGE_TOO_LARGE;
    }

    if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (bit_depth == 16) png_set_strip_16(png);
    // Palette expansion also turns tRNS into an alpha channel; it goes with the file's own alpha.
    if ((color_type & PNG_COLOR_MASK_ALPHA) || png_get_valid(png, info, PNG_INFO_tRNS)) png_set_strip_alpha(png);
    if (color_type == PNG_COLOR_TYPE_GRAY || color_type == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);

    size_t row_bytes = (size_t)width * 3;
    if (png_get_rowbytes(png, info) != row_bytes) {
        png_error(png, "unexpected row layout after conversion to RGB");
    }
    pixels = malloc(row_bytes * height);
    rows = malloc(sizeof(png_bytep) * height);
    if (pixels == NULL || rows == NULL) {
        free(pixels);
        free(rows);
        png_destroy_read_struct(&png, &info, NULL);
        return KEEL_IMAGE_OUT_OF_MEMORY;
    }
    for (png_uint_32 y = 0; y < height; y++) rows[y] = pixels + row_bytes * y;
    png_read_image(png, rows);
    // No png_read_end: like Pillow, data after the last row (or a missing IEND) is not checked.
    free(rows);
    png_destroy_read_struct(&png, &info, NULL);
    out->pixels = pixels;
    return KEEL_IMAGE_OK;
}
