import KeelIR

/// Moves a 2×2 stride-2 max pool into the conv2d before it (`pool: "max2x2"`), so the kernel
/// pools each output tile while it is still in registers instead of writing the full-size
/// activation and reading it back (VGG16 has five such pairs).
///
/// Needs: shape-inferred graph, run after epilogue fusion (the pool then follows the fused
/// activation, which is the order the kernel applies them in). Legal when the pool has a 2×2
/// window, stride 2, no padding or dilation, the conv's layout, and an output of exactly half
/// the conv's (rounded down); and when the conv pools nothing yet and its output has one reader
/// and is not a graph output.
public struct MaxPoolFusion: Pass {
    public var name: String { "max-pool-fusion" }

    public init() {}

    public func run(_ graph: Graph) throws -> PassResult {
        var editor = try GraphEditor(inferring: graph)
        var statistic = PassStatistic(rewriteNoun: "pools fused")
        var explanations: [String] = []
        for pool in graph.nodes where pool.op == .maxPool2d {
            guard let input = pool.inputs.first, let output = pool.outputs.first,
                  let conv = editor.producer(of: input), conv.op == .conv2d else { continue }
            if let problem = fusionProblem(pool, into: conv, reading: input, in: editor) {
                explanations.append("kept '\(pool.name)': \(problem)")
                continue
            }
            var fused = conv
            fused.attributes["pool"] = .string("max2x2")
            editor.update(fused)
            editor.removeNode(named: pool.name)
            editor.forward(output, to: input)
            editor.absorbLocations(of: pool, into: conv.name)
            statistic.rewrites += 1
            statistic.nodesRemoved += 1
        }
        return PassResult(graph: try editor.finished(), counts: statistic, explanations: explanations)
    }

    private func fusionProblem(_ pool: Node, into conv: Node, reading input: String, in editor: GraphEditor) -> String? {
        if (try? conv.attributeReader.string("pool")) ?? "none" != "none" {
            return "'\(conv.name)' already pools its output"
        }
        guard let shape = editor.graph.valueTypes[input]?.shape,
              let geometry = try? PoolingGeometry.resolve(pool, input: shape) else {
            return "its input shape is unknown"
        }
        let spatial = geometry.spatial
        let axes = [spatial.height, spatial.width]
        guard axes.allSatisfy({ $0.kernel == 2 && $0.stride == 2 && $0.dilation == 1 }) else {
            return "only 2x2 windows with stride 2 fuse, not \(spatial.height.kernel)x\(spatial.width.kernel) "
                + "with stride \(spatial.height.stride)x\(spatial.width.stride)"
        }
        guard !spatial.hasPadding, axes.allSatisfy({ $0.output == $0.input / 2 }) else {
            return "it pads its input or rounds its output up"
        }
        let convLayout = (try? conv.attributeReader.string("layout")) ?? "nhwc"
        guard geometry.layout.rawValue == convLayout else {
            return "its layout \(geometry.layout.rawValue) differs from '\(conv.name)''s \(convLayout)"
        }
        if let problem = editor.singleUseProblem(of: input) { return "its input \(problem)" }
        guard editor.canForward(pool.outputs[0], to: input) else { return "its output cannot keep its name" }
        return nil
    }
}
