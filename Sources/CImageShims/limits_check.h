#ifndef KEEL_LIMITS_CHECK_H
#define KEEL_LIMITS_CHECK_H

#include <stdint.h>

/// Both decoders refuse a header's size with this one rule, before allocating pixels.
static inline int keel_image_size_allowed(uint32_t width, uint32_t height, uint32_t max_side,
                                          uint64_t max_pixels) {
    if (width == 0 || height == 0) return 1;  // the decoder itself reports an empty image
    if (width > max_side || height > max_side) return 0;
    return (uint64_t)width * (uint64_t)height <= max_pixels;
}

#endif
