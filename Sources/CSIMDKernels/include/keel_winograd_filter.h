#ifndef KEEL_WINOGRAD_FILTER_H
#define KEEL_WINOGRAD_FILTER_H
/* The Winograd F(4×4, 3×3) filter transform U = G·g·Gᵀ, run once per model over every 3×3 filter.
 * Vectorised across output channels (16 at a time with AVX-512, 8 with AVX2); computed in double
 * precision and rounded once to float. Chosen at run time like the other kernels (keel_simd.h). */

#include <stddef.h>

/* Tap t = row·3 + column of the filter from input channel c to output channel o is
 * source[o·output_stride + c·channel_stride + t·tap_stride]. For input channels
 * channel_begin..<channel_end and every output channel, transform point p (0..<36) goes to
 * destination[p·point_stride + (o / 32)·inputs·32 + c·32 + o % 32]: each point's [inputs, outputs]
 * matrix in the 32-column panels keel_sgemm_packed_b reads (padding columns are left alone).
 * Returns 0 and writes nothing when no SIMD level is in use (the caller transforms another way). */
int keel_winograd_filter_transform(const float *source, ptrdiff_t inputs, ptrdiff_t outputs,
                                   ptrdiff_t output_stride, ptrdiff_t channel_stride, ptrdiff_t tap_stride,
                                   ptrdiff_t channel_begin, ptrdiff_t channel_end,
                                   float *destination, ptrdiff_t point_stride);

#endif
