import KeelIR

/// Rewrites a reshape -> transpose -> reshape that only reorders the entries of one axis (the
/// channel shuffle of ShuffleNet: [N,C,H,W] -> [N,g,C/g,H,W] -> swap the two -> [N,C,H,W]) as one
/// gather along that axis with constant indices. The 5-D detour has no NHWC form, so it kept
/// PyTorch's ShuffleNet NCHW throughout (depthwise, pools and pointwise layers at 0.6-0.7x ONNX
/// Runtime's speed); a gather on the channel axis is a gather on the last axis in NHWC.
///
/// Needs: shape-inferred graph. Legal when the first reshape splits exactly one axis a into
/// consecutive factors (every other extent kept, in place), the transpose only permutes those
/// factors, the second reshape gives back the input's shape, and the two intermediate values
/// have no other reader and are not graph outputs.
public struct ShuffleToGather: Pass {
    public var name: String { "shuffle-to-gather" }

    public init() {}

    public func run(_ graph: Graph) throws -> PassResult {
        var editor = try GraphEditor(inferring: graph)
        var statistic = PassStatistic(rewriteNoun: "shuffles turned into gathers")
        var explanations: [String] = []
        for split in graph.nodes where split.op == .reshape {
            guard let transpose = editor.soleConsumer(of: split.outputs[0]), transpose.op == .transpose,
                  let merge = editor.soleConsumer(of: transpose.outputs[0]), merge.op == .reshape else { continue }
            guard let (axis, order) = Self.shuffledAxis(split: split, transpose: transpose, merge: merge, in: editor.graph) else {
                explanations.append("kept '\(split.name)': reshape, transpose and reshape do more than reorder one axis")
                continue
            }
            let indices = editor.unusedName("\(merge.name)/indices")
            editor.graph.constants[indices] = Constant(name: indices, type: TensorType(.int64, Shape(known: [order.count])),
                                                       role: .literal, trainable: false,
                                                       data: TensorData(int64s: order.map(Int64.init), shape: [order.count]),
                                                       location: merge.location)
            var gather = Node(name: merge.name, op: .gather, inputs: [split.inputs[0], indices], outputs: merge.outputs,
                              attributes: Attributes(["axis": .int(axis)]), locations: merge.locations)
            gather.locations += split.locations + transpose.locations
            editor.update(gather)
            editor.removeNode(named: split.name)
            editor.removeNode(named: transpose.name)
            statistic.rewrites += 1
            statistic.nodesRemoved += 2
        }
        return PassResult(graph: try editor.finished(), counts: statistic, explanations: explanations)
    }

    /// The axis the three nodes reorder and, for each output position along it, the input
    /// position it takes; nil when they do anything else.
    static func shuffledAxis(split: Node, transpose: Node, merge: Node, in graph: Graph) -> (Int, [Int])? {
        guard let input = graph.valueTypes[split.inputs[0]]?.shape.dims,
              let factored = graph.valueTypes[split.outputs[0]]?.shape.dims,
              let output = graph.valueTypes[merge.outputs[0]]?.shape.dims, output == input,
              let perm = TransposeCancellation.permutation(of: transpose, in: graph), perm.count == factored.count else { return nil }
        guard let factoring = AxisFactoring(from: input, to: factored) else { return nil }
        let (axis, factors) = (factoring.axis, factoring.factors)
        let factorAxes = axis...(axis + factors.count - 1)
        let extent = factors.reduce(1, *)
        guard extent <= 1 << 16,
              perm.indices.allSatisfy({ factorAxes.contains($0) ? factorAxes.contains(perm[$0]) : perm[$0] == $0 }) else { return nil }
        // Output position j along the axis: its coordinates in the permuted factors, read back in
        // the input's factor order.
        let permuted = factorAxes.map { factors[perm[$0] - axis] }
        var order: [Int] = []
        order.reserveCapacity(extent)
        for position in 0..<extent {
            var remainder = position
            var coordinates = [Int](repeating: 0, count: factors.count)
            for index in permuted.indices.reversed() {
                coordinates[perm[axis + index] - axis] = remainder % permuted[index]
                remainder /= permuted[index]
            }
            order.append(zip(coordinates, factors).reduce(0) { $0 * $1.1 + $1.0 })
        }
        return (axis, order)
    }
}
