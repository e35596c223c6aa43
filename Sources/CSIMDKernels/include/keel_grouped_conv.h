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
    /* Blocks of keel_grouped_block_channels(group_channels) channels (the last one may be
     * shorter), each [kernel_height·kernel_width][group_channels][its channels]: for tap t, output
     * channel c in the block that starts at b and is `width` wide, and input channel j of c's
     * group, the weight is weights[b·taps·group_channels + (t·group_channels + j)·width + c − b]. */
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

/* Channels per block of the filter: one group when it fills vectors of its own (16 and more, or
 * a width that does not divide 32), else 32 channels of several groups, which the bodies that put
 * several groups in one vector read together. A block's weights are contiguous: in one laid out
 * as [taps][j][all channels], the vectors a group reads sat one row of channels apart, 2–4 KB in
 * ResNeXt's last stages, all in the same few cache sets (7×7×1024 in 32 groups ran at 26 GFLOP/s
 * on one Zen 4 core, 98 in blocks; 14×14×512 in 16-channel groups 49 → 91). */
static inline ptrdiff_t keel_grouped_block_channels(ptrdiff_t group_channels) {
    return group_channels >= 16 || group_channels <= 0 || 32 % group_channels != 0 ? group_channels : 32;
}

/* Units of work a call covers: output rows (batch·output_height) times channel blocks. */
ptrdiff_t keel_grouped_conv_work_count(const keel_grouped_conv *conv);

#endif
