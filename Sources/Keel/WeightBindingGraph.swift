import KeelIR
import KeelONNX

/// The problems found binding one layer (shape mismatches, missing or extra tensors).
struct LayerBindingProblems: Error {
    var problems: [String]
    /// The layer's parameters left unbound (a layer binds whole or not at all).
    var unbound: Int
}

/// A graph layer that owns parameters, with what its weights' layouts depend on.
struct GraphLayer {
    let node: Node
    /// Its parameters in input order (`block1_conv1/kernel`, `block1_conv1/bias`).
    let parameters: [Constant]
    /// Dense after a flatten: the flattened image's (height, width, channels) and the order
    /// the graph flattens them in.
    var flattened: (image: (height: Int, width: Int, channels: Int), order: FlattenOrder)?

    var name: String { node.name }

    /// The graph's layers with parameters, in node order.
    static func layers(of graph: Graph) -> [GraphLayer] {
        graph.nodes.compactMap { node in
            let parameters = node.presentInputs.compactMap { graph.constants[$0] }.filter(\.isParameter)
            guard !parameters.isEmpty else { return nil }
            var layer = GraphLayer(node: node, parameters: parameters)
            if node.op == .dense, let input = node.inputs.first { layer.flattened = flattenedImage(feeding: input, in: graph) }
            return layer
        }
    }

    /// Follows a dense layer's input back to a flatten (or reshape) of a rank-4 image.
    private static func flattenedImage(feeding value: String, in graph: Graph) -> ((Int, Int, Int), FlattenOrder)? {
        var current = value
        while let producer = graph.producer(of: current) {
            if producer.op == .flatten || producer.op == .reshape {
                // The batch may be symbolic; the image axes must be known.
                guard let input = producer.inputs.first, let dims = graph.type(of: input)?.shape.dims, dims.count == 4 else { return nil }
                let extents = dims.map { $0.value ?? 0 }
                let order = layout(of: input, in: graph)
                return order == .nchw ? ((extents[2], extents[3], extents[1]), .nchw) : ((extents[1], extents[2], extents[3]), .nhwc)
            }
            // Ops that keep every element where it is (activations, identity, dropout, cast).
            guard OpRegistry.schema(for: producer.op).isLayoutAgnostic, let input = producer.inputs.first else { return nil }
            current = input
        }
        return nil
    }

    /// The layout a value's producers declare (`layout` on spatial ops, the input's layout).
    private static func layout(of value: String, in graph: Graph) -> FlattenOrder {
        var current = value
        while let producer = graph.producer(of: current) {
            if let layout = producer.attributes.string("layout") { return layout == "nchw" ? .nchw : .nhwc }
            guard let input = producer.inputs.first else { break }
            current = input
        }
        return graph.inputs.first { $0.name == current }?.layout == .nchw ? .nchw : .nhwc
    }

    var kindDescription: String {
        switch node.op {
        case .conv2d: return "conv"
        case .dense: return "dense"
        case .batchNorm: return "batch norm"
        case .layerNorm: return "layer norm"
        default: return node.op.rawValue
        }
    }

    func accepts(_ kind: WeightLayerKind) -> Bool {
        switch node.op {
        case .conv2d: return kind == .conv
        case .dense: return kind == .dense
        case .batchNorm: return kind == .batchNorm || kind == .scaleShift
        case .layerNorm: return kind == .layerNorm || kind == .scaleShift
        default: return false
        }
    }

    /// "fc/kernel f32[128,8], fc/bias f32[8]": what a layer-level problem leaves unbound.
    var parameterList: String {
        parameters.map { "\($0.name) \($0.type)" }.joined(separator: ", ")
    }

    /// Each parameter's recipe from `source`, checked against the parameter's exact shape.
    func bind(to source: SourceLayer) throws -> [ParameterBinding] {
        var problems: [String] = []
        var bindings: [ParameterBinding] = []
        var usedSlots = Set<String>()
        for parameter in parameters {
            guard let (slot, recipe, conversion) = recipe(for: parameter, from: source) else {
                problems.append("\(parameter.name) \(parameter.type): \(source.kind.rawValue) '\(source.node)' has no \(parameter.role.rawValue)")
                continue
            }
            let tensor = slot.flatMap { source.tensors[$0] }
            if let slot { usedSlots.insert(slot) }
            let binding = ParameterBinding(parameter: parameter.name, type: parameter.type,
                                           source: tensor?.name ?? fillText(recipe),
                                           sourceShape: tensor?.data.shape, conversion: conversion, recipe: recipe)
            if let problem = mismatch(parameter, binding) { problems.append(problem) } else { bindings.append(binding) }
        }
        for (slot, tensor) in source.tensors.sorted(by: { $0.key < $1.key }) where !usedSlots.contains(slot) && !(slot == "mean" || slot == "variance") {
            problems.append("\(tensor.name) \(Shape(known: tensor.data.shape)): layer '\(name)' has no parameter for this \(slot) of \(source.kind.rawValue) '\(source.node)'")
        }
        guard problems.isEmpty else { throw LayerBindingProblems(problems: problems, unbound: parameters.count) }
        return bindings
    }

