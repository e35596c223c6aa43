import KeelIR
import KeelPasses
import KeelRuntime

/// Feature extraction runs a prefix of the model: the graph cut at a layer, with every node that
/// does not feed that layer removed (the heads of a backbone cost nothing). A source model is cut
/// before it is optimised, so no fusion can swallow the cut; a .keelc, already optimised, is cut
/// through the table `keel compile` recorded of where each source layer's output survives.
public enum GraphCut {
    /// Cuts `graph` (read from `file`, the path messages name) at `layer`: a node name, a value
    /// name, an output name (`keel check` lists those), or a Keras layer name inside a tf2onnx
    /// node name (`block5_pool` for `vgg16/block5_pool/MaxPool`).
    public static func cut(_ graph: Graph, at layer: String, file: String,
                           cutPoints: [String: ArtifactProvenance.CutPoint]? = nil) throws -> Graph {
        let value: String
        if let cutPoints {
            guard let point = cutPoints[layer] else {
                throw ModelFileError(path: file, reason: "no layer named '\(layer)'" + suggestion(for: layer, among: Array(cutPoints.keys)))
            }
            guard let found = point.value else {
                throw ModelFileError(path: file, reason: "cannot cut at '\(layer)': \(point.unavailable ?? "it was optimised away")")
            }
            value = found
        } else {
            guard let found = self.value(of: layer, in: graph) else {
                throw ModelFileError(path: file, reason: "no layer named '\(layer)'" + suggestion(for: layer, among: layerNames(of: graph)))
            }
            value = found
        }
        var result = graph
        result.outputs = [GraphOutput(name: layer, value: value, location: graph.producer(of: value)?.location)]
        return try pruned(result)
    }

    /// The value a layer name stands for, or nil.
    public static func value(of layer: String, in graph: Graph) -> String? {
        LayerIndex(graph).value(of: layer)
    }

    /// Every lookup `value(of:in:)` makes, indexed once: asked for every layer of a graph, a
    /// search per name made the cut-point table quadratic in the graph's size.
    private struct LayerIndex {
        var firstOutputByNode: [String: String] = [:]
        var values = Set<String>()
        var valueByOutputName: [String: String] = [:]
        /// A Keras layer inside tf2onnx names: its output is the last node carrying the name.
        var valueByKerasLayer: [String: String] = [:]

        init(_ graph: Graph) {
            for node in graph.nodes {
                if firstOutputByNode[node.name] == nil, let output = node.outputs.first { firstOutputByNode[node.name] = output }
                values.formUnion(node.outputs)
                if let output = node.outputs.first {
                    for layer in kerasLayers(in: node.name) { valueByKerasLayer[layer] = output }
                }
            }
            values.formUnion(graph.inputs.map(\.name))
            for output in graph.outputs where valueByOutputName[output.name] == nil { valueByOutputName[output.name] = output.value }
        }

        func value(of layer: String) -> String? {
            if let output = firstOutputByNode[layer] { return output }
            if values.contains(layer) { return layer }
            return valueByOutputName[layer] ?? valueByKerasLayer[layer]
        }
    }

    /// Every name `value(of:in:)` accepts: nodes, outputs and Keras layers of tf2onnx names.
    public static func layerNames(of graph: Graph) -> [String] {
        var names: [String] = []
        var seen = Set<String>()
        for name in graph.nodes.map(\.name) + graph.outputs.map(\.name) + graph.nodes.flatMap({ kerasLayers(in: $0.name) })
        where seen.insert(name).inserted {
            names.append(name)
        }
        return names
    }

    /// `model/block1_conv1/Conv2D` -> [block1_conv1]: the path's inner components.
    private static func kerasLayers(in name: String) -> [String] {
        let parts = name.split(separator: "/").map(String.init)
        return parts.count >= 3 ? Array(parts.dropFirst().dropLast()) : []
    }

