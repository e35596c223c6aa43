import KeelIR

/// Translates a flat model into an IR graph. Layers translate in dependency order because each one's
/// parameters are sized from its input type; the registry's shape functions give each output type.
struct GraphTranslator {
    private let model: FlatModel
    private var graph: Graph
    private var layouts: [String: Layout] = [:]
    private var provenance = Provenance()

    /// 2^34 floats (64 GiB): anything larger is a typo, not a model.
    static let largestParameter = 1 << 34

    private init(_ model: FlatModel) {
        self.model = model
        self.graph = Graph(name: model.name, source: model.source)
    }

    static func translate(_ model: FlatModel, inputShapes: InputShapes = InputShapes()) throws -> Graph {
        var translator = GraphTranslator(model)
        try translator.translateInputs(fixing: inputShapes)
        let types = try translator.checkLayers()
        for index in try translator.dependencyOrder() {
            try translator.translate(model.layers[index], as: types[index])
        }
        try translator.translateOutputs()
        return translator.graph
    }

    // MARK: Names and order

    private mutating func translateInputs(fixing inputShapes: InputShapes) throws {
        let fixed: [String: Int]
        do {
            fixed = try inputShapes.symbolValues(for: model.inputs.map { ($0.name, $0.type.shape) })
        } catch let problem as InputShapeError {
            throw Diagnostic(problem.description, at: model.inputs.first?.location)
        }
        for input in model.inputs {
            let type = TensorType(input.type.dtype, input.type.shape.binding(fixed))
            graph.inputs.append(GraphInput(name: input.name, type: type, layout: input.layout,
                                           location: input.location, preprocess: input.preprocess))
            graph.valueTypes[input.name] = type
            if let layout = input.layout { layouts[input.name] = layout }
            provenance.declare(input)
        }
    }

    /// Checks names, layer types, input counts and attributes in source order, before any shape work.
    private func checkLayers() throws -> [(LayerType, LayerArguments)] {
        var definitions: [String: SourceLocation] = [:]
        for input in model.inputs {
            if let first = definitions[input.name] { throw duplicate(input.name, at: input.location, first: first, callSites: []) }
            definitions[input.name] = input.location
        }
        for layer in model.layers {
            if let first = definitions[layer.name] { throw duplicate(layer.name, at: layer.location, first: first, callSites: layer.callSites) }
            definitions[layer.name] = layer.location
        }
        let names = Array(definitions.keys).sorted()
        return try model.layers.map { layer in
            guard let type = LayerCatalog.type(named: layer.type) else {
                throw Diagnostic("unknown layer type '\(layer.type)'\(LayerCatalog.suggestion(for: layer.type))",
                                 at: layer.typeLocation).noting(layer.callSites)
            }
            if !type.inputCount.contains(layer.inputs.count) {
                let range = type.inputCount
                let expected = range.upperBound == Int.max ? "at least \(range.lowerBound)" : range.count == 1 ? "\(range.lowerBound)" : "\(range.lowerBound)...\(range.upperBound)"
                let plural = range.upperBound == 1 ? "" : "s"
                throw Diagnostic("\(layer.type) '\(layer.name)' takes \(expected) input\(plural) but is given \(layer.inputs.count)", at: layer.location)
                    .noting(layer.callSites)
            }
            for reference in layer.inputs where definitions[reference.name] == nil {
                throw Diagnostic("undefined name '\(reference.name)'\(suggestion(for: reference.name, among: names))", at: reference.location)
                    .noting(layer.callSites)
            }
            return (type, try LayerArguments(layer, type: type))
        }
    }

    private func duplicate(_ name: String, at location: SourceLocation, first: SourceLocation, callSites: [CallSite]) -> Diagnostic {
        Diagnostic("duplicate name '\(name)'", at: location).noting(callSites)
            .adding(Diagnostic.Note("'\(name)' is first defined here", at: first))
    }

    /// Layer indices with every layer after the layers it reads; source order otherwise.
    private func dependencyOrder() throws -> [Int] {
        var indexOf: [String: Int] = [:]
        for (index, layer) in model.layers.enumerated() { indexOf[layer.name] = index }
        enum State { case unvisited, visiting, done }
        var states = [State](repeating: .unvisited, count: model.layers.count)
        var order: [Int] = []
        var path: [Int] = []
        func visit(_ index: Int) throws {
            switch states[index] {
            case .done: return
            case .visiting:
                let cycle = path[(path.lastIndex(of: index) ?? 0)...].map { model.layers[$0].name } + [model.layers[index].name]
                throw Diagnostic("layers form a cycle: \(cycle.joined(separator: " -> "))", at: model.layers[index].location)
                    .noting(model.layers[index].callSites)
            case .unvisited:
                states[index] = .visiting
                path.append(index)
                for reference in model.layers[index].inputs {
                    if let producer = indexOf[reference.name] { try visit(producer) }
                }
                path.removeLast()
                states[index] = .done
                order.append(index)
            }
        }
        for index in model.layers.indices { try visit(index) }
        return order
    }

