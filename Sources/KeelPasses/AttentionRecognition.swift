import KeelIR

/// Replaces scaled dot-product attention as the exporters write it, MatMul(Q, Kᵀ) → Softmax →
/// MatMul(·, V), with the head-split views around it (PyTorch's MultiheadAttention: a fused QKV
/// projection reshaped, transposed, gathered and reshaped per head, Q and Kᵀ each multiplied by
/// d^-¼), by one `attention` node that reads the projections' token rows in place. The chains
/// are resolved into strides (`StridedView`) at two sample batch sizes: each of Q, K and V must
/// be head h's columns offset + h·d ..< offset + (h+1)·d of rows ordered [sequence, token] or
/// [token, sequence], and the product's own reshapes and transposes back to token rows must read
/// the attention output in order. Scalar multiplies on Q's and K's chains become the `scale`.
/// Cosine attention (Swin V2) is recognised too: q and k each divided by max(‖row‖₂, ε) over the
/// head's columns (F.normalize: reduce_sum_square → sqrt → clip → expand → div) become `normalize`,
/// and a constant per-head factor on the scores (its learnt logit scale) becomes `head_scales`.
///
/// Operands of higher rank, [..., heads, tokens, head size] (MaxViT's [images, windows, heads,
/// tokens, head size]), take their leading axes as the sequences, and so do the rows they are read
/// from ([..., tokens, columns], seen through a reshape to rank 3); slices of the rows' columns
/// (a QKV projection split into q, k and v) are views too.
///
/// Needs: inferred shapes; constants folded (the scales and gather indices). Legal when the
/// scores and probabilities have one reader each and are not graph outputs; the views the chains
/// pass through stay for any other reader (dead-code elimination drops the rest).
public struct AttentionRecognition: Pass {
    public var name: String { "attention-recognition" }

    public init() {}

    /// The batch sizes the strides are checked at (two, so a stride that depends on the batch shows).
    static let sampleBatches = [2, 3]

    public func run(_ graph: Graph) throws -> PassResult {
        var editor = try GraphEditor(inferring: graph)
        var statistic = PassStatistic(rewriteNoun: "attention blocks recognised")
        var explanations: [String] = []
        for candidate in graph.nodes where candidate.op == .softmax {
            guard let softmax = editor.node(named: candidate.name), let found = match(softmax, in: editor) else { continue }
            switch found {
            case .failure(let rejection):
                explanations.append("kept '\(softmax.name)': \(rejection.message)")
            case .success(let match):
                apply(match, in: &editor)
                statistic.rewrites += 1
            }
        }
        let result = try editor.finishedRewrite(of: graph, statistic)
        return PassResult(graph: result.graph, counts: result.counts ?? statistic, explanations: explanations)
    }

    struct Match {
        var scores: Node
        /// The reshapes and constant adds between the scores and the softmax.
        var biasChain: [Node]
        var softmax: Node
        var product: Node
        /// The token rows q, k and v are read from.
        var roots: [String]
        /// What the scores add before the softmax, folded into one constant.
        var bias: ScoreBias?
        var attributes: [String: AttributeValue]
        /// The value that becomes a reshape of the attention output, its producer and target shape.
        var output: String
        var outputProducer: Node
        var outputShape: [Int]
    }

    /// A chain of views (and scalar multiplies) from a root value to the value a matmul reads.
    struct Chain {
        var root: String
        var nodes: [Node] = []
        var scale: Double = 1
        /// ε of the row normalisation on the chain (the div in `nodes`), if there is one.
        var normalizingEpsilon: Float?
    }

