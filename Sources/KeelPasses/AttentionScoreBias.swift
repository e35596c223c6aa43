import KeelIR

/// Constants the scores add before the softmax, folded into the one bias `attention` takes: Swin's
/// relative-position table ([heads, tokens, tokens]) and, in its shifted windows, the window masks
/// added through a reshape to [images, windows, heads, tokens, tokens] and back. The chain is
/// replayed on zeros at two batch sizes; the sum must repeat along the sequences with a period that
/// divides the sequences of one image, so one [period, heads, tokens, tokens] block serves any batch.
struct ScoreBias {
    var values: [Float]
    var shape: [Int]
    /// Whether any constant it sums is a trainable parameter.
    var trainable: Bool
}

extension AttentionRecognition {
    /// How much larger the folded bias may be than the constants it sums (it repeats the position
    /// table per window and the masks per head: windows·heads blocks from windows + heads), and
    /// the most values it may hold. Swin-T's shifted stages grow 2.9×, 4.4× and 3× (4.5 MB in
    /// all); Swin-B at 384² would add 21 MB in its first stage, which keeps its adds instead.
    static let maximumGrowth = 8
    static let maximumValues = 4 << 20

    /// The batch sizes the bias is replayed at: one image, and two to show what repeats per image.
    static let biasSampleBatches = [1, 2]

    static func isConstant(_ value: String, in editor: GraphEditor) -> Bool { editor.graph.constants[value] != nil }

    /// The reshapes, constant adds and constant multiplies between the scores' matmul and `softmax`,
    /// in order (empty when the softmax reads the product directly).
    static func biasChain(before softmax: Node, in editor: GraphEditor) -> [Node] {
        var chain: [Node] = []
        var value = softmax.inputs[0]
        while let producer = editor.producer(of: value), producer.outputs.count == 1,
              (try? producer.fusedActivation) == FusedActivation.none {
            let next: String?
            switch producer.op {
            case .reshape, .flatten, .squeeze, .unsqueeze, .identity:
                next = producer.inputs.first
            case .add where producer.inputs.count == 2, .mul where producer.inputs.count == 2:
                let constants = producer.inputs.filter { isConstant($0, in: editor) }
                next = constants.count == 1 ? producer.inputs.first { !isConstant($0, in: editor) } : nil
            default:
                next = nil
            }
            guard let next else { break }
            chain.insert(producer, at: 0)
            value = next
        }
        return chain
    }

    /// What `chain` adds to the [..., heads, query tokens, key tokens] scores (the leading axes the
    /// sequences), as one constant;
    /// nil when it only reshapes them back to the same shape.
    static func scoreBias(of chain: [Node], scores: String, in editor: GraphEditor) -> Result<ScoreBias?, Rejection> {
        var trainable = false
        var summed: Set<String> = []
        var sums: [(values: [Float], extents: [Int])] = []
        for batch in biasSampleBatches {
            guard let scoreExtents = extents(of: scores, batch: batch, in: editor), scoreExtents.count >= 4 else {
                return .failure(Rejection("the scores' shape is not known at batch \(batch)"))
            }
            var values = [Float](repeating: 0, count: scoreExtents.reduce(1, *))
            var current = scoreExtents
            for node in chain {
                guard let next = extents(of: node.outputs[0], batch: batch, in: editor), next.reduce(1, *) == values.count else {
                    return .failure(Rejection("'\(node.name)' changes the number of scores"))
                }
                if node.op == .add, let name = node.inputs.first(where: { isConstant($0, in: editor) }) {
                    guard let constant = editor.graph.constants[name], let data = editor.floats(name),
                          let shape = constant.type.shape.knownExtents else {
                        return .failure(Rejection("the scores add '\(name)', which has no values (bind weights first)"))
                    }
                    guard next == current, let strides = try? ReferenceLoops.broadcastStrides(of: shape, onto: current) else {
                        return .failure(Rejection("the scores add '\(name)' of shape \(shape), which does not broadcast onto \(current)"))
                    }
                    addBroadcast(data, strides: strides, extents: current, into: &values)
                    trainable = trainable || constant.trainable
                    summed.insert(name)
                }
                current = next
            }
            guard current == scoreExtents else {
                return .failure(Rejection("the softmax reads the scores as \(current), not \(scoreExtents)"))
            }
            sums.append((values, mergingSequences(scoreExtents, keeping: 3)))
        }
        guard chain.contains(where: { $0.op == .add }) else { return .success(nil) }
        let (one, two) = (sums[0], sums[1])
        let blockShape = Array(one.extents.dropFirst())
        guard Array(two.extents.dropFirst()) == blockShape else {
            return .failure(Rejection("the scores' heads or tokens depend on the batch"))
        }
        let block = blockShape.reduce(1, *)
        let sequences = one.extents[0]
        guard let period = (1...max(sequences, 1)).first(where: { period in
            sequences % period == 0 && two.extents[0] % period == 0
                && repeats(one.values, every: period * block) && repeats(two.values, every: period * block)
                && one.values.prefix(period * block).elementsEqual(two.values.prefix(period * block))
        }) else {
            return .failure(Rejection("what the scores add does not repeat image after image"))
        }
        let summedCount = summed.compactMap { editor.graph.constants[$0]?.type.shape.elementCount }.reduce(0, +)
        guard period * block <= min(maximumGrowth * summedCount, maximumValues) else {
            return .failure(Rejection("one bias would hold \(period * block) values, more than \(maximumGrowth)× the "
                                      + "\(summedCount) of the constants it sums or \(maximumValues)"))
        }
        return .success(ScoreBias(values: Array(one.values.prefix(period * block)), shape: [period] + blockShape,
                                  trainable: trainable))
    }

