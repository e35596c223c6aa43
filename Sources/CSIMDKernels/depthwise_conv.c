/* The ISA-independent part of the depthwise convolution: how work splits and how much scratch a
 * call needs. */
#include "depthwise_conv.h"

ptrdiff_t keel_depthwise_conv_work_count(const keel_depthwise_conv *conv) {
    return conv->channels_last ? conv->batch * row_units_of(conv) * channel_blocks(conv)
                               : conv->batch * conv->channels;
}

int keel_depthwise_conv_runs_bf16(const keel_depthwise_conv *conv) {
    return conv->channels_last && holds_filter(conv);
}

ptrdiff_t keel_depthwise_conv_scratch_count(const keel_depthwise_conv *conv) {
    if (conv->channels_last) return 0;
    return needed_rows(conv) * conv->stride_width * phase_width(conv);
}
