import KeelIR
import KeelKernels

/// What the fusions that rewrite a convolution's input (`BatchNormPrologue`, `ChannelScaleFusion`,
/// `InputLayoutFusion`) all ask of the graph: who produces and how many read each value, and which
/// algorithm the convolution runs, since only some can apply something to their input as they read it.
struct ConvolutionInputFusion {
    let graph: Graph
    private(set) var producer: [String: Int] = [:]
    private(set) var readers: [String: Int] = [:]

    init(graph: Graph) {
        self.graph = graph
        for (index, node) in graph.nodes.enumerated() {
            for output in node.outputs { producer[output] = index }
            for input in node.presentInputs { readers[input, default: 0] += 1 }
        }
    }

    /// The `op` node producing the convolution `node`'s input when nothing else reads that input
    /// (and the convolution reads it once, as its data), it is not a graph output, and `accepts`
    /// the convolution's layer as the graph has it.
    func soleInputProducer(_ op: OpKind, ofConvolution node: Node, shapes: [String: [Int]], pinned: Set<String>,
                           context: ExecutionContext, prepared: PreparedWeights,
                           accepts: (ConvolutionLayer) -> Bool) -> (index: Int, layer: ConvolutionLayer)? {
        guard node.op == .conv2d, let input = node.inputs.first, let index = producer[input], graph.nodes[index].op == op,
              !pinned.contains(input),
              readers[input] == 1, node.inputs.filter({ $0 == input }).count == 1,
              let shape = shapes[input], shape.count == 4, node.inputs.count > 1, let kernelShape = shapes[node.inputs[1]],
              let layer = try? ConvolutionLayer(node, inputShape: shape, kernelShape: kernelShape,
                                                precision: context.precision, prepared: prepared),
              accepts(layer) else { return nil }
        return (index, layer)
    }

    /// A pointwise NHWC convolution on a single group, on panels, with no fused pool: the fp32
    /// panel GEMM's pointwise algorithm, which can apply something to its input rows as it packs them.
    static func isPointwisePanels(_ layer: ConvolutionLayer) -> Bool {
        layer.choice.form == .panels && layer.choice.algorithm == .pointwise && layer.kernelGeometry.layout == .nhwc
            && layer.kernelGeometry.groups == 1 && !layer.geometry.fusedMaxPool
    }

    /// A layer that scales its filter by an input gate image by image: the fp32 pointwise panels,
    /// or a bf16 1×1 layer (`BF16Convolution.gatesInput`).
    static func takesInputGate(_ layer: ConvolutionLayer) -> Bool {
        isPointwisePanels(layer)
            || (layer.choice.form == .bf16 && BF16Convolution.gatesInput(layer.kernelGeometry) && !layer.geometry.fusedMaxPool)
    }
}
