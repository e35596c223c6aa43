import KeelIR

/// Which part of a transfer-learning graph never changes during training: a value is frozen
/// when it is computed only from graph inputs and non-trainable constants. Its boundary (frozen
/// values read by a node that is not frozen, and frozen graph outputs) is where features can be
/// extracted once and cached, e.g. VGG16's `block5_pool` output before a trainable head.
public struct FreezeAnalysis: Sendable {
    /// Names of frozen nodes, in graph order.
    public let frozenNodes: [String]
    /// Frozen values a trainable node reads, or that are graph outputs, in the order their
    /// producers run.
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
        var cut = Set(graph.outputs.map(\.value))
        for node in graph.nodes where !frozenSet.contains(node.name) { cut.formUnion(node.presentInputs) }
        // Computed frozen values at the cut, in the order their producers run.
        let computed = graph.nodes.filter { frozenSet.contains($0.name) }.flatMap(\.outputs)
        frozenNodes = frozen
        boundary = computed.filter(cut.contains)
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
