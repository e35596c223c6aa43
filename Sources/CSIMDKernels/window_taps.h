#ifndef KEEL_WINDOW_TAPS_H
#define KEEL_WINDOW_TAPS_H
/* Where a sliding window meets the input's edges, shared by the pools and the convolutions that
 * skip their padding. */
#include <stddef.h>

/* The taps of one window (a pool's, or a convolution's kernel) along one axis that fall inside the
 * input: the first one's position, their count, and how many fall inside the padded input (the
 * count_include_pad divisor). */
typedef struct {
    ptrdiff_t first, count, padded;
} window_taps;

static inline ptrdiff_t window_min(ptrdiff_t a, ptrdiff_t b) { return a < b ? a : b; }

static inline window_taps window_taps_along(ptrdiff_t output, ptrdiff_t input, ptrdiff_t window, ptrdiff_t stride,
                                            ptrdiff_t dilation, ptrdiff_t pad_begin, ptrdiff_t pad_end) {
    const ptrdiff_t start = output * stride - pad_begin, last = input - 1 - start, room = input + pad_end - start;
    ptrdiff_t first_tap, end_tap, padded;
    if (dilation == 1) {
        first_tap = start < 0 ? -start : 0;
        end_tap = last < 0 ? 0 : window_min(window, last + 1);
        padded = room < 0 ? 0 : window_min(window, room);
    } else {
        first_tap = start >= 0 ? 0 : (dilation - 1 - start) / dilation;
        end_tap = last < 0 ? 0 : window_min(window, last / dilation + 1);
        padded = room <= 0 ? 0 : window_min(window, (room + dilation - 1) / dilation);
    }
    const ptrdiff_t count = end_tap > first_tap ? end_tap - first_tap : 0;
    return (window_taps){ start + first_tap * dilation, count, padded };
}

#endif