    /// A batch norm the exporter folded into `layer` (the file has its effect in that layer's
    /// weights): statistics that make it the identity, gamma·(x - 0)/sqrt(1 + ε) + 0 = x with
    /// gamma = sqrt(1 + ε), so the graph computes what the file does and keeps its parameters.
    func identityBindings(foldedInto layer: SourceLayer) -> [ParameterBinding] {
        let note = "folded into \(layer.kind.rawValue) '\(layer.node)' by the exporter: identity"
        return parameters.map { parameter in
            let value: Float
            switch parameter.role {
            case .gamma: value = (1 + epsilon).squareRoot()
            case .movingVariance: value = 1
            default: value = 0
            }
            let recipe = WeightRecipe.filled(value, count: parameter.elementCount)
            return ParameterBinding(parameter: parameter.name, type: parameter.type, source: fillText(recipe), sourceShape: nil,
                                    conversion: note, recipe: recipe)
        }
    }

    private func fillText(_ recipe: WeightRecipe) -> String {
        if case .filled(let value, _) = recipe { return value == value.rounded() ? String(Int(value)) : formatFloat(value) }
        return "?"
    }

    /// A one-line problem when the converted source does not have the parameter's exact shape
    /// (per-channel vectors may be stored with extra size-1 axes) or is not floating point.
    private func mismatch(_ parameter: Constant, _ binding: ParameterBinding) -> String? {
        let expected = parameter.type.shape.knownExtents ?? []
        let produced = binding.recipe.resultShape
        let squeezedEqual = parameter.role != .kernel && produced.filter { $0 != 1 } == expected.filter { $0 != 1 }
        guard produced == expected || squeezedEqual else {
            let via = binding.conversion.map { " after \($0)" } ?? ""
            let shown = binding.sourceShape.map { Shape(known: $0).description } ?? ""
            return "\(parameter.name) \(parameter.type): shape mismatch with \(binding.source) \(shown): \(Shape(known: produced))\(via), expected \(Shape(known: expected))"
        }
        return nil
    }

    /// Which source slot feeds `role` and how it is converted.
    private func recipe(for parameter: Constant, from source: SourceLayer) -> (String?, WeightRecipe, String?)? {
        func shared(_ slot: String) -> (String?, WeightRecipe, String?)? {
            source.tensors[slot].map { (slot, .shared($0.data), nil) }
        }
        switch (source.kind, parameter.role) {
        case (.conv, .kernel):
            guard let weight = source.tensors["weight"] else { return nil }
            let (recipe, note) = convKernelRecipe(weight.data, graphLayout: node.attributes.string("kernel_layout") ?? "hwio")
            return ("weight", recipe, note)
        case (.dense, .kernel):
            guard let weight = source.tensors["weight"] else { return nil }
            let (recipe, note) = denseKernelRecipe(weight.data, transposed: source.transposedWeight,
                                                   graphLayout: node.attributes.string("weight_layout") ?? "in_out",
                                                   sourceOrder: source.flattenOrder, graphOrder: flattened?.order,
                                                   image: flattened?.image)
            return ("weight", recipe, note)
        case (.conv, .bias), (.dense, .bias):
            return shared("bias")
        case (.batchNorm, .gamma):
            guard let scale = source.tensors["scale"], let sourceEpsilon = source.epsilon else { return nil }
            let target = epsilon
            guard abs(sourceEpsilon - target) > 1e-12 else { return ("scale", .shared(scale.data), nil) }
            let recipe = WeightRecipe.rescaledGamma(scale.data, variance: source.tensors["variance"]?.data,
                                                    sourceEpsilon: sourceEpsilon, targetEpsilon: target)
            return ("scale", recipe, "epsilon \(formatFloat(sourceEpsilon))->\(formatFloat(target)): gamma·sqrt((var+\(formatFloat(target)))/(var+\(formatFloat(sourceEpsilon))))")
        case (.batchNorm, .movingMean): return shared("mean")
        case (.batchNorm, .movingVariance): return shared("variance")
        case (.scaleShift, .gamma) where node.op == .batchNorm:
            // x·scale + shift == gamma·(x - 0)/sqrt(1 + ε) + beta with gamma = scale·sqrt(1 + ε).
            guard let scale = source.tensors["scale"] else { return nil }
            return ("scale", .rescaledGamma(scale.data, variance: nil, sourceEpsilon: 0, targetEpsilon: epsilon),
                    "folded batch norm: gamma = scale·sqrt(1+\(formatFloat(epsilon)))")
        case (.scaleShift, .movingMean) where node.op == .batchNorm:
            return (nil, .filled(0, count: parameter.elementCount), "folded batch norm")
        case (.scaleShift, .movingVariance) where node.op == .batchNorm:
            return (nil, .filled(1, count: parameter.elementCount), "folded batch norm")
        case (.batchNorm, .beta), (.layerNorm, .beta), (.scaleShift, .beta):
            return shared("shift")
        case (.layerNorm, .gamma), (.scaleShift, .gamma):
            return shared("scale")
        default:
            return nil
        }
    }

    private var epsilon: Float { node.attributes.float("epsilon") ?? 0.001 }
}
