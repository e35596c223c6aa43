import KeelIR

/// Rewrites MatMul(x, W) with a constant 2-D W as a dense with kernel layout in_out: what
/// tf2onnx emits for a Keras Dense (MatMul, then Add of the bias, then the activation). As a
/// dense it can take the bias and activation in its epilogue and a BatchNorm in its weights.
///
/// Needs: shape-inferred graph. Always legal: x·W over the last axis is dense's definition
/// for any rank of x, and W is read, not rewritten (a shared W stays shared).
public struct MatMulToDense: Pass {
    public var name: String { "matmul-to-dense" }

    public init() {}

    public func run(_ graph: Graph) throws -> PassResult {
        var editor = try GraphEditor(inferring: graph)
        var statistic = PassStatistic(rewriteNoun: "matmuls turned into dense")
        for name in graph.nodes.map(\.name) {
            guard var node = editor.node(named: name), node.op == .matmul, node.inputs.count == 2,
                  let weights = editor.graph.constants[node.inputs[1]], weights.type.shape.rank == 2,
                  editor.graph.constants[node.inputs[0]] == nil,
                  let input = editor.graph.type(of: node.inputs[0]), input.shape.rank >= 1 else { continue }
            node.op = .dense
            node.attributes = Attributes()
            editor.update(node)
            statistic.rewrites += 1
        }
        return PassResult(graph: try editor.finished(), counts: statistic)
    }
}
