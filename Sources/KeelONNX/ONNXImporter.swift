import KeelIR

/// The newest ai.onnx opset whose semantics the translation table follows. Opsets up to this
/// one only widened type lists for the ops Keel imports (26 and 27 add CumProd, BitCast,
/// LinearAttention and CausalConvWithState, refused as unsupported ops, and Range-27, which adds
/// float16/bfloat16 operands and their `stash_type`); anything newer is refused.
public let newestSupportedONNXOpset = 27

/// Imports an ONNX file as a Keel graph; external data must lie in the model's folder tree or a
/// folder `confinement` allows. `inputShapes` fixes dimensions the file leaves symbolic.
public func importONNXGraph(path: String, confinement: PathConfinement = PathConfinement(),
                            inputShapes: InputShapes = InputShapes()) throws -> Graph {
    try importONNXGraph(try loadONNXModel(path: path, confinement: confinement), inputShapes: inputShapes)
}

/// Translates a loaded model into a Keel graph: graph inputs with their (possibly symbolic)
/// types, initializers as constants, each node through the translation table, shape-computing
/// subgraphs folded into constant attributes, and the graph outputs.
///
/// `constantInputs` turns graph inputs into constants with the given values, for models that
/// feed weights, axes or shapes as inputs (the ONNX operator test cases do): such inputs must
/// be known when the graph is built, since Keel takes them as constants or attributes.
/// `inputShapes` fixes symbolic input dimensions before any node is translated, so shape
/// arithmetic on them folds as on any known size.
public func importONNXGraph(_ model: ONNXModel, constantInputs: [String: TensorData] = [:],
                            inputShapes: InputShapes = InputShapes()) throws -> Graph {
    try GraphImporter(model: model, constantInputs: constantInputs, inputShapes: inputShapes).run()
}

/// What the importer knows about one ONNX value.
struct ImportedValue {
    /// The IR value that carries it (nil while it exists only as a folded value).
    var irName: String?
    /// Its contents, when the partial evaluator knows them (small integer tensors, shapes).
    var known: KnownInts?
    /// Its partial shape: rank known, each dimension known, symbolic or nil (unknown).
    var shape: [Dim?]?
    /// Its elements as a function of their position, for index tensors sized by the batch.
    var grid: IndexGrid? = nil
}

/// Builds the IR graph node by node. A class because translations and folding share its
/// state (the value map, names in use, the graph under construction).
final class GraphImporter {
    let model: ONNXModel
    let path: String
    let opset: Int
    var graph: Graph
    var values: [String: ImportedValue] = [:]
    /// Every IR name handed out, so generated names never collide with the file's names.
    private var usedNames: Set<String> = []
    /// How many nodes (and graph outputs) read each ONNX value, to check unused outputs.
    private(set) var useCounts: [String: Int] = [:]

    private let constantInputs: [String: TensorData]
    private let inputShapes: InputShapes
    /// Values of the input symbols `inputShapes` fixes, substituted wherever the file names them.
    private var fixedSymbols: [String: Int] = [:]
    /// IR types of the graph inputs and of the values emitted so far, inferred node by node
    /// with the op registry's shape functions: exact shapes (`[49·N,768]`) for the folder.
    private(set) var irTypes: [String: TensorType] = [:]
    /// Shapes the file declares for intermediate values and outputs (`value_info`).
    private(set) var declaredShapes: [String: [Dim?]] = [:]
    /// Constants computed while importing from the model's shapes: the values shape arithmetic
    /// produced, which `foldSmallConstant` goes on evaluating.
    var derivedConstantNames: Set<String> = []
    /// Nodes whose results `evaluateConstantComputation` made constants: dropped after the last
    /// node is translated unless something else still reads them.
    var evaluatedNodeNames: Set<String> = []

