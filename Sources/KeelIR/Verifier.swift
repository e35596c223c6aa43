/// Checks the structural invariants every pass may rely on, and throws a `Diagnostic` that
/// names the offending node at its location:
/// - node names and value names (inputs, constants, node outputs) are unique;
/// - every input is defined before it is read (a value read before it is produced is reported
///   as out of order, or as a cycle with its path);
/// - parameter inputs (kernel, bias, gamma...) name constants;
/// - inputs and outputs match the op schema's arity; attribute names are ones the schema knows;
/// - graph outputs name existing values;
/// - with `requiringTypes`, every value has a type (true after shape inference; front ends
///   verify before it with `requiringTypes: false`).
public func verify(_ graph: Graph, requiringTypes: Bool = true) throws {
    var defined = Set<String>()
    func define(_ name: String, _ what: String, at location: SourceLocation?) throws {
        guard !name.isEmpty else { throw Diagnostic("\(what) has an empty value name", at: location) }
        guard defined.insert(name).inserted else {
            throw Diagnostic("\(what) redefines value '\(name)'", at: location)
        }
    }
    for input in graph.inputs {
        try define(input.name, "input '\(input.name)'", at: input.location)
        try checkExtents(input.type, "input '\(input.name)'", at: input.location)
    }
    for name in graph.constants.keys.sorted() {
        guard let constant = graph.constants[name] else { continue }
        guard constant.name == name else {
            throw Diagnostic("constant '\(constant.name)' is stored under the name '\(name)'", at: constant.location)
        }
        try define(name, "constant '\(name)'", at: constant.location)
        try checkExtents(constant.type, "constant '\(name)'", at: constant.location)
    }

    var nodeNames = Set<String>()
    for (position, node) in graph.nodes.enumerated() {
        let reader = AttributeReader(node: node)
        guard nodeNames.insert(node.name).inserted else {
            throw reader.error("reuses the layer name '\(node.name)'")
        }
        try reader.schema.checkArity(node)
        for (index, input) in node.inputs.enumerated() where !input.isEmpty {
            if !defined.contains(input) {
                throw undefinedInputError(graph, position: position, input: input, reader: reader)
            }
            let spec = index < reader.schema.inputs.count ? reader.schema.inputs[index] : reader.schema.inputs.last
            if spec?.isParameter == true && graph.constants[input] == nil {
                throw reader.error("'\(spec?.name ?? "")' input must name a constant, but '\(input)' is a computed value")
            }
        }
        for name in node.attributes.names where reader.schema.attributeSpec(name) == nil {
            let known = reader.schema.attributes.map(\.name).joined(separator: ", ")
            throw reader.error("has unknown attribute '\(name)'" + (known.isEmpty ? "; it takes none" : "; it takes \(known)"))
        }
        for output in node.outputs { try define(output, "\(reader.layerDescription)", at: node.location) }
        if requiringTypes {
            for output in node.outputs where graph.valueTypes[output] == nil {
                throw reader.error("output '\(output)' has no type; run shape inference first")
            }
        }
    }

    var outputNames = Set<String>()
    for output in graph.outputs {
        guard outputNames.insert(output.name).inserted else {
            throw Diagnostic("output '\(output.name)' is declared twice", at: output.location)
        }
        guard defined.contains(output.value) else {
            throw Diagnostic("output '\(output.name)' names undefined value '\(output.value)'", at: output.location)
        }
        if requiringTypes && graph.type(of: output.value) == nil {
            throw Diagnostic("output '\(output.name)' value '\(output.value)' has no type", at: output.location)
        }
    }
}

/// Shape functions assume extents are not negative; reject such declarations up front.
private func checkExtents(_ type: TensorType, _ what: String, at location: SourceLocation?) throws {
    if type.shape.dims.contains(where: { ($0.value ?? 0) < 0 }) {
        throw Diagnostic("\(what) has a negative extent: \(type.shape)", at: location)
    }
}

/// Explains an input that is not yet defined: never produced, produced later, or part of a cycle.
private func undefinedInputError(_ graph: Graph, position: Int, input: String, reader: AttributeReader) -> Diagnostic {
    let nodes = graph.nodes
    guard let producerIndex = nodes.firstIndex(where: { $0.outputs.contains(input) }) else {
        return reader.error("reads undefined value '\(input)'")
    }
    // Walk back from the producer through its inputs; reaching this node again means a cycle.
    var producers: [String: Int] = [:]
    for (index, node) in nodes.enumerated() { for output in node.outputs { producers[output] = index } }
    var path: [Int] = []
    var visited = Set<Int>()
    func reaches(_ index: Int) -> Bool {
        if index == position { return true }
        guard visited.insert(index).inserted else { return false }
        for value in nodes[index].presentInputs {
            if let next = producers[value], reaches(next) { path.append(next); return true }
        }
        return false
    }
    if reaches(producerIndex) {
        let cycle = [position] + path.reversed().dropLast() + [producerIndex, position]
        let names = cycle.map { nodes[$0].name }
        return reader.error("is part of a cycle: \(deduplicatedAdjacent(names).joined(separator: " -> "))")
    }
    return reader.error("reads '\(input)' before node '\(nodes[producerIndex].name)' produces it; nodes are not in topological order")
}

private func deduplicatedAdjacent(_ names: [String]) -> [String] {
    var result: [String] = []
    for name in names where result.last != name { result.append(name) }
    return result
}
