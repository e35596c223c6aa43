import KeelIR
import KeelRuntime

/// Where a model's parameter values come from.
public enum WeightSource: Sendable {
    /// Keras's default initialisers, deterministic in the seed: for trying graphs before weights exist.
    case seeded(UInt64)
    /// The initializers of an ONNX model (a Keras model through tf2onnx, a PyTorch export),
    /// converted to the graph's layouts; every parameter must be bound (see `WeightBindingPlan`).
    case onnx(path: String, match: WeightMatch)
}

public enum WeightBinder {
    /// Fills every constant that has no data yet; returns the graph and how many were filled.
    /// From an ONNX file it binds every parameter or throws, never leaving some seeded. Seeded
    /// weights are checked against `budget` before any is allocated.
    public static func bind(_ graph: Graph, from source: WeightSource,
                            budget: MemoryBudget = .available) throws -> (graph: Graph, filled: Int) {
        switch source {
        case .seeded(let seed):
            let missing = graph.orderedConstants.filter { $0.data == nil && $0.role != .literal }
            var total = 0
            for constant in missing {
                let bytes = constant.type.shape.elementCount.flatMap { MemoryBudget.bytes($0, elementSize: 4) }
                try budget.check(bytes, for: "weight '\(constant.name)' \(constant.type.shape)")
                total += bytes ?? 0
                try budget.check(total, for: "the seeded weights (up to '\(constant.name)')")
            }
            var result = graph
            var filled = 0
            for (name, constant) in graph.constants where constant.data == nil {
                if let data = WeightInitializer.initialize(constant, seed: seed) {
                    result.constants[name]?.data = data
                    filled += 1
                }
            }
            return (result, filled)
        case .onnx(let path, let match):
            let plan = try WeightBindingPlan.make(for: graph, onnxPath: path, match: match)
            return (plan.apply(to: graph), 0)
        }
    }
}
