import KeelIR

/// How each ai.onnx operator becomes IR: the ops whose schema names their ONNX op type
/// (`OpSchema.onnxOpType`, same inputs and no attributes), then one entry per op that needs
/// code. Shape, Constant, ConstantOfShape and OneHot never reach this table (the folder evaluates
/// them at import time).
let opTranslations: [String: (NodeContext) throws -> Void] = directTranslations.merging(translationsWithCode) { _, coded in coded }

/// One entry per schema that names its ONNX op type.
private let directTranslations: [String: (NodeContext) throws -> Void] = Dictionary(
    OpRegistry.all.compactMap { schema in
        schema.onnxOpType.map { name in (name, { context in try translateDirect(context, schema) }) }
    }, uniquingKeysWith: { first, _ in first })

/// The node's attributes that `schema` declares under the same name (ONNX's defaults are the schema's).
func directAttributes(_ context: NodeContext, _ schema: OpSchema) throws -> [String: AttributeValue] {
    var attributes: [String: AttributeValue] = [:]
    for spec in schema.attributes {
        switch spec.defaultValue {
        case .int?: if let value = try context.optionalInt(spec.name) { attributes[spec.name] = .int(value) }
        case .float?: if let value = try context.optionalFloat(spec.name) { attributes[spec.name] = .float(value) }
        default: throw context.fail("attribute '\(spec.name)' has no direct ONNX form")
        }
    }
    return attributes
}

private let translationsWithCode: [String: (NodeContext) throws -> Void] = [
    // Layers.
    "Conv": translateConv,
    "ConvTranspose": translateConvTranspose,
    "MaxPool": { try translatePool($0, op: .maxPool2d) },
    "AveragePool": { try translatePool($0, op: .avgPool2d) },
    "Resize": translateResize,
    "GlobalAveragePool": { try translateGlobalPool($0, op: .globalAvgPool2d) },
    "GlobalMaxPool": { try translateGlobalPool($0, op: .globalMaxPool2d) },
    "Gemm": translateGemm,
    "MatMul": translateMatMul,
    "BatchNormalization": translateBatchNorm,
    "LayerNormalization": translateLayerNorm,
    "InstanceNormalization": translateInstanceNorm,
    "LRN": { context in
        guard let size = try context.optionalInt("size") else { throw context.fail("needs a 'size' attribute") }
        try translateUnary(context, .lrn, ["size": .int(size), "alpha": .float(try context.float("alpha", default: 1e-4)),
                                           "beta": .float(try context.float("beta", default: 0.75)),
                                           "bias": .float(try context.float("bias", default: 1)), "axis": .int(1)])
    },
    "Softmax": { try translateSoftmax($0, op: .softmax) },
    "LogSoftmax": { try translateSoftmax($0, op: .logSoftmax) },

    // Element-wise.
    "LeakyRelu": { try translateUnary($0, .leakyRelu, ["alpha": .float(try $0.float("alpha", default: 0.01))]) },
    "Elu": { try translateUnary($0, .elu, ["alpha": .float(try $0.float("alpha", default: 1))]) },
    "HardSigmoid": {
        try translateUnary($0, .hardSigmoid, ["alpha": .float(try $0.float("alpha", default: 0.2)),
                                              "beta": .float(try $0.float("beta", default: 0.5))])
    },
    "Selu": translateSelu,
    "Gelu": { context in
        let approximate = try context.string("approximate", default: "none")
        guard approximate == "none" || approximate == "tanh" else { throw context.fail("unknown approximate '\(approximate)'") }
        try translateUnary(context, .gelu, ["approximate": .string(approximate)])
    },
    "Clip": translateClip,
    "Max": { try translateVariadic($0, .max) },
    "Min": { try translateVariadic($0, .min) },
    "Sum": translateSum,
    "Mean": translateMean,

    // Data movement and reductions.
    "Identity": { try translateUnary($0, .identity) },
    "Dropout": translateDropout,
    "Cast": translateCast,
    "Flatten": translateFlatten,
    "Reshape": translateReshape,
    "Transpose": translateTranspose,
    "Concat": translateConcat,
    "Slice": translateSlice,
    "Gather": translateGather,
    "Squeeze": { try translateSqueeze($0, op: .squeeze) },
    "Unsqueeze": { try translateSqueeze($0, op: .unsqueeze) },
    "Pad": translatePad,
    "Split": translateSplit,
    "Expand": translateExpand,
    "ScatterND": { context in
        // The output is the data's shape whatever is known of the indices (PyTorch's exporter
        // computes them from shapes, which only constant folding resolves).
        let reduction = try context.string("reduction", default: "none")
        context.emit(.scatterND, try (0..<3).map(context.input), ["reduction": .string(reduction)], shape: context.shape(0))
    },
    "Tile": translateTile,
    "DepthToSpace": { try translateBlockMove($0, op: .depthToSpace) },
    "SpaceToDepth": { try translateBlockMove($0, op: .spaceToDepth) },
    "ReduceMean": { try translateReduce($0, op: .reduceMean, axesInputSince: 18) },
    "ReduceSum": { try translateReduce($0, op: .reduceSum, axesInputSince: 13) },
    "ReduceSumSquare": { try translateReduce($0, op: .reduceSumSquare, axesInputSince: 18) },
    "ReduceProd": { try translateReduce($0, op: .reduceProd, axesInputSince: 18) },
    "ReduceMax": { try translateReduce($0, op: .reduceMax, axesInputSince: 18) },
    "ReduceMin": { try translateReduce($0, op: .reduceMin, axesInputSince: 18) },
    "ReduceL1": { try translateNormReduce($0, squares: false) },
    "ReduceL2": { try translateNormReduce($0, squares: true) },
    "CumSum": translateCumulativeSum,
    "Einsum": translateEinsum,
]

