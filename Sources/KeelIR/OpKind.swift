/// Every operation the IR knows. Both front ends (.keel files and ONNX) lower to these;
/// the op registry (`OpSchema`) gives each one its inputs, attributes and shape function.
public enum OpKind: String, Hashable, Sendable, CaseIterable, Codable {
    // Layers with parameters. Parameters are ordinary inputs that name constants.
    case conv2d            // inputs: x, kernel, bias?
    case convTranspose = "conv_transpose"   // inputs: x, kernel, bias?   (channels first, 1-3 spatial axes)
    case dense             // inputs: x, kernel, bias?   (applies to the last axis, as Keras's Dense)
    case matmul            // inputs: a, b               (NumPy/ONNX MatMul broadcasting)
    case attention         // inputs: q, k, v            (multi-head scaled dot-product attention over token rows)
    case batchNorm = "batch_norm"   // inputs: x, gamma, beta, moving_mean, moving_variance
    case layerNorm = "layer_norm"   // inputs: x, gamma, beta?
    case instanceNorm = "instance_norm"   // inputs: x, gamma, beta   (per image and channel)
    case lrn               // inputs: x   (local response normalisation across channels)

    // Pooling.
    case maxPool2d = "max_pool2d"
    case avgPool2d = "avg_pool2d"
    case globalAvgPool2d = "global_avg_pool2d"
    case globalMaxPool2d = "global_max_pool2d"
    case resize            // inputs: x   (height and width, nearest or linear)

    // Unary element-wise.
    case relu, leakyRelu = "leaky_relu", elu, selu, sigmoid, tanh, gelu, erf, softplus
    case hardSigmoid = "hard_sigmoid", hardSwish = "hard_swish", swish
    case clip, sqrt, exp, log, neg, abs, reciprocal
    case ceil, floor, round, sin, cos
    case prelu             // inputs: x, slope   (slope broadcasts to x)

    // Binary element-wise with broadcasting, and variadic sums.
    case add, sub, mul, div, pow, max, min
    case mod               // inputs: a, b   (remainder; `fmod` 0: sign of b, as Python's %; 1: sign of a, as C's fmod)
    case equal             // inputs: a, b   (bool output)
    case less, greater     // inputs: a, b   (bool output)
    case not               // inputs: x (bool)   (bool output)
    case `where`           // inputs: condition (bool), x, y
    case sum

    // Normalised exponentials and reductions.
    case softmax
    case logSoftmax = "log_softmax"
    case reduceMean = "reduce_mean"
    case reduceSum = "reduce_sum"
    case reduceSumSquare = "reduce_sum_square"
    case reduceProd = "reduce_prod"
    case reduceMax = "reduce_max"
    case reduceMin = "reduce_min"
    case cumulativeSum = "cumsum"   // inputs: x   (running sums along `axis`; ONNX CumSum)

    // Data movement.
    case reshape, flatten, transpose, concat, pad, slice, gather, squeeze, unsqueeze, cast
    case identity, dropout
    case split, expand, tile
    case scatterND = "scatter_nd"   // inputs: data, indices, updates   (ONNX ScatterND)
    case depthToSpace = "depth_to_space", spaceToDepth = "space_to_depth"
}
