import KeelIR

/// One ONNX node being translated: typed access to its attributes and inputs (honouring
/// that older opsets pass some inputs as attributes), and emission of IR nodes.
struct NodeContext {
    let importer: GraphImporter
    let node: ONNXNode
    /// The ONNX node name, or `op_N` when the file gives none.
    let name: String

    var opset: Int { importer.opset }
    var location: SourceLocation { .named(importer.path, name) }

    func fail(_ reason: String) -> ONNXError {
        .unsupportedNode(path: importer.path, node: name, op: node.opType, reason: reason)
    }

    // MARK: Attributes

    func int(_ key: String, default value: Int) throws -> Int { try optionalInt(key) ?? value }

    func optionalInt(_ key: String) throws -> Int? {
        switch node.attributes[key] {
        case nil: return nil
        case .int(let value): return value
        default: throw fail("attribute '\(key)' should be an integer")
        }
    }

    func ints(_ key: String) throws -> [Int]? {
        switch node.attributes[key] {
        case nil: return nil
        case .ints(let values): return values
        case .int(let value): return [value]
        default: throw fail("attribute '\(key)' should be a list of integers")
        }
    }

    func float(_ key: String, default value: Float) throws -> Float { try optionalFloat(key) ?? value }

    func optionalFloat(_ key: String) throws -> Float? {
        switch node.attributes[key] {
        case nil: return nil
        case .float(let value): return value
        case .int(let value): return Float(value)
        default: throw fail("attribute '\(key)' should be a float")
        }
    }

    func string(_ key: String, default value: String) throws -> String {
        switch node.attributes[key] {
        case nil: return value
        case .string(let text): return text
        default: throw fail("attribute '\(key)' should be a string")
        }
    }

    func optionalTensorAttribute(_ key: String) throws -> TensorData? {
        switch node.attributes[key] {
        case nil: return nil
        case .tensor(let data): return data
        default: throw fail("attribute '\(key)' should be a tensor")
        }
    }

    /// The value of a Constant node, from whichever `value*` attribute it carries.
    func constantAttributeValue() throws -> TensorData {
        if let data = try optionalTensorAttribute("value") { return data }
        switch (node.attributes["value_float"], node.attributes["value_floats"],
                node.attributes["value_int"], node.attributes["value_ints"]) {
        case (.float(let value)?, _, _, _): return TensorData(floats: [value], shape: [])
        case (_, .floats(let values)?, _, _): return TensorData(floats: values, shape: [values.count])
        case (_, _, .int(let value)?, _): return TensorData(int64s: [Int64(value)], shape: [])
        case (_, _, _, .ints(let values)?): return TensorData(int64s: values.map(Int64.init), shape: [values.count])
        default: throw fail("has no tensor, float or integer value (strings and sparse values are not supported)")
        }
    }

    // MARK: Inputs

    func hasInput(_ index: Int) -> Bool { index < node.inputs.count && !node.inputs[index].isEmpty }

    /// The IR value of a required input.
    func input(_ index: Int) throws -> String {
        guard hasInput(index) else { throw fail("input \(index) is missing") }
        return try importer.irValue(node.inputs[index], readBy: name, op: node.opType)
    }

    func optionalInput(_ index: Int) throws -> String? { hasInput(index) ? try input(index) : nil }

    /// The partial shape of an input (nil when not even the rank is known).
    func shape(_ index: Int) -> [Dim?]? {
        guard hasInput(index) else { return nil }
        return importer.values[node.inputs[index]]?.shape
    }

    /// Constant contents of an input, if it is a constant.
    func constantData(_ index: Int) -> TensorData? {
        guard hasInput(index), let value = importer.values[node.inputs[index]] else { return nil }
        if let irName = value.irName { return importer.graph.constants[irName]?.data }
        return value.known?.constantData()
    }

    /// An input that must be a constant integer list (axes, pads, starts...); nil when absent.
    func constantInts(_ index: Int) throws -> [Int]? {
        guard hasInput(index) else { return nil }
        let input = node.inputs[index]
        if let constants = importer.values[input]?.known?.constants { return constants.map { Int(clamping: $0) } }
        guard let data = constantData(index) else {
            throw fail("input '\(input)' must be a constant known at import time")
        }
        guard data.dtype == .int64 || data.dtype == .int32 else { throw fail("input '\(input)' must hold integers") }
        return data.int64s().map { Int(clamping: $0) }
    }

    /// An input that must be a constant scalar (Clip bounds, Pad value...); nil when absent.
    func constantFloat(_ index: Int) throws -> Float? {
        guard hasInput(index) else { return nil }
        guard let data = constantData(index) else {
            throw fail("input '\(node.inputs[index])' must be a constant known at import time")
        }
        guard data.elementCount == 1 else { throw fail("input '\(node.inputs[index])' must hold one value") }
        if data.dtype == .int64 || data.dtype == .int32 { return data.int64s().first.map(Float.init) }
        return data.floats().first
    }