    init(model: ONNXModel, constantInputs: [String: TensorData] = [:], inputShapes: InputShapes = InputShapes()) throws {
        self.model = model
        self.constantInputs = constantInputs
        self.inputShapes = inputShapes
        self.path = model.path
        guard let opset = model.defaultOpset else {
            throw ONNXError.notAModel(path: model.path, reason: "the model imports no ai.onnx operator set")
        }
        guard opset <= newestSupportedONNXOpset else {
            throw ONNXError.opsetTooNew(path: model.path, domain: "", version: opset, supported: newestSupportedONNXOpset)
        }
        self.opset = opset
        let name = model.graph.name.isEmpty ? "onnx" : model.graph.name
        self.graph = Graph(name: name, source: model.path)
    }

    func run() throws -> Graph {
        let source = model.graph
        for node in source.nodes { for input in node.inputs where !input.isEmpty { useCounts[input, default: 0] += 1 } }
        for output in source.outputs { useCounts[output.name, default: 0] += 1 }
        addInitializers(source.initializers)
        for input in source.inputs where values[input.name] == nil {
            if let data = constantInputs[input.name] { addConstant(name: uniqueName(input.name), data: data, onnxName: input.name) }
        }
        try addInputs(source.inputs)
        // Declared types of intermediate values fill in what the importer cannot tell itself.
        for info in source.valueInfo + source.outputs {
            if let dims = info.dims { declaredShapes[info.name] = Shape(symbolicShape(dims, of: info.name)).binding(fixedSymbols).dims }
        }
        for (index, node) in source.nodes.enumerated() {
            try translate(node, index: index)
        }
        for output in source.outputs {
            let value = try irValue(output.name, readBy: output.name, op: "graph output")
            graph.outputs.append(GraphOutput(name: output.name, value: value, location: .named(path, output.name)))
        }
        pruneEvaluatedNodes()
        fuseDenseBias()
        assignParameterRoles()
        pruneUnusedConstants()
        return graph
    }

    // MARK: Graph inputs and initializers

    private func addInitializers(_ initializers: [ONNXTensor]) {
        for tensor in initializers {
            let name = uniqueName(tensor.name)
            addConstant(name: name, data: tensor.data, onnxName: tensor.name)
        }
    }

    /// Registers a constant in the graph and as the value of `onnxName` (a literal until
    /// `assignParameterRoles` sees it used as a weight).
    func addConstant(name: String, data: TensorData, onnxName: String) {
        let type = TensorType(data.dtype, Shape(known: data.shape))
        graph.constants[name] = Constant(name: name, type: type, role: .literal, trainable: false,
                                         data: data, location: .named(path, onnxName))
        values[onnxName] = ImportedValue(irName: name, known: KnownInts(data), shape: data.shape.map { .known($0) })
    }

    private func addInputs(_ inputs: [ONNXValueInfo]) throws {
        var declared: [(input: ONNXValueInfo, dtype: DType, shape: [Dim])] = []
        for input in inputs where values[input.name] == nil {   // old files list initializers as inputs too
            guard let dtype = input.dtype else {
                throw ONNXError.unsupportedDType(path: path, name: input.name, dataType: input.elementType)
            }
            guard let dims = input.dims else {
                throw ONNXError.unsupportedNode(path: path, node: input.name, op: "graph input",
                                                reason: "declares no shape; Keel needs at least the rank")
            }
            declared.append((input, dtype, symbolicShape(dims, of: input.name)))
        }
        do {
            fixedSymbols = try inputShapes.symbolValues(for: declared.map { ($0.input.name, Shape($0.shape)) })
        } catch let error as InputShapeError {
            throw ONNXError.inputShape(path: path, problem: error)
        }
        for (input, dtype, symbolic) in declared {
            let shape = Shape(symbolic).binding(fixedSymbols).dims
            let name = uniqueName(input.name)
            graph.inputs.append(GraphInput(name: name, type: TensorType(dtype, Shape(shape)),
                                           layout: guessLayout(shape), location: .named(path, input.name)))
            values[input.name] = ImportedValue(irName: name, shape: shape)
            irTypes[name] = TensorType(dtype, Shape(shape))
        }
    }

