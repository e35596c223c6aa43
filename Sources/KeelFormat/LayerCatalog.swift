import KeelIR

/// What one layer becomes in the IR: an op, its attributes and the parameters to create.
struct LayerTranslation {
    var op: OpKind
    var attributes: [String: AttributeValue] = [:]
    var parameters: [(role: ParameterRole, shape: [Int])] = []
}

/// What a layer type's translation sees: the checked attributes and the input types, which size
/// the parameters (Keras builds weights lazily from the first input in the same way).
struct LayerContext {
    var layer: LayerInstance
    var arguments: LayerArguments
    var inputTypes: [TensorType]
    /// The layout of the first input when it is an image.
    var layout: Layout?

    func error(_ message: String) -> Diagnostic {
        Diagnostic("\(layer.type) '\(layer.name)' \(message)", at: layer.location).noting(layer.callSites)
    }

    /// A known extent of the first input at `axis` (negative counts from the end).
    func extent(axis: Int, _ what: String) throws -> Int {
        let shape = inputTypes[0].shape
        let resolved = axis < 0 ? axis + shape.rank : axis
        guard resolved >= 0, resolved < shape.rank else {
            throw error("has axis \(axis) but its input '\(layer.inputs[0].name)' \(shape) has rank \(shape.rank)")
        }
        guard let extent = shape[resolved].value else {
            throw error("needs a known \(what) but its input '\(layer.inputs[0].name)' is \(shape)")
        }
        return extent
    }

    /// The channel count of a rank-4 image input.
    func imageChannels() throws -> Int {
        let shape = inputTypes[0].shape
        let layout = self.layout ?? .nhwc
        guard shape.rank == 4 else {
            throw error("expects a rank-4 \(layout.rawValue) image but its input '\(layer.inputs[0].name)' is \(shape)")
        }
        return try extent(axis: layout.channelAxis, "channel count")
    }
}

/// A layer type users write (`conv2d`, `dense`...), with Keras's attribute names and defaults.
struct LayerType: Sendable {
    var name: String
    var inputCount: ClosedRange<Int> = 1...1
    var attributes: [LayerAttribute] = []
    /// Attributes positional literals fill, in order: `dense(256)`, `conv2d(64, 3)`.
    var positional: [String] = []
    /// Spatial ops carry the input's layout (`layout: "nchw"`).
    var isSpatial = false
    var translate: @Sendable (LayerContext) throws -> LayerTranslation
}

/// Every layer type of the format. The spec's table (spec/graph-format.md) mirrors this list.
enum LayerCatalog {
    static func type(named name: String) -> LayerType? { byName[name] }
    static var names: [String] { all.map(\.name) }

