#ifndef KEEL_GROUPED_CONV_H
#define KEEL_GROUPED_CONV_H
/* Grouped convolution with as many output as input channels per group (ResNeXt, RegNet): each
 * output channel reads only its group's few input channels. As im2col + a GEMM per group that is
 * a 9·group-channels-deep product per group after copying the input nine times; here it is a
 * direct NHWC loop over the taps with every output vector in registers until its one store
 * (bias, residual, activation applied). */

#include <stddef.h>

#include "keel_epilogue.h"

typedef struct {
    /* NHWC activations, channels = groups · group_channels in and out. */
    const float *input;
    /* [kernel_height·kernel_width][group_channels][channels]: for tap t, output channel c and
     * input channel j of c's group, the weight is weights[(t·group_channels + j)·channels + c]. */
    const float *weights;
    float *output;
    ptrdiff_t batch, channels, group_channels;
    ptrdiff_t input_height, input_width, output_height, output_width;
    ptrdiff_t kernel_height, kernel_width;
    ptrdiff_t stride_height, stride_width;
    ptrdiff_t dilation_height, dilation_width;
    ptrdiff_t pad_top, pad_left;
    /* Bias per channel; a residual has the output's extents (residual_stride unused). */
    keel_epilogue epilogue;
} keel_grouped_conv;

/* Units of work a call covers: output rows (batch·output_height) times channel blocks. */
ptrdiff_t keel_grouped_conv_work_count(const keel_grouped_conv *conv);

#endif
