import KeelIR

/// Builds graphs the way Keras models read: layers in order, each reading the previous one,
/// parameters named `layer/role`, every node located at its own line of `<graph>.keel`.
struct KerasGraphBuilder {
    var graph: Graph
    private(set) var last: String

    init(name: String, input: String = "input", shape: Shape, layout: Layout? = .nhwc) {
        graph = Graph(name: name, inputs: [GraphInput(name: input, type: TensorType(.float32, shape), layout: layout)])
        last = input
    }

    /// Appends a layer reading `inputs` (default: the previous layer) plus its parameters.
    mutating func layer(_ name: String, _ op: OpKind, parameters: [(ParameterRole, Shape)] = [],
                        trainable: Bool = true, inputs: [String]? = nil,
                        _ attributes: [String: AttributeValue] = [:]) {
        var names = inputs ?? [last]
        for (role, shape) in parameters {
            let constantName = "\(name)/\(role.rawValue)"
            // Keras never trains BatchNorm's moving statistics.
            let learned = trainable && role != .movingMean && role != .movingVariance
            graph.constants[constantName] = Constant(name: constantName, type: TensorType(.float32, shape),
                                                     role: role, trainable: learned)
            names.append(constantName)
        }
        let location = SourceLocation(file: "\(graph.name).keel", line: graph.nodes.count + 2, column: 1)
        graph.nodes.append(Node(name: name, op: op, inputs: names, outputs: [name],
                                attributes: Attributes(attributes), locations: [location]))
        last = name
    }

    mutating func output(_ name: String) {
        graph.outputs.append(GraphOutput(name: name, value: last))
    }

    /// Keras VGG16(include_top=False): 13 frozen 3×3 "same" relu convs, 2×2/2 max pools.
    static func vgg16(size: Int = 224, channels: Int = 3, trainable: Bool = false) -> KerasGraphBuilder {
        var builder = KerasGraphBuilder(name: "vgg16", shape: ["N", .known(size), .known(size), .known(channels)])
        var inputChannels = channels
        for (block, filters) in [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]].enumerated() {
            for (index, count) in filters.enumerated() {
                builder.layer("block\(block + 1)_conv\(index + 1)", .conv2d,
                              parameters: [(.kernel, [3, 3, .known(inputChannels), .known(count)]), (.bias, [.known(count)])],
                              trainable: trainable, ["padding": .string("same"), "activation": .string("relu")])
                inputChannels = count
            }
            builder.layer("block\(block + 1)_pool", .maxPool2d, ["pool_size": .ints([2, 2]), "strides": .ints([2, 2])])
        }
        return builder
    }

    /// Flatten -> Dense 256 -> BatchNorm -> ReLU -> Dense 10 on the current output.
    mutating func denseHead(features: Int = 25088) {
        layer("flatten", .flatten)
        layer("fc1", .dense, parameters: [(.kernel, [.known(features), 256]), (.bias, [256])])
        layer("bn", .batchNorm, parameters: [(.gamma, [256]), (.beta, [256]), (.movingMean, [256]), (.movingVariance, [256])])
        layer("relu", .relu)
        layer("predictions", .dense, parameters: [(.kernel, [256, 10]), (.bias, [10])], ["activation": .string("softmax")])
    }

    /// Conv2D 768 1×1 same -> Reshape(-1, 768) -> LayerNormalization on the current output.
    mutating func vitHead() {
        layer("patch_embed", .conv2d, parameters: [(.kernel, [1, 1, 512, 768]), (.bias, [768])], ["padding": .string("same")])
        layer("tokens", .reshape, ["shape": .ints([0, -1, 768])])
        layer("token_norm", .layerNorm, parameters: [(.gamma, [768]), (.beta, [768])])
    }
}
