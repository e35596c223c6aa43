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
    /// How many of the graph's parameters stay unbound.
    public var unbound: Int
    /// One line per problem: a layer the file does not name covers all its parameters.
    public var problems: [String]
    /// The way forward: the names the file has, whether `--match order` would bind.
    public var notes: [String]

    public var description: String {
        let noun = unbound == 1 ? "parameter" : "parameters"
        var text = "error: \(path): cannot bind \(unbound) \(noun):"
        for problem in problems { text += "\n  " + problem }
        for note in notes { text += "\nnote: " + note }
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
        var (bindings, problems, unbound) = bind(pairs, problems: matcher.problems, unbound: matcher.unbound)
        bindings += matcher.foldedBatchNorms.flatMap { $0.0.identityBindings(foldedInto: $0.1) }
        let used = Set(bindings.map(\.source))
        let unused = reader.floatTensors.filter { !used.contains($0.name) }
            .map { "\($0.name) \(Shape(known: $0.data.shape))" }
        guard problems.isEmpty else {
            var notes: [String] = []
            if match == .name, !matcher.unnamed.isEmpty {
                notes.append("the file's weighted layers are " + matcher.sourceNames.enumerated()
                    .map { "\($0.element) (\(sources[$0.offset].kind.rawValue))" }.joined(separator: ", "))
                var byOrder = LayerMatcher(targets: targets, sources: sources)
                let orderPairs = byOrder.byOrder()
                var ordered = bind(orderPairs, problems: byOrder.problems, unbound: byOrder.unbound)
                ordered.bindings += byOrder.foldedBatchNorms.flatMap { $0.0.identityBindings(foldedInto: $0.1) }
                if ordered.problems.isEmpty {
                    let why = pairs.isEmpty ? "no initializer or node name carries a layer name of the graph (PyTorch exports don't); " : ""
                    notes.append(why + "try --match order: it binds all \(ordered.bindings.count) parameters, "
                                 + "the graph's weighted layers and the file's agreeing in kind and shape, in order")
                } else {
                    notes.append("--match order would not bind either (\(ordered.problems.count) problems, first: \(ordered.problems[0]))")
                }
            }
            throw WeightBindingError(path: path, unbound: unbound, problems: problems, notes: notes)
        }
        return WeightBindingPlan(path: path, bindings: bindings, unused: unused)
    }

    /// Each pair's parameter bindings, with every problem and how many parameters they leave unbound.
    private static func bind(_ pairs: [(GraphLayer, SourceLayer)], problems: [String], unbound: Int)
        -> (bindings: [ParameterBinding], problems: [String], unbound: Int) {
        var bindings: [ParameterBinding] = []
        var problems = problems
        var unbound = unbound
        for (target, source) in pairs {
            do {
                bindings += try target.bind(to: source)
            } catch let error as LayerBindingProblems {
                problems += error.problems
                unbound += error.unbound
            } catch {
                problems.append(String(describing: error))
            }
        }
        return (bindings, problems, unbound)
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
    /// Parameters the problems so far leave unbound.
    var unbound = 0
    /// Graph layers whose name no layer of the file carries (by-name matching).
    var unnamed: [GraphLayer] = []
    /// Graph batch norms the file folded into the layer before them (by-order matching), with that layer.
    var foldedBatchNorms: [(GraphLayer, SourceLayer)] = []

    init(targets: [GraphLayer], sources: [SourceLayer]) {
        self.targets = targets
        self.sources = sources
    }

    /// What to call each source layer in messages: the Keras layer name inside a tf2onnx path
    /// (`model/dense_256/MatMul/ReadVariableOp:0` -> dense_256, after the prefix all layers share),
    /// the module path of a PyTorch weight (`classifier.0.weight` -> classifier.0), else the node.
    var sourceNames: [String] {
        let mainTensors = sources.map { ($0.tensors["weight"] ?? $0.tensors["scale"] ?? $0.tensors.values.first)?.name ?? $0.node }
        let paths = mainTensors.map(SourceLayerReader.nameParts)
        var shared = 0
        if let first = paths.first {
            while shared < first.count - 1, paths.allSatisfy({ $0.count > shared + 1 && $0[shared] == first[shared] }) { shared += 1 }
        }
        return zip(mainTensors, paths).map { tensor, parts in
            if parts.count > 1 { return parts[shared] }
            if let dot = tensor.lastIndex(of: "."), dot != tensor.startIndex { return String(tensor[..<dot]) }
            return tensor
        }
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
                unnamed.append(target)
            default:
                let names = candidates.map { "'\(sources[$0].node)'" }.joined(separator: ", ")
                problems.append("layer '\(target.name)' (\(target.parameterList)): ambiguous, named by \(names)")
                unbound += target.parameters.count
            }
        }
        // One line per layer the file does not name, with the unclaimed names of its kind closest to it.
        let names = sourceNames
        let free = sources.indices.filter { claims[$0] == nil }
        for target in unnamed {
            let kin = free.filter { target.accepts(sources[$0].kind) }.map { names[$0] }
            // Closest names help when the file names layers the Keras way (some matched); not among PyTorch's module paths.
            let closest = pairs.isEmpty ? [] : kin.sorted { editDistance(target.name, $0) < editDistance(target.name, $1) }.prefix(2)
            problems.append("layer '\(target.name)' (\(target.parameterList)): no \(target.kindDescription) weights in the file are named '\(target.name)'"
                            + (closest.isEmpty ? "" : "; closest: " + closest.joined(separator: ", ")))
            unbound += target.parameters.count
        }
        for (index, names) in claims.sorted(by: { $0.key < $1.key }) where names.count > 1 {
            unbound += targets.filter { names.contains($0.name) }.reduce(0) { $0 + $1.parameters.count }
            problems.append("ambiguous: ONNX node '\(sources[index].node)' is named after layers \(names.joined(separator: ", "))")
        }
        return pairs
    }

    /// Pairs the graph's weighted layers with the file's in order. A graph batch norm directly
    /// after a dense or conv layer, where the file has no BatchNormalization next, was folded into
    /// that layer by the exporter (PyTorch's dynamo exporter does so): it binds identity statistics.
    mutating func byOrder() -> [(GraphLayer, SourceLayer)] {
        var pairs: [(GraphLayer, SourceLayer)] = []
        var next = 0
        for (index, target) in targets.enumerated() {
            if target.node.op == .batchNorm, index > 0, let previous = pairs.last, previous.0.node.name == targets[index - 1].node.name,
               [.conv2d, .dense].contains(previous.0.node.op), target.node.inputs.first == previous.0.node.outputs.first,
               next >= sources.count || !target.accepts(sources[next].kind) {
                foldedBatchNorms.append((target, previous.1))
                continue
            }
            guard next < sources.count else {
                problems.append("layer '\(target.name)' (\(target.parameterList)): the file has only \(sources.count) weighted layers; this is layer \(index + 1)")
                unbound += target.parameters.count
                continue
            }
            let source = sources[next]
            next += 1
            if target.accepts(source.kind) {
                pairs.append((target, source))
            } else {
                problems.append("layer '\(target.name)' (\(target.parameterList)): weighted layer \(index + 1) is a \(target.kindDescription) in the graph but \(source.kind.rawValue) '\(source.node)' in the file")
                unbound += target.parameters.count
            }
        }
        for source in sources.dropFirst(next) {
            problems.append("ONNX \(source.kind.rawValue) '\(source.node)' (\(source.tensors.values.map(\.name).sorted().joined(separator: ", "))) has no layer in the graph")
        }
        return pairs
    }
}
