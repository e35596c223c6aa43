import Foundation

extension OpRegistry {
    /// Unary ops keep their input's type; binary ops and `sum` broadcast as NumPy does.
    /// One unary op: its attributes, its meaning on one element (the reference every kernel
    /// and constant folding agree with), and the traits passes and front ends read.
    struct UnaryOp {
        var kind: OpKind
        var attributes: [OpSchema.AttributeSpec] = []
        var function: @Sendable (AttributeReader) throws -> @Sendable (Double) -> Double
        /// The conv2d/dense epilogue that computes the same, when there is one.
        var epilogue: (@Sendable (AttributeReader) throws -> FusedActivation)? = nil
        var onnx: String? = nil
        var isKeelLayer = false
    }

    static let unaryOps: [UnaryOp] = [
        UnaryOp(kind: .relu, function: { _ in { Swift.max($0, 0) } }, epilogue: { _ in .relu }, onnx: "Relu", isKeelLayer: true),
        UnaryOp(kind: .leakyRelu, attributes: [.init("alpha", default: .float(0.2))], function: { attributes in
            let alpha = Double(try attributes.float("alpha"))
            return { $0 >= 0 ? $0 : alpha * $0 }
        }, epilogue: { .leakyRelu(alpha: try $0.float("alpha")) }),
        UnaryOp(kind: .elu, attributes: [.init("alpha", default: .float(1.0))], function: { attributes in
            let alpha = Double(try attributes.float("alpha"))
            return { $0 > 0 ? $0 : alpha * (Foundation.exp($0) - 1) }
        }),
        UnaryOp(kind: .selu, attributes: [.init("alpha", default: .float(1.67326319217681884765625)),
                                          .init("gamma", default: .float(1.05070102214813232421875))], function: { attributes in
            let (alpha, gamma) = (Double(try attributes.float("alpha")), Double(try attributes.float("gamma")))
            return { $0 > 0 ? gamma * $0 : gamma * alpha * (Foundation.exp($0) - 1) }
        }, isKeelLayer: true),
        UnaryOp(kind: .sigmoid, function: { _ in { 1 / (1 + Foundation.exp(-$0)) } }, epilogue: { _ in .sigmoid },
                onnx: "Sigmoid", isKeelLayer: true),
        UnaryOp(kind: .tanh, function: { _ in { Foundation.tanh($0) } }, epilogue: { _ in .tanh }, onnx: "Tanh", isKeelLayer: true),
        UnaryOp(kind: .gelu, attributes: [.init("approximate", default: .string("none"), "\"none\" or \"tanh\"")], function: { attributes in
            if try attributes.choice("approximate", ["none", "tanh"]) == "tanh" {
                return { 0.5 * $0 * (1 + Foundation.tanh((2 / Double.pi).squareRoot() * ($0 + 0.044715 * $0 * $0 * $0))) }
            }
            return { 0.5 * $0 * (1 + Foundation.erf($0 / 2.0.squareRoot())) }
        }, epilogue: { try $0.choice("approximate", ["none", "tanh"]) == "tanh" ? .geluTanh : .gelu }),
        UnaryOp(kind: .erf, function: { _ in { Foundation.erf($0) } }, onnx: "Erf"),
        UnaryOp(kind: .softplus, function: { _ in { $0 > 0 ? $0 + Foundation.log1p(Foundation.exp(-$0)) : Foundation.log1p(Foundation.exp($0)) } },
                onnx: "Softplus", isKeelLayer: true),
        UnaryOp(kind: .hardSigmoid, attributes: [.init("alpha", default: .float(0.2)), .init("beta", default: .float(0.5))], function: { attributes in
            let (alpha, beta) = (Double(try attributes.float("alpha")), Double(try attributes.float("beta")))
            return { Swift.max(0, Swift.min(1, alpha * $0 + beta)) }
        }, epilogue: { .hardSigmoid(alpha: try $0.float("alpha"), beta: try $0.float("beta")) }, isKeelLayer: true),
        UnaryOp(kind: .hardSwish, function: { _ in { $0 * Swift.max(0, Swift.min(1, $0 / 6 + 0.5)) } }, epilogue: { _ in .hardSwish },
                onnx: "HardSwish", isKeelLayer: true),
        UnaryOp(kind: .swish, function: { _ in { $0 / (1 + Foundation.exp(-$0)) } }, epilogue: { _ in .swish }, isKeelLayer: true),
        UnaryOp(kind: .clip, attributes: [.init("min", default: .float(-.infinity)), .init("max", default: .float(.infinity))], function: { attributes in
            let (low, high) = (Double(try attributes.float("min")), Double(try attributes.float("max")))
            return { Swift.min(high, Swift.max(low, $0)) }
        }, epilogue: { .clip(min: try $0.float("min"), max: try $0.float("max")) }),
        UnaryOp(kind: .sqrt, function: { _ in { $0.squareRoot() } }, onnx: "Sqrt"),
        UnaryOp(kind: .exp, function: { _ in { Foundation.exp($0) } }, onnx: "Exp"),
        UnaryOp(kind: .log, function: { _ in { Foundation.log($0) } }, onnx: "Log"),
        UnaryOp(kind: .neg, function: { _ in { -$0 } }, onnx: "Neg"),
        UnaryOp(kind: .abs, function: { _ in { Swift.abs($0) } }, onnx: "Abs"),
        UnaryOp(kind: .reciprocal, function: { _ in { 1 / $0 } }, onnx: "Reciprocal"),
        // Rounding: TensorFlow-style "SAME" padding computed from the input's size (timm's tf_*
        // models) rounds in floats; ONNX's Round takes halves to the even neighbour.
        UnaryOp(kind: .ceil, function: { _ in { $0.rounded(.up) } }, onnx: "Ceil"),
        UnaryOp(kind: .floor, function: { _ in { $0.rounded(.down) } }, onnx: "Floor"),
        UnaryOp(kind: .round, function: { _ in { $0.rounded(.toNearestOrEven) } }, onnx: "Round"),
        // Sine and cosine: Fourier positional encodings (XCiT, EdgeNeXt) built in the graph.
        UnaryOp(kind: .sin, function: { _ in { Foundation.sin($0) } }, onnx: "Sin"),
        UnaryOp(kind: .cos, function: { _ in { Foundation.cos($0) } }, onnx: "Cos"),
    ]

