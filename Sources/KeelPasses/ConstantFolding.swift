import KeelIR

/// Replaces a node whose inputs are all bound constants by a constant holding its output, under
/// the output's own name (readers and graph outputs keep reading the same value).
///
/// Needs: shape-inferred graph with known output shapes, bound constants. Graph outputs stay
/// nodes (the runtime reads outputs from nodes). Folds the ops
/// `ConstantEvaluator` knows; a view, cast or transpose of a single parameter keeps that
/// parameter's role and trainable flag, everything else becomes a literal.
public struct ConstantFolding: Pass {
    public var name: String { "constant-folding" }

    public init() {}

    public func run(_ graph: Graph) throws -> PassResult {
        var editor = try GraphEditor(inferring: graph)
        var statistic = PassStatistic(rewriteNoun: "nodes folded into constants")
        var explanations: [String] = []
        for node in graph.nodes {
            let inputs = node.presentInputs
            guard !inputs.isEmpty, node.outputs.count == 1, let output = node.outputs.first,
                  inputs.allSatisfy({ editor.graph.constants[$0] != nil }) else { continue }
            guard !editor.isGraphOutput(output) else {
                explanations.append("kept '\(node.name)': its output is a graph output, which the runtime reads from a node")
                continue
            }
            guard let type = editor.graph.valueTypes[output], let shape = type.shape.knownExtents,
                  type.dtype != .bool, type.dtype != .float16 else {
                explanations.append("kept '\(node.name)': its output type is not a known float or integer shape")
                continue
            }
            guard let values = inputs.map({ editor.graph.constants[$0]?.data }) as? [TensorData] else {
                explanations.append("kept '\(node.name)': an input constant has no data (bind weights first)")
                continue
            }
            guard shape.reduce(1, *) <= ConstantEvaluator.maximumElements else {
                explanations.append("kept '\(node.name)': its \(formatCount(shape.reduce(1, *)))-element result is too large to fold")
                continue
            }
            let operands = values.map { ConstantEvaluator.Value(values: $0.floatsOrIntegers(), shape: $0.shape) }
            guard let result = ConstantEvaluator.evaluate(node, inputs: operands, outputShape: shape),
                  result.count == shape.reduce(1, *) else { continue }
            let source = inputs.count == 1 ? editor.graph.constants[inputs[0]] : nil
            let relabels: Set<OpKind> = [.reshape, .flatten, .squeeze, .unsqueeze, .identity, .dropout, .cast, .transpose]
            let inherits = relabels.contains(node.op) && source != nil
            let data = TensorData(values: result, dtype: type.dtype, shape: shape)
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
}

extension TensorData {
    /// Integers exactly (up to 2^53), floats widened: the evaluator's working form.
    func floatsOrIntegers() -> [Double] {
        switch dtype {
        case .int64, .int32, .bool: return int64s().map(Double.init)
        default: return floats().map(Double.init)
        }
    }

    /// Stores evaluated values as `dtype` (integers truncate toward zero, as ONNX Cast does).
    init(values: [Double], dtype: DType, shape: [Int]) {
        switch dtype {
        case .int64: self.init(int64s: values.map { Int64(exactly: $0.rounded(.towardZero)) ?? 0 }, shape: shape)
        case .int32: self.init(dtype: .int32, shape: shape, storage: TensorStorage(copying: values.map { Int32(exactly: $0.rounded(.towardZero)) ?? 0 }))
        case .float64: self.init(dtype: .float64, shape: shape, storage: TensorStorage(copying: values))
        default: self.init(floats: values.map { Float($0) }, shape: shape)
        }
    }
}
