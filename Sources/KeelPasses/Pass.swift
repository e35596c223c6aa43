import KeelIR

/// What a pass hands back: the new graph and one line saying what it did, for `--verbose`
/// pipelines and pass tests.
public struct PassResult: Sendable {
    public var graph: Graph
    public var statistic: String

    public init(graph: Graph, statistic: String) {
        self.graph = graph
        self.statistic = statistic
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