    /// Broadcasting binary ops and their meaning on one pair of elements.
    static let binaryOps: [(kind: OpKind, onnx: String, function: @Sendable (Double, Double) -> Double)] = [
        (.add, "Add", { $0 + $1 }), (.sub, "Sub", { $0 - $1 }), (.mul, "Mul", { $0 * $1 }), (.div, "Div", { $0 / $1 }),
        (.pow, "Pow", { Foundation.pow($0, $1) }), (.max, "", { $0.isNaN || $1.isNaN ? .nan : Swift.max($0, $1) }),
        (.min, "", { $0.isNaN || $1.isNaN ? .nan : Swift.min($0, $1) }),
    ]

    static var elementwiseSchemas: [OpSchema] {
        var schemas = unaryOps.map { op in
            OpSchema(kind: op.kind, category: .unaryElementwise, aliasing: .inPlace, isLayoutAgnostic: true,
                     epilogueActivation: op.epilogue, onnxOpType: op.onnx, isKeelLayer: op.isKeelLayer,
                     reference: { context in
                         let function = try op.function(context.attributes)
                         return try context.input(0).values.map(function)
                     },
                     inputs: [.init("x")], attributes: op.attributes) { context in
                _ = try op.function(context.attributes)
                return try unaryType(context)
            }
        }
        for op in binaryOps {
            schemas.append(OpSchema(kind: op.kind, category: .broadcastElementwise, onnxOpType: op.onnx.isEmpty ? nil : op.onnx,
                                    reference: { try $0.broadcast(op.function) },
                                    inputs: [.init("a"), .init("b")], attributes: []) { context in
                [try broadcastType(context)]
            })
        }
        // Mod: ONNX's remainder. fmod 0 takes the divisor's sign (integers only, as ONNX requires),
        // fmod 1 the dividend's (C's fmod).
        schemas.append(OpSchema(kind: .mod, category: .broadcastElementwise, onnxOpType: "Mod",
                                reference: { context in
                                    let fmod = try context.attributes.int("fmod") != 0
                                    return try context.broadcast { a, b in
                                        let remainder = a.truncatingRemainder(dividingBy: b)
                                        return fmod || remainder == 0 || (remainder < 0) == (b < 0) ? remainder : remainder + b
                                    }
                                },
                                inputs: [.init("a"), .init("b")], attributes: [.init("fmod", default: .int(0), "0: sign of b; 1: sign of a")]) { context in
            let type = try broadcastType(context)
            let fmod = try context.attributes.int("fmod")
            guard fmod == 0 || fmod == 1 else { throw context.error("attribute 'fmod' is \(fmod) but must be 0 or 1") }
            guard fmod == 1 || [.int32, .int64].contains(type.dtype) else {
                throw context.error("takes the divisor's sign (fmod 0) on integers only; \(type.dtype.rawValue) needs fmod 1")
            }
            return [type]
        })
        // Comparisons: bool outputs, so they fold at compile time and are refused at run time.
        let comparisons: [(OpKind, String, @Sendable (Double, Double) -> Bool)] = [
            (.equal, "Equal", { $0 == $1 }), (.less, "Less", { $0 < $1 }), (.greater, "Greater", { $0 > $1 }),
        ]
        for (kind, onnxName, compare) in comparisons {
            schemas.append(OpSchema(kind: kind, category: .broadcastElementwise, onnxOpType: onnxName,
                                    reference: { try $0.broadcast { compare($0, $1) ? 1 : 0 } },
                                    inputs: [.init("a"), .init("b")], attributes: []) { context in
                [TensorType(.bool, try broadcastType(context).shape)]
            })
        }
        schemas.append(OpSchema(kind: .not, category: .broadcastElementwise, onnxOpType: "Not",
                                reference: { try $0.input(0).values.map { $0 != 0 ? 0 : 1 } },
                                inputs: [.init("x")], attributes: []) { context in
            let input = try context.type(0)
            guard input.dtype == .bool else { throw context.error("\(context.quote(0, input)) is \(input.dtype.rawValue), not bool") }
            return [input]
        })
        schemas.append(OpSchema(kind: .where, category: .broadcastElementwise, onnxOpType: "Where",
                                reference: { try $0.broadcast { $0[0] != 0 ? $0[1] : $0[2] } },
                                inputs: [.init("condition"), .init("x"), .init("y")], attributes: []) { context in
            let condition = try context.type(0)
            guard condition.dtype == .bool else {
                throw context.error("condition \(context.quote(0, condition)) is \(condition.dtype.rawValue), not bool")
            }
            let values = OpSchema.Context(node: context.node, inputTypes: [TensorType(try context.type(1).dtype, condition.shape)]
                                          + Array(context.inputTypes.dropFirst()), constantValue: context.constantValue)
            return [try broadcastType(values)]
        })
        // PReLU: x where x >= 0, slope·x elsewhere; the slope broadcasts to x without growing it.
        schemas.append(OpSchema(kind: .prelu, category: .broadcastElementwise, onnxOpType: "PRelu",
                                reference: { try $0.broadcast { $0 >= 0 ? $0 : $0 * $1 } },
                                inputs: [.init("x"), .init("slope")], attributes: []) { context in
            let input = try context.type(0)
            let slope = try context.type(1)
            guard slope.dtype == input.dtype, DimMath.broadcast(input.shape, slope.shape) == input.shape else {
                throw context.error("slope '\(context.inputName(1))' \(slope) does not broadcast to \(context.quote(0, input))")
            }
            return [input]
        })
        schemas.append(OpSchema(kind: .sum, category: .broadcastElementwise, reference: { try $0.broadcast { $0.reduce(0, +) } },
                                inputs: [.init("x", variadic: true)], attributes: []) { context in
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