    /// nil when `softmax` is not between two matmuls (nothing to explain).
    func match(_ softmax: Node, in editor: GraphEditor) -> Result<Match, Rejection>? {
        let biasChain = Self.biasChain(before: softmax, in: editor)
        guard let scores = editor.producer(of: biasChain.first?.inputs.first { !Self.isConstant($0, in: editor) } ?? softmax.inputs[0]),
              scores.op == .matmul,
              let product = editor.soleConsumer(of: softmax.outputs[0]), product.op == .matmul,
              product.inputs[0] == softmax.outputs[0], product.inputs[1] != softmax.outputs[0],
              let rank = editor.graph.valueTypes[softmax.outputs[0]]?.shape.rank,
              let axis = try? softmax.attributeReader.int("axis"), axis == -1 || axis == rank - 1 else { return nil }
        for value in [scores.outputs[0]] + biasChain.map(\.outputs[0]) {
            if let problem = editor.singleUseProblem(of: value) { return .failure(Rejection("the scores \(problem)")) }
        }
        if let problem = editor.singleUseProblem(of: softmax.outputs[0]) { return .failure(Rejection("the probabilities \(problem)")) }
        let operands = [scores.inputs[0], scores.inputs[1], product.inputs[1]]
        guard let queryType = editor.graph.valueTypes[operands[0]]?.shape, queryType.rank >= 4,
              let heads = queryType[queryType.rank - 3].value, let headSize = queryType[queryType.rank - 1].value,
              operands.allSatisfy({ editor.graph.valueTypes[$0]?.shape.rank == queryType.rank }) else {
            return .failure(Rejection("its operands are not [sequences, heads, tokens, head size] with known heads and head size"))
        }
        let chains = operands.map { trace($0, in: editor) }
        guard chains[2].scale == 1 else { return .failure(Rejection("the values are scaled")) }
        guard chains[2].normalizingEpsilon == nil else { return .failure(Rejection("the values are normalised")) }
        guard chains[0].normalizingEpsilon == chains[1].normalizingEpsilon else {
            return .failure(Rejection("q and k are not normalised alike"))
        }
        let outputs = outputChain(from: product.outputs[0], in: editor)
        var layouts: [[(offset: Int, sequenceFirst: Bool)]] = []
        var outputLength: Int?
        for batch in Self.sampleBatches {
            let bind = { (value: String) -> [Int]? in
                guard let shape = editor.graph.valueTypes[value]?.shape else { return nil }
                return shape.binding(Dictionary(uniqueKeysWithValues: shape.symbols.map { ($0, batch) })).knownExtents
            }
            var layout: [(offset: Int, sequenceFirst: Bool)] = []
            for (index, chain) in chains.enumerated() {
                guard let rootType = editor.graph.valueTypes[chain.root]?.shape,
                      rootType.rank == 3 || rootType.dims.suffix(2).allSatisfy({ $0.value != nil }),
                      let rootExtents = bind(chain.root), rootExtents.count >= 3,
                      var view = view(of: chain, rootExtents: rootExtents, bind: bind, in: editor).flatMap(Self.mergingSequences) else {
                    return .failure(Rejection("'\(operands[index])' is not a strided view of '\(chain.root)'"))
                }
                if chain.normalizingEpsilon != nil,
                   !normalizesHeadColumns(chain, rootExtents: rootExtents, headSize: headSize, bind: bind, in: editor) {
                    return .failure(Rejection("'\(operands[index])' is normalised over other values than one head's columns of a token"))
                }
                if index == 1, let transposed = view.transposed([0, 1, 3, 2]) { view = transposed }
                guard let found = Self.tokenRows(view, root: Self.mergingSequences(rootExtents, keeping: 2), heads: heads, headSize: headSize) else {
                    return .failure(Rejection("'\(operands[index])' does not read one head's columns of the token rows of '\(chain.root)'"))
                }
                layout.append(found)
            }
            guard Set(layout.map(\.sequenceFirst)).count == 1 else {
                return .failure(Rejection("q, k and v order their token rows differently"))
            }
            // The attention output in q's row order, seen as the product's [sequences, heads, tokens, head size].
            guard let productExtents = bind(product.outputs[0]) else { return nil }
            let width = heads * headSize
            let merged = Self.mergingSequences(productExtents, keeping: 3)
            let (sequences, tokens) = (merged[0], merged[2])
            var view = (layout[0].sequenceFirst
                ? StridedView(contiguous: [tokens, sequences, width]).reshaped([tokens, sequences, heads, headSize])?.transposed([1, 2, 0, 3])
                : StridedView(contiguous: [sequences, tokens, width]).reshaped([sequences, tokens, heads, headSize])?.transposed([0, 2, 1, 3]))?
                .reshaped(productExtents)
            var longest: Int?
            for (index, node) in outputs.enumerated() {
                guard let current = view, let extents = bind(node.outputs[0]) else { break }
                view = Self.apply(node, to: current, outputExtents: extents, in: editor)
                if view?.isContiguous == true { longest = index + 1 }
            }
            guard let longest, outputLength == nil || outputLength == longest else {
                return .failure(Rejection("its output is not read back as token rows in order (a copy would remain)"))
            }
            outputLength = longest
            layouts.append(layout)
        }
        guard let outputLength, layouts.dropFirst().allSatisfy({ zip($0, layouts[0]).allSatisfy { $0.offset == $1.offset } }) else {
            return .failure(Rejection("its head offsets depend on the batch"))
        }
        let outputProducer = outputs[outputLength - 1]
        let output = outputProducer.outputs[0]
        guard let outputType = editor.graph.valueTypes[output]?.shape,
              outputType.dims.filter(\.isSymbolic).count <= 1 else {
            return .failure(Rejection("its output '\(output)' has more than one run-time extent"))
        }
        let bias: ScoreBias?
        switch Self.scoreBias(of: biasChain, scores: scores.outputs[0], in: editor) {
        case .failure(let rejection): return .failure(rejection)
        case .success(let found): bias = found
        }
        var headScales: [Float]
        switch Self.scoreScales(of: biasChain, scores: scores.outputs[0], heads: heads, in: editor) {
        case .failure(let rejection): return .failure(rejection)
        case .success(let found): headScales = found
        }
        var scale = chains[0].scale * chains[1].scale
        if let first = headScales.first, headScales.allSatisfy({ $0 == first }) {
            scale *= Double(first)
            headScales = []
        }
        var attributes: [String: AttributeValue] = [
            "heads": .int(heads), "head_size": .int(headSize), "scale": .float(Float(scale)),
            "offsets": .ints(layouts[0].map(\.offset)), "sequence_first": .bool(layouts[0][0].sequenceFirst),
        ]
        if !headScales.isEmpty { attributes["head_scales"] = .floats(headScales) }
        if let epsilon = chains[0].normalizingEpsilon {
            attributes["normalize"] = .bool(true)
            attributes["epsilon"] = .float(epsilon)
        }
        return .success(Match(scores: scores, biasChain: biasChain, softmax: softmax, product: product, roots: chains.map(\.root),
                              bias: bias, attributes: attributes, output: output, outputProducer: outputProducer,
                              outputShape: outputType.dims.map { $0.value ?? -1 }))
    }

