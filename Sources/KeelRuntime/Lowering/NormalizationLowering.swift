import KeelIR
import KeelKernels

/// BatchNorm (scale and shift folded once from its four vectors), InstanceNorm, LRN, LayerNorm and softmax.
extension KernelLowering {
    /// The batch_norm's layer and its scales followed by its shifts, folded once when prepared.
    private static func foldedBatchNorm(_ operands: StepOperands) throws -> (layer: BatchNormLayer, scaleShift: [Float]) {
        let layer = try operands.reportingAgainstNode { try BatchNormLayer(operands.node, shape: operands.inputShapes[0]) }
        let vectors = try (1...4).map { try operands.input($0) }
        let folded = try operands.reportingAgainstNode {
            try operands.prepared.payload(FoldedBatchNorm.self, for: layer.source(vectors), context: operands.kernelContext)
        }
        return (layer, folded.scaleShift)
    }

    /// A batch_norm a pointwise convolution applies while packing its input (`BatchNormPrologue`).
    static func batchNormPrologue(_ operands: StepOperands) throws -> GEMMPrologue {
        let (_, scaleShift) = try foldedBatchNorm(operands)
        let (activation, _) = try operands.node.fusedActivation.kernelEpilogue
        guard activation == .identity || activation == .relu else {
            throw operands.unsupported("a convolution's input prologue applies no \(activation) after the batch_norm")
        }
        return GEMMPrologue(scaleShift: scaleShift, relu: activation == .relu, inputRowStride: operands.inputRows.first??.stride)
    }

    static func lowerBatchNorm(_ operands: StepOperands) throws -> Step {
        let node = operands.node
        let shape = operands.inputShapes[0]
        let (layer, folded) = try foldedBatchNorm(operands)
        let (axis, channels) = (layer.axis, layer.channels)
        let outer = shape[..<axis].reduce(1, *)
        let inner = shape[(axis + 1)...].reduce(1, *)
        let (activation, softmax) = try node.fusedActivation.kernelEpilogue
        guard !softmax else { throw operands.unsupported("batch_norm has no softmax epilogue") }
        let inputRowStride = operands.inputRows.first??.stride
        return try operands.unaryStep { input, output, context in
            try folded.withUnsafeBufferPointer { buffer in
                try BatchNorm.apply(input: input, output: output,
                                    scale: UnsafeBufferPointer(rebasing: buffer[0..<channels]),
                                    shift: UnsafeBufferPointer(rebasing: buffer[channels...]),
                                    outer: outer, channels: channels, inner: inner, activation: activation,
                                    inputRowStride: inputRowStride, context: context)
            }
        }
    }

    static func lowerLayerNorm(_ operands: StepOperands) throws -> Step {
        let node = operands.node
        let shape = operands.inputShapes[0]
        guard let axis = Shape(known: shape).normalizedAxis(try operands.attributes.int("axis")) else {
            throw operands.unsupported("axis is outside \(Shape(known: shape))")
        }
        let normSize = shape[axis...].reduce(1, *)
        let rows = shape[..<axis].reduce(1, *)
        let epsilon = try operands.attributes.float("epsilon")
        let input = try operands.input(0)
        let gamma = try operands.input(1)
        let beta = try operands.optionalInput(2)
        let output = try operands.output()
        // The statistics outputs exist only when something reads them.
        let mean = operands.outputs.count > 1 ? try operands.output(1) : nil
        let inverseDeviation = operands.outputs.count > 2 ? try operands.output(2) : nil
        let context = operands.kernelContext
        return Step(node: node.name, op: node.op) { _ in
            try LayerNorm.apply(input: input, output: output, rows: rows, normSize: normSize, gamma: gamma,
                                beta: beta, epsilon: epsilon, mean: mean, inverseDeviation: inverseDeviation,
                                context: context)
        }
    }

    static func lowerInstanceNorm(_ operands: StepOperands) throws -> Step {
        let shape = operands.inputShapes[0]
        guard let axis = Shape(known: shape).normalizedAxis(try operands.attributes.int("axis")), axis > 0 else {
            throw operands.unsupported("the channel axis must follow the batch in \(Shape(known: shape))")
        }
        let epsilon = try operands.attributes.float("epsilon")
        let (batch, channels) = (shape[0], shape[axis])
        let before = shape[1..<axis].reduce(1, *)
        let after = shape[(axis + 1)...].reduce(1, *)
        let gamma = try operands.input(1)
        let beta = try operands.input(2)
        return try operands.unaryStep { input, output, context in
            try InstanceNorm.apply(input: input, output: output, batch: batch, before: before, channels: channels,
                                   after: after, gamma: gamma, beta: beta, epsilon: epsilon, context: context)
        }
    }

    static func lowerLocalResponseNorm(_ operands: StepOperands) throws -> Step {
        let shape = operands.inputShapes[0]
        guard let axis = Shape(known: shape).normalizedAxis(try operands.attributes.int("axis")) else {
            throw operands.unsupported("axis is outside \(Shape(known: shape))")
        }
        let attributes = operands.attributes
        let (size, alpha, beta, bias) = (try attributes.int("size"), try attributes.float("alpha"),
                                         try attributes.float("beta"), try attributes.float("bias"))
        let outer = shape[..<axis].reduce(1, *)
        let inner = shape[(axis + 1)...].reduce(1, *)
        return try operands.unaryStep { input, output, context in
            try LocalResponseNorm.apply(input: input, output: output, outer: outer, channels: shape[axis], inner: inner,
                                        size: size, alpha: alpha, beta: beta, bias: bias, context: context)
        }
    }

    static func lowerSoftmax(_ operands: StepOperands) throws -> Step {
        let node = operands.node
        let shape = operands.inputShapes[0]
        guard let axis = Shape(known: shape).normalizedAxis(try operands.attributes.int("axis")) else {
            throw operands.unsupported("axis is outside \(Shape(known: shape))")
        }
        let outer = shape[..<axis].reduce(1, *)
        let inner = shape[(axis + 1)...].reduce(1, *)
        let extent = shape.isEmpty ? 1 : shape[axis]
        let logarithmic = node.op == .logSoftmax
        return try operands.unaryStep { input, output, context in
            try Softmax.apply(input: input, output: output, outer: outer, axis: extent, inner: inner,
                              logarithmic: logarithmic, context: context)
        }
    }
}