    /// The per-head factors the chain's constant multiplies apply to the scores (empty when it has
    /// none). They must come before any add, which would otherwise be scaled too, and vary along
    /// the heads alone.
    static func scoreScales(of chain: [Node], scores: String, heads: Int, in editor: GraphEditor) -> Result<[Float], Rejection> {
        var factors: [Float] = []
        var added = false
        for node in chain {
            if node.op == .add { added = true }
            guard node.op == .mul, let name = node.inputs.first(where: { isConstant($0, in: editor) }) else { continue }
            guard !added else { return .failure(Rejection("the scores are multiplied by '\(name)' after a bias is added")) }
            guard let data = editor.floats(name), let shape = editor.graph.constants[name]?.type.shape.knownExtents,
                  let scoreExtents = extents(of: scores, batch: 1, in: editor),
                  let current = extents(of: node.inputs.first { $0 != name } ?? "", batch: 1, in: editor),
                  current == scoreExtents,
                  let strides = try? ReferenceLoops.broadcastStrides(of: shape, onto: scoreExtents),
                  strides.enumerated().allSatisfy({ $0.offset == scoreExtents.count - 3 || $0.element == 0
                                                    || scoreExtents[$0.offset] == 1 }) else {
                return .failure(Rejection("the scores are multiplied by '\(name)', which is not one factor per head"))
            }
            let perHead = (0..<heads).map { data[$0 * strides[scoreExtents.count - 3]] }
            factors = factors.isEmpty ? perHead : zip(factors, perHead).map { $0 * $1 }
        }
        return .success(factors)
    }

    /// `value`'s extents with every symbolic dimension set to `batch`.
    static func extents(of value: String, batch: Int, in editor: GraphEditor) -> [Int]? {
        guard let shape = editor.graph.valueTypes[value]?.shape else { return nil }
        return shape.binding(Dictionary(uniqueKeysWithValues: shape.symbols.map { ($0, batch) })).knownExtents
    }

    /// Whether `values` is its first `length` values over and over.
    private static func repeats(_ values: [Float], every length: Int) -> Bool {
        guard length > 0, values.count % length == 0 else { return false }
        return stride(from: length, to: values.count, by: length).allSatisfy { start in
            values[start..<start + length].elementsEqual(values[0..<length])
        }
    }

    /// values += constant broadcast onto `extents` (its element strides `strides`, 0 where broadcast),
    /// a row of the last axis at a time.
    private static func addBroadcast(_ constant: [Float], strides: [Int], extents: [Int], into values: inout [Float]) {
        guard let inner = extents.last, inner > 0, let innerStride = strides.last else { return }
        let outerAxes = extents.count - 1
        var position = [Int](repeating: 0, count: outerAxes)
        var base = 0
        for row in 0..<values.count / inner {
            let start = row * inner
            for column in 0..<inner { values[start + column] += constant[base + column * innerStride] }
            var axis = outerAxes - 1
            while axis >= 0 {
                position[axis] += 1
                base += strides[axis]
                if position[axis] < extents[axis] { break }
                base -= strides[axis] * extents[axis]
                position[axis] = 0
                axis -= 1
            }
        }
    }
}