    /// An input that must be a constant list of floats (Resize scales and roi); nil when absent
    /// or empty, which ONNX also uses to leave an input out.
    func constantFloats(_ index: Int) throws -> [Float]? {
        guard hasInput(index) else { return nil }
        guard let data = constantData(index) else {
            throw fail("input '\(node.inputs[index])' must be a constant known at import time")
        }
        guard data.elementCount > 0 else { return nil }
        guard data.dtype == .float32 else { throw fail("input '\(node.inputs[index])' must hold float32 values") }
        return data.floats()
    }

    /// Refuses nodes whose extra outputs (masks, indices, statistics) something reads.
    func requireUnusedOutputs(from first: Int) throws {
        for index in node.outputs.indices where index >= first && importer.isUsed(node.outputs[index]) {
            throw fail("output \(index) ('\(node.outputs[index])') is used, but Keel computes only the first output")
        }
    }

    // MARK: Emission

    /// Emits the IR node that stands for this ONNX node: named after it, its output bound to
    /// the node's first output. `shape` is what the folder may later need (nil if unknown).
    @discardableResult
    func emit(_ op: OpKind, _ inputs: [String], _ attributes: [String: AttributeValue] = [:], shape: [Dim?]?) -> String {
        let irName = importer.uniqueName(name)
        let output = node.outputs[0]
        let isGraphOutput = importer.model.graph.outputs.contains { $0.name == output }
        let inferred = append(op, irName, inputs, attributes, foldable: !isGraphOutput)?.first.map { $0.shape.dims.map(Optional.some) }
        let folded = importer.graph.constants[irName]?.data.flatMap(KnownInts.init)
        importer.values[output] = ImportedValue(irName: irName, known: folded,
                                                shape: mergeShapes(inferred ?? shape, importer.declaredShapes[output]))
        return irName
    }

    /// Emits an IR node with several outputs bound to the ONNX node's first `shapes.count`
    /// outputs: the first named after the node, the others `name:1`, `name:2`... An output the
    /// file leaves unnamed still gets an IR value, since IR outputs are positional.
    @discardableResult
    func emit(_ op: OpKind, _ inputs: [String], _ attributes: [String: AttributeValue] = [:], shapes: [[Dim?]?]) -> [String] {
        let irName = importer.uniqueName(name)
        let outputs = shapes.indices.map { $0 == 0 ? irName : importer.uniqueName("\(irName):\($0)") }
        let irNode = Node(name: irName, op: op, inputs: inputs, outputs: outputs, attributes: Attributes(attributes), locations: [location])
        importer.graph.nodes.append(irNode)
        let inferred = importer.inferTypes(of: irNode)
        for (index, output) in outputs.enumerated() where index < node.outputs.count && !node.outputs[index].isEmpty {
            let onnxName = node.outputs[index]
            let exact = inferred.flatMap { index < $0.count ? $0[index].shape.dims.map(Optional.some) : nil }
            importer.values[onnxName] = ImportedValue(irName: output, known: nil,
                                                      shape: mergeShapes(exact ?? shapes[index], importer.declaredShapes[onnxName]))
        }
        return outputs
    }

    /// Emits an intermediate IR node (`name/suffix`) when one ONNX node needs several.
    func emitStep(_ suffix: String, _ op: OpKind, _ inputs: [String], _ attributes: [String: AttributeValue] = [:]) -> String {
        let irName = importer.uniqueName("\(name)/\(suffix)")
        append(op, irName, inputs, attributes)
        return irName
    }

    /// Adds a literal constant the translation needs (a scale factor, a reshaped bias).
    func addLiteral(_ suffix: String, _ data: TensorData) -> String {
        let irName = importer.uniqueName("\(name)/\(suffix)")
        let type = TensorType(data.dtype, Shape(known: data.shape))
        importer.graph.constants[irName] = Constant(name: irName, type: type, role: .literal, trainable: false,
                                                    data: data, location: location)
        return irName
    }

    /// What the translation worked out, with unknown dimensions taken from the file's declaration.
    private func mergeShapes(_ computed: [Dim?]?, _ declared: [Dim?]?) -> [Dim?]? {
        guard let declared else { return computed }
        guard let computed, computed.count == declared.count else { return declared }
        return zip(computed, declared).map { $0 ?? $1 }
    }

    /// Appends the node and returns its inferred output types (nil when inference fails here:
    /// `keel check` reports that later, with the whole graph). A small constant computation is
    /// evaluated at once (`foldSmallConstant`) unless it is a graph output, which stays a node.
    @discardableResult
    private func append(_ op: OpKind, _ irName: String, _ inputs: [String], _ attributes: [String: AttributeValue],
                        foldable: Bool = true) -> [TensorType]? {
        let irNode = Node(name: irName, op: op, inputs: inputs, outputs: [irName], attributes: Attributes(attributes), locations: [location])
        importer.graph.nodes.append(irNode)
        let types = importer.inferTypes(of: irNode)
        if foldable, let types, types.count == 1 { importer.foldSmallConstant(irNode, type: types[0]) }
        return types
    }
}
