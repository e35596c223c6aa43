import KeelIR

/// Composes consecutive transposes into one and removes transposes that leave every axis in
/// place, so a transpose followed by its inverse vanishes. A reshape between two transposes that
/// only splits axes moves before the first (splitting its input's axes instead), so they compose
/// too: MaxViT's NHWC→NCHW boundary, then its window partition (a split of H and W and a
/// transpose) becomes one reshape and one transpose that copies runs of a window row's channels.
///
/// Needs: shape-inferred graph (a transpose without `perm` reverses its input's rank). Always
/// legal: the first transpose is not changed, only read less (dead-code elimination, or this
/// pass when it has no reader left, removes it).
public struct TransposeCancellation: Pass {
    public var name: String { "transpose-cancellation" }

    public init() {}

    /// The permutation a transpose applies to its input's axes.
    static func permutation(of node: Node, in graph: Graph) -> [Int]? {
        guard node.op == .transpose, let input = node.inputs.first, let rank = graph.type(of: input)?.shape.rank else { return nil }
        guard let perm = try? node.attributeReader.optionalInts("perm") else { return Array((0..<rank).reversed()) }
        return perm.sorted() == Array(0..<rank) ? perm : nil
    }

    public func run(_ graph: Graph) throws -> PassResult {
        var editor = try GraphEditor(inferring: graph)
        var statistic = PassStatistic(rewriteNoun: "transposes composed or cancelled")
        var explanations: [String] = []
        for name in graph.nodes.map(\.name) {
            guard var node = editor.node(named: name), var perm = Self.permutation(of: node, in: editor.graph),
                  let output = node.outputs.first else { continue }
            if let (moved, removed) = Self.movingSplit(before: node, in: &editor) {
                (node, perm) = (moved, moved.attributes.ints("perm") ?? perm)
                statistic.rewrites += 1
                statistic.nodesRemoved += removed
            }
            if let first = editor.producer(of: node.inputs[0]), let inner = Self.permutation(of: first, in: editor.graph) {
                // transpose(transpose(x, p1), p2) = transpose(x, q) with q[i] = p1[p2[i]].
                perm = perm.map { inner[$0] }
                node.inputs[0] = first.inputs[0]
                node.attributes["perm"] = .ints(perm)
                node.locations += first.locations.filter { !node.locations.contains($0) }
                editor.update(node)
                statistic.rewrites += 1
                if editor.consumers(of: first.outputs[0]).isEmpty && !editor.isGraphOutput(first.outputs[0]) {
                    editor.removeNode(named: first.name)
                    statistic.nodesRemoved += 1
                }
            }
            guard perm == Array(perm.indices) else { continue }
            guard editor.canForward(output, to: node.inputs[0]) else {
                explanations.append("kept '\(node.name)': it leaves axes in place, but graph output '\(output)' would have to take the name of '\(node.inputs[0])'")
                continue
            }
            editor.removeNode(named: node.name)
            editor.forward(output, to: node.inputs[0])
            statistic.nodesRemoved += 1
        }
        return PassResult(graph: try editor.finished(), counts: statistic, explanations: explanations)
    }

    /// transpose(reshape(transpose(x, p1)), p2), the reshape only splitting axes, as
    /// transpose(reshape(x), q): the reshape splits x's axes as it split the first transpose's
    /// output, and q is p1 on the split axes followed by p2. Returns the second transpose as
    /// rewritten (its input the new reshape) and how many nodes went (the first transpose and the
    /// old reshape, once nothing else reads them), nil when the pattern does not hold.
    static func movingSplit(before second: Node, in editor: inout GraphEditor) -> (Node, removed: Int)? {
        guard let reshape = editor.producer(of: second.inputs[0]), reshape.op == .reshape,
              let first = editor.producer(of: reshape.inputs[0]), let inner = permutation(of: first, in: editor.graph),
              let outer = permutation(of: second, in: editor.graph),
              let source = editor.graph.type(of: first.inputs[0])?.shape.dims,
              let middle = editor.graph.type(of: reshape.inputs[0])?.shape.dims,
              let split = editor.graph.type(of: reshape.outputs[0])?.shape.dims,
              let groups = splitGroups(of: middle, into: split) else { return nil }
        // The source's axes split alike: axis a of x into the pieces of the first transpose's axis i, p1[i] = a.
        var position = [Int](repeating: 0, count: source.count)
        var shape: [Int] = []
        for axis in source.indices {
            guard let index = inner.firstIndex(of: axis) else { return nil }
            position[axis] = shape.count
            for piece in groups[index] {
                switch split[piece] {
                case .known(let extent): shape.append(extent)
                // A run-time extent must stay a whole axis in place, which reshape's 0 copies.
                default:
                    guard groups[index].count == 1, split[piece] == source[axis], shape.count == axis else { return nil }
                    shape.append(0)
                }
            }
        }
        let splitOrder = inner.indices.flatMap { index in groups[index].indices.map { position[inner[index]] + $0 } }
        let name = editor.unusedName("\(reshape.name)/split")
        editor.insert(Node(name: name, op: .reshape, inputs: [first.inputs[0]], outputs: [name],
                           attributes: Attributes(["shape": .ints(shape)]), locations: reshape.locations),
                      before: second.name)
        var rewritten = second
        rewritten.inputs[0] = name
        rewritten.attributes["perm"] = .ints(outer.map { splitOrder[$0] })
        rewritten.locations += (first.locations + reshape.locations).filter { !rewritten.locations.contains($0) }
        editor.update(rewritten)
        var removed = 0
        for node in [reshape, first] where editor.consumers(of: node.outputs[0]).isEmpty && !editor.isGraphOutput(node.outputs[0]) {
            editor.removeNode(named: node.name)
            removed += 1
        }
        return (rewritten, removed)
    }

    /// For each axis of `shape`, the consecutive axes of `split` it becomes, when `split` only
    /// splits axes (an axis of extent 1 may appear anywhere); nil otherwise. A run-time axis must
    /// stay whole.
    static func splitGroups(of shape: [Dim], into split: [Dim]) -> [[Int]]? {
        var groups: [[Int]] = []
        var next = 0
        for dim in shape {
            var group: [Int] = []
            switch dim {
            case .known(let extent):
                var covered = 1
                while next < split.count, case .known(let piece) = split[next], piece >= 1, covered * piece <= extent,
                      covered < extent || piece == 1 {
                    covered *= piece
                    group.append(next)
                    next += 1
                }
                guard covered == extent else { return nil }
            default:
                guard next < split.count, split[next] == dim else { return nil }
                group.append(next)
                next += 1
            }
            groups.append(group)
        }
        return next == split.count ? groups : nil
    }
}
