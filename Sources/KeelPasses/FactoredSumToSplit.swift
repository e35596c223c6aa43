import KeelIR

/// Rewrites a sum over the outer factor of a factored axis as a split along that axis and adds:
/// ResNeSt's split attention reshapes its grouped convolution's [N, r·C, H, W] output to
/// [N, r, C, H, W], sums over r, and later sums over r again after multiplying by a gate reshaped
/// the same way ([N, r·C, 1, 1] → [N, r, C, 1, 1]). As reduce_sum(x viewed [N, r, C, H, W]) =
/// Σᵢ x[:, i·C ..< (i+1)·C] the sum is a split of the rank-4 value into r pieces added together,
/// and the gate multiplies the rank-4 value before the split. The 5-D detour has no NHWC form:
/// it kept timm's ResNeSt-50d NCHW from every block's grouped convolution on, behind 33
/// transposes and with its shortcut adds unfused (0.83× ONNX Runtime's speed at batch 8); a split
/// of the channel axis is a split of the last axis in NHWC.
///
/// SKNet stacks its paths instead (unsqueeze, then concat along the new axis) and sums them, plain
/// and times a softmax over the paths: the pieces are then the paths themselves, each multiplied
/// by its slice of the gate reshaped to the path's rank (12 transposes of skresnet18 gone).
///
/// Needs: shape-inferred graph. Legal when the sum is over one axis but the batch, without kept
/// dimensions, its input is a reshape factoring one axis of a known extent into two (the sum over
/// the first), or the product of two such reshapes factoring the same axis alike (the other
/// extents equal or 1), or a concatenation of values unsqueezed along that axis, alone or times a
/// gate with one slice per value there (its other extents known but the batch, each 1 or the
/// values'); a product is read only by the sum; there are at most `maximumPieces` pieces.
public struct FactoredSumToSplit: Pass {
    public var name: String { "factored-sum-to-split" }

    /// More pieces would make a long chain of adds; ResNeSt uses 2 (and 4 in some variants).
    static let maximumPieces = 8

    public init() {}

    /// What a matched sum adds up: the pieces of a split (of one value, or of the product of two
    /// factored alike), or stacked values, each multiplied by its slice of a gate when one is given.
    private enum Pieces {
        case factored(values: [String], count: Int, axis: Int)
        case stacked(values: [String], gate: String?, axis: Int)
    }

    public func run(_ graph: Graph) throws -> PassResult {
        var editor = try GraphEditor(inferring: graph)
        var statistic = PassStatistic(rewriteNoun: "factored sums turned into splits")
        for sum in graph.nodes where sum.op == .reduceSum {
            guard let pieces = match(sum, in: editor) else { continue }
            let location = sum.locations
            /// Inserts `op` before the sum under a name derived from `base`; returns its output.
            func insert(_ op: OpKind, _ base: String, _ inputs: [String], _ attributes: Attributes = Attributes(),
                        outputs count: Int = 1) -> [String] {
                let name = editor.unusedName("\(sum.name)/\(base)")
                let outputs = count == 1 ? [name] : (0..<count).map { editor.unusedName("\(name):\($0)") }
                editor.insert(Node(name: name, op: op, inputs: inputs, outputs: outputs, attributes: attributes,
                                   locations: location), before: sum.name)
                return outputs
            }
            var terms: [String]
            switch pieces {
            case let .factored(values, count, axis):
                let input = values.count == 2 ? insert(.mul, "product", values) : values
                terms = insert(.split, "split", input, Attributes(["axis": .int(axis)]), outputs: count)
            case let .stacked(values, gate, axis):
                terms = values
                if let gate, let dims = editor.graph.valueTypes[gate]?.shape.dims {
                    // Gate slice i as the rank-4 value it multiplies: [N, k, C, 1, 1] → [N, C, 1, 1].
                    let shape = dims.indices.filter { $0 != axis }.map { $0 == 0 ? 0 : dims[$0].value ?? -1 }
                    let slices = insert(.split, "gates", [gate], Attributes(["axis": .int(axis)]), outputs: values.count)
                    terms = zip(values, slices).map { value, slice in
                        let squeezed = insert(.reshape, "gate", [slice], Attributes(["shape": .ints(shape)]))
                        return insert(.mul, "product", [value] + squeezed)[0]
                    }
                }
            }
            var total = terms[0]
            for term in terms.dropFirst().dropLast() { total = insert(.add, "partial", [total, term])[0] }
            editor.update(Node(name: sum.name, op: .add, inputs: [total, terms[terms.count - 1]], outputs: sum.outputs,
                               attributes: Attributes(), locations: location))
            statistic.rewrites += 1
        }
        return try editor.finishedRewrite(of: graph, statistic)
    }