    private func apply(_ match: Match, in editor: inout GraphEditor) {
        let name = editor.unusedName("\(match.product.name)/attention")
        let locations = (match.scores.locations + match.biasChain.flatMap(\.locations) + match.softmax.locations
                         + match.product.locations)
            .reduce(into: [SourceLocation]()) { if !$0.contains($1) { $0.append($1) } }
        // Rows of rank 4 or more are read as [sequences, tokens, columns], through a reshape (a view).
        var rows: [String: String] = [:]
        var inputs = match.roots.map { root -> String in
            guard let shape = editor.graph.valueTypes[root]?.shape, shape.rank > 3,
                  let tokens = shape[shape.rank - 2].value, let columns = shape[shape.rank - 1].value else { return root }
            if let existing = rows[root] { return existing }
            let reshaped = editor.unusedName("\(name)/rows")
            editor.insert(Node(name: reshaped, op: .reshape, inputs: [root], outputs: [reshaped],
                               attributes: Attributes(["shape": .ints([-1, tokens, columns])]), locations: locations),
                          before: match.product.name)
            rows[root] = reshaped
            return reshaped
        }
        if let bias = match.bias {
            inputs.append(editor.addConstant("\(name)/bias", floats: bias.values, shape: bias.shape, role: .bias,
                                             trainable: bias.trainable, location: match.scores.location))
        }
        let attention = Node(name: name, op: .attention, inputs: inputs, outputs: [name],
                             attributes: Attributes(match.attributes), locations: locations)
        editor.insert(attention.droppingDefaultAttributes(), before: match.product.name)
        editor.update(Node(name: match.outputProducer.name, op: .reshape, inputs: [name], outputs: [match.output],
                           attributes: Attributes(["shape": .ints(match.outputShape)]), locations: match.outputProducer.locations))
    }

    /// Walks back from `value` through views, single-index gathers and scalar multiplies.
    private func trace(_ value: String, in editor: GraphEditor) -> Chain {
        var chain = Chain(root: value)
        while var producer = editor.producer(of: chain.root) {
            switch producer.op {
            case .reshape, .flatten, .squeeze, .unsqueeze, .identity, .transpose, .slice:
                chain.root = producer.inputs[0]
            case .split:
                // q, k, v = qkv.unbind(0) (timm's attention: ViT, DeiT, CAFormer) is a split along
                // the leading axis, each piece a slice of it.
                guard let slice = Self.sliceEquivalent(of: producer, output: chain.root, in: editor) else { return chain }
                producer = slice
                chain.root = producer.inputs[0]
            case .gather where Self.gatherIndex(producer, in: editor) != nil:
                chain.root = producer.inputs[0]
            case .mul:
                let constants = producer.inputs.filter { editor.graph.constants[$0] != nil }
                guard producer.inputs.count == 2, constants.count == 1, let factor = editor.floats(constants[0]),
                      factor.count == 1, let input = producer.inputs.first(where: { $0 != constants[0] }) else { return chain }
                chain.scale *= Double(factor[0])
                chain.root = input
            case .div:
                // Only views and scalar factors may follow the normalisation: they keep each row whole.
                guard chain.normalizingEpsilon == nil,
                      chain.nodes.allSatisfy({ [.transpose, .identity, .mul].contains($0.op) }),
                      let epsilon = Self.rowNormalizationEpsilon(producer, in: editor) else { return chain }
                chain.normalizingEpsilon = epsilon
                chain.root = producer.inputs[0]
            default:
                return chain
            }
            chain.nodes.insert(producer, at: 0)
        }
        return chain
    }

