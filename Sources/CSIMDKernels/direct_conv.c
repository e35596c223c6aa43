/* The ISA-independent part of the direct convolution: how much scratch a call needs. */
#include "direct_conv.h"

ptrdiff_t keel_direct_conv_scratch_count(const keel_direct_conv *conv) {
    /* The row slots, one 32-bit offset per tap, then three 8-byte words per kernel row. */
    return slot_state_offset(conv) + 3 * conv->kernel_height * (ptrdiff_t)(sizeof(ptrdiff_t) / sizeof(float));
}
