import KeelIR
import KeelONNX

/// How a graph's parameters find their tensors in a weights file.
public enum WeightMatch: String, Sendable, CaseIterable {
    /// By the Keras layer name inside the initializer or node names (tf2onnx keeps them:
    /// `model/block1_conv1/Conv2D/ReadVariableOp:0`).
    case name
    /// By position: the graph's weighted layers in node order against the file's, in the order
    /// its nodes consume them (PyTorch exports name weights `features.0.weight`, not by layer).
    case order
}

/// Every parameter that could not be bound, in one error: a partial binding never runs.
public struct WeightBindingError: Error, CustomStringConvertible {
    public var path: String
    public var problems: [String]
    public var hint: String?

    public var description: String {
        let noun = problems.count == 1 ? "parameter" : "parameters"
        var text = "error: \(path): cannot bind \(problems.count) \(noun):"
        for problem in problems { text += "\n  " + problem }
        if let hint { text += "\nnote: " + hint }
        return text
    }
}

/// One parameter's source and conversion, as `--explain` prints it.
public struct ParameterBinding {
    public var parameter: String
    public var type: TensorType
    /// The ONNX tensor read, or what stands in for it (`0`, `1` for a folded BatchNorm).
    public var source: String
    public var sourceShape: [Int]?
    public var conversion: String?
    let recipe: WeightRecipe

    public var line: String {
        var text = "\(parameter) \(type) <- \(source)"
        if let sourceShape { text += " " + Shape(known: sourceShape).description }
        if let conversion { text += " (\(conversion))" }
        return text
    }
}

/// The complete mapping from a graph's parameters to a weights file; made before any value is
/// converted, so explaining it costs nothing and a failure leaves nothing half done.
public struct WeightBindingPlan {
    public var path: String
    public var bindings: [ParameterBinding]
    /// Float initializers no parameter reads.
    public var unused: [String]

    /// `--explain`: one line per parameter, then the file's unused initializers.
    public var explanation: [String] {
        bindings.map(\.line) + unused.map { "unused: \($0)" }
    }

    /// Plans binding `graph`'s parameters (constants whose role is not literal) to the ONNX
    /// model at `path`; throws one error naming every unbound, ambiguous or mismatched one.
    public static func make(for graph: Graph, onnxPath path: String, match: WeightMatch) throws -> WeightBindingPlan {
        let model = try loadONNXModel(path: path)
        let reader = SourceLayerReader(graph: model.graph)
        let sources = reader.layers()
        let targets = GraphLayer.layers(of: graph)
        var matcher = LayerMatcher(targets: targets, sources: sources)
        let pairs = match == .name ? matcher.byName() : matcher.byOrder()
        var bindings: [ParameterBinding] = []
        var problems = matcher.problems
        for (target, source) in pairs {
            do {
                bindings += try target.bind(to: source)
            } catch let error as LayerBindingProblems {
                problems += error.problems
            }
        }
        let used = Set(bindings.map(\.source))
        let unused = reader.floatTensors.filter { !used.contains($0.name) }
            .map { "\($0.name) \(Shape(known: $0.data.shape))" }
        guard problems.isEmpty else {
            var hint: String?
            if match == .name, pairs.isEmpty, !targets.isEmpty {
                hint = "no initializer or node name carries a layer name of the graph (PyTorch exports don't); try --match order"
            }
            throw WeightBindingError(path: path, problems: problems, hint: hint)
        }
        return WeightBindingPlan(path: path, bindings: bindings, unused: unused)
    }

    /// The graph with every planned parameter's data set; converts only what needs a new layout.
    public func apply(to graph: Graph) -> Graph {
        var result = graph
        for binding in bindings {
            guard let shape = graph.constants[binding.parameter]?.type.shape.knownExtents else { continue }
            result.constants[binding.parameter]?.data = binding.recipe.make(shape: shape)
        }
        return result
    }
}

/// Pairs the graph's weighted layers with the file's, collecting what cannot be paired.
struct LayerMatcher {
    let targets: [GraphLayer]
    let sources: [SourceLayer]
    var problems: [String] = []

    init(targets: [GraphLayer], sources: [SourceLayer]) {
        self.targets = targets
        self.sources = sources
    }

    mutating func byName() -> [(GraphLayer, SourceLayer)] {
        var pairs: [(GraphLayer, SourceLayer)] = []
        var claims: [Int: [String]] = [:]
        for target in targets {
            let candidates = sources.indices.filter { sources[$0].nameParts.contains(target.name) && target.accepts(sources[$0].kind) }
            switch candidates.count {
            case 1:
                pairs.append((target, sources[candidates[0]]))
                claims[candidates[0], default: []].append(target.name)
            case 0:
                problems += target.parameterLines("no \(target.kindDescription) weights in the file name layer '\(target.name)'")
            default:
                let names = candidates.map { "'\(sources[$0].node)'" }.joined(separator: ", ")
                problems += target.parameterLines("ambiguous: layer '\(target.name)' is named by \(names)")
            }
        }
        for (index, names) in claims.sorted(by: { $0.key < $1.key }) where names.count > 1 {
            problems.append("ambiguous: ONNX node '\(sources[index].node)' is named after layers \(names.joined(separator: ", "))")
        }
        return pairs
    }

    mutating func byOrder() -> [(GraphLayer, SourceLayer)] {
        var pairs: [(GraphLayer, SourceLayer)] = []
        for (index, target) in targets.enumerated() {
            guard index < sources.count else {
                problems += target.parameterLines("the file has only \(sources.count) weighted layers; this is layer \(index + 1)")
                continue
            }
            let source = sources[index]
            if target.accepts(source.kind) {
                pairs.append((target, source))
            } else {
                problems += target.parameterLines("weighted layer \(index + 1) is a \(target.kindDescription) in the graph but \(source.kind.rawValue) '\(source.node)' in the file")
            }
        }
        for source in sources.dropFirst(targets.count) {
            problems.append("ONNX \(source.kind.rawValue) '\(source.node)' (\(source.tensors.values.map(\.name).sorted().joined(separator: ", "))) has no layer in the graph")
        }
        return pairs
    }
}
