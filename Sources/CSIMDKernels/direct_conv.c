/* The ISA-independent part of the direct convolution: how much scratch a call needs. */
#include "direct_conv.h"

ptrdiff_t keel_direct_conv_scratch_count(const keel_direct_conv *conv) {
    ptrdiff_t planes = conv->kernel_height * conv->input_channels;
    ptrdiff_t count = planes * window_width(conv);
    if (conv->stride_width != 1) count += planes * conv->kernel_width * conv->output_width;
    return count;
}
