import KeelIR

/// What a pass hands back: the new graph, one line saying what it did (for `--verbose`
/// pipelines and pass tests), and why it left candidates alone (for `--explain`).
public struct PassResult: Sendable {
    public var graph: Graph
    public var statistic: String
    /// The counts behind `statistic`, when the pass rewrites the graph.
    public var counts: PassStatistic?
    /// One line per rejected candidate, e.g. `kept 'bn2': its input 'conv2' also feeds 'branch_b'`.
    public var explanations: [String]

    public init(graph: Graph, statistic: String, explanations: [String] = []) {
        self.graph = graph
        self.statistic = statistic
        self.explanations = explanations
    }

    public init(graph: Graph, counts: PassStatistic, explanations: [String] = []) {
        self.init(graph: graph, statistic: counts.description, explanations: explanations)
        self.counts = counts
    }
}

/// The three figures every optimising pass reports, plus what it counts as one rewrite
/// (`2 batch norms folded`), so a pipeline log reads as one line per pass.
public struct PassStatistic: Hashable, Sendable, CustomStringConvertible {
    public var nodesRemoved: Int
    public var rewrites: Int
    /// Plural noun phrase for `rewrites`: "batch norms folded", "ops fused".
    public var rewriteNoun: String
    /// Bytes of constant data written: rewritten kernels and biases, created or folded constants.
    public var weightBytesChanged: Int

    public init(nodesRemoved: Int = 0, rewrites: Int = 0, rewriteNoun: String, weightBytesChanged: Int = 0) {
        self.nodesRemoved = nodesRemoved
        self.rewrites = rewrites
        self.rewriteNoun = rewriteNoun
        self.weightBytesChanged = weightBytesChanged
    }

    public var description: String {
        "\(formatCount(rewrites)) \(rewriteNoun), \(formatCount(nodesRemoved)) nodes removed, "
            + "\(formatCount(weightBytesChanged)) weight bytes changed"
    }
}

/// A graph-to-graph transformation. Passes are values: they never mutate their input graph.
public protocol Pass {
    /// Short kebab-case name (`shape-inference`) shown next to the statistic.
    var name: String { get }
    func run(_ graph: Graph) throws -> PassResult
}

/// Runs passes in order, collecting `name: statistic` lines.
public func runPasses(_ passes: [any Pass], on graph: Graph) throws -> (graph: Graph, log: [String]) {
    var current = graph
    var log: [String] = []
    for pass in passes {
        let result = try pass.run(current)
        current = result.graph
        log.append("\(pass.name): \(result.statistic)")
    }
    return (current, log)
}
