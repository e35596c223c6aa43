import KeelIR
import KeelKernels

/// Maps an IR node with concrete shapes onto a kernel call. Each op family lowers in its own
/// file; this table is the one place that says which family handles which op.
enum KernelLowering {
    static func makeStep(_ operands: StepOperands) throws -> Step {
        switch operands.node.op {
        case .conv2d: return try lowerConvolution(operands)
        case .convTranspose: return try lowerConvTranspose(operands)
        case .dense: return try lowerDense(operands)
        case .matmul: return try lowerMatMul(operands)
        case .maxPool2d, .avgPool2d: return try lowerPooling(operands)
        case .globalAvgPool2d, .globalMaxPool2d: return try lowerGlobalPooling(operands)
        case .resize: return try lowerResize(operands)
        case .batchNorm: return try lowerBatchNorm(operands)
        case .layerNorm: return try lowerLayerNorm(operands)
        case .instanceNorm: return try lowerInstanceNorm(operands)
        case .lrn: return try lowerLocalResponseNorm(operands)
        case .softmax, .logSoftmax: return try lowerSoftmax(operands)
        case .add, .sub, .mul, .div, .pow, .max, .min, .prelu: return try lowerBinary(operands)
        case .sum: return try lowerSum(operands)
        case .reduceMean, .reduceSum: return try lowerReduce(operands)
        case .transpose: return try lowerTranspose(operands)
        case .concat: return try lowerConcat(operands)
        case .pad: return try lowerPad(operands)
        case .slice: return try lowerSlice(operands)
        case .gather: return try lowerGather(operands)
        case .split: return try lowerSplit(operands)
        case .expand: return try lowerExpand(operands)
        case .tile: return try lowerTile(operands)
        case .depthToSpace, .spaceToDepth: return try lowerBlockMove(operands)
        case .relu, .leakyRelu, .elu, .selu, .sigmoid, .tanh, .gelu, .erf, .softplus, .hardSigmoid,
             .hardSwish, .swish, .clip, .sqrt, .exp, .log, .neg, .abs:
            return try lowerUnary(operands)
        case .reshape, .flatten, .squeeze, .unsqueeze, .identity, .dropout, .cast:
            // Views share their input's buffer and never reach here; a copy covers the rare case
            // where the planner could not alias (e.g. a graph output that is a view of another output).
            return try lowerCopy(operands)
        }
    }

    static func lowerCopy(_ operands: StepOperands) throws -> Step {
        let input = try operands.input(0)
        let output = try operands.output()
        return Step(node: operands.node.name, op: operands.node.op) { _ in
            if input.baseAddress != UnsafePointer(output.baseAddress) {
                _ = output.initialize(from: input)
            }
        }
    }
}

/// The kernel-side name of a fused activation attribute.
func fusedActivation(_ attributes: AttributeReader) throws -> (activation: UnaryOperation, softmax: Bool) {
    switch try attributes.string("activation") {
    case "none", "linear": return (.identity, false)
    case "relu": return (.relu, false)
    case "sigmoid": return (.sigmoid, false)
    case "tanh": return (.tanh, false)
    case "leaky_relu": return (.leakyRelu(alpha: try attributes.float("alpha")), false)
    case "clip": return (.clip(min: try attributes.float("min"), max: try attributes.float("max")), false)
    case "swish": return (.swish, false)
    case "hard_swish": return (.hardSwish, false)
    case "hard_sigmoid": return (.hardSigmoid(alpha: try attributes.float("alpha"), beta: try attributes.float("beta")), false)
    case "softmax": return (.identity, true)
    case let other:
        throw RuntimeError.unsupported(node: attributes.node.name, location: attributes.node.location,
                                       reason: "fused activation '\(other)' has no kernel")
    }
}

extension Layout {
    var kernelLayout: ActivationLayout { self == .nhwc ? .nhwc : .nchw }
}
