extension OpRegistry {
    /// Unary ops keep their input's type; binary ops and `sum` broadcast as NumPy does.
    static var elementwiseSchemas: [OpSchema] {
        let plainUnary: [OpKind] = [.relu, .sigmoid, .tanh, .erf, .softplus, .swish, .sqrt, .exp,
                                    .log, .neg, .abs, .hardSwish]
        let unaryAttributes: [OpKind: [OpSchema.AttributeSpec]] = [
            .leakyRelu: [.init("alpha", default: .float(0.2))],
            .elu: [.init("alpha", default: .float(1.0))],
            .selu: [.init("alpha", default: .float(1.67326319217681884765625)),
                    .init("gamma", default: .float(1.05070102214813232421875))],
            .gelu: [.init("approximate", default: .string("none"), "\"none\" or \"tanh\"")],
            .hardSigmoid: [.init("alpha", default: .float(0.2)), .init("beta", default: .float(0.5))],
            .clip: [.init("min", default: .float(-.infinity)), .init("max", default: .float(.infinity))],
        ]
        var schemas = plainUnary.map { OpSchema(kind: $0, inputs: [.init("x")], attributes: [], inferTypes: unaryType) }
        for kind in [OpKind.leakyRelu, .elu, .selu, .gelu, .hardSigmoid, .clip] {
            schemas.append(OpSchema(kind: kind, inputs: [.init("x")], attributes: unaryAttributes[kind] ?? []) { context in
                if kind == .gelu { _ = try context.attributes.choice("approximate", ["none", "tanh"]) }
                return try unaryType(context)
            })
        }
        for kind in [OpKind.add, .sub, .mul, .div, .pow, .max, .min] {
            schemas.append(OpSchema(kind: kind, inputs: [.init("a"), .init("b")], attributes: []) { context in
                [try broadcastType(context)]
            })
        }
        // PReLU: x where x >= 0, slope·x elsewhere; the slope broadcasts to x without growing it.
        schemas.append(OpSchema(kind: .prelu, inputs: [.init("x"), .init("slope")], attributes: []) { context in
            let input = try context.type(0)
            let slope = try context.type(1)
            guard slope.dtype == input.dtype, DimMath.broadcast(input.shape, slope.shape) == input.shape else {
                throw context.error("slope '\(context.inputName(1))' \(slope) does not broadcast to \(context.quote(0, input))")
            }
            return [input]
        })
        schemas.append(OpSchema(kind: .sum, inputs: [.init("x", variadic: true)], attributes: []) { context in
            [try broadcastType(context)]
        })
        return schemas
    }

    @Sendable static func unaryType(_ context: OpSchema.Context) throws -> [TensorType] {
        [try context.type(0)]
    }

    /// NumPy broadcasting over every present input; names each offending input and shape.
    static func broadcastType(_ context: OpSchema.Context) throws -> TensorType {
        let inputs = try context.presentTypes()
        guard var result = inputs.first else { throw context.error("needs at least one input") }
        for (name, type) in inputs.dropFirst() {
            guard type.dtype == result.type.dtype else {
                throw context.error("mixes \(result.type.dtype.rawValue) input '\(result.name)' with \(type.dtype.rawValue) input '\(name)'")
            }
            guard let shape = DimMath.broadcast(result.type.shape, type.shape) else {
                throw context.error("cannot broadcast input '\(result.name)' \(result.type.shape) with input '\(name)' \(type.shape)")
            }
            result = (result.name, TensorType(type.dtype, shape))
        }
        return result.type
    }
}
