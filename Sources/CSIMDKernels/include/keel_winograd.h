#ifndef KEEL_WINOGRAD_H
#define KEEL_WINOGRAD_H
/* The per-tile input and output transforms of Winograd F(4×4, 3×3), vectorised over channels
 * (channels are contiguous in the patches, the transformed matrices and the outputs). */

#include <stddef.h>

/* Bᵀ d B for one 6×6 tile: element (r, s) of channel c at source[r·row_stride + s·channels + c];
 * point p (= 6·row + column) of channel c goes to destination[p·point_stride + c].
 * Returns 0 and writes nothing when no SIMD level is in use. */
int keel_winograd_input_tile(const float *source, ptrdiff_t row_stride, ptrdiff_t channels,
                             float *destination, ptrdiff_t point_stride);

/* Aᵀ M A + bias, then max(·, 0) when `relu`, for one tile: the 36 products of channel c at
 * products[p·point_stride + c]; output (r, s) of channel c goes to
 * destination[r·row_stride + s·column_stride + c] for r < rows and s < columns (edge tiles
 * write only the pixels inside the image). With `pool`, each 2×2 block of those outputs is
 * max-pooled first: pooled pixel (i, j) goes to destination[i·row_stride + j·column_stride + c]
 * for i < rows/2 and j < columns/2 (an odd last row or column is dropped, as a floor-mode pool
 * does). `bias` may be NULL. Returns 0 and writes nothing when no SIMD level is in use. */
int keel_winograd_output_tile(const float *products, ptrdiff_t point_stride, ptrdiff_t channels,
                              const float *bias, int relu, int pool, float *destination,
                              ptrdiff_t row_stride, ptrdiff_t column_stride, int rows, int columns);

#endif