    private static let byName: [String: LayerType] = Dictionary(all.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })

    /// "; did you mean 'batch_norm'?" for a misspelt type or a Keras class name (`BatchNormalization`).
    static func suggestion(for type: String) -> String {
        let key = type.lowercased().replacingOccurrences(of: "_", with: "")
        if let name = kerasNames[key] { return "; did you mean '\(name)'?" }
        if key == "activation" { return "; write the activation as its own layer, e.g. 'NAME = relu()'" }
        return KeelIR.suggestion(for: type, among: names)
    }

    /// Keras class and function names (lowercased, without underscores) -> the format's types.
    private static let kerasNames: [String: String] = [
        "maxpooling2d": "max_pool2d", "maxpool2d": "max_pool2d", "averagepooling2d": "avg_pool2d", "avgpool2d": "avg_pool2d",
        "globalaveragepooling2d": "global_avg_pool2d", "globalavgpool2d": "global_avg_pool2d",
        "globalmaxpooling2d": "global_max_pool2d", "globalmaxpool2d": "global_max_pool2d",
        "batchnormalization": "batch_norm", "batchnorm": "batch_norm", "layernormalization": "layer_norm", "layernorm": "layer_norm",
        "concatenate": "concat", "conv2d": "conv2d", "convolution2d": "conv2d", "leakyrelu": "leaky_relu",
        "hardsigmoid": "hard_sigmoid", "hardswish": "hard_swish", "silu": "swish", "zeropadding2d": "zero_padding2d",
    ]

    static let padding = AttributeType.choice(["valid", "same"])
    /// Keras's `activation=` words for `op`: "linear" and the fused activations its kernel applies
    /// that take no parameters (Keras spells the others as layers).
    private static func fusedActivations(_ op: OpKind) -> [String] {
        ["linear"] + OpRegistry.schema(for: op).fusedActivations.filter(\.parameterNames.isEmpty).map(\.rawValue)
    }

    static let all: [LayerType] = [
        LayerType(name: "conv2d",
                  attributes: [LayerAttribute("filters", .integer, required: true), LayerAttribute("kernel_size", .pair, required: true),
                               LayerAttribute("strides", .pair, default: .integers([1, 1])), LayerAttribute("padding", padding, default: .word("valid")),
                               LayerAttribute("activation", .choice(fusedActivations(.conv2d)), default: .word("linear")),
                               LayerAttribute("use_bias", .boolean, default: .boolean(true)),
                               LayerAttribute("dilation", .pair, default: .integers([1, 1]))],
                  positional: ["filters", "kernel_size"], isSpatial: true) { context in
            let arguments = context.arguments
            let filters = try positive(arguments.integer("filters"), "filters", context)
            let kernel = arguments.integers("kernel_size")
            let channels = try context.imageChannels()
            var translation = LayerTranslation(op: .conv2d, attributes: [
                "strides": .ints(arguments.integers("strides")), "dilations": .ints(arguments.integers("dilation")),
                "padding": .string(arguments.word("padding")), "activation": .string(activation(arguments)),
            ])
            translation.parameters = [(.kernel, [kernel[0], kernel[1], channels, filters])]
            if arguments.boolean("use_bias") { translation.parameters.append((.bias, [filters])) }
            return translation
        },
        LayerType(name: "dense",
                  attributes: [LayerAttribute("units", .integer, required: true),
                               LayerAttribute("activation", .choice(fusedActivations(.dense)), default: .word("linear")),
                               LayerAttribute("use_bias", .boolean, default: .boolean(true)),
                               LayerAttribute("input_dim", .integer)],
                  positional: ["units"]) { context in
            let arguments = context.arguments
            let units = try positive(arguments.integer("units"), "units", context)
            // `input_dim` pins the kernel as Keras's Dense(units, input_dim=...) does; otherwise
            // the kernel takes the input's last axis.
            let features = try arguments.optionalInteger("input_dim").map { try positive($0, "input_dim", context) }
                ?? context.extent(axis: -1, "feature count on the last axis")
            var translation = LayerTranslation(op: .dense, attributes: ["activation": .string(activation(arguments))])
            translation.parameters = [(.kernel, [features, units])]
            if arguments.boolean("use_bias") { translation.parameters.append((.bias, [units])) }
            return translation
        },
        pooling("max_pool2d", .maxPool2d),
        pooling("avg_pool2d", .avgPool2d),
        globalPooling("global_avg_pool2d", .globalAvgPool2d),
        globalPooling("global_max_pool2d", .globalMaxPool2d),
        LayerType(name: "zero_padding2d", attributes: [LayerAttribute("padding", .integers, default: .integers([1]))],
                  positional: ["padding"]) { context in
            let padding = context.arguments.integers("padding")
            guard [1, 2, 4].contains(padding.count), padding.allSatisfy({ $0 >= 0 }) else {
                throw context.error("has padding \(AttributeValue.ints(padding)): write p, (vertical, horizontal) or (top, bottom, left, right), none negative")
            }
            _ = try context.imageChannels()
            let (top, bottom, left, right) = zeroPadding(context.arguments)
            // The IR's pads list every axis's begin, then every axis's end.
            let pads = context.layout == .nchw ? [0, 0, top, left, 0, 0, bottom, right] : [0, top, left, 0, 0, bottom, right, 0]
            return LayerTranslation(op: .pad, attributes: ["pads": .ints(pads)])
        },
        LayerType(name: "flatten") { _ in LayerTranslation(op: .flatten) },
        LayerType(name: "reshape", attributes: [LayerAttribute("target_shape", .integers, required: true)],
                  positional: ["target_shape"]) { context in
            let target = context.arguments.integers("target_shape")
            guard target.allSatisfy({ $0 > 0 || $0 == -1 }), target.filter({ $0 == -1 }).count <= 1 else {
                throw context.error("has target_shape \(AttributeValue.ints(target)): entries must be positive, with at most one -1")
            }
            // Keras's target excludes the batch; the IR's includes it, copied with 0.
            return LayerTranslation(op: .reshape, attributes: ["shape": .ints([0] + target)])
        },
        LayerType(name: "batch_norm",
                  attributes: [LayerAttribute("epsilon", .number, default: .number(0.001)),
                               LayerAttribute("momentum", .number, default: .number(0.99)), LayerAttribute("axis", .integer)]) { context in
            // Keras normalises axis -1; an NCHW image normalises its channel axis 1 unless told otherwise.
            let axis = context.arguments.optionalInteger("axis") ?? (context.layout == .nchw ? 1 : -1)
            let channels = try context.extent(axis: axis, "channel count on axis \(axis)")
            return LayerTranslation(op: .batchNorm,
                                 attributes: ["epsilon": .float(Float(context.arguments.number("epsilon"))), "axis": .int(axis)],
                                 parameters: [.gamma, .beta, .movingMean, .movingVariance].map { ($0, [channels]) })
        },
        LayerType(name: "layer_norm",
                  attributes: [LayerAttribute("epsilon", .number, default: .number(0.001)), LayerAttribute("axis", .integer, default: .integer(-1))]) { context in
            let axis = context.arguments.integer("axis")
            let shape = context.inputTypes[0].shape
            let resolved = axis < 0 ? axis + shape.rank : axis
            guard resolved >= 0, resolved < shape.rank, let normalized = Shape(Array(shape.dims[resolved...])).knownExtents else {
                throw context.error("needs known extents on axes from \(axis) but its input '\(context.layer.inputs[0].name)' is \(shape)")
            }
            let features = normalized
            return LayerTranslation(op: .layerNorm,
                                 attributes: ["epsilon": .float(Float(context.arguments.number("epsilon"))), "axis": .int(axis)],
                                 parameters: [(.gamma, features), (.beta, features)])
        },
        LayerType(name: "softmax", attributes: [LayerAttribute("axis", .integer, default: .integer(-1))], positional: ["axis"]) { context in
            LayerTranslation(op: .softmax, attributes: ["axis": .int(context.arguments.integer("axis"))])
        },
        LayerType(name: "dropout", attributes: [LayerAttribute("rate", .number, required: true)], positional: ["rate"]) { context in
            let rate = context.arguments.number("rate")
            guard rate >= 0, rate < 1 else { throw context.error("needs a rate in [0, 1), got \(rate)") }
            return LayerTranslation(op: .dropout, attributes: ["rate": .float(Float(rate))])
        },
        LayerType(name: "add", inputCount: 2...Int.max) { context in
            LayerTranslation(op: context.layer.inputs.count == 2 ? .add : .sum)
        },
        LayerType(name: "subtract", inputCount: 2...2) { _ in LayerTranslation(op: .sub) },
        LayerType(name: "multiply", inputCount: 2...2) { _ in LayerTranslation(op: .mul) },
        LayerType(name: "concat", inputCount: 2...Int.max, attributes: [LayerAttribute("axis", .integer, default: .integer(-1))]) { context in
            LayerTranslation(op: .concat, attributes: ["axis": .int(context.arguments.integer("axis"))])
        },
        LayerType(name: "leaky_relu", attributes: [LayerAttribute("alpha", .number, default: .number(0.3))], positional: ["alpha"]) { context in
            LayerTranslation(op: .leakyRelu, attributes: ["alpha": .float(Float(context.arguments.number("alpha")))])
        },
        LayerType(name: "elu", attributes: [LayerAttribute("alpha", .number, default: .number(1.0))], positional: ["alpha"]) { context in
            LayerTranslation(op: .elu, attributes: ["alpha": .float(Float(context.arguments.number("alpha")))])
        },
        LayerType(name: "gelu", attributes: [LayerAttribute("approximate", .boolean, default: .boolean(false))]) { context in
            LayerTranslation(op: .gelu, attributes: ["approximate": .string(context.arguments.boolean("approximate") ? "tanh" : "none")])
        },
    ] + OpRegistry.all.filter(\.isKeelLayer).map { schema in
        LayerType(name: schema.kind.rawValue) { _ in LayerTranslation(op: schema.kind) }
    }

    /// Keras's ZeroPadding2D `padding`: p, (vertical, horizontal) or (top, bottom, left, right).
    static func zeroPadding(_ arguments: LayerArguments) -> (top: Int, bottom: Int, left: Int, right: Int) {
        let values = arguments.integers("padding")
        switch values.count {
        case 1: return (values[0], values[0], values[0], values[0])
        case 2: return (values[0], values[0], values[1], values[1])
        case 4: return (values[0], values[1], values[2], values[3])
        default: return (0, 0, 0, 0)
        }
    }

    private static func pooling(_ name: String, _ op: OpKind) -> LayerType {
        LayerType(name: name,
                  attributes: [LayerAttribute("pool_size", .pair, default: .integers([2, 2])), LayerAttribute("strides", .pair),
                               LayerAttribute("padding", padding, default: .word("valid"))],
                  positional: ["pool_size"], isSpatial: true) { context in
            _ = try context.imageChannels()
            let poolSize = context.arguments.integers("pool_size")
            // Keras: strides default to the pool size.
            let strides = context.arguments.has("strides") ? context.arguments.integers("strides") : poolSize
            return LayerTranslation(op: op, attributes: ["pool_size": .ints(poolSize), "strides": .ints(strides),
                                                      "padding": .string(context.arguments.word("padding"))])
        }
    }

    private static func globalPooling(_ name: String, _ op: OpKind) -> LayerType {
        LayerType(name: name, attributes: [LayerAttribute("keepdims", .boolean, default: .boolean(false))], isSpatial: true) { context in
            _ = try context.imageChannels()
            return LayerTranslation(op: op, attributes: ["keepdims": .bool(context.arguments.boolean("keepdims"))])
        }
    }

    /// Keras's "linear" (and None) is the IR's "none".
    private static func activation(_ arguments: LayerArguments) -> String {
        let word = arguments.word("activation")
        return word == "linear" ? "none" : word
    }

    private static func positive(_ value: Int, _ name: String, _ context: LayerContext) throws -> Int {
        guard value > 0 else { throw context.error("needs a positive \(name), got \(value)") }
        return value
    }
}
