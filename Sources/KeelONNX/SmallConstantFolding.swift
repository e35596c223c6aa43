import KeelIR

extension GraphImporter {
    /// Largest input or result evaluated while importing: scalars and short vectors of shape
    /// arithmetic, not weights (constant folding handles those after import, keeping their roles).
    static let smallConstantElements = 64

    /// Evaluates a just-emitted node at once when it computes a small constant from small
    /// constants, at least one of them computed from shapes (`derivedConstantNames`) rather than
    /// read from the file or added by a translation.
    /// Exporters write some shape arithmetic in floats (timm's TensorFlow-style "SAME" padding:
    /// Cast, Div, Ceil, Clip, Cast back), and the Pad or Reshape that reads it needs its values
    /// while importing. The node is removed and its output becomes a literal under the same name.
    func foldSmallConstant(_ node: Node, type: TensorType) {
        guard graph.nodes.last?.name == node.name, node.outputs.count == 1, type.dtype != .float16,
              let shape = type.shape.knownExtents, shape.reduce(1, *) <= Self.smallConstantElements else { return }
        var operands: [ReferenceTensor?] = []
        var computed = false
        for input in node.inputs {
            guard !input.isEmpty else {
                operands.append(nil)
                continue
            }
            guard let data = graph.constants[input]?.data, data.dtype != .float16,
                  data.elementCount <= Self.smallConstantElements else { return }
            computed = computed || derivedConstantNames.contains(input)
            operands.append(ReferenceTensor(data))
        }
        guard computed, let values = evaluateReference(node, inputs: operands, outputShape: shape) else { return }
        graph.nodes.removeLast()
        let output = node.outputs[0]
        derivedConstantNames.insert(output)
        graph.constants[output] = Constant(name: output, type: TensorType(type.dtype, Shape(known: shape)), role: .literal,
                                           trainable: false, data: TensorData(referenceValues: values, dtype: type.dtype, shape: shape),
                                           location: node.location)
    }
}

extension GraphImporter {
    /// Evaluates a value computed by IR nodes from constants alone (no graph input upstream) and
    /// rebinds it to a constant holding the result; nil when something upstream is not constant
    /// or cannot be evaluated. For weights a layer reads, which must be constants (NF-Nets'
    /// standardised filters); `pruneEvaluatedNodes` drops the nodes that computed it (left in
    /// place, constant folding would evaluate each again and keep every intermediate).
    func evaluateConstantComputation(_ onnxName: String) throws -> TensorData? {
        guard let value = values[onnxName], let irName = value.irName else { return nil }
        if let data = graph.constants[irName]?.data { return data }
        var producers: [String: Int] = [:]
        for (index, node) in graph.nodes.enumerated() { for output in node.outputs { producers[output] = index } }
        var needed: Set<Int> = []
        var pending = [irName]
        while let name = pending.popLast() {
            guard graph.constants[name] == nil else { continue }
            guard let index = producers[name] else { return nil }
            if needed.insert(index).inserted { pending += graph.nodes[index].inputs.filter { !$0.isEmpty } }
        }
        var computed: [String: TensorData] = [:]
        for index in needed.sorted() {
            let node = graph.nodes[index]
            evaluatedNodeNames.insert(node.name)
            guard node.outputs.count == 1, let type = irTypes[node.outputs[0]], type.dtype != .float16,
                  let shape = type.shape.knownExtents else { return nil }
            let operands = node.inputs.map { input in (computed[input] ?? graph.constants[input]?.data).map(ReferenceTensor.init) }
            guard let result = evaluateReference(node, inputs: operands, outputShape: shape) else { return nil }
            computed[node.outputs[0]] = TensorData(referenceValues: result, dtype: type.dtype, shape: shape)
        }
        guard let data = computed[irName] else { return nil }
        let name = uniqueName("\(irName)/evaluated")
        addConstant(name: name, data: data, onnxName: onnxName)
        return data
    }
}
