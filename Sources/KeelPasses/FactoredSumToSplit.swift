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
/// Needs: shape-inferred graph. Legal when the sum is over one axis without kept dimensions, its
/// input is a reshape factoring one axis of a known extent into two (the sum over the first), or
/// the product of two such reshapes factoring the same axis alike (the other extents equal or 1)
/// read only by the sum, and there are at most `maximumPieces` pieces.
public struct FactoredSumToSplit: Pass {
    public var name: String { "factored-sum-to-split" }

    /// More pieces would make a long chain of adds; ResNeSt uses 2 (and 4 in some variants).
    static let maximumPieces = 8

    public init() {}

    public func run(_ graph: Graph) throws -> PassResult {
        var editor = try GraphEditor(inferring: graph)
        var statistic = PassStatistic(rewriteNoun: "factored sums turned into splits")
        for sum in graph.nodes where sum.op == .reduceSum {
            guard let (summed, pieces, axis) = match(sum, in: editor) else { continue }
            let location = sum.locations
            var input = summed
            if summed.count == 2 {
                let product = editor.unusedName("\(sum.name)/product")
                editor.insert(Node(name: product, op: .mul, inputs: summed, outputs: [product], attributes: Attributes(),
                                   locations: location), before: sum.name)
                input = [product]
            }
            let split = editor.unusedName("\(sum.name)/split")
            let parts = (0..<pieces).map { editor.unusedName("\(split):\($0)") }
            editor.insert(Node(name: split, op: .split, inputs: input, outputs: parts,
                               attributes: Attributes(["axis": .int(axis)]), locations: location), before: sum.name)
            var total = parts[0]
            for part in parts.dropFirst().dropLast() {
                let partial = editor.unusedName("\(sum.name)/partial")
                editor.insert(Node(name: partial, op: .add, inputs: [total, part], outputs: [partial], attributes: Attributes(),
                                   locations: location), before: sum.name)
                total = partial
            }
            editor.update(Node(name: sum.name, op: .add, inputs: [total, parts[pieces - 1]], outputs: sum.outputs,
                               attributes: Attributes(), locations: location))
            statistic.rewrites += 1
        }
        return try editor.finishedRewrite(of: graph, statistic)
    }

    /// The rank-4 values whose product (or the one value) the sum adds up in pieces, how many
    /// pieces, and the axis they split.
    private func match(_ sum: Node, in editor: GraphEditor) -> ([String], Int, Int)? {
        let graph = editor.graph
        guard let shape = graph.valueTypes[sum.inputs[0]]?.shape, let axes = sum.attributes.ints("axes"), axes.count == 1,
              let summedAxis = shape.normalizedAxis(axes[0]), sum.attributes.bool("keepdims") == false,
              let producer = editor.producer(of: sum.inputs[0]) else { return nil }
        /// The reshape's input when it factors `summedAxis` into (pieces, rest) like `expected`.
        func unfactored(_ value: String, like expected: AxisFactoring?) -> (String, AxisFactoring)? {
            guard let reshape = editor.producer(of: value), let factoring = AxisFactoring(of: reshape, in: graph),
                  factoring.axis == summedAxis, factoring.factors.count == 2,
                  (2...Self.maximumPieces).contains(factoring.factors[0]),
                  expected.map({ $0 == factoring }) ?? true else { return nil }
            return (reshape.inputs[0], factoring)
        }
        if let (value, factoring) = unfactored(sum.inputs[0], like: nil) {
            return ([value], factoring.factors[0], summedAxis)
        }
        guard producer.op == .mul, producer.inputs.count == 2, editor.soleConsumer(of: producer.outputs[0]) != nil,
              !editor.isGraphOutput(producer.outputs[0]),
              let (left, factoring) = unfactored(producer.inputs[0], like: nil),
              let (right, _) = unfactored(producer.inputs[1], like: factoring),
              let leftDims = graph.valueTypes[left]?.shape.dims, let rightDims = graph.valueTypes[right]?.shape.dims,
              leftDims.count == rightDims.count,
              zip(leftDims, rightDims).allSatisfy({ $0 == $1 || $0 == .known(1) || $1 == .known(1) }) else { return nil }
        return ([left, right], factoring.factors[0], summedAxis)
    }
}