    /// The slice that gives `output` of a split: the extents of the pieces before it set its start.
    static func sliceEquivalent(of split: Node, output: String, in editor: GraphEditor) -> Node? {
        guard let index = split.outputs.firstIndex(of: output), let rank = editor.graph.valueTypes[split.inputs[0]]?.shape.rank,
              let declared = try? split.attributeReader.int("axis") else { return nil }
        let axis = declared < 0 ? declared + rank : declared
        var start = 0
        for piece in split.outputs[...index] {
            guard let shape = editor.graph.valueTypes[piece]?.shape, shape.rank == rank, let extent = shape[axis].value else { return nil }
            start += piece == output ? 0 : extent
        }
        guard let size = editor.graph.valueTypes[output]?.shape[axis].value else { return nil }
        return Node(name: split.name, op: .slice, inputs: [split.inputs[0]], outputs: [output],
                    attributes: Attributes(["starts": .ints([start]), "ends": .ints([start + size]), "axes": .ints([axis])]))
    }

    /// The views after the product that only rearrange it, in order.
    private func outputChain(from value: String, in editor: GraphEditor) -> [Node] {
        var nodes: [Node] = []
        var current = value
        while !editor.isGraphOutput(current), let reader = editor.soleConsumer(of: current), reader.inputs.first == current,
              [.reshape, .flatten, .squeeze, .unsqueeze, .identity, .transpose].contains(reader.op) {
            nodes.append(reader)
            current = reader.outputs[0]
        }
        return nodes
    }

    private func view(of chain: Chain, rootExtents: [Int], bind: (String) -> [Int]?, in editor: GraphEditor) -> StridedView? {
        var view: StridedView? = StridedView(contiguous: rootExtents)
        for node in chain.nodes where node.op != .mul && node.op != .div {
            guard let current = view, let extents = bind(node.outputs[0]) else { return nil }
            view = Self.apply(node, to: current, outputExtents: extents, in: editor)
        }
        return view
    }

    /// `view` after one view op (or single-index gather) whose output has `outputExtents`.
    static func apply(_ node: Node, to view: StridedView, outputExtents: [Int], in editor: GraphEditor) -> StridedView? {
        switch node.op {
        case .transpose:
            guard let perm = TransposeCancellation.permutation(of: node, in: editor.graph),
                  let transposed = view.transposed(perm) else { return nil }
            return transposed.extents == outputExtents ? transposed : nil
        case .slice:
            let reader = node.attributeReader
            guard let starts = try? reader.ints("starts"), let ends = try? reader.ints("ends") else { return nil }
            let axes = (try? reader.optionalInts("axes")) ?? Array(0..<starts.count)
            let steps = (try? reader.optionalInts("steps")) ?? Array(repeating: 1, count: starts.count)
            guard axes.count == starts.count, ends.count == starts.count, steps.allSatisfy({ $0 == 1 }) else { return nil }
            var sliced: StridedView? = view
            for (index, axis) in axes.enumerated() {
                let extents = view.extents
                let resolved = axis < 0 ? axis + extents.count : axis
                guard extents.indices.contains(resolved) else { return nil }
                let extent = extents[resolved]
                let start = Swift.min(Swift.max(starts[index] < 0 ? starts[index] + extent : starts[index], 0), extent)
                let length = OpRegistry.sliceLength(extent: extent, start: starts[index], end: ends[index], step: 1)
                sliced = sliced?.sliced(axis: resolved, start: start, length: length)
            }
            return sliced?.extents == outputExtents ? sliced : nil
        case .gather:
            let extents = view.extents
            guard let index = gatherIndex(node, in: editor), let axis = try? node.attributeReader.int("axis") else { return nil }
            let resolved = axis < 0 ? axis + extents.count : axis
            guard extents.indices.contains(resolved) else { return nil }
            return view.selecting(index < 0 ? index + extents[resolved] : index, axis: resolved)?.reshaped(outputExtents)
        default:
            return view.reshaped(outputExtents)
        }
    }

