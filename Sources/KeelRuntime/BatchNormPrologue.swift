import KeelIR
import KeelKernels

/// batch_norm nodes (plain or with ReLU) whose one reader is a pointwise NHWC convolution on the
/// panel GEMM: the plan drops the batch_norm's step and the convolution applies it to its input
/// rows as the GEMM packs them (`GEMMPrologue`). DenseNet normalises its concatenation this way
/// before every 1×1 convolution; fused, the normalised copy is never written, and the
/// convolution reads the concatenation's slice of the shared buffer directly.
enum BatchNormPrologue {
    /// The batch_norm node index each convolution node index absorbs.
    static func find(graph: Graph, shapes: [String: [Int]], pinned: Set<String>, context: ExecutionContext,
                     prepared: PreparedWeights, isActivation: (String) -> Bool,
                     isConstant: (String) -> Bool) -> [Int: Int] {
        guard PanelGEMM.hasPrologue else { return [:] }
        let uses = ConvolutionInputFusion(graph: graph)
        var result: [Int: Int] = [:]
        for (index, node) in graph.nodes.enumerated() where node.op == .conv2d {
            guard let (normIndex, _) = uses.soleInputProducer(.batchNorm, ofConvolution: node, shapes: shapes, pinned: pinned,
                                                              context: context, prepared: prepared,
                                                              accepts: ConvolutionInputFusion.isPointwisePanels) else { continue }
            let norm = graph.nodes[normIndex]
            guard norm.op == .batchNorm, norm.outputs.count == 1, let input = norm.inputs.first,
                  isActivation(input), isActivation(norm.outputs[0]), norm.inputs.dropFirst().allSatisfy(isConstant),
                  let shape = shapes[norm.outputs[0]],
                  let activation = try? norm.fusedActivation, activation == .none || activation == .relu,
                  let layer = try? BatchNormLayer(norm, shape: shape), layer.axis == 3 else { continue }
            result[index] = normIndex
        }
        return result
    }
}
