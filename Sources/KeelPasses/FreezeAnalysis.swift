import KeelIR

/// Which part of a transfer-learning graph never changes during training: a value is frozen
/// when it is computed only from graph inputs and non-trainable constants. Its boundary (frozen
/// values read by a node that is not frozen, and frozen graph outputs) is where features can be
/// extracted once and cached, e.g. VGG16's `block5_pool` output before a trainable head.
public struct FreezeAnalysis: Sendable {
    /// Names of frozen nodes, in graph order.
    public let frozenNodes: [String]
    /// Frozen values a trainable node reads, or that are graph outputs, in graph order.
    public let boundary: [String]

    public init(_ graph: Graph) {
        var frozenValues = Set(graph.inputs.map(\.name))
        for constant in graph.constants.values where !constant.trainable { frozenValues.insert(constant.name) }
        var frozen: [String] = []
        for node in graph.nodes where node.presentInputs.allSatisfy(frozenValues.contains) {
            frozen.append(node.name)
            frozenValues.formUnion(node.outputs)
        }
        let frozenSet = Set(frozen)
        var boundary: [String] = []
        func add(_ value: String) { if !boundary.contains(value) { boundary.append(value) } }
        let computed = Set(graph.nodes.filter { frozenSet.contains($0.name) }.flatMap(\.outputs))
        for node in graph.nodes where !frozenSet.contains(node.name) {
            for input in node.presentInputs where computed.contains(input) { add(input) }
        }
        for output in graph.outputs where computed.contains(output.value) { add(output.value) }
        frozenNodes = frozen
        self.boundary = boundary
    }
}

/// Reports the frozen part and its cut points; leaves the graph unchanged.
public struct FreezeMarking: Pass {
    public var name: String { "freeze-marking" }

    public init() {}

    public func run(_ graph: Graph) throws -> PassResult {
        let analysis = FreezeAnalysis(graph)
        let boundary = analysis.boundary.isEmpty ? "none" : analysis.boundary.map { "'\($0)'" }.joined(separator: ", ")
        return PassResult(graph: graph, statistic: "\(analysis.frozenNodes.count) of \(graph.nodes.count) nodes frozen; feature boundary: \(boundary)")
    }
}
