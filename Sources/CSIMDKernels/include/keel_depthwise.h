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
    /* 1: `input` (or `output`) holds bf16 values laid out alike, two per float slot: a bf16 plan's
     * activations between bf16 layers. The input is widened exactly; the output is rounded to
     * nearest even after the epilogue. Only the kernel table's depthwise_conv_bf16 runs such a
     * call, and only where keel_depthwise_conv_runs_bf16. */
    int bf16_input, bf16_output;
} keel_depthwise_conv;

/* Units of work a call covers: output rows (batch·output_height) in NHWC, channel planes
 * (batch·channels) in NCHW. */
ptrdiff_t keel_depthwise_conv_work_count(const keel_depthwise_conv *conv);

/* Whether depthwise_conv_bf16 runs this geometry: NHWC, the held-filter body's square 3×3 and 5×5
 * filters at equal strides of 1 or 2, undilated (MobileNet's, EfficientNet's, Xception's layers). */
int keel_depthwise_conv_runs_bf16(const keel_depthwise_conv *conv);

/* Floats of scratch one concurrent call of the kernel table's depthwise_conv needs. */
ptrdiff_t keel_depthwise_conv_scratch_count(const keel_depthwise_conv *conv);

#endif
