/* Times the kernel table's NHWC depthwise convolution on one thread over MobileNet/MNASNet/
 * EfficientNet layer shapes (batch 1, "same" padding, bias and ReLU6 fused): best of 7 repetitions
 * of `seconds` each, input and output warm in cache as in a model whose previous layer just wrote
 * them. KEEL_SIMD=avx2 times the AVX2 body on an AVX-512 machine; DEPTHWISE_BENCH_SWISH=1 fuses swish
 * instead of ReLU6 (EfficientNet's layers). Usage: depthwise_bench [shape filter] [seconds]. */
#include "keel_kernels.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static float *filled(size_t count) {
    float *values = aligned_alloc(64, (count * sizeof(float) + 63) / 64 * 64);
    if (!values) exit(1);
    for (size_t i = 0; i < count; i++) values[i] = (float)(rand() % 1000) / 1000.0f - 0.5f;
    return values;
}

int main(int argc, char **argv) {
    const char *only = argc > 1 ? argv[1] : NULL;
    const double seconds = argc > 2 ? atof(argv[2]) : 0.05;
    const keel_kernel_table *table = keel_kernels();
    if (!table->depthwise_conv) {
        printf("no depthwise body on this CPU\n");
        return 0;
    }
    static const struct { const char *name; int height, width, channels, kernel, stride; } shapes[] = {
        { "112x112x32 3s1", 112, 112, 32, 3, 1 },  { "112x112x96 3s2", 112, 112, 96, 3, 2 },
        { "112x112x48 3s2", 112, 112, 48, 3, 2 },  { "56x56x144 3s1", 56, 56, 144, 3, 1 },
        { "56x56x72 3s1", 56, 56, 72, 3, 1 },      { "56x56x72 5s2", 56, 56, 72, 5, 2 },
        { "28x28x192 3s1", 28, 28, 192, 3, 1 },    { "28x28x120 5s1", 28, 28, 120, 5, 1 },
        { "14x14x384 3s1", 14, 14, 384, 3, 1 },    { "14x14x576 5s1", 14, 14, 576, 5, 1 },
        { "14x14x672 5s1", 14, 14, 672, 5, 1 },    { "28x28x240 5s2", 28, 28, 240, 5, 2 },
        { "7x7x960 3s1", 7, 7, 960, 3, 1 },        { "7x7x1152 3s1", 7, 7, 1152, 3, 1 },
        { "7x7x1152 5s1", 7, 7, 1152, 5, 1 },
    };
    printf("%-16s %10s %10s %8s\n", "shape", "us", "GFLOP/s", "GB/s");
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        if (only && !strstr(shapes[s].name, only)) continue;
        const int h = shapes[s].height, w = shapes[s].width, c = shapes[s].channels;
        const int k = shapes[s].kernel, stride = shapes[s].stride, pad = k / 2;
        const int oh = (h + 2 * pad - k) / stride + 1, ow = (w + 2 * pad - k) / stride + 1;
        float *input = filled((size_t)h * w * c), *weights = filled((size_t)k * k * c);
        float *bias = filled((size_t)c), *output = filled((size_t)oh * ow * c);
        keel_depthwise_conv conv = {
            .input = input, .weights = weights, .output = output, .batch = 1, .channels = c,
            .input_height = h, .input_width = w, .output_height = oh, .output_width = ow,
            .kernel_height = k, .kernel_width = k, .stride_height = stride, .stride_width = stride,
            .dilation_height = 1, .dilation_width = 1, .pad_top = pad, .pad_left = pad, .channels_last = 1,
            .epilogue = { .bias = bias, .activation = getenv("DEPTHWISE_BENCH_SWISH") ? KEEL_ACTIVATION_SWISH : KEEL_ACTIVATION_CLIP, .parameter0 = 0, .parameter1 = 6 },
        };
        const ptrdiff_t units = keel_depthwise_conv_work_count(&conv);
        float *scratch = filled((size_t)keel_depthwise_conv_scratch_count(&conv) + 16);
        double best = 1e9;
        for (int repetition = 0; repetition < 7; repetition++) {
            int calls = 0;
            const double start = now();
            do {
                table->depthwise_conv(&conv, 0, units, scratch);
                calls++;
            } while (now() - start < seconds);
            const double each = (now() - start) / calls;
            if (each < best) best = each;
        }
        const double flops = 2.0 * oh * ow * c * k * k, bytes = ((double)h * w * c + (double)oh * ow * c) * sizeof(float);
        printf("%-16s %10.1f %10.1f %8.1f\n", shapes[s].name, best * 1e6, flops / best * 1e-9, bytes / best * 1e-9);
        free(input), free(weights), free(bias), free(output), free(scratch);
    }
    return 0;
}
