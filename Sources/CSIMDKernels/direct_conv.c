/* The ISA-independent part of the direct convolution: how much scratch a call needs. */
#include "direct_conv.h"

ptrdiff_t keel_direct_conv_scratch_count(const keel_direct_conv *conv) {
    /* The window, then one 32-bit offset per tap. */
    return window_floats(conv) + conv->kernel_height * conv->kernel_width * conv->input_channels;
}