    // MARK: Layers

    private mutating func translate(_ layer: LayerInstance, as checked: (LayerType, LayerArguments)) throws {
        let (type, arguments) = checked
        let inputTypes = layer.inputs.compactMap { graph.type(of: $0.name) }
        let layout = layouts[layer.inputs[0].name]
        let context = LayerContext(layer: layer, arguments: arguments, inputTypes: inputTypes, layout: layout)
        let translation = try type.translate(context)
        var attributes = Attributes(translation.attributes)
        // Pools: strides equal to the pool size are the default, which the schema cannot state.
        if translation.op == .maxPool2d || translation.op == .avgPool2d, attributes["strides"] == attributes["pool_size"] {
            attributes["strides"] = nil
        }
        if type.isSpatial, layout == .nchw { attributes["layout"] = .string("nchw") }

        var inputs = layer.inputs.map(\.name)
        for (role, shape) in translation.parameters {
            let name = "\(layer.name)/\(role.rawValue)"
            let count = shape.reduce((1, false)) { partial, extent in
                let product = partial.0.multipliedReportingOverflow(by: extent)
                return (product.partialValue, partial.1 || product.overflow)
            }
            guard !count.1, count.0 <= GraphTranslator.largestParameter else {
                throw context.error("would need a \(role.rawValue) of shape \(Shape(known: shape)), more than \(formatCount(GraphTranslator.largestParameter)) elements")
            }
            let trainable = !layer.frozen && role != .movingMean && role != .movingVariance
            let type = TensorType(.float32, Shape(known: shape))
            graph.constants[name] = Constant(name: name, type: type, role: role, trainable: trainable, location: layer.location)
            graph.valueTypes[name] = type
            inputs.append(name)
        }
        let node = Node(name: layer.name, op: translation.op, inputs: inputs, outputs: [layer.name],
                        attributes: attributes, locations: [layer.location]).droppingDefaultAttributes()
        let outputType: TensorType
        do {
            let types = try inferOutputTypes(of: node, inputTypes: inputs.map { graph.type(of: $0) })
            outputType = types[0]
        } catch let diagnostic as Diagnostic {
            throw provenance.explain(diagnostic, layer: layer, arguments: arguments, inputTypes: inputTypes, graph: graph)
                .noting(layer.callSites)
        } catch {
            throw Diagnostic("\(layer.type) '\(layer.name)' \(error)", at: layer.location).noting(layer.callSites)
        }
        graph.nodes.append(node)
        graph.valueTypes[layer.name] = outputType
        if let layout, outputType.shape.rank == 4, translation.op != .reshape { layouts[layer.name] = layout }
        provenance.record(layer, op: translation.op, arguments: arguments, inputTypes: inputTypes, layout: layout, output: outputType)
    }

    // MARK: Outputs

    private mutating func translateOutputs() throws {
        var seen: [String: SourceLocation] = [:]
        for output in model.outputs {
            if let first = seen[output.name] {
                throw Diagnostic("duplicate output '\(output.name)'", at: output.location,
                                 notes: [Diagnostic.Note("first declared here", at: first)])
            }
            seen[output.name] = output.location
            guard graph.type(of: output.value.name) != nil, graph.constants[output.value.name] == nil else {
                let names = graph.inputs.map(\.name) + graph.nodes.map(\.name)
                throw Diagnostic("output '\(output.name)' reads undefined name '\(output.value.name)'\(suggestion(for: output.value.name, among: names))",
                                 at: output.value.location)
            }
            graph.outputs.append(GraphOutput(name: output.name, value: output.value.name, location: output.location,
                                             labels: output.labels))
        }
        // Without outputs, the model ends at its last layer, as a Keras Sequential model does.
        // (the last layer translated, which no earlier layer reads).
        if graph.outputs.isEmpty, let last = graph.nodes.last {
            graph.outputs.append(GraphOutput(name: last.name, value: last.name, location: last.location))
        }
    }
}
