#ifndef KEEL_DIRECT_CONV_H
#define KEEL_DIRECT_CONV_H
/* Direct convolution for layers with few input channels (an image network's first layer), where
 * the GEMM of the im2col path is only kernel-taps × channels deep (27 for 3×3 RGB) and OpenBLAS
 * spends more time packing than multiplying. Each output row is computed from a small window of
 * input rows held in scratch, with the filter streamed from L1 and the epilogue (bias, residual,
 * activation) applied before the single store of each output value. */

#include <stddef.h>

#include "keel_epilogue.h"

/* One convolution (one group). The output is NHWC when channels_last is 1, NCHW otherwise; the
 * input likewise by input_channels_last, which may differ: every input row is copied into the
 * kernel's own lines anyway, so reading a PyTorch graph's NCHW image straight into an NHWC
 * network costs nothing and saves the separate transpose. Output extents must be those the
 * input, kernel, strides, dilations and pads give. */
typedef struct {
    const float *input;
    /* [kernel_height·kernel_width·input_channels][output_channels], the reduction ordered
     * (kernel row, kernel column, input channel): the im2col GEMM's packed filter. */
    const float *weights;
    float *output;
    ptrdiff_t batch;
    ptrdiff_t input_height, input_width, input_channels;
    ptrdiff_t output_height, output_width, output_channels;
    ptrdiff_t kernel_height, kernel_width;
    ptrdiff_t stride_height, stride_width;
    ptrdiff_t dilation_height, dilation_width;
    ptrdiff_t pad_top, pad_left;
    int channels_last;
    int input_channels_last;
    /* Bias (output_channels values), residual (a tensor laid out as the output) and activation;
     * bias_per_row and residual_stride are not read. */
    keel_epilogue epilogue;
} keel_direct_conv;

/* Floats of scratch one concurrent keel_direct_conv_rows call needs. */
ptrdiff_t keel_direct_conv_scratch_count(const keel_direct_conv *conv);

/* Rows are counted over batch·output_height (row r is row r mod output_height of image
 * r / output_height). Every output value is summed in the same order whatever rows a call covers,
 * so splitting rows across threads does not change results. The entry point is
 * keel_kernels()->direct_conv_rows. */

#endif