    /// Drops nodes and constants that no output depends on, and inputs nothing reads.
    public static func pruned(_ graph: Graph) throws -> Graph {
        var result = try DeadCodeElimination().run(graph).graph
        let read = Set(result.nodes.flatMap(\.presentInputs) + result.outputs.map(\.value))
        result.inputs = result.inputs.filter { read.contains($0.name) }
        return result
    }

    /// Where each layer name of `source` can be cut in `compiled` (its optimised form): the
    /// compiled value that replaced the layer's output, when no later layer was fused into the
    /// same step and its shape is unchanged; otherwise the reason and the name to use instead.
    /// Passes replace a value by forwarding its readers to another, so a value's replacement is
    /// what its surviving readers read now; when several source values end in one compiled
    /// value, only the last of them (in graph order) is what it holds.
    public static func cutPoints(source: Graph, compiled: Graph) -> [String: ArtifactProvenance.CutPoint] {
        let produced = Set(compiled.nodes.flatMap(\.outputs))
        let compiledNodes = Dictionary(compiled.nodes.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        // Readers of each source value in graph order, and each value's producer: asked per node.
        var readers: [String: [Node]] = [:]
        var producerName: [String: String] = [:]
        for node in source.nodes {
            for input in Set(node.inputs) { readers[input, default: []].append(node) }
            for output in node.outputs where producerName[output] == nil { producerName[output] = node.name }
        }
        var replacement: [String: String] = [:]
        var order: [String: Int] = [:]
        for (index, node) in source.nodes.enumerated() {
            guard let output = node.outputs.first else { continue }
            order[output] = index
            if produced.contains(output) {
                replacement[output] = output
                continue
            }
            for reader in readers[output] ?? [] {
                guard let survivor = compiledNodes[reader.name], survivor.inputs.count == reader.inputs.count,
                      let position = reader.inputs.firstIndex(of: output) else { continue }
                replacement[output] = survivor.inputs[position]
                break
            }
            if replacement[output] == nil, let declared = source.outputs.first(where: { $0.value == output }),
               let kept = compiled.outputs.first(where: { $0.name == declared.name }) {
                replacement[output] = kept.value
            }
        }
        // The source value each compiled value holds: the last of those that end in it.
        var holder: [String: String] = [:]
        for (value, target) in replacement where order[value, default: -1] > order[holder[target] ?? "", default: -1] {
            holder[target] = value
        }
        // A value whose readers were all fused away went into the step that replaced theirs.
        var absorbed: [String: String] = [:]
        for node in source.nodes.reversed() {
            guard let output = node.outputs.first, replacement[output] == nil else { continue }
            absorbed[output] = (readers[output] ?? []).lazy
                .compactMap { reader in reader.outputs.first.flatMap { replacement[$0] ?? absorbed[$0] } }.first
        }
        func name(of value: String) -> String { producerName[value] ?? value }
        var table: [String: ArtifactProvenance.CutPoint] = [:]
        let index = LayerIndex(source)
        for layer in layerNames(of: source) {
            guard let value = index.value(of: layer) else { continue }
            if replacement[value] == nil, let target = absorbed[value], let later = holder[target] {
                table[layer] = .init(unavailable: "it is computed in one step with '\(name(of: later))' (fused by optimisation); cut at '\(name(of: later))', cut the source model, or compile it with -O0")
                continue
            }
            guard let target = replacement[value] ?? compiledNodes[name(of: value)]?.outputs.first, produced.contains(target) else {
                table[layer] = .init(unavailable: "optimisation removed it; cut the source model, or compile it with -O0")
                continue
            }
            guard let holding = holder[target], holding == value else {
                let later = holder[target].map(name(of:)) ?? "a later layer"
                table[layer] = .init(unavailable: "it is computed in one step with '\(later)' (fused by optimisation); cut at '\(later)', cut the source model, or compile it with -O0")
                continue
            }
            guard source.type(of: value) == compiled.type(of: target) else {
                table[layer] = .init(unavailable: "optimisation changed its layout; cut the source model, or compile it with -O0")
                continue
            }
            table[layer] = .init(value: target)
        }
        return table
    }
}