    /// `extents` with the axes before their last `kept` merged into one: the sequences of an operand
    /// [..., heads, tokens, head size] (kept 3) or of token rows [..., tokens, columns] (kept 2).
    static func mergingSequences(_ extents: [Int], keeping kept: Int) -> [Int] {
        [extents.dropLast(kept).reduce(1, *)] + extents.suffix(kept)
    }

    /// An operand's view as [sequences, heads, tokens, head size].
    static func mergingSequences(_ view: StridedView) -> StridedView? {
        view.extents.count == 4 ? view : view.reshaped(mergingSequences(view.extents, keeping: 3))
    }

    /// The one index a gather takes along its axis (a constant with one element).
    static func gatherIndex(_ node: Node, in editor: GraphEditor) -> Int? {
        guard node.inputs.count == 2, let data = editor.graph.constants[node.inputs[1]]?.data, data.elementCount == 1,
              data.dtype == .int64 || data.dtype == .int32 else { return nil }
        return data.int64s().first.map { Int($0) }
    }

    /// ε when `div` is x / max(‖x‖₂, ε) over x's last axis, as F.normalize exports it: the divisor
    /// clip(sqrt(reduce_sum_square(x, last axis, keepdims)), min ε), through an expand or not.
    static func rowNormalizationEpsilon(_ div: Node, in editor: GraphEditor) -> Float? {
        guard div.inputs.count == 2, (try? div.fusedActivation) == FusedActivation.none,
              let rank = editor.graph.valueTypes[div.inputs[0]]?.shape.rank, rank >= 1,
              editor.graph.valueTypes[div.outputs[0]]?.shape == editor.graph.valueTypes[div.inputs[0]]?.shape,
              var divisor = editor.producer(of: div.inputs[1]) else { return nil }
        if divisor.op == .expand, let next = editor.producer(of: divisor.inputs[0]) { divisor = next }
        guard divisor.op == .clip, let epsilon = try? divisor.attributeReader.float("min"),
              let upper = try? divisor.attributeReader.float("max"), upper == .infinity, epsilon.isFinite, epsilon > 0,
              let root = editor.producer(of: divisor.inputs[0]), root.op == .sqrt,
              let sum = editor.producer(of: root.inputs[0]), sum.op == .reduceSumSquare, sum.inputs.first == div.inputs[0],
              let axes = try? sum.attributeReader.ints("axes"), axes == [-1] || axes == [rank - 1],
              (try? sum.attributeReader.bool("keepdims")) == true else { return nil }
        return epsilon
    }

    /// Whether the chain's normalisation divides by the norms of one head's columns of one token: the
    /// view at its div has the head's columns, unit-stride, as its last axis.
    private func normalizesHeadColumns(_ chain: Chain, rootExtents: [Int], headSize: Int, bind: (String) -> [Int]?,
                                       in editor: GraphEditor) -> Bool {
        guard let index = chain.nodes.firstIndex(where: { $0.op == .div }) else { return false }
        var view: StridedView? = StridedView(contiguous: rootExtents)
        for node in chain.nodes[..<index] where node.op != .mul {
            guard let current = view, let extents = bind(node.outputs[0]) else { return false }
            view = Self.apply(node, to: current, outputExtents: extents, in: editor)
        }
        guard let view, view.extents.last == headSize, let strides = view.strides else { return false }
        return headSize == 1 || strides.last == 1
    }

    /// (offset, sequence first) when `view` ([sequences, heads, tokens, head size]) reads head h at
    /// columns offset + h·head size of rows [sequences, tokens] or [tokens, sequences] of `root`.
    static func tokenRows(_ view: StridedView, root: [Int], heads: Int, headSize: Int) -> (offset: Int, sequenceFirst: Bool)? {
        let extents = view.extents
        guard root.count == 3, extents.count == 4, extents[1] == heads, extents[3] == headSize,
              let strides = view.strides else { return nil }
        let (sequences, tokens, columns) = (extents[0], extents[2], root[2])
        guard (headSize == 1 || strides[3] == 1) && (heads == 1 || strides[1] == headSize),
              view.offset >= 0, view.offset + heads * headSize <= columns else { return nil }
        let columnOffset = view.offset
        if root[0] == sequences && root[1] == tokens && (sequences == 1 || strides[0] == tokens * columns)
            && (tokens == 1 || strides[2] == columns) {
            return (columnOffset, false)
        }
        if root[0] == tokens && root[1] == sequences && (sequences == 1 || strides[0] == columns)
            && (tokens == 1 || strides[2] == sequences * columns) {
            return (columnOffset, true)
        }
        return nil
    }
}
