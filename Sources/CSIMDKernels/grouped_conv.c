/* The ISA-independent part of the grouped convolution: how work splits. */
#include "grouped_conv.h"

ptrdiff_t keel_grouped_conv_work_count(const keel_grouped_conv *conv) {
    return conv->batch * conv->output_height * grouped_blocks(conv);
}
