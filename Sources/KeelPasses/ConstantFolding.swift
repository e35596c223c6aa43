import KeelIR

/// Replaces a node whose inputs are all bound constants by a constant holding its output, under
/// the output's own name (readers and graph outputs keep reading the same value).
///
/// Needs: shape-inferred graph with known output shapes, bound constants. Graph outputs stay
/// nodes (the runtime reads outputs from nodes). Folds the ops whose schema has a reference
/// evaluation (`OpSchema.reference`, in Double with plain loops); dense and matmul fold only up
/// to `ReferenceLoops.maximumFoldedMultiplies` (larger products run faster as layers). A view, cast or transpose of a single parameter keeps that
/// parameter's role and trainable flag, everything else becomes a literal.
public struct ConstantFolding: Pass {
    public var name: String { "constant-folding" }

    /// Largest result folded; bigger results stay as nodes rather than becoming weights.
    static let maximumElements = 1 << 24

    public init() {}

    public func run(_ graph: Graph) throws -> PassResult {
        var editor = try GraphEditor(inferring: graph)
        var statistic = PassStatistic(rewriteNoun: "nodes folded into constants")
        var explanations: [String] = []
        let live = Self.liveNodes(graph)
        for node in graph.nodes where live.contains(node.name) {
            let inputs = node.presentInputs
            guard !inputs.isEmpty, node.outputs.count == 1, let output = node.outputs.first,
                  inputs.allSatisfy({ editor.graph.constants[$0] != nil }) else { continue }
            guard !editor.isGraphOutput(output) else {
                explanations.append("kept '\(node.name)': its output is a graph output, which the runtime reads from a node")
                continue
            }
            guard let type = editor.graph.valueTypes[output], let shape = type.shape.knownExtents,
                  type.dtype != .float16 else {
                explanations.append("kept '\(node.name)': its output type is not a known float or integer shape")
                continue
            }
            guard inputs.allSatisfy({ editor.graph.constants[$0]?.data != nil }) else {
                explanations.append("kept '\(node.name)': an input constant has no data (bind weights first)")
                continue
            }
            guard shape.reduce(1, *) <= Self.maximumElements else {
                explanations.append("kept '\(node.name)': its \(formatCount(shape.reduce(1, *)))-element result is too large to fold")
                continue
            }
            let operands = node.inputs.map { name in editor.graph.constants[name]?.data.map(ReferenceTensor.init) }
            guard let result = evaluateReference(node, inputs: operands, outputShape: shape) else { continue }
            let source = inputs.count == 1 ? editor.graph.constants[inputs[0]] : nil
            // A view or transpose of a weight is still that weight (a kernel, trainable or not).
            let relabels = node.attributeReader.schema.aliasing == .view || node.op == .transpose
            let inherits = relabels && source != nil
            let data = TensorData(referenceValues: result, dtype: type.dtype, shape: shape)
            editor.removeNode(named: node.name)
            editor.graph.constants[output] = Constant(
                name: output, type: TensorType(type.dtype, Shape(known: shape)),
                role: inherits ? source?.role ?? .literal : .literal, trainable: inherits ? source?.trainable ?? false : false,
                data: data, location: node.location)
            statistic.rewrites += 1
            statistic.nodesRemoved += 1
            statistic.weightBytesChanged += shape.reduce(1, *) * type.dtype.byteSize
        }
        return PassResult(graph: try editor.finished(), counts: statistic, explanations: explanations)
    }

    /// Nodes something reads, directly or through other nodes, from the graph outputs back:
    /// folding the others would evaluate results dead-code elimination drops anyway (an
    /// exporter's unused statistics of every weight, NF-Nets').
    static func liveNodes(_ graph: Graph) -> Set<String> {
        var producers: [String: Node] = [:]
        for node in graph.nodes { for output in node.outputs { producers[output] = node } }
        var live: Set<String> = []
        var pending = graph.outputs.map(\.value)
        while let value = pending.popLast() {
            guard let node = producers[value], live.insert(node.name).inserted else { continue }
            pending += node.presentInputs
        }
        return live
    }
}