    /// ONNX dims as IR dims: named dims stay symbols (the batch). Unnamed ones, and the
    /// placeholder names tf2onnx invents (`unk__42`), get a name: `N` on the leading axis (the
    /// batch, as Keel prints it), `<value>_dK` elsewhere, so they can still be bound.
    private func symbolicShape(_ dims: [ONNXDim], of value: String) -> [Dim] {
        dims.enumerated().map { axis, dim in
            switch dim {
            case .value(let extent): return .known(extent)
            case .param(let name) where !name.hasPrefix("unk__"): return .symbol(name)
            case .param, .unknown: return .symbol(axis == 0 ? "N" : "\(value)_d\(axis)")
            }
        }
    }

    /// ONNX declares no layout; a rank-4 input with 1 or 3 channels on one side is an image.
    private func guessLayout(_ shape: [Dim]) -> Layout? {
        guard shape.count == 4 else { return nil }
        if let channels = shape[1].value, channels == 1 || channels == 3 { return .nchw }
        if let channels = shape[3].value, channels == 1 || channels == 3 { return .nhwc }
        return nil
    }

    // MARK: Nodes

    private func translate(_ node: ONNXNode, index: Int) throws {
        let name = node.name.isEmpty ? "op_\(index)" : node.name
        guard node.domain.isEmpty || node.domain == "ai.onnx" else {
            throw ONNXError.unsupportedOp(path: path, node: name, op: node.opType, domain: node.domain)
        }
        for input in node.inputs where !input.isEmpty && values[input] == nil {
            throw ONNXError.undefinedValue(path: path, node: name, value: input)
        }
        guard let output = node.outputs.first, !output.isEmpty else {
            throw ONNXError.unsupportedNode(path: path, node: name, op: node.opType, reason: "has no output")
        }
        let context = NodeContext(importer: self, node: node, name: name)
        if try foldIndexGrid(context) { return }
        if try foldShapeComputation(context) { return }
        guard let translation = opTranslations[node.opType] else {
            throw ONNXError.unsupportedOp(path: path, node: name, op: node.opType, domain: node.domain)
        }
        try translation(context)
    }

    /// The IR value for an ONNX value, materializing a folded value as a constant when an
    /// IR node needs it; throws when the value depends on a symbolic (run-time) size.
    func irValue(_ onnxName: String, readBy reader: String, op: String) throws -> String {
        guard let value = values[onnxName] else {
            throw ONNXError.undefinedValue(path: path, node: reader, value: onnxName)
        }
        if let irName = value.irName { return irName }
        guard let known = value.known, let data = known.constantData() else {
            throw ONNXError.unsupportedNode(
                path: path, node: reader, op: op,
                reason: "input '\(onnxName)' depends on a run-time size; shape arithmetic can only end in a Reshape target")
        }
        let name = uniqueName(onnxName)
        addConstant(name: name, data: data, onnxName: onnxName)
        derivedConstantNames.insert(name)
        return name
    }

    /// Infers a just-emitted node's output types from what is known of its inputs; nil when an
    /// input's type is unknown or the shape function refuses the node.
    func inferTypes(of node: Node) -> [TensorType]? {
        var inputTypes: [TensorType?] = []
        for input in node.inputs {
            if input.isEmpty { inputTypes.append(nil); continue }
            guard let type = irTypes[input] ?? graph.constants[input]?.type else { return nil }
            inputTypes.append(type)
        }
        let constants = graph.constants
        guard let types = try? inferOutputTypes(of: node, inputTypes: inputTypes, constantValue: { constants[$0]?.data }) else {
            return nil
        }
        for (value, type) in zip(node.outputs, types) { irTypes[value] = type }
        return types
    }

    /// `base`, or `base_1`, `base_2`... when taken.
    func uniqueName(_ base: String) -> String {
        var candidate = base
        var suffix = 1
        while usedNames.contains(candidate) {
            candidate = "\(base)_\(suffix)"
            suffix += 1
        }
        usedNames.insert(candidate)
        return candidate
    }

    func isUsed(_ onnxName: String) -> Bool { !onnxName.isEmpty && useCounts[onnxName, default: 0] > 0 }
}
