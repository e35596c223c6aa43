/// The geometry of an attention node: where each head's query, key and value columns lie in
/// the token rows of its inputs, and how many tokens and sequences there are.
public struct AttentionGeometry: Hashable, Sendable {
    public var heads: Int
    public var headSize: Int
    public var scale: Float
    /// First column of head 0 in the rows of q, k and v.
    public var offsets: [Int]
    /// Rows ordered [tokens, sequences] (PyTorch's MultiheadAttention) rather than [sequences, tokens].
    public var sequenceFirst: Bool
    /// Per-head factors on the scores on top of `scale` (Swin V2's learnt logit scale); empty for none.
    public var headScales: [Float]
    /// Cosine attention (Swin V2): each head's q and k rows divided by max(‖row‖₂, epsilon) first.
    public var normalizesRows: Bool
    public var epsilon: Float

    static func resolve(_ context: OpSchema.Context) throws -> AttentionGeometry {
        let attributes = context.attributes
        let geometry = AttentionGeometry(
            heads: try attributes.int("heads"), headSize: try attributes.int("head_size"),
            scale: try attributes.float("scale"), offsets: try attributes.ints("offsets"),
            sequenceFirst: try attributes.bool("sequence_first"), headScales: try attributes.floats("head_scales"),
            normalizesRows: try attributes.bool("normalize"), epsilon: try attributes.float("epsilon"))
        guard geometry.heads >= 1, geometry.headSize >= 1, geometry.offsets.count == 3,
              geometry.offsets.allSatisfy({ $0 >= 0 }) else {
            throw context.error("needs heads ≥ 1, head_size ≥ 1 and three non-negative offsets (q, k, v), but has heads \(geometry.heads), head_size \(geometry.headSize), offsets \(AttributeValue.ints(geometry.offsets))")
        }
        guard geometry.headScales.isEmpty || geometry.headScales.count == geometry.heads else {
            throw context.error("needs one head scale per head (\(geometry.heads)) or none, but has \(geometry.headScales.count)")
        }
        guard geometry.epsilon.isFinite && geometry.epsilon > 0 else {
            throw context.error("needs a positive finite epsilon, but has \(geometry.epsilon)")
        }
        return geometry
    }
}

extension OpRegistry {
    /// attention: softmax(scale·q_h·k_hᵀ)·v_h for every head h and sequence (scale·s_h·q̂_h·k̂_hᵀ with
    /// `head_scales` s and, with `normalize`, q̂ and k̂ the rows over max(‖row‖₂, epsilon)), each of q, k and v a
    /// rank-3 tensor of token rows whose head h occupies columns offset + h·head_size ..< offset +
    /// (h+1)·head_size (q, k and v may be one tensor: a fused QKV projection). The output holds
    /// the heads side by side in q's row order: [sequences, tokens, heads·head_size], or
    /// [tokens, sequences, …] with `sequence_first`. An optional constant bias [period, heads,
    /// query tokens, key tokens] is added to the scores before the softmax, sequence s taking block
    /// s mod period (a relative-position table, or window masks that repeat image after image).
    static var attentionSchema: OpSchema {
        OpSchema(
            kind: .attention, category: .matrixProduct,
            inputs: [.init("q"), .init("k"), .init("v"), .init("bias", optional: true)],
            attributes: [
                .init("heads", default: nil, "number of heads"),
                .init("head_size", default: nil, "columns per head"),
                .init("scale", default: .float(1), "applied to q·kᵀ before the softmax"),
                .init("offsets", default: .ints([0, 0, 0]), "first column of head 0 in q, k and v"),
                .init("sequence_first", default: .bool(false), "rows are [tokens, sequences] rather than [sequences, tokens]"),
                .init("head_scales", default: .floats([]), "per-head factors on the scores, on top of scale (none when empty)"),
                .init("normalize", default: .bool(false), "divide each head's q and k rows by max(‖row‖₂, epsilon) (cosine attention)"),
                .init("epsilon", default: .float(1e-12), "the least row norm `normalize` divides by"),
            ]
        ) { context in
            let geometry = try AttentionGeometry.resolve(context)
            let types = try (0..<3).map { try context.type($0) }
            let width = geometry.heads * geometry.headSize
            for (index, type) in types.enumerated() {
                guard type.shape.rank == 3 else {
                    throw context.error("needs rank-3 token rows but \(context.quote(index, type)) has rank \(type.shape.rank)")
                }
                if let columns = type.shape[2].value, geometry.offsets[index] + width > columns {
                    throw context.error("\(context.quote(index, type)) has \(columns) columns, fewer than offset \(geometry.offsets[index]) + \(geometry.heads)·\(geometry.headSize)")
                }
            }
            let sequenceAxis = geometry.sequenceFirst ? 1 : 0
            guard types[1].shape[sequenceAxis] == types[0].shape[sequenceAxis], types[2].shape.dims.prefix(2) == types[1].shape.dims.prefix(2) else {
                throw context.error("\(context.quote(0, types[0])), \(context.quote(1, types[1])) and \(context.quote(2, types[2])) disagree on their sequences or key tokens")
            }
            let tokenAxis = 1 - sequenceAxis
            if let bias = context.optionalType(3) {
                let expected: [Dim] = [bias.shape.rank == 4 ? bias.shape[0] : .known(1), .known(geometry.heads),
                                       types[0].shape[tokenAxis], types[1].shape[tokenAxis]]
                guard bias.shape.rank == 4, bias.shape.dims.allSatisfy({ $0.value != nil }),
                      zip(bias.shape.dims, expected).allSatisfy({ $1.value == nil || $0 == $1 }) else {
                    throw context.error("needs a bias of shape [period, \(geometry.heads), query tokens, key tokens] but \(context.quote(3, bias)) does not fit \(context.quote(0, types[0])) and \(context.quote(1, types[1]))")
                }
                if let period = bias.shape[0].value, let sequences = types[0].shape[sequenceAxis].value,
                   period < 1 || sequences % period != 0 {
                    throw context.error("\(context.quote(3, bias)) repeats every \(period) sequences, which does not tile the \(sequences) of \(context.quote(0, types[0]))")
                }
            }
            var shape = types[0].shape
            shape[2] = .known(width)
            return [TensorType(types[0].dtype, shape)]
        }
    }
}
