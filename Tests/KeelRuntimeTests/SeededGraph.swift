import KeelFormat
import KeelIR
import KeelPasses
@testable import KeelRuntime

/// A `.keel` source parsed, its shapes inferred and every weight seeded-random: the small models
/// the runtime tests compile.
func seededGraph(_ source: String, path: String, seed: UInt64) throws -> Graph {
    var graph = try ShapeInference().run(parseKeelGraph(source: source, path: path)).graph
    for (name, constant) in graph.constants { graph.constants[name]?.data = WeightInitializer.initialize(constant, seed: seed) }
    return graph
}
