import KeelIR
import KeelKernels

/// Which activations a bf16 plan keeps in bf16: a bf16 convolution's or dense layer's output that
/// every reader takes as the input or the residual (shortcut) of a bf16 convolution or dense layer
/// (one kernel runs both), or as the input of a depthwise layer whose kernel reads bf16; and such a
/// depthwise layer's output on the same terms. Its producer rounds it once in its epilogue, so
/// readers move half the bytes. As a bf16 layer's input this changes nothing (each reader would
/// have rounded it to the same values); as a residual stream or a depthwise layer's input it does:
/// ResNet's shortcuts then carry bf16 values, and MobileNet's and EfficientNet's expansion →
/// depthwise → projection chains stay bf16 throughout, as OpenVINO's bf16 mode keeps both, where
/// fp32 plans keep fp32 values. A 1×1 max pool (the stride-hoisting pass's subsample of a
/// shortcut) moves values without arithmetic, so it passes bf16 on when every reader of its output
/// is such a layer. Graph outputs, anything a view or an fp32 layer reads, and outputs an fp32
/// pass still has to touch (an activation no kernel epilogue fuses, a separate pool) stay fp32.
enum ActivationStorageRule {
    /// The bf16 values of the plan (every other value is fp32), decided once from the graph.
    static func bf16Values(graph: Graph, shapes: [String: [Int]], context: ExecutionContext,
                           prepared: PreparedWeights) -> Set<String> {
        guard context.precision == .bf16, context.bf16Activations, Precision.bf16.isAvailable else { return [] }
        var readers: [String: [Node]] = [:]
        for node in graph.nodes {
            for input in node.presentInputs { readers[input, default: []].append(node) }
        }
        let outputs = Set(graph.outputs.map(\.value))
        var values: Set<String> = []
        /// Whether every reader of `value` takes it as a bf16 layer's input or shortcut, directly or
        /// through subsamples (collected into `passedOn`).
        func readInBF16(_ value: String, passedOn: inout [String]) -> Bool {
            guard !outputs.contains(value), let nodes = readers[value], !nodes.isEmpty else { return false }
            return nodes.allSatisfy { reader in
                let positions = reader.inputs.indices.filter { reader.inputs[$0] == value }
                if positions == [0], reader.outputs.count == 1, isSubsample(reader, shapes) {
                    passedOn.append(reader.outputs[0])
                    return readInBF16(reader.outputs[0], passedOn: &passedOn)
                }
                if positions == [0], bf16Depthwise(reader, shapes, context, prepared) != nil { return true }
                return (positions == [0] || positions == [residualPosition])
                    && form(reader, shapes, context, prepared) == .bf16
            }
        }
        for node in graph.nodes where node.outputs.count == 1 && writesBF16(node, shapes, context, prepared) {
            var passedOn: [String] = []
            if readInBF16(node.outputs[0], passedOn: &passedOn) { values.formUnion([node.outputs[0]] + passedOn) }
        }
        return values
    }

    /// A max pool that only picks pixels (`Pooling.isSubsample`).
    private static func isSubsample(_ node: Node, _ shapes: [String: [Int]]) -> Bool {
        guard node.op == .maxPool2d, let input = node.inputs.first, let shape = shapes[input],
              let geometry = try? PoolingGeometry.resolve(node, input: Shape(known: shape)),
              let kernelGeometry = try? Pool2DGeometry(geometry, batch: shape[0], channels: shape[geometry.layout.channelAxis])
        else { return false }
        return Pooling.isSubsample(kernelGeometry)
    }

    /// The input position of a conv2d's or dense layer's fused residual (after input, kernel, bias).
    private static let residualPosition = 3

    /// The prepared form a conv2d or dense node runs on (`.bf16`: the bf16 kernel), or nil for
    /// any other node (or one that cannot run).
    private static func form(_ node: Node, _ shapes: [String: [Int]], _ context: ExecutionContext,
                             _ prepared: PreparedWeights) -> PreparedForm? {
        guard node.inputs.count > 1, let input = shapes[node.inputs[0]], let kernel = shapes[node.inputs[1]] else {
            return nil
        }
        switch node.op {
        case .conv2d:
            return (try? ConvolutionLayer(node, inputShape: input, kernelShape: kernel, precision: context.precision,
                                          prepared: prepared))?.choice.form
        case .dense:
            return (try? DenseLayer(node, inputShape: input, kernelShape: kernel, precision: context.precision,
                                    prepared: prepared))?.choice.form
        default:
            return nil
        }
    }

    /// A conv2d node that runs on the depthwise kernel in a geometry whose bf16 body reads and
    /// writes bf16 activations (`DepthwiseConvolution.runsBF16`), or nil.
    private static func bf16Depthwise(_ node: Node, _ shapes: [String: [Int]], _ context: ExecutionContext,
                                      _ prepared: PreparedWeights) -> ConvolutionLayer? {
        guard node.op == .conv2d, node.inputs.count > 1, let input = shapes[node.inputs[0]],
              let kernel = shapes[node.inputs[1]],
              let layer = try? ConvolutionLayer(node, inputShape: input, kernelShape: kernel,
                                                precision: context.precision, prepared: prepared),
              layer.choice.algorithm == .depthwise, !layer.geometry.fusedMaxPool,
              DepthwiseConvolution.runsBF16(layer.kernelGeometry) else { return nil }
        return layer
    }

    /// Whether `node` runs on a kernel that stores its final values (so can round them): the bf16
    /// kernel or a bf16 depthwise layer, with an activation it fuses, no softmax, a fused pool only
    /// in the bf16 kernel's epilogue.
    private static func writesBF16(_ node: Node, _ shapes: [String: [Int]], _ context: ExecutionContext,
                                   _ prepared: PreparedWeights) -> Bool {
        guard let epilogue = try? node.fusedActivation.kernelEpilogue, !epilogue.softmax else { return false }
        if bf16Depthwise(node, shapes, context, prepared) != nil {
            return DepthwiseConvolution.storesBF16(after: epilogue.activation)
        }
        guard form(node, shapes, context, prepared) == .bf16,
              BF16Convolution.storesBF16(after: epilogue.activation) else { return false }
        guard node.op == .conv2d, let input = shapes[node.inputs[0]], let kernel = shapes[node.inputs[1]],
              let layer = try? ConvolutionLayer(node, inputShape: input, kernelShape: kernel,
                                                precision: context.precision, prepared: prepared) else { return true }
        return !layer.geometry.fusedMaxPool || layer.poolsInKernel(activation: epilogue.activation)
    }
}
