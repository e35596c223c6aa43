import KeelIR

/// Moves an average pool in front of the 1×1 convolution it follows: averaging commutes with a
/// per-pixel linear map (each window's weights sum to one, so the bias passes through
/// unchanged), and pooling first leaves the convolution a quarter of the pixels for a 2×2 pool.
/// DenseNet's transitions (1×1 convolution, then a 2×2 average pool) spent about 15% of a
/// batch-1 run in those convolutions.
///
/// Needs: shape-inferred graph, run after epilogue fusion (an activation or residual fused into
/// the convolution makes it non-linear, and keeps the order). Legal when the convolution is
/// 1×1 with stride 1, no dilation or padding, and no activation, residual or fused pool, and its
/// output has one reader (the pool) and is not a graph output; and when the pool has no padding,
/// no ceil mode (every window whole) and the convolution's layout.
public struct PoolBeforePointwiseConvolution: Pass {
    public var name: String { "pool-before-pointwise-conv" }

    public init() {}

    public func run(_ graph: Graph) throws -> PassResult {
        var editor = try GraphEditor(inferring: graph)
        var statistic = PassStatistic(rewriteNoun: "pools moved before 1x1 convolutions")
        var explanations: [String] = []
        for pool in graph.nodes where pool.op == .avgPool2d {
            guard let convolved = pool.inputs.first, let pooled = pool.outputs.first,
                  let conv = editor.producer(of: convolved), conv.op == .conv2d, let input = conv.inputs.first else { continue }
            if let problem = swapProblem(pool, after: conv, reading: convolved, in: editor) {
                explanations.append("kept '\(pool.name)': \(problem)")
                continue
            }
            // The pool reads the convolution's input into a new value; the convolution reads that
            // and makes the pool's output, so every later reader is unchanged.
            let narrowed = editor.unusedName("\(pool.name)/pooled")
            var movedPool = pool
            movedPool.inputs[0] = input
            movedPool.outputs = [narrowed]
            var movedConv = conv
            movedConv.inputs[0] = narrowed
            movedConv.outputs = [pooled]
            editor.removeNode(named: pool.name)
            editor.update(movedConv)
            editor.insert(movedPool, before: conv.name)
            editor.graph.valueTypes[convolved] = nil
            statistic.rewrites += 1
        }
        return PassResult(graph: try editor.finished(), counts: statistic, explanations: explanations)
    }

    private func swapProblem(_ pool: Node, after conv: Node, reading convolved: String, in editor: GraphEditor) -> String? {
        guard let input = conv.inputs.first, let inputShape = editor.graph.valueTypes[input]?.shape,
              conv.inputs.count > 1, let kernelShape = editor.graph.valueTypes[conv.inputs[1]]?.shape,
              let convolution = try? ConvolutionGeometry.resolve(conv, input: inputShape, kernel: kernelShape),
              let poolShape = editor.graph.valueTypes[convolved]?.shape,
              let pooling = try? PoolingGeometry.resolve(pool, input: poolShape) else {
            return "a shape is unknown"
        }
        let axes = [convolution.spatial.height, convolution.spatial.width]
        guard axes.allSatisfy({ $0.kernel == 1 && $0.stride == 1 && $0.dilation == 1 }),
              !convolution.spatial.hasPadding else {
            return "'\(conv.name)' is not a 1x1 convolution with stride 1 and no padding"
        }
        guard (try? conv.fusedActivation) == FusedActivation.none, conv.inputs.count < 4 || conv.inputs[3].isEmpty,
              !convolution.fusedMaxPool else {
            return "'\(conv.name)' applies an activation, residual or pool after its product"
        }
        guard !pooling.spatial.hasPadding, !pooling.ceilMode else { return "it pads its input or rounds its output up" }
        guard pooling.layout == convolution.layout else {
            return "its layout \(pooling.layout.rawValue) differs from '\(conv.name)''s \(convolution.layout.rawValue)"
        }
        return editor.singleUseProblem(of: convolved).map { "its input \($0)" }
    }
}
