extension OpRegistry {
    /// batch_norm (inference form, per-channel statistics), instance_norm (statistics per image
    /// and channel), lrn (across neighbouring channels) and layer_norm (over axes [axis, rank),
    /// optionally also producing each row's mean and inverse standard deviation).
    static var normalizationSchemas: [OpSchema] {
        [
            OpSchema(
                kind: .batchNorm, category: .normalization,
                // The activation after a BatchNorm that cannot fold into a producer (DenseNet's
                // BN → ReLU after each concatenation) runs on the values while they are in cache.
                fusedActivations: [.none, .relu, .sigmoid, .tanh, .leakyRelu, .clip, .swish, .hardSwish, .hardSigmoid],
                hasEpilogue: false,
                inputs: [.init("x"), .init("gamma", isParameter: true), .init("beta", isParameter: true),
                         .init("moving_mean", isParameter: true), .init("moving_variance", isParameter: true)],
                attributes: [
                    .init("epsilon", default: .float(0.001), "0.001 (Keras); ONNX import sets 1e-5"),
                    .init("axis", default: .int(-1), "channel axis: -1 (Keras); ONNX import sets 1"),
                ] + OpSchema.activationAttributes
            ) { context in
                _ = try context.node.fusedActivation
                let input = try context.type(0)
                let axis = try context.axis(try context.attributes.int("axis"), rank: input.shape.rank, of: 0, input)
                let channels = input.shape[axis]
                for index in 1...4 {
                    try checkParameter(context, index, expected: Shape([channels]), what: "\(channels) channels on axis \(axis)", input: input)
                }
                return [input]
            },
            OpSchema(
                kind: .instanceNorm, category: .normalization,
                inputs: [.init("x"), .init("gamma", isParameter: true), .init("beta", isParameter: true)],
                attributes: [
                    .init("epsilon", default: .float(1e-5)),
                    .init("axis", default: .int(-1), "channel axis: -1 (channels last); ONNX import sets 1"),
                ]
            ) { context in
                let input = try context.type(0)
                let axis = try context.axis(try context.attributes.int("axis"), rank: input.shape.rank, of: 0, input)
                guard axis > 0, input.shape.rank >= 3 else {
                    throw context.error("normalises each image's channels over its other axes, so \(context.quote(0, input)) needs rank 3 or more and a channel axis after the batch")
                }
                let channels = input.shape[axis]
                for index in 1...2 {
                    try checkParameter(context, index, expected: Shape([channels]), what: "\(channels) channels on axis \(axis)", input: input)
                }
                return [input]
            },
            OpSchema(
                kind: .lrn, category: .normalization, inputs: [.init("x")],
                attributes: [
                    .init("size", default: nil, "channels in each window"),
                    .init("alpha", default: .float(1e-4), "scale of the window's mean square"),
                    .init("beta", default: .float(0.75)),
                    .init("bias", default: .float(1.0)),
                    .init("axis", default: .int(-1), "channel axis: -1 (channels last); ONNX import sets 1"),
                ]
            ) { context in
                let input = try context.type(0)
                _ = try context.axis(try context.attributes.int("axis"), rank: input.shape.rank, of: 0, input)
                let size = try context.attributes.int("size")
                guard size >= 1, size <= 1 << 16 else { throw context.error("size \(size) must be a positive channel count") }
                return [input]
            },
            OpSchema(
                kind: .layerNorm, category: .normalization,
                inputs: [.init("x"), .init("gamma", isParameter: true), .init("beta", optional: true, isParameter: true)],
                outputCount: 3, minimumOutputCount: 1,
                attributes: [
                    .init("epsilon", default: .float(0.001)),
                    .init("axis", default: .int(-1), "normalises over axes [axis, rank)"),
                ]
            ) { context in
                let input = try context.type(0)
                let axis = try context.axis(try context.attributes.int("axis"), rank: input.shape.rank, of: 0, input)
                let normalized = Shape(Array(input.shape.dims[axis...]))
                for index in 1...2 {
                    try checkParameter(context, index, expected: normalized, what: "\(normalized) on axes \(axis)..<\(input.shape.rank)", input: input)
                }
                // Optional outputs 1 and 2: each row's mean and 1/sqrt(variance + epsilon), with
                // the normalised axes kept as 1s (ONNX LayerNormalization's Mean and InvStdDev).
                var statistics = input.shape
                for position in axis..<input.shape.rank { statistics[position] = .known(1) }
                let statisticsType = TensorType(input.dtype, statistics)
                return [input, statisticsType, statisticsType]
            },
        ]
    }

    /// A per-feature parameter must match the normalised extents; a flat vector with the same
    /// element count is accepted (Keras stores gamma as 1-D, ONNX as the normalised shape).
    private static func checkParameter(_ context: OpSchema.Context, _ index: Int, expected: Shape,
                                       what: String, input: TensorType) throws {
        guard let parameter = context.optionalType(index) else { return }
        if parameter.shape == expected { return }
        if let count = parameter.shape.elementCount, let expectedCount = expected.elementCount,
           parameter.shape.rank == 1, count == expectedCount { return }
        let role = OpRegistry.schema(for: context.node.op).inputName(at: index)
        throw context.error("\(role) '\(context.inputName(index))' is \(parameter.shape) but input '\(context.inputName(0))' has \(what): \(input.shape)")
    }
}
