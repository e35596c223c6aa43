import KeelIR
import KeelKernels

/// Maps an IR node with concrete shapes onto a kernel call. Each op family lowers in its own
/// file; this switch (exhaustive: a new op kind does not compile until it has a line here) is
/// the one place that says which kernel computes which op, element-wise operations included.
enum KernelLowering {
    static func makeStep(_ operands: StepOperands) throws -> Step {
        let attributes = operands.attributes
        switch operands.node.op {
        case .conv2d: return try lowerConvolution(operands)
        case .convTranspose: return try lowerConvTranspose(operands)
        case .dense: return try lowerDense(operands)
        case .matmul: return try lowerMatMul(operands)
        case .attention: return try lowerAttention(operands)
        case .maxPool2d, .avgPool2d: return try lowerPooling(operands)
        case .globalAvgPool2d, .globalMaxPool2d: return try lowerGlobalPooling(operands)
        case .resize: return try lowerResize(operands)
        case .batchNorm: return try lowerBatchNorm(operands)
        case .layerNorm: return try lowerLayerNorm(operands)
        case .instanceNorm: return try lowerInstanceNorm(operands)
        case .lrn: return try lowerLocalResponseNorm(operands)
        case .softmax, .logSoftmax: return try lowerSoftmax(operands)
        case .add: return try lowerBinary(operands, .add)
        case .sub: return try lowerBinary(operands, .subtract)
        case .mul: return try lowerBinary(operands, .multiply)
        case .div: return try lowerBinary(operands, .divide)
        case .pow: return try lowerPower(operands)
        case .max: return try lowerBinary(operands, .maximum)
        case .min: return try lowerBinary(operands, .minimum)
        case .prelu: return try lowerBinary(operands, .prelu)
        case .mod:
            // fmod 1 on floats; fmod 0 is for integers, which the runtime never holds.
            return try lowerBinary(operands, .remainder)
        case .where: return try lowerWhere(operands)
        case .equal, .less, .greater, .not:
            // Unreachable for a bool output (the plan refuses it first); kept for exhaustiveness.
            throw operands.unsupported("computes bool values; it folds at compile time when its inputs are constants")
        case .sum: return try lowerSum(operands)
        case .reduceMean: return try lowerReduce(operands, .mean)
        case .reduceSum: return try lowerReduce(operands, .sum)
        case .reduceSumSquare: return try lowerReduce(operands, .sumOfSquares)
        case .reduceProd: return try lowerReduce(operands, .product)
        case .reduceMax: return try lowerReduce(operands, .maximum)
        case .reduceMin: return try lowerReduce(operands, .minimum)
        case .cumulativeSum: return try lowerCumulativeSum(operands)
        case .transpose: return try lowerTranspose(operands)
        case .concat: return try lowerConcat(operands)
        case .pad: return try lowerPad(operands)
        case .slice: return try lowerSlice(operands)
        case .gather: return try lowerGather(operands)
        case .scatterND: return try lowerScatterND(operands)
        case .split: return try lowerSplit(operands)
        case .expand: return try lowerExpand(operands)
        case .tile: return try lowerTile(operands)
        case .depthToSpace, .spaceToDepth: return try lowerBlockMove(operands)
        case .relu: return try lowerUnary(operands, .relu)
        case .leakyRelu: return try lowerUnary(operands, .leakyRelu(alpha: try attributes.float("alpha")))
        case .elu: return try lowerUnary(operands, .elu(alpha: try attributes.float("alpha")))
        case .selu: return try lowerUnary(operands, .selu(alpha: try attributes.float("alpha"), gamma: try attributes.float("gamma")))
        case .sigmoid: return try lowerUnary(operands, .sigmoid)
        case .tanh: return try lowerUnary(operands, .tanh)
        case .gelu: return try lowerUnary(operands, try attributes.string("approximate") == "tanh" ? .geluTanh : .gelu)
        case .erf: return try lowerUnary(operands, .erf)
        case .softplus: return try lowerUnary(operands, .softplus)
        case .hardSigmoid:
            return try lowerUnary(operands, .hardSigmoid(alpha: try attributes.float("alpha"), beta: try attributes.float("beta")))
        case .hardSwish: return try lowerUnary(operands, .hardSwish)
        case .swish: return try lowerUnary(operands, .swish)
        case .clip: return try lowerUnary(operands, .clip(min: try attributes.float("min"), max: try attributes.float("max")))
        case .sqrt: return try lowerUnary(operands, .sqrt)
        case .exp: return try lowerUnary(operands, .exp)
        case .log: return try lowerUnary(operands, .log)
        case .neg: return try lowerUnary(operands, .negate)
        case .abs: return try lowerUnary(operands, .absolute)
        case .reciprocal: return try lowerUnary(operands, .reciprocal)
        case .ceil: return try lowerUnary(operands, .ceil)
        case .floor: return try lowerUnary(operands, .floor)
        case .round: return try lowerUnary(operands, .round)
        case .sin: return try lowerUnary(operands, .sin)
        case .cos: return try lowerUnary(operands, .cos)
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

extension FusedActivation {
    /// The epilogue's element-wise part, and whether a softmax over the features follows it.
    var kernelEpilogue: (activation: UnaryOperation, softmax: Bool) {
        switch self {
        case .none: return (.identity, false)
        case .relu: return (.relu, false)
        case .sigmoid: return (.sigmoid, false)
        case .tanh: return (.tanh, false)
        case .leakyRelu(let alpha): return (.leakyRelu(alpha: alpha), false)
        case .clip(let low, let high): return (.clip(min: low, max: high), false)
        case .swish: return (.swish, false)
        case .hardSwish: return (.hardSwish, false)
        case .hardSigmoid(let alpha, let beta): return (.hardSigmoid(alpha: alpha, beta: beta), false)
        case .softmax: return (.identity, true)
        case .gelu: return (.gelu, false)
        case .geluTanh: return (.geluTanh, false)
        }
    }
}
