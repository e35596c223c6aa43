#ifndef KEEL_DEPTHWISE_H
#define KEEL_DEPTHWISE_H
/* Depthwise convolution (groups = input channels = output channels): every output channel is one
 * input channel convolved with its own kh×kw filter. As a GEMM that is one tiny product per
 * channel; here it is a direct loop, bandwidth-bound, with bias, residual and activation applied
 * before the one store of each output value. */

#include <stddef.h>

#include "keel_epilogue.h"

typedef struct {
    const float *input;
    /* NHWC: [kernel_height·kernel_width][channels] (channels adjacent, as the kernel vectorises
     * over them); NCHW: [channels][kernel_height·kernel_width]. */
    const float *weights;
    float *output;
    ptrdiff_t batch, channels;
    ptrdiff_t input_height, input_width, output_height, output_width;
    ptrdiff_t kernel_height, kernel_width;
    ptrdiff_t stride_height, stride_width;
    ptrdiff_t dilation_height, dilation_width;
    ptrdiff_t pad_top, pad_left;
    int channels_last;
    /* Bias per channel; a residual has the output's layout and extents (residual_stride unused). */
    keel_epilogue epilogue;
} keel_depthwise_conv;

/* Units of work a call covers: output rows (batch·output_height) in NHWC, channel planes
 * (batch·channels) in NCHW. */
ptrdiff_t keel_depthwise_conv_work_count(const keel_depthwise_conv *conv);

/* Floats of scratch one concurrent call of the kernel table's depthwise_conv needs. */
ptrdiff_t keel_depthwise_conv_scratch_count(const keel_depthwise_conv *conv);

#endif