/// The ai.onnx op types the importer understands: the translation table plus the ops the
/// folder evaluates at import time (Range among them: its operands set its length, so they must
/// be known when the model is compiled, as constants or sizes of the input's shape).
public var supportedONNXOps: Set<String> {
    Set(opTranslations.keys).union(["Shape", "Constant", "ConstantOfShape", "Range", "OneHot"])
}

/// An op that maps one-to-one: the node's inputs in order; the output shape is the input's for
/// a unary op and the inputs' broadcast otherwise.
private func translateDirect(_ context: NodeContext, _ schema: OpSchema) throws {
    let variadic = schema.inputs.last?.variadic ?? false
    let present = variadic ? context.node.inputs.indices.filter(context.hasInput) : Array(schema.inputs.indices)
    let inputs = try present.map(context.input)
    let shape: [Dim?]?
    switch schema.category {
    case .unaryElementwise: shape = context.shape(0)
    case .broadcastElementwise:
        shape = present.dropFirst().reduce(present.first.flatMap(context.shape)) { broadcastShapes($0, context.shape($1)) }
    case .convolution, .matrixProduct, .pooling, .normalization, .reduction, .view, .dataMovement: shape = nil
    }
    context.emit(schema.kind, inputs, try directAttributes(context, schema), shape: shape)
}

/// An element-wise op: same shape out as in.
func translateUnary(_ context: NodeContext, _ op: OpKind, _ attributes: [String: AttributeValue] = [:]) throws {
    context.emit(op, [try context.input(0)], attributes, shape: context.shape(0))
}

private func translateSelu(_ context: NodeContext) throws {
    var attributes: [String: AttributeValue] = [:]
    if let alpha = try context.optionalFloat("alpha") { attributes["alpha"] = .float(alpha) }
    if let gamma = try context.optionalFloat("gamma") { attributes["gamma"] = .float(gamma) }
    try translateUnary(context, .selu, attributes)
}

/// Clip: bounds are attributes before opset 11, optional constant inputs after.
private func translateClip(_ context: NodeContext) throws {
    let low = context.opset < 11 ? try context.optionalFloat("min") : try context.constantFloat(1)
    let high = context.opset < 11 ? try context.optionalFloat("max") : try context.constantFloat(2)
    var attributes: [String: AttributeValue] = [:]
    if let low { attributes["min"] = .float(low) }
    if let high { attributes["max"] = .float(high) }
    try translateUnary(context, .clip, attributes)
}

/// Max/Min are variadic in ONNX and binary in Keel: chain them.
private func translateVariadic(_ context: NodeContext, _ op: OpKind) throws {
    let inputs = try context.node.inputs.indices.filter(context.hasInput).map(context.input)
    guard var current = inputs.first else { throw context.fail("has no inputs") }
    if inputs.count == 1 { try translateUnary(context, .identity); return }
    for (index, next) in inputs.dropFirst().enumerated() {
        if index == inputs.count - 2 {
            current = context.emit(op, [current, next], shape: nil)
        } else {
            current = context.emitStep("\(op.rawValue)_\(index)", op, [current, next])
        }
    }
}

private func translateSum(_ context: NodeContext) throws {
    let inputs = try context.node.inputs.indices.filter(context.hasInput).map(context.input)
    guard !inputs.isEmpty else { throw context.fail("has no inputs") }
    let shapes = context.node.inputs.indices.map(context.shape)
    context.emit(.sum, inputs, shape: shapes.dropFirst().reduce(shapes.first ?? nil) { broadcastShapes($0, $1) })
}

/// NumPy broadcasting over partial shapes (unknown where it cannot tell).
func broadcastShapes(_ left: [Dim?]?, _ right: [Dim?]?) -> [Dim?]? {
    guard let left, let right else { return nil }
    let rank = max(left.count, right.count)
    let a = Array(repeating: Dim.known(1), count: rank - left.count) + left
    let b = Array(repeating: Dim.known(1), count: rank - right.count) + right
    return zip(a, b).map { x, y in
        if x == y { return x }
        if x == .known(1) { return y }
        if y == .known(1) { return x }
        return nil
    }
}
