import KeelIR

/// Rewrites a 1×1, stride-1, unpadded, ungrouped NHWC conv2d as a dense over the last axis:
/// the same arithmetic as one GEMM of [N·H·W, Cin]×[Cin, Cout], without im2col or filter packing.
/// The kernel's data stay as they are; only its type changes (HWIO [1,1,Cin,Cout] is the
/// in_out matrix [Cin,Cout]).
///
/// Needs: shape-inferred graph. Legal when the kernel is read by this conv alone (its type
/// changes); NCHW convs stay convs (their channels are not the last axis). So do OIHW ones (every
/// ONNX export): as convs they run on filter panels prepared once, while out_in dense layers go
/// through OpenBLAS, which repacks the kernel per call; on EfficientNetB0's small 1×1 layers that
/// took 2–4× as long (ResNet50's larger ones ran level).
public struct PointwiseConvolutionToDense: Pass {
    public var name: String { "pointwise-conv-to-dense" }

    public init() {}

    public func run(_ graph: Graph) throws -> PassResult {
        var editor = try GraphEditor(inferring: graph)
        var statistic = PassStatistic(rewriteNoun: "1×1 convs turned into dense")
        var explanations: [String] = []
        for name in graph.nodes.map(\.name) {
            guard let node = editor.node(named: name), node.op == .conv2d else { continue }
            switch problem(node, in: editor) {
            case .some(let reason) where !reason.isEmpty:
                explanations.append("kept '\(node.name)': \(reason)")
            case .some:
                continue
            case .none:
                guard let kernel = editor.graph.constants[node.inputs[1]], let extents = kernel.type.shape.knownExtents else { continue }
                let matrix = [extents[2], extents[3]]
                var retyped = kernel
                retyped.type = TensorType(kernel.type.dtype, Shape(known: matrix))
                if let data = kernel.data { retyped.data = TensorData(dtype: data.dtype, shape: matrix, storage: data.storage) }
                editor.graph.constants[kernel.name] = retyped
                var dense = node
                dense.op = .dense
                dense.attributes = Attributes()
                dense.setFusedActivation((try? node.fusedActivation) ?? .none)
                editor.update(dense.droppingDefaultAttributes())
                statistic.rewrites += 1
            }
        }
        return PassResult(graph: try editor.finished(), counts: statistic, explanations: explanations)
    }

    /// nil when the conv may become a dense; an empty string when it is not a 1×1 candidate at
    /// all (nothing to explain); otherwise the reason it stays a conv.
    private func problem(_ node: Node, in editor: GraphEditor) -> String? {
        guard node.inputs.count >= 2, let input = editor.graph.type(of: node.inputs[0]),
              let kernel = editor.graph.type(of: node.inputs[1]),
              let geometry = try? ConvolutionGeometry.resolve(node, input: input.shape, kernel: kernel.shape),
              geometry.kernelHeight == 1, geometry.kernelWidth == 1 else { return "" }
        let spatial = geometry.spatial
        if geometry.layout != .nhwc { return "its layout is NCHW, so channels are not the last axis" }
        if spatial.height.stride != 1 || spatial.width.stride != 1 { return "its stride is not 1" }
        if spatial.hasPadding { return "it pads its input" }
        if geometry.groups != 1 { return "it has \(geometry.groups) groups" }
        if ChannelAffine.kernelOutputAxisIsFirst(node) ?? false {
            return "its kernel is OIHW, which runs faster as a convolution on prepared panels than as an out_in dense"
        }
        return editor.exclusiveConstantProblem(node.inputs[1], for: node.name).flatMap { problem in
            problem.hasSuffix("(bind weights first)") ? nil : problem
        }
    }
}
