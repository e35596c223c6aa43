// Decoding PNG and JPEG from memory into 8-bit RGB. libpng and libjpeg report errors by
// longjmp, which cannot cross Swift frames, so every jump starts and ends in this C code.
#ifndef KEEL_IMAGE_DECODE_H
#define KEEL_IMAGE_DECODE_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    KEEL_IMAGE_OK = 0,
    /// The data is not a well-formed image; `message` says why.
    KEEL_IMAGE_CORRUPT = 1,
    /// The header declares more pixels than allowed; `width` and `height` hold the declared size.
    KEEL_IMAGE_TOO_LARGE = 2,
    /// A well-formed image this decoder does not convert to RGB; `message` says what.
    KEEL_IMAGE_UNSUPPORTED = 3,
    KEEL_IMAGE_OUT_OF_MEMORY = 4,
} KeelImageStatus;

typedef struct {
    /// width * height * 3 bytes, RGB, rows top to bottom; owned by the caller once decoding
    /// succeeds and released with keel_image_release.
    uint8_t *pixels;
    uint32_t width;
    uint32_t height;
    char message[256];
} KeelDecodedImage;

/// Pixels as Pillow's `Image.open(f).convert("RGB")` gives them: palette and grey expanded,
/// alpha dropped (not composited), 16-bit samples reduced to their high byte, gamma and ICC
/// chunks ignored. The size limit is checked on the header, before any pixel memory exists.
KeelImageStatus keel_decode_png(const uint8_t *data, size_t size, uint32_t max_side,
                                uint64_t max_pixels, KeelDecodedImage *out);

/// Baseline and progressive JPEG, greyscale or YCbCr, with libjpeg's default (accurate integer)
/// IDCT and fancy upsampling, as Pillow decodes. Data ending before the last scanline is an error.
KeelImageStatus keel_decode_jpeg(const uint8_t *data, size_t size, uint32_t max_side,
                                 uint64_t max_pixels, KeelDecodedImage *out);

void keel_image_release(KeelDecodedImage *image);

#endif
