/// The IR's text form (spec/ir.md): one line per item, stable and diffable, for golden tests
/// and `keel` dumps. Constants print in `orderedConstants` order, attributes sorted by name.
public func printIR(_ graph: Graph) -> String {
    var lines = ["graph \(graph.name)"]
    for input in graph.inputs {
        var line = "input %\(input.name): \(input.type)"
        if let layout = input.layout { line += " \(layout.rawValue)" }
        if let preprocess = input.preprocess { line += " preprocess=\"\(preprocess)\"" }
        lines.append(line)
    }
    for constant in graph.orderedConstants {
        lines.append("const @\(constant.name): \(constant.type) \(constant.role.rawValue)\(constant.trainable ? "" : " frozen")")
    }
    for node in graph.nodes { lines.append(printedNode(node, in: graph)) }
    for output in graph.outputs {
        lines.append("output \(output.name) = \(printedValue(output.value, in: graph))")
    }
    return lines.joined(separator: "\n") + "\n"
}

extension Graph {
    /// The graph in the IR text form; see `printIR`.
    public var irText: String { printIR(self) }
}

/// `%out = op(%in, @const) {attrs} : type  # file:line:col`. Absent optional inputs print as
/// `_` (trailing ones are dropped); a fused node lists every location it came from.
func printedNode(_ node: Node, in graph: Graph) -> String {
    var inputs = node.inputs
    while inputs.last?.isEmpty == true { inputs.removeLast() }
    let arguments = inputs.map { $0.isEmpty ? "_" : printedValue($0, in: graph) }.joined(separator: ", ")
    let results = node.outputs.map { "%" + $0 }.joined(separator: ", ")
    var line = "\(results) = \(node.op.rawValue)(\(arguments))"
    if !node.attributes.isEmpty { line += " \(node.attributes)" }
    let types = node.outputs.map { graph.valueTypes[$0]?.description ?? "?" }.joined(separator: ", ")
    line += " : \(types)"
    if !node.locations.isEmpty {
        line += "  # " + node.locations.map(printedLocation).joined(separator: ", ")
    }
    return line
}

/// Constants are `@name`, every other value `%name`.
func printedValue(_ name: String, in graph: Graph) -> String {
    (graph.constants[name] != nil ? "@" : "%") + name
}

/// `vgg16.keel:7:5` with the directory dropped, so goldens do not depend on where files live.
/// An ONNX location `dir/model.onnx(model/conv2d/Conv2D)` keeps its node name whole.
func printedLocation(_ location: SourceLocation) -> String {
    var copy = location
    let path = copy.file.firstIndex(of: "(").map { copy.file[..<$0] } ?? copy.file[...]
    if let slash = path.lastIndex(of: "/") { copy.file = String(copy.file[copy.file.index(after: slash)...]) }
    return copy.description
}
