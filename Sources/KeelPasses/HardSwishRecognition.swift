import KeelIR

/// Replaces hard-sigmoid and hard-swish written out in primitive ops with one node: Keras's
/// MobileNetV3 writes relu6(x + 3) · (1/6) (tf2onnx: Add, Clip(0, 6), Mul) and multiplies x by it,
/// twenty times each, as separate passes over memory (13% of its time on one core); as
/// `hard_swish` and `hard_sigmoid` they fuse into the convolution before them.
///
/// Needs: shape-inferred graph, constants folded. Legal when the constants are 3 and 1/6 (or a
/// division by 6) to float32 precision, the clip's bounds are exactly 0 and 6, every
/// intermediate has one reader, and nothing broadcasts x into a larger shape.
public struct HardSwishRecognition: Pass {
    public var name: String { "hard-swish-recognition" }

    public init() {}

    public func run(_ graph: Graph) throws -> PassResult {
        var editor = try GraphEditor(inferring: graph)
        var statistic = PassStatistic(rewriteNoun: "hard-swishes and hard-sigmoids recognised")
        for candidate in graph.nodes where candidate.op == .clip {
            guard let clip = editor.node(named: candidate.name), clip.op == .clip,
                  let (x, scaled) = hardSigmoid(ending: clip, in: editor) else { continue }
            let matcher = LayerNormMatcher(editor: editor)
            if let product = editor.soleConsumer(of: scaled.outputs[0]), product.op == .mul, product.inputs.count == 2,
               Set(product.inputs) == [x, scaled.outputs[0]], matcher.shape(product.outputs[0]) == matcher.shape(x) {
                editor.update(Node(name: product.name, op: .hardSwish, inputs: [x], outputs: product.outputs,
                                   attributes: Attributes(), locations: product.locations))
            } else {
                editor.update(Node(name: scaled.name, op: .hardSigmoid, inputs: [x], outputs: scaled.outputs,
                                   attributes: Attributes(["alpha": .float(1 / 6), "beta": .float(0.5)]),
                                   locations: scaled.locations))
            }
            statistic.rewrites += 1
        }
        return try editor.finishedRewrite(of: graph, statistic)
    }

    /// x and the node computing relu6(x + 3)/6 when `clip` is the relu6 of that form.
    private func hardSigmoid(ending clip: Node, in editor: GraphEditor) -> (String, Node)? {
        let matcher = LayerNormMatcher(editor: editor)
        let reader = clip.attributeReader
        guard (try? reader.float("min")) == 0, (try? reader.float("max")) == 6,
              let sum = editor.producer(of: clip.inputs[0]), sum.op == .add, sum.inputs.count == 2,
              editor.soleConsumer(of: sum.outputs[0]) != nil,
              let scaled = editor.soleConsumer(of: clip.outputs[0]), scaled.inputs.count == 2 else { return nil }
        let others = sum.inputs.filter { matcher.uniformValue($0) != 3 }
        guard others.count == 1, let x = others.first, let shape = matcher.shape(x),
              matcher.shape(sum.outputs[0]) == shape, matcher.shape(scaled.outputs[0]) == shape else { return nil }
        let factor = scaled.inputs.first { $0 != clip.outputs[0] }.flatMap(matcher.uniformValue)
        switch scaled.op {
        case .mul where factor.map({ abs($0 - 1 / 6) <= 1e-7 }) ?? false: return (x, scaled)
        case .div where scaled.inputs[0] == clip.outputs[0] && factor == 6: return (x, scaled)
        default: return nil
        }
    }
}
