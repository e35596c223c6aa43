import KeelIR
import KeelKernels

/// Pointwise conv2d nodes (an inverted residual block's expansion) whose one reader is an NHWC
/// depthwise conv2d: the plan drops the expansion's step and the depthwise step computes both band
/// by band (`ExpandedDepthwiseConvolution`), so the widened tensor is never written whole.
/// Only where that tensor does not fit in L2 by itself (`minimumExpandedBytes` per image): on
/// smaller maps it stays cached between the two layers anyway, and each thread's range of rows would
/// recompute a larger share of expanded rows at its edge. And only for a small expansion filter
/// (`maximumFilterBytes`): each band's product reads the whole filter again and has few rows, so a
/// large one (Xception's 728 → 728 pointwise layer before each depthwise one, 2 MB) runs the product
/// far below the GEMM's rate over the whole map (Keras Xception at batch 1: 7% slower fused).
enum ExpansionFusion {
    /// Bytes of one image's expanded tensor from which the pair runs fused.
    static let minimumExpandedBytes = 1024 * 1024
    /// Bytes of the largest expansion filter fused: a quarter of a band's buffer (MobileNetV2's
    /// and EfficientNet's 16 → 96 and 24 → 144 filters take 6 and 14 KB).
    static let maximumFilterBytes = 64 * 1024

    /// The expansion node index each depthwise convolution node index absorbs. `claimed`: conv2d
    /// nodes another fusion already changes the input of (a batch_norm prologue, a gate).
    static func find(graph: Graph, shapes: [String: [Int]], pinned: Set<String>, context: ExecutionContext,
                     prepared: PreparedWeights, isActivation: (String) -> Bool, claimed: Set<Int>) -> [Int: Int] {
        let uses = ConvolutionInputFusion(graph: graph)
        var result: [Int: Int] = [:]
        for (index, node) in graph.nodes.enumerated() where node.op == .conv2d && !claimed.contains(index) {
            guard let (expansionIndex, depthwise) = uses.soleInputProducer(.conv2d, ofConvolution: node, shapes: shapes,
                                                                           pinned: pinned, context: context,
                                                                           prepared: prepared, accepts: isDepthwise),
                  !claimed.contains(expansionIndex), result.values.contains(expansionIndex) == false else { continue }
            let expansionNode = graph.nodes[expansionIndex]
            guard expansionNode.outputs.count == 1, let input = expansionNode.inputs.first, isActivation(input),
                  isActivation(expansionNode.outputs[0]), node.outputs.allSatisfy(isActivation),
                  !readsOrFeedsConcat(input, graph: graph, uses: uses),
                  let inputShape = shapes[input], expansionNode.inputs.count > 1,
                  let kernelShape = shapes[expansionNode.inputs[1]],
                  let expansion = try? ConvolutionLayer(expansionNode, inputShape: inputShape, kernelShape: kernelShape,
                                                        precision: context.precision, prepared: prepared),
                  ConvolutionInputFusion.isPointwisePanels(expansion), !expansion.hasResidual,
                  let (_, softmax) = try? expansionNode.fusedActivation.kernelEpilogue, !softmax,
                  ExpandedDepthwiseConvolution.canRun(expansion: expansion.kernelGeometry,
                                                      depthwise: depthwise.kernelGeometry) else { continue }
            let geometry = depthwise.kernelGeometry
            let bytes = geometry.input.height * geometry.input.width * geometry.inputChannels * MemoryLayout<Float>.size
            let expansionGeometry = expansion.kernelGeometry
            let filterBytes = expansionGeometry.inputChannels * expansionGeometry.outputChannels * MemoryLayout<Float>.size
            guard bytes >= minimumExpandedBytes, filterBytes <= maximumFilterBytes else { continue }
            result[index] = expansionIndex
        }
        return result
    }

    /// The fp32 NHWC depthwise form the fused kernel runs.
    private static func isDepthwise(_ layer: ConvolutionLayer) -> Bool {
        layer.choice.form == .packed && layer.choice.algorithm == .depthwise && layer.kernelGeometry.layout == .nhwc
            && !layer.geometry.fusedMaxPool
    }

    /// Whether `value` comes out of or goes into a concatenation, which may place it in a wider
    /// buffer (`ConcatPlacement`) that the fused kernel does not read rows of.
    private static func readsOrFeedsConcat(_ value: String, graph: Graph, uses: ConvolutionInputFusion) -> Bool {
        if let producer = uses.producer[value], graph.nodes[producer].op == .concat { return true }
        return graph.nodes.contains { $0.op == .concat && $0.inputs.contains(value) }
    }
}

/// What a fused depthwise step needs of the expansion it absorbed (`ExpansionFusion`).
struct ExpansionOperands {
    let weights: PanelConv2DWeights
    let bias: UnsafeBufferPointer<Float>?
    let activation: UnaryOperation
    let geometry: Conv2DGeometry
    /// The expanded tensor's shape: the depthwise layer's input.
    let outputShape: [Int]
    let flops: Double
}

extension KernelLowering {
    /// The expansion `operands` describe, prepared as the depthwise step that absorbs it runs it.
    static func expansion(_ operands: StepOperands) throws -> ExpansionOperands {
        let node = operands.node
        let layer = try operands.reportingAgainstNode {
            try ConvolutionLayer(node, inputShape: operands.inputShapes[0], kernelShape: operands.inputShapes[1],
                                 precision: operands.context.precision, prepared: operands.prepared)
        }
        guard ConvolutionInputFusion.isPointwisePanels(layer), !layer.hasResidual,
              operands.inputRows.first.flatMap({ $0 }) == nil else {
            throw operands.unsupported("a fused expansion needs the pointwise panel GEMM on contiguous rows")
        }
        let (activation, softmax) = try node.fusedActivation.kernelEpilogue
        guard !softmax else { throw operands.unsupported("conv2d has no softmax epilogue") }
        let weights = try operands.reportingAgainstNode {
            try operands.prepared.payload(PanelConv2DWeights.self, for: layer.source, context: operands.kernelContext)
        }
        let geometry = layer.kernelGeometry
        return ExpansionOperands(weights: weights, bias: try operands.optionalInput(2), activation: activation,
                                 geometry: geometry, outputShape: operands.outputShapes[0],
                                 flops: 2 * Double(layer.geometry.macsPerImage) * Double(geometry.batch))
    }
}
