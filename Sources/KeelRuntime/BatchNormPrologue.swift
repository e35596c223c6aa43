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
        var producer: [String: Int] = [:]
        var readers: [String: Int] = [:]
        for (index, node) in graph.nodes.enumerated() {
            for output in node.outputs { producer[output] = index }
            for input in node.presentInputs { readers[input, default: 0] += 1 }
        }
        var result: [Int: Int] = [:]
        for (index, node) in graph.nodes.enumerated() where node.op == .conv2d {
            guard let normalized = node.inputs.first, let normIndex = producer[normalized],
                  !pinned.contains(normalized), readers[normalized] == 1,
                  node.inputs.filter({ $0 == normalized }).count == 1 else { continue }
            let norm = graph.nodes[normIndex]
            guard norm.op == .batchNorm, norm.outputs.count == 1, let input = norm.inputs.first,
                  isActivation(input), isActivation(normalized), norm.inputs.dropFirst().allSatisfy(isConstant),
                  let shape = shapes[normalized], shape.count == 4,
                  let activation = try? norm.fusedActivation, activation == .none || activation == .relu,
                  let layer = try? BatchNormLayer(norm, shape: shape), layer.axis == 3,
                  node.inputs.count > 1, let kernelShape = shapes[node.inputs[1]],
                  let convolution = try? ConvolutionLayer(node, inputShape: shape, kernelShape: kernelShape,
                                                          precision: context.precision, prepared: prepared),
                  convolution.choice.form == .panels, convolution.choice.algorithm == .pointwise,
                  convolution.kernelGeometry.layout == .nhwc, convolution.kernelGeometry.groups == 1,
                  !convolution.geometry.fusedMaxPool else { continue }
            result[index] = normIndex
        }
        return result
    }
}
