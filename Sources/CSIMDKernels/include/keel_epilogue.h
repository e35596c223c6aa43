#ifndef KEEL_EPILOGUE_H
#define KEEL_EPILOGUE_H
/* What a kernel applies to each output value before its single store: + bias, + residual (a
 * tensor of the output's shape, e.g. a ResNet shortcut), then an activation. Fusing these saves
 * one or more full passes over the output. */

#include <stddef.h>

typedef enum {
    KEEL_ACTIVATION_NONE = 0,
    KEEL_ACTIVATION_RELU = 1,
    /* min(max(x, parameter0), parameter1): ReLU6 and ONNX Clip. */
    KEEL_ACTIVATION_CLIP = 2,
    /* x ≥ 0 ? x : parameter0·x. */
    KEEL_ACTIVATION_LEAKY_RELU = 3,
    KEEL_ACTIVATION_SIGMOID = 4,
    /* x·sigmoid(x), also called SiLU. */
    KEEL_ACTIVATION_SWISH = 5,
    /* max(0, min(1, parameter0·x + parameter1)). */
    KEEL_ACTIVATION_HARD_SIGMOID = 6,
    /* x·max(0, min(1, x/6 + 1/2)). */
    KEEL_ACTIVATION_HARD_SWISH = 7,
    KEEL_ACTIVATION_TANH = 8,
    /* x·Φ(x), Φ the standard normal distribution function (erf-exact). */
    KEEL_ACTIVATION_GELU = 9,
    /* 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), as x·sigmoid(2·√(2/π)·(x + 0.044715·x³)). */
    KEEL_ACTIVATION_GELU_TANH = 10,
} keel_activation;

typedef struct {
    /* One value per output channel, or NULL. */
    const float *bias;
    /* 1 when channels are the rows of the output block (NCHW), 0 when they are its columns. */
    int bias_per_row;
    /* Added after the bias, before the activation; NULL for none. Element (row, column) of the
     * output block is residual[row·residual_stride + column]. */
    const float *residual;
    ptrdiff_t residual_stride;
    keel_activation activation;
    float parameter0, parameter1;
} keel_epilogue;

#endif
