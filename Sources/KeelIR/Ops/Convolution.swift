extension OpRegistry {
    /// conv2d: x, kernel, bias?; NHWC/HWIO (Keras) or NCHW/OIHW (ONNX), groups, fused activation.
    static var convolutionSchemas: [OpSchema] {
        [OpSchema(
            kind: .conv2d, category: .convolution,
            fusedActivations: [.none, .relu, .sigmoid, .tanh, .leakyRelu, .clip, .swish, .hardSwish, .hardSigmoid, .gelu, .geluTanh],
            inputs: [.init("x"), .init("kernel", isParameter: true), .init("bias", optional: true, isParameter: true),
                     .init("residual", optional: true)],
            attributes: [
                OpSchema.layoutAttribute,
                .init("kernel_layout", default: .string("hwio"), "\"hwio\" (Keras) or \"oihw\" (ONNX)"),
                .init("strides", default: .ints([1, 1])),
                .init("dilations", default: .ints([1, 1])),
                .init("padding", default: .string("valid"), "\"valid\", \"same\" or \"explicit\""),
                .init("pads", default: nil, "[top,left,bottom,right] when padding is explicit"),
                .init("groups", default: .int(1)),
                .init("pool", default: .string("none"),
                      "\"none\" or \"max2x2\": a 2x2 stride-2 max pool after the activation (max-pool-fusion)"),
            ] + OpSchema.activationAttributes
        ) { context in
            _ = try context.node.fusedActivation
            let geometry = try ConvolutionGeometry.resolve(context)
            try checkResidual(context, index: 3, shape: geometry.outputShape)
            return [TensorType(try context.type(0).dtype, geometry.outputShape)]
        }]
    }


    /// A fused residual (epilogue-fusion's shortcut add) must have the output's shape exactly.
    static func checkResidual(_ context: OpSchema.Context, index: Int, shape: Shape) throws {
        if let residual = context.optionalType(index), residual.shape != shape {
            throw context.error("residual '\(context.inputName(index))' is \(residual.shape) but the output is \(shape)")
        }
    }
}