    private func match(_ sum: Node, in editor: GraphEditor) -> Pieces? {
        let graph = editor.graph
        guard let shape = graph.valueTypes[sum.inputs[0]]?.shape, let axes = sum.attributes.ints("axes"), axes.count == 1,
              let summedAxis = shape.normalizedAxis(axes[0]), summedAxis > 0, sum.attributes.bool("keepdims") == false,
              let producer = editor.producer(of: sum.inputs[0]) else { return nil }
        /// The reshape's input when it factors `summedAxis` into (pieces, rest) like `expected`.
        func unfactored(_ value: String, like expected: AxisFactoring?) -> (String, AxisFactoring)? {
            guard let reshape = editor.producer(of: value), let factoring = AxisFactoring(of: reshape, in: graph),
                  factoring.axis == summedAxis, factoring.factors.count == 2,
                  (2...Self.maximumPieces).contains(factoring.factors[0]),
                  expected.map({ $0 == factoring }) ?? true else { return nil }
            return (reshape.inputs[0], factoring)
        }
        /// The values a concatenation along `summedAxis` stacks, each unsqueezed there.
        func stacked(_ value: String) -> [String]? {
            guard let concat = editor.producer(of: value), concat.op == .concat,
                  concat.attributes.int("axis").flatMap(shape.normalizedAxis) == summedAxis,
                  (2...Self.maximumPieces).contains(concat.inputs.count) else { return nil }
            let values = concat.inputs.compactMap { input -> String? in
                guard let unsqueeze = editor.producer(of: input), unsqueeze.op == .unsqueeze,
                      unsqueeze.attributes.ints("axes")?.compactMap(shape.normalizedAxis) == [summedAxis] else { return nil }
                return unsqueeze.inputs[0]
            }
            return values.count == concat.inputs.count ? values : nil
        }
        if let (value, factoring) = unfactored(sum.inputs[0], like: nil) {
            return .factored(values: [value], count: factoring.factors[0], axis: summedAxis)
        }
        if let values = stacked(sum.inputs[0]) { return .stacked(values: values, gate: nil, axis: summedAxis) }
        guard producer.op == .mul, producer.inputs.count == 2, editor.soleConsumer(of: producer.outputs[0]) != nil,
              !editor.isGraphOutput(producer.outputs[0]) else { return nil }
        if let (left, factoring) = unfactored(producer.inputs[0], like: nil),
           let (right, _) = unfactored(producer.inputs[1], like: factoring),
           let leftDims = graph.valueTypes[left]?.shape.dims, let rightDims = graph.valueTypes[right]?.shape.dims,
           leftDims.count == rightDims.count,
           zip(leftDims, rightDims).allSatisfy({ $0 == $1 || $0 == .known(1) || $1 == .known(1) }) {
            return .factored(values: [left, right], count: factoring.factors[0], axis: summedAxis)
        }
        // Stacked paths times a gate with one slice per path along the summed axis, its other
        // extents known (but the batch) and each 1 or the paths' (SKNet's softmax over its paths).
        for (stack, gate) in [(0, 1), (1, 0)] {
            guard let values = stacked(producer.inputs[stack]),
                  let gateDims = graph.valueTypes[producer.inputs[gate]]?.shape.dims, gateDims.count == shape.rank,
                  gateDims[summedAxis] == .known(values.count),
                  let pathDims = graph.valueTypes[values[0]]?.shape.dims, pathDims.count == shape.rank - 1,
                  gateDims.indices.allSatisfy({ $0 == 0 || $0 == summedAxis || gateDims[$0].value != nil }),
                  zip(gateDims.indices.filter { $0 != summedAxis }.map { gateDims[$0] }, pathDims)
                    .allSatisfy({ $0 == $1 || $0 == .known(1) }) else { continue }
            return .stacked(values: values, gate: producer.inputs[gate], axis: summedAxis)
        }
        return nil
    }
}
