/// The op registry: one schema per `OpKind`, consulted by both front ends, the verifier, shape
/// inference and the runtime. Each op family declares its schemas in its own file.
public enum OpRegistry {
    /// The schema of `kind`. Every kind has one (a test checks it); an unregistered kind gets a
    /// schema whose shape function reports the gap instead of trapping.
    public static func schema(for kind: OpKind) -> OpSchema {
        table[kind] ?? OpSchema(kind: kind, category: .dataMovement, inputs: [.init("x", variadic: true)], attributes: []) { context in
            throw context.error("has no registered shape function")
        }
    }

    /// The schema that names `onnxOpType` as the ONNX op it translates one-to-one.
    public static func schema(onnxOpType: String) -> OpSchema? { byONNXOpType[onnxOpType] }

    private static let byONNXOpType: [String: OpSchema] = Dictionary(
        all.compactMap { schema in schema.onnxOpType.map { ($0, schema) } }, uniquingKeysWith: { first, _ in first })

    /// Every registered schema, in `OpKind` declaration order.
    public static var all: [OpSchema] { OpKind.allCases.compactMap { table[$0] } }

    private static let table: [OpKind: OpSchema] = {
        let families = [convolutionSchemas, [convTransposeSchema], poolingSchemas, [resizeSchema], denseSchemas, [attentionSchema],
                        normalizationSchemas, elementwiseSchemas, softmaxAndReductionSchemas, [cumulativeSumSchema], dataMovementSchemas,
                        rearrangementSchemas]
        var result: [OpKind: OpSchema] = [:]
        for schema in families.joined() { result[schema.kind] = schema }
        return result
    }()
}

extension OpSchema {
    /// The attributes every 4-D spatial op shares.
    static let layoutAttribute = AttributeSpec("layout", default: .string("nhwc"), "\"nhwc\" or \"nchw\"")

    /// Fused activation epilogue of conv2d and dense, with the parameters its choices take
    /// (`FusedActivation` reads and writes them).
    static let activationAttributes: [AttributeSpec] = [
        AttributeSpec("activation", default: .string("none"), "fused epilogue"),
        AttributeSpec("alpha", default: .float(0.2), "leaky_relu and hard_sigmoid slope"),
        AttributeSpec("beta", default: .float(0.5), "hard_sigmoid offset"),
        AttributeSpec("min", default: .float(-.infinity), "clip lower bound"),
        AttributeSpec("max", default: .float(.infinity), "clip upper bound"),
    ]

    /// The parameter inputs' roles in input order (`kernel`, `bias`...), for front ends that
    /// create a layer's constants as `layer/role`.
    public var parameterRoles: [ParameterRole] {
        inputs.filter(\.isParameter).compactMap { ParameterRole(rawValue: $0.name) }
    }

    /// `x, kernel, bias?` or `x...`: the inputs as messages list them.
    public var inputSignature: String {
        inputs.map { $0.name + ($0.variadic ? "..." : $0.optional ? "?" : "") }.joined(separator: ", ")
    }

    /// Checks the node's inputs and outputs against the declared ones.
    public func checkArity(_ node: Node) throws {
        let reader = AttributeReader(node: node)
        let variadic = inputs.last?.variadic ?? false
        if !variadic && node.inputs.count > inputs.count {
            throw reader.error("takes inputs (\(inputSignature)) but has \(node.inputs.count)")
        }
        for (index, spec) in inputs.enumerated() where !spec.optional && !spec.variadic {
            if index >= node.inputs.count || node.inputs[index].isEmpty {
                throw reader.error("takes inputs (\(inputSignature)) but is missing '\(spec.name)'")
            }
        }
        if variadic && node.presentInputs.isEmpty {
            throw reader.error("takes inputs (\(inputSignature)) but has none")
        }
        if node.outputs.count < minimumOutputCount || node.outputs.count > outputCount {
            let expected = minimumOutputCount == outputCount ? "\(outputCount)"
                : outputCount == Int.max ? "at least \(minimumOutputCount)" : "\(minimumOutputCount) to \(outputCount)"
            throw reader.error("produces \(expected) output\(outputCount == 1 ? "" : "s") but the node names \(node.outputs.count)")
        }
    }
}

/// Output types of `node` given its input types (aligned with `node.inputs`, nil for absent
/// optional inputs) and the values of constant inputs. Checks arity against the schema first.
public func inferOutputTypes(of node: Node, inputTypes: [TensorType?],
                             constantValue: @escaping (String) -> TensorData? = { _ in nil }) throws -> [TensorType] {
    let schema = OpRegistry.schema(for: node.op)
    try schema.checkArity(node)
    let context = OpSchema.Context(node: node, inputTypes: inputTypes, constantValue: constantValue)
    for index in node.inputs.indices where !node.inputs[index].isEmpty {
        guard index < inputTypes.count, inputTypes[index] != nil else {
            throw context.error("has no type for input '\(node.inputs[index])'")
        }
    }
    let types = try schema.inferTypes(context)
    guard types.count >= node.outputs.count, types.count <= schema.outputCount else {
        throw context.error("shape function returned \(types.count) types for \(node.outputs.count) outputs")
    }
    return Array(types.prefix(node.outputs.count))
}
