import KeelIR

/// Replaces GELU written out in primitive ops with one `gelu` node: exporters write
/// 0.5·x·(1 + erf(x/√2)) as five nodes (tf2onnx: x·(1/√2) → Erf → +1, 0.5·x, product; PyTorch:
/// x/√2 → Erf → +1 → ·x → ·0.5), and the tanh approximation
/// 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) as eight or more.
///
/// Needs: shape-inferred graph, constants folded. Legal when the constants are those of the
/// formula (to float32 precision), the pieces combine in any order of the three factors 0.5, x
/// and (1 + erf(…)) or (1 + tanh(…)), every intermediate has one reader, and nothing broadcasts
/// x into a larger shape.
public struct GeluRecognition: Pass {
    public var name: String { "gelu-recognition" }

    public init() {}

    public func run(_ graph: Graph) throws -> PassResult {
        var editor = try GraphEditor(inferring: graph)
        var statistic = PassStatistic(rewriteNoun: "GELUs recognised")
        for candidate in graph.nodes where candidate.op == .erf || candidate.op == .tanh {
            guard let node = editor.node(named: candidate.name), node.op == candidate.op,
                  let match = GeluMatcher(editor: editor).match(node) else { continue }
            editor.update(Node(name: match.last.name, op: .gelu, inputs: [match.x], outputs: [match.last.outputs[0]],
                               attributes: Attributes(["approximate": .string(node.op == .erf ? "none" : "tanh")]),
                               locations: match.last.locations))
            statistic.rewrites += 1
        }
        return try editor.finishedRewrite(of: graph, statistic)
    }
}

struct GeluMatcher {
    let editor: GraphEditor
    private var matcher: LayerNormMatcher { LayerNormMatcher(editor: editor) }

    init(editor: GraphEditor) { self.editor = editor }

    /// From the Erf (or Tanh) node to x and the node whose output becomes the GELU's.
    func match(_ node: Node) -> (x: String, last: Node)? {
        guard let x = argumentSource(of: node), let xShape = matcher.shape(x),
              matcher.shape(node.outputs[0]) == xShape,
              let plusOne = editor.soleConsumer(of: node.outputs[0]), plusOne.op == .add, plusOne.inputs.count == 2,
              let one = otherInput(plusOne, node.outputs[0]), matcher.uniformValue(one) == 1 else { return nil }
        // The three factors 0.5, x and (1 + …) in any grouping of two products.
        var needed: [Factor] = [.half, .x]
        var current = plusOne
        while !needed.isEmpty {
            guard matcher.shape(current.outputs[0]) == xShape,
                  let product = editor.soleConsumer(of: current.outputs[0]), product.op == .mul, product.inputs.count == 2,
                  let other = otherInput(product, current.outputs[0]) else { return nil }
            var factors = [other]
            if let inner = editor.producer(of: other), inner.op == .mul, inner.inputs.count == 2,
               editor.soleConsumer(of: other) != nil, classify(other, x) == nil {
                factors = inner.inputs
            }
            for factor in factors {
                guard let kind = classify(factor, x), let index = needed.firstIndex(of: kind) else { return nil }
                needed.remove(at: index)
            }
            current = product
        }
        guard matcher.shape(current.outputs[0]) == xShape else { return nil }
        return (x, current)
    }

    private enum Factor { case half, x }

    private func classify(_ value: String, _ x: String) -> Factor? {
        if value == x { return .x }
        if let constant = matcher.uniformValue(value), abs(constant - 0.5) <= 1e-6 { return .half }
        return nil
    }

    private func otherInput(_ node: Node, _ value: String) -> String? {
        let others = node.inputs.filter { $0 != value }
        return others.count == 1 && node.inputs.count == 2 ? others[0] : nil
    }

    /// x from the Erf's argument x/√2 (as x·(1/√2) or x/√2) or the Tanh's √(2/π)·(x + 0.044715·x³).
    private func argumentSource(of node: Node) -> String? {
        guard let argument = node.inputs.first, let scaled = editor.producer(of: argument),
              editor.soleConsumer(of: argument) != nil, scaled.inputs.count == 2 else { return nil }
        if node.op == .erf {
            for (x, constant) in [(scaled.inputs[0], scaled.inputs[1]), (scaled.inputs[1], scaled.inputs[0])] {
                guard let value = matcher.uniformValue(constant) else { continue }
                if scaled.op == .mul, close(value, 0.5.squareRoot()) { return x }
                if scaled.op == .div, x == scaled.inputs[0], close(value, 2.0.squareRoot()) { return x }
            }
            return nil
        }
        // tanh: √(2/π) · (x + 0.044715·x³)
        guard scaled.op == .mul else { return nil }
        for (sum, constant) in [(scaled.inputs[0], scaled.inputs[1]), (scaled.inputs[1], scaled.inputs[0])] {
            guard let value = matcher.uniformValue(constant), close(value, (2 / Double.pi).squareRoot()),
                  let add = editor.producer(of: sum), add.op == .add, add.inputs.count == 2,
                  editor.soleConsumer(of: sum) != nil else { continue }
            for (x, cubic) in [(add.inputs[0], add.inputs[1]), (add.inputs[1], add.inputs[0])] where isScaledCube(cubic, of: x) {
                return x
            }
        }
        return nil
    }

    /// 0.044715·x³ with x³ as Pow(x, 3), x·x·x or x·(x·x).
    private func isScaledCube(_ value: String, of x: String) -> Bool {
        guard let product = editor.producer(of: value), product.op == .mul, product.inputs.count == 2 else { return false }
        for (cube, constant) in [(product.inputs[0], product.inputs[1]), (product.inputs[1], product.inputs[0])] {
            guard let coefficient = matcher.uniformValue(constant), close(coefficient, 0.044715),
                  let node = editor.producer(of: cube), node.inputs.count == 2 else { continue }
            if node.op == .pow, node.inputs[0] == x, matcher.uniformValue(node.inputs[1]) == 3 { return true }
            if node.op == .mul {
                let square = node.inputs[0] == x ? node.inputs[1] : node.inputs[0]
                guard node.inputs.contains(x), let inner = editor.producer(of: square), inner.op == .mul else { continue }
                if inner.inputs == [x, x] { return true }
            }
        }
        return false
    }

    private func close(_ value: Float, _ expected: Double) -> Bool { abs(Double(value) - expected) <= 1e-6 * max(1, abs(expected)) }
}
