extension OpRegistry {
    /// max/avg pooling windows and the global pools.
    static var poolingSchemas: [OpSchema] {
        let window: [OpSchema.AttributeSpec] = [
            OpSchema.layoutAttribute,
            .init("pool_size", default: .ints([2, 2])),
            .init("strides", default: nil, "defaults to pool_size"),
            .init("dilations", default: .ints([1, 1]), "gap between window taps"),
            .init("padding", default: .string("valid"), "\"valid\", \"same\" or \"explicit\""),
            .init("pads", default: nil, "[top,left,bottom,right] when padding is explicit"),
            .init("ceil_mode", default: .int(0)),
        ]
        let windowed: @Sendable (OpSchema.Context) throws -> [TensorType] = { context in
            let geometry = try PoolingGeometry.resolve(context)
            return [TensorType(try context.type(0).dtype, geometry.outputShape)]
        }
        let global: @Sendable (OpSchema.Context) throws -> [TensorType] = { context in
            let layout = try context.layout()
            let input = try context.requireImage(0, layout: layout)
            let dims = input.shape.dims
            let channels = dims[layout.channelAxis]
            let shape: Shape
            if try context.attributes.bool("keepdims") {
                shape = layout == .nhwc ? Shape([dims[0], 1, 1, channels]) : Shape([dims[0], channels, 1, 1])
            } else {
                shape = Shape([dims[0], channels])
            }
            return [TensorType(input.dtype, shape)]
        }
        let globalAttributes: [OpSchema.AttributeSpec] = [
            OpSchema.layoutAttribute,
            .init("keepdims", default: .bool(false), "false (Keras); ONNX import sets true"),
        ]
        return [
            OpSchema(kind: .maxPool2d, category: .pooling, inputs: [.init("x")], attributes: window, inferTypes: windowed),
            OpSchema(kind: .avgPool2d, category: .pooling, inputs: [.init("x")],
                     attributes: window + [.init("count_include_pad", default: .int(0))], inferTypes: windowed),
            OpSchema(kind: .globalAvgPool2d, category: .pooling, inputs: [.init("x")], attributes: globalAttributes, inferTypes: global),
            OpSchema(kind: .globalMaxPool2d, category: .pooling, inputs: [.init("x")], attributes: globalAttributes, inferTypes: global),
        ]
    }
}
